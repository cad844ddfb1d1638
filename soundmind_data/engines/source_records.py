"""The field rules of source annotation lines (LogiQA 2.0 NLI, SoundMind): what ingest turns into items, and what a
gold file (audit, curate, reason) is matched by. A line that breaks a rule raises `Reject` with the reason."""

from __future__ import annotations

from soundmind_data.core.labels import parse_label
from soundmind_data.text.template import clean_field, join_major_premise


class Reject(Exception):
    """A source line that cannot become an item; the message is the reason written to the rejects file."""


def string_field(record: dict, name: str) -> str:
    if name not in record:
        raise Reject(f"{name}: missing")
    value = record[name]
    if not isinstance(value, str):
        raise Reject(f"{name}: expected a string, got {type(value).__name__}")
    return value


def label_field(record: dict, expected: type) -> int:
    """The 0/1 label of a line whose label is a word (`expected=str`, LogiQA) or a number (`int`, SoundMind)."""
    if "label" not in record:
        raise Reject("label: missing")
    if not isinstance(record["label"], expected) or isinstance(record["label"], bool):
        raise Reject(f"label: expected {'a word' if expected is str else '0 or 1'}, got {record['label']!r}")
    try:
        return parse_label(record["label"])
    except ValueError as exc:
        raise Reject(f"label: {exc}") from None


def _major_premise(record: dict) -> str:
    if "major_premise" not in record:
        raise Reject("major_premise: missing")
    value = record["major_premise"]
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return join_major_premise(value)
    raise Reject("major_premise: expected a string or a list of strings")


def logiqa_fields(record: dict) -> tuple[int, str, str, str]:
    """The label and the (major, minor, conclusion) of a LogiQA 2.0 NLI line, as the question template quotes them:
    what an item of it holds, and what a gold file is matched by."""
    label = label_field(record, str)
    major = clean_field(_major_premise(record))
    minor = clean_field(string_field(record, "minor_premise"))
    conclusion = clean_field(string_field(record, "conclusion"))
    if not conclusion:  # judged after the template's trimming, which makes "." empty too
        raise Reject("conclusion: empty")
    return label, major, minor, conclusion
