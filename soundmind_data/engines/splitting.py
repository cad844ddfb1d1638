"""Splitting a manifest: place items into named splits by ratio, stratified by label, grouped so that no question leaks.

Items with the same normalised triplet form one group (with `group="conclusion"`, the same normalised conclusion,
which also covers same triplets) and a group always lands in one split. Each label stratum's groups (a mixed group
counts for its majority label) are shuffled by a seeded hash of their key and cut into consecutive runs in
proportion to the ratios, so split sizes match the ratios to within one group at each cut.

With `keep_existing`, items already in one of the named splits stay there, so contributors adding samples never
reshuffle a published test set; items in any other split (e.g. one called "new") are placed, filling each split
towards its ratio of the whole. A group already spread over several named splits (a leak) moves to the held-out one:
the split with the smallest ratio, the later one in `ratios` on a tie.

Two streaming passes keep memory proportional to the number of items, not to their texts: the first collects a few
bytes per item (label, split, 64-bit key, optionally a seeded rank), the second copies each line to the output,
re-encoding only the lines that change. The `balance` stage shares the scanner, the seeded hash and the counters;
`add` places its new items with `split_manifest`.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import orjson

from soundmind_data.core.corpus import SPLIT_PATTERN, LabelCounts, unsafe_name
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, Line, iter_manifest_lines
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.core.stage import Progress, SILENT, StageReport, Summary
from soundmind_data.report.table import before_after_table, id_sample
from soundmind_data.text.textkey import text_key, triplet_key

GROUPINGS = ("triplet", "conclusion")
_MAX_SPLITS = 2**16 - 1  # split codes are stored as uint16


# ------------------------------------------------------------------------- the scanner, shared with `balance`
class SeededHash:
    """A stable 64-bit hash under a seed: keyed blake2b, the key drawn from the seed (never Python's `hash()`, which
    changes between runs). Every seed gives its own order; the same seed, the same order on every machine."""

    def __init__(self, seed: int):
        key = hashlib.blake2b(str(seed).encode("utf-8")).digest()  # 64 bytes, blake2b's longest key
        self._keyed = hashlib.blake2b(digest_size=8, key=key)

    def __call__(self, data: bytes) -> int:
        hasher = self._keyed.copy()  # cheaper than keying a new hasher for every item
        hasher.update(data)
        return int.from_bytes(hasher.digest(), "big")


def scramble(keys: np.ndarray, seed: int) -> np.ndarray:
    """A seeded shuffle order for 64-bit keys, vectorised: SplitMix64's finaliser (a bijective bit mixer) applied to
    each key XOR a word drawn from the seed. Group keys are blake2b hashes already; this only makes the order seeded."""
    with np.errstate(over="ignore"):  # the multiplications are meant to wrap around
        x = keys.view(np.uint64) ^ np.uint64(SeededHash(seed)(b"groups"))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass
class ManifestScan:
    """What the first pass keeps of a manifest: a few bytes per item, in file order."""

    path: Path
    split_names: list[str]  # indexed by split code, in order of first appearance
    labels: np.ndarray  # uint8, 0 or 1
    splits: np.ndarray  # uint16 split codes
    keys: np.ndarray  # int64 group keys (normalised triplet or conclusion)
    ranks: np.ndarray | None  # uint64 seeded hash of each id, when asked for

    def __len__(self) -> int:
        return len(self.labels)


def _field_error(line: Line) -> DataError:
    """The first bad field of a line the scan could not use, as file:line: field: problem."""
    record = line.record
    for name in ("id", "split", "major_premise", "minor_premise", "conclusion", "label"):
        value = record.get(name)
        if name not in record:
            problem = "missing"
        elif name == "label" and (type(value) is not int or value not in (0, 1)):
            problem = f"expected 0 or 1, got {value!r}"
        elif name != "label" and not isinstance(value, str):
            problem = f"expected a string, got {type(value).__name__}"
        else:
            continue
        return DataError(f"{line.file}:{line.number}: {name}: {problem}")
    return DataError(f"{line.file}:{line.number}: not an item")


def scan_manifest(
    path: str | Path,
    *,
    group: str = "triplet",
    rank_seed: int | None = None,
    progress: Progress = SILENT,
) -> ManifestScan:
    """First pass: labels, split codes and group keys of every item (and seeded id ranks when `rank_seed` is given)."""
    if group not in GROUPINGS:
        raise UsageError(f"unknown grouping {group!r}; choose one of {', '.join(GROUPINGS)}")
    path = Path(path)
    split_codes: dict[str, int] = {}
    labels, splits, keys, ranks = array("B"), array("H"), array("q"), array("Q")
    rank = SeededHash(rank_seed) if rank_seed is not None else None
    for line in iter_manifest_lines(path):
        progress.advance()
        record = line.record
        try:  # the common case stays fast; a failure is diagnosed field by field
            item_id, split, label = record["id"], record["split"], record["label"]
            keys.append(triplet_key(record) if group == "triplet" else text_key(record["conclusion"]))
        except (KeyError, TypeError, AttributeError):  # a missing field, or one that is not text
            raise _field_error(line) from None
        if type(item_id) is not str or type(split) is not str or type(label) is not int or label not in (0, 1):
            raise _field_error(line)
        if problem := unsafe_name(record):  # copied through to stages that make files and folders of them
            raise DataError(f"{line.file}:{line.number}: {problem}")
        labels.append(label)
        code = split_codes.get(split)
        if code is None:
            if len(split_codes) == _MAX_SPLITS:
                raise DataError(f"{line.file}:{line.number}: split: more than {_MAX_SPLITS} distinct splits")
            code = split_codes[split] = len(split_codes)
        splits.append(code)
        if rank is not None:
            ranks.append(rank(item_id.encode("utf-8")))
    if not labels:
        raise DataError(f"{path}: no items")
    return ManifestScan(
        path=path,
        split_names=list(split_codes),
        labels=np.frombuffer(labels, dtype=np.uint8),
        splits=np.frombuffer(splits, dtype=np.uint16),
        keys=np.frombuffer(keys, dtype=np.int64),
        ranks=np.frombuffer(ranks, dtype=np.uint64) if rank_seed is not None else None,
    )


def iter_item_lines(scan: ManifestScan, progress: Progress = SILENT) -> Iterator[bytes]:
    """Second pass: each item line as it is in the file (newline-ended), in the order the first pass counted them.

    Raw bytes rather than decoded records, so that lines a stage leaves alone are copied as they are.
    """
    count = 0
    with scan.path.open("rb") as handle:
        for raw in handle:
            if raw.isspace():  # the blank lines iter_lines skips
                continue
            count += 1
            if count > len(scan):
                break
            progress.advance()
            yield raw if raw.endswith(b"\n") else raw + b"\n"
    if count != len(scan):
        raise DataError(f"{scan.path}: the file changed while it was being read")


def label_counts(split_names: list[str], splits: np.ndarray, labels: np.ndarray,
                 repeats: np.ndarray | None = None) -> LabelCounts:
    """Items per split and label, counting each item `repeats` times (once when None)."""
    cells = np.bincount(splits.astype(np.int64) * 2 + labels, weights=repeats, minlength=2 * len(split_names))
    return LabelCounts({name: (int(cells[2 * code]), int(cells[2 * code + 1])) for code, name in enumerate(split_names)})


def count_leaks(keys: np.ndarray, splits: np.ndarray) -> int:
    """How many group keys occur in more than one split."""
    if len(keys) == 0:
        return 0
    order = np.lexsort((splits, keys))
    keys, splits = keys[order], splits[order]
    key_starts = np.r_[True, keys[1:] != keys[:-1]]
    pair_starts = key_starts | np.r_[True, splits[1:] != splits[:-1]]
    splits_per_key = np.add.reduceat(pair_starts.astype(np.int64), np.flatnonzero(key_starts))
    return int(np.count_nonzero(splits_per_key > 1))


# ---------------------------------------------------------------------------------------- the split assignment
def parse_ratios(text: str) -> dict[str, float]:
    """"train=0.8,dev=0.1,test=0.1" → {"train": 0.8, "dev": 0.1, "test": 0.1}, checked to sum to 1."""
    ratios: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not SPLIT_PATTERN.fullmatch(name):
            raise UsageError(f"--ratios {text!r}: expected NAME=FRACTION,... with names of A-Z a-z 0-9 _")
        if name in ratios:
            raise UsageError(f"--ratios {text!r}: split {name!r} given twice")
        try:
            ratio = float(value)
        except ValueError:
            raise UsageError(f"--ratios {text!r}: {name}={value.strip()!r} is not a number") from None
        if not 0 < ratio <= 1:
            raise UsageError(f"--ratios {text!r}: {name} needs a ratio above 0 and at most 1, got {value.strip()}")
        ratios[name] = ratio
    total = sum(ratios.values())
    if abs(total - 1) > 1e-6:
        raise UsageError(f"--ratios {text!r}: ratios sum to {total:g}, not 1")
    return ratios


def one_label_warnings(counts: LabelCounts) -> list[str]:
    """A warning for each split holding items of one label only."""
    warnings = []
    for split, (not_entailed, entailed) in counts.items():
        if (not_entailed == 0) != (entailed == 0):
            warnings.append(f"split {split!r} has only {LABEL_NAMES[1 if entailed else 0]} items")
    return warnings


@dataclass
class SplitReport(StageReport):
    manifest: str
    out: str
    ratios: dict[str, float]
    seed: int
    group: str
    keep_existing: bool
    items: int = 0
    groups: int = 0
    before: LabelCounts = field(default_factory=LabelCounts)
    after: LabelCounts = field(default_factory=LabelCounts)
    placed: int = 0
    leaks_fixed: int = 0
    moved_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> Summary:
        text = Summary(out=[before_after_table(self.before, self.after)])
        if self.moved_ids:
            text.out.append(f"moved out of their split to close leaks: {id_sample(self.moved_ids)}")
        text.err += [f"warning: {warning}" for warning in self.warnings]
        sizes = ", ".join(f"{name} {self.after.total(name)}" for name in self.after)
        text.err.append(f"split: {self.items} items in {self.groups} {self.group} groups, {self.placed} placed "
                        f"({sizes}); {self.leaks_fixed} leaks fixed -> {self.out}")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": "split", "manifest": self.manifest, "out": self.out, "ratios": self.ratios, "seed": self.seed,
            "group": self.group, "keep_existing": self.keep_existing, "items": self.items, "groups": self.groups,
            "before": self.before.to_json(), "after": self.after.to_json(), "placed": self.placed,
            "leaks_fixed": self.leaks_fixed,
            "moved_ids": self.moved_ids, "warnings": self.warnings,
        }


def _held_out_precedence(ratios: dict[str, float]) -> np.ndarray:
    """Per named split, its precedence when a group already sits in several: smaller ratio wins, then later name."""
    names = list(ratios)
    order = sorted(range(len(names)), key=lambda i: (-ratios[names[i]], i))  # weakest first
    precedence = np.empty(len(names), dtype=np.int64)
    precedence[order] = np.arange(1, len(names) + 1)
    return precedence


def _cut(sizes: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Split index of each group (in the given order) when the sequence is cut into runs proportional to `shares`.

    A group goes where its middle item falls, so each run's size is within half a group of its share at each cut.
    """
    ends = np.cumsum(sizes)
    middles = ends - sizes / 2
    bounds = np.cumsum(shares) / shares.sum() * ends[-1]
    return np.minimum(np.searchsorted(bounds, middles, side="right"), len(shares) - 1)


