"""The upstream files the corpus is built from, and their download: `soundmind-data sources fetch`.

Each source is a table of files: where it lives upstream, the name it gets in the output folder, and, where known,
its size and sha256. A download goes to a temp file in the output folder (named after the process writing it, as
every temp of this project is: `tempfiles`) and is renamed into place only once complete and checked, so a file in
the folder is always a whole one. A download cut off (a dropped connection, Ctrl-C, a killed process) leaves its temp
behind; the next attempt, in this run or a later one, takes it over and asks only for the rest (an HTTP Range
request), provided it is still the same file upstream: the resume carries the validator (ETag or Last-Modified) of
the response the first part came from, kept in a temp beside the partial (`_state_path`), and the total length must
not have changed; otherwise the file is downloaded again from the start. A complete file is not downloaded again.

Bounds: a file may take `time_limit_s` (retries included; `--time-limit`, default 30 minutes) and have its size in
the table, or else its source's `max_size` (256 MiB, far above any real file of these sources). A file past either
fails; nothing of it is recorded. A slow one keeps what arrived for the next run, an oversized one is removed.

Digests: a file whose sha256 is pinned in the table must match it, or it is removed and the fetch fails. A file
with no pinned digest is trusted on first use: the digest seen is recorded in `DIR/sources.lock.json` and every later
fetch into that folder must see it again. The lock file also records each file's URL and size.

`mirror` replaces the upstream hosts by one base URL laid out as `BASE/<source>/<file name>` (the layout the output
folders have), for machines behind a proxy cache and for the tests, which serve fixture files on 127.0.0.1. The
Hub files follow HF_ENDPOINT; a user name and password in it are sent as HTTP Basic auth and shown as *** wherever a
URL is shown or recorded. With HF_HUB_OFFLINE set, a Hub file already there is checked and one missing is an error.
The library never prints: progress goes through `stage.Progress`, and the report's `summary()` is what the CLI shows.

Recordings (`with_audio`): a Hub source may have audio besides its table's files, thousands of files that only the
Hub's listing names: SoundMind's `dataset/SPLIT/NNNN/{question,answer_L}.wav` and `annotation.json`. The branch is
resolved once, when the fetch starts, to a commit, and the table's files (its metadata) and the recordings both come
from that commit (`resolve/COMMIT/PATH`), so a branch that moves meanwhile cannot leave one commit's metadata beside
another's audio. The metadata are checked first: when one fails (the lock file refuses the commit's), or one already
in the folder is not the commit's (by the listing's blob id or sha256: an earlier fetch's), no recording is asked for
or changed, and the report says why. The recordings come through `huggingface_hub`: the repository's tree, filtered
by the source's `recordings` patterns (`allow_patterns`, as `snapshot_download` filters), each file fetched by
`hf_hub_download` into the output folder (`local_dir`), which records what it fetched in `DIR/.cache/huggingface/`: a
later run asks nothing about a file it already has at that commit, so a fetch cut short resumes with the files it
lacks (a transfer cut off is resumed by a Range request within the run; a file the run did not finish is fetched
whole by the next). Not `snapshot_download` itself: it prints its own bars, and when the Hub cannot be reached it
returns whatever the folder holds as if complete. Each file the listing sizes beyond the source's `max_size` fails
unfetched; each file fetched must have the sha256 (LFS) or git blob id the listing gives, or it is removed. The
table's metadata files keep the downloader above (pins, lock file, time limit; a mirror, which has no commits, serves
them as it holds them, and never the recordings).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from soundmind_data import __version__, schemas, tempfiles
from soundmind_data.digests import file_digest
from soundmind_data.errors import DataError, UsageError
from soundmind_data.jsonl import write_json
from soundmind_data.paths import UnsafePath, audio_file
from soundmind_data.redact import redact, url_passwords
from soundmind_data.stage import SILENT, Progress, Summary
from soundmind_data.table import format_table

MIRROR_ENV = "SOUNDMIND_DATA_SOURCES_URL"
LOCK_NAME = "sources.lock.json"
README_HINT = 'see README "Sources"'
BLOCK = 1 << 16
MAX_SIZE = 256 << 20  # bytes a file may have when the table does not give its size: an endless body stops here
TIME_LIMIT_S = 1800.0  # seconds one file may take, retries included (--time-limit)
RESUME = ".resume"  # a partial of NAME keeps its resume state in a temp of NAME.resume (see _state_path)
HUB_WORKERS = 8  # recordings fetched at once (snapshot_download's default)
FAILURES_SHOWN = 20  # failed recordings named one per line in the summary; the rest are counted


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
    max_size: int = MAX_SIZE  # bytes any of its files may have where the file's own size is not known
    recordings: tuple[str, ...] = ()  # a Hub source's audio files, as allow_patterns of its tree (with_audio)

    def upstream_url(self, file: SourceFile, commit: str | None = None) -> str:
        """The file's URL at `revision`, or at `commit` (what the revision was resolved to) when given."""
        revision = commit or self.revision
        if self.hub == "github":
            return f"https://raw.githubusercontent.com/{self.repo}/{revision}/{urllib.parse.quote(file.upstream)}"
        from huggingface_hub import hf_hub_url  # honours HF_ENDPOINT (a Hub mirror)

        return hf_hub_url(self.repo, file.upstream, repo_type="dataset", revision=revision)

    def url(self, file: SourceFile, mirror: str | None = None, commit: str | None = None) -> str:
        if mirror:  # a mirror has no commits: it serves what it holds
            return f"{mirror.rstrip('/')}/{self.name}/{urllib.parse.quote(file.name)}"
        return self.upstream_url(file, commit)


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
        title="SoundMind (ALR) dataset annotations, one metadata.jsonl per split; its recordings with --with-audio",
        repo="SoundMind-RL/SoundMindDataset", hub="hf-dataset", revision="main",
        homepage="https://huggingface.co/datasets/SoundMind-RL/SoundMindDataset",
        licence="MIT",
        # the Hub's own layout, which `ingest --format soundmind-hub DIR/dataset` reads; the card (README.md, at the
        # repository's root) declares the release's licence
        files=(*(SourceFile(f"dataset/{split}/metadata.jsonl", f"dataset/{split}/metadata.jsonl")
                 for split in ("train", "dev", "test")), SourceFile("README.md", "README.md")),
        recordings=("dataset/*/*/*.wav", "dataset/*/*/annotation.json"),
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
class FetchedRecordings:
    """A Hub source's recordings, fetched at one commit into `folder`."""

    source: str
    folder: Path
    commit: str
    files: int = 0  # that the listing names
    downloaded: int = 0
    present: int = 0  # already there at that commit
    downloaded_bytes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path in the folder, why)
    skipped: str | None = None  # why none was fetched: the metadata in the folder did not check out

    def lines(self) -> list[str]:
        shown = [f"{self.folder / path}: {why}" for path, why in sorted(self.failures)[:FAILURES_SHOWN]]
        if len(self.failures) > FAILURES_SHOWN:
            shown.append(f"... and {len(self.failures) - FAILURES_SHOWN} more failed recordings")
        if self.skipped:
            return shown + [f"sources: {self.source} recordings at commit {self.commit[:12]}: none fetched into "
                            f"{self.folder}: {self.skipped}"]
        return shown + [f"sources: {self.source} recordings at commit {self.commit[:12]}: {self.files} files in "
                        f"{self.folder}: {self.downloaded} downloaded ({self.downloaded_bytes:,} bytes), "
                        f"{self.present} already present, {len(self.failures)} failed"]


