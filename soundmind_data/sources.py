"""The upstream files the corpus is built from, and their download: `soundmind-data sources fetch`.

Each source is a table of files: where it lives upstream, the name it gets in the output folder, and, where known,
its size and sha256. A download goes to a temp file in the output folder (named after the process writing it, as
every temp of this project is: `tempfiles`) and is renamed into place only once complete and checked, so a file in
the folder is always a whole one. A download cut off (a dropped connection, Ctrl-C, a killed process) leaves its temp
behind; the next attempt, in this run or a later one, takes it over and asks only for the rest (an HTTP Range
request). A complete file is not downloaded again.

Digests: a file whose sha256 is pinned in the table must match it, or it is removed and the fetch fails. A file
with no pinned digest is trusted on first use: the digest seen is recorded in `DIR/sources.lock.json` and every later
fetch into that folder must see it again. The lock file also records each file's URL and size.

`mirror` replaces the upstream hosts by one base URL laid out as `BASE/<source>/<file name>` (the layout the output
folders have), for machines behind a proxy cache and for the tests, which serve fixture files on 127.0.0.1. The
library never prints: progress goes through `stage.Progress`, and the report's `summary()` is what the CLI shows.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any, Mapping, Sequence

from soundmind_data import __version__, tempfiles
from soundmind_data.digests import file_digest
from soundmind_data.errors import DataError, UsageError
from soundmind_data.jsonl import write_json
from soundmind_data.stage import SILENT, Progress, Summary
from soundmind_data.table import format_table

MIRROR_ENV = "SOUNDMIND_DATA_SOURCES_URL"
LOCK_NAME = "sources.lock.json"
README_HINT = 'see README "Sources"'
BLOCK = 1 << 16


@dataclass(frozen=True)
class SourceFile:
    name: str  # the file name in the output folder (what pipelines/soundmind.yaml names)
    upstream: str  # its path in the upstream repository
    sha256: str | None = None  # None: not pinned here; trusted on first use and recorded in the lock file
    size: int | None = None  # bytes, when known


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    repo: str  # owner/name on GitHub or on the Hugging Face Hub
    hub: str  # "github" (raw.githubusercontent.com) or "hf-dataset" (a Hugging Face dataset repository)
    revision: str  # branch, tag or commit the URLs point at
    homepage: str
    licence: str
    files: tuple[SourceFile, ...]

    def upstream_url(self, file: SourceFile) -> str:
        if self.hub == "github":
            return f"https://raw.githubusercontent.com/{self.repo}/{self.revision}/{urllib.parse.quote(file.upstream)}"
        from huggingface_hub import hf_hub_url  # honours HF_ENDPOINT (a Hub mirror)

        return hf_hub_url(self.repo, file.upstream, repo_type="dataset", revision=self.revision)

    def url(self, file: SourceFile, mirror: str | None = None) -> str:
        if mirror:
            return f"{mirror.rstrip('/')}/{self.name}/{urllib.parse.quote(file.name)}"
        return self.upstream_url(file)


# No digest below is pinned yet: none could be computed or found where this table was written (no network), so
# each is recorded on first use (see the module docstring). Pin one by pasting the digest a fetch printed.
SOURCES: dict[str, Source] = {
    "logiqa2-nli": Source(
        name="logiqa2-nli",
        title="LogiQA 2.0, NLI version (major premise, minor premise, conclusion, entailed / not entailed)",
        repo="csitfun/LogiQA2.0", hub="github", revision="main",
        homepage="https://github.com/csitfun/LogiQA2.0",
        licence="CC BY-NC-SA 4.0",
        files=tuple(SourceFile(f"{split}.txt", f"logiqa2nli/DATA/QA2NLI/{split}.txt") for split in ("train", "dev", "test")),
    ),
    "soundmind": Source(
        name="soundmind",
        title="SoundMind (ALR) dataset annotations, one metadata.jsonl per split",
        repo="SoundMind-RL/SoundMindDataset", hub="hf-dataset", revision="main",
        homepage="https://huggingface.co/datasets/SoundMind-RL/SoundMindDataset",
        licence="MIT",
        files=tuple(SourceFile(f"{split}-metadata.jsonl", f"{split}/metadata.jsonl") for split in ("train", "dev", "test")),
    ),
}


# ------------------------------------------------------------------------------------------------------- the report
@dataclass
class FetchedFile:
    source: str
    name: str
    path: Path
    url: str
    status: str  # "downloaded", "present" (already there and checked) or "failed"
    size: int | None = None
    sha256: str | None = None
    pin: str = "pinned"  # "pinned" (the table's digest), "recorded" (an earlier fetch's) or "first use"
    resumed_from: int = 0  # bytes of an earlier attempt that were kept
    error: str | None = None


@dataclass
class FetchReport:
    files: list[FetchedFile] = field(default_factory=list)
    locks: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(one.status != "failed" for one in self.files)

    def summary(self) -> Summary:
        rows = [(one.source, one.name, one.status, one.size, one.sha256 or "-", one.pin if one.sha256 else "-")
                for one in self.files]
        out = [format_table(("source", "file", "status", "bytes", "sha256", "digest"), rows)] if rows else []
        err = [f"{one.path}: {one.error}" for one in self.files if one.error]
        first_use = [one for one in self.files if one.pin == "first use" and one.status != "failed"]
        if first_use:
            err.append(f"warning: {len(first_use)} file(s) have no pinned sha256; the digests above were recorded on "
                       f"first use in {', '.join(map(str, self.locks))} and every later fetch must match them")
        counts = {status: sum(one.status == status for one in self.files) for status in ("downloaded", "present", "failed")}
        folders = ", ".join(dict.fromkeys(str(one.path.parent) for one in self.files))
        err.append(f"sources: {len(self.files)} files in {folders or '-'}: {counts['downloaded']} downloaded, "
                   f"{counts['present']} already present, {counts['failed']} failed")
        return Summary(out=out, err=err)


# ------------------------------------------------------------------------------------------------------------ fetch
class _Interrupted(Exception):
    """The transfer stopped before the whole file arrived; what arrived is kept for the next attempt."""


class _Unreachable(Exception):
    """No connection to the host at all."""


def resolve(names: Sequence[str] | None, sources: Mapping[str, Source] | None = None) -> list[Source]:
    sources = SOURCES if sources is None else sources
    names = list(dict.fromkeys(names or sources))
    unknown = [name for name in names if name not in sources]
    if unknown:
        raise UsageError(f"no source {', '.join(map(repr, unknown))} (sources: {', '.join(sources)})")
    return [sources[name] for name in names]


def check_mirror(mirror: str | None) -> str | None:
    if not mirror:
        return None
    parsed = urllib.parse.urlsplit(mirror)
    if "@" in parsed.netloc:  # not echoed: it may hold a password
        raise UsageError(f"--mirror / ${MIRROR_ENV}: a user name or password in the URL is not supported")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--mirror / ${MIRROR_ENV} {mirror!r}: expected an http:// or https:// URL")
    return mirror


def fetch(names: Sequence[str] | None, out: Path | None = None, *, mirror: str | None = None, retries: int = 3,
          retry_wait_s: float = 1.0, timeout_s: float = 60.0, progress: Progress = SILENT,
          sources: Mapping[str, Source] | None = None) -> FetchReport:
    """Download the files of the named sources (all when none are named) into `out` (default `data/<source>`).

    Returns a report with one line per file; a file that failed its digest or size check is removed and marked
    failed (the report's `ok` is then false). No connection to a host at all, or a transfer that keeps breaking
    off after `retries` resumed attempts, stops the fetch with a DataError naming the host and what to do.
    """
    mirror = check_mirror(mirror)
    chosen = resolve(names, sources)
    report = FetchReport()
    for source in chosen:
        folder = Path(out) if out is not None else Path("data") / source.name
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder}: exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {folder}: cannot create it: {exc.strerror}") from None
        lock_path = folder / LOCK_NAME
        if lock_path not in report.locks:
            report.locks.append(lock_path)
        lock = _read_lock(lock_path)
        for file in source.files:
            url = source.url(file, mirror)
            recorded = lock.get(source.name, {}).get(file.name, {})
            result = _fetch_file(source, file, folder, url, recorded.get("sha256"), retries=retries,
                                 retry_wait_s=retry_wait_s, timeout_s=timeout_s, progress=progress)
            report.files.append(result)
            if result.status != "failed":
                lock.setdefault(source.name, {})[file.name] = {
                    "url": source.upstream_url(file), "size": result.size, "sha256": result.sha256,
                    "pinned_upstream": file.sha256 is not None}
                write_json(lock_path, lock)
    return report


def _read_lock(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc}); move it away to record the digests anew") from None
    if not isinstance(data, dict) or not all(isinstance(files, dict) for files in data.values()):
        raise UsageError(f"{path}: not a sources lock file; move it away to record the digests anew")
    return data



def _problem(file: SourceFile, size: int, sha256: str, expected: str | None) -> str | None:
    """Why a file of this size and digest is not the one wanted (None when it is)."""
    if file.size is not None and size != file.size:
        return f"{size} bytes, expected {file.size}"
    if expected is not None and sha256 != expected:
        return f"sha256 {sha256}, expected {expected}"
    return None


def _fetch_file(source: Source, file: SourceFile, folder: Path, url: str, recorded: str | None, *, retries: int,
                retry_wait_s: float, timeout_s: float, progress: Progress) -> FetchedFile:
    target = folder / file.name
    expected = file.sha256 or recorded
    pin = "pinned" if file.sha256 else "recorded" if recorded else "first use"
    result = FetchedFile(source.name, file.name, target, url, "present", pin=pin)
    if os.path.lexists(target):
        if not target.is_file():  # a folder, a FIFO, a device, a dangling link: never read it or rename over it
            raise UsageError(f"{target}: exists and is not a regular file; refusing to replace it")
        result.size, result.sha256 = target.stat().st_size, file_digest(target, "sha256")
        if problem := _problem(file, result.size, result.sha256, expected):
            result.status = "failed"
            result.error = f"already there, but {problem} ({pin}); delete it to download it again"
        return result

    partial = _take_over(folder, file.name)
    result.resumed_from = partial.stat().st_size
    if result.resumed_from:
        progress.note(f"{source.name}/{file.name}: resuming an interrupted download at byte {result.resumed_from:,}")
    attempt = 0
    while True:
        try:
            _download(url, partial, f"{source.name}/{file.name}", timeout_s=timeout_s, progress=progress)
            break
        except _Unreachable as exc:
            if not partial.stat().st_size:
                partial.unlink()  # nothing to resume
            raise DataError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {exc}; download the files by hand "
                            f"into {folder} ({README_HINT})") from None
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                raise DataError(f"{url}: {exc} ({retries} resumed attempts failed too); the "
                                f"{partial.stat().st_size:,} bytes received are kept: run the same command again "
                                f"to resume, or download the files by hand into {folder} ({README_HINT})") from None
            progress.note(f"{source.name}/{file.name}: {exc}; resuming at byte {partial.stat().st_size:,} "
                          f"(attempt {attempt + 1} of {retries + 1})")
            time.sleep(retry_wait_s * attempt)
        except urllib.error.HTTPError as exc:
            partial.unlink(missing_ok=True)
            result.status, result.error = "failed", f"{url}: HTTP {exc.code} {exc.reason}"
            return result

    result.size = partial.stat().st_size
    result.sha256 = file_digest(partial, "sha256")
    if problem := _problem(file, result.size, result.sha256, expected):
        partial.unlink(missing_ok=True)
        result.status = "failed"
        result.error = (f"downloaded from {url}, but {problem} ({pin}); the download was removed" +
                        ("; if upstream changed on purpose, delete its entry in "
                         f"{folder / LOCK_NAME} to accept the new file" if pin == "recorded" else ""))
        return result
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    result.status = "downloaded"
    return result


def _take_over(folder: Path, name: str) -> Path:
    """A temp of this process for downloading `name`: the largest one an interrupted download left (renamed to this
    process, so the sweep of a concurrent writer leaves it alone), else a new empty one. Other leftovers go."""
    def size(path: Path) -> int:
        try:
            return path.stat().st_size if path.is_file() else -1
        except OSError:
            return -1

    mine = folder / tempfiles.temp_name(name)
    leftovers = sorted(tempfiles.abandoned(folder, name, own=True), key=size)
    while leftovers:
        candidate = leftovers.pop()
        try:
            if candidate.is_file():
                os.rename(candidate, mine)
                break
        except OSError:  # taken by another process meanwhile
            continue
    for other in leftovers:
        if other.is_file():
            other.unlink(missing_ok=True)
    if not mine.exists():
        fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
    return mine


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download(url: str, partial: Path, desc: str, *, timeout_s: float, progress: Progress) -> None:
    """Append the rest of the file at `url` to `partial` (all of it when the server ignores the Range request)."""
    offset = partial.stat().st_size
    headers = {"User-Agent": f"soundmind-data/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the earlier attempt got it all, or too much
            match = re.fullmatch(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:
                return
            partial.write_bytes(b"")
            raise _Interrupted("the server refused to resume; starting again") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise
    except urllib.error.URLError as exc:  # no connection: name resolution, refused, connect timeout, TLS
        reason = exc.reason
        raise _Unreachable(getattr(reason, "strerror", None) or str(reason)) from None
    except (HTTPException, OSError) as exc:  # connected, then dropped before the response came
        raise _Interrupted(f"connection lost ({exc or type(exc).__name__})") from None

    with response:
        total: int | None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                partial.write_bytes(b"")
                raise _Interrupted("the server resumed at the wrong place; starting again")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the whole file (a server that does not do ranges sends it all again)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        progress.start(desc, unit="byte", total=total)
        if offset:
            progress.advance(offset)
        received = offset
        with open(partial, mode) as handle:
            try:
                while block := response.read(BLOCK):
                    handle.write(block)
                    received += len(block)
                    progress.advance(len(block))
            except (HTTPException, OSError) as exc:
                handle.flush()
                raise _Interrupted(f"connection lost after {received:,} bytes ({exc or type(exc).__name__})") from None
        if total is not None and received < total:
            raise _Interrupted(f"connection closed after {received:,} of {total:,} bytes")
