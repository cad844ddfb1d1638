"""The SoundMind-RL reward, one function per component, and their weighted sum.

Components (each in [0, 1]):

- format: exactly one `<think>…</think>` at the start, followed by a final answer that ends with
  "Answer: entailed" or "Answer: not entailed" (case, hyphen, bold markers and a trailing period tolerated);
- answer: the parsed final decision equals the label ("undecidable" never earns it);
- text length: min(1, tokens / reference_tokens), tokens being whitespace-separated words so that the score does not
  depend on which model's tokenizer produced the text;
- audio format: the model's audio is a non-empty, finite waveform at a plausible sample rate that contains speech;
- audio length: min(1, speech_seconds / reference_seconds), speech measured by an energy VAD on the model's audio.

A component that does not apply to a response (no audio output, no reference length) is None and adds nothing to
the total: a text-only policy is scored on format, answer and text length, exactly as SoundMind-RL scores its
text-output runs. Everything here is plain Python and numpy so that scoring stays far above 20,000 responses/s.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from soundmind_data.core.labels import ENTAILED, NOT_ENTAILED, ends_with_final_answer, parse_final_answer, parse_label

UNDECIDABLE = "undecidable"
# The verdict a final answer states, as words (not curate's decisions, which corpus.DECISIONS names).
VERDICT_WORDS = {ENTAILED: "entailed", NOT_ENTAILED: "not entailed", None: UNDECIDABLE}

# Audio as the reward takes it: a path to a file soundfile can read, that file's bytes, or (samples, sample_rate).
Audio = Union[str, Path, bytes, tuple[np.ndarray, int]]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_LEADING_SPACE = re.compile(r"\s*")

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 192_000


@dataclass(frozen=True)
class RewardWeights:
    """SoundMind-RL's weights by default; every one can be overridden (a weight of 0 switches a component off)."""

    format: float = 1.0
    audio_format: float = 0.5
    answer: float = 2.0
    text_length: float = 1.0
    audio_length: float = 0.75

    @classmethod
    def from_mapping(cls, values: Mapping[str, float] | None) -> "RewardWeights":
        """Weights from a mapping of component -> weight, the others at their defaults. A ValueError names what is
        wrong: an unknown component (a typo must not pass silently) or a weight that is not a non-negative number."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise ValueError(f"reward weights: expected a mapping of component -> weight, got {type(values).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(map(str, set(values) - set(known)))
        if unknown:
            raise ValueError(f"unknown reward weight(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for name, value in values.items():
            # bool is an int: `answer: true` in a config is a mistake, not a weight of 1
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"reward weight {name}: expected a non-negative number, got {value!r}")
        return cls(**{name: float(value) for name, value in values.items()})


@dataclass(frozen=True)
class GroundTruth:
    """What a response is scored against: the label and, optionally, the reference answer's lengths."""

    label: int
    reference_tokens: int | None = None
    reference_seconds: float | None = None

    @classmethod
    def parse(cls, value: Any) -> "GroundTruth":
        """Accept what the adapters receive: a label (0/1, "entailed", "not-entailed"...), or a mapping (or its JSON
        string) with either `label` or `ground_truth` (itself any of these), and optional reference lengths, read as
        `completed` reads them. So each column of our verl export is a ground truth on its own: `reward_model`
        ({"style": "rule", "ground_truth": "entailed"}) and `extra_info` (`label`, `answer_text`, `answer_duration_s`),
        which is what OpenRLHF passes as the label with `--data.label_key reward_model` or `--data.label_key extra_info`.
        Raises ValueError for anything else."""
        if isinstance(value, GroundTruth):
            return value
        if isinstance(value, str) and value.lstrip().startswith("{"):  # parquet columns often carry JSON strings
            value = json.loads(value)
        if isinstance(value, Mapping):
            if value.get("label") is not None:
                truth = cls(parse_label(value["label"]))
            elif value.get("ground_truth") is not None:  # verl's reward_model column
                truth = cls.parse(value["ground_truth"])
            else:
                raise ValueError("ground truth mapping has neither 'label' nor 'ground_truth'")
            return truth.completed(value)
        return cls(parse_label(value))

    def completed(self, extra: Mapping[str, Any] | None) -> "GroundTruth":
        """The reference lengths this truth lacks, taken from the row beside it (verl's `extra_info`, a TRL column,
        a published row) or from its own mapping: `reference_tokens`, else the words of `reference_text`, else those
        of `answer_text`; `reference_seconds`, else `answer_duration_s` (the reference answer audio's duration, as
        `export --format verl` and `publish` write it). A missing, empty, zero, negative or non-finite reference is no
        reference: one odd row must not fail a whole training batch.
        """
        if not extra:
            return self
        tokens = self.reference_tokens
        if tokens is None:
            text = extra.get("reference_text") or extra.get("answer_text")
            tokens = extra.get("reference_tokens") or (count_tokens(text) if text else None)
        seconds = self.reference_seconds
        if seconds is None:
            seconds = extra.get("reference_seconds") or extra.get("answer_duration_s")
        return GroundTruth(self.label, _positive(tokens, int), _positive(seconds, float))


