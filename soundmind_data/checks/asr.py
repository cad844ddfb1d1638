"""ASR round trip: transcribe audio and measure its word error rate against the speech text it should say.

Both sides are normalised with Whisper's English text normaliser (the one of the Whisper paper and the Open ASR
leaderboard, from the `whisper-normalizer` package): case, punctuation, spelling variants and spoken numbers are
folded, so that only words count. Brackets are pauses in speech text, so they become commas first (the
normaliser would drop the words between them), and each clause is normalised on its own.

Judges (`JUDGES`, each module's `BACKEND` a `Judge`):
- **whisper** (the default, `whisper_asr`): faster-whisper running Whisper `tiny.en`, or any CTranslate2 Whisper
  model given as `model`. Never downloads.
- **pocketsphinx** (`pocketsphinx_asr`): offline CPU ASR whose US English model ships in the wheel; it hears logic
  poorly.

Audio is transcribed whole unless it is longer than the judge's `asr_full_max_s` (pocketsphinx: 120 s; whisper:
no limit): then the first and last `asr_window_s` seconds and one seeded random window in between are. Each
window's transcript is aligned to the stretch of the reference text it best matches (the first window pinned to
the text's start, the last to its end) and the WER is the errors over the reference words of all windows. Window
edges are moved to the quietest moment nearby so that no window cuts a word in two.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from soundmind_data.checks.config import CheckConfig
from soundmind_data.checks.phonemes import aligned_span, own_span, phoneme_error_rate
from soundmind_data.core.errors import UsageError
from soundmind_data.core.registry import Registry
from soundmind_data.text.template import render_clean
from soundmind_data.tts.audio import resample

ASR_RATE = 16000  # every judge takes 16 kHz mono
# Imported only when judged with (core.registry); the wording is what validate has always said of an unknown judge.
JUDGES = Registry("--asr", {
    "whisper": "soundmind_data.checks.whisper_asr",
    "pocketsphinx": "soundmind_data.checks.pocketsphinx_asr",
}, wording="{option} {name}: expected one of {choices}")
_ENERGY_FRAME_S = 0.01
_EDGE_SEARCH_S = 1.0  # how far a window edge may move to reach a quiet moment
_RATE_SLACK = 0.25  # spoken words per second vary this much from one window to another
_POSITION_SLACK = 0.1  # a window's words may sit this share of the text away from their proportional place
_BRACKETS = re.compile(r"[()\[\]{}<>]")
_CLAUSE_END = re.compile(r"[,;:.!?](?:\s+|$)")

Windows = list[tuple[float, float]]  # (start, end) in seconds


@lru_cache(maxsize=1)
def _whisper_normaliser():
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError:
        raise UsageError("--asr needs whisper-normalizer: pip install 'soundmind-data[asr]'") from None
    return EnglishTextNormalizer()


def wer_words(text: str) -> list[str]:
    """`text` as the WER compares it: Whisper's English normalisation, brackets read as pauses, clause by clause
    (whole, it would join the numbers of "in nineteen ninety eight, forty five percent" into "199845%")."""
    normalise = _whisper_normaliser()
    return [word for clause in _CLAUSE_END.split(_BRACKETS.sub(", ", text)) for word in normalise(clause).split()]


@lru_cache(maxsize=1)
def template_words() -> frozenset[str]:
    """The words of the SoundMind question template without its fields."""
    from soundmind_data.text.speech_text import to_speech_text

    return frozenset(wer_words(to_speech_text(render_clean("", "", ""))))


def own_words(fields: list[str]) -> frozenset[str]:
    """The words of an item's premises and conclusion (speech texts) that the template does not have."""
    return frozenset(word for field in fields for word in wer_words(field)) - template_words()


class Judge(ABC):
    """One loaded ASR model, built as `BACKEND(model, device, hotwords)`: `model` None for its default, `hotwords`
    the domain's fixed vocabulary for a judge that can lean on one."""

    name: str  # its name in JUDGES, which CheckConfig's bounds are keyed by
    max_window_s: float | None  # the longest window it hears whole; None: any

    @staticmethod
    @abstractmethod
    def problems(model: str | None, device: str, second_opinion: bool) -> list[str]:
        """What keeps this judge (with `model`, on `device`) from running here, one line each, found without loading
        a model (`judge_problems`)."""

    @abstractmethod
    def transcribe(self, audio: np.ndarray, windows: Windows) -> list[str]:
        """One transcript per window (start, end in seconds) of `audio`, 16 kHz mono."""


def load_judge(name: str, model: str | None = None, device: str = "cpu", hotwords: tuple[str, ...] = ()) -> Judge:
    if problems := judge_problems(name, model, device):
        raise UsageError(problems[0])
    return JUDGES.load(name)(model, device, hotwords)


def judge_problems(name: str, model: str | None = None, device: str = "cpu", *,
                   second_opinion: bool = False) -> list[str]:
    """What keeps the judge `name` from running here, one line each, found without loading a model (a pipeline asks
    before its first stage): see each judge's `problems`; `second_opinion`: Whisper base's too, where it would
    hear again what the bundled tiny.en fails."""
    if problem := JUDGES.unknown(name):
        return [problem]
    return JUDGES.load(name).problems(model, device, second_opinion)


