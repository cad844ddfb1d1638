"""The user's cache folder for what is built once per machine: `$SOUNDMIND_DATA_CACHE`, else
`$XDG_CACHE_HOME/soundmind-data`, else `~/.cache/soundmind-data`. NeMo's compiled grammars and de-quantised named
models live there, each in a folder of its own that is built aside and moved into place.

A cache may be shared by the users of a machine: what is built there is made readable by all (`share`), and it is
trusted only while its files match the size and sha256 recorded when it was built (`file_entry`, `intact`), so that
a truncated or damaged file is built again rather than loaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from soundmind_data.digests import file_digest

CACHE_ENV = "SOUNDMIND_DATA_CACHE"
FILE_MODE, FOLDER_MODE = 0o644, 0o755


def cache_root() -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "soundmind-data"


def make_folder(folder: Path) -> None:
    """Create `folder`, in the cache, and its missing parents; those from the cache root down are made readable by
    all whatever the umask (folders above the root are not the cache's). An OSError when it cannot."""
    root = cache_root()
    missing = [path for path in (folder, *folder.parents) if path.is_relative_to(root) and not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for path in missing:
        path.chmod(FOLDER_MODE)


def share(path: Path) -> None:
    """Make `path`, and everything in it if it is a folder, readable by all: files 0644, folders 0755. What is
    written through a temp is private to its writer (tempfile makes 0600 files and 0700 folders; transformers writes
    `model.safetensors` so), and would look complete to another user who cannot read it."""
    if path.is_dir():
        for inner in path.rglob("*"):
            inner.chmod(FOLDER_MODE if inner.is_dir() else FILE_MODE)
        path.chmod(FOLDER_MODE)
    else:
        path.chmod(FILE_MODE)


def file_entry(path: Path) -> dict[str, Any]:
    """What a cache records of one of its files when it is built: its size and sha256."""
    return {"size": path.stat().st_size, "sha256": file_digest(path, "sha256")}


def intact(path: Path, entry: Any) -> bool:
    """Whether the file at `path` is as `entry` (a `file_entry`, read back from a record) says; the size is
    compared first, so that a truncated file is not hashed."""
    if not isinstance(entry, dict):
        return False
    try:
        return path.stat().st_size == entry.get("size") and file_digest(path, "sha256") == entry.get("sha256")
    except OSError:
        return False
