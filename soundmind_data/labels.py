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
_VERDICT = re.compile(r"^[\s*_`\"'“”‘’(\[]*(not[\s\-_]*entail(?:ed|ment)|entail(?:ed|ment))\b", re.IGNORECASE)


def _fold(word: str) -> str:
    return re.sub(r"[\s\-_*.]+", "", word.lower())


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
    if not text:
        return None
    marks = list(_ANSWER_MARK.finditer(text))
    if not marks:
        return None
    rest = text[marks[-1].end():]
    match = _VERDICT.match(rest)
    if not match:
        return None
    return NOT_ENTAILED if _fold(match.group(1)).startswith("not") else ENTAILED
