"""PNG plots of a corpus: items per split and label, durations per split and label, WER and loudness distributions.

Drawn with matplotlib's Agg canvas on Figure objects (never pyplot), so no display, no global state, and it works
the same in worker processes, CI and over SSH.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from soundmind_data.corpus import AUDIO_FIELDS, LabelCounts
from soundmind_data.errors import UsageError
from soundmind_data.jsonl import AtomicWriter, iter_records
from soundmind_data.labels import LABEL_NAMES

KINDS = tuple(field.removesuffix("_audio") for field in AUDIO_FIELDS)  # question, answer
DPI = 100
LABEL_BALANCE_PNG = "label-balance.png"
LABEL_BALANCE_SIZE_IN = (6.4, 3.6)  # inches; pixels = inches x DPI
DURATIONS_PNG = "durations.png"


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
    """Write durations.png, and wer.png / loudness.png when any file has those values; returns the paths written
    (none when no audio file was measured: empty axes would only look like a broken plot)."""
    columns = _columns(data)
    if not columns["kind"].size:
        return []
    folder = _plot_folder(folder, "--plots")
    written = []
    written.append(_save(_durations_figure(data, columns), folder / "durations.png"))

    for column, name, unit, marks in (
        ("wer", "wer", "word error rate", [] if max_wer is None else [(max_wer, "max WER")]),
        ("loudness_lufs", "loudness", "integrated loudness (LUFS)",
         [(loudness_target_lufs - loudness_tolerance_lu, "target range"), (loudness_target_lufs + loudness_tolerance_lu, None)]),
    ):
        values = columns[column]
        if np.isnan(values).all():
            continue
        figure = _new_figure(5, 3.2)
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


def distributions_of(manifest: str | Path) -> tuple[LabelCounts, Distributions]:
    """Items per split and label and the durations of the audio files of a manifest, read lazily. An upsampled
    repeat counts as an item but its audio, already counted, does not."""
    items = LabelCounts()
    data = Distributions()
    for item in iter_records(manifest):
        items.add(item["split"], item["label"])
        if item.get("repeat_of"):
            continue
        for kind in KINDS:
            audio = item.get(f"{kind}_audio")
            if audio:
                data.add(item["split"], item["label"], kind, audio["duration_s"], audio.get("loudness_lufs"),
                         audio.get("wer"))
    return items.sorted(), data


def write_corpus_plots(manifest: str | Path, folder: str | Path) -> list[Path]:
    """The plots a pipeline leaves beside its manifests and the dataset card shows: label-balance.png (items per split
    and label) and, when the manifest has audio, durations.png; a durations.png of an earlier corpus with audio is
    removed when this one has none. Returns the paths written."""
    folder = _plot_folder(folder, "plots")
    items, data = distributions_of(manifest)
    written = [_save(_label_balance_figure(items), folder / LABEL_BALANCE_PNG)]
    if len(data.duration_s):
        written.append(_save(_durations_figure(data, _columns(data)), folder / DURATIONS_PNG))
    else:
        (folder / DURATIONS_PNG).unlink(missing_ok=True)
    return written


def _label_balance_figure(items: LabelCounts):
    """Grouped bars: one group per split, one bar per label, each bar labelled with its count."""
    figure = _new_figure(*LABEL_BALANCE_SIZE_IN)
    axis = figure.subplots()
    positions = np.arange(len(items))
    width = 0.8 / len(LABEL_NAMES)
    for label, name in enumerate(LABEL_NAMES):
        counts = [items[split][label] for split in items]
        bars = axis.bar(positions + (label - (len(LABEL_NAMES) - 1) / 2) * width, counts, width, label=name)
        axis.bar_label(bars, fontsize="small")
    axis.set_xticks(positions, list(items))
    axis.set(title="items per split and label", ylabel="items")
    axis.margins(y=0.25)  # room for the counts and the legend above the tallest bar
    axis.legend(fontsize="small", loc="upper center", ncols=len(LABEL_NAMES))
    return figure


def _durations_figure(data: Distributions, columns: dict[str, np.ndarray]):
    """One row per split, question and answer side by side, one histogram per label."""
    split_names = sorted(data.splits, key=data.splits.get)
    rows = max(1, len(split_names))
    figure = _new_figure(5 * len(KINDS), 3.2 * rows)
    axes = figure.subplots(rows, len(KINDS), squeeze=False)
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
    return figure


def _columns(data: Distributions) -> dict[str, np.ndarray]:
    """The compact arrays as numpy views (no copy)."""
    return {name: np.frombuffer(getattr(data, name), dtype=np.dtype(getattr(data, name).typecode))
            for name in ("split", "label", "kind", "duration_s", "loudness_lufs", "wer")}


def _plot_folder(folder: str | Path, option: str) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {folder}: cannot create the folder: {exc.strerror}") from None
    return folder


def _new_figure(width_in: float, height_in: float):
    """A Figure on its own Agg canvas (never pyplot: no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    """Write a PNG atomically (never a half-written image)."""
    with AtomicWriter(path) as out:
        figure.savefig(out.file, format="png", dpi=DPI)
    return path
