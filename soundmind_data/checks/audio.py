"""File, signal and speaking-rate checks of one audio file of a manifest.

The file is read once: its bytes are hashed and then decoded from memory. A check that cannot run because an
earlier one failed (nothing to measure in a file that does not decode) is recorded as skipped, never as passed.
The loudness of imported audio (a release's own recordings, `corpus.imported_audio`) is measured against the target
but is no check unless the config's `gate_imported_loudness` makes it one: a release recorded at other levels is
judged on what it says, not on how loud it is.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from soundmind_data.checks import SIGNAL_CHECKS
from soundmind_data.checks.config import CheckConfig
from soundmind_data.core.corpus import imported_audio
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.tts.audio import LOUDNESS_MIN_S, integrated_loudness

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class FileResult:
    """What the checks found in one audio file: a status per check, the failures, and the measurements."""

    field: str  # question_audio or answer_audio
    status: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (check, field path, message)
    duration_s: float | None = None
    loudness_lufs: float | None = None
    loudness_offset_lu: float | None = None  # measured minus target loudness
    loudness_gated: bool = True  # False: imported audio, whose loudness is reported, not checked
    wer: float | None = None
    per: float | None = None  # phoneme error rate, the gate
    own_per: float | None = None  # the PER of the stretch holding the item's own words
    judge: str | None = None  # which ASR decided: the backend, or "whisper-base" for a second opinion
    second_opinion: bool = False  # heard again by a second judge after the first failed it
    wer_sample_s: float | None = None  # seconds of audio the WER was measured on
    wer_sampled: bool = False  # True: long audio, WER measured on a bounded sample
    transcript: str | None = None  # what the ASR heard, normalised as the WER compares it
    heard_edits: list[tuple[int, int, str]] | None = None  # how it differs from the speech text (RoundTrip.edits)
    speech_text: str | None = None  # the text the WER was measured against, where it differs from the written text

    def check(self, name: str, ok: bool, message: str = "", subfield: str = "") -> bool:
        self.status[name] = PASS if ok else FAIL
        if not ok:
            self.failures.append((name, f"{self.field}.{subfield}" if subfield else self.field, message))
        return ok

    def skip(self, *names: str) -> None:
        for name in names:
            self.status[name] = SKIP

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, status in self.status.items() if status == FAIL]


@dataclass
class Decoded:
    samples: np.ndarray  # float32, (frames, channels)
    sample_rate: int

    @property
    def mono(self) -> np.ndarray:
        return self.samples[:, 0] if self.samples.shape[1] == 1 else self.samples.mean(axis=1)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def check_audio(audio: dict[str, Any], field_name: str, manifest_dir: Path, speech_words: list[str] | None,
                config: CheckConfig) -> tuple[FileResult, Decoded | None]:
    """Run the file, signal and speaking-rate checks on one audio object of an item (schema-valid).

    `speech_words` are the normalised words of the speech text the file should say (None when the item has no
    text for it). Returns the result and, when the file decoded, its samples for the ASR round trip.
    """
    result = FileResult(field_name)
    later = ("sha256", "decode", "sample_rate", "channels", "duration") + SIGNAL_CHECKS + ("speaking_rate",)
    try:
        data, problem = _read(audio_file(manifest_dir, audio["path"]))
    except UnsafePath as exc:  # a file outside the corpus is none of its files
        data, problem = None, str(exc)
    if not result.check("file_exists", data is not None, f"{audio['path']}: {problem}", "path"):
        result.skip(*later)
        return result, None
    sha = hashlib.sha256(data).hexdigest()
    result.check("sha256", sha == audio["sha256"], f"file has sha256 {sha}, manifest says {audio['sha256']}", "sha256")

    decoded, problem = _decode(data)
    if not result.check("decode", decoded is not None, f"{audio['path']}: {problem}", "path"):
        result.skip(*later[2:])
        return result, None
    result.duration_s = decoded.duration_s
    result.check("sample_rate", decoded.sample_rate == audio["sample_rate"],
                 f"file is {decoded.sample_rate} Hz, manifest says {audio['sample_rate']} Hz", "sample_rate")
    if "channels" in audio:
        channels = decoded.samples.shape[1]
        result.check("channels", channels == audio["channels"],
                     f"file has {channels} channels, manifest says {audio['channels']}", "channels")
    else:
        result.skip("channels")
    expected = audio["duration_s"]
    result.check("duration", abs(decoded.duration_s - expected) <= config.duration_tolerance * expected,
                 f"file lasts {decoded.duration_s:.3f} s, manifest says {expected} s "
                 f"(tolerance {config.duration_tolerance:.0%})", "duration_s")

    if not result.check("finite", bool(np.isfinite(decoded.samples).all()), "samples contain NaN or infinity"):
        result.skip(*SIGNAL_CHECKS[1:], "speaking_rate")
        return result, None
    _signal_checks(result, decoded, audio.get("loudness_target_lufs", config.loudness_target_lufs), config,
                   gate_loudness=config.gate_imported_loudness or not imported_audio(audio))
    _speaking_rate_check(result, decoded.duration_s, speech_words, config)
    return result, decoded


def _read(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or why there are none (an unreadable file is as good as a missing one)."""
    try:
        return path.read_bytes(), ""
    except FileNotFoundError:
        return None, "no such file"
    except IsADirectoryError:
        return None, "is a folder, not a file"
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}"


