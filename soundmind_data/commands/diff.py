"""Diff: what changed between two item manifests — items added, removed, changed (and which fields), and how the
label balance of each split shifted.

Memory is proportional to the number of ids: the old manifest is reduced to one 8-byte content digest, split and
label per id; the new one is streamed against it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from soundmind_data.core import schemas
from soundmind_data.core.corpus import LabelCounts, unsafe_name
from soundmind_data.core.errors import DataError
from soundmind_data.core.jsonl import iter_manifest_lines
from soundmind_data.core.stage import REPORT_HELP, SILENT, Command, Progress, StageReport, Summary, argument, option
from soundmind_data.report.table import format_table, id_sample

# Fields whose change matters to a reviewer; anything else (audio paths, QA numbers) is reported as "other".
COMPARED_FIELDS = ("split", "label", "major_premise", "minor_premise", "conclusion", "question_text", "answer_text")


def _digests(item: dict[str, Any]) -> tuple[bytes, ...]:
    """One short digest per compared field, plus one for everything else."""
    rest = {k: v for k, v in item.items() if k not in COMPARED_FIELDS}
    values = [item.get(name) for name in COMPARED_FIELDS] + [rest]
    return tuple(hashlib.blake2b(orjson.dumps(v, option=orjson.OPT_SORT_KEYS), digest_size=8).digest() for v in values)


@dataclass
class DiffReport(StageReport):
    old: str
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # id -> changed fields
    old_counts: LabelCounts = field(default_factory=LabelCounts)
    new_counts: LabelCounts = field(default_factory=LabelCounts)

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys([*self.old_counts, *self.new_counts]))

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old, "new": self.new,
            "added": self.added, "removed": self.removed, "changed": self.changed,
            "balance": {split: {"old": self.old_counts.by_label(split), "new": self.new_counts.by_label(split)}
                        for split in self.splits},
        }

    def summary(self) -> Summary:
        changed = [f"{item_id} ({', '.join(fields)})" for item_id, fields in self.changed.items()]
        return Summary(out=[
            format_table(("change", "items", "ids"), [
                ("added", len(self.added), id_sample(self.added)),
                ("removed", len(self.removed), id_sample(self.removed)),
                ("changed", len(self.changed), id_sample(changed, 3))]),
            "",
            format_table(("split", "old not-entailed", "old entailed", "new not-entailed", "new entailed",
                          "entailed share shift (points)"), self.balance_rows()),
        ])

    def balance_rows(self) -> list[tuple]:
        """(split, old not-entailed, old entailed, new not-entailed, new entailed, entailed share shift in points)."""
        rows = []
        for split in self.splits:
            old, new = self.old_counts[split], self.new_counts[split]
            share = lambda c: 100 * c[1] / (c[0] + c[1]) if c[0] + c[1] else 0.0  # noqa: E731
            rows.append((split, old[0], old[1], new[0], new[1], f"{share(new) - share(old):+.1f}"))
        return rows


def _items(path: str | Path) -> Iterator[dict[str, Any]]:
    """The manifest's items, with the fields the diff keys on checked: a bad line is a DataError naming it."""
    for line in iter_manifest_lines(path):
        item = line.record
        if not (isinstance(item.get("id"), str) and isinstance(item.get("split"), str)
                and item.get("label") in (0, 1) and not isinstance(item.get("label"), bool)):
            problem = schemas.first_error("item", item) or "id, split or label"
            raise DataError(f"{line.file}:{line.number}: {problem}")
        if problem := unsafe_name(item):  # names every other stage refuses (a newline in one would split a table row)
            raise DataError(f"{line.file}:{line.number}: {problem}")
        yield item


def diff_manifests(old: str | Path, new: str | Path) -> DiffReport:
    """What changed from `old` to `new`."""
    report = DiffReport(str(old), str(new))
    before: dict[str, tuple[bytes, ...]] = {}
    for item in _items(old):
        before[item["id"]] = _digests(item)
        report.old_counts.add(item["split"], item["label"])
    seen: set[str] = set()
    for item in _items(new):
        item_id = item["id"]
        seen.add(item_id)
        report.new_counts.add(item["split"], item["label"])
        if item_id not in before:
            report.added.append(item_id)
            continue
        changed = [name for name, a, b in zip(COMPARED_FIELDS + ("other",), before[item_id], _digests(item)) if a != b]
        if changed:
            report.changed[item_id] = changed
    report.removed = [item_id for item_id in before if item_id not in seen]
    return report


@dataclass(frozen=True)
class DiffOptions:
    old: Path = argument(help="The manifest before (JSONL).")
    new: Path = argument(help="The manifest after (JSONL).")
    report: Path | None = option(None, flag="--json", help=REPORT_HELP)


def run(options: DiffOptions, *, progress: Progress = SILENT) -> DiffReport:
    """The `diff` command."""
    return diff_manifests(options.old, options.new)


COMMAND_HELP = """Show items added, removed and changed between two manifests, and the label balance shift per split.

Example: soundmind-data diff corpus-v1.jsonl corpus-v2.jsonl --json diff.json
"""

COMMAND = Command("diff", run, DiffOptions, help=COMMAND_HELP)
