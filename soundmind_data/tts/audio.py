"""From a backend's chunk arrays to the bytes of a finished file: join, trim, resample, loudness, encode.

Loudness is ITU-R BS.1770 integrated loudness (pyloudnorm), set after resampling so that the value recorded in the
manifest is the one a listener gets. MP3 and Opus are written by libsndfile (bundled with the soundfile wheels), so
no ffmpeg wrapper is needed for any format.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from soundmind_data.tts.base import VoiceEngineError

FORMATS = {  # --format -> (libsndfile format, subtype, file extension)
    "flac": ("FLAC", "PCM_16", "flac"),
    "wav": ("WAV", "PCM_16", "wav"),
    "mp3": ("MP3", "MPEG_LAYER_III", "mp3"),
    "opus": ("OGG", "OPUS", "opus"),
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
SILENCE_DB = -40.0  # below this, relative to the file's peak, a sample counts as silence when trimming
EDGE_S = 0.05  # silence kept before the first and after the last sound, so onsets are not clipped
PEAK_CEILING = 10 ** (-1 / 20)  # -1 dBFS: headroom for resampling and lossy codecs, which overshoot
LOUDNESS_MIN_S = 0.4  # BS.1770 gating blocks are 400 ms; shorter audio has no integrated loudness


@dataclass(frozen=True)
class Rendered:
    """A finished, encoded file and what the manifest records about it."""

    data: bytes
    sample_rate: int
    duration_s: float
    loudness_lufs: float | None


def join_chunks(arrays: list[np.ndarray], sample_rate: int, pause_s: float) -> np.ndarray:
    """Concatenate chunk audio with `pause_s` of silence between chunks (each chunk trimmed first, so every pause
    has the same length whatever silence the engine left around a sentence)."""
    pause = np.zeros(int(round(pause_s * sample_rate)), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for audio in arrays:
        audio = trim_silence(np.asarray(audio, dtype=np.float32), sample_rate, edge_s=0.0)
        if audio.size:
            if pieces:
                pieces.append(pause)
            pieces.append(audio)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def trim_silence(audio: np.ndarray, sample_rate: int, edge_s: float = EDGE_S) -> np.ndarray:
    """Drop leading and trailing silence, keeping `edge_s` seconds of it at each end."""
    if audio.size == 0:
        return audio
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (SILENCE_DB / 20))
    edge = int(edge_s * sample_rate)
    return audio[max(0, loud[0] - edge): loud[-1] + 1 + edge]


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return audio
    import soxr

    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770 integrated loudness in LUFS; None when the audio is too short or silent to have one."""
    import pyloudnorm

    if audio.size < LOUDNESS_MIN_S * sample_rate:
        return None
    loudness = pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64))
    return float(loudness) if np.isfinite(loudness) else None


def set_loudness(audio: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[np.ndarray, float | None]:
    """Scale to `target_lufs`, limiting the rare peaks that would pass -1 dBFS; returns the audio and its measured
    loudness (None when it is too short or silent to have one).

    Speech at -23 LUFS from a neural voice can peak above full scale; scaling the whole file down to fit would miss
    the target by several LU, so the peaks are limited instead and the gain is corrected for what limiting took.
    """
    loudness = integrated_loudness(audio, sample_rate)
    for _ in range(3):  # limiting lowers the loudness a little: re-measure and correct
        if loudness is None or abs(loudness - target_lufs) < 0.05:
            break
        audio = limit_peaks(audio * 10 ** ((target_lufs - loudness) / 20), sample_rate)
        loudness = integrated_loudness(audio, sample_rate)
    return audio.astype(np.float32), loudness


def limit_peaks(audio: np.ndarray, sample_rate: int, ceiling: float = PEAK_CEILING) -> np.ndarray:
    """A look-ahead peak limiter: the gain dips smoothly over about 10 ms around each peak above `ceiling`.

    The minimum filter makes every sample's gain at most what any peak within half a window needs; the moving
    average over the same window then cannot lift a peak's gain above its need, so no sample passes the ceiling.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    needed = np.minimum(1.0, ceiling / np.maximum(np.abs(audio), 1e-12))
    if needed.min() >= 1.0:
        return audio
    window = 2 * int(0.005 * sample_rate) + 1
    gain = uniform_filter1d(minimum_filter1d(needed, window, mode="nearest"), window, mode="nearest")
    return audio * gain


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    import soundfile

    container, subtype, _ = FORMATS[fmt]
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def render(arrays: list[np.ndarray], native_rate: int, *, sample_rate: int, target_lufs: float, pause_s: float,
           fmt: str) -> Rendered:
    """The finished file for one text: chunks joined, trimmed, resampled, loudness-normalised, encoded."""
    audio = trim_silence(join_chunks(arrays, native_rate, pause_s), native_rate)
    if audio.size == 0:
        raise VoiceEngineError("the engine produced only silence")
    # The loudness is measured on the samples that are encoded (the limiter keeps them inside full scale); 16-bit
    # rounding moves it by far less than the 0.01 LU recorded, lossy formats by a fraction of a LU.
    audio, loudness = set_loudness(resample(audio, native_rate, sample_rate), sample_rate, target_lufs)
    audio = np.clip(audio, -1.0, 1.0)  # audio too short to measure is not scaled, nor limited: libsndfile would wrap
    return Rendered(
        data=encode(audio, sample_rate, fmt),
        sample_rate=sample_rate,
        duration_s=round(audio.size / sample_rate, 3),
        loudness_lufs=None if loudness is None else round(loudness, 2),
    )
