"""The SoundMind release's layout on the Hugging Face Hub (SoundMind-RL/SoundMindDataset), said once: ingest reads it
(`--format soundmind-hub`) and export writes it (`--format soundmind-hub`) through this module; and what a corpus
repaired from a release changed against it (`release_changes`), which publish puts on the card.

    dataset/<split>/metadata.jsonl       one line per item, the fields below
    dataset/<split>/<id>/annotation.json  {"id", "user_content", "answer", "label"}, indented
    dataset/<split>/<id>/question.wav
    dataset/<split>/<id>/answer_<label>.wav
    README.md                             the dataset card, whose YAML header declares the release's licence
                                          (ingest also takes a card in dataset/, beside the split folders)

A metadata line is `{"id": "0001", "question_file_name": "0001/question.wav", "answer_file_name":
"0001/answer_1.wav", "annotation_question": ..., "annotation_answer": ..., "label": 1}`, its file names relative to
the split folder (what `datasets`' audiofolder reads: every `*_file_name` column becomes an Audio column). Labels are
the toolkit's: 1 = entailed, 0 = not-entailed. Ids restart at 0001 in every split, so an item's id in a manifest is
`<split>-<id>` (`dev-0001`; a split name has no "-", so the first "-" splits it back), and its `source` keeps the
release's split (its folder, whatever split the item is given) and id (`{"format": "soundmind-hub", "split": "dev",
"id": "0001", ...}`), which export writes back.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from soundmind_data.core import schemas
from soundmind_data.core import yamlfile
from soundmind_data.core.corpus import AUDIO_FIELDS, SPLIT_PATTERN, imported_audio, split_sort_key
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_manifest_lines
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.report.table import id_sample

FORMAT = "soundmind-hub"
METADATA = "metadata.jsonl"
ANNOTATION = "annotation.json"
# The fields of a metadata line, in the release's order.
ID, QUESTION_FILE, ANSWER_FILE, QUESTION_TEXT, ANSWER_TEXT, LABEL = (
    "id", "question_file_name", "answer_file_name", "annotation_question", "annotation_answer", "label")
CARD = "README.md"
SPLITS_FOLDER = "dataset"  # the folder of the Hub repository holding the split folders, beside its card
# A release id export keeps as the item's folder name: a plain name (never `metadata.jsonl`, `.` or `..`); any other
# is renumbered.
KEPT_ID = re.compile(r"[0-9A-Za-z_]{1,32}")
AUDIO_FORMATS = ("wav", "flac")  # what export writes; the release has WAV
ID_DIGITS = 4  # export numbers items 0001, 0002... within a split, as the release does


class BadLine(ValueError):
    """A metadata line naming an audio file that cannot be taken; the message is "FIELD: reason"."""


# ------------------------------------------------------------------------------------------------------- ids
def corpus_id(split: str, hub_id: str) -> str:
    """The manifest id of the release's item `hub_id` of `split`: unique across splits."""
    return f"{split}-{hub_id}"


def source(split: str | None, hub_id: str) -> dict[str, str]:
    """What an item's `source` keeps of where it was in the release (besides its file and line): the release's split
    (its folder's name; None when that is no split name, the item given another with --split) and id."""
    return {"format": FORMAT, **({"split": split} if split is not None else {}), "id": hub_id}


def source_id(item: dict[str, Any]) -> str | None:
    """The release id an item came with, when it came from a release, is still in the split it had there (an item
    moved to another split gets a new number there) and can name its folder (`KEPT_ID`); None otherwise."""
    origin = item.get("source")
    if isinstance(origin, dict) and origin.get("format") == FORMAT and origin.get("split") == item.get("split"):
        hub_id = origin.get("id")
        return hub_id if isinstance(hub_id, str) and KEPT_ID.fullmatch(hub_id) else None
    return None


def answered(item: dict[str, Any]) -> bool:
    """Whether an item has answer text: its answer recording goes out only beside it, since a release line naming an
    answer file without `annotation_answer` is refused by ingest (a blank text reads as none there)."""
    text = item.get("answer_text")
    return isinstance(text, str) and bool(text.strip())


