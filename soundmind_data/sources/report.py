"""What a fetch did: a line per file of the table, a count per source's recordings; `summary()` is what the CLI
shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from soundmind_data.core.stage import Summary
from soundmind_data.report.table import format_table

FAILURES_SHOWN = 20  # failed recordings named one per line in the summary; the rest are counted


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
