"""Curate: act on what the audit finds, so that what goes out is free of it.

Every item gets exactly one decision:
- keep: nothing to fix;
- relabel: its label disagrees with the gold label (source.gold_label, or a `--gold` LogiQA 2.0 NLI file): the label
  becomes the gold one, the old label is recorded in `curation`;
- regenerate: the item is fine but its answer is not (it contradicts the label, has no final verdict, or is
  missing): the answer and its audio are removed and the item is marked `needs_answer`, which `reason` fills;
- drop: a second copy of a triplet within a split, a triplet that also sits in an evaluation split, text that cannot
  be spoken, failed `validate` checks, or anything the policy says to drop instead of fix. The copy kept of a
  triplet is one that no other rule drops where there is one; where every copy goes anyway, none is a duplicate or
  a leak of another.

The curated manifest holds the kept, relabelled and to-be-regenerated items (each with `needs_answer`), in input
order; `CURATED.decisions.jsonl` holds one line for every item that is not plainly kept, dropped ones included, so
every input item is accounted for. What each finding leads to is the policy (`schemas/curate-policy.schema.json`).

Three streaming passes keep memory small (about 16 bytes an item): the first reads each item's triplet key, split
and source line; the second decodes again only the items whose triplet has copies, for their ids and whether any
other rule drops them; duplicates and leaks are resolved by sorting those; the third decides and writes, one item
at a time. Same input, same policy: the same bytes out.
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from soundmind_data.core import schemas
from soundmind_data.core import yamlfile
from soundmind_data.core.corpus import AUDIO_FIELDS, DECISIONS, ID_PATTERN, SPLIT_PATTERN, decisions_path
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, Line, count_lines, iter_checked, iter_manifest_lines, iter_selected
from soundmind_data.core.procpool import stop_now, worker_signals
from soundmind_data.core.stage import Progress, SILENT, Stage, StageReport, Summary, option
from soundmind_data.engines.answers import answer_check, checked_item, load_gold
from soundmind_data.report.table import format_table
from soundmind_data.text.speech_text import unspeakable_in_speech
from soundmind_data.text.textkey import triplet_key

NOT_NEEDING_AN_ANSWER = b',"needs_answer":false}\n'  # what a kept line gains: `dumps` would write it so
MAX_SPLITS = 2**16 - 1  # split codes are stored as uint16
LAST_LINE = 2**62  # source lines beyond this sort as equal (they only order copies)
REASONS = ("gold_disagree", "answer_label_disagree", "answer_missing", "answer_undecidable", "duplicate",
           "cross_split_leak", "unspeakable")  # and the names of failed validate checks


@dataclass(frozen=True)
class Policy:
    """What each finding leads to (schemas/curate-policy.schema.json). The defaults fix what can be fixed."""

    gold_disagree: str = "relabel"  # relabel | drop | keep
    answer_label_disagree: str = "regenerate"  # regenerate | drop | keep
    answer_undecidable: str = "regenerate"
    answer_missing: str = "regenerate"
    duplicate: str = "drop"  # drop (all copies but one) | keep
    cross_split_leak: str = "drop"  # drop (everywhere but the first split of split_precedence) | keep
    split_precedence: tuple[str, ...] = ("test", "dev", "validation", "train")  # evaluation splits stay clean
    unspeakable: str = "drop"  # drop | keep
    failed_checks: str = "drop"  # failed validate checks: drop | keep

    @classmethod
    def load(cls, path: Path | None) -> "Policy":
        if path is None:
            return cls()
        data = yamlfile.load(path) or {}
        yamlfile.check(path, "curate-policy", data)
        if "split_precedence" in data:
            data["split_precedence"] = tuple(data["split_precedence"])
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}

    def split_rank(self, split: str) -> tuple[int, str]:
        """Lower ranks keep a leaked triplet: the splits of split_precedence in order, then any other, by name."""
        order = self.split_precedence
        return (order.index(split) if split in order else len(order), split)


@dataclass
class CurateReport(StageReport):
    manifest: str
    out: str
    decisions_file: str
    policy: Policy
    gold_files: list[str] = field(default_factory=list)
    validated: str | None = None
    items: int = 0
    items_out: int = 0
    # (split, decision, reasons) -> items; `reasons` gives the split -> decision -> reason -> items view
    combinations: Counter = field(default_factory=Counter)

    @property
    def decisions(self) -> Counter:
        counts = Counter({decision: 0 for decision in DECISIONS})
        for (_, decision, _), count in self.combinations.items():
            counts[decision] += count
        return counts

    @property
    def set_aside(self) -> int:
        return self.decisions["drop"]

    @property
    def set_aside_file(self) -> Path:
        return Path(self.decisions_file)

    def count(self, split: str, decision: str, reasons: list[str]) -> None:
        self.combinations[split, decision, tuple(reasons)] += 1

    @property
    def reasons(self) -> dict[str, dict[str, Counter]]:
        """split -> decision -> reason -> items (an item with two reasons counts under each; a kept one under "-")."""
        view: dict[str, dict[str, Counter]] = {}
        for (split, decision, reasons), count in self.combinations.items():
            by_reason = view.setdefault(split, {}).setdefault(decision, Counter())
            for reason in reasons or ("-",):
                by_reason[reason] += count
        return view

    def rows(self) -> list[tuple[str, str, str, int]]:
        """(split, decision, reason, items), decisions in DECISIONS order, reasons by count."""
        return [(split, decision, reason, count)
                for split, decisions in self.reasons.items() for decision in DECISIONS if decision in decisions
                for reason, count in sorted(decisions[decision].items(), key=lambda kv: (-kv[1], kv[0]))]

    def summary(self) -> Summary:
        counts = ", ".join(f"{self.decisions[decision]} {decision}" for decision in DECISIONS)
        return Summary(out=[format_table(("split", "decision", "reason", "items"), self.rows())],
                       err=[f"curate: {self.items} items: {counts} -> {self.out}; decisions -> {self.decisions_file}"])

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": "curate", "manifest": self.manifest, "out": self.out, "decisions_file": self.decisions_file,
            "gold_files": self.gold_files, "validated": self.validated, "policy": self.policy.to_json(),
            "items": self.items, "items_out": self.items_out, "decisions": dict(self.decisions),
            "reasons": {split: {decision: dict(by_reason) for decision, by_reason in decisions.items()}
                        for split, decisions in self.reasons.items()},
        }



# ---------------------------------------------------------------------------------------------------- pass 1 and 2
@dataclass
class _Copies:
    """Which items repeat a triplet, as indices: `in_split[i]` is the copy kept in item i's split (i itself when i is
    that copy), `overall[i]` the copy kept of the whole triplet (in the first split of the precedence); `keys[i]` is
    item i's triplet key."""

    in_split: np.ndarray
    overall: np.ndarray
    rank: np.ndarray  # each item's split's rank in the precedence
    keys: np.ndarray
    mute_question: np.ndarray  # the item's question cannot be spoken (read once, in the first pass)
    file_gold: np.ndarray  # the gold files' label of the item's triplet, -1 where they have none
    goes: np.ndarray  # another rule than duplicates and leaks drops the item (known for items with copies only)
    ids: dict[int, str]  # the ids of the items with copies

    # A copy is a duplicate or a leak only of a copy that stays: where every copy goes anyway, none stands in for
    # another, and no decision names a dropped item as `kept_instead`.
    def duplicate(self) -> np.ndarray:
        return (self.in_split != np.arange(len(self.keys))) & ~self.goes[self.in_split]

    def leaked(self) -> np.ndarray:
        return (self.rank != self.rank[self.overall]) & ~self.goes[self.overall]


