"""Validate: can this manifest be trusted? Annotation checks on every line, and with --audio / --asr its audio.

The stage checks its options, loads the checks config and runs the validation engine (checks/manifest.py, which
says what is checked and how the audio work is shared out), then draws the plots and writes the JSON report
(checks/report.py). Failures are collected as records so the CLI can print them as `file:line: field: message`;
the stage itself never prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.checks.config import load_config
from soundmind_data.checks.manifest import validate_manifest
from soundmind_data.checks.report import ValidateReport
from soundmind_data.core.devices import check_device
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import count_lines, write_json
from soundmind_data.report.plots import write_plots
from soundmind_data.core.stage import SILENT, Progress, Stage
from soundmind_data.text.speech_text import normaliser_note


@dataclass(frozen=True)
class ValidateOptions:
    audio: bool = False
    asr: str | None = None
    asr_model: str | None = None
    device: str = "cpu"
    max_per: float | None = None
    max_wer: float | None = None
    strict: bool = False
    config: Path | None = None
    workers: int = 1
    plots: Path | None = None


def run(manifest: Path, out: Path | None, options: ValidateOptions, *, report: Path | None = None,
        progress: Progress = SILENT) -> ValidateReport:
    """The validate stage: `out` (optional) is the manifest again with each audio's measured WER."""
    from soundmind_data.checks.asr import BACKENDS

    audio = options.audio or options.asr is not None
    if options.asr is not None and options.asr not in BACKENDS:
        raise UsageError(f"--asr {options.asr}: expected one of {', '.join(BACKENDS)}")
    for name, value in (("--max-per", options.max_per), ("--max-wer", options.max_wer)):
        if value is not None and options.asr is None:
            raise UsageError(f"{name} needs --asr")
    if options.plots and not audio:
        raise UsageError("--plots needs --audio (the plots show what the audio checks measure)")
    check_device(options.device)
    if options.device != "cpu" and options.asr is None:
        raise UsageError("--device is where the ASR runs: it needs --asr")
    config = load_config(options.config)
    if options.max_per is not None:
        config = config.with_bound("max_per", options.asr, options.max_per)
    if options.max_wer is not None:
        config = config.with_bound("max_wer", options.asr, options.max_wer)
    if audio and (note := normaliser_note()):
        progress.note(note)
    # a count for the bar's ETA when each item takes real time
    progress.start("validate", total=count_lines(manifest) if audio else None)
    result = validate_manifest(manifest, audio=audio, asr=options.asr, asr_model=options.asr_model,
                               asr_device=options.device, config=config, strict=options.strict,
                               workers=options.workers, out=out, on_item=lambda so_far: _show_progress(so_far, progress))
    if options.plots:
        result.plots_folder = str(options.plots)
        result.plots = [str(path) for path in write_plots(
            result.distributions, options.plots, loudness_target_lufs=config.loudness_target_lufs,
            loudness_tolerance_lu=config.loudness_tolerance_lu, max_wer=result.max_wer)]
    if report:
        result.report_file = str(report)
        write_json(report, result.to_json())
    return result


def _show_progress(report: ValidateReport, progress: Progress) -> None:
    progress.status(audio=f"{report.audio.seconds / 3600:.2f}h", failed=len(report.failed_lines))
    progress.advance()


def _preflight(options: ValidateOptions) -> list[str]:
    """The judge can run here: its packages, its model, the GPU (a second opinion's packages too)."""
    from soundmind_data.checks.asr import judge_problems

    second_opinion = options.asr is not None and load_config(options.config).second_opinion
    return judge_problems(options.asr, options.asr_model, options.device, second_opinion=second_opinion) \
        if options.asr is not None else []


STAGE = Stage("validate", run, ValidateOptions, report=True, preflight=_preflight)
