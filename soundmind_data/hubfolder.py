"""The Hub-ready folder of a corpus: parquet shards with the audio embedded, as users load them with `datasets`.

The publish stage (stages/publish.py) builds it here, then adds the card (card.py) and plots and uploads it (hub.py);
export reuses the audio checks. The folder holds `data/{split}-{i:05d}-of-{n:05d}.parquet` with the audio embedded
as FLAC bytes and the Hugging Face features in each file's schema metadata (so `datasets` sees `Audio` and
`ClassLabel` columns). Items stream through one at a time: only the row group being filled (at most ROW_GROUP_ROWS
rows per split) is ever in memory, whatever the corpus size.

Shards are byte-for-byte reproducible from the same manifest and audio, so republishing re-uploads only what changed.
They are written with the parquet options `datasets` 5 writes with (`to_parquet`, `push_to_hub`): content-defined
page boundaries, pages of at most about 1 MiB, and a page index, so that a reader can fetch one page of a row group
rather than all of it. The audio bytes are stored as they are, so the Hub's Xet storage, which deduplicates by
content-defined chunks of the file, stores little again when an item changes (`bench/publish.py` measures it).
A folder is rebuilt beside its old contents (in `.building/`) and swapped in by renames, so that whenever the folder
holds a `data/` it is a whole one, and whenever it holds a card the card describes that `data/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import soundfile

from soundmind_data import schemas, tempfiles
from soundmind_data.corpus import AUDIO_FIELDS, CARD_FILE, DATA_DIR, ID_PATTERN, SPLIT_PATTERN, imported_audio, \
    split_sort_key, voice_of
from soundmind_data.errors import DataError, UsageError
from soundmind_data.jsonl import iter_records
from soundmind_data.labels import LABEL_NAMES
from soundmind_data.paths import UnsafePath, audio_file
from soundmind_data.textkey import id_digest
from soundmind_data.tts.voices import CATALOG

# Streaming readers and the Hub's dataset viewer fetch whole row groups to read one row: ~100 rows keeps that small,
# and the byte cap keeps long spoken answers from making a row group huge.
ROW_GROUP_ROWS = 100
ROW_GROUP_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SHARD_SIZE = "500MB"
# Parquet's content-defined chunking, with the options `datasets` writes with (its config.DEFAULT_CDC_OPTIONS, which
# the tests compare): a page ends where a rolling hash of the values says, or at 1 MiB. Without it pyarrow writes a
# row group's audio as one page (it checks the page size only every 1,024 rows). Nearly every audio value (100 KB
# and more) meets the hash, so where a page ends depends mostly on where the one before did: after a removed item,
# page ends move until they fall in step again. bench/publish.py measures what Xet then stores again.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
# How a file in each audio format export and publish write begins, and the sample formats each can hold, by bit
# depth: a file re-encoded into it keeps its source's depth where the format holds that (FLAC stops at 24 bits).
ENCODINGS = {
    "flac": (lambda data: data.startswith(b"fLaC"), ("PCM_16", "PCM_24")),
    "wav": (lambda data: data[:4] == b"RIFF" and data[8:12] == b"WAVE", ("PCM_16", "PCM_24", "PCM_32")),
}
# Licences by voice name, whether or not the voice is installed here: publishing needs no TTS engine.
CATALOG_VOICES = {voice.name: voice for voice in CATALOG}
STAGING = ".building"  # the folder's next contents, written beside its current ones
REPLACED = ".replaced"  # its previous contents, moved aside until the new ones are in place, then deleted
DATASETS_CACHE = "datasets-cache"  # the pre-push check's own `datasets` cache, a temp folder inside the folder


def features():
    """The `datasets.Features` of a published row: what `load_dataset` shows users."""
    from datasets import Audio, ClassLabel, Features, Value

    text, number, integer = Value("string"), Value("float64"), Value("int64")
    return Features({
        "id": text,
        "question_audio": Audio(),
        "answer_audio": Audio(),
        "label": ClassLabel(names=list(LABEL_NAMES)),
        "question_text": text,
        "answer_text": text,
        "major_premise": text,
        "minor_premise": text,
        "conclusion": text,
        "source_dataset": text,
        "source_file": text,
        "source_line": integer,
        "source_gold_label": integer,
        "question_duration_s": number,
        "answer_duration_s": number,
        "question_wer": number,
        "answer_wer": number,
        "question_loudness_lufs": number,
        "answer_loudness_lufs": number,
        "sample_rate": integer,
        "voice": text,
        "tts_backend": text,
        "tts_voice": text,
        "tts_license": text,
        "tts_model_md5": text,
    })


def arrow_schema() -> pa.Schema:
    """The parquet schema, carrying the features as JSON under the `huggingface` metadata key (what `datasets` reads)."""
    return features().arrow_schema


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


# ------------------------------------------------------------------------------------------------------ audio bytes
def audio_bytes(data: bytes, audio_format: str, where: str) -> bytes:
    """Audio file bytes as `audio_format` ("flac" or "wav"): a file already in it as it is (a release's recordings go
    out unchanged); anything else soundfile reads re-encoded, keeping its source's bit depth where the format holds it
    (24-bit FLAC as 24-bit WAV), as deep as the format goes where the source is deeper (32-bit WAV as 24-bit FLAC),
    and as 16 bits otherwise (8-bit, float, a lossy codec). `where` ("FILE:LINE: FIELD") names the file in errors."""
    is_format, subtypes = ENCODINGS[audio_format]
    if is_format(data):
        return data
    with decoding(where), soundfile.SoundFile(io.BytesIO(data)) as source:
        subtype = source.subtype
        if subtype not in subtypes:
            subtype = subtypes[-1] if subtype == "PCM_32" else "PCM_16"
        samples = source.read(dtype="int16" if subtype == "PCM_16" else "int32", always_2d=True)
        rate = source.samplerate
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=audio_format.upper(), subtype=subtype)
    return out.getvalue()


@contextmanager
def decoding(where: str) -> Iterator[None]:
    """Turn libsndfile's errors on a file that passed its sha256 check (but was never audio) into a DataError."""
    try:
        yield
    except RuntimeError as exc:  # soundfile.LibsndfileError and its parents
        raise DataError(f"{where}: does not decode as audio ({exc})") from None