class ExportIds:
    """The ids export gives items, per split: an item keeps the release id it came with (`source_id`) when no other
    item of its split wants the same one; every other item gets the lowest free number (0001, 0002...) in manifest
    order. Built from a first pass over the manifest: (split, wanted id or None) per item."""

    def __init__(self, wanted: Iterable[tuple[str, str | None]]):
        counts = Counter(wanted)
        self._kept: dict[str, set[str]] = {}
        for (split, hub_id), count in counts.items():
            self._kept.setdefault(split, set())
            if hub_id is not None and count == 1:
                self._kept[split].add(hub_id)
        self._last: Counter = Counter()

    def next(self, split: str, wanted: str | None) -> str:
        """The id of the next item of `split` in manifest order, which wanted `wanted`."""
        kept = self._kept.get(split, set())
        if wanted in kept:
            return wanted
        number = self._last[split] + 1
        while f"{number:0{ID_DIGITS}d}" in kept:
            number += 1
        self._last[split] = number
        return f"{number:0{ID_DIGITS}d}"


# ------------------------------------------------------------------------------------------------------- reading
class SplitSource(NamedTuple):
    metadata: Path  # the split's metadata.jsonl
    split: str  # the split its items are given
    release_split: str | None  # the release's name for it (its folder's), kept as `source.split`; None if no split name


class Release(NamedTuple):
    """What a path given to ingest holds: splits, and the licence the release's card declares."""

    splits: list[SplitSource]
    license: str | None  # as the card writes it (trimmed, lower case): the caller checks that it is a Hub licence id
    card: Path | None  # the card `license` comes from
    notes: list[str]  # cards that were ignored, and why, for ingest's summary


def release_sources(path: Path, split: str | None) -> Release:
    """The splits PATH names: the release folder (each folder in it holding a metadata.jsonl is a split of that
    name), one split folder, or one split's metadata.jsonl. A split is its folder's name unless `split` (--split)
    names it, which only one split may be given. The licence is read from the release's card: beside the split
    folders (an exported release, or a card kept there), else at the Hub repository's root, one folder up, when the
    split folders are in its `dataset/` (as `sources fetch soundmind` writes it); any other folder above is not the
    release's."""
    named = Path(os.path.abspath(path))  # `.` and `..` resolved by name only: the split is the folder as given
    if path.is_file():
        pairs = [(path, named.parent.name)]
    elif (path / METADATA).is_file():
        pairs = [(path / METADATA, named.name)]
    elif path.is_dir():
        pairs = sorted(((folder / METADATA, folder.name) for folder in path.iterdir() if (folder / METADATA).is_file()),
                       key=lambda pair: split_sort_key(pair[1]))
        if not pairs:
            raise UsageError(f"{path}: holds no split folder with a {METADATA} (expected {path}/dev/{METADATA}...)")
        if split is not None:
            raise UsageError(f"--split {split}: {path} holds the splits {', '.join(name for _, name in pairs)}, "
                             f"named by their folders; give one split's {METADATA} to name its split")
    else:
        raise UsageError(f"{path}: no such file or folder")
    for file, name in pairs:
        if split is None and not SPLIT_PATTERN.fullmatch(name):
            raise UsageError(f"{file}: its folder name {name!r} is not a split name (A-Z a-z 0-9 _, 1 to 32 "
                             f"characters): rename the folder, or give this {METADATA} with --split")
    splits = [SplitSource(file, split or name, name if SPLIT_PATTERN.fullmatch(name) else None) for file, name in pairs]
    splits_folder = Path(os.path.abspath(pairs[0][0])).parent.parent
    cards = [splits_folder / CARD, *([splits_folder.parent / CARD] if splits_folder.name == SPLITS_FOLDER else [])]
    notes = []
    for card in cards:  # the nearer card is the release's
        declared, problem = release_license(card)
        notes += [problem] if problem else []
        if declared is not None:
            return Release(splits, declared, card, notes)
    return Release(splits, None, None, notes)


