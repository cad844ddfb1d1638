"""Gold labels and the answer rules: the gold files of LogiQA 2.0 NLI (matched by normalised triplet), an item's
fields as the checks need them, and whether its answer's final verdict agrees with its label. One rule for audit,
curate, reason, validate and add, so that every command judges an answer alike."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_lines
from soundmind_data.core.labels import LABEL_NAMES, parse_final_answer
from soundmind_data.engines.source_records import Reject, logiqa_fields
from soundmind_data.text.textkey import text_key


def load_gold(paths: Iterable[str | Path]) -> dict[int, int]:
    """Normalised triplet key → gold label from LogiQA 2.0 NLI files; their bad lines are skipped (they match
    nothing).

    A file with no usable line at all is a usage error: most likely a file of another format, which would otherwise
    pass for a gold file that agrees with everything.
    """
    gold: dict[int, int] = {}
    for path in paths:
        usable, first_problem = 0, None
        for line in iter_lines(path):
            try:
                if line.error:
                    raise Reject(line.error)
                label, major, minor, conclusion = logiqa_fields(line.record)
            except Reject as exc:
                first_problem = first_problem or f"line {line.number}: {exc}"
                continue
            gold[text_key(major, minor, conclusion)] = label
            usable += 1
        if not usable:
            raise UsageError(f"{path}: no usable LogiQA 2.0 NLI line ({first_problem or 'empty file'}); "
                             "--gold takes LogiQA 2.0 NLI files")
    return gold


_TEXT_FIELDS = ("id", "split", "major_premise", "minor_premise", "conclusion", "question_text")


def checked_item(line) -> dict:
    """The line's item, or a DataError naming file, line and field: the audit needs these fields well typed."""
    item = line.record
    for name in _TEXT_FIELDS:
        if not isinstance(item.get(name), str):
            raise DataError(f"{line.file}:{line.number}: {name}: missing or not a string (see `soundmind-data validate`)")
    if item.get("label") not in (0, 1) or isinstance(item.get("label"), bool):
        raise DataError(f"{line.file}:{line.number}: label: expected 0 or 1, got {item.get('label')!r}")
    if item.get("answer_text") is not None and not isinstance(item["answer_text"], str):
        raise DataError(f"{line.file}:{line.number}: answer_text: expected a string or null")
    return item


def answer_check(item: dict, label: int | None = None) -> str | None:
    """Which answer check an item fails (answer_missing, answer_undecidable, answer_label_disagree), or None; against
    `label` when given (a label curate is about to give it), else the item's own."""
    answer = item.get("answer_text")
    if not answer or not answer.strip():
        return "answer_missing"
    verdict = parse_final_answer(answer)
    if verdict is None:
        return "answer_undecidable"
    return "answer_label_disagree" if verdict != (item["label"] if label is None else label) else None


_DISAGREEMENTS = {
    "answer_label_disagree": "the answer's final verdict contradicts the label {label} ({name})",
    "answer_undecidable": "the answer has no final 'Answer: entailed / not entailed' verdict",
}


def answer_disagreement(item: dict) -> str | None:
    """Why an item's answer fails the strict check (no final verdict, or one against the label), as a sentence;
    None when it agrees or when there is no answer."""
    problem = answer_check(item)
    if problem not in _DISAGREEMENTS:
        return None
    return _DISAGREEMENTS[problem].format(label=item["label"], name=LABEL_NAMES[item["label"]])
