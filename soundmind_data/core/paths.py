"""The corpus folder's boundary: what a manifest may make a stage read, and where a stage may write.

A manifest's audio paths are relative to its folder, the corpus folder, and nothing a manifest says may make a stage
read outside it: not an absolute path, not a `..`, not a symlink that points out (the item schema refuses the first
two; only resolving the path catches the third). And a stage that writes a folder replaces whole folders in it
(export's `audio/` and split folders, publish's `data/`), so that folder must not be the corpus it is made from, nor
hold audio the corpus uses, nor be a folder of the user's: only a new or empty one, or an earlier output of the same
command, which says so by a marker file listing the entries it wrote (the only ones its next run may remove).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Collection, Iterable

from soundmind_data import __version__
from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import AUDIO_DIR, AUDIO_FIELDS
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import write_json


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


def check_output_folder(out: Path, manifest: Path, flag: str, audio_folders: Collection[Path] = ()) -> None:
    """Refuse an output folder that is the folder of `manifest`, holds it, lies in its audio folder, or is or holds
    one of `audio_folders` (the resolved folders of the audio files the manifest names, wherever in the corpus they
    lie: a release ingested in place): writing it would replace the corpus being read, or move its audio away. `flag`
    is the option that named the folder, for the message."""
    corpus = Path(os.path.realpath(Path(manifest).parent))
    target = Path(os.path.realpath(out))
    if corpus.is_relative_to(target):
        raise UsageError(f"{flag} {out}: is or holds the folder of the corpus being read ({manifest}); writing "
                         f"there would replace its files: choose another folder")
    if target.is_relative_to(corpus / AUDIO_DIR):
        raise UsageError(f"{flag} {out}: lies in the audio folder of the corpus being read ({manifest}); writing "
                         f"there would replace its audio: choose another folder")
    used = next((folder for folder in audio_folders if folder.is_relative_to(target)), None)
    if used is not None:
        raise UsageError(f"{flag} {out}: holds audio files that {manifest} names (in {used}); writing there would "
                         f"move them away: choose another folder")


class AudioFolders:
    """The folders holding the audio files a manifest's items name, as they lie and as their links resolve, gathered
    item by item (`add`) for `check_output_folder`: an output folder that holds one would move the corpus's audio."""

    def __init__(self, root: Path):
        self.root = root  # the manifest's folder, which audio paths are relative to
        self.folders: set[Path] = set()
        self._resolved: dict[str, Path] = {}  # a folder as items name it -> where it lies (a release: one per item)

    def add(self, item: dict) -> None:
        for audio in (item.get(key) for key in AUDIO_FIELDS):
            path = audio.get("path") if isinstance(audio, dict) else None
            if not isinstance(path, str) or os.path.isabs(path) or ".." in path.split("/"):
                continue  # no audio, or a path the command refuses at its line
            folder = os.path.dirname(path)
            if folder not in self._resolved:
                self._resolved[folder] = Path(os.path.realpath(self.root / folder))
            self.folders.add(self._resolved[folder])
            if os.path.islink(self._resolved[folder] / os.path.basename(path)):  # its audio lies elsewhere too
                self.folders.add(Path(os.path.realpath(self._resolved[folder] / os.path.basename(path))).parent)


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
    theirs = {entry for entry in entries if entry not in own and tempfiles.temp_target(entry) not in own}
    if theirs and marker not in entries and not overwrite:
        raise UsageError(f"{flag} {out}: holds files and is not the output of an earlier {command} (no {marker} in "
                         f"it), and {command} would replace folders in it: choose a new or empty folder, or pass "
                         f"--overwrite to replace them")


def mark_output(out: Path, command: str, entries: Iterable[str] | None = None) -> None:
    """Mark `out` as `command`'s output once its new contents are complete, before they are moved in (a run that
    fails before that leaves no trace there), so that its next run (a pipeline's re-run, a run after a kill) replaces
    them without --overwrite. `entries` are the names in `out` that the command wrote, for `output_entries`."""
    record: dict[str, object] = {"command": command, "version": __version__}
    if entries is not None:
        record["entries"] = sorted(entries)
    write_json(out / output_marker(command), record)


def output_entries(out: Path, command: str) -> set[str]:
    """The entries of `out` that `command`'s last run wrote, as its marker lists them: those its next run may remove
    when it writes no such entry. The marker is a file in a folder of the user's, so only plain, visible names of
    entries in `out` itself are taken (no `..`, no `/`), and a missing or unreadable marker lists nothing."""
    try:
        record = json.loads((out / output_marker(command)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    entries = record.get("entries") if isinstance(record, dict) else None
    if not isinstance(entries, list):
        return set()
    return {entry for entry in entries if isinstance(entry, str) and entry and not entry.startswith(".")
            and not {"/", os.sep, "\0"} & set(entry)}