def _positive(value: Any, kind: type) -> Any:
    """`value` as `kind` if it is a finite number above 0, else None."""
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


@dataclass(frozen=True)
class RewardBreakdown:
    """Each component's score (None where it does not apply), the weighted total and the parsed decision."""

    format: float
    answer: float
    text_length: float | None
    audio_format: float | None
    audio_length: float | None
    total: float
    decision: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def best_total(self, weights: RewardWeights) -> float:
        """The highest total a response could reach with the same applicable components (for scores in [0, 1])."""
        return sum(getattr(weights, name) for name in COMPONENTS if getattr(self, name) is not None)


COMPONENTS = ("format", "answer", "text_length", "audio_format", "audio_length")


def decision(response: str | None) -> str:
    """"entailed", "not entailed" or "undecidable": the verdict of the response's last "Answer:"."""
    return VERDICT_WORDS[parse_final_answer(response)]


def format_reward(response: str | None) -> float:
    """1.0 when the response is one `<think>…</think>` (non-empty reasoning) then a final answer ending with a strict
    "Answer: entailed" / "Answer: not entailed"; else 0.0."""
    if not response or response.count(_THINK_OPEN) != 1 or response.count(_THINK_CLOSE) != 1:
        return 0.0
    start = _LEADING_SPACE.match(response).end()
    if not response.startswith(_THINK_OPEN, start):
        return 0.0
    close = response.find(_THINK_CLOSE)
    thought = response[start + len(_THINK_OPEN):close]
    final = response[close + len(_THINK_CLOSE):]
    if not thought.strip():
        return 0.0
    return 1.0 if ends_with_final_answer(final) else 0.0


def in_format(answer: str, label: int) -> str:
    """A reference answer laid out as format_reward wants it: its reasoning inside one `<think>…</think>`, then its
    last line when that line is the final answer for `label`, else "Answer: <label>". What supervised steps teach:
    corpus answers end with an "Answer:" line but carry no think tags (a tag inside the answer is dropped, so that
    exactly one pair remains)."""
    body = answer.replace(_THINK_OPEN, " ").replace(_THINK_CLOSE, " ").strip()
    reasoning, _, last = body.rpartition("\n")
    if not (reasoning.strip() and ends_with_final_answer(last) and parse_final_answer(last) == label):
        reasoning, last = body, f"Answer: {VERDICT_WORDS[label]}"
    return f"{_THINK_OPEN} {reasoning.strip()} {_THINK_CLOSE} {last.strip()}"


def answer_reward(response: str | None, label: Any) -> float:
    """1.0 when the parsed final decision equals the label; an undecidable response scores 0.0."""
    verdict = parse_final_answer(response)
    return 1.0 if verdict is not None and verdict == parse_label(label) else 0.0


def count_tokens(text: str | None) -> int:
    """Whitespace-separated words: a tokenizer-free token count, comparable across models."""
    return len(text.split()) if text else 0


def text_length_reward(response: str | None, reference_tokens: int) -> float:
    """min(1, tokens / reference_tokens): rewards reasoning as long as the reference, and no longer."""
    if reference_tokens <= 0:
        raise ValueError(f"reference_tokens must be positive, got {reference_tokens}")
    return min(1.0, count_tokens(response) / reference_tokens)


