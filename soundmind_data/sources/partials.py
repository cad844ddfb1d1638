"""The partial of an interrupted download and its resume state, which `download` takes over to resume.

A download goes to a temp of its file (named after the process writing it, as every temp of this project is:
`tempfiles`); one cut off leaves it behind. Beside it, in a temp of NAME.resume, is the validator (ETag or
Last-Modified) and total size of the response it began with, which a resume must find again upstream.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from soundmind_data.core import tempfiles
from soundmind_data.core.jsonl import write_json

RESUME = ".resume"  # a partial of NAME keeps its resume state in a temp of NAME.resume (see state_path)


def take_over(folder: Path, name: str) -> Path:
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
            if not _move(state_path(candidate), state_path(mine)):
                os.truncate(mine, 0)  # no validator to check its bytes against upstream with (see download._download)
            break
    else:
        fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
    for other in tempfiles.abandoned(folder, name, own=True) + tempfiles.abandoned(folder, name + RESUME, own=True):
        if other not in (mine, state_path(mine)) and other.is_file():
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


def discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    state_path(partial).unlink(missing_ok=True)


def state_path(partial: Path) -> Path:
    """Where the resume state of `partial` is kept: the temp of NAME.resume with the same writer and random part, so
    that it is taken over with the partial and, like any temp of a dead writer, swept."""
    name, host, pid, token = partial.name[1:-len(tempfiles.SUFFIX)].rsplit("~", 3)
    return partial.with_name(f".{name}{RESUME}~{host}~{pid}~{token}{tempfiles.SUFFIX}")


def read_state(partial: Path) -> dict[str, Any] | None:
    """The validator and total size of the response `partial` began with; None when none was recorded (the server
    sent no validator, or the partial is older than resume states) or the record is torn."""
    try:
        state = json.loads(state_path(partial).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("validator"), str) \
            or not isinstance(state.get("size"), (int, type(None))):
        return None
    return state


def write_state(partial: Path, headers: Any, size: int | None) -> None:
    """Record the validator of the response `partial` is now written from: its ETag, else its Last-Modified (If-Range
    may not carry a weak ETag). A response with neither leaves no state, so its partial is never resumed."""
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if validator:
        write_json(state_path(partial), {"validator": validator, "size": size})
    else:
        state_path(partial).unlink(missing_ok=True)
