"""The voice engine interface: what every TTS engine provides, and how an engine is found by name.

An engine turns a list of speech-text chunks (each within its `max_chars`) into float32 mono arrays at its native
sample rate: one per chunk, or one per model call when an engine packs several chunks into one call (Kokoro).
Everything after that (joining, trimming, loudness, resampling, encoding) is the stage's job, so a new engine is one
module with one `VoiceEngine` subclass, named `BACKEND` in that module and listed in `VOICE_ENGINES` (the registry
shape every kind of backend shares: `core.registry`).
Engines are built inside each worker process (model sessions cannot be pickled, and each worker must own its
single-threaded engine); building one should be cheap, with the model loaded on the first `synthesize`, so that a
fully cached re-run never loads a model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundmind_data.core.registry import Registry

# Importing lazily (core.registry) keeps optional engines optional.
VOICE_ENGINES = Registry("--backend", {
    "piper": "soundmind_data.tts.piper",
    "hibari": "soundmind_data.tts.hibari",
    "kokoro": "soundmind_data.tts.kokoro",
    "flite": "soundmind_data.tts.flite",
    "espeak": "soundmind_data.tts.espeak",
    "coqui": "soundmind_data.tts.coqui",
})


class VoiceEngineError(Exception):
    """The engine failed on one text; the stage records it as that item's failure and goes on."""


@dataclass(frozen=True)
class Provenance:
    """What made a file: recorded as the item's `tts` field and part of the cache key."""

    backend: str
    voice: str
    model_md5: str | None
    license: str | None
    toolkit_version: str
    settings: dict[str, Any] = field(default_factory=dict)  # everything else that changes the audio

    def to_item_field(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["settings"]
        return fields


class VoiceEngine(ABC):
    """One loaded voice of one engine."""

    max_chars: int  # longest chunk the engine speaks reliably
    sample_rate: int  # of the arrays `synthesize` returns
    provenance: Provenance

    @abstractmethod
    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        """Float32 mono arrays in [-1, 1], in the chunks' order (the stage joins them with a pause between);
        raises VoiceEngineError when the engine fails."""


def load_voice_engine(name: str, voice: str | None, device: str) -> VoiceEngine:
    """Load `voice` (None: the engine's default) of engine `name` on `device` ("cpu" or "cuda"). Engines without
    a GPU path (hibari, flite, espeak: all far faster than real time on one core) run on the CPU whatever `device`
    says, so that one pool of voices can mix them with GPU engines."""
    return VOICE_ENGINES.load(name)(voice, device)
