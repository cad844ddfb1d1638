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
from soundmind_data.core.jsonl import count_lines
from soundmind_data.core.stage import Progress, SILENT, Stage, option
from soundmind_data.report.plots import write_plots
from soundmind_data.text.speech_text import normaliser_note


@dataclass(frozen=True)
class ValidateOptions:
    audio: bool = option(False,
        help="Check the audio files too: exist, decode fully, sha256, sample rate, channels, duration, NaN, "
             "clipping, silence, loudness, speaking rate.")
    asr: str | None = option(None,
        help="ASR round trip (implies --audio): whisper (Whisper tiny.en, bundled and offline, with Whisper base as "
             "a second opinion; the judge to use) or pocketsphinx (hears logic poorly).")
    asr_model: str | None = option(None,
        help="Another Whisper model for --asr whisper: a CTranslate2 folder or a name in the Hugging Face cache "
             "(e.g. large-v3 with --device cuda); never downloaded.")
    device: str = option("cpu", help="Where the ASR runs: cpu or cuda.")
    max_per: float | None = option(None,
        help="The gate: fail audio whose phoneme error rate, over the whole file or over the stretch holding the "
             "item's own words, is above this (default: 0.10 whisper, 0.35 pocketsphinx).")
    max_wer: float | None = option(None,
        help="Also fail audio whose word error rate is above this (default: none for whisper, 0.5 pocketsphinx).")
    strict: bool = option(False, help="Fail items whose answer's final verdict disagrees with the label.")
    config: Path | None = option(None,
        help="YAML file overriding check thresholds (see schemas/checks-config.schema.json).")
    workers: int = option(1, short="-w", help="Processes checking audio in parallel.")
    plots: Path | None = option(None, help="Write PNG plots here: durations per split and label, WER, loudness.")


def run(manifest: Path, out: Path | None, options: ValidateOptions, *, progress: Progress = SILENT) -> ValidateReport:
    """The validate stage: `out` (optional) is the manifest again with each audio's measured WER."""
    from soundmind_data.checks.asr import JUDGES

    audio = options.audio or options.asr is not None
    if options.asr is not None:
        JUDGES.check(options.asr)
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
                               workers=options.workers, out=out, progress=progress)
    if options.plots:
        result.plots_folder = str(options.plots)
        result.plots = [str(path) for path in write_plots(
            result.distributions, options.plots, loudness_target_lufs=config.loudness_target_lufs,
            loudness_tolerance_lu=config.loudness_tolerance_lu, max_wer=result.max_wer)]
    return result


def _preflight(options: ValidateOptions) -> list[str]:
    """The judge can run here: its packages, its model, the GPU (a second opinion's packages too)."""
    from soundmind_data.checks.asr import judge_problems

    second_opinion = options.asr is not None and load_config(options.config).second_opinion
    return judge_problems(options.asr, options.asr_model, options.device, second_opinion=second_opinion) \
        if options.asr is not None else []


COMMAND_HELP = """Check a manifest before publishing: every line against schemas/item.schema.json and for a unique id;
with --audio its audio files, with --asr an ASR round trip judged by the phoneme error rate (PER) against the speech
text, over the whole file and over the stretch holding the item's own words, with the verdict and negations
heard as said; WER is reported beside it.

Prints each failure as FILE:LINE: FIELD: MESSAGE, then a table of pass/fail/skip counts per check, the worst
audio files and, with several voices, a table per voice. Both sides go through Whisper's English text
normalisation, then espeak-ng's phonemes. Whisper gets the domain's hotwords; a file tiny.en fails is heard
again by Whisper base and the better hearing stands. Whisper transcribes every file whole; pocketsphinx hears
audio longer than 120 s on a bounded sample (first and last 30 s and one seeded window). Exit code 1 if any check fails, 2 for usage errors.

Example: soundmind-data validate corpus/manifest.jsonl --asr whisper --workers 2 --json validate.json --plots plots
"""

STAGE = Stage("validate", run, ValidateOptions, report=True, preflight=_preflight,
              input_help="Item manifest (JSONL) to check.",
              output_help="Write the manifest again here, with each audio's PER, own-words PER, WER, judge and "
                          "transcript, and each item's failed_checks (same folder as MANIFEST).",
              output_optional=True,
              help=COMMAND_HELP)
