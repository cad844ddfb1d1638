"""The audit of a manifest: the curation checks the published SoundMind corpus never had.

Counts items whose chain-of-thought verdict contradicts their label, items whose label differs from the source's
gold label (LogiQA 2.0 NLI files given with --gold), duplicate triplets within a split, triplets leaking across
splits, and text a TTS voice cannot speak even after speech normalisation (which reads logic symbols, numbers and
abbreviations).

Memory stays small as the corpus grows: the first pass keeps 10 bytes per item (a 64-bit triplet key and a split
code in numpy-ready arrays); duplicates and leaks are found by sorting those, and a second pass fetches only the
ids of the offending items.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from soundmind_data.core.corpus import LabelCounts
from soundmind_data.core.jsonl import iter_manifest_lines, iter_selected
from soundmind_data.core.stage import Progress, SILENT, StageReport, Summary
from soundmind_data.engines.answers import answer_check, checked_item, load_gold
from soundmind_data.report.table import format_table, id_sample, split_label_table
from soundmind_data.text.speech_text import unspeakable_in_speech
from soundmind_data.text.textkey import triplet_key

IDS_LIMIT = 10_000  # ids listed per check; counts are always exact. A LogiQA manifest has every item answer_missing.
CHECKS = ("answer_label_disagree", "answer_missing", "answer_undecidable", "gold_disagree", "duplicates",
          "cross_split_leaks", "unspeakable")


@dataclass
class AuditReport(StageReport):
    manifest: str
    gold_files: list[str] = field(default_factory=list)
    items: int = 0
    splits: LabelCounts = field(default_factory=LabelCounts)
    gold_matched: int = 0
    ids_limit: int = IDS_LIMIT
    counts: dict[str, int] = field(default_factory=lambda: {check: 0 for check in CHECKS})
    ids: dict[str, list[str]] = field(default_factory=lambda: {check: [] for check in CHECKS})
    duplicate_groups: list[list[str]] = field(default_factory=list)
    leak_groups: list[dict[str, list[str]]] = field(default_factory=list)

    def count(self, check: str) -> int:
        return self.counts[check]

    def check_counts(self) -> list[tuple[str, int]]:
        """(check, items) for every check that ran (gold_disagree only with gold files)."""
        return [(check, self.count(check)) for check in CHECKS if check != "gold_disagree" or self.gold_files]

    def summary(self) -> Summary:
        rows = [("items", self.items, "")]
        if self.gold_files:
            rows.append(("gold_matched", self.gold_matched, ""))
        rows += [(check, count, id_sample(self.ids[check], total=count)) for check, count in self.check_counts()]
        return Summary(out=[split_label_table(self.splits), "", format_table(("check", "count", "ids"), rows)])

    def flag(self, check: str, item_ids: list[str]) -> None:
        """Count items failing `check`; list their ids up to `ids_limit` (memory stays flat on huge corpora)."""
        self.counts[check] += len(item_ids)
        room = self.ids_limit - len(self.ids[check])
        if room > 0:
            self.ids[check].extend(item_ids[:room])

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "gold_files": self.gold_files,
            "items": self.items,
            "splits": self.splits.to_json(),
            "gold_matched": self.gold_matched,
            **{check: self.count(check) for check in CHECKS},
            "ids_limit": self.ids_limit,
            "ids": self.ids,
            "duplicate_groups": self.duplicate_groups,
            "leak_groups": self.leak_groups,
        }


def audit_manifest(
    path: str | Path,
    *,
    gold_files: Iterable[str | Path] = (),
    ids_limit: int = IDS_LIMIT,
    progress: Progress = SILENT,
) -> AuditReport:
    gold_files = [str(g) for g in gold_files]
    report = AuditReport(manifest=str(path), gold_files=gold_files, ids_limit=ids_limit)
    gold = load_gold(gold_files)
    split_codes: dict[str, int] = {}
    keys = array("q")
    split_of = array("H")

    for line in iter_manifest_lines(path):
        progress.advance()
        item = checked_item(line)
        report.items += 1
        split = item["split"]
        code = split_codes.setdefault(split, len(split_codes))
        report.splits.add(split, item["label"])
        key = triplet_key(item)
        keys.append(key)
        split_of.append(code)
        problem = answer_check(item)
        if problem:
            report.flag(problem, [item["id"]])
        if key in gold:
            report.gold_matched += 1
            if gold[key] != item["label"]:
                report.flag("gold_disagree", [item["id"]])
        if unspeakable_in_speech(item["question_text"]) or unspeakable_in_speech(item.get("answer_text") or ""):
            report.flag("unspeakable", [item["id"]])

    duplicate_groups, leak_groups = _group_repeats(np.frombuffer(keys, dtype=np.int64), np.frombuffer(split_of, dtype=np.uint16))
    if duplicate_groups or leak_groups:
        _fill_group_ids(path, report, duplicate_groups, leak_groups)
    return report


def _group_repeats(keys: np.ndarray, splits: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Item indices grouped by triplet: groups repeated within one split, and groups spanning several splits.

    One stable argsort of the keys (file order kept among equals); the few repeated groups are then split by split
    one by one, which keeps the temporaries to a couple of arrays of the corpus's size.
    """
    if len(keys) == 0:
        return [], []
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeats = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])  # i: sorted item i + 1 repeats item i
    del sorted_keys
    runs = np.split(repeats, np.flatnonzero(np.diff(repeats) != 1) + 1) if repeats.size else []
    duplicates, leaks = [], []
    for run in runs:
        members = order[run[0]:run[-1] + 2]
        by_split: dict[int, list[int]] = {}
        for index in members.tolist():
            by_split.setdefault(int(splits[index]), []).append(index)
        duplicates.extend(np.array(part) for part in by_split.values() if len(part) > 1)
        if len(by_split) > 1:
            leaks.append(members)
    return duplicates, leaks


def _fill_group_ids(path, report: AuditReport, duplicates, leaks) -> None:
    """Count the repeated items, and (second pass) turn indices into ids for the groups that are listed."""
    report.counts["duplicates"] = sum(len(group) - 1 for group in duplicates)  # the first occurrence is kept
    report.counts["cross_split_leaks"] = sum(len(group) for group in leaks)
    duplicates, leaks = duplicates[:report.ids_limit], leaks[:report.ids_limit]
    wanted = {int(i) for group in duplicates + leaks for i in group}
    ids = {index: (item["id"], item["split"]) for index, item in iter_selected(path, wanted)}
    for group in duplicates:
        names = [ids[int(i)][0] for i in group]
        report.duplicate_groups.append(names)
        report.ids["duplicates"].extend(names[1:])
    for group in leaks:
        by_split: dict[str, list[str]] = {}
        for i in group:
            item_id, split = ids[int(i)]
            by_split.setdefault(split, []).append(item_id)
        report.leak_groups.append(by_split)
        report.ids["cross_split_leaks"].extend(ids[int(i)][0] for i in group)
    for check in ("duplicates", "cross_split_leaks"):
        del report.ids[check][report.ids_limit:]
