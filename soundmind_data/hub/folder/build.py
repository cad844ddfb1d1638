"""The Hub-ready folder built from a manifest: every item streamed through `rows` into the shard writer, the
figures the card needs gathered on the way (BuildResult), and the new shards swapped in for the folder's old ones
by renames (`replace_contents`), so that an interrupted build leaves the previous folder whole.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from soundmind_data.core import schemas
from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import AUDIO_FIELDS, CARD_FILE, DATA_DIR, imported_audio, split_sort_key, voice_of
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_records
from soundmind_data.core.stage import Progress, SILENT
from soundmind_data.hub.folder.rows import Speaker, arrow_schema, checked_row, public_voice, row_bytes, speaker
from soundmind_data.hub.folder.shards import SplitWriter
from soundmind_data.text.textkey import id_digest

DEFAULT_MAX_SHARD_SIZE = "500MB"
STAGING = ".building"  # the folder's next contents, written beside its current ones
REPLACED = ".replaced"  # its previous contents, moved aside until the new ones are in place, then deleted


@dataclass
class SplitStats:
    """What the dataset card says about one split."""

    rows: int = 0
    labels: Counter = field(default_factory=Counter)
    question_seconds: float = 0.0
    answer_seconds: float = 0.0
    answers: int = 0
    num_bytes: int = 0
    shards: list[str] = field(default_factory=list)

    def add(self, row: dict, size: int) -> None:
        self.rows += 1
        self.labels[row["label"]] += 1
        self.question_seconds += row["question_duration_s"]
        if row["answer_audio"] is not None:
            self.answers += 1
            self.answer_seconds += row["answer_duration_s"]
        self.num_bytes += size


@dataclass
class BuildResult:
    folder: Path
    splits: dict[str, SplitStats] = field(default_factory=dict)
    voices: dict[Speaker, Counter] = field(default_factory=dict)  # speaker -> items per split
    source_datasets: Counter = field(default_factory=Counter)
    # (imported?, voice, audio field) -> files: where each audio came from, for the card's Provenance
    audio_origins: Counter = field(default_factory=Counter)
    declared_licenses: Counter = field(default_factory=Counter)  # (source dataset, source.license) -> items
    toolkit_versions: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)  # paths relative to `folder`, README.md included

    @property
    def rows(self) -> int:
        return sum(stats.rows for stats in self.splits.values())

    @property
    def audio_hours(self) -> float:
        return sum(s.question_seconds + s.answer_seconds for s in self.splits.values()) / 3600


def parse_size(text: str) -> int:
    """`500MB`, `2GB`, `100MiB` or a byte count → bytes."""
    from datasets.utils.py_utils import convert_file_size_to_int

    try:
        size = convert_file_size_to_int(text.strip() if isinstance(text, str) else text)
    except (ValueError, TypeError):
        raise UsageError(f"--max-shard-size {text!r}: expected a size like 500MB, 2GB or 100MiB") from None
    if size < 1:
        raise UsageError(f"--max-shard-size {text!r}: must be positive")
    return size


def build_shards(
    manifest: str | Path,
    folder: str | Path,
    *,
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    progress: Progress = SILENT,
) -> BuildResult:
    """Write the shards of `manifest` into `folder/.building/data/`, leaving the folder's own `data/` as it is until
    `replace_contents` puts them in its place (an interrupted build leaves the previous folder intact). The result's
    files are named as they will be in `folder`."""
    manifest, folder = Path(manifest), Path(folder)
    max_bytes = max_shard_size if isinstance(max_shard_size, int) else parse_size(max_shard_size)
    root = manifest.parent
    staging = folder / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (staging / DATA_DIR).mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create folder: {exc.strerror}") from None
    schema = arrow_schema()
    result = BuildResult(folder=folder)
    writers: dict[str, SplitWriter] = {}
    seen_ids: set[bytes] = set()  # 8-byte digests: uniqueness costs a few bytes per item
    good_licenses: set[str] = set()  # declared source licences already checked against the item schema
    try:
        for number, item in enumerate(iter_records(manifest), start=1):
            where = f"{manifest}:{number}"
            row = checked_row(item, root, where)
            digest = id_digest(item["id"])
            if digest in seen_ids:
                raise DataError(f"{where}: id: duplicate id {item['id']!r}")
            seen_ids.add(digest)
            size = row_bytes(row)
            split = item["split"]
            if split not in writers:
                writers[split] = SplitWriter(staging / DATA_DIR, split, schema, max_bytes)
                result.splits[split] = SplitStats()
            writers[split].write(row, size, where)
            result.splits[split].add(row, size)
            result.voices.setdefault(speaker(item), Counter())[split] += 1
            tts = item.get("tts") or {}
            result.source_datasets[item["source"]["dataset"]] += 1
            for key in AUDIO_FIELDS:
                if item.get(key) is not None:
                    result.audio_origins[imported_audio(item[key]), public_voice(voice_of(item, item[key])), key] += 1
            if (declared := item["source"].get("license")) is not None:
                if declared not in good_licenses:  # the card prints it: only a Hub licence id's shape, never Markdown
                    problem = schemas.first_error("item", item)
                    if problem:
                        raise DataError(f"{where}: {problem}")
                    good_licenses.add(declared)
                result.declared_licenses[item["source"]["dataset"], declared.lower()] += 1
            if tts.get("toolkit_version"):
                result.toolkit_versions.add(tts["toolkit_version"])
            progress.advance()
        if not writers:
            raise DataError(f"{manifest}: no items to publish")
        for split in sorted(writers, key=split_sort_key):
            result.splits[split].shards = [path.name for path in writers[split].finish()]
    except BaseException:
        for writer in writers.values():
            writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.splits = {split: result.splits[split] for split in sorted(result.splits, key=split_sort_key)}
    result.files = [f"{DATA_DIR}/{name}" for stats in result.splits.values() for name in stats.shards]
    return result


def replace_contents(folder: Path, names: tuple[str, ...]) -> Path:
    """Put the entries `names` of `folder/.building/` in place of the folder's own (one it does not hold is removed
    from the folder), and take the folder's card away, since it describes the old shards. Returns the folder the old
    entries were moved to, for the caller to delete once the new card is written.

    Every step is a rename, so a process killed at any moment leaves `data/` whole, old or new (it is missing only
    between two renames), and never a card beside shards it does not describe; the next call deletes what such a run
    left aside."""
    staging, old = folder / STAGING, folder / REPLACED
    # the card first: the folder has none until the caller writes the new one
    tempfiles.swap_in(folder, staging, old, (CARD_FILE, *names))
    staging.rmdir()
    return old


def build_folder(
    manifest: str | Path,
    folder: str | Path,
    *,
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    progress: Progress = SILENT,
) -> BuildResult:
    """Write `folder/data/*.parquet` from `manifest`, replacing the folder's shards once the new ones are complete
    and removing the card that described the old ones (the card is written separately, from the result)."""
    result = build_shards(manifest, folder, max_shard_size=max_shard_size, progress=progress)
    shutil.rmtree(replace_contents(Path(folder), (DATA_DIR,)))
    return result