def release_license(card: Path) -> tuple[str | None, str | None]:
    """The licence a release's card declares in its YAML header (`license: mit`), trimmed and in lower case, and
    why the card was ignored: (None, None) without a card or a licence (a release this toolkit exported has no card),
    (None, why) for a card that cannot be read or whose header does not parse (a card is no reason to refuse a
    release)."""
    if not card.is_file():
        return None, None
    ignored = f"{card}: the release's card is ignored:"
    try:
        text = card.read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"{ignored} it cannot be read ({exc.strerror})"
    except UnicodeDecodeError as exc:
        return None, f"{ignored} it is not UTF-8 text (byte {exc.start})"
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    head, marker, _ = text.removeprefix("---\n").partition("\n---")
    if not (text.startswith("---\n") and marker):
        return None, None
    try:
        header = yamlfile.parse_value(head, "header")
    except UsageError as exc:  # "header: not valid YAML: ..."
        return None, f"{ignored} its YAML header does not parse ({str(exc).partition(': ')[2]})"
    declared = header.get("license") if isinstance(header, dict) else None
    if isinstance(declared, list) and len(declared) == 1:
        declared = declared[0]
    return (declared.strip().lower() if isinstance(declared, str) and declared.strip() else None), None


def release_file(folder: Path, name: object, field: str) -> Path:
    """The audio file a metadata line's `field` names, relative to its split `folder`, symlinks resolved: only a
    regular file inside the split folder (no absolute path, no `..` or symlink out of it), and nothing is opened."""
    if not isinstance(name, str) or not name:
        raise BadLine(f"{field}: expected a file name, got {name!r}")
    try:
        path = audio_file(folder, name)
    except UnsafePath as exc:
        raise BadLine(f"{field}: {name[:200]!r} {exc}") from None  # the manifest here: the split's metadata.jsonl
    if not path.is_file():
        raise BadLine(f"{field}: no such file {name[:200]!r} in {folder}")
    return path


# ------------------------------------------------------------------------------------------------------- writing
def file_names(hub_id: str, label: int, ext: str, answered: bool) -> tuple[str, str | None]:
    """The question's and the answer's file names relative to the split folder; the answer's is None without one."""
    return f"{hub_id}/question.{ext}", f"{hub_id}/answer_{label}.{ext}" if answered else None


def metadata_line(hub_id: str, item: dict[str, Any], question: str, answer: str | None) -> dict[str, Any]:
    return {ID: hub_id, QUESTION_FILE: question, ANSWER_FILE: answer, QUESTION_TEXT: item["question_text"],
            ANSWER_TEXT: item.get("answer_text"), LABEL: item["label"]}


