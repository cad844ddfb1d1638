"""Entailment labels and the parser for a reasoning answer's final verdict.

One parser serves the audit, the reason stage and the RL reward, so that "what did this answer decide?" has one
answer everywhere in the toolkit.
"""

from __future__ import annotations

import re

NOT_ENTAILED = 0
ENTAILED = 1
LABEL_NAMES = ("not-entailed", "entailed")  # index = label, as in the SoundMind corpus and the HF ClassLabel

# Every spelling seen in LogiQA 2.0 NLI, SoundMind and model outputs, folded by _fold() below.
_WORDS = {"entailed": ENTAILED, "notentailed": NOT_ENTAILED}

# "Answer:" possibly wrapped in markdown bold or with a full-width colon: "**Answer:**", "Answer :", "answer："
_ANSWER_MARK = re.compile(r"answer\s*\**\s*[:：]", re.IGNORECASE)
# Between "not" and "entailed": spaces, ASCII or typographic hyphens/dashes (U+2010-2015, minus sign), underscores and
# zero-width characters, so "not‑entailed" written by a model with a non-breaking hyphen stays negative.
_JOINERS = "\\s\\-_\u2010-\u2015\u2212\u200b-\u200d\u2060"
_VERDICT = re.compile(
    rf"^[\s*_`\"'“”‘’(\[]*(not[{_JOINERS}]*entail(?:ed|ment)|entail(?:ed|ment))\b", re.IGNORECASE)
# What may close a final verdict: bold/italic markers, quotes, brackets, one full stop, whitespace.
_VERDICT_TAIL = re.compile(r"[\s*_`\"'“”‘’)\]]*\.?[\s*_`\"'“”‘’)\]]*\Z")


_FOLDED_AWAY = re.compile(rf"[{_JOINERS}*.]+")


def _fold(word: str) -> str:
    return _FOLDED_AWAY.sub("", word.lower())


def parse_label(value: object) -> int:
    """Turn a label as sources write it (0/1, "entailed", "not entailed", "not-entailed") into 0 or 1.

    Raises ValueError for anything else; booleans are refused because `True == 1` hides type mistakes.
    """
    if isinstance(value, bool):
        raise ValueError(f"unknown label {value!r}")
    if isinstance(value, int) and value in (NOT_ENTAILED, ENTAILED):
        return value
    if isinstance(value, str):
        folded = _fold(value)
        if folded in _WORDS:
            return _WORDS[folded]
    raise ValueError(f"unknown label {value!r}")


def parse_final_answer(text: str | None) -> int | None:
    """The verdict of the last "Answer:" in `text`: 1 entailed, 0 not entailed, None when undecidable.

    Only the last "Answer:" counts (models often restate the question's options earlier). "Not entailed" is tested
    before "entailed", so no spelling of a negative verdict ("not-entailed", "**Not Entailed.**") reads as positive.
    """
    match = _last_verdict(text)
    if not match:
        return None
    return NOT_ENTAILED if _fold(match.group(1)).startswith("not") else ENTAILED


def ends_with_final_answer(text: str | None) -> bool:
    """Whether `text` ends with its last "Answer:" and a strict verdict: "entailed" or "not entailed".

    The same parser as parse_final_answer, stricter on both sides: "entailment" does not count, and nothing may
    follow the verdict except bold markers, quotes, one full stop and whitespace ("Answer: **Not-Entailed.**" passes,
    "Answer: entailed, I think" does not).
    """
    match = _last_verdict(text)
    if not match or _fold(match.group(1)) not in _WORDS:
        return False
    return _VERDICT_TAIL.match(match.string, match.end()) is not None


def _last_verdict(text: str | None) -> re.Match | None:
    """The verdict right after the last "Answer:" mark, as a match on the text that follows the mark."""
    if not text:
        return None
    last = _last_answer_mark(text)
    return _VERDICT.match(text[last.end():]) if last else None


def _last_answer_mark(text: str) -> re.Match | None:
    """The last "Answer:" mark, found by searching backwards for the word (the reward scores tens of thousands of
    responses a second, and a forward case-insensitive regex scan of every response was the bottleneck)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters ("İ") lengthen when lowered: positions would not line up
        last = None
        for last in _ANSWER_MARK.finditer(text):
            pass
        return last
    end = len(lowered)
    while (start := lowered.rfind("answer", 0, end)) >= 0:
        mark = _ANSWER_MARK.match(text, start)
        if mark:
            return mark
        end = start + len("answer") - 1  # next, the occurrences that start before this one
    return None