@dataclass
class FetchReport:
    files: list[FetchedFile] = field(default_factory=list)
    locks: list[Path] = field(default_factory=list)
    recordings: list[FetchedRecordings] = field(default_factory=list)
    commits: dict[str, tuple[str, str]] = field(default_factory=dict)  # source -> (its revision, the commit fetched)

    @property
    def ok(self) -> bool:
        return all(one.status != "failed" for one in self.files) and \
            not any(one.failures or one.skipped for one in self.recordings)

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
        # the folder fetched into, above the folders a file's name may hold (dataset/train/metadata.jsonl)
        folders = ", ".join(dict.fromkeys(str(one.path.parents[one.name.count("/")]) for one in self.files))
        err.append(f"sources: {len(self.files)} files in {folders or '-'}: {counts['downloaded']} downloaded, "
                   f"{counts['present']} already present, {counts['failed']} failed" +
                   "".join(f"; {name}: {revision} is commit {commit[:12]}"
                           for name, (revision, commit) in self.commits.items()))
        for recordings in self.recordings:
            err += recordings.lines()
        return Summary(out=out, err=err)


# ------------------------------------------------------------------------------------------------------------ fetch
class _Interrupted(Exception):
    """The transfer stopped before the whole file arrived; what arrived is kept for the next attempt."""


