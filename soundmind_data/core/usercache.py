"""The user's cache folder for what is built once per machine: `$SOUNDMIND_DATA_CACHE`, else
`$XDG_CACHE_HOME/soundmind-data`, else `~/.cache/soundmind-data`. NeMo's compiled grammars and de-quantised named
models (smollm2-135m, tiny-omni) live there, each in a folder of its own that is built aside and moved into place
(`built_folder`).

A cache may be shared by the users of a machine: what is built there is made readable by all (`share`), and it is
trusted only while its files match the size and sha256 recorded when it was built (`file_entry`, `intact`), so that
a truncated or damaged file is built again rather than loaded."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.tempfiles import make_temp_dir, sweep

CACHE_ENV = "SOUNDMIND_DATA_CACHE"
FILE_MODE, FOLDER_MODE = 0o644, 0o755
_BUILD_LOCK = threading.Lock()  # the file lock serialises processes; this one the threads of one process


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


def built_folder(target: Path, what: str, record_name: str, identity: dict[str, Any],
                 fill: Callable[[Path], None]) -> Path:
    """`target`, a folder of the cache that `fill(folder)` writes, built on first use and returned.

    It is built aside and moved into place under a file lock, so parallel processes build it once and a killed build
    leaves nothing that looks finished; its record (`record_name`, written last) holds `identity` (what it was built
    from) and each file's size and sha256. It is trusted while the record says `identity` and every file matches, and
    built again, once, when not. A UsageError when the cache cannot be written; a DataError when the folder just built
    does not match its record. `what` names it in messages ("model smollm2-135m")."""
    if _complete(target, record_name, identity):
        return target
    with _BUILD_LOCK:
        from filelock import FileLock

        try:
            make_folder(target.parent)
        except OSError as exc:
            raise UsageError(f"{target.parent}: cannot create the model cache: {exc.strerror} "
                             f"(set {CACHE_ENV} to a writable folder)") from None
        try:
            with FileLock(str(target.parent / f".{target.name}.lock")):
                if not _complete(target, record_name, identity):  # another process may have built it meanwhile
                    _build(target, record_name, identity, fill)
                    if not _complete(target, record_name, identity):  # read back as just written: again won't help
                        raise DataError(f"{target}: {what} was just built there, but its files do not match the "
                                        "record written with them (a failing disk, or another program writing "
                                        f"there?); set {CACHE_ENV} to another folder")
        except OSError as exc:  # a full disk, a read-only or foreign cache: one line, not a traceback
            raise UsageError(f"{target.parent}: cannot build {what} there: {exc.strerror or exc} "
                             f"(set {CACHE_ENV} to a writable folder)") from None
    return target


def _complete(folder: Path, record_name: str, identity: dict[str, Any]) -> bool:
    try:
        record = json.loads((folder / record_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or any(record.get(key) != value for key, value in identity.items()):
        return False
    files = record.get("files")
    return isinstance(files, dict) and bool(files) and all(intact(folder / path, entry)
                                                           for path, entry in files.items())


def _build(target: Path, record_name: str, identity: dict[str, Any], fill: Callable[[Path], None]) -> None:
    sweep(target.parent, target.name)  # what a killed build left
    staging = make_temp_dir(target.parent, target.name)
    try:
        fill(staging)
        files = {str(path.relative_to(staging)): file_entry(path) for path in sorted(staging.rglob("*"))
                 if path.is_file()}  # as read back from the disk
        (staging / record_name).write_text(json.dumps({**identity, "files": files}, indent=2) + "\n",
                                           encoding="utf-8")
        share(staging)  # the temp folder and the weights are written private; the cache may be shared
        if target.exists():  # a folder whose files do not match its record, or without one: not to be trusted
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