def _checked(line: Line) -> dict[str, Any]:
    """The line's item with every field curate reads well typed, or a DataError naming file, line and field (the
    item schema is consulted only when something is off: validating every item with it would cost more than
    curating)."""
    item = checked_item(line)
    source, failed = item.get("source"), item.get("failed_checks", [])
    gold = source.get("gold_label") if isinstance(source, dict) else None
    if not (isinstance(source, dict) and isinstance(source.get("line"), int) and not isinstance(source["line"], bool)
            and (gold is None or (gold in (0, 1) and not isinstance(gold, bool)))
            and isinstance(failed, list) and all(isinstance(check, str) for check in failed)
            and ID_PATTERN.fullmatch(item["id"]) and SPLIT_PATTERN.fullmatch(item["split"])):
        raise DataError(f"{line.file}:{line.number}: {schemas.first_error('item', item) or 'source: not an object'}")
    return item


def _failed_checks(item: dict[str, Any], failed_by_id: dict[str, list[str]]) -> list[str]:
    """The item's own failed validate checks, else those `--validated` lists for its id."""
    return item.get("failed_checks") or failed_by_id.get(item["id"]) or []


def _find_copies(path: Path, out: Path, policy: Policy, failed_by_id: dict[str, list[str]],
                 gold_table: Callable[[], tuple[np.ndarray, np.ndarray]], progress: Progress) -> _Copies:
    """Passes 1 and 2, then the copy kept of each triplet. `gold_table` gives the gold files' labels, which are read
    meanwhile: a copy's label, and so whether its answer stands, may be the gold one."""
    keys, split_codes, lines, mute = array("q"), array("H"), array("q"), array("b")
    splits: dict[str, int] = {}
    has_audio = False
    for line in iter_manifest_lines(path):
        item = _checked(line)
        keys.append(triplet_key(item))
        if item["split"] not in splits and len(splits) == MAX_SPLITS:
            raise DataError(f"{line.file}:{line.number}: split: more than {MAX_SPLITS} splits")
        split_codes.append(splits.setdefault(item["split"], len(splits)))
        lines.append(min(item["source"]["line"], LAST_LINE))
        mute.append(bool(unspeakable_in_speech(item["question_text"])))
        has_audio = has_audio or any(field in item for field in AUDIO_FIELDS)
        progress.advance()
    if has_audio and out.resolve().parent != path.resolve().parent:
        raise UsageError(f"--out {out}: must be in the folder of {path} (its audio paths are relative to it)")
    count = len(keys)
    key_of = np.frombuffer(keys, dtype=np.int64)
    split_rank = np.empty(len(splits), dtype=np.int64)  # split code -> its rank in the policy's precedence
    for rank, name in enumerate(sorted(splits, key=policy.split_rank)):
        split_rank[splits[name]] = rank
    rank = split_rank[np.frombuffer(split_codes, dtype=np.uint16)] if count else np.zeros(0, dtype=np.int64)
    mute_question = np.frombuffer(mute, dtype=np.int8)
    file_gold = _file_gold(key_of, gold_table())
    # Pass 2: whether each copy goes for its own sake (its decision as if it had no copies), for the items that have
    # copies; the others are not decoded again.
    _, triplet, copies = np.unique(key_of, return_inverse=True, return_counts=True)
    goes, ids = np.zeros(count, dtype=bool), {}
    for index, item in iter_selected(path, set(np.flatnonzero(copies[triplet] > 1).tolist())):
        ids[index] = item["id"]
        decision, _, _ = _decide(item, int(file_gold[index]), policy, False, False,
                                 _failed_checks(item, failed_by_id), bool(mute_question[index]))
        goes[index] = decision == "drop"
    # The copy kept of a triplet: one that stays first, then the best split, the lowest source line, file order; in
    # each split, the same within the split. The first of each sorted run is the copy kept.
    position, source_line = np.arange(count), np.frombuffer(lines, dtype=np.int64)
    overall, in_split = position.copy(), position.copy()
    for kept, sort_keys, run_keys in ((overall, (position, source_line, rank, goes, key_of), (key_of,)),
                                      (in_split, (position, source_line, goes, rank, key_of), (key_of, rank))):
        order = np.lexsort(sort_keys)
        starts = np.zeros(count, dtype=bool)
        starts[:1] = True
        for column in run_keys:
            ordered = column[order]
            starts[1:] |= ordered[1:] != ordered[:-1]
        first = np.flatnonzero(starts)
        kept[order] = np.repeat(order[first], np.diff(np.r_[first, count]))
    return _Copies(in_split, overall, rank, key_of, mute_question, file_gold, goes, ids)


