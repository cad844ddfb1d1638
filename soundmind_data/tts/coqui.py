"""Coqui TTS (XTTS-v2, VITS...) for GPU machines: an optional extra, `pip install 'soundmind-data[coqui]'`.

`--voice MODEL[:SPEAKER]`, e.g. `tts_models/multilingual/multi-dataset/xtts_v2:Ana Florence`; a list of such voices
spreads speakers over items. Models are downloaded by coqui-tts on first use. XTTS-v2 weights are under the Coqui
Public Model License (non-commercial): the licence is recorded in each item's provenance so a publisher sees it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from soundmind_data.core.errors import UsageError
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

XTTS_V2 = "tts_models/multilingual/multi-dataset/xtts_v2"
DEFAULT_VOICE = f"{XTTS_V2}:Ana Florence"
LANGUAGE = "en"
BATCH_SIZE = 8  # chunks per `_generate` call: the seam for a batched model call (coqui-tts offers none yet)
XTTS_MAX_CHARS = 250  # XTTS-v2 warns and truncates English text past 250 characters
OTHER_MAX_CHARS = 500
LICENSES = {XTTS_V2: "CPML (Coqui Public Model License, non-commercial)"}


def _toolkit(device: str) -> str:
    """coqui-tts's version, after checking that it is installed and `device` is there: a usage error when the
    stage starts, not a failure per item (kept apart so tests can run the glue without coqui-tts)."""
    try:
        toolkit = f"coqui-tts {version('coqui-tts')}"
    except PackageNotFoundError:
        raise UsageError("backend coqui needs coqui-tts: pip install 'soundmind-data[coqui]'") from None
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: torch sees no CUDA device")
    return toolkit


def _load_model(name: str, device: str) -> Any:
    """The coqui-tts model object (its `TTS` API); kept apart so tests can replace it with a fake."""
    from TTS.api import TTS

    return TTS(name).to(device)


class CoquiEngine(VoiceEngine):
    def __init__(self, voice: str | None, device: str):
        voice = voice or DEFAULT_VOICE
        self._model_name, _, speaker = voice.partition(":")
        self._speaker = speaker or None
        self._device = device
        self._model: Any = None  # loaded on first use, so that building a backend (and a cached re-run) stays cheap
        self._multilingual = "multilingual" in self._model_name
        self.max_chars = XTTS_MAX_CHARS if self._model_name == XTTS_V2 else OTHER_MAX_CHARS
        toolkit = _toolkit(device)
        self.provenance = Provenance(
            backend="coqui",
            voice=voice,
            model_md5=None,  # coqui-tts manages its own model files; the model name and version identify them
            license=LICENSES.get(self._model_name, f"see the model card of {self._model_name}"),
            toolkit_version=toolkit,
            settings={"language": LANGUAGE if self._multilingual else None},
        )

    @property
    def sample_rate(self) -> int:
        return int(self._loaded().synthesizer.output_sample_rate)

    def _loaded(self) -> Any:
        if self._model is None:
            self._model = _load_model(self._model_name, self._device)
        return self._model

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        arrays: list[np.ndarray] = []
        for start in range(0, len(chunks), BATCH_SIZE):
            arrays.extend(self._generate(chunks[start:start + BATCH_SIZE]))
        return arrays

    def _generate(self, batch: list[str]) -> list[np.ndarray]:
        """One array per text of a batch. coqui-tts's Python API speaks one text per call, so the batch bounds
        the work handed over at once rather than fusing texts into one tensor."""
        options = {"speaker": self._speaker}
        if self._multilingual:
            options["language"] = LANGUAGE
        model = self._loaded()
        arrays = []
        for text in batch:
            try:
                samples = model.tts(text=text, **options)
            except Exception as exc:  # torch, CUDA and model errors have no common base class
                raise VoiceEngineError(f"coqui failed on {text[:60]!r}: {exc}") from exc
            arrays.append(np.asarray(samples, dtype=np.float32))
        return arrays


BACKEND = CoquiEngine