class _Unreachable(Exception):
    """No connection to the host at all."""


class _TooBig(Exception):
    """The server announced, or sent, more bytes than the file may have."""


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
          retry_wait_s: float = 1.0, read_timeout_s: float = 60.0, time_limit_s: float = TIME_LIMIT_S,
          with_audio: bool = False, progress: Progress = SILENT,
          sources: Mapping[str, Source] | None = None) -> FetchReport:
    """Download the files of the named sources (all when none are named) into `out` (default `data/<source>`), and
    with `with_audio` the recordings of those that have some (from the Hub, never a mirror).

    Returns a report with one line per file; a file that failed its digest or size check, was bigger than it may be
    or not complete within `time_limit_s` is marked failed (the report's `ok` is then false) and not recorded. No
    connection to a host at all, or a transfer that keeps breaking off after `retries` resumed attempts, stops the
    fetch with a DataError naming the host and what to do. `read_timeout_s` bounds each wait for the server.
    """
    mirror = check_mirror(mirror)
    chosen = resolve(names, sources)
    if with_audio and not any(source.recordings for source in chosen):
        have = [source.name for source in (sources or SOURCES).values() if source.recordings]
        raise UsageError(f"--with-audio: {', '.join(source.name for source in chosen)} has no recordings "
                         f"(sources with recordings: {', '.join(have) or 'none'})")
    if with_audio and mirror:
        raise UsageError(f"--with-audio: the recordings come from the Hub (HF_ENDPOINT), not from a --mirror / "
                         f"${MIRROR_ENV}")
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
        offline = source.hub == "hf-dataset" and not mirror and _hub_offline()
        audio = with_audio and bool(source.recordings)
        # The metadata and the recordings come from one commit, resolved once: the branch may move meanwhile.
        commit = _hub_commit(source, folder) if audio and not offline else None
        if commit:
            report.commits[source.name] = (source.revision, commit)
        failed = False
        for file in source.files:
            url = source.url(file, mirror, commit)
            recorded = lock.get(source.name, {}).get(file.name, {})
            result = _fetch_file(source, file, folder, url, recorded.get("sha256"), retries=retries,
                                 retry_wait_s=retry_wait_s, read_timeout_s=read_timeout_s,
                                 time_limit_s=time_limit_s, offline=offline, progress=progress)
            report.files.append(result)
            failed |= result.status == "failed"
            if result.status != "failed":
                lock.setdefault(source.name, {})[file.name] = {
                    "url": redact(source.upstream_url(file)), "size": result.size, "sha256": result.sha256,
                    "pinned_upstream": file.sha256 is not None}
                write_json(lock_path, lock)
        if audio:
            if offline:
                raise _offline_error(source, folder)
            if failed:  # recordings the metadata in the folder may not describe: leave them all as they are
                report.recordings.append(FetchedRecordings(source.name, folder, commit, skipped=(
                    "the metadata above failed their check; the recordings there are left as they are")))
            else:
                report.recordings.append(_fetch_recordings(source, folder, commit, read_timeout_s=read_timeout_s,
                                                           progress=progress))
    return report


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def _offline_error(source: Source, folder: Path) -> DataError:
    return DataError(f"{source.name}: HF_HUB_OFFLINE is set, so nothing is downloaded from the Hub: unset it, or "
                     f"download the files by hand into {folder} ({README_HINT})")


def _read_lock(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc}); move it away to record the digests anew") from None
    if problem := schemas.first_error("sources-lock", data):  # a hand-edited entry: one line naming it
        raise UsageError(f"{path}: {problem} (not a sources lock file); mend it, or move it away to record the "
                         f"digests anew")
    return data



def _problem(file: SourceFile, size: int, sha256: str, expected: str | None) -> str | None:
    """Why a file of this size and digest is not the one wanted (None when it is)."""
    if file.size is not None and size != file.size:
        return f"{size} bytes, expected {file.size}"
    if expected is not None and sha256 != expected:
        return f"sha256 {sha256}, expected {expected}"
    return None


