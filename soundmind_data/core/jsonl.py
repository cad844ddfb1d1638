"""JSON Lines I/O: lazy reading with line numbers, atomic writing.

Readers yield one record at a time so memory does not grow with the file (Lhotse's rule). Writers go to a
temporary file beside the target and rename it into place on success, so an interrupted stage never leaves a
half-written file that later looks valid.
"""

from __future__ import annotations

import codecs
import io
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, NamedTuple

import orjson

from soundmind_data.core import tempfiles
from soundmind_data.core.errors import UsageError

BOM = codecs.BOM_UTF8


class Line(NamedTuple):
    """One physical line of a JSONL file: either a decoded object or the reason it could not be decoded.

    A NamedTuple rather than a dataclass: it is built once per line, and this keeps that cheap.
    """

    file: str
    number: int  # 1-based
    record: dict[str, Any] | None
    error: str | None = None


def _open(path: Path, *, skip_bom: bool = True):
    """The file for reading lines; with `skip_bom`, past a UTF-8 byte-order mark at its start (what Windows editors
    write: orjson refuses it, which would cost the first line). Checked once per file, so lines stay as cheap."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a JSONL file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    if skip_bom and handle.peek(len(BOM)).startswith(BOM):
        handle.read(len(BOM))
    return handle


def _decode(raw: bytes) -> tuple[Any, str | None]:
    """(object, None) for a valid JSON object line, else (None, reason)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return None, f"invalid UTF-8 at byte {bad.start}"
        return None, f"malformed JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}"
    return record, None


def iter_lines(path: str | Path, *, skip_bom: bool = True) -> Iterator[Line]:
    """Yield every non-blank line of a JSONL file, decoded, or with the reason it is not a JSON object.

    Invalid UTF-8 and malformed JSON are per-line errors, never exceptions: one bad line must not cost the rest. A
    byte-order mark at the start is skipped unless `skip_bom` is false; CRLF line ends need nothing (JSON allows a
    CR after the object).
    """
    path = Path(path)
    with _open(path, skip_bom=skip_bom) as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.isspace():
                continue
            record, error = _decode(raw)
            yield Line(str(path), number, record, error)


MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # the most of a file read at once to try it as one indented JSON document


def iter_source_lines(path: str | Path) -> Iterator[Line]:
    """`iter_lines` for source files people hand us, which may also be one indented JSON object (a SoundMind
    `annotation.json`): JSON Lines are read line by line as ever, streaming; a file whose first non-blank line is not
    JSON at all is tried as one JSON document, and is then one record numbered by the line its object starts on. A
    document that is not an object, or an indented object ("{" alone on its first line) that does not parse, is one
    error at its line; anything else stays JSON Lines with per-line errors, so one bad line never costs the rest."""
    path = Path(path)
    with _open(path) as handle:
        number, raw = 0, b""
        for number, raw in enumerate(handle, start=1):
            if not raw.isspace():
                break
        else:
            return
        first, error = _decode(raw)
        rest: Iterator[bytes] = handle
        if error is not None and error.startswith("malformed JSON"):
            head = handle.read(MAX_DOCUMENT_BYTES + 1)
            if len(raw) + len(head) <= MAX_DOCUMENT_BYTES:
                document = _document(str(path), number, raw + head)
                if document is not None:
                    yield document
                    return
            rest = itertools.chain(io.BytesIO(head), handle)
        yield Line(str(path), number, first, error)
        for number, raw in enumerate(rest, start=number + 1):
            if not raw.isspace():
                record, error = _decode(raw)
                yield Line(str(path), number, record, error)


def _document(file: str, start: int, text: bytes) -> Line | None:
    """The file's text from line `start` on as one JSON document: a Line with the object or the reason it is not
    one; None when it is no document and does not look like one (then it is read as JSON Lines)."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if text.split(b"\n", 1)[0].strip() != b"{":
            return None
        return Line(file, start + exc.lineno - 1, None, f"malformed JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(record, dict):
        return Line(file, start, None, f"expected a JSON object, got {type(record).__name__}")
    return Line(file, start, record)


def iter_selected(path: str | Path, positions: Collection[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (position, record) for the records at the given 0-based positions among non-blank lines.

    Lines that are not wanted are skipped without being decoded: a cheap second pass over a large manifest.
    """
    position = -1
    with _open(Path(path)) as handle:
        for raw in handle:
            if raw.isspace():
                continue
            position += 1
            if position in positions:
                yield position, orjson.loads(raw)


