"""The parquet shard writer: one split's rows into numbered shards of a bounded size, one row group at a time, with
the parquet options `datasets` writes with (content-defined pages, a page index), so that shards are byte-for-byte
reproducible and the Hub's Xet storage stores little again when an item changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from soundmind_data.core.corpus import AUDIO_FIELDS
from soundmind_data.core.errors import DataError

# Streaming readers and the Hub's dataset viewer fetch whole row groups to read one row: ~100 rows keeps that small,
# and the byte cap keeps long spoken answers from making a row group huge.
ROW_GROUP_ROWS = 100
ROW_GROUP_BYTES = 64 * 1024 * 1024
# Parquet's content-defined chunking, with the options `datasets` writes with (its config.DEFAULT_CDC_OPTIONS, which
# the tests compare): a page ends where a rolling hash of the values says, or at 1 MiB. Without it pyarrow writes a
# row group's audio as one page (it checks the page size only every 1,024 rows). Nearly every audio value (100 KB
# and more) meets the hash, so where a page ends depends mostly on where the one before did: after a removed item,
# page ends move until they fall in step again. bench/publish.py measures what Xet then stores again.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


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
