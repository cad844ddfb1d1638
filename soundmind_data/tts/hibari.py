"""hibari-tts: the voice "heart" (US English, female), a 7.9 MB student of Kokoro's af_heart shipped in the wheel.

Its own grapheme-to-phoneme front end (a port of misaki, Kokoro's) reads the text; the model predicts the
parameters of a harmonic-plus-noise vocoder whose noise is random, so every chunk is spoken with a fixed seed: the
same text gives the same samples, which the content-addressed cache relies on. Its other voices download at run
time, so only "heart" is offered. One onnxruntime thread per engine, as for Piper.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

DEFAULT_VOICE = "heart"
# The sha256 hibari 0.2.1 lists for its bundled model (assets/voices.json): a corrupted or swapped file is refused.
HEART_SHA256 = "5f70741d4e900f4e85d0037498736cc1b3e1b9a63a13546a5da1e63abf4fccd8"
NOISE_SEED = 0
SAMPLE_RATE = 24000


def toolkit() -> str:
    try:
        return f"hibari-tts {version('hibari-tts')}"
    except PackageNotFoundError:
        raise UsageError("this voice needs hibari-tts: pip install hibari-tts==0.2.1") from None


def front_end():
    """hibari's US English grapheme-to-phoneme converter (misaki's phoneme alphabet), which Kokoro reads too."""
    toolkit()
    from hibari.g2p import G2P

    return G2P(british=False)


class HibariEngine(VoiceEngine):
    max_chars = 400  # hibari splits longer sentences at clauses itself; the stage cuts at clauses before that
    sample_rate = SAMPLE_RATE

    def __init__(self, voice: str | None, device: str):
        voice = voice or DEFAULT_VOICE
        if voice != DEFAULT_VOICE:
            raise UsageError(f"hibari voice {voice!r}: only {DEFAULT_VOICE!r} ships in the package")
        toolkit_version = toolkit()
        from hibari.voices import voice_path

        self._model_path = Path(voice_path(DEFAULT_VOICE, download_missing=False))
        found = file_digest(self._model_path, "sha256")
        if found != HEART_SHA256:
            raise UsageError(f"{self._model_path}: sha256 {found} differs from hibari-tts 0.2.1's {HEART_SHA256}; "
                             "refusing this model")
        self._engine = None
        self.provenance = Provenance(backend="hibari", voice=voice, model_md5=file_digest(self._model_path, "md5"),
            license="Apache-2.0",
            toolkit_version=toolkit_version, settings={"noise_seed": NOISE_SEED, "speed": 1.0})

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        if self._engine is None:
            from hibari import Hibari

            self._engine = Hibari(DEFAULT_VOICE, threads=1)
        arrays = []
        for chunk in chunks:
            try:
                arrays.append(self._engine(chunk, seed=NOISE_SEED).astype(np.float32))
            except Exception as exc:  # onnxruntime and the front end raise no common base class
                raise VoiceEngineError(f"hibari failed on {chunk[:60]!r}: {exc}") from exc
        return arrays


BACKEND = HibariEngine
