"""espeak-ng, the zero-model fallback: formant synthesis from the Debian package, no download, any machine.

Robotic but intelligible and deterministic; useful for smoke tests, CI and languages without a neural voice.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import lru_cache

import numpy as np
import soundfile

from soundmind_data.core.errors import UsageError
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError

DEFAULT_VOICE = "en-us"
WORDS_PER_MINUTE = 175  # espeak-ng's own default, pinned so that a changed default cannot change our audio


@lru_cache(maxsize=1)
def _espeak() -> tuple[str, str]:
    """(binary path, version line) of espeak-ng."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise UsageError("backend espeak needs espeak-ng (Debian: apt-get install espeak-ng)")
    version_line = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return binary, version_line.split(" Data at:")[0].strip()


def _voices(binary: str) -> set[str]:
    listing = subprocess.run([binary, "--voices"], capture_output=True, text=True, check=True).stdout
    names = set()
    for row in listing.splitlines()[1:]:  # columns: Pty Language Age/Gender VoiceName File Other
        columns = row.split()
        if len(columns) >= 5:
            names.update((columns[1], columns[3], columns[4]))
    return names


class EspeakEngine(VoiceEngine):
    max_chars = 1000
    sample_rate = 22050

    def __init__(self, voice: str | None, device: str):
        self._binary, version_line = _espeak()
        self._voice = voice or DEFAULT_VOICE
        if self._voice not in _voices(self._binary):
            raise UsageError(f"espeak-ng has no voice {self._voice!r} (see: espeak-ng --voices)")
        self.provenance = Provenance(
            backend="espeak",
            voice=self._voice,
            model_md5=None,
            license="GPL-3.0-or-later",
            toolkit_version=version_line,
            settings={"words_per_minute": WORDS_PER_MINUTE},
        )

    def synthesize(self, chunks: list[str]) -> list[np.ndarray]:
        return [self._speak(chunk) for chunk in chunks]

    def _speak(self, text: str) -> np.ndarray:
        command = [self._binary, "-v", self._voice, "-s", str(WORDS_PER_MINUTE), "--stdout"]
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0 or not done.stdout:
            raise VoiceEngineError(f"espeak-ng failed on {text[:60]!r}: {done.stderr.decode(errors='replace').strip()}")
        # espeak-ng streams a WAV whose header announces no length; soundfile reads it to the end anyway.
        audio, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
        if rate != self.sample_rate:
            raise VoiceEngineError(f"espeak-ng produced {rate} Hz audio, expected {self.sample_rate}")
        return audio


BACKEND = EspeakEngine
