"""PNG plots of a validated corpus: durations per split and label, WER and loudness distributions.

Drawn with matplotlib's Agg canvas on Figure objects (never pyplot), so no display, no global state, and it works
the same in worker processes, CI and over SSH.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from soundmind_data.errors import UsageError
from soundmind_data.jsonl import AtomicWriter
from soundmind_data.labels import LABEL_NAMES

KINDS = ("question", "answer")


@dataclass
class Distributions:
    """One row per audio file, in compact arrays (18 bytes a file), for plots of corpora of any size."""

    splits: dict[str, int] = field(default_factory=dict)  # split name -> code
    split: array = field(default_factory=lambda: array("H"))
    label: array = field(default_factory=lambda: array("b"))
    kind: array = field(default_factory=lambda: array("b"))  # index into KINDS
    duration_s: array = field(default_factory=lambda: array("f"))
    loudness_lufs: array = field(default_factory=lambda: array("f"))  # NaN: unknown
    wer: array = field(default_factory=lambda: array("f"))  # NaN: unknown

    def add(self, split: str, label: int, kind: str, duration_s: float, loudness_lufs: float | None,
            wer: float | None) -> None:
        self.split.append(self.splits.setdefault(split, len(self.splits)))
        self.label.append(label)
        self.kind.append(KINDS.index(kind))
        self.duration_s.append(duration_s)
        self.loudness_lufs.append(math.nan if loudness_lufs is None else loudness_lufs)
        self.wer.append(math.nan if wer is None else wer)


def write_plots(data: Distributions, folder: str | Path, *, loudness_target_lufs: float, loudness_tolerance_lu: float,
                max_wer: float | None) -> list[Path]:
    """Write durations.png, and wer.png / loudness.png when any file has those values; returns the paths written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--plots {folder}: cannot create the folder: {exc.strerror}") from None
    columns = {name: np.frombuffer(getattr(data, name), dtype=np.dtype(getattr(data, name).typecode))
               for name in ("split", "label", "kind", "duration_s", "loudness_lufs", "wer")}
    written = []

    def new_figure(rows: int, cols: int) -> Figure:
        figure = Figure(figsize=(5 * cols, 3.2 * rows), layout="constrained")
        FigureCanvasAgg(figure)
        return figure

    # durations: one row per split, question and answer side by side, one histogram per label
    split_names = sorted(data.splits, key=data.splits.get)
    figure = new_figure(max(1, len(split_names)), len(KINDS))
    axes = figure.subplots(max(1, len(split_names)), len(KINDS), squeeze=False)
    for row, split in enumerate(split_names):
        for col, kind in enumerate(KINDS):
            axis = axes[row][col]
            in_panel = (columns["split"] == data.splits[split]) & (columns["kind"] == col)
            bins = np.histogram_bin_edges(columns["duration_s"][in_panel], bins=30) if in_panel.any() else 10
            for label, name in enumerate(LABEL_NAMES):
                values = columns["duration_s"][in_panel & (columns["label"] == label)]
                axis.hist(values, bins=bins, histtype="step", linewidth=1.5, label=f"{name} ({len(values)})")
            axis.set(title=f"{split}: {kind} audio", xlabel="duration (s)", ylabel="files")
            axis.legend(fontsize="small")
    written.append(_save(figure, folder / "durations.png"))

    for column, name, unit, marks in (
        ("wer", "wer", "word error rate", [] if max_wer is None else [(max_wer, "max WER")]),
        ("loudness_lufs", "loudness", "integrated loudness (LUFS)",
         [(loudness_target_lufs - loudness_tolerance_lu, "target range"), (loudness_target_lufs + loudness_tolerance_lu, None)]),
    ):
        values = columns[column]
        if np.isnan(values).all():
            continue
        figure = new_figure(1, 1)
        axis = figure.subplots()
        for index, kind in enumerate(KINDS):
            kind_values = values[(columns["kind"] == index) & ~np.isnan(values)]
            if kind_values.size:
                axis.hist(kind_values, bins=30, histtype="step", linewidth=1.5, label=f"{kind} ({kind_values.size})")
        for x, mark_label in marks:
            axis.axvline(x, color="red", linestyle="--", label=mark_label)
        axis.set(title=f"{unit} per audio file", xlabel=unit, ylabel="files")
        axis.legend(fontsize="small")
        written.append(_save(figure, folder / f"{name}.png"))
    return written


def _save(figure, path: Path) -> Path:
    """Write a PNG atomically (never a half-written image)."""
    with AtomicWriter(path) as out:
        figure.savefig(out.file, format="png", dpi=100)
    return path
