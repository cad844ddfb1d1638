"""Temporary files and folders named after their writer: `.NAME~HOST~PID~RANDOM.tmp`.

Every output is written to such a temp and renamed into place, so a half-written file never looks finished. A
process killed with SIGKILL cannot remove its temp, though; because the name says which process wrote it, the next
run can tell a dead writer's leftovers from those of a writer still at work (on this host or another one sharing the
folder) and sweep only the former. "~" appears in no hostname, so the name parses back unambiguously.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
from pathlib import Path

SUFFIX = ".tmp"


def temp_name(name: str) -> str:
    """A hidden sibling name for writing `name`, unique to this process and call."""
    return f".{name}~{socket.gethostname()}~{os.getpid()}~{secrets.token_hex(4)}{SUFFIX}"


def make_temp_dir(parent: Path, name: str) -> Path:
    """A new folder in `parent` named like a temp of `name` (a staging folder to be removed when done)."""
    folder = Path(parent) / temp_name(name)
    folder.mkdir(mode=0o700)
    return folder


def swap_in(folder: Path, staging: Path, aside: Path, names: tuple[str, ...]) -> None:
    """Put the entries `names` of `staging` in place of `folder`'s own (one `staging` lacks is removed from `folder`:
    so `names` are the caller's own entries, old and new), moving the old ones into `aside` (made empty first) for the
    caller to delete once the new ones are complete.

    Every step is a rename, so a process killed at any moment leaves each entry whole, old or new (missing only between
    two renames), never half deleted; the next call with the same `aside` clears what such a run left there (a
    writer-named `aside` is the next run's `sweep` to clear)."""
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir()
    for name in names:
        if os.path.lexists(folder / name):
            (folder / name).replace(aside / name)
        if os.path.lexists(staging / name):
            (staging / name).replace(folder / name)


def sweep(folder: Path, name: str | None = None) -> int:
    """Remove temps in `folder` (of `name` only, when given) whose writer was on this host and has died.

    Returns how many were removed. Temps of live writers and of other hosts are left alone.
    """
    removed = 0
    for path in abandoned(folder, name):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def abandoned(folder: Path, name: str | None = None, *, own: bool = False) -> list[Path]:
    """The temps in `folder` (of `name` only, when given) whose writer was on this host and has died; with `own`,
    also those of this very process (left by an earlier attempt that failed). What `sweep` removes, and what a
    resumable download takes over instead of starting again."""
    host, me = socket.gethostname(), os.getpid()
    try:
        candidates = list(Path(folder).glob(f".*~*~*~*{SUFFIX}"))  # not NAME in the pattern: it may hold "[" or "*"
    except OSError:
        return []
    found = []
    for path in candidates:
        target, writer_host, pid, _ = _parts(path.name)
        if (name is None or target == name) and writer_host == host and pid.isdigit() \
                and ((own and int(pid) == me) or not _alive(int(pid))):
            found.append(path)
    return found


def temp_target(name: str) -> str | None:
    """The name a temp named `name` is written for (`temp_name`'s argument); None for a name that is no temp."""
    if not (name.startswith(".") and name.endswith(SUFFIX) and name.count("~") >= 3):
        return None
    return _parts(name)[0]


def _parts(name: str) -> list[str]:
    """A temp's name as [target, host, pid, random]."""
    return name[1:-len(SUFFIX)].rsplit("~", 3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def place_file(source: Path, target: Path) -> None:
    """Make `target` the file `source`: a hard link (no second copy), or a copy across filesystems; atomically, and
    never by writing into an existing `target` (which may be a link to another file)."""
    if target.exists() and os.path.samefile(source, target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep(target.parent, target.name)  # a link a killed run left half-made
    tmp = target.with_name(temp_name(target.name))
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
