"""The corpus folder's boundary: what a manifest may make a stage read, and where a stage may write.

A manifest's audio paths are relative to its folder, the corpus folder, and nothing a manifest says may make a stage
read outside it: not an absolute path, not a `..`, not a symlink that points out (the item schema refuses the first
two; only resolving the path catches the third). And a stage that writes a folder replaces whole folders in it
(export's `audio/` and split folders, publish's `data/`), so that folder must not be the corpus it is made from, nor
a folder of the user's: only a new or empty one, or an earlier output of the same command, which says so by a marker
file.
"""

from __future__ import annotations

import os
from pathlib import Path

from soundmind_data import __version__
from soundmind_data.corpus import AUDIO_DIR
from soundmind_data.errors import UsageError
from soundmind_data.jsonl import write_json


class UnsafePath(ValueError):
    """An audio path that names no file inside the manifest's folder; the message says why."""


def audio_file(root: Path, relative: str) -> Path:
    """The file an item's audio `path` names, `relative` to the manifest's folder `root`, symlinks resolved.

    Every stage that opens audio opens it through this. UnsafePath for a path no file system takes (a NUL byte), an
    absolute path, or one that leads out of `root` through `..` or a symlink."""
    if "\0" in relative:
        raise UnsafePath("contains a NUL byte")
    if os.path.isabs(relative):
        raise UnsafePath("is absolute; audio paths are relative to the manifest's folder")
    folder = Path(os.path.realpath(root))
    path = Path(os.path.realpath(folder / relative))
    if not path.is_relative_to(folder):
        raise UnsafePath(f"leads outside the manifest's folder (to {path})")
    return path


def check_output_folder(out: Path, manifest: Path, flag: str) -> None:
    """Refuse an output folder that is the folder of `manifest`, holds it, or lies in its audio folder: writing it
    would replace the corpus being read. `flag` is the option that named the folder, for the message."""
    corpus = Path(os.path.realpath(Path(manifest).parent))
    target = Path(os.path.realpath(out))
    if corpus.is_relative_to(target):
        raise UsageError(f"{flag} {out}: is or holds the folder of the corpus being read ({manifest}); writing "
                         f"there would replace its files: choose another folder")
    if target.is_relative_to(corpus / AUDIO_DIR):
        raise UsageError(f"{flag} {out}: lies in the audio folder of the corpus being read ({manifest}); writing "
                         f"there would replace its audio: choose another folder")


def output_marker(command: str) -> str:
    """The name of the file that marks a folder as `command`'s output."""
    return f".soundmind-data-{command}"


def check_output_owner(out: Path, command: str, flag: str, *, overwrite: bool, own: tuple[str, ...]) -> None:
    """Refuse an output folder that holds anything and is not an earlier output of `command` (publish, export: they
    replace whole folders in it, which may be the user's own `data/` or `audio/`), unless `overwrite`. `own` are the
    working folders the command leaves when killed before it marked the folder (its first run): they are not the
    user's. Touches nothing; `flag` is the option that named the folder, for the message."""
    try:
        entries = set(os.listdir(out))
    except OSError:  # missing (it will be made), or not a folder at all: making it says why that fails
        return
    marker = output_marker(command)
    if entries - set(own) and marker not in entries and not overwrite:
        raise UsageError(f"{flag} {out}: holds files and is not the output of an earlier {command} (no {marker} in "
                         f"it), and {command} would replace folders in it: choose a new or empty folder, or pass "
                         f"--overwrite to replace them")


def mark_output(out: Path, command: str) -> None:
    """Mark `out` as `command`'s output once its new contents are complete, before they are moved in (a run that
    fails before that leaves no trace there), so that its next run (a pipeline's re-run, a run after a kill) replaces
    them without --overwrite."""
    write_json(out / output_marker(command), {"command": command, "version": __version__})
