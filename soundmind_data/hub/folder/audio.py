"""An item's audio files as they go out: read, checked against their sha256 and their entry's duration, decoded to
the last frame, and re-encoded into the format export or publish writes (FLAC or WAV) keeping the source's bit depth
where that format holds it. Publish (hub.folder.rows) and export share it.
"""

from __future__ import annotations

import hashlib
import io
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import soundfile

from soundmind_data.core.errors import DataError
from soundmind_data.core.paths import UnsafePath, audio_file

# How a file in each audio format export and publish write begins, and the sample formats each can hold, by bit
# depth: a file re-encoded into it keeps its source's depth where the format holds that (FLAC stops at 24 bits).
ENCODINGS = {
    "flac": (lambda data: data.startswith(b"fLaC"), ("PCM_16", "PCM_24")),
    "wav": (lambda data: data[:4] == b"RIFF" and data[8:12] == b"WAVE", ("PCM_16", "PCM_24", "PCM_32")),
}


def audio_bytes(data: bytes, audio_format: str, where: str) -> bytes:
    """Audio file bytes as `audio_format` ("flac" or "wav"): a file already in it as it is (a release's recordings go
    out unchanged); anything else soundfile reads re-encoded, keeping its source's bit depth where the format holds it
    (24-bit FLAC as 24-bit WAV), as deep as the format goes where the source is deeper (32-bit WAV as 24-bit FLAC),
    and as 16 bits otherwise (8-bit, float, a lossy codec). `where` ("FILE:LINE: FIELD") names the file in errors."""
    is_format, subtypes = ENCODINGS[audio_format]
    if is_format(data):
        return data
    with decoding(where), soundfile.SoundFile(io.BytesIO(data)) as source:
        subtype = source.subtype
        if subtype not in subtypes:
            subtype = subtypes[-1] if subtype == "PCM_32" else "PCM_16"
        samples = source.read(dtype="int16" if subtype == "PCM_16" else "int32", always_2d=True)
        rate = source.samplerate
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=audio_format.upper(), subtype=subtype)
    return out.getvalue()


@contextmanager
def decoding(where: str) -> Iterator[None]:
    """Turn libsndfile's errors on a file that passed its sha256 check (but was never audio) into a DataError."""
    try:
        yield
    except RuntimeError as exc:  # soundfile.LibsndfileError and its parents
        raise DataError(f"{where}: does not decode as audio ({exc})") from None


def checked_audio_bytes(item: dict, key: str, root: Path, where: str) -> bytes | None:
    """The bytes of one audio file of an item (`root` is the manifest's folder), checked against its sha256."""
    audio = item.get(key)
    if audio is None:
        return None
    try:
        path = audio_file(root, audio["path"])
    except UnsafePath as exc:
        raise DataError(f"{where}: {key}.path: {audio['path']}: {exc}") from None
    if not path.is_file():
        raise DataError(f"{where}: {key}.path: no such file {path}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != audio["sha256"]:
        raise DataError(f"{where}: {key}.sha256: {path} does not match its sha256 (file changed after synthesis?)")
    _check_decodes(data, audio, path, f"{where}: {key}.path")
    return data


def _check_decodes(data: bytes, audio: dict, path: Path, where: str) -> None:
    """Every file that goes out decodes to its last frame and lasts what its entry says: a truncated file whose
    sha256 was taken after it was cut (a manifest edited by hand, a copy that broke) matches and must not pass."""
    with decoding(where), soundfile.SoundFile(io.BytesIO(data)) as source:
        announced, rate = source.frames, source.samplerate
        decoded = sum(len(block) for block in source.blocks(blocksize=1 << 16, dtype="int16"))
    seconds = decoded / rate
    if decoded != announced or abs(seconds - audio["duration_s"]) > max(0.05, 0.01 * audio["duration_s"]):
        raise DataError(f"{where}: {path} is truncated or damaged: it decodes to {seconds:.2f} s of the "
                        f"{audio['duration_s']:g} s its entry says")