def checked_audio_bytes(item: dict, key: str, root: Path, where: str) -> bytes | None:
    """The bytes of one audio file of an item (`root` is the manifest's folder), checked against its sha256."""
    audio = item.get(key)
    if audio is None:
        return None
    try:
        path = audio_file(root, audio["path"])
    except UnsafePath as exc:
        raise DataError(f"{where}: {key}.path: {audio['path']}: {exc}") from None
    if not path.is_file():
        raise DataError(f"{where}: {key}.path: no such file {path}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != audio["sha256"]:
        raise DataError(f"{where}: {key}.sha256: {path} does not match its sha256 (file changed after synthesis?)")
    _check_decodes(data, audio, path, f"{where}: {key}.path")
    return data


def _check_decodes(data: bytes, audio: dict, path: Path, where: str) -> None:
    """Every file that goes out decodes to its last frame and lasts what its entry says: a truncated file whose
    sha256 was taken after it was cut (a manifest edited by hand, a copy that broke) matches and must not pass."""
    with decoding(where), soundfile.SoundFile(io.BytesIO(data)) as source:
        announced, rate = source.frames, source.samplerate
        decoded = sum(len(block) for block in source.blocks(blocksize=1 << 16, dtype="int16"))
    seconds = decoded / rate
    if decoded != announced or abs(seconds - audio["duration_s"]) > max(0.05, 0.01 * audio["duration_s"]):
        raise DataError(f"{where}: {path} is truncated or damaged: it decodes to {seconds:.2f} s of the "
                        f"{audio['duration_s']:g} s its entry says")


def read_item_audio(item: dict, key: str, root: Path, where: str) -> dict | None:
    """`{"bytes": FLAC, "path": name}` for one audio field of an item, as the `Audio` feature stores it."""
    data = checked_audio_bytes(item, key, root, where)
    if data is None:
        return None
    name = f"{item['id']}-{key.removesuffix('_audio')}.flac"
    return {"bytes": audio_bytes(data, "flac", f"{where}: {key}.path"), "path": name}


def _audio_field(item: dict, key: str, name: str) -> Any:
    audio = item.get(key)
    return None if audio is None else audio.get(name)


class Speaker(NamedTuple):
    """Who speaks an item, as its row and the card's Voices table name it."""

    voice: str  # ENGINE:VOICE
    engine: str
    license: str


def public_voice(name: str) -> str:
    """A voice name fit to publish: a model given by its path (`piper:/home/me/my-voice.onnx`) keeps only its file
    name, since the path the builder typed may reveal their home folder."""
    engine, colon, engine_voice = name.partition(":")
    return f"{engine}:{Path(engine_voice).name}" if colon and "/" in engine_voice else name


def speaker(item: dict) -> Speaker:
    """The voice of an item's question audio (the speaker plan gives its answer the same voice), its engine and
    licence. Audio made before entries named their voice is attributed as `corpus.voice_of` does; the licence is the
    catalog's, else what the item's `tts` record says (a Kokoro mix, a model of the builder's own). That record tells
    of speech synthesised here, never of a release's own recording (whose answer alone may have been spoken again)."""
    audio = item["question_audio"]
    tts = {} if imported_audio(audio) else item.get("tts") or {}
    name = voice_of(item, audio)
    engine, colon, _ = name.partition(":")
    known = CATALOG_VOICES.get(name)
    return Speaker(voice=public_voice(name), engine=audio.get("engine") or (engine if colon else "unknown"),
                   license=known.license if known else tts.get("license") or "unknown")


def to_row(item: dict, root: Path, where: str) -> dict[str, Any]:
    """One manifest item as a published row (audio read, checked and embedded)."""
    source, tts = item["source"], item.get("tts") or {}
    question = read_item_audio(item, "question_audio", root, where)
    if question is None:
        raise DataError(f"{where}: question_audio: missing (run synthesis before publishing)")
    return {
        "id": item["id"],
        "question_audio": question,
        "answer_audio": read_item_audio(item, "answer_audio", root, where),
        "label": item["label"],
        "question_text": item["question_text"],
        "answer_text": item.get("answer_text"),
        "major_premise": item["major_premise"],
        "minor_premise": item["minor_premise"],
        "conclusion": item["conclusion"],
        "source_dataset": source["dataset"],
        # Only the file name: the path the builder typed may reveal their home folder.
        "source_file": Path(source["file"]).name,
        "source_line": source["line"],
        "source_gold_label": source.get("gold_label"),
        "question_duration_s": _audio_field(item, "question_audio", "duration_s"),
        "answer_duration_s": _audio_field(item, "answer_audio", "duration_s"),
        "question_wer": _audio_field(item, "question_audio", "wer"),
        "answer_wer": _audio_field(item, "answer_audio", "wer"),
        "question_loudness_lufs": _audio_field(item, "question_audio", "loudness_lufs"),
        "answer_loudness_lufs": _audio_field(item, "answer_audio", "loudness_lufs"),
        "sample_rate": item["question_audio"]["sample_rate"],
        "voice": speaker(item).voice,
        "tts_backend": tts.get("backend"),
        "tts_voice": tts.get("voice"),
        "tts_license": tts.get("license"),
        "tts_model_md5": tts.get("model_md5"),
    }


def check_names(item: dict, where: str) -> None:
    """The split, id and label become file and folder names (and split names must suit `datasets`): check them before
    anything is written, naming the field as the item schema does."""
    try:
        good = bool(SPLIT_PATTERN.fullmatch(item["split"]) and ID_PATTERN.fullmatch(item["id"])
                    and item["label"] in (0, 1) and not isinstance(item["label"], bool))
    except (KeyError, TypeError):
        good = False
    if not good:
        raise DataError(f"{where}: {schemas.first_error('item', item) or 'split, id or label'}")


def checked_row(item: dict, root: Path, where: str) -> dict[str, Any]:
    """`to_row`, consulting the item schema only when something is off: validating every item with jsonschema costs
    more than embedding its audio."""
    check_names(item, where)
    try:
        return to_row(item, root, where)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{where}: {schemas.first_error('item', item) or exc}") from None


def row_bytes(row: dict) -> int:
    """Approximate stored size of a row: its audio bytes (incompressible) plus its text."""
    audio = sum(len(row[key]["bytes"]) for key in AUDIO_FIELDS if row[key] is not None)
    text = sum(len(value.encode("utf-8")) for value in row.values() if isinstance(value, str))
    return audio + text


# ------------------------------------------------------------------------------------------------------- statistics
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


# ---------------------------------------------------------------------------------------------------- shard writing
class SplitWriter:
    """Writes one split's rows into numbered shards of at most `max_shard_bytes`, one row group at a time.

    Shards are first written under temporary names (their count is unknown until the split ends) and renamed by
    `finish()`.
    """

    def __init__(self, folder: Path, split: str, schema: pa.Schema, max_shard_bytes: int):
        self.folder, self.split, self.schema, self.max_shard_bytes = folder, split, schema, max_shard_bytes
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0  # rows given to the current shard, written or still buffered
        self._buffer: list[dict] = []
        self._buffer_where: list[str] = []  # file:line of each buffered row, for errors
        self._buffer_bytes = 0

    def write(self, row: dict, size: int, where: str) -> None:
        if self._shard_bytes and self._shard_bytes + size > self.max_shard_bytes:
            self._close_shard()
        self._buffer.append(row)
        self._buffer_where.append(where)
        self._buffer_bytes += size
        self._shard_bytes += size
        if len(self._buffer) >= ROW_GROUP_ROWS or self._buffer_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            path = self.folder / f".{self.split}-{len(self.paths):05d}.parquet.tmp"
            self.paths.append(path)
            self._writer = parquet_writer(path, self.schema)
        try:
            table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a wrongly typed field somewhere in this row group
            raise DataError(f"{self._buffer_where[0]} to {self._buffer_where[-1]}: {exc} "
                            f"(run `soundmind-data validate` on the manifest)") from None
        self._writer.write_table(table, row_group_size=len(self._buffer))
        self._buffer, self._buffer_where, self._buffer_bytes = [], [], 0

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._shard_bytes = 0

    def finish(self) -> list[Path]:
        """Close the last shard and give every shard its final `{split}-{i}-of-{n}` name."""
        self._close_shard()
        final = []
        for index, path in enumerate(self.paths):
            target = path.with_name(shard_name(self.split, index, len(self.paths)))
            path.replace(target)
            final.append(target)
        return final

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for path in self.paths:
            path.unlink(missing_ok=True)


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A parquet writer tuned for embedded audio: FLAC bytes are stored as they are (compressing them again costs
    time and saves nothing) and get no statistics; text columns get zstd. Pages are cut by content and indexed, with
    the options recorded in the footer, as `datasets` does (see CDC_OPTIONS); the page index lets a reader fetch one
    page of a row group rather than all of it."""
    audio_bytes = {f"{column}.bytes" for column in AUDIO_FIELDS}
    leaf_columns = list(schema_leaf_paths(schema))
    compression = {name: ("NONE" if name in audio_bytes else "ZSTD") for name in leaf_columns}
    plain = [name for name in leaf_columns if name not in audio_bytes]
    writer = pq.ParquetWriter(path, schema, compression=compression, use_dictionary=plain, write_statistics=plain,
                              use_content_defined_chunking=CDC_OPTIONS, write_page_index=True)
    writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
    return writer


def schema_leaf_paths(schema: pa.Schema) -> Iterator[str]:
    def walk(prefix: str, data_type: pa.DataType) -> Iterator[str]:
        if pa.types.is_struct(data_type):
            for child in data_type:
                yield from walk(f"{prefix}.{child.name}", child.type)
        else:
            yield prefix

    for column in schema:
        yield from walk(column.name, column.type)


# ------------------------------------------------------------------------------------------------------------ build
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
    on_item: Callable[[], None] | None = None,
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
            if on_item:
                on_item()
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
    on_item: Callable[[], None] | None = None,
) -> BuildResult:
    """Write `folder/data/*.parquet` from `manifest`, replacing the folder's shards once the new ones are complete
    and removing the card that described the old ones (the card is written separately, from the result)."""
    result = build_shards(manifest, folder, max_shard_size=max_shard_size, on_item=on_item)
    shutil.rmtree(replace_contents(Path(folder), (DATA_DIR,)))
    return result


# ------------------------------------------------------------------------------------------------- pre-push check
@dataclass
class CheckResult:
    ok: bool
    problems: list[str]
    decoded: dict[str, float]  # split -> seconds of question audio decoded from its first row


def check_folder(folder: str | Path, expected: BuildResult) -> CheckResult:
    """Load the folder the way users will (`datasets`, streaming) and decode one row per split with torchcodec.

    Also checks that the features are the published ones and that every split's shards hold the expected rows.
    """
    import datasets

    folder = Path(folder)
    problems: list[str] = []
    decoded: dict[str, float] = {}
    for split, stats in expected.splits.items():
        rows = sum(pq.ParquetFile(folder / DATA_DIR / name).metadata.num_rows for name in stats.shards)
        if rows != stats.rows:
            problems.append(f"split {split}: shards hold {rows} rows, expected {stats.rows}")
    with own_datasets_cache(folder) as cache:
        try:
            # resolved: `datasets` names the dataset after the folder, and "." has no name (publish --local-dir .)
            loaded = datasets.load_dataset(str(folder.resolve()), streaming=True, cache_dir=str(cache))
        except Exception as exc:  # noqa: BLE001 - any failure to load is exactly what this check reports
            return CheckResult(False, problems + [f"datasets.load_dataset failed: {type(exc).__name__}: {exc}"],
                               decoded)
        _check_loaded(loaded, expected, problems, decoded)
    return CheckResult(not problems, problems, decoded)


@contextmanager
def own_datasets_cache(folder: Path) -> Iterator[Path]:
    """A `datasets` cache of the check's own, inside the folder checked and removed after it: even a streaming load
    leaves a lock file named after the folder in the cache, and the user's would collect one per publish, named
    after staging folders long deleted. One left by a check that was killed is removed by the next."""
    tempfiles.sweep(folder, DATASETS_CACHE)
    cache = tempfiles.make_temp_dir(folder, DATASETS_CACHE)
    try:
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _check_loaded(loaded, expected: BuildResult, problems: list[str], decoded: dict[str, float]) -> None:
    """The checks on what `datasets` loaded: splits, features, and each split's first row decoding to its length."""
    if sorted(loaded) != sorted(expected.splits):
        problems.append(f"datasets sees splits {sorted(loaded)}, expected {sorted(expected.splits)}")
    want = features()
    for split in expected.splits:
        if split not in loaded:
            continue
        got = loaded[split].features
        if got is None or got != want:
            problems.append(f"split {split}: features differ from the published schema")
            continue
        try:
            row = next(iter(loaded[split]))
            samples = row["question_audio"].get_all_samples()
        except Exception as exc:  # noqa: BLE001 - a decoding failure of any kind fails the check
            problems.append(f"split {split}: first row does not decode: {type(exc).__name__}: {exc}")
            continue
        seconds = samples.data.shape[-1] / samples.sample_rate
        decoded[split] = seconds
        if samples.data.numel() == 0 or abs(seconds - row["question_duration_s"]) > 0.05:
            problems.append(f"split {split}: row {row['id']} decodes to {seconds:.3f} s of audio, "
                            f"manifest says {row['question_duration_s']:.3f} s")