def _fetch_file(source: Source, file: SourceFile, folder: Path, url: str, recorded: str | None, *, retries: int,
                retry_wait_s: float, read_timeout_s: float, time_limit_s: float, offline: bool,
                progress: Progress) -> FetchedFile:
    target = folder / file.name  # the name may hold folders: the Hub's layout (dataset/train/metadata.jsonl)
    expected = file.sha256 or recorded
    pin = "pinned" if file.sha256 else "recorded" if recorded else "first use"
    shown = redact(url)  # the URL as messages and the report show it: an HF_ENDPOINT's password is sent, never shown
    result = FetchedFile(source.name, file.name, target, shown, "present", pin=pin)
    if os.path.lexists(target):
        if not target.is_file():  # a folder, a FIFO, a device, a dangling link: never read it or rename over it
            raise UsageError(f"{target}: exists and is not a regular file; refusing to replace it")
        result.size, result.sha256 = target.stat().st_size, file_digest(target, "sha256")
        if problem := _problem(file, result.size, result.sha256, expected):
            result.status = "failed"
            result.error = f"already there, but {problem} ({pin}); delete it to download it again"
        return result
    if offline:
        raise _offline_error(source, folder)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{target.parent}: cannot create it: {exc.strerror}") from None
    partial = _take_over(target.parent, target.name)
    result.resumed_from = partial.stat().st_size
    if result.resumed_from:
        progress.note(f"{source.name}/{file.name}: resuming an interrupted download at byte {result.resumed_from:,}")
    limit = file.size if file.size is not None else source.max_size
    with _Deadline(time_limit_s) as deadline:
        attempt = 0
        while True:
            try:
                _download(url, partial, f"{source.name}/{file.name}", limit=limit, deadline=deadline,
                          read_timeout_s=read_timeout_s, progress=progress)
                break
            except (_Unreachable, _Interrupted) as exc:
                if deadline.expired:  # the deadline cut the connection: what arrived is still good to resume
                    result.status = "failed"
                    result.error = (f"{shown}: not complete after {time_limit_s:g} s (--time-limit); the "
                                    f"{partial.stat().st_size:,} bytes received are kept: run the same command "
                                    f"again to resume")
                    return result
                if isinstance(exc, _Unreachable):
                    if not partial.stat().st_size:
                        _discard(partial)  # nothing to resume
                    host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
                    raise DataError(f"cannot reach {host}: {exc}; download the files by hand into {folder} "
                                    f"({README_HINT})") from None
                attempt += 1
                if attempt > retries:
                    raise DataError(f"{shown}: {exc} ({retries} resumed attempts failed too); the "
                                    f"{partial.stat().st_size:,} bytes received are kept: run the same command again "
                                    f"to resume, or download the files by hand into {folder} ({README_HINT})") from None
                progress.note(f"{source.name}/{file.name}: {exc}; resuming at byte {partial.stat().st_size:,} "
                              f"(attempt {attempt + 1} of {retries + 1})")
                time.sleep(min(retry_wait_s * attempt, deadline.left()))
            except _TooBig as exc:
                _discard(partial)
                result.status, result.error = "failed", f"{shown}: {exc}; the download was removed"
                return result
            except urllib.error.HTTPError as exc:
                _discard(partial)
                result.status, result.error = "failed", f"{shown}: HTTP {exc.code} {exc.reason}"
                return result

    result.size = partial.stat().st_size
    result.sha256 = file_digest(partial, "sha256")
    if problem := _problem(file, result.size, result.sha256, expected):
        _discard(partial)
        result.status = "failed"
        result.error = (f"downloaded from {shown}, but {problem} ({pin}); the download was removed" +
                        ("; if upstream changed on purpose, delete its entry in "
                         f"{folder / LOCK_NAME} to accept the new file" if pin == "recorded" else ""))
        return result
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    _state_path(partial).unlink(missing_ok=True)
    result.status = "downloaded"
    return result


# ------------------------------------------------------------------------------------------------------ recordings
def _hub_api() -> tuple[Any, list[str | None]]:
    """The Hub's client (HF_ENDPOINT, the token) and the secrets never to show, whatever the Hub's errors echo."""
    from huggingface_hub import HfApi, get_token

    api = HfApi()
    return api, [get_token(), *url_passwords(api.endpoint)]


def _hub_commit(source: Source, folder: Path) -> str:
    """The commit a Hub source's revision (a branch) points at now."""
    api, secrets = _hub_api()
    with _hub_errors(source, folder, api.endpoint, secrets):
        return api.repo_info(source.repo, repo_type="dataset", revision=source.revision).sha


