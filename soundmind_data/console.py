"""What the command line shows while it works and when it is done: progress bars and reports' summaries.

Only the CLI uses this module; the library reports through `stage.Progress` and `Summary` and never prints.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import typer
from tqdm import tqdm

from soundmind_data.errors import DataError, UsageError
from soundmind_data.stage import Progress


class Bars(Progress):
    """Progress as tqdm bars on stderr, one per piece of work; silent when stderr is not a terminal (logs and CI
    stay clean). Use as a context manager: the last bar is closed on exit."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def start(self, desc: str, *, unit: str = "item", total: int | None = None) -> None:
        self.close()
        self.bar = tqdm(desc=desc, unit=unit, total=total, file=sys.stderr, disable=None, dynamic_ncols=True)

    def advance(self, count: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def status(self, **values: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(refresh=False, **values)

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            err(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def err(message: str) -> None:
    typer.echo(message, err=True)


def show(report: Any) -> None:
    """Print what a report says of itself: tables on stdout, the summary line and warnings on stderr."""
    summary = report.summary()
    for line in summary.out:
        typer.echo(line)
    for line in summary.err:
        err(line)


class StageDisplay:
    """What `run` shows of each stage: `[2/7] split: running`, then the stage's report (or its error)."""

    def __init__(self, bars: Bars, steps: list[Any]):
        self.bars, self.steps = bars, steps
        self.current: str | None = None  # the stage under way, named when the run is interrupted

    def start(self, step: Any, status: str) -> None:
        self.current = step.name
        position = f"{self.steps.index(step) + 1}/{len(self.steps)}"
        err(f"[{position}] {step.name}: {'unchanged, skipped' if status == 'skipped' else 'running'}")

    def done(self, step: Any, report: Any, error: str | None) -> None:
        self.bars.close()
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
        err(f"error: {exc}")
        sys.exit(2)
    except DataError as exc:
        err(f"error: {exc}")
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer turns an interrupt into exit code 130
        err("terminated" if terminated else "interrupted")
        sys.exit(143 if terminated else 130)
    sys.exit(code if isinstance(code, int) else 0)