def _decode(data: bytes) -> tuple[Decoded | None, str]:
    """The samples of a whole file, or why it does not decode to its last frame."""
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            samples = sound.read(dtype="float32", always_2d=True)
            declared_frames, sample_rate, container = sound.frames, sound.samplerate, sound.format
    except (soundfile.SoundFileError, RuntimeError) as exc:  # libsndfile's errors, e.g. "flac decoder lost sync"
        return None, f"does not decode: {str(exc).strip()}"
    if len(samples) < declared_frames:
        return None, f"truncated: decoded {len(samples)} of {declared_frames} frames"
    if container == "WAV" and (missing := _wav_missing_bytes(data)):
        # libsndfile quietly shortens a WAV whose data chunk is cut; its header still tells the real length
        return None, f"truncated: the WAV data chunk lacks {missing} bytes"
    if len(samples) == 0:
        return None, "no audio frames"
    return Decoded(samples, sample_rate), ""


def _wav_missing_bytes(data: bytes) -> int:
    """Bytes that a RIFF/WAVE file's `data` chunk declares but the file does not hold."""
    position = 12  # after "RIFF", the RIFF size and "WAVE"
    while position + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, position)
        if chunk_id == b"data":
            return max(0, size - (len(data) - position - 8))
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    return 0


def _signal_checks(result: FileResult, decoded: Decoded, target_lufs: float, config: CheckConfig, *,
                   gate_loudness: bool) -> None:
    samples = decoded.samples
    clipped = int(np.count_nonzero(np.abs(samples) >= config.clip_level))
    clipped_ratio = clipped / samples.size
    result.check("clipping", clipped_ratio <= config.max_clipped_ratio,
                 f"{clipped} samples ({clipped_ratio:.2%}) at full scale (max {config.max_clipped_ratio:.2%})")

    silent = _silent_frames(decoded.mono, decoded.sample_rate, config)
    silence_ratio = float(silent.mean()) if silent.size else 1.0
    result.check("silence_ratio", silence_ratio <= config.max_silence_ratio,
                 f"{silence_ratio:.0%} of the audio is below {config.silence_floor_dbfs:g} dBFS "
                 f"(max {config.max_silence_ratio:.0%})")
    sounding = np.flatnonzero(~silent)
    if sounding.size:
        leading, trailing = sounding[0] * config.frame_s, (silent.size - 1 - sounding[-1]) * config.frame_s
    else:
        leading = trailing = decoded.duration_s
    result.check("edge_silence", max(leading, trailing) <= config.max_edge_silence_s,
                 f"{leading:.2f} s of leading and {trailing:.2f} s of trailing silence "
                 f"(max {config.max_edge_silence_s:g} s)")

    # Ungated loudness is measured and reported, but is no check: it gets no status, neither passed nor failed.
    result.loudness_gated = gate_loudness
    if decoded.duration_s < LOUDNESS_MIN_S:
        if gate_loudness:
            result.skip("loudness")  # BS.1770 has no integrated loudness for audio shorter than one 400 ms block
        return
    loudness = integrated_loudness(samples, decoded.sample_rate)
    result.loudness_lufs = loudness
    result.loudness_offset_lu = None if loudness is None else loudness - target_lufs
    if not gate_loudness:
        return
    if loudness is None:
        result.check("loudness", False, f"silent: no integrated loudness (target {target_lufs:g} LUFS)")
    else:
        result.check("loudness", abs(loudness - target_lufs) <= config.loudness_tolerance_lu,
                     f"integrated loudness {loudness:.1f} LUFS, target {target_lufs:g} "
                     f"± {config.loudness_tolerance_lu:g} LU")


def _silent_frames(mono: np.ndarray, sample_rate: int, config: CheckConfig) -> np.ndarray:
    """One boolean per frame: is its RMS level below the silence floor?"""
    frame = max(1, int(round(config.frame_s * sample_rate)))
    count = len(mono) // frame
    power = np.square(mono[:count * frame], dtype=np.float64).reshape(count, frame).mean(axis=1)
    return power < 10 ** (config.silence_floor_dbfs / 10)


def _speaking_rate_check(result: FileResult, duration_s: float, speech_words: list[str] | None,
                         config: CheckConfig) -> None:
    """Words per minute of the speech text over the audio: too fast means words are missing (truncated synthesis),
    too slow means the engine ran on (repeats, babble, long silences)."""
    if not speech_words:
        result.skip("speaking_rate")
        return
    rate = len(speech_words) / duration_s * 60
    result.check("speaking_rate", config.min_speaking_rate_wpm <= rate <= config.max_speaking_rate_wpm,
                 f"{rate:.0f} words per minute ({len(speech_words)} words in {duration_s:.1f} s); plausible: "
                 f"{config.min_speaking_rate_wpm:g}-{config.max_speaking_rate_wpm:g}")
