"""Balance: give every split the target label ratio (1:1 by default), after removing duplicate triplets.

Within each split, items repeating an earlier item's normalised triplet are removed first (the first in file order
is kept) and listed in the report. Then, per split:

- `downsample` drops items of the over-represented label,
- `upsample` repeats items of the under-represented label by reference: each repeat is a new line with id
  `<id>.rep<k>` and `repeat_of: <id>`, pointing at the same audio files (never a copy of them); k skips any number
  whose id another line of the output has,
- `weights` keeps every item and writes `sample_weight`, so that each label's weights sum to its target share.

Which items are dropped or repeated is decided by a seeded hash of their id, not by their position: adding items
later changes the selection as little as possible. A split holding one label only cannot be balanced; it is left as
it is (with `weights`, every weight 1.0) and reported with a warning.

Memory: the same two streaming passes as `split` (`splitting.scan_manifest`, then `iter_item_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from soundmind_data.core.corpus import MAX_ID_LENGTH, LabelCounts
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.core.stage import Progress, SILENT, Stage, StageReport, Summary, option
from soundmind_data.engines.splitting import SeededHash, count_leaks, iter_item_lines, label_counts, scan_manifest
from soundmind_data.report.table import before_after_table

STRATEGIES = ("downsample", "upsample", "weights")


def parse_target(text: str) -> tuple[Fraction, Fraction]:
    """"1:1" or "55:45" (not-entailed:entailed) → each label's share of a balanced split."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        not_entailed, entailed = Fraction(parts[0].strip()), Fraction(parts[1].strip())
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--target {text!r}: expected NOT_ENTAILED:ENTAILED, e.g. 1:1 or 55:45") from None
    if not_entailed <= 0 or entailed <= 0:
        raise UsageError(f"--target {text!r}: both parts must be above 0")
    total = not_entailed + entailed
    return not_entailed / total, entailed / total


def target_counts(counts: tuple[int, int], shares: tuple[Fraction, Fraction], *, grow: bool) -> tuple[int, int]:
    """Label counts in the target ratio that keep one label's count exactly and the other's rounded to the ratio.

    Shrinking (downsample) keeps the most items that need no new ones, growing (upsample) the fewest that drop none.
    Choosing among both labels kept whole, rather than always the scarcer one, makes the result a fixed point:
    balancing its own output changes nothing, whatever the ratio. Exact arithmetic, so 1:1 means equal.
    """
    candidates = []
    for keep, other in ((0, 1), (1, 0)):
        pair = [0, 0]
        pair[keep] = counts[keep]
        pair[other] = round(counts[keep] * shares[other] / shares[keep])
        if (pair[other] >= counts[other]) if grow else (pair[other] <= counts[other]):
            candidates.append((pair[0], pair[1]))
    return min(candidates, key=sum) if grow else max(candidates, key=sum)


@dataclass
class BalanceReport(StageReport):
    manifest: str
    out: str
    strategy: str
    target: str
    seed: int
    items: int = 0
    items_out: int = 0
    before: LabelCounts = field(default_factory=LabelCounts)
    after: LabelCounts = field(default_factory=LabelCounts)
    duplicates_removed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    repeated: dict[str, int] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    cross_split_leaks: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> Summary:
        middle = {"duplicates removed": self.duplicates_removed}
        if self.strategy == "weights":
            middle["weight not-entailed"] = {name: f"{w['0']:.4g}" for name, w in self.weights.items()}
            middle["weight entailed"] = {name: f"{w['1']:.4g}" for name, w in self.weights.items()}
        else:
            middle[self.strategy.replace("sample", "sampled")] = (self.dropped if self.strategy == "downsample"
                                                                  else self.repeated)
        text = Summary(out=[before_after_table(self.before, self.after, middle)])
        text.err += [f"warning: {warning}" for warning in self.warnings]
        text.err.append(f"balance: {self.items} items -> {self.items_out} ({self.strategy} to {self.target}); "
                        f"{sum(self.duplicates_removed.values())} duplicates removed -> {self.out}")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": "balance", "manifest": self.manifest, "out": self.out, "strategy": self.strategy,
            "target": self.target, "seed": self.seed, "items": self.items, "items_out": self.items_out,
            "before": self.before.to_json(), "after": self.after.to_json(),
            "duplicates_removed": self.duplicates_removed,
            "dropped": self.dropped, "repeated": self.repeated, "weights": self.weights,
            "duplicates": self.duplicates, "cross_split_leaks": self.cross_split_leaks, "warnings": self.warnings,
        }