def iter_checked(path: str | Path) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """Yield (line number, raw line, record) of a file a first pass has already read without error: a fast second
    pass for stages that read their input twice."""
    with _open(Path(path)) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.isspace():
                yield number, raw, orjson.loads(raw)


def iter_manifest_lines(path: str | Path) -> Iterator[Line]:
    """Yield the decoded lines of a manifest we wrote ourselves, with their numbers for error messages; a line that is
    not a JSON object is a hard error naming file and line.

    A byte-order mark is such an error too: the second passes of split and balance read a manifest's raw lines
    again, and would choke on one that the first pass skipped. Ours never start with one.
    """
    from soundmind_data.core.errors import DataError

    for line in iter_lines(path, skip_bom=False):
        if line.error:
            raise DataError(f"{line.file}:{line.number}: {line.error}")
        yield line


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a manifest we wrote ourselves; a bad line is a hard error naming file and line."""
    for line in iter_manifest_lines(path):
        yield line.record


def count_lines(path: str | Path, keep: Callable[[int], bool] | None = None) -> int | None:
    """How many non-blank lines a file has (those whose 1-based number `keep` accepts, when given), without
    decoding them: a cheap total for a progress bar or a summary. None when there is no such file."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for number, raw in enumerate(handle, start=1)
                       if not raw.isspace() and (keep is None or keep(number)))
    except (FileNotFoundError, IsADirectoryError):
        return None


def dumps(record: dict[str, Any]) -> bytes:
    """The one JSON encoding used for every line we write: compact UTF-8, keys in insertion order, newline-ended."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def check_output_file(path: Path) -> None:
    """Refuse an output path where something other than a regular file is: renaming the output into place would
    replace a folder, a device, a FIFO or a symlink with a plain file. AtomicWriter checks its path; a stage that
    changes anything before it opens its writers checks them first."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (creating its folder tells what is wrong)
        return
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: exists and is not a regular file; refusing to replace it")


class AtomicWriter:
    """Write a file through a temporary sibling and rename it into place only on a clean exit.

    >>> with AtomicWriter("out.jsonl") as out:
    ...     out.write_record({"id": "a"})
    """

    def __init__(self, path: str | Path, *, temp_dir: Path | None = None):
        """`temp_dir` (on the same filesystem) holds the temp instead of the target's folder; its owner sweeps it
        (the audio cache writes thousands of files into many folders, and sweeps one temp folder for all)."""
        self.path = Path(path)
        self.temp_dir = temp_dir
        self._tmp_path: Path | None = None
        self._handle = None
        self.count = 0

    def __enter__(self) -> "AtomicWriter":
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot create folder {parent}: {exc.strerror}") from None
        check_output_file(self.path)
        if self.temp_dir is None:
            tempfiles.sweep(parent, self.path.name)  # what a killed writer of this same file left
        self._tmp_path = (self.temp_dir or parent) / tempfiles.temp_name(self.path.name)
        try:
            # 0o666 less the umask, as for any file: outputs are meant to be shared like the inputs they came from
            fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot write: {exc.strerror}") from None
        self._handle = os.fdopen(fd, "wb")
        return self

    @property
    def file(self):
        """The underlying binary file, for writers that take one (images, parquet)."""
        return self._handle

    def write(self, text: str) -> None:
        self._handle.write(text.encode("utf-8"))

    def write_record(self, record: dict[str, Any]) -> None:
        self._handle.write(dumps(record))
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._handle is not None and self._tmp_path is not None
        if exc_type is None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp_path, self.path)
        else:
            self._handle.close()
            self._tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write one JSON document (a report) atomically."""
    with AtomicWriter(path) as out:
        out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
