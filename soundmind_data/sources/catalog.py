"""The table of sources, each a table of files, and the lock file of the digests a fetch saw first.

Each source is a table of files: where it lives upstream, the name it gets in the output folder, and, where known,
its size and sha256; a Hub source may also name its recordings (`recordings`), which only the Hub's listing names.

Digests: a file whose sha256 is pinned in the table must match it, or it is removed and the fetch fails. A file
with no pinned digest is trusted on first use: the digest seen is recorded in `DIR/sources.lock.json` and every later
fetch into that folder must see it again. The lock file also records each file's URL and size.

`mirror` replaces the upstream hosts by one base URL laid out as `BASE/<source>/<file name>` (the layout the output
folders have), for machines behind a proxy cache and for the tests, which serve fixture files on 127.0.0.1. The
Hub files follow HF_ENDPOINT.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from soundmind_data.core import schemas
from soundmind_data.core.errors import UsageError
from soundmind_data.core.redact import redact

MIRROR_ENV = "SOUNDMIND_DATA_SOURCES_URL"
LOCK_NAME = "sources.lock.json"
README_HINT = 'see README "Sources"'
MAX_SIZE = 256 << 20  # bytes a file may have when the table does not give its size: an endless body stops here


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


def read_lock(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The lock file at `path` (empty when there is none yet): source -> file name -> url, size, sha256."""
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


def sources_table() -> tuple[tuple[str, ...], list[tuple]]:
    """What `soundmind-data sources list` prints: a header and a row per source file. The URLs are redacted: the
    Hub's follow HF_ENDPOINT, which may hold a password."""
    rows = [(source.name, file.name, source.licence, file.sha256 or "not pinned", redact(source.upstream_url(file)))
            for source in SOURCES.values() for file in source.files]
    return ("source", "file", "licence", "sha256", "url"), rows
