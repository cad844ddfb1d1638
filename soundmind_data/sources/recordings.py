"""A Hub source's recordings, fetched through `huggingface_hub` at one commit: `fetch_recordings`.

Recordings (`with_audio`): a Hub source may have audio besides its table's files, thousands of files that only the
Hub's listing names: SoundMind's `dataset/SPLIT/NNNN/{question,answer_L}.wav` and `annotation.json`. The branch is
resolved once, when the fetch starts, to a commit (`hub_commit`), and the table's files (its metadata) and the
recordings both come from that commit (`resolve/COMMIT/PATH`), so a branch that moves meanwhile cannot leave one
commit's metadata beside another's audio. The metadata are checked first: when one fails (the lock file refuses the
commit's), or one already in the folder is not the commit's (by the listing's blob id or sha256: an earlier fetch's),
no recording is asked for or changed, and the report says why. The recordings come through `huggingface_hub`: the
repository's tree, filtered by the source's `recordings` patterns (`allow_patterns`, as `snapshot_download`
filters), each file fetched by `hf_hub_download` into the output folder (`local_dir`), which records what it fetched
in `DIR/.cache/huggingface/`: a later run asks nothing about a file it already has at that commit, so a fetch cut
short resumes with the files it lacks (a transfer cut off is resumed by a Range request within the run; a file the
run did not finish is fetched whole by the next). Not `snapshot_download` itself: it prints its own bars, and when
the Hub cannot be reached it returns whatever the folder holds as if complete. Each file the listing sizes beyond the
source's `max_size` fails unfetched; each file fetched must have the sha256 (LFS) or git blob id the listing gives,
or it is removed. The table's metadata files keep the downloader of `download` (pins, lock file, time limit; a
mirror, which has no commits, serves them as it holds them, and never the recordings).
"""

from __future__ import annotations

import logging
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import DataError
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.core.redact import redact, url_passwords
from soundmind_data.core.stage import Progress
from soundmind_data.sources.catalog import LOCK_NAME, README_HINT, Source
from soundmind_data.sources.report import FetchedRecordings

HUB_WORKERS = 8  # recordings fetched at once (snapshot_download's default)


def _hub_api() -> tuple[Any, list[str | None]]:
    """The Hub's client (HF_ENDPOINT, the token) and the secrets never to show, whatever the Hub's errors echo."""
    from huggingface_hub import HfApi, get_token

    api = HfApi()
    return api, [get_token(), *url_passwords(api.endpoint)]


def hub_commit(source: Source, folder: Path) -> str:
    """The commit a Hub source's revision (a branch) points at now."""
    api, secrets = _hub_api()
    with _hub_errors(source, folder, api.endpoint, secrets):
        return api.repo_info(source.repo, repo_type="dataset", revision=source.revision).sha


def fetch_recordings(source: Source, folder: Path, commit: str, *, read_timeout_s: float,
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