@dataclass(frozen=True)
class RoundTrip:
    wer: float
    per: float | None  # phoneme error rate, the gate (None when sampled: long audio is judged by its WER)
    own_per: float | None  # the PER of the stretch holding the item's own words (None: sampled, or it has none)
    sample_s: float  # seconds of audio transcribed
    whole: bool  # False: measured on a bounded sample of long audio
    transcript: str  # what was heard (the windows' transcripts joined by " … " when sampled)
    # Heard whole: where the transcript differs from the speech text, as the WER counted it. Each edit is
    # (start, end, said): the transcript's words [start:end] stand where the text said `said` (an empty range: words
    # not heard; an empty `said`: words heard that were not said). None when sampled.
    edits: list[tuple[int, int, str]] | None = None
    # Heard whole: what flips the meaning although it costs few phonemes (a verdict or a negation heard otherwise)
    meaning: tuple[str, ...] = ()


# One word that flips an item's logic costs a few phonemes of a long file: counted apart, so that "did attend" for
# "did not attend", or "Answer: not entailed" for "Answer: entailed", fails however clean the rest is.
NEGATIONS = frozenset({"not", "no", "never"})  # the plain ones: rarer ("none", "nor") are misheard more than flipped
VERDICT_WORD = "entailed"


def _verdict(words: list[str]) -> str | None:
    """The last verdict a text says: "not entailed" or "entailed"; None when it says none."""
    for index in range(len(words) - 1, -1, -1):
        if words[index] == VERDICT_WORD:
            return "not entailed" if index and words[index - 1] == "not" else "entailed"
    return None


def meaning_flips(said: list[str], heard: list[str]) -> tuple[str, ...]:
    """How `heard` says otherwise than `said` in the words that carry the logic: its final verdict, and how many
    negations it has (normalised words: "didn't" is "did not")."""
    flips = []
    said_verdict, heard_verdict = _verdict(said), _verdict(heard)
    if said_verdict and heard_verdict != said_verdict:
        flips.append(f"heard the verdict {heard_verdict or 'nowhere'!r} where the text says {said_verdict!r}")
    said_negations = sum(word in NEGATIONS for word in said)
    heard_negations = sum(word in NEGATIONS for word in heard)
    if said_negations != heard_negations:
        flips.append(f"heard {heard_negations} negation(s) where the text has {said_negations}")
    return tuple(flips)


def word_errors(said: list[str], heard: list[str]) -> tuple[float, list[tuple[int, int, str]]]:
    """The WER of `heard` against `said` (both normalised words) and the edits that make it (RoundTrip.edits)."""
    if not said:
        return float(bool(heard)), [(0, len(heard), "")] if heard else []
    import jiwer  # the asr extra: imported where used, so that judge_problems can say it is missing

    output = jiwer.process_words(" ".join(said), " ".join(heard))
    return output.wer, [(chunk.hyp_start_idx, chunk.hyp_end_idx, " ".join(said[chunk.ref_start_idx:chunk.ref_end_idx]))
                        for chunk in output.alignments[0] if chunk.type != "equal"]


def round_trip(judge: Judge, mono: np.ndarray, sample_rate: int, reference: str,
               config: CheckConfig, seed_key: str, own: frozenset[str] = frozenset()) -> RoundTrip:
    """Transcribe `mono` (whole, or a bounded sample when long) and score it against the speech text `reference`:
    WER and PER over the whole text, and PER over the stretch holding the item's `own` words (`phonemes.own_words`).

    `seed_key` (item id and field) picks the random window, so a result never depends on worker scheduling.
    """
    audio = resample(mono.astype(np.float32), sample_rate, ASR_RATE)
    duration = len(audio) / ASR_RATE
    energy = _frame_energy(audio)
    window_s = min(config.asr_window_s, judge.max_window_s or config.asr_window_s)
    full_max_s = config.asr_full_max_s.get(judge.name)
    whole = full_max_s is None or duration <= full_max_s
    windows = (_whole_windows(duration, energy, window_s) if whole
               else _sample_windows(duration, energy, window_s, f"{config.asr_seed}:{seed_key}"))
    reference_words = wer_words(reference)
    heard = [wer_words(text) for text in judge.transcribe(audio, windows)]
    sample_s = sum(end - start for start, end in windows)
    if whole:
        hypothesis = [word for words in heard for word in words]
        wer, edits = word_errors(reference_words, hypothesis)
        span = own_span(reference_words, own)
        own_per = None
        if span is not None:
            heard_start, heard_end = aligned_span(reference_words, hypothesis, *span)
            own_per = phoneme_error_rate(reference_words[span[0]:span[1]], hypothesis[heard_start:heard_end])
        return RoundTrip(wer, phoneme_error_rate(reference_words, hypothesis), own_per, sample_s, True,
                         " ".join(hypothesis), edits, meaning_flips(reference_words, hypothesis))
    errors = counted = 0
    for (start, end), words in zip(windows, heard):
        window_errors, window_words = _window_errors(reference_words, words, start / duration, end / duration)
        errors += window_errors
        counted += window_words
    return RoundTrip(errors / max(counted, 1), None, None, sample_s, False, " … ".join(" ".join(w) for w in heard))


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


def _whole_windows(duration: float, energy: np.ndarray, width: float) -> Windows:
    """Consecutive windows covering all the audio, cut at quiet moments."""
    count = max(1, int(np.ceil(duration / width)))
    cuts = [0.0] + [_quiet_point(energy, k * duration / count) for k in range(1, count)] + [duration]
    return list(zip(cuts[:-1], cuts[1:]))


def _sample_windows(duration: float, energy: np.ndarray, width: float, seed: str) -> Windows:
    """The first and last window, and one seeded random window between them when there is room for it."""
    windows = [(0.0, _quiet_point(energy, width))]
    if duration - 2 * width > width:
        start = random.Random(seed).uniform(width, duration - 2 * width)
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
