"""What the runner keeps in the work dir between runs: `pipeline-state.json` (what each stage last wrote, and the
fingerprint of what shaped it: the skip rule) and `run-log.jsonl` (a line per stage run or skipped). These files, like
the runner's other files there, are never read or written through a symlink nor waited on (a FIFO)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmind_data import __version__
from soundmind_data.core import schemas
from soundmind_data.core import yamlfile
from soundmind_data.core.corpus import AUDIO_FIELDS, RUN_LOG, STATE_FILE, in_workdir
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import count_lines, iter_lines, write_json
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.core.stage import StageReport, option_values
from soundmind_data.pipeline.config import Plan, Step

@dataclass
class StageRun:
    stage: str
    command: str
    status: str  # ran | skipped | failed
    exit_code: int
    duration_s: float
    items_in: int | None
    items_out: int | None
    output: str | None
    failures: int | None = None  # lines or items the stage set aside; None for stages that set none aside
    failures_file: str | None = None  # where they are listed, with the reasons
    report: str | None = None  # the stage's JSON report


def file_sha256(path: Path) -> str:
    """sha256 of a file. A stage's output is hashed once to check it and again as the next stage's input: the
    digest is remembered for as long as the file's size and modification time stay the same."""
    return file_digest(path, "sha256")


def stage_fingerprint(plan: Plan, workdir: Path) -> str:
    """The hash of everything that shapes a stage's output. Paths inside the work dir count as `$WORKDIR/...`, so a
    work dir that was moved or copied (`cp -r demo-out my-corpus`) keeps its finished stages."""
    portable = lambda text: in_workdir(str(text), workdir)  # noqa: E731
    inputs = [path for _, path in plan.files.read]  # the input manifest, the files its options name, default files
    shaping = {"version": __version__, "stage": plan.stage.name, "options": option_values(plan.options),
               "out": plan.out and str(plan.out), "report": plan.report and str(plan.report)}
    digest = hashlib.sha256(portable(json.dumps(shaping, sort_keys=True)).encode())
    for path in inputs:
        digest.update(f"\0{portable(path)}\0{file_sha256(path) if path.is_file() else 'missing'}".encode())
    return digest.hexdigest()


def _audio_files_digest(manifest: Path) -> str:
    """sha256 over the path and size of every audio file a manifest points to (relative to its folder): a deleted or
    truncated file changes it, at the cost of one stat per file rather than reading the audio."""
    digest = hashlib.sha256()
    for line in iter_lines(manifest):
        for key in AUDIO_FIELDS:
            audio = (line.record or {}).get(key)
            if not isinstance(audio, dict) or "path" not in audio:
                continue
            try:
                size = os.stat(audio_file(manifest.parent, audio["path"])).st_size
            except (UnsafePath, OSError):  # a path the stages refuse counts as a missing file
                size = -1
            digest.update(f"{audio['path']}\0{size}\n".encode())
    return digest.hexdigest()


_STATE_PATHS = ("manifest", "output", "failures_file")  # kept relative to the work dir in the state file
_STATE_HELP = "fix it, or delete it to run every stage again"


def load_state(workdir: Path) -> dict[str, Any]:
    """The state file, checked against schemas/pipeline-state.schema.json: a hand-edited one of the wrong shape is a
    usage error naming the field, not a traceback in the middle of the skip rule."""
    path = workdir / STATE_FILE
    try:
        handle = os.fdopen(_open_own(path, os.O_RDONLY), encoding="utf-8")
    except FileNotFoundError:
        return {}
    with handle:
        try:
            state = json.load(handle)
        except ValueError as exc:  # UnicodeDecodeError included
            raise UsageError(f"{path}: not JSON ({yamlfile.shorten(exc)}); {_STATE_HELP}") from None
    if problem := schemas.first_error("pipeline-state", state):
        raise UsageError(f"{path}: {yamlfile.shorten(problem)}; {_STATE_HELP}")
    for record in state.values():
        for key in _STATE_PATHS:
            if record.get(key):
                record[key] = str(workdir / record[key])  # an absolute path stays as it is
    return state


def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    def relative(path: str | None) -> str | None:
        return os.path.relpath(path, workdir) if path and Path(path).is_relative_to(workdir) else path

    write_json(workdir / STATE_FILE, {name: {**record, **{key: relative(record.get(key)) for key in _STATE_PATHS}}
                                      for name, record in state.items()})