def _fetch_recordings(source: Source, folder: Path, commit: str, *, read_timeout_s: float,
                      progress: Progress) -> FetchedRecordings:
    """Fetch the files of a Hub source's tree at `commit` matching its `recordings` patterns into `folder`, once the
    table's files there (its metadata, checked already) are found to be that commit's: otherwise none is fetched (see
    the module docstring). A file that fails is reported and the others go on; no connection at all stops the
    fetch with a DataError."""
    import httpx2
    from huggingface_hub import hf_hub_download
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api, secrets = _hub_api()
    with _hub_errors(source, folder, api.endpoint, secrets):
        listing = [entry for entry in api.list_repo_tree(source.repo, repo_type="dataset", revision=commit,
                                                          recursive=True) if isinstance(entry, RepoFile)]
    result = FetchedRecordings(source.name, folder, commit)
    # Metadata already in the folder (an earlier fetch's) may be an earlier commit's: recordings of this one would
    # not be the ones they describe, and the lock file would refuse this commit's metadata.
    entries = {entry.path: entry for entry in listing}
    for file in source.files:
        entry = entries.get(file.upstream)
        problem = _blob_problem(folder / file.name, entry) if entry else "not in the Hub's listing"
        if problem:
            result.failures.append((file.name, f"not the file of commit {commit[:12]}: {problem}"))
    if result.failures:
        result.skipped = (f"the metadata named above are not that commit's; the recordings there are left as they "
                          f"are: to fetch that commit's release, delete those files and their entries in {LOCK_NAME} "
                          f"(or fetch into a new folder)")
        return result
    wanted = list(filter_repo_objects(listing, allow_patterns=list(source.recordings), key=lambda entry: entry.path))
    if not wanted:  # asked for audio and given none: the release's layout is not the one the table knows
        raise DataError(f"{source.repo} at commit {commit[:12]} has no file matching {', '.join(source.recordings)}: "
                        f"its layout changed? ({README_HINT})")
    result.files = len(wanted)
    progress.start(f"{source.name} recordings", unit="file", total=len(wanted))
    silent_bar = _silent_bar()

    def fetch_one(entry: RepoFile) -> tuple[str, str | None]:
        """("downloaded" | "present" | "failed", why it failed)."""
        if entry.size > source.max_size:
            return "failed", f"the Hub lists {entry.size:,} bytes, more than the {source.max_size:,} bytes a file " \
                             f"may have; not downloaded"
        try:
            target = audio_file(folder, entry.path)  # the listing's path, which must stay inside the folder
        except UnsafePath as exc:
            return "failed", f"{exc}; not downloaded"
        before = _identity(target)
        try:
            hf_hub_download(source.repo, entry.path, repo_type="dataset", revision=commit, local_dir=folder,
                            etag_timeout=read_timeout_s, tqdm_class=silent_bar)
        except (OSError, ValueError, httpx2.HTTPError) as exc:  # the Hub's errors, a broken transfer, a full disk
            return "failed", _one_line(redact(exc, secrets) or type(exc).__name__)
        if _identity(target) == before:
            return "present", None
        if problem := _blob_problem(target, entry):
            target.unlink(missing_ok=True)
            return "failed", f"{problem}; the download was removed"
        return "downloaded", None

    pool = ThreadPoolExecutor(HUB_WORKERS)
    try:
        with _quiet_hub_logs():
            futures = {pool.submit(fetch_one, entry): entry for entry in wanted}
            for future in as_completed(futures):
                entry, (status, why) = futures[future], future.result()
                if status == "failed":
                    result.failures.append((entry.path, why))
                    progress.note(f"{source.name}: {entry.path}: {why}")
                elif status == "downloaded":
                    result.downloaded += 1
                    result.downloaded_bytes += entry.size
                else:
                    result.present += 1
                progress.advance()
    except BaseException:  # Ctrl-C: no new file starts; what arrived stays for the next run
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return result


@contextmanager
def _hub_errors(source: Source, folder: Path, endpoint: str, secrets: Sequence[str | None]) -> Iterator[None]:
    """The Hub's listing failing: one line, naming the host (not its credentials) and what to do. (httpx2's errors
    are the Hub client's own, HfHubHTTPError, and those of a connection that failed.)"""
    import httpx2

    host = urllib.parse.urlsplit(endpoint).netloc.rpartition("@")[2]
    try:
        yield
    except httpx2.HTTPError as exc:
        reason = _one_line(redact(exc, secrets) or type(exc).__name__)
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status is None:  # no answer at all
            raise DataError(f"cannot reach {host}: {reason}; the recordings already in {folder} are kept: run the "
                            f"same command again to resume, or download them by hand ({README_HINT})") from None
        raise DataError(f"{host}: listing {source.repo} failed: {reason}") from None