def load_audio(audio: Audio) -> tuple[np.ndarray, int]:
    """(mono float samples, sample rate) from a path, a file's bytes (a published row embeds its FLAC) or a
    (samples, sample_rate) pair."""
    if isinstance(audio, (str, Path, bytes)):
        import soundfile

        source = io.BytesIO(audio) if isinstance(audio, bytes) else str(audio)
        samples, sample_rate = soundfile.read(source, dtype="float32", always_2d=True)
        return samples.mean(axis=1), int(sample_rate)
    samples, sample_rate = audio
    samples = np.asarray(samples, dtype=np.float32)
    return (samples.mean(axis=1) if samples.ndim == 2 else samples), int(sample_rate)


def resampled(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `target` Hz (what a model's audio processor expects)."""
    import soxr

    return samples if rate == target else soxr.resample(samples, rate, target)


def speech_seconds(samples: np.ndarray, sample_rate: int, *, frame_ms: float = 30.0, floor_db: float = -45.0,
                   dynamic_range_db: float = 30.0) -> float:
    """Seconds of speech in a mono waveform, by an energy VAD.

    A 30 ms frame counts as speech when its RMS level is above `floor_db` dBFS and within `dynamic_range_db` of the
    loudest frame: the absolute floor rejects hiss in silent clips, the relative one rejects background noise under
    loud speech. Crude next to a neural VAD, but it needs no model and measures a TTS or speech-LM output well.
    """
    samples = np.asarray(samples, dtype=np.float32)
    frame = max(1, int(sample_rate * frame_ms / 1000))
    count = len(samples) // frame
    if count == 0:
        return 0.0
    frames = samples[: count * frame].reshape(count, frame).astype(np.float64)
    level_db = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    threshold = max(floor_db, level_db.max() - dynamic_range_db)
    return float(np.count_nonzero(level_db > threshold) * frame / sample_rate)


def audio_format_reward(audio: Audio | None) -> float:
    """1.0 when the model produced usable audio: decodable, non-empty, finite, at 8-192 kHz, with some speech."""
    if audio is None:
        return 0.0
    try:
        samples, sample_rate = load_audio(audio)
    except (OSError, RuntimeError, ValueError, TypeError):  # unreadable file or malformed pair: not usable audio
        return 0.0
    if samples.ndim != 1 or samples.size == 0 or not np.isfinite(samples).all():
        return 0.0
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        return 0.0
    return 1.0 if speech_seconds(samples, sample_rate) > 0 else 0.0


def audio_length_reward(audio: Audio | None, reference_seconds: float) -> float:
    """min(1, speech_seconds / reference_seconds); unusable audio scores 0.0."""
    if reference_seconds <= 0:
        raise ValueError(f"reference_seconds must be positive, got {reference_seconds}")
    if not audio_format_reward(audio):
        return 0.0
    samples, sample_rate = load_audio(audio)
    return min(1.0, speech_seconds(samples, sample_rate) / reference_seconds)


def score(response: str | None, ground_truth: Any, *, audio: Audio | None = None, audio_expected: bool = False,
          weights: RewardWeights = RewardWeights()) -> RewardBreakdown:
    """Every component and the weighted total for one response.

    Audio components apply when the model was meant to speak (`audio_expected`, or `audio` given): then a missing
    audio scores 0.0 rather than being skipped. Audio length also needs the reference's seconds, text length the
    reference's tokens.
    """
    truth = GroundTruth.parse(ground_truth)
    verdict = parse_final_answer(response)  # parsed once: the answer component and the reported decision share it
    parts: dict[str, float | None] = {
        "format": format_reward(response),
        "answer": 1.0 if verdict == truth.label else 0.0,
        "text_length": None if truth.reference_tokens is None else text_length_reward(response, truth.reference_tokens),
        "audio_format": None,
        "audio_length": None,
    }
    if audio is not None or audio_expected:
        parts["audio_format"] = audio_format_reward(audio)
        if truth.reference_seconds is not None:
            parts["audio_length"] = audio_length_reward(audio, truth.reference_seconds)
    total = sum(getattr(weights, name) * value for name, value in parts.items() if value is not None)
    return RewardBreakdown(**parts, total=total, decision=VERDICT_WORDS[verdict])