# ---------------------------------------------------------------------------------------------------------- pass 3
def _decide(item: dict[str, Any], file_gold: int, policy: Policy, duplicate: bool, leaked: bool,
            failed_checks: list[str], mute_question: bool) -> tuple[str, list[str], int | None]:
    """(decision, reasons, new label or None) for one item. `file_gold`: the gold files' label of its triplet (-1:
    none); `duplicate`: it is not the copy kept in its split; `leaked`: its triplet is kept in another split;
    `mute_question`: its question cannot be spoken."""
    drop: list[str] = []
    if duplicate and policy.duplicate == "drop":
        drop.append("duplicate")
    if leaked and policy.cross_split_leak == "drop":
        drop.append("cross_split_leak")
    if failed_checks and policy.failed_checks == "drop":
        drop += failed_checks
    fixes: list[str] = []
    label, new_label = item["label"], None
    gold_label = item["source"].get("gold_label")
    if gold_label is None and file_gold >= 0:
        gold_label = file_gold
    if gold_label is not None and gold_label != label:
        if policy.gold_disagree == "relabel":
            new_label = label = gold_label
            fixes.append("gold_disagree")
        elif policy.gold_disagree == "drop":
            drop.append("gold_disagree")
    problem = answer_check(item, label)
    regenerate = False
    if problem:
        action = getattr(policy, problem)
        if action == "regenerate":
            regenerate = True
            fixes.append(problem)
        elif action == "drop":
            drop.append(problem)
    if policy.unspeakable == "drop" and (mute_question or (
            not regenerate and unspeakable_in_speech(item.get("answer_text") or ""))):
        drop.append("unspeakable")
    if drop:  # the reasons are what made the decision; a label change on the way shows in old/new_label
        return "drop", list(dict.fromkeys(drop)), new_label
    if regenerate:
        return "regenerate", fixes, new_label
    if new_label is not None:
        return "relabel", fixes, new_label
    return "keep", [], None


