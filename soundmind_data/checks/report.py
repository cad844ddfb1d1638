"""The report of `validate`: each failure as a record (line, id, check, field, message), the tallies per check, and
the audio figures for the corpus and per voice (the audio entry's `voice`), so that one bad voice among several
stands out.

The validation engine (checks/manifest.py) fills it in; the CLI prints its summary as `file:line: field: message`
lines and tables, and writes `to_json()` as the JSON report.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundmind_data.checks import ALL_CHECKS
from soundmind_data.checks.audio import FAIL, PASS, SKIP, FileResult
from soundmind_data.checks.config import CheckConfig
from soundmind_data.core.stage import StageReport, Summary
from soundmind_data.report.plots import Distributions
from soundmind_data.report.table import format_table
from soundmind_data.tts.audio import LOUDNESS_MIN_S

WORST_SHOWN = 10


@dataclass
class AudioTally:
    """What the checks found in a set of audio files: the corpus's, or one voice's."""

    files: int = 0  # judged
    failed_files: int = 0  # that failed any check
    decoded_files: int = 0  # whose length was measured
    seconds: float = 0.0
    loudness_files: int = 0
    loudness_sum: float = 0.0
    wer_files: int = 0
    wer_sum: float = 0.0
    highest_wer: float | None = None
    per_files: int = 0
    per_sum: float = 0.0
    highest_per: float | None = None
    second_opinions: int = 0  # files the first judge failed, heard again by a second

    def add(self, result: FileResult) -> None:
        self.files += 1
        self.failed_files += bool(result.failed_checks)
        if result.duration_s is not None:
            self.decoded_files += 1
            self.seconds += result.duration_s
        if result.loudness_lufs is not None:
            self.loudness_files += 1
            self.loudness_sum += result.loudness_lufs
        if result.wer is not None:
            self.wer_files += 1
            self.wer_sum += result.wer
            self.highest_wer = max(result.wer, self.highest_wer or 0.0)
        if result.per is not None:
            self.per_files += 1
            self.per_sum += result.per
            self.highest_per = max(result.per, self.highest_per or 0.0)
        self.second_opinions += result.second_opinion

    @property
    def mean_duration_s(self) -> float | None:
        return self.seconds / self.decoded_files if self.decoded_files else None

    @property
    def mean_loudness_lufs(self) -> float | None:
        return self.loudness_sum / self.loudness_files if self.loudness_files else None

    @property
    def mean_wer(self) -> float | None:
        return self.wer_sum / self.wer_files if self.wer_files else None

    @property
    def mean_per(self) -> float | None:
        return self.per_sum / self.per_files if self.per_files else None

    def to_json(self, *, asr: bool) -> dict[str, Any]:
        figures = {"files": self.files, "failed_files": self.failed_files, "seconds": round(self.seconds, 3),
                   "mean_duration_s": _rounded(self.mean_duration_s, 3),
                   "mean_loudness_lufs": _rounded(self.mean_loudness_lufs, 2)}
        if asr:
            figures.update(wer_files=self.wer_files, mean_wer=_rounded(self.mean_wer, 4), highest_wer=self.highest_wer,
                           per_files=self.per_files, mean_per=_rounded(self.mean_per, 4),
                           highest_per=self.highest_per, second_opinions=self.second_opinions)
        return figures


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class ReportedLoudness:
    """The loudness of imported audio, measured against the target but not gated (the checks config's
    `gate_imported_loudness`): how far a release's own level is from the corpus's."""

    files: int = 0
    short_files: int = 0  # shorter than one 400 ms block of BS.1770: no integrated loudness to measure
    measured_files: int = 0  # with an integrated loudness (long enough, and not silent); the figures below are theirs
    lufs_sum: float = 0.0
    offset_sum: float = 0.0  # measured minus target, in LU
    farthest_lu: float | None = None  # the offset farthest from the target, signed
    outside_tolerance: int = 0  # files the gate would have failed

    def add(self, result: FileResult, tolerance_lu: float) -> None:
        self.files += 1
        if result.duration_s is not None and result.duration_s < LOUDNESS_MIN_S:
            self.short_files += 1
            return
        offset = result.loudness_offset_lu
        if offset is None:  # silent
            return
        self.measured_files += 1
        self.lufs_sum += result.loudness_lufs
        self.offset_sum += offset
        if self.farthest_lu is None or abs(offset) > abs(self.farthest_lu):
            self.farthest_lu = offset
        self.outside_tolerance += abs(offset) > tolerance_lu

    @property
    def mean_lufs(self) -> float | None:
        return self.lufs_sum / self.measured_files if self.measured_files else None

    @property
    def mean_offset_lu(self) -> float | None:
        return self.offset_sum / self.measured_files if self.measured_files else None

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "short_files": self.short_files, "measured_files": self.measured_files,
                "gated": False,
                "mean_lufs": _rounded(self.mean_lufs, 2), "mean_offset_lu": _rounded(self.mean_offset_lu, 2),
                "farthest_offset_lu": _rounded(self.farthest_lu, 2), "outside_tolerance": self.outside_tolerance}


@dataclass
class ValidateReport(StageReport):
    manifest: str
    out: str | None = None  # the manifest written again with each audio's WER
    report_file: str | None = None  # where the JSON report went, listing the failures
    items: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_lines: set[int] = field(default_factory=set)
    checks: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> {"pass": n, "fail": n, "skip": n}
    config: CheckConfig | None = None  # set when audio was checked
    audio: AudioTally = field(default_factory=AudioTally)  # every audio file checked
    voices: dict[str, AudioTally] = field(default_factory=dict)  # the same, per voice
    imported_loudness: ReportedLoudness = field(default_factory=ReportedLoudness)  # of audio it did not gate
    asr_backend: str | None = None
    asr_model: str | None = None
    asr_device: str = "cpu"
    wer_sampled_files: int = 0
    distributions: Distributions = field(default_factory=Distributions)
    plots_folder: str | None = None  # asked for plots here (none are drawn when no audio file was measured)
    plots: list[str] = field(default_factory=list)
    _worst: list[tuple] = field(default_factory=list)  # min-heap of the WORST_SHOWN worst audio files
    _failed_checks: dict[int, list[str]] = field(default_factory=dict)  # line -> checks failed, until written out

    def fail(self, line: int, item_id: str | None, check: str, field_name: str, message: str) -> None:
        self.failures.append({"line": line, "id": item_id, "check": check, "field": field_name, "message": message})
        self.failed_lines.add(line)
        self._failed_checks.setdefault(line, []).append(check)

    def failed_checks(self, line: int) -> list[str]:
        """The checks line `line` failed, once each, in the order they failed (forgotten once asked: the report
        keeps only the lines still in flight)."""
        return list(dict.fromkeys(self._failed_checks.pop(line, [])))

    def tally(self, check: str, status: str) -> None:
        self.checks.setdefault(check, {PASS: 0, FAIL: 0, SKIP: 0})[status] += 1

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def set_aside(self) -> int:
        return len(self.failed_lines)

    @property
    def set_aside_file(self) -> Path | None:
        return Path(self.report_file) if self.report_file else None

    @property
    def max_wer(self) -> float | None:
        return self.config.max_wer.get(self.asr_backend) if self.config and self.asr_backend else None

    @property
    def max_per(self) -> float | None:
        return self.config.max_per.get(self.asr_backend) if self.config and self.asr_backend else None

    @property
    def audio_files(self) -> int:  # the totals by their former names, which bench/validate.py reads
        return self.audio.files

    @property
    def audio_seconds(self) -> float:
        return self.audio.seconds

    def add_file(self, line: int, item_id: str, result: FileResult, voice: str) -> None:
        """Fold in the checks of one audio file, spoken by `voice`."""
        for check, status in result.status.items():
            self.tally(check, status)
        for check, field_name, message in result.failures:
            self.fail(line, item_id, check, field_name, message)
        self.audio.add(result)
        self.voices.setdefault(voice, AudioTally()).add(result)
        if not result.loudness_gated:
            self.imported_loudness.add(result, self.config.loudness_tolerance_lu)
        self.wer_sampled_files += result.wer_sampled
        failed = result.failed_checks
        if failed or result.wer is not None:
            entry = {"line": line, "id": item_id, "field": result.field, "failed": failed, "per": result.per,
                     "wer": result.wer}
            # the judge's own measure ranks (the PER, the WER of a sample where there is none); the field breaks
            # ties: both files of one line can fail alike, and entries (dicts) do not compare
            measure = result.per if result.per is not None else result.wer
            rank = (len(failed), -1 if measure is None else measure, -line, result.field)
            heapq.heappush(self._worst, (rank, entry))
            if len(self._worst) > WORST_SHOWN:
                heapq.heappop(self._worst)

    @property
    def worst(self) -> list[dict[str, Any]]:
        """The audio files with the most failed checks, then the highest PER (WER where none); worst first."""
        return [entry for _key, entry in sorted(self._worst, key=lambda pair: pair[0], reverse=True)]

    def check_rows(self) -> list[tuple[str, int, int, int]]:
        return [(check, counts[PASS], counts[FAIL], counts[SKIP]) for check in ALL_CHECKS
                if (counts := self.checks.get(check))]

    def voice_table(self) -> str:
        """Files, failures and means per voice, one row a voice (WER columns when the ASR ran)."""
        headers = ["voice", "files", "failed", "mean s", "mean LUFS"]
        if self.asr_backend:
            headers += ["mean PER", "max PER", "mean WER", "max WER"]

        def shown(value: float | None, digits: int) -> str:
            return "" if value is None else f"{value:.{digits}f}"

        rows = []
        for voice, tally in sorted(self.voices.items()):
            row = [voice, tally.files, tally.failed_files, shown(tally.mean_duration_s, 1),
                   shown(tally.mean_loudness_lufs, 1)]
            if self.asr_backend:
                row += [shown(tally.mean_per, 3), shown(tally.highest_per, 3), shown(tally.mean_wer, 3),
                        shown(tally.highest_wer, 3)]
            rows.append(row)
        return format_table(headers, rows)

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {"manifest": self.manifest, "items": self.items, "failed_items": len(self.failed_lines),
                                  "failures": self.failures}
        report["checks"] = {check: {"passed": passed, "failed": failed, "skipped": skipped}
                            for check, passed, failed, skipped in self.check_rows()}
        if self.config:
            asr = self.asr_backend is not None
            report["audio"] = self.audio.to_json(asr=asr)
            report["voices"] = {voice: tally.to_json(asr=asr) for voice, tally in sorted(self.voices.items())}
            if self.imported_loudness.files:
                report["imported_loudness"] = self.imported_loudness.to_json()
            report["config"] = self.config.to_json()
        if self.asr_backend:
            report["asr"] = {
                "backend": self.asr_backend, "model": self.asr_model, "device": self.asr_device,
                "max_per": self.max_per, "mean_per": _rounded(self.audio.mean_per, 4),
                "second_opinions": self.audio.second_opinions,
                "max_wer": self.max_wer, "files": self.audio.wer_files, "mean_wer": _rounded(self.audio.mean_wer, 4),
                "sampled_files": self.wer_sampled_files, "sampling": self.sampling_note,
            }
        report["worst"] = self.worst
        if self.plots:
            report["plots"] = self.plots
        return report

    def summary(self) -> Summary:
        text = Summary(out=[f"{self.manifest}:{f['line']}: {f['field']}: {f['message']}" for f in self.failures])
        if self.plots_folder and not self.plots:
            text.err.append(f"validate: no plots written to {self.plots_folder}: no audio file was measured")
        if self.failures:
            text.out.append("")
        text.out.append(format_table(("check", "passed", "failed", "skipped"), self.check_rows()))
        if self.worst:
            text.out += ["", format_table(("worst audio", "line", "field", "per", "wer", "failed checks"), [
                (entry["id"], entry["line"], entry["field"], "" if entry["per"] is None else f"{entry['per']:.3f}",
                 "" if entry["wer"] is None else f"{entry['wer']:.3f}", ", ".join(entry["failed"]))
                for entry in self.worst])]
        if len(self.voices) > 1:
            text.out += ["", self.voice_table()]
        if self.wer_sampled_files:
            text.out.append(f"\nasr: {self.wer_sampled_files} of {self.audio.wer_files} files measured on a sample; "
                            f"{self.sampling_note}")
        if self.imported_loudness.files:
            text.err.append(self.imported_loudness_line())
        line = f"validate: {self.items} items, {len(self.failed_lines)} failed, {len(self.failures)} failures"
        if self.config:
            line += f"; {self.audio.files} audio files ({self.audio.seconds:.1f} s)"
        if self.audio.wer_files:
            line += f"; mean PER {self.audio.mean_per or 0:.3f}, WER {self.audio.mean_wer:.3f} ({self.asr_backend}"
            line += f", {self.audio.second_opinions} heard again by Whisper base)" if self.audio.second_opinions else ")"
        if self.out:
            line += f" -> {self.out}"
        text.err.append(line)
        return text

    def imported_loudness_line(self) -> str:
        loudness, config = self.imported_loudness, self.config
        # the figures are those of the files measured: say how many they are, and why the others were not
        long_enough = loudness.files - loudness.short_files
        silent = long_enough - loudness.measured_files
        counted = f"{loudness.files} imported audio files (voice upstream), {long_enough} long enough to measure" + \
            (f", {silent} of them silent" if silent else "")
        measured = (f"mean {loudness.mean_lufs:.1f} LUFS, {loudness.mean_offset_lu:+.1f} LU from the target on "
                    f"average, {loudness.outside_tolerance} outside ± {config.loudness_tolerance_lu:g} LU"
                    if loudness.measured_files else "none has an integrated loudness")
        return (f"validate: loudness of {counted}: {measured}; reported, not gated (set gate_imported_loudness: true "
                f"in --config to gate it)")

    @property
    def sampling_note(self) -> str:
        config = self.config or CheckConfig()
        full_max_s = config.asr_full_max_s.get(self.asr_backend or "")
        if full_max_s is None:
            return "every audio file is transcribed whole"
        return (f"audio longer than {full_max_s:g} s is transcribed on a bounded sample: the first and "
                f"last {config.asr_window_s:g} s and one random {config.asr_window_s:g} s window between them "
                f"(seed {config.asr_seed} and the item id)")
