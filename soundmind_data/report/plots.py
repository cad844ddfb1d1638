"""PNG plots of a corpus: items per split and label, durations per split and label, WER and loudness distributions,
and, when more than one voice speaks, durations and speaking rates per voice.

Drawn with matplotlib's Agg canvas on Figure objects (never pyplot), so no display, no global state, and it works
the same in worker processes, CI and over SSH.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundmind_data.core.corpus import AUDIO_FIELDS, AUDIO_TEXT, LabelCounts, voice_of
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter, iter_records
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.text.textkey import spoken_words

KINDS = tuple(field.removesuffix("_audio") for field in AUDIO_FIELDS)  # question, answer
DPI = 100
LABEL_BALANCE_PNG = "label-balance.png"
LABEL_BALANCE_SIZE_IN = (6.4, 3.6)  # inches; pixels = inches x DPI
DURATIONS_PNG = "durations.png"
VOICES_PNG = "voices.png"


@dataclass
class Distributions:
    """One row per audio file, in compact arrays (22 bytes a file), for plots of corpora of any size."""

    splits: dict[str, int] = field(default_factory=dict)  # split name -> code
    voices: dict[str, int] = field(default_factory=dict)  # voice name -> code
    split: array = field(default_factory=lambda: array("H"))
    voice: array = field(default_factory=lambda: array("H"))
    label: array = field(default_factory=lambda: array("b"))
    kind: array = field(default_factory=lambda: array("b"))  # index into KINDS
    duration_s: array = field(default_factory=lambda: array("f"))
    loudness_lufs: array = field(default_factory=lambda: array("f"))  # NaN: unknown
    wer: array = field(default_factory=lambda: array("f"))  # NaN: unknown
    words: array = field(default_factory=lambda: array("f"))  # words of the spoken text; NaN: unknown

    def add(self, split: str, label: int, kind: str, duration_s: float, loudness_lufs: float | None,
            wer: float | None, *, voice: str, words: int | None) -> None:
        self.split.append(self.splits.setdefault(split, len(self.splits)))
        self.voice.append(self.voices.setdefault(voice, len(self.voices)))
        self.label.append(label)
        self.kind.append(KINDS.index(kind))
        self.duration_s.append(duration_s)
        self.loudness_lufs.append(math.nan if loudness_lufs is None else loudness_lufs)
        self.wer.append(math.nan if wer is None else wer)
        self.words.append(math.nan if words is None else words)


@dataclass(frozen=True)
class VoiceFigures:
    """The audio files one voice spoke, per kind (question, answer): their durations, and their speaking rates in
    words of the spoken text per second (files whose word count is known)."""

    voice: str
    duration_s: dict[str, np.ndarray]
    words_per_s: dict[str, np.ndarray]

    @property
    def files(self) -> int:
        return sum(values.size for values in self.duration_s.values())


def voice_figures(data: Distributions) -> list[VoiceFigures]:
    """What the voices plot draws, one entry per voice in name order."""
    columns = _columns(data)
    duration = columns["duration_s"]
    rate = np.divide(columns["words"], duration, out=np.full(duration.shape, np.nan, dtype=duration.dtype),
                     where=duration > 0)
    figures = []
    for voice in sorted(data.voices):
        of_kind = {kind: (columns["voice"] == data.voices[voice]) & (columns["kind"] == index)
                   for index, kind in enumerate(KINDS)}
        figures.append(VoiceFigures(voice, {kind: duration[rows] for kind, rows in of_kind.items()},
                                    {kind: rate[rows & ~np.isnan(rate)] for kind, rows in of_kind.items()}))
    return figures


def write_plots(data: Distributions, folder: str | Path, *, loudness_target_lufs: float, loudness_tolerance_lu: float,
                max_wer: float | None) -> list[Path]:
    """Write durations.png, wer.png / loudness.png when any file has those values, and voices.png when more than one
    voice speaks; returns the paths written (none when no audio file was measured: empty axes would only look like a
    broken plot)."""
    columns = _columns(data)
    if not columns["kind"].size:
        return []
    folder = _plot_folder(folder, "--plots")
    written = []
    written.append(_save(_durations_figure(data, columns), folder / DURATIONS_PNG))
    if len(data.voices) > 1:
        written.append(_save(_voices_figure(voice_figures(data)), folder / VOICES_PNG))

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
                axis.hist(kind_values, bins=_bin_edges(kind_values), histtype="step", linewidth=1.5,
                          label=f"{kind} ({kind_values.size})")
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
                         audio.get("wer"), voice=voice_of(item, audio), words=_recorded_words(item, kind, audio))
    return items.sorted(), data


def _recorded_words(item: dict[str, Any], kind: str, audio: dict[str, Any]) -> int | None:
    """The words an audio file says, as far as the manifest tells without normalising its text again (which would
    cost the voices plot of a large corpus minutes): the speech text validate recorded where it differs from the
    written text, else the written text. Symbols and numbers aside, the two have the same words."""
    text = audio.get("speech_text") or item.get(AUDIO_TEXT[f"{kind}_audio"])
    return len(spoken_words(text)) if isinstance(text, str) and text.strip() else None


def write_corpus_plots(manifest: str | Path, folder: str | Path) -> list[Path]:
    """The plots a pipeline leaves beside its manifests and the dataset card shows: label-balance.png (items per split
    and label), durations.png when the manifest has audio, and voices.png when more than one voice speaks it; a plot
    of an earlier corpus that this one does not call for is removed. Returns the paths written."""
    folder = _plot_folder(folder, "plots")
    items, data = distributions_of(manifest)
    written = [_save(_label_balance_figure(items), folder / LABEL_BALANCE_PNG)]
    for name, wanted, draw in (
        (DURATIONS_PNG, len(data.duration_s) > 0, lambda: _durations_figure(data, _columns(data))),
        (VOICES_PNG, len(data.voices) > 1, lambda: _voices_figure(voice_figures(data))),
    ):
        if wanted:
            written.append(_save(draw(), folder / name))
        else:
            (folder / name).unlink(missing_ok=True)
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
            bins = _bin_edges(columns["duration_s"][in_panel]) if in_panel.any() else 10
            for label, name in enumerate(LABEL_NAMES):
                values = columns["duration_s"][in_panel & (columns["label"] == label)]
                axis.hist(values, bins=bins, histtype="step", linewidth=1.5, label=f"{name} ({len(values)})")
            axis.set(title=f"{split}: {kind} audio", xlabel="duration (s)", ylabel="files")
            axis.legend(fontsize="small")
    return figure


def _voices_figure(figures: list[VoiceFigures]):
    """Two panels, durations and speaking rates, one row per voice: a dot per file (question and answer just above
    and below the row's line) and a bar at each kind's mean, so a voice that speaks too fast, too slowly or
    stops short stands apart from the others."""
    figure = _new_figure(12, 1.2 + 0.45 * len(figures))
    axes = figure.subplots(1, 2, sharey=True)
    jitter = np.random.default_rng(0)  # seeded: the same corpus draws the same picture
    panels = ((axes[0], "duration_s", "duration per voice", "duration (s)"),
              (axes[1], "words_per_s", "speaking rate per voice", "words of the spoken text per second"))
    for axis, column, title, unit in panels:
        for index, kind in enumerate(KINDS):
            offset = 0.18 if index else -0.18
            colour = f"C{index}"
            for row, voice in enumerate(figures):
                values = getattr(voice, column)[kind]
                axis.scatter(values, row + offset + jitter.uniform(-0.1, 0.1, values.size), s=8, alpha=0.5,
                             color=colour, label=kind if row == 0 else None)
                if values.size:
                    axis.plot([values.mean()] * 2, [row + offset - 0.15, row + offset + 0.15], color=colour,
                              linewidth=2.5)
        axis.set(title=title, xlabel=unit)
        axis.legend(fontsize="small")
    # a voice's name is free text from the manifest: "$" would start matplotlib's math mode
    axes[0].set_yticks(range(len(figures)), [f"{voice.voice} ({voice.files})".replace("$", r"\$") for voice in figures])
    axes[0].invert_yaxis()  # the first voice in name order at the top, as a table reads
    return figure


def _bin_edges(values: np.ndarray) -> np.ndarray:
    """30 histogram bins over the values, reckoned in float64: float32 cannot hold 30 distinct edges over the tiny
    range of files loudness-normalised to one target (numpy then refuses to draw)."""
    return np.histogram_bin_edges(values.astype(np.float64), bins=30)


def _columns(data: Distributions) -> dict[str, np.ndarray]:
    """The compact arrays as numpy views (no copy)."""
    return {name: np.frombuffer(getattr(data, name), dtype=np.dtype(getattr(data, name).typecode))
            for name in ("split", "voice", "label", "kind", "duration_s", "loudness_lufs", "wer", "words")}


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
