"""Audit: the curation checks the published SoundMind corpus never had.

Counts items whose chain-of-thought verdict contradicts their label, items whose label differs from the source's
gold label (LogiQA 2.0 NLI files given with --gold), duplicate triplets within a split, triplets leaking across
splits, and text a TTS voice cannot speak as is.

Memory stays small as the corpus grows: the first pass keeps 10 bytes per item (a 64-bit triplet key and a split
code in numpy-ready arrays); duplicates and leaks are found by sorting those, and a second pass fetches only the
ids of the offending items.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from soundmind_data.errors import DataError
from soundmind_data.jsonl import iter_lines, iter_selected
from soundmind_data.labels import parse_final_answer
from soundmind_data.speakable import unspeakable_chars
from soundmind_data.stages.ingest import Reject, from_logiqa
from soundmind_data.textkey import triplet_key

CHECKS = ("answer_label_disagree", "answer_missing", "answer_undecidable", "gold_disagree", "duplicates",
          "cross_split_leaks", "unspeakable")


@dataclass
class AuditReport:
    manifest: str
    gold_files: list[str] = field(default_factory=list)
    items: int = 0
    splits: dict[str, dict[int, int]] = field(default_factory=dict)
    gold_matched: int = 0
    ids: dict[str, list[str]] = field(default_factory=lambda: {check: [] for check in CHECKS})
    duplicate_groups: list[list[str]] = field(default_factory=list)
    leak_groups: list[dict[str, list[str]]] = field(default_factory=list)

    def count(self, check: str) -> int:
        return len(self.ids[check])

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "gold_files": self.gold_files,
            "items": self.items,
            "splits": {split: {str(k): v for k, v in labels.items()} for split, labels in self.splits.items()},
            "gold_matched": self.gold_matched,
            **{check: self.count(check) for check in CHECKS},
            "ids": self.ids,
            "duplicate_groups": self.duplicate_groups,
            "leak_groups": self.leak_groups,
        }


def load_gold(paths: Iterable[str | Path]) -> dict[int, int]:
    """Normalised triplet key → gold label from LogiQA 2.0 NLI files (their bad lines are skipped: they match nothing)."""
    gold: dict[int, int] = {}
    for path in paths:
        for line in iter_lines(path):
            if line.error:
                continue
            try:
                item = from_logiqa(line.record, split="gold", file=str(path), line=line.number, id_prefix="gold")
            except Reject:
                continue
            gold[triplet_key(item)] = item["label"]
    return gold


_TEXT_FIELDS = ("id", "split", "major_premise", "minor_premise", "conclusion", "question_text")


def _checked_item(line) -> dict:
    """The line's item, or a DataError naming file, line and field: the audit needs these fields well typed."""
    if line.error:
        raise DataError(f"{line.file}:{line.number}: {line.error}")
    item = line.record
    for name in _TEXT_FIELDS:
        if not isinstance(item.get(name), str):
            raise DataError(f"{line.file}:{line.number}: {name}: missing or not a string (see `soundmind-data validate`)")
    if item.get("label") not in (0, 1) or isinstance(item.get("label"), bool):
        raise DataError(f"{line.file}:{line.number}: label: expected 0 or 1, got {item.get('label')!r}")
    if not isinstance(item.get("answer_text") or "", str):
        raise DataError(f"{line.file}:{line.number}: answer_text: expected a string or null")
    return item


def answer_check(item: dict) -> str | None:
    """Which answer check an item fails (answer_missing, answer_undecidable, answer_label_disagree), or None."""
    answer = item.get("answer_text")
    if not answer or not answer.strip():
        return "answer_missing"
    verdict = parse_final_answer(answer)
    if verdict is None:
        return "answer_undecidable"
    return "answer_label_disagree" if verdict != item["label"] else None


def audit_manifest(
    path: str | Path,
    *,
    gold_files: Iterable[str | Path] = (),
    on_item: Callable[[], None] | None = None,
) -> AuditReport:
    gold_files = [str(g) for g in gold_files]
    report = AuditReport(manifest=str(path), gold_files=gold_files)
    gold = load_gold(gold_files)
    split_codes: dict[str, int] = {}
    keys = array("q")
    split_of = array("H")

    for line in iter_lines(path):
        if on_item:
            on_item()
        item = _checked_item(line)
        report.items += 1
        split = item["split"]
        code = split_codes.setdefault(split, len(split_codes))
        report.splits.setdefault(split, {0: 0, 1: 0})[item["label"]] += 1
        key = triplet_key(item)
        keys.append(key)
        split_of.append(code)
        problem = answer_check(item)
        if problem:
            report.ids[problem].append(item["id"])
        if key in gold:
            report.gold_matched += 1
            if gold[key] != item["label"]:
                report.ids["gold_disagree"].append(item["id"])
        if unspeakable_chars(item["question_text"]) or unspeakable_chars(item.get("answer_text") or ""):
            report.ids["unspeakable"].append(item["id"])

    duplicate_groups, leak_groups = _group_repeats(np.frombuffer(keys, dtype=np.int64), np.frombuffer(split_of, dtype=np.uint16))
    if duplicate_groups or leak_groups:
        _fill_group_ids(path, report, duplicate_groups, leak_groups)
    return report


def _group_repeats(keys: np.ndarray, splits: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Item indices grouped by triplet: groups repeated within one split, and groups spanning several splits."""
    if len(keys) == 0:
        return [], []
    order = np.lexsort((np.arange(len(keys)), splits, keys))  # by key, then split, then file order
    sorted_keys, sorted_splits = keys[order], splits[order]
    key_starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    key_sizes = np.diff(np.r_[key_starts, len(keys)])
    duplicates, leaks = [], []
    for start, size in zip(key_starts[key_sizes > 1], key_sizes[key_sizes > 1]):
        members, member_splits = order[start:start + size], sorted_splits[start:start + size]
        split_starts = np.flatnonzero(np.r_[True, member_splits[1:] != member_splits[:-1]])
        for part in np.split(members, split_starts[1:]):
            if len(part) > 1:
                duplicates.append(part)
        if len(split_starts) > 1:
            leaks.append(members)
    return duplicates, leaks


def _fill_group_ids(path, report: AuditReport, duplicates, leaks) -> None:
    """Second pass: turn item indices into ids, for the offending items only."""
    wanted = {int(i) for group in duplicates + leaks for i in group}
    ids = {index: (item["id"], item["split"]) for index, item in iter_selected(path, wanted)}
    for group in duplicates:
        names = [ids[int(i)][0] for i in group]
        report.duplicate_groups.append(names)
        report.ids["duplicates"].extend(names[1:])  # the first occurrence is the one to keep
    for group in leaks:
        by_split: dict[str, list[str]] = {}
        for i in group:
            item_id, split = ids[int(i)]
            by_split.setdefault(split, []).append(item_id)
        report.leak_groups.append(by_split)
        report.ids["cross_split_leaks"].extend(ids[int(i)][0] for i in group)
