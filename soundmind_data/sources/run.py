"""One `soundmind-data sources fetch`: `fetch`, over the chosen sources, into their folders.

For each source it reads the folder's lock file, fetches the table's files (`download`), recording each digest that
checks out in the lock file as it goes, then, with `with_audio`, the source's recordings (`recordings`), from the
commit its branch pointed at when the fetch started, the table's files too. The library never prints: progress goes
through `stage.Progress`, and the report's `summary()` is what the CLI shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import write_json
from soundmind_data.core.redact import redact
from soundmind_data.core.stage import Progress, SILENT
from soundmind_data.sources.catalog import LOCK_NAME, MIRROR_ENV, SOURCES, Source, check_mirror, read_lock, resolve
from soundmind_data.sources.download import TIME_LIMIT_S, fetch_file, offline_error
from soundmind_data.sources.recordings import fetch_recordings, hub_commit
from soundmind_data.sources.report import FetchedRecordings, FetchReport


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
        lock = read_lock(lock_path)
        offline = source.hub == "hf-dataset" and not mirror and _hub_offline()
        audio = with_audio and bool(source.recordings)
        # The metadata and the recordings come from one commit, resolved once: the branch may move meanwhile.
        commit = hub_commit(source, folder) if audio and not offline else None
        if commit:
            report.commits[source.name] = (source.revision, commit)
        failed = False
        for file in source.files:
            url = source.url(file, mirror, commit)
            recorded = lock.get(source.name, {}).get(file.name, {})
            result = fetch_file(source, file, folder, url, recorded.get("sha256"), retries=retries,
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
                raise offline_error(source, folder)
            if failed:  # recordings the metadata in the folder may not describe: leave them all as they are
                report.recordings.append(FetchedRecordings(source.name, folder, commit, skipped=(
                    "the metadata above failed their check; the recordings there are left as they are")))
            else:
                report.recordings.append(fetch_recordings(source, folder, commit, read_timeout_s=read_timeout_s,
                                                          progress=progress))
    return report


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()