def _one_line(text: str, limit: int = 300) -> str:
    """An error of the Hub client (several lines: status, request id, URL) as one line, shortened (once redacted)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Keep `huggingface_hub`'s warnings off stderr while it fetches (a retried transfer logs its URL, with any
    credentials of HF_ENDPOINT): what went wrong is reported per file instead, redacted."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _silent_bar() -> type:
    from tqdm.auto import tqdm

    class SilentBar(tqdm):
        """`hf_hub_download`'s progress bar, never shown: the fetch counts files through `Progress`."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    return SilentBar


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written anew (None: no such file)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _blob_problem(path: Path, entry: Any) -> str | None:
    """Why a fetched file is not the one the Hub's listing names (None when it is): an LFS file by its sha256, a
    file in git by its blob id."""
    if entry.lfs is not None:
        digest, expected, kind = file_digest(path, "sha256"), entry.lfs.sha256, "sha256"
    else:
        from huggingface_hub.utils.sha import git_hash

        digest, expected, kind = git_hash(path.read_bytes()), entry.blob_id, "git blob id"
    return None if digest == expected else f"{kind} {digest}, expected {expected} (the Hub's listing)"


# ------------------------------------------------------------------------------------- partials and their resume
def _take_over(folder: Path, name: str) -> Path:
    """A temp of this process for downloading `name`: the largest one an interrupted download left (renamed to this
    process, with its resume state, so the sweep of a concurrent writer leaves them alone; emptied when it has none),
    else a new empty one. Other leftovers go, and so do resume states whose partial is gone."""
    def size(path: Path) -> int:
        try:
            return path.stat().st_size if path.is_file() else -1
        except OSError:
            return -1

    mine = folder / tempfiles.temp_name(name)
    for candidate in sorted(tempfiles.abandoned(folder, name, own=True), key=size, reverse=True):
        if _move(candidate, mine):
            if not _move(_state_path(candidate), _state_path(mine)):
                os.truncate(mine, 0)  # no validator to check its bytes against upstream with (see _download)
            break
    else:
        fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
    for other in tempfiles.abandoned(folder, name, own=True) + tempfiles.abandoned(folder, name + RESUME, own=True):
        if other not in (mine, _state_path(mine)) and other.is_file():
            other.unlink(missing_ok=True)
    return mine


def _move(path: Path, to: Path) -> bool:
    """Rename a regular file; False when it is not one, or is gone (taken by another process meanwhile)."""
    try:
        if path.is_file():
            os.rename(path, to)
            return True
    except OSError:
        pass
    return False


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    _state_path(partial).unlink(missing_ok=True)


def _state_path(partial: Path) -> Path:
    """Where the resume state of `partial` is kept: the temp of NAME.resume with the same writer and random part, so
    that it is taken over with the partial and, like any temp of a dead writer, swept."""
    name, host, pid, token = partial.name[1:-len(tempfiles.SUFFIX)].rsplit("~", 3)
    return partial.with_name(f".{name}{RESUME}~{host}~{pid}~{token}{tempfiles.SUFFIX}")


def _read_state(partial: Path) -> dict[str, Any] | None:
    """The validator and total size of the response `partial` began with; None when none was recorded (the server
    sent no validator, or the partial is older than resume states) or the record is torn."""
    try:
        state = json.loads(_state_path(partial).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("validator"), str) \
            or not isinstance(state.get("size"), (int, type(None))):
        return None
    return state


def _write_state(partial: Path, headers: Any, size: int | None) -> None:
    """Record the validator of the response `partial` is now written from: its ETag, else its Last-Modified (If-Range
    may not carry a weak ETag). A response with neither leaves no state, so its partial is never resumed."""
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if validator:
        write_json(_state_path(partial), {"validator": validator, "size": size})
    else:
        _state_path(partial).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- the transfer
