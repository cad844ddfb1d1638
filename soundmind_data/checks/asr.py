"""ASR round trip: transcribe audio and measure its word error rate against the speech text it should say.

Both sides are normalised the same way (`textkey.spoken_words`: case, punctuation and spacing folded) so that only
words count. Backends: pocketsphinx (offline, CPU, its English model ships in the wheel) and faster-whisper
(optional extra, a local or cached model).

Long audio is not transcribed whole: the first and last `asr_window_s` seconds and one seeded random window in
between are. Each window's transcript is aligned to the stretch of the reference text it best matches (the first
window pinned to the text's start, the last to its end) and the WER is the errors over the reference words of all
windows. Window edges are moved to the quietest moment nearby so that no window cuts a word in two.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import jiwer
import numpy as np

from soundmind_data.checks.config import CheckConfig
from soundmind_data.errors import UsageError
from soundmind_data.textkey import spoken_words
from soundmind_data.tts.audio import resample

ASR_RATE = 16000  # both backends take 16 kHz mono
BACKENDS = ("pocketsphinx", "whisper")
DEFAULT_WHISPER_MODEL = "base.en"
_ENERGY_FRAME_S = 0.01
_EDGE_SEARCH_S = 1.0  # how far a window edge may move to reach a quiet moment
_RATE_SLACK = 0.25  # spoken words per second vary this much from one window to another
_POSITION_SLACK = 0.1  # a window's words may sit this share of the text away from their proportional place


class PocketsphinxASR:
    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise UsageError("--asr pocketsphinx needs pocketsphinx: pip install 'soundmind-data[asr]'") from None
        self._decoder = Decoder()  # the US English model bundled with the wheel

    def transcribe(self, audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis else ""


class WhisperASR:
    def __init__(self, model: str | None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise UsageError("--asr whisper needs faster-whisper: pip install 'soundmind-data[whisper]'") from None
        model = model or DEFAULT_WHISPER_MODEL
        try:  # never downloads: a folder of a CTranslate2 model, or a name already in the Hugging Face cache
            self._model = WhisperModel(model, device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)
        except Exception as exc:  # faster-whisper raises whatever its loaders raise
            raise UsageError(f"--asr-model {model}: cannot load a faster-whisper model ({exc})") from None

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _info = self._model.transcribe(audio.astype(np.float32), language="en", beam_size=1,
                                                 condition_on_previous_text=False)
        return " ".join(segment.text for segment in segments)


def load_backend(name: str, model: str | None = None) -> PocketsphinxASR | WhisperASR:
    if name == "pocketsphinx":
        if model:
            raise UsageError("--asr-model is for --asr whisper; pocketsphinx uses the model in its wheel")
        return PocketsphinxASR()
    if name == "whisper":
        return WhisperASR(model)
    raise UsageError(f"--asr {name}: expected one of {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class RoundTrip:
    wer: float
    sample_s: float  # seconds of audio transcribed
    whole: bool  # False: measured on a bounded sample of long audio
    transcript: str  # what was heard (the windows' transcripts joined by " … " when sampled)


def round_trip(backend: PocketsphinxASR | WhisperASR, mono: np.ndarray, sample_rate: int, reference: list[str],
               config: CheckConfig, seed_key: str) -> RoundTrip:
    """Transcribe `mono` (whole, or a bounded sample when long) and score it against the normalised `reference`.

    `seed_key` (item id and field) picks the random window, so a result never depends on worker scheduling.
    """
    audio = resample(mono.astype(np.float32), sample_rate, ASR_RATE)
    duration = len(audio) / ASR_RATE
    energy = _frame_energy(audio)
    whole = duration <= config.asr_full_max_s
    windows = _whole_windows(duration, energy, config) if whole else _sample_windows(duration, energy, config, seed_key)
    heard = [spoken_words(backend.transcribe(audio[int(start * ASR_RATE):int(end * ASR_RATE)]))
             for start, end in windows]
    sample_s = sum(end - start for start, end in windows)
    if whole:
        hypothesis = [word for words in heard for word in words]
        wer = jiwer.wer(" ".join(reference), " ".join(hypothesis))
        return RoundTrip(wer, sample_s, True, " ".join(hypothesis))
    errors = reference_words = 0
    for (start, end), words in zip(windows, heard):
        window_errors, window_words = _window_errors(reference, words, start / duration, end / duration)
        errors += window_errors
        reference_words += window_words
    return RoundTrip(errors / max(reference_words, 1), sample_s, False, " … ".join(" ".join(w) for w in heard))


def _frame_energy(audio: np.ndarray) -> np.ndarray:
    frame = int(_ENERGY_FRAME_S * ASR_RATE)
    count = len(audio) // frame
    return np.square(audio[:count * frame], dtype=np.float64).reshape(count, frame).mean(axis=1)


def _quiet_point(energy: np.ndarray, t: float) -> float:
    """The quietest moment within _EDGE_SEARCH_S of time `t`."""
    low = max(0, int((t - _EDGE_SEARCH_S) / _ENERGY_FRAME_S))
    high = min(len(energy), int((t + _EDGE_SEARCH_S) / _ENERGY_FRAME_S) + 1)
    if low >= high:
        return t
    return (low + int(np.argmin(energy[low:high])) + 0.5) * _ENERGY_FRAME_S


def _whole_windows(duration: float, energy: np.ndarray, config: CheckConfig) -> list[tuple[float, float]]:
    """Consecutive windows covering all the audio, cut at quiet moments."""
    count = max(1, int(np.ceil(duration / config.asr_window_s)))
    cuts = [0.0] + [_quiet_point(energy, k * duration / count) for k in range(1, count)] + [duration]
    return list(zip(cuts[:-1], cuts[1:]))


def _sample_windows(duration: float, energy: np.ndarray, config: CheckConfig, seed_key: str) -> list[tuple[float, float]]:
    """The first and last window, and one seeded random window between them when there is room for it."""
    width = config.asr_window_s
    windows = [(0.0, _quiet_point(energy, width))]
    if duration - 2 * width > width:
        start = random.Random(f"{config.asr_seed}:{seed_key}").uniform(width, duration - 2 * width)
        windows.append((_quiet_point(energy, start), _quiet_point(energy, start + width)))
    windows.append((_quiet_point(energy, duration - width), duration))
    return windows


def _window_errors(reference: list[str], heard: list[str], start: float, end: float) -> tuple[int, int]:
    """(word errors, reference words) of one window covering the fraction [start, end] of the audio.

    The reference stretch is searched around where the window's share of the words should be; a window at the
    start (end) of the audio is pinned to the start (end) of the text.
    """
    total = len(reference)
    slack = int(_POSITION_SLACK * total) + 10
    low = 0 if start == 0 else max(0, int(total * start) - slack)
    high = total if end == 1 else min(total, int(np.ceil(total * end)) + slack)
    errors, span = _best_span(reference[low:high], heard, pin_start=start == 0, pin_end=end == 1)
    # A stretch much shorter than the window's share of words means words were not heard at its free edges
    # (a free edge lets the alignment drop them for nothing); count the shortfall as deletions.
    shortfall = max(0, int((1 - _RATE_SLACK) * total * (end - start)) - span)
    return errors + shortfall, span + shortfall


def _best_span(reference: list[str], heard: list[str], pin_start: bool, pin_end: bool) -> tuple[int, int]:
    """(edit distance, length) of the stretch of `reference` that `heard` matches with the fewest word edits.

    A word-level Levenshtein alignment whose start (end) in the reference is free unless pinned.
    """
    size = len(reference)
    # cost[j]: fewest edits aligning the words heard so far to a stretch ending before reference[j]
    cost = list(range(size + 1)) if pin_start else [0] * (size + 1)
    begin = [0] * (size + 1) if pin_start else list(range(size + 1))
    for word in heard:
        new_cost, new_begin = [cost[0] + 1], [begin[0]]
        for j in range(1, size + 1):
            match = cost[j - 1] + (reference[j - 1] != word)
            inserted = cost[j] + 1  # a word heard that the text does not have
            deleted = new_cost[j - 1] + 1  # a word of the text not heard
            best = min(match, inserted, deleted)
            new_cost.append(best)
            new_begin.append(begin[j - 1] if best == match else begin[j] if best == inserted else new_begin[j - 1])
        cost, begin = new_cost, new_begin
    end = size if pin_end else min(range(size + 1), key=cost.__getitem__)
    return cost[end], end - begin[end]