def find_duplicates(keys: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """For each item, the index of the first item of its split with the same key (itself when it is the first)."""
    order = np.lexsort((np.arange(len(keys)), keys, splits))  # by split, key, then file order
    sorted_keys, sorted_splits = keys[order], splits[order]
    starts = np.r_[True, (sorted_keys[1:] != sorted_keys[:-1]) | (sorted_splits[1:] != sorted_splits[:-1])]
    first_of_run = order[np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))]
    first = np.empty(len(keys), dtype=np.int64)
    first[order] = first_of_run
    return first


def _by_rank(indices: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """`indices` ordered by their seeded id hash (file order breaks the rare tie)."""
    return indices[np.lexsort((indices, ranks[indices]))]


def balance_manifest(
    path: str | Path,
    *,
    out: str | Path,
    strategy: str,
    target: str = "1:1",
    seed: int = 0,
    progress: Progress = SILENT,
) -> BalanceReport:
    """Write `out`: the manifest without duplicates, each split balanced by `strategy`; returns the report."""
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    shares = parse_target(target)
    scan = scan_manifest(path, rank_seed=seed, progress=progress)
    report = BalanceReport(manifest=str(path), out=str(out), strategy=strategy, target=target, seed=seed,
                           items=len(scan))
    report.before = label_counts(scan.split_names, scan.splits, scan.labels)
    report.cross_split_leaks = count_leaks(scan.keys, scan.splits)
    if report.cross_split_leaks:
        report.warnings.append(f"{report.cross_split_leaks} triplets occur in more than one split; "
                               "run `soundmind-data split` first to fix these leaks")

    first = find_duplicates(scan.keys, scan.splits)
    duplicate = first != np.arange(len(scan))
    copies = (~duplicate).astype(np.int64)  # how many times each item is written: 0 dropped, 1 kept, 2+ repeated
    weight_of: dict[tuple[int, int], float] = {}  # (split code, label) → sample_weight
    for code, split in enumerate(scan.split_names):
        in_split = (scan.splits == code) & ~duplicate
        report.duplicates_removed[split] = int(np.count_nonzero((scan.splits == code) & duplicate))
        members = [np.flatnonzero(in_split & (scan.labels == label)) for label in (0, 1)]
        counts = (len(members[0]), len(members[1]))
        if strategy == "downsample":
            report.dropped[split] = 0
        elif strategy == "upsample":
            report.repeated[split] = 0
        if 0 in counts:
            only = LABEL_NAMES[1 if counts[1] else 0]
            report.warnings.append(f"split {split!r} has only {only} items; left unbalanced")
            weight_of.update({(code, 0): 1.0, (code, 1): 1.0})
            if strategy == "weights":
                report.weights[split] = {"0": 1.0, "1": 1.0}
            continue
        if strategy == "downsample":
            wanted = target_counts(counts, shares, grow=False)
            for label in (0, 1):
                copies[_by_rank(members[label], scan.ranks)[wanted[label]:]] = 0
            report.dropped[split] = sum(counts) - sum(wanted)
        elif strategy == "upsample":
            wanted = target_counts(counts, shares, grow=True)
            for label in (0, 1):
                extra = wanted[label] - counts[label]
                ordered = _by_rank(members[label], scan.ranks)
                copies[ordered] += extra // counts[label]
                copies[ordered[:extra % counts[label]]] += 1
            report.repeated[split] = sum(wanted) - sum(counts)
        else:
            for label in (0, 1):
                weight_of[code, label] = float(shares[label] * sum(counts) / counts[label])
            report.weights[split] = {str(label): weight_of[code, label] for label in (0, 1)}
    report.after = label_counts(scan.split_names, scan.splits, scan.labels, repeats=copies)
    report.items_out = int(copies.sum())

    listed = set(first[duplicate].tolist()) | set(np.flatnonzero(duplicate).tolist())  # ids the report names
    # The ids written out, as the seeded hash the scan ranked them by, for a repeat's id to be checked against. Not
    # those of removed duplicates: a previous balance's repeat is one, and its id is free again for the same repeat
    # (so balancing twice is balancing once).
    id_hash = SeededHash(seed)
    taken = set(scan.ranks[copies > 0].tolist()) if strategy == "upsample" else set()
    ids: dict[int, str] = {}
    copies_list, splits_list, labels_list = copies.tolist(), scan.splits.tolist(), scan.labels.tolist()
    with AtomicWriter(out) as writer:
        for index, raw in enumerate(iter_item_lines(scan, progress)):
            if index in listed:
                ids[index] = orjson.loads(raw)["id"]
            count = copies_list[index]
            if count == 0:
                continue
            if strategy == "weights":
                record = orjson.loads(raw)
                record["sample_weight"] = weight_of[splits_list[index], labels_list[index]]
                writer.write_record(record)
            else:
                writer.write(raw.decode("utf-8"))  # kept lines are copied as they are
            if count > 1:
                _write_repeats(writer, orjson.loads(raw), count - 1, scan.path, taken, id_hash)

    duplicate_groups: dict[int, list[int]] = {}
    for index in np.flatnonzero(duplicate).tolist():
        duplicate_groups.setdefault(int(first[index]), []).append(index)
    report.duplicates = [{"split": scan.split_names[splits_list[kept]], "kept": ids[kept],
                          "removed": [ids[i] for i in removed]} for kept, removed in duplicate_groups.items()]
    return report


def _write_repeats(writer: AtomicWriter, record: dict[str, Any], repeats: int, path: Path, taken: set[int],
                   id_hash: SeededHash) -> None:
    """`repeats` more lines for `record`: same content and audio paths, ids `<id>.rep1`, `<id>.rep2`..., skipping any
    number whose id is already `taken` (by an input item written out, or by an earlier repeat). `taken` holds
    `id_hash` of each id and gets the new ones: two ids sharing a 64-bit hash (a chance in 10^19 per pair) only cost
    a free number, never a duplicate id."""
    number = 0
    for _ in range(repeats):
        while True:
            number += 1
            repeat_id = f"{record['id']}.rep{number}"
            key = id_hash(repeat_id.encode("utf-8"))
            if key not in taken:
                break
        if len(repeat_id) > MAX_ID_LENGTH:
            raise DataError(f"{path}: id {record['id']!r}: repeat id {repeat_id!r} would exceed "
                            f"{MAX_ID_LENGTH} characters")
        taken.add(key)
        writer.write_record({**record, "id": repeat_id, "repeat_of": record["id"]})


@dataclass(frozen=True)
class BalanceOptions:
    strategy: str = option(
        help="downsample (drop majority items), upsample (repeat minority items by reference) or weights (write "
             "sample_weight).")
    target: str = option("1:1", help="Wanted not-entailed:entailed ratio in every split.")
    seed: int = option(0, help="Seed of the hash that picks the items dropped or repeated.")


def run(manifest: Path, out: Path, options: BalanceOptions, *, progress: Progress = SILENT) -> BalanceReport:
    """The balance stage."""
    progress.start("balance (2 passes)", unit="line")
    result = balance_manifest(manifest, out=out, strategy=options.strategy, target=options.target,
                              seed=options.seed, progress=progress)
    return result


COMMAND_HELP = """Remove duplicate triplets within each split, then balance each split's labels to --target.

Prints a before/after table of split x label counts with the duplicates removed; the report lists them.
A split with one label only is left as it is, with a warning.

Example: soundmind-data balance split.jsonl --strategy downsample --target 1:1 --seed 0 --out balanced.jsonl
"""

STAGE = Stage("balance", run, BalanceOptions, report=True,
              input_help="Item manifest (JSONL) to balance, split by split.",
              output_help="Manifest to write.",
              help=COMMAND_HELP)