class _Deadline:
    """The time one file may take, retries included. The socket timeout bounds each wait for the server, not a
    transfer: a server sending a byte now and then, in the headers or in the body, would hold the fetch forever.
    When the time is up, every connection opened for the file is shut down, so whatever waits on one returns at
    once, and `expired` tells that apart from a dropped connection. (Connecting is bounded by the socket timeout.)"""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._twins: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for twin in self._twins:
                twin.close()
            self._twins.clear()

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies and redirects as usual) whose connections this deadline shuts down."""
        return urllib.request.build_opener(_HTTPHandler(self), _HTTPSHandler(self))

    def connection(self, base: type[http.client.HTTPConnection]) -> Any:
        """A factory of `base` connections that open their socket through `_connect`."""
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            connection = base(*args, **kwargs)
            connection._create_connection = self._connect  # type: ignore[attr-defined]  # http.client's socket hook
            return connection
        return make

    def _connect(self, *args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(*args, **kwargs)
        # A twin (dup) of the socket reaches the same connection even once TLS has wrapped, and detached, `sock`.
        twin = sock.dup()
        with self._lock:
            self._twins.append(twin)
            if self.expired:
                _shut(twin)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for twin in self._twins:
                _shut(twin)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already, at either end
        pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(http.client.HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(http.client.HTTPSConnection), req)


def _request(url: str, headers: dict[str, str]) -> urllib.request.Request:
    """A GET of `url`. A user name and password in it (an HF_ENDPOINT with credentials) go as HTTP Basic auth, as the
    Hub's own client sends them (urllib would take them for part of the host name), and, like urllib's Basic auth
    handler does, not along redirects: the Hub sends downloads on to a CDN."""
    parts = urllib.parse.urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=host)), headers=headers)
    if userinfo:
        pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    return request


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download(url: str, partial: Path, desc: str, *, limit: int, deadline: _Deadline, read_timeout_s: float,
              progress: Progress) -> None:
    """Append the rest of the file at `url` to `partial`, or write all of it again where a resume is not safe.

    A resume asks for the rest only if the file is still the one the partial began with: the Range request carries
    that response's validator (If-Range), a server that finds the file changed sends all of it (200), and the total
    length must be the one recorded then. A partial with no validator recorded is downloaded again from the start: a
    bare Range request could join the head of one version to the tail of another. More than `limit` bytes, announced
    or sent, raise _TooBig.
    """
    offset = partial.stat().st_size
    state = _read_state(partial) if offset else None
    headers = {"User-Agent": f"soundmind-data/{__version__}", "Accept-Encoding": "identity"}
    if state:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = state["validator"]
    try:
        response = deadline.opener().open(_request(url, headers), timeout=read_timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and state:  # nothing left to send: the earlier attempt got it all, or too much
            match = re.fullmatch(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset and state["size"] in (None, offset):
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
        if state and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                partial.write_bytes(b"")
                raise _Interrupted("the server resumed at the wrong place; starting again")
            total = int(match.group(3)) if match.group(3) != "*" else None
            if None not in (total, state["size"]) and total != state["size"]:
                partial.write_bytes(b"")
                raise _Interrupted(f"the file is now {total:,} bytes, not {state['size']:,}: it changed upstream; "
                                   f"starting again")
            mode = "ab"
        else:  # 200: the whole file (the first request, a file changed upstream, a server that does not resume)
            if state:
                progress.note(f"{desc}: the server sends the whole file again (it changed upstream, or the server "
                              f"does not resume); starting again")
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if total is not None and total > limit:
            raise _TooBig(f"the server announces {total:,} bytes, more than the {limit:,} bytes this file may have")
        progress.start(desc, unit="byte", total=total)
        if offset:
            progress.advance(offset)
        received = offset
        with open(partial, mode) as handle:
            if mode == "wb":  # once the partial is empty: a state never describes the bytes of another version
                _write_state(partial, response.headers, total)
            try:
                while block := response.read(BLOCK):
                    if received + len(block) > limit:
                        raise _TooBig(f"the server sent more than the {limit:,} bytes this file may have")
                    handle.write(block)
                    received += len(block)
                    progress.advance(len(block))
            except (HTTPException, OSError) as exc:
                handle.flush()
                raise _Interrupted(f"connection lost after {received:,} bytes ({exc or type(exc).__name__})") from None
        if deadline.expired:  # cut off by the deadline, which a body without a length would not show otherwise
            raise _Interrupted(f"time limit reached after {received:,} bytes")
        if total is not None and received < total:
            raise _Interrupted(f"connection closed after {received:,} of {total:,} bytes")