def annotation(hub_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """The item's annotation.json: the SoundMind annotation fields (`ingest --format soundmind` reads them)."""
    return {"id": hub_id, "user_content": item["question_text"], "answer": item.get("answer_text"),
            "label": item["label"]}


# ------------------------------------------------------------------------------------------- what a repair changed
SHOWN = 5  # ids named per kind of change; the rest are counted (a release has thousands of items)


@dataclass
class _Named:
    """How many of one kind of change (items, or recordings), and the first few items named."""

    count: int = 0
    items: int = 0
    names: list[str] = field(default_factory=list)

    def add(self, name: str, count: int = 1) -> None:
        self.count += count
        self.items += 1
        if len(self.names) < SHOWN:
            self.names.append(name)

    def __str__(self) -> str:
        return id_sample(self.names, SHOWN, total=self.items)


@dataclass
class ReleaseChanges:
    """What a corpus repaired from a release changed against it, for the card's Curation section: labels corrected
    to gold, answers written anew, recordings synthesised again (and why) or published as the release made them,
    items left out. Counted from the published items that came from the release (`source.format`) and what they
    carry (`curation`, `reason`, `rerender`, their audio's voice), the curate passes' decisions and the ingested
    manifest (`release_changes`)."""

    dataset: str = ""  # the release's `source.dataset`
    ingested: int | None = None  # items of the release ingested; None when the ingested manifest is not known
    published: int = 0
    relabelled: _Named = field(default_factory=_Named)
    answers: _Named = field(default_factory=_Named)  # answers written anew (by `reason`)
    respoken: dict[str, _Named] = field(default_factory=dict)  # why -> recordings synthesised again
    kept: int = 0  # recordings published as the release made them
    dropped: dict[str, _Named] = field(default_factory=dict)  # curate's reasons -> items dropped
    left_out: _Named = field(default_factory=_Named)  # neither published nor dropped by curate (reason, synthesis)

    def paragraphs(self) -> list[str]:
        """The changes as a sentence and a Markdown list, each kind of change with its count and first ids."""
        of = f"of its {self.ingested} items, " if self.ingested is not None else ""
        lines = []
        respoken = sum(named.count for named in self.respoken.values())
        rows = [
            (self.relabelled, f"{_plural(self.relabelled.count, 'label')} corrected to the gold label"),
            (self.answers, f"{_plural(self.answers.count, 'answer')} written anew to reach the label (`reason`)"),
        ]
        for named, text in rows:
            if named.count:
                lines.append(f"- {text}: {named}")
        if respoken:
            lines.append(f"- {_plural(respoken, 'recording')} synthesised again: " + "; ".join(
                f"{named.count} {why}: {named}" for why, named in self.respoken.items()))
        lines.append(f"- {_plural(self.kept, 'recording')} published as the release made them")
        for reasons, named in self.dropped.items():
            lines.append(f"- {_plural(named.count, 'item')} dropped by `curate` ({reasons}): {named}")
        if self.left_out.count:
            lines.append(f"- {_plural(self.left_out.count, 'item')} left out by another stage (no answer reached the "
                         f"gold label, or synthesis failed: see the run log): {self.left_out}")
        return [f"**Against the release** (`{self.dataset}`): {of}{self.published} are published, repaired as "
                "follows.", "\n".join(lines)]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def release_changes(published: Path, decisions: Sequence[Path] = (), ingested: Path | None = None
                    ) -> ReleaseChanges | None:
    """What the corpus `published` changed against the release its items were ingested from (`ingest --format
    soundmind-hub`); None when none of its items came from a release. With `ingested`, the manifest ingest wrote,
    the release's items are counted and those not published are accounted for: dropped by a curate pass (its
    `decisions` file) or left out by another stage. (A decision names no source, so without it no drop can be told
    to be the release's.)"""
    changes = ReleaseChanges()
    published_ids: set[str] = set()
    for line in iter_manifest_lines(published):
        item = line.record
        if not _from_release(item):
            continue
        changes.dataset = changes.dataset or str(item["source"].get("dataset"))
        changes.published += 1
        published_ids.add(item["id"])
        try:
            _count_item(changes, item)
        except (KeyError, TypeError, IndexError) as exc:
            raise DataError(f"{line.file}:{line.number}: {schemas.first_error('item', item) or exc}") from None
    if not changes.published or ingested is None:
        return changes if changes.published else None
    release_ids = {line.record.get("id") for line in iter_manifest_lines(ingested) if _from_release(line.record)}
    changes.ingested = len(release_ids)
    missing = release_ids - published_ids
    for path in decisions:
        for line in iter_manifest_lines(path):
            if problem := schemas.first_error("curate-decision", line.record):
                raise DataError(f"{line.file}:{line.number}: {problem}")
            decision = line.record
            if decision["decision"] == "drop" and decision["id"] in missing:
                changes.dropped.setdefault(", ".join(decision["reasons"]), _Named()).add(decision["id"])
                missing.discard(decision["id"])
    for item_id in sorted(missing):
        changes.left_out.add(item_id)
    return changes


def _from_release(item: dict[str, Any]) -> bool:
    origin = item.get("source")
    return isinstance(origin, dict) and origin.get("format") == FORMAT


def _count_item(changes: ReleaseChanges, item: dict[str, Any]) -> None:
    curation = item.get("curation") or {}
    if "old_label" in curation:
        changes.relabelled.add(f"{item['id']} ({LABEL_NAMES[curation['old_label']]} → {LABEL_NAMES[item['label']]})")
    if "reason" in item:  # `reason` wrote its answer: the release's contradicted the (corrected) label, or was missing
        changes.answers.add(item["id"])
    ours = [key for key in AUDIO_FIELDS if key in item and not imported_audio(item[key])]
    changes.kept += sum(key in item for key in AUDIO_FIELDS) - len(ours)
    if not ours:
        return
    which = ", ".join(key.removesuffix("_audio") for key in ours)
    attempts = (item.get("rerender") or {}).get("attempts")
    if attempts:  # rerender speaks an item's question and answer again together, in one voice
        why, which = "that failed validation", f"{which}; failed {', '.join(attempts[0]['failed_checks'])}"
    elif ours == ["answer_audio"] and "reason" in item:
        why = "whose text was written anew"
    else:
        why = "that the release did not have"
    changes.respoken.setdefault(why, _Named()).add(f"{item['id']} ({which})", len(ours))