def still_valid(record: dict[str, Any] | None, fingerprint: str) -> bool:
    if not record or record.get("fingerprint") != fingerprint:
        return False
    manifest = record.get("manifest")
    if manifest:
        return (Path(manifest).is_file() and file_sha256(Path(manifest)) == record.get("manifest_sha256")
                and _audio_files_digest(Path(manifest)) == record.get("audio_files"))
    output = record.get("output")
    return output is None or Path(output).exists()


def check_not_edited(step: Step, record: dict[str, Any] | None) -> None:
    """Re-running a stage rewrites its manifest: one changed since the pipeline wrote it (items a contributor added
    with `soundmind-data add --to`, a hand edit) would be lost without a word, so that is a usage error."""
    manifest = record.get("manifest") if record else None
    if manifest and Path(manifest).is_file() and file_sha256(Path(manifest)) != record.get("manifest_sha256"):
        raise UsageError(f"{manifest}: changed since the pipeline wrote it (stage {step.name}); re-running would "
                         f"overwrite it: move it away to keep it, or pass --from {step.name} to rebuild it")


def remember(state: dict[str, Any], workdir: Path, plan: Plan, fingerprint: str | None,
             report: StageReport | None) -> None:
    """Record what a stage wrote and what it set aside. `fingerprint` is None when it did not finish (failed,
    interrupted): it runs again next time, and what it left behind is still known as the pipeline's own output, not
    an outside edit."""
    manifest = plan.out_manifest
    written = manifest is not None and manifest.is_file()
    set_aside_file = report.set_aside_file if report else None
    state[plan.step.name] = {
        "fingerprint": fingerprint,
        "manifest": str(manifest) if manifest else None,
        "manifest_sha256": file_sha256(manifest) if written else None,
        "audio_files": _audio_files_digest(manifest) if written else None,
        "output": str(plan.out) if plan.out else None,
        "set_aside": report.set_aside if report else None,
        "failures_file": str(set_aside_file) if set_aside_file else None,
    }
    _save_state(workdir, state)


def stage_run(plan: Plan, status: str, exit_code: int, duration_s: float, record: dict[str, Any]) -> StageRun:
    """The run-log entry of a stage; what it set aside is as `remember` recorded it (for a skipped stage: when it
    last ran)."""
    return StageRun(plan.step.name, plan.command_line, status, exit_code, round(duration_s, 3),
                    count_lines(plan.manifest) if plan.manifest else None,
                    count_lines(plan.out_manifest) if plan.out_manifest else None,
                    str(plan.out) if plan.out else None, record.get("set_aside"), record.get("failures_file"),
                    str(plan.report) if plan.report else None)


def append_log(workdir: Path, run: StageRun) -> None:
    """One line of the run log. Paths in the work dir are written `$WORKDIR/...`, so the log (and the card citing
    it) stays true after the work dir is moved."""
    portable = {key: in_workdir(value, workdir) if isinstance(value, str) else value
                for key, value in run.__dict__.items()}
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "toolkit_version": __version__, **portable}
    fd = _open_own(workdir / RUN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "w", encoding="utf-8") as log:  # one write per line: a crash loses at most one entry
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------- the runner's own files
def check_own_path(path: Path, *, folder: bool = False) -> None:
    """Refuse what is in the way of a file (`folder`: a folder) the runner writes in the work dir: a symlink, which
    could lead out of it, or anything else that is not a regular file (a folder), such as a FIFO, which would block
    the run forever. Nothing there is fine: the runner makes it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
        raise _odd_path(path, mode, folder)


def _open_own(path: Path, flags: int) -> int:
    """A descriptor on the run log or the state file, opened without following a symlink or blocking on a FIFO
    (O_NOFOLLOW, O_NONBLOCK: a no-op on a regular file), and refused unless it is a regular file. FileNotFoundError
    when there is none and `flags` do not create it."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # a symlink; a FIFO nobody reads; a folder
            raise _odd_path(path, os.lstat(path).st_mode, folder=False) from None
        raise UsageError(f"{path}: cannot open: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _odd_path(path, mode, folder=False)
    return fd


def _odd_path(path: Path, mode: int, folder: bool) -> UsageError:
    kind = ("a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "a FIFO" if
            stat.S_ISFIFO(mode) else "a file" if stat.S_ISREG(mode) else "a device or a socket")
    return UsageError(f"{path}: is {kind}, where the runner writes {'a folder' if folder else 'a file'}; it never "
                      f"follows or waits on one: move it away")