def place_items(scan: ManifestScan, ratios: dict[str, float], *, seed: int,
                keep_existing: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The decision: (index into `ratios` of each item's input split or -1, of its output split, number of groups)."""
    names = list(ratios)
    shares = np.array(list(ratios.values()))
    index_of_code = np.array([names.index(s) if s in ratios else -1 for s in scan.split_names], dtype=np.int64)
    input_index = index_of_code[scan.splits]

    group_keys, group_of = np.unique(scan.keys, return_inverse=True)
    sizes = np.bincount(group_of)
    entailed = np.bincount(group_of, weights=scan.labels)
    stratum = (2 * entailed > sizes).astype(np.uint8)  # a mixed group counts for its majority label
    group_ranks = scramble(group_keys, seed)

    fixed = np.full(len(group_keys), -1, dtype=np.int64)  # the kept split of each group, -1 where it is to be placed
    if keep_existing:
        precedence = _held_out_precedence(ratios)
        item_precedence = np.where(input_index >= 0, precedence[input_index], 0)  # 0: in no named split
        best = np.zeros(len(group_keys), dtype=np.int64)
        np.maximum.at(best, group_of, item_precedence)
        split_by_precedence = np.r_[-1, np.argsort(precedence)]
        fixed = split_by_precedence[best]

    group_split = fixed.copy()
    for label in (0, 1):
        in_stratum = stratum == label
        free = np.flatnonzero(in_stratum & (fixed < 0))
        if len(free) == 0:
            continue
        kept = in_stratum & (fixed >= 0)
        kept_sizes = np.bincount(fixed[kept], weights=sizes[kept], minlength=len(names))
        room = np.maximum(shares * sizes[in_stratum].sum() - kept_sizes, 0)
        if room.sum() <= 0:  # only through rounding: fall back to the plain ratios
            room = shares
        free = free[np.lexsort((group_keys[free], group_ranks[free]))]  # seeded shuffle; keys break hash ties
        group_split[free] = _cut(sizes[free], room)
    return input_index, group_split[group_of], len(group_keys)


def split_manifest(
    path: str | Path,
    *,
    out: str | Path,
    ratios: dict[str, float],
    seed: int = 0,
    group: str = "triplet",
    keep_existing: bool = False,
    progress: Progress = SILENT,
) -> SplitReport:
    """Write `out`: the manifest with every item's split decided; returns the before/after report."""
    scan = scan_manifest(path, group=group, progress=progress)
    names = list(ratios)
    input_index, output_index, groups = place_items(scan, ratios, seed=seed, keep_existing=keep_existing)
    report = SplitReport(manifest=str(path), out=str(out), ratios=ratios, seed=seed, group=group,
                         keep_existing=keep_existing, items=len(scan), groups=groups)
    report.before = label_counts(scan.split_names, scan.splits, scan.labels)
    report.after = label_counts(names, output_index, scan.labels)
    report.placed = int(np.count_nonzero(input_index < 0)) if keep_existing else len(scan)
    # A leak is a group in several splits of the input; with keep_existing only the named splits count (an item
    # elsewhere is new: joining its group's split is placement, not a leak).
    in_a_split = input_index >= 0 if keep_existing else slice(None)
    report.leaks_fixed = count_leaks(scan.keys[in_a_split], scan.splits[in_a_split])

    unchanged = input_index == output_index
    moved = (keep_existing & (input_index >= 0) & ~unchanged).tolist()  # out of a published split
    unchanged = unchanged.tolist()
    output_names = [names[i] for i in output_index.tolist()]
    with AtomicWriter(out) as writer:
        for index, raw in enumerate(iter_item_lines(scan, progress)):
            if unchanged[index]:
                writer.write(raw.decode("utf-8"))
                continue
            record = orjson.loads(raw)
            record["split"] = output_names[index]
            writer.write_record(record)
            if moved[index]:
                report.moved_ids.append(record["id"])

    report.warnings = [f"split {name!r} got no items (too few groups for ratio {ratios[name]:g})"
                       for name in report.after if not report.after.total(name)]
    report.warnings += one_label_warnings(report.after)
    return report
