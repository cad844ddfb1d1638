"""What the command line shows while it works and when it is done: progress bars and reports' summaries.

Only the CLI uses this module; the library reports through `stage.Progress` and `Summary` and never prints.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import typer
from tqdm import tqdm

from soundmind_data.core.corpus import RUN_LOG, STATE_FILE
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.stage import Progress, check_distinct


PROGRESS_INTERVAL_ENV = "SOUNDMIND_DATA_PROGRESS_S"  # seconds between progress lines in batch logs (default 30)
LOG_FILE_ENV = "SOUNDMIND_DATA_LOG_FILE"


@dataclass
class Output:
    """Where the command line writes besides stdout: set once by the root options (`--quiet`, `--log-file`)."""

    quiet: bool = False  # no progress on stderr (bars or lines); errors and summaries still print
    log_file: Path | None = None  # progress lines, notes, warnings and summaries, timestamped, appended here
    log_option: str = "--log-file"  # how the user named it (the option or the environment variable), for messages
    log: TextIO | None = None  # the log file, once open
    interval_s: float = 30.0


OUTPUT = Output()
# A pipeline's own files in its work dir, JSON only: a line of text appended to the run log makes publish refuse it.
_NOT_LOGS = {RUN_LOG: "run log", STATE_FILE: "state file"}


def configure(quiet: bool, log_file: Path | None) -> None:
    """Apply the root options. The log file is checked here; an existing one is opened now (for appending,
    line-buffered, so a batch log grows live), a new one at its first line, once the command has checked that the
    path is none of its own files (`check_log_file`): a refused path is then left as it was."""
    OUTPUT.quiet = quiet
    interval = os.environ.get(PROGRESS_INTERVAL_ENV)
    if interval:
        try:
            OUTPUT.interval_s = max(0.0, float(interval))
        except ValueError:
            raise UsageError(f"${PROGRESS_INTERVAL_ENV}={interval!r}: expected seconds") from None
    where = "--log-file"
    if log_file is None and os.environ.get(LOG_FILE_ENV):
        log_file, where = Path(os.environ[LOG_FILE_ENV]), f"${LOG_FILE_ENV}"
    if log_file is None:
        return
    if log_file.is_dir():  # appended to only, so a FIFO or /dev/stderr is fine
        raise UsageError(f"{where} {log_file}: is a folder; give a file name")
    if (name := Path(os.path.realpath(log_file)).name) in _NOT_LOGS:
        raise UsageError(f"{where} {log_file}: names a pipeline's {_NOT_LOGS[name]} ({name}), which holds JSON "
                         f"only; log elsewhere")
    if not log_file.parent.is_dir():
        raise UsageError(f"{where} {log_file}: no such folder {log_file.parent}")
    OUTPUT.log_file, OUTPUT.log_option = log_file, where
    if log_file.exists():
        try:
            OUTPUT.log = open(log_file, "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise UsageError(f"{where} {log_file}: {exc.strerror}") from None


def check_log_file(files: list[tuple[str, Path]]) -> None:
    """Refuse a log file that is one of `files`, the command's inputs and outputs: log lines appended to a manifest
    or report would corrupt it. Logging stops first, so that not even the refusal is appended to it."""
    if OUTPUT.log_file is None:
        return
    try:
        check_distinct(files, [(OUTPUT.log_option, OUTPUT.log_file)])
    except UsageError:
        _stop_logging()
        raise


def _log(line: str) -> None:
    """Append a line to the log file. One that cannot be written (a full disk, /dev/full) is a warning on stderr,
    once, and logging stops: the command goes on, and its exit code is what its work gave."""
    if OUTPUT.log_file is None:
        return
    try:
        if OUTPUT.log is None:
            OUTPUT.log = open(OUTPUT.log_file, "a", encoding="utf-8", buffering=1)
        OUTPUT.log.write(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {line}\n")
    except OSError as exc:
        where, path = OUTPUT.log_option, OUTPUT.log_file
        _stop_logging()
        typer.echo(f"warning: {where} {path}: cannot write: {exc.strerror}; logging stopped", err=True)


def _stop_logging() -> None:
    log, OUTPUT.log, OUTPUT.log_file = OUTPUT.log, None, None
    if log is not None:
        try:
            log.close()
        except OSError:  # what was left in its buffer cannot be written either
            pass


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Bars(Progress):
    """Progress on stderr. On a terminal, a tqdm bar per piece of work. Elsewhere (a batch job on Slurm or
    Kubernetes, output redirected to a file), a line every `OUTPUT.interval_s` seconds: done/total, rate, ETA and the
    stage's running figures (audio hours, failures so far). `--quiet` shows neither; `--log-file` receives the lines
    either way. Use as a context manager: the last piece of work is closed (and its final line written) on exit."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.desc: str | None = None
        self.unit, self.total, self.done = "item", None, 0
        self.values: dict[str, Any] = {}
        self.started = self.last_line = 0.0
        self.lines = 0  # progress lines written for the current piece of work

    def start(self, desc: str, *, unit: str = "item", total: int | None = None) -> None:
        self.close()
        self.desc, self.unit, self.total, self.done, self.values, self.lines = desc, unit, total, 0, {}, 0
        self.started = self.last_line = time.monotonic()
        if sys.stderr.isatty() and not OUTPUT.quiet:
            self.bar = tqdm(desc=desc, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        self._line_when_due()

    def status(self, **values: Any) -> None:
        self.values.update(values)
        if self.bar is not None:
            self.bar.set_postfix(refresh=False, **values)
        self._line_when_due()

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
            _log(message)
        else:
            err(message)

    def close(self, failed: bool = False) -> None:
        """End the piece of work; its final line is written when lines were (work too short for one needs none,
        and work that failed ends with the error's line, not a count)."""
        if self.desc is not None and self.lines and not failed:
            self._line(final=True)
        self.desc = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _line_when_due(self) -> None:
        if time.monotonic() - self.last_line >= OUTPUT.interval_s:
            self._line(final=False)

    def _line(self, final: bool) -> None:
        """`synthesize: 120/1,000 items (12%), 0.52 items/s, 3m50s elapsed, ETA 28m12s; audio 0.41h, failed 2`"""
        now = time.monotonic()
        self.last_line = now
        self.lines += 1
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        count = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        parts = [f"{self.desc}: {count} {self.unit}s" + (f" ({100 * self.done / self.total:.0f}%)" if self.total else ""),
                 f"{rate:.2f} {self.unit}s/s", f"{_duration(elapsed)} elapsed"]
        if self.total and not final and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        line = ", ".join(parts) + ("; " + ", ".join(f"{key} {value}" for key, value in self.values.items())
                                   if self.values else "")
        if self.bar is None and not OUTPUT.quiet:
            typer.echo(line, err=True)
        _log(line)

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(failed=exc_type is not None)


def err(message: str) -> None:
    typer.echo(message, err=True)
    _log(message)


def show(report: Any) -> None:
    """Print what a report says of itself: tables on stdout, the summary line and warnings on stderr."""
    summary = report.summary()
    for line in summary.out:
        typer.echo(line)
    for line in summary.err:
        err(line)


class RunBars(Bars):
    """What `run` shows: each stage's bars, `[2/7] split: running` before it and its report (or its error) after."""

    def __init__(self, steps: list[Any]):
        super().__init__()
        self.steps = steps
        self.current: str | None = None  # the stage under way, named when the run is interrupted

    def stage_started(self, step: Any, status: str) -> None:
        self.current = step.name
        position = f"{self.steps.index(step) + 1}/{len(self.steps)}"
        err(f"[{position}] {step.name}: {'unchanged, skipped' if status == 'skipped' else 'running'}")

    def stage_finished(self, step: Any, report: Any, error: str | None) -> None:
        self.close()
        if error:
            err(f"error: {error}")
        else:
            show(report)


def run_app(app: typer.Typer) -> None:
    """Run the app, turning every error into one line on stderr and an exit code scripts can trust:
    2 for usage errors (bad arguments included), 1 for failed checks and bad data, 130 for Ctrl-C, 143 for SIGTERM.

    SIGTERM (how Slurm and Kubernetes stop a job) is handled like Ctrl-C, so partial outputs are removed the same way.
    """
    terminated = False

    def on_sigterm(signum, frame) -> None:
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = app(standalone_mode=False)  # click's own error output is a multi-line box; ours is one line
    except typer.TyperException as exc:  # a bad argument or option (exit 2), a missing one, an unknown command
        message = " ".join(exc.format_message().split())
        context = getattr(exc, "ctx", None)
        if message:  # empty after the help text that a bare command prints
            err(f"error: {message}" + (f" (see `{context.command_path} --help`)" if context else ""))
        sys.exit(exc.exit_code)
    except UsageError as exc:
        err(_error_lines(exc))
        sys.exit(2)
    except DataError as exc:
        err(_error_lines(exc))
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer turns an interrupt into exit code 130
        err("terminated" if terminated else "interrupted")
        sys.exit(143 if terminated else 130)
    sys.exit(code if isinstance(code, int) else 0)


def _error_lines(exc: Exception) -> str:
    """Each problem of an error on its own `error:` line (the runner's checks report every stage's problems at once)."""
    return "\n".join(f"error: {line}" for line in str(exc).splitlines() or [""])