def _gold_table(gold_files: list[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """The gold labels as (sorted triplet keys, labels): 9 bytes a triplet, looked up for all items at once."""
    gold = load_gold(gold_files)
    keys = np.fromiter(gold.keys(), dtype=np.int64, count=len(gold))
    labels = np.fromiter(gold.values(), dtype=np.int8, count=len(gold))
    order = np.argsort(keys)
    return keys[order], labels[order]


@contextmanager
def _gold_loader(gold_files) -> Iterator[Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """Read the gold files in a second process while the first pass runs here: both are CPU-bound, and gold files
    are often as long as the corpus. Gives a function that returns the gold table (raising what reading raised)."""
    if not gold_files:
        yield lambda: (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
        return
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=worker_signals)
    future = pool.submit(_gold_table, list(gold_files))
    try:
        yield future.result
    finally:
        stop_now(pool)


def _file_gold(keys: np.ndarray, gold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each item's label in the gold files, -1 where its triplet is not there."""
    gold_keys, gold_labels = gold
    if not len(gold_keys):
        return np.full(len(keys), -1, dtype=np.int8)
    at = np.minimum(np.searchsorted(gold_keys, keys), len(gold_keys) - 1)
    return np.where(gold_keys[at] == keys, gold_labels[at], -1).astype(np.int8)


def _same_lines(lines: Iterator, rows: Iterator, path: Path) -> Iterator[tuple]:
    """Each line of the second pass with its first-pass row; a file that changed in between is a DataError."""
    try:
        yield from zip(lines, rows, strict=True)
    except ValueError as exc:
        if not str(exc).startswith("zip()"):
            raise
        raise DataError(f"{path}: the file changed while it was being read") from None


def _rows(*columns: np.ndarray, chunk: int = 1 << 16) -> Iterator[tuple]:
    """The columns' values item by item, as Python values, converted a chunk at a time (a list of a million ints
    would cost more memory than the whole first pass)."""
    for start in range(0, len(columns[0]), chunk):
        yield from zip(*(column[start:start + chunk].tolist() for column in columns))


def _validated_checks(path: Path | None) -> dict[str, list[str]]:
    """id -> failed check names, from a `validate --out` manifest; a line without a string id or with failed_checks
    that are not a list of names is a DataError naming file, line and field."""
    if path is None:
        return {}
    failed = {}
    for line in iter_manifest_lines(path):
        item_id, checks = line.record.get("id"), line.record.get("failed_checks", [])
        if not isinstance(item_id, str):
            raise DataError(f"{line.file}:{line.number}: id: missing or not a string (--validated takes the manifest "
                            "`validate --out` writes)")
        if not isinstance(checks, list) or not all(isinstance(check, str) for check in checks):
            raise DataError(f"{line.file}:{line.number}: failed_checks: expected a list of check names")
        if checks:
            failed[item_id] = checks
    return failed


def curate_manifest(path: str | Path, *, out: str | Path, gold_files=(), validated: str | Path | None = None,
                    policy: Policy = Policy(), progress: Progress = SILENT) -> CurateReport:
    """Write the curated manifest `out` and its decisions file; see the module docstring."""
    path, out = Path(path), Path(out)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    decisions_file = decisions_path(out)
    if out.resolve() == path.resolve() or decisions_file.resolve() == path.resolve():
        raise UsageError(f"--out {out}: must differ from the manifest being curated")
    failed_by_id = _validated_checks(Path(validated) if validated else None)
    report = CurateReport(manifest=str(path), out=str(out), decisions_file=str(decisions_file), policy=policy,
                          gold_files=[str(g) for g in gold_files], validated=str(validated) if validated else None)
    progress.start("curate: read", total=count_lines(path))
    with _gold_loader(gold_files) as gold_table:  # the gold files are read in another process meanwhile
        copies = _find_copies(path, out, policy, failed_by_id, gold_table, progress)
    report.items = len(copies.keys)
    duplicate, leaked = copies.duplicate(), copies.leaked()
    progress.start("curate: write", total=report.items)
    rows = _rows(copies.file_gold, duplicate, leaked, copies.overall, copies.in_split, copies.mute_question)
    with AtomicWriter(out) as curated, AtomicWriter(decisions_file) as decisions:
        # every line was checked by the first pass: here they are only decoded
        for (number, raw, item), (gold, is_copy, is_leak, overall, in_split, mute) in _same_lines(
                iter_checked(path), rows, path):
            decision, reasons, new_label = _decide(item, gold, policy, is_copy, is_leak,
                                                   _failed_checks(item, failed_by_id), bool(mute))
            report.count(item["split"], decision, reasons)
            progress.advance()
            if decision != "keep":
                entry = {"id": item["id"], "split": item["split"], "line": number, "decision": decision,
                         "reasons": reasons}
                if new_label is not None:
                    entry |= {"old_label": item["label"], "new_label": new_label}
                if "cross_split_leak" in reasons:
                    entry["kept_instead"] = copies.ids[overall]
                elif "duplicate" in reasons:
                    entry["kept_instead"] = copies.ids[in_split]
                if isinstance(item.get("rerender"), dict):  # spoken again before this: each voice, each failure
                    entry["rerender_attempts"] = item["rerender"]["attempts"]
                decisions.write_record(entry)
            if decision == "drop":
                continue
            report.items_out += 1
            if decision == "keep" and "needs_answer" not in item and "failed_checks" not in item:
                curated.file.write(raw.rstrip()[:-1] + NOT_NEEDING_AN_ANSWER)  # the line as it was, plus the mark
            else:
                curated.write_record(_curated_item(item, decision, reasons, new_label))
    return report


def _curated_item(item: dict[str, Any], decision: str, reasons: list[str], new_label: int | None) -> dict[str, Any]:
    item = dict(item)
    item.pop("failed_checks", None)  # they were this release's checks; the item is checked again after changes
    if new_label is not None:
        item["curation"] = {"decision": decision, "reasons": reasons, "old_label": item["label"]}
        item["label"] = new_label
    elif decision != "keep" and not (item.get("needs_answer") and reasons == ["answer_missing"]):
        # (an item still waiting for its answer keeps the record of why it was first marked: curating is idempotent)
        item["curation"] = {"decision": decision, "reasons": reasons}
    if decision == "regenerate":  # the answer goes, with its audio: reason writes a new one for the (new) label
        item.pop("answer_text", None)
        item.pop(AUDIO_FIELDS[1], None)
    item["needs_answer"] = decision == "regenerate"
    return item


@dataclass(frozen=True)
class CurateOptions:
    gold: tuple[Path, ...] = option((), help="LogiQA 2.0 NLI file with gold labels; repeatable.")
    validated: Path | None = option(None,
        help="A `validate --out` manifest: items that failed its checks are dropped.")
    policy: Path | None = option(None,
        help="YAML policy overriding the default rules (schemas/curate-policy.schema.json).")


def run(manifest: Path, out: Path, options: CurateOptions, *, progress: Progress = SILENT) -> CurateReport:
    """The curate stage."""
    return curate_manifest(manifest, out=out, gold_files=options.gold, validated=options.validated,
                           policy=Policy.load(options.policy), progress=progress)


COMMAND_HELP = """Act on the audit's findings: keep, relabel (to the gold label), regenerate (answer removed, marked
needs_answer for `reason`) or drop every item, so that what goes out is free of them.

Duplicates keep the copy with the lowest source line; a triplet in several splits stays in the evaluation split
(test, then dev); unspeakable text and failed validate checks are dropped. Prints decisions x reasons per split.

Example: soundmind-data curate items.jsonl --gold dev.txt --out curated.jsonl --json curate.json
"""

STAGE = Stage("curate", run, CurateOptions, report=True,
              side_files=lambda out: {"the decisions file": decisions_path(out)},
              input_help="Item manifest (JSONL) to curate.",
              output_help="Curated manifest to write; OUT.decisions.jsonl lists every item not plainly kept.",
              help=COMMAND_HELP)
