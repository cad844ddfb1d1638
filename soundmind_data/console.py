"""What the command line shows while it works and when it is done: progress bars and reports' summaries.

Only the CLI uses this module; the library reports through `stage.Progress` and `Summary` and never prints.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from tqdm import tqdm

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
