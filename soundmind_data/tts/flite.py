"""CMU Flite from the Debian package: robotic but distinct speakers (awb, rms, slt, kal16), no model download.

Optional and never in the default pool: useful for speaker variety in tests and for corpora that want a clearly
synthetic voice. Deterministic; one `flite` process per chunk, writing a 16 kHz WAV to a temp file (it cannot write
to stdout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import lru_cache

import numpy as np
import soundfile

from soundmind_data.core.errors import UsageError
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

DEFAULT_VOICE = "slt"
VOICES = ("awb", "rms", "slt", "kal16")  # the 16 kHz voices Debian's flite has built in (kal is 8 kHz)
SAMPLE_RATE = 16000


@lru_cache(maxsize=1)
def _flite() -> tuple[str, str]:
    """(binary path, version) of flite."""
    binary = shutil.which("flite")
    if binary is None:
        raise UsageError("the flite voices need CMU Flite (Debian: apt-get install flite)")
    listing = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = [line.strip() for line in listing.splitlines() if "version:" in line]
    return binary, found[0].split("version:")[1].split("(")[0].strip() if found else "flite"


class FliteEngine(VoiceEngine):
    max_chars = 1000
    sample_rate = SAMPLE_RATE

    def __init__(self, voice: str | None, device: str):
        self._binary, toolkit_version = _flite()
        self._voice = voice or DEFAULT_VOICE
        if self._voice not in VOICES:
            raise UsageError(f"flite voice {self._voice!r}: choose one of {', '.join(VOICES)}")
        self.provenance = Provenance(backend="flite", voice=self._voice, model_md5=None,
                                     license="BSD-style (CMU Flite)", toolkit_version=toolkit_version)

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        return [self._speak(chunk) for chunk in chunks]

    def _speak(self, text: str) -> np.ndarray:
        handle, path = tempfile.mkstemp(suffix=".wav", prefix="soundmind-flite-")
        os.close(handle)
        try:
            done = subprocess.run([self._binary, "-voice", self._voice, "-o", path], input=text.encode("utf-8"),
                                  capture_output=True)
            if done.returncode != 0:
                raise VoiceEngineError(f"flite failed on {text[:60]!r}: {done.stderr.decode(errors='replace').strip()}")
            audio, rate = soundfile.read(path, dtype="float32")
        finally:
            os.unlink(path)
        if rate != self.sample_rate:
            raise VoiceEngineError(f"flite produced {rate} Hz audio, expected {self.sample_rate}")
        return audio


BACKEND = FliteEngine
