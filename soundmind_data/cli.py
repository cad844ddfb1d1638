"""The `soundmind-data` command line: parses arguments, calls library functions, prints their reports.

Exit codes scripts can trust: 0 success, 1 failed checks or rejected data, 2 usage errors, 130 interrupted.
The library never prints or exits; this module is the only place that does. A pipeline stage's command calls the
stage's entry function (`soundmind_data.stages.<name>.run`), the same one `run` calls for each stage, and prints its
report with the same printer.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from tqdm import tqdm

from soundmind_data import __version__
from soundmind_data.corpus import LabelCounts
from soundmind_data.errors import DataError, UsageError
from soundmind_data.stage import Progress
from soundmind_data.table import format_table, id_sample

app = typer.Typer(
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
) -> None:
    """Build, curate and publish audio logical-reasoning corpora like SoundMind."""


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


def _finish(report: Any) -> None:
    """A command's exit code: 1 when its report says it failed its checks or set something aside."""
    if not report.ok:
        raise typer.Exit(1)


def _split_label_table(counts: LabelCounts) -> str:
    return format_table(("split", "not-entailed", "entailed", "items"), counts.rows())


def _before_after_table(before: LabelCounts, after: LabelCounts, middle: dict[str, dict] | None = None) -> str:
    """Per split x label counts before and after a stage, with stage-specific columns (`middle`) in between."""
    middle = middle or {}
    rows = []
    for name in dict.fromkeys([*before, *after]):
        rows.append((name, *before[name], *(column.get(name, "") for column in middle.values()), *after[name]))
    return format_table(("split", "not-entailed before", "entailed before", *middle,
                         "not-entailed after", "entailed after"), rows)


# --------------------------------------------------------------------------------------------- the stages' reports
def print_ingest(report) -> None:
    err(f"ingest: {report.items} items ({report.per_label[0]} not-entailed, {report.per_label[1]} entailed) -> "
        f"{report.manifest}; {report.rejected} rejected -> {report.rejects}")


def print_validate(report) -> None:
    for failure in report.failures:
        typer.echo(f"{report.manifest}:{failure['line']}: {failure['field']}: {failure['message']}")
    if report.plots_folder and not report.plots:
        err(f"validate: no plots written to {report.plots_folder}: no audio file was measured")
    if report.failures:
        typer.echo("")
    typer.echo(format_table(("check", "passed", "failed", "skipped"), report.check_rows()))
    if report.worst:
        typer.echo("")
        typer.echo(format_table(("worst audio", "line", "field", "wer", "failed checks"), [
            (entry["id"], entry["line"], entry["field"], "" if entry["wer"] is None else f"{entry['wer']:.3f}",
             ", ".join(entry["failed"])) for entry in report.worst]))
    if report.wer_sampled_files:
        typer.echo(f"\nasr: {report.wer_sampled_files} of {report.wer_files} files measured on a sample; "
                   f"{report.sampling_note}")
    summary = f"validate: {report.items} items, {len(report.failed_lines)} failed, {len(report.failures)} failures"
    if report.config:
        summary += f"; {report.audio_files} audio files ({report.audio_seconds:.1f} s)"
    if report.wer_files:
        summary += f"; mean WER {report.wer_sum / report.wer_files:.3f} ({report.asr_backend})"
    if report.out:
        summary += f" -> {report.out}"
    err(summary)


def print_audit(report) -> None:
    from soundmind_data.stages.audit import CHECKS

    typer.echo(_split_label_table(report.splits))
    typer.echo("")
    rows = [("items", report.items, "")]
    if report.gold_files:
        rows.append(("gold_matched", report.gold_matched, ""))
    rows += [(check, count, id_sample(report.ids[check], total=count)) for check, count in report.check_counts()]
    typer.echo(format_table(("check", "count", "ids"), rows))


def print_reason(report) -> None:
    from soundmind_data.stages.reason import OUTCOMES, VERDICTS

    rows = [(outcome, report.outcomes[outcome], id_sample(report.ids.get(outcome, []))) for outcome in OUTCOMES]
    typer.echo(format_table(("outcome", "items", "ids"), rows))
    typer.echo("")
    attempts = ", ".join(f"{n}: {count}" for n, count in sorted(report.accepted_at_attempt.items()))
    rows = [(f"rejected as {verdict}", report.rejected_verdicts[verdict]) for verdict in VERDICTS]
    rows += [("requests", report.requests), ("from cache", report.cache_hits), ("retries", report.retries)]
    typer.echo(format_table(("samples", "count"), rows))
    if attempts:
        typer.echo(f"\naccepted at attempt: {attempts}")
    for message, count in report.errors.items():
        err(f"failed ({count} items): {message}")
    err(f"reason: {report.items} items: {report.outcomes['accepted']} accepted -> {report.out}; "
        f"{report.outcomes['unresolved']} unresolved, {report.outcomes['failed']} failed -> {report.unresolved_file}")
    if not report.ok:
        err("reason: rerun the same command to retry the failed items; finished requests are not sent again")


def print_synthesize(report) -> None:
    from soundmind_data.stages.synthesize import real_time_factor

    err(f"synthesize: {report.items} items: {report.written} written -> {report.manifest}; "
        f"{report.failed} failed -> {report.failures_file}; {report.synthesized} files synthesised, "
        f"{report.cached} from cache; {report.audio_s:.1f} s of audio in {report.wall_s:.1f} s "
        f"(real-time factor {real_time_factor(report.wall_s, report.audio_s)})")


def print_split(report) -> None:
    typer.echo(_before_after_table(report.before, report.after))
    if report.moved_ids:
        typer.echo(f"moved out of their split to close leaks: {id_sample(report.moved_ids)}")
    for warning in report.warnings:
        err(f"warning: {warning}")
    sizes = ", ".join(f"{name} {report.after.total(name)}" for name in report.after)
    err(f"split: {report.items} items in {report.groups} {report.group} groups, {report.placed} placed ({sizes}); "
        f"{report.leaks_fixed} leaks fixed -> {report.out}")


def print_balance(report) -> None:
    middle = {"duplicates removed": report.duplicates_removed}
    if report.strategy == "weights":
        middle["weight not-entailed"] = {name: f"{w['0']:.4g}" for name, w in report.weights.items()}
        middle["weight entailed"] = {name: f"{w['1']:.4g}" for name, w in report.weights.items()}
    else:
        middle[report.strategy.replace("sample", "sampled")] = (report.dropped if report.strategy == "downsample"
                                                                else report.repeated)
    typer.echo(_before_after_table(report.before, report.after, middle))
    for warning in report.warnings:
        err(f"warning: {warning}")
    removed = sum(report.duplicates_removed.values())
    err(f"balance: {report.items} items -> {report.items_out} ({report.strategy} to {report.target}); "
        f"{removed} duplicates removed -> {report.out}")


def print_publish(report) -> None:
    build, check = report.build, report.check
    splits = ", ".join(f"{split} {stats.rows}" for split, stats in build.splits.items())
    shards = sum(path.endswith(".parquet") for path in build.files)
    plots = f" + {len(build.files) - shards - 1} plot(s)" if len(build.files) > shards + 1 else ""
    err(f"publish: {build.rows} items ({splits}), {build.audio_hours:.2f} h of audio, "
        f"{shards} parquet shard(s) + README.md{plots} -> {report.folder or 'staging folder'}")
    for problem in check.problems:
        typer.echo(f"check: {problem}")
    if not check.ok:
        err("publish: pre-push check failed; nothing uploaded")
        return
    err(f"publish: pre-push check ok (datasets loads {len(check.decoded)} splits, first rows decode)")
    push = report.push
    if push is None:
        err(f"publish: dry run, nothing uploaded (would go to {report.repo_id})" if report.repo_id else
            "publish: built only (no --repo-id), nothing uploaded")
    elif push.commit_url is None:
        err(f"publish: {report.repo_id} is already up to date ({len(push.unchanged)} files unchanged) -> "
            f"{push.repo_url}")
    else:
        err(f"publish: {len(push.committed)} files uploaded, {len(push.unchanged)} unchanged, "
            f"{len(push.deleted)} stale files deleted -> {push.commit_url}")


def print_export(report) -> None:
    splits = ", ".join(f"{split} {count}" for split, count in report.splits.items())
    err(f"export: {report.items} items ({splits}) as {report.format}"
        f"{f' ({report.modality})' if report.format == 'verl' else ''} -> {report.out}, {len(report.files)} files")


PRINTERS: dict[str, Callable[[Any], None]] = {
    "ingest": print_ingest, "validate": print_validate, "audit": print_audit, "reason": print_reason,
    "synthesize": print_synthesize, "split": print_split, "balance": print_balance, "publish": print_publish,
    "export": print_export,
}


def _run_stage(name: str, manifest: Path | None, out: Path | None, options: Any, report: Path | None = None,
               **context: Any) -> Any:
    """Run one stage as its command: call its entry function with bars on stderr, print its report."""
    from soundmind_data.stages import declaration

    with Bars() as bars:
        result = declaration(name).run(manifest, out, options, report=report, progress=bars, **context)
    PRINTERS[name](result)
    return result


# ---------------------------------------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    sources: List[Path] = typer.Argument(..., help="Source JSONL files, read in the order given."),
    fmt: str = typer.Option(..., "--format", "-f", help="Source format: logiqa2-nli or soundmind."),
    split: str = typer.Option(..., "--split", "-s", help="Split name given to every item (train, dev, test...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Item manifest to write (JSONL); rejects go beside it."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Keep only the first N items of each source (trial runs)."),
) -> None:
    """Turn LogiQA 2.0 NLI or SoundMind annotation files into one item manifest.

    Bad lines go to OUT.rejects.jsonl with file, line and reason; exit code 1 if any line was rejected.

    Example: soundmind-data ingest dev.txt --format logiqa2-nli --split dev --out items.jsonl
    """
    from soundmind_data.stages.ingest import IngestOptions

    _finish(_run_stage("ingest", None, out, IngestOptions(tuple(sources), fmt, split, limit)))

# -------------------------------------------------------------------------------------------------------- validate
@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to check."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
    audio: bool = typer.Option(False, "--audio", help="Check the audio files too: exist, decode fully, sha256, sample rate, channels, duration, NaN, clipping, silence, loudness, speaking rate."),
    asr: Optional[str] = typer.Option(None, "--asr", help="ASR round trip (implies --audio): pocketsphinx (offline, bundled model) or whisper (faster-whisper extra)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="faster-whisper model: a CTranslate2 folder or a name in the Hugging Face cache (default base.en); never downloaded."),
    max_wer: Optional[float] = typer.Option(None, "--max-wer", help="Fail audio whose WER is above this (default: 0.5 pocketsphinx, 0.2 whisper)."),
    strict: bool = typer.Option(False, "--strict", help="Fail items whose answer's final verdict disagrees with the label."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding check thresholds (see schemas/checks-config.schema.json)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Processes checking audio in parallel."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the manifest again here, with each audio's measured WER (same folder as MANIFEST)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG plots here: durations per split and label, WER, loudness."),
) -> None:
    """Check a manifest before publishing: every line against schemas/item.schema.json and for a unique id; with
    --audio its audio files, with --asr an ASR round trip (word error rate against the speech text).

    Prints each failure as FILE:LINE: FIELD: MESSAGE, then a table of pass/fail/skip counts per check and the worst
    audio files. Long audio is transcribed on a bounded sample (first and last 30 s and one seeded window). Exit
    code 1 if any check fails, 2 for usage errors.

    Example: soundmind-data validate corpus/manifest.jsonl --asr pocketsphinx --workers 2 --json validate.json --plots plots
    """
    from soundmind_data.stages.validate import ValidateOptions

    options = ValidateOptions(audio=audio, asr=asr, asr_model=asr_model, max_wer=max_wer, strict=strict,
                              config=config_file, workers=workers, plots=plots)
    _finish(_run_stage("validate", manifest, out, options, json_report))

# ----------------------------------------------------------------------------------------------------------- audit
@app.command()
def audit(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to audit."),
    gold: List[Path] = typer.Option([], "--gold", help="LogiQA 2.0 NLI file with gold labels; repeatable."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Report curation problems: answer/label disagreement, gold-label disagreement, duplicates, cross-split leaks,
    unspeakable text.

    Audit reports; it does not fail (exit 0) unless the manifest cannot be read.

    Example: soundmind-data audit items.jsonl --gold dev.txt --json audit.json
    """
    from soundmind_data.stages.audit import AuditOptions

    _run_stage("audit", manifest, None, AuditOptions(gold=tuple(gold)), json_report)

# ---------------------------------------------------------------------------------------------------------- reason
@app.command()
def reason(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) whose answers are to be (re)written."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest of accepted items; the others go to OUT.unresolved.jsonl."),
    backend: str = typer.Option(..., "--backend", "-b", help="openai (any OpenAI-compatible server) or transformers (a local model)."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL). The key is read from $OPENAI_API_KEY."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name the endpoint serves, or a local model folder for transformers."),
    samples: int = typer.Option(4, "--samples", "-k", help="Most samples drawn per item; the first that reaches the gold label is kept."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", help="Items worked on at once (requests in flight)."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", help="Sampling temperature (at 0 every sample is the same)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Longest answer in tokens (default: the server's; 1024 for transformers)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait on the server before the request is retried."),
    retries: int = typer.Option(5, "--retries", help="Re-sends of a request after HTTP 429/5xx or a timeout, with exponential backoff."),
    prompt_template: Optional[Path] = typer.Option(None, "--prompt-template", help="Prompt file with $question, $major_premise, $minor_premise, $conclusion (default: pipelines/prompts/reason.txt)."),
    gold: List[Path] = typer.Option([], "--gold", help="LogiQA 2.0 NLI file whose labels are the gold of items that carry none (SoundMind annotations); repeatable."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Write spoken chain-of-thought answers that reach the gold label, by rejection sampling.

    Up to K samples per item; the first whose final "Answer:" equals the gold label (source.gold_label, else the
    --gold file's label for the same triplet, else label), ends the answer, and that a voice can speak becomes
    answer_text. Items with no such sample go to OUT.unresolved.jsonl with the
    verdicts of the rejected samples. Every completion is cached in OUT.reason-cache.jsonl: rerun the same command
    after a crash and only the missing requests are sent. Exit code 1 if any request failed for good.

    Example: soundmind-data reason items.jsonl --out reasoned.jsonl --backend openai --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen3-8B --samples 4 --concurrency 32
    """
    from soundmind_data.stages.reason import ReasonOptions

    options = ReasonOptions(backend=backend, endpoint=endpoint, model=model, samples=samples, concurrency=concurrency,
                            temperature=temperature, max_tokens=max_tokens, timeout=timeout, retries=retries,
                            prompt_template=prompt_template, gold=tuple(gold))
    _finish(_run_stage("reason", manifest, out, options, json_report))

# ------------------------------------------------------------------------------------------------------ synthesize
@app.command()
def synthesize(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) whose texts are to be spoken."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: audio/<split>/<id>/, manifest.jsonl, failures.jsonl."),
    backend: str = typer.Option("piper", "--backend", "-b", help="piper (default, CC0 voice shipped on PyPI), espeak (no model) or coqui (GPU, optional extra)."),
    voice: List[str] = typer.Option([], "--voice", "-v", help="Voice(s), repeatable or comma-separated; each item gets one by a hash of its id. Default: en_US-joe-medium (piper), en-us (espeak), XTTS-v2 Ana Florence (coqui)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes, each with one single-threaded engine (Ray actors with --engine ray)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: only lines whose number modulo N is I (for Slurm arrays, k8s jobs); writes manifest.shard-I-of-N.jsonl."),
    engine: str = typer.Option("local", "--engine", help="local (processes on this machine) or ray (Ray Data; RAY_ADDRESS or a local Ray)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (piper: needs onnxruntime-gpu; coqui: torch with CUDA)."),
    fmt: str = typer.Option("flac", "--format", "-f", help="flac, wav, mp3 or opus."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Output sample rate in Hz."),
    target_lufs: float = typer.Option(-23.0, "--target-lufs", help="Integrated loudness of every file (ITU-R BS.1770), LUFS."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Audio cache folder, shareable between runs and corpora (default: OUT/.cache)."),
) -> None:
    """Speak every item's question and answer, filling in question_audio, answer_audio and tts.

    Texts are normalised for speech (logic symbols, numbers, abbreviations); an item with empty or unspeakable
    text, or a failed synthesis, goes to OUT/failures.jsonl with the reason, and the exit code is 1. Finished audio
    is cached by content: re-running synthesises only new or changed texts, and a killed run resumes.

    Example: soundmind-data synthesize items.jsonl --out corpus --workers 2
    """
    from soundmind_data.stages.synthesize import SynthesizeOptions

    options = SynthesizeOptions(backend=backend, voice=tuple(voice), workers=workers, shard=shard, engine=engine,
                                device=device, format=fmt, sample_rate=sample_rate, target_lufs=target_lufs,
                                cache=cache)
    _finish(_run_stage("synthesize", manifest, out, options))

# ----------------------------------------------------------------------------------------------------------- train
@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML run config (schemas/train-config.schema.json)."),
    data: Optional[str] = typer.Option(None, "--data", help="Override: item manifest (.jsonl) or verl parquet."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Override: run folder (metrics.jsonl, checkpoint.pt)."),
    model: Optional[str] = typer.Option(None, "--model", help="Override: 'tiny' or a Hugging Face id (Qwen/Qwen2.5-Omni-7B)."),
    device: Optional[str] = typer.Option(None, "--device", help="Override: cpu, cuda, cuda:1..."),
    mode: Optional[str] = typer.Option(None, "--mode", help="Override: text, audio or audio+text (alias both)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override: total GRPO steps."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override: seed of the model init, prompt order, sampling."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
) -> None:
    """Train a policy with GRPO on the SoundMind-RL reward; one metrics line per step to stdout and OUT/metrics.jsonl.

    The tiny model (random 2-layer Llama, tokenizer trained on the prompts) runs on CPU; a Hugging Face model id with
    --device cuda is the single-GPU path. Exit code 2 for a bad config or data file.

    Example: soundmind-data train --config pipelines/train-tiny.yaml --data demo-out/manifest.jsonl --out demo-out/train
    """
    from soundmind_data.rl.config import TrainConfig

    settings = TrainConfig.from_yaml(config, data=data, out=out, model=model, device=device, mode=mode, steps=steps,
                                     seed=seed)
    try:  # torch and transformers load only once the config is known good
        from soundmind_data.rl.grpo import Trainer
    except ImportError as exc:
        raise UsageError(f"train needs the 'train' extra (pip install 'soundmind-data[train]'): {exc}") from None

    trainer = Trainer(settings, resume=resume)
    err(f"train: {len(trainer.prompts)} prompts ({settings.mode}), model {settings.model} on {settings.device}; "
        f"metrics -> {trainer.metrics_path}")
    shown = ("reward", "format", "answer", "text_length", "audio_format", "audio_length", "kl", "response_length")
    with Bars() as bars:
        bars.start("train", unit="step", total=settings.steps)
        bars.advance(trainer.step)

        def report(metrics: dict) -> None:
            bars.advance()
            values = "  ".join(f"{name} {metrics[name]:.3f}" for name in shown if name in metrics)
            tqdm.write(f"step {metrics['step']}/{settings.steps}  {values}", file=sys.stdout)

        history = trainer.run(report)
    if history:
        err(f"train: steps {history[0]['step']}-{history[-1]['step']}, mean reward {history[0]['reward']:.3f} -> "
            f"{history[-1]['reward']:.3f}; metrics -> {trainer.metrics_path}; checkpoint -> {trainer.out / 'checkpoint.pt'}")
    else:
        err(f"train: already at step {trainer.step} of {settings.steps}; nothing to do")

# ------------------------------------------------------------------------------------------------ split / balance
@app.command("split")
def split_command(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to split."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest to write: the same items, each with its split."),
    ratios: str = typer.Option("train=0.8,dev=0.1,test=0.1", "--ratios", help="Split names and fractions summing to 1."),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffle: same input and seed give a byte-identical output."),
    group: str = typer.Option("triplet", "--group", help="What never spans two splits: 'triplet' (same normalised "
                              "premises and conclusion) or 'conclusion' (same normalised conclusion)."),
    keep_existing: bool = typer.Option(False, "--keep-existing", help="Keep items already in a split named in "
                                       "--ratios; place only the others (e.g. items ingested with --split new)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Assign train/dev/test splits by ratio, stratified by label, keeping each triplet group in one split.

    Prints a before/after table of split x label counts and the leaks fixed. Warns about a split left empty or with
    one label only.

    Example: soundmind-data split items.jsonl --ratios train=0.8,dev=0.1,test=0.1 --seed 0 --out split.jsonl
    """
    from soundmind_data.stages.split import SplitOptions

    _run_stage("split", manifest, out, SplitOptions(ratios, seed, group, keep_existing), json_report)

@app.command("balance")
def balance_command(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to balance, split by split."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest to write."),
    strategy: str = typer.Option(..., "--strategy", help="downsample (drop majority items), upsample (repeat "
                                 "minority items by reference) or weights (write sample_weight)."),
    target: str = typer.Option("1:1", "--target", help="Wanted not-entailed:entailed ratio in every split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the hash that picks the items dropped or repeated."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Remove duplicate triplets within each split, then balance each split's labels to --target.

    Prints a before/after table of split x label counts with the duplicates removed; the report lists them.
    A split with one label only is left as it is, with a warning.

    Example: soundmind-data balance split.jsonl --strategy downsample --target 1:1 --seed 0 --out balanced.jsonl
    """
    from soundmind_data.stages.balance import BalanceOptions

    _run_stage("balance", manifest, out, BalanceOptions(strategy, target, seed), json_report)

# --------------------------------------------------------------------------------------------------------- publish
@app.command()
def publish(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) with synthesized audio (paths relative to it)."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="Hub dataset repo to upload to: ORG/NAME."),
    local_dir: Optional[Path] = typer.Option(None, "--local-dir", help="Build the Hub-ready folder here and keep it."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private (an existing repo keeps its visibility)."),
    max_shard_size: str = typer.Option("500MB", "--max-shard-size", help="Largest parquet shard: 500MB, 2GB, 100MiB..."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to, created if missing (default: main)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build and check everything, name the repo in the card, upload nothing."),
) -> None:
    """Build Hub-ready parquet shards (audio embedded as FLAC) and a dataset card, check that `datasets` loads and
    decodes them, and upload them to the Hub.

    --local-dir alone builds the folder and uploads nothing; --repo-id uploads (building in --local-dir or in a
    temporary folder beside the manifest). Re-running after an interruption uploads only what is missing. The token
    comes from HF_TOKEN or `hf auth login` and is never printed. Exit 1 if the check or the upload fails.

    Example: soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --local-dir hub-folder
    """
    from soundmind_data.stages.publish import PublishOptions

    options = PublishOptions(repo_id=repo_id, private=private, max_shard_size=max_shard_size, revision=revision,
                             dry_run=dry_run)
    _finish(_run_stage("publish", manifest, local_dir, options, command=shlex.join(["soundmind-data", *sys.argv[1:]])))

# ---------------------------------------------------------------------------------------------------------- export
@app.command("export")
def export_command(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) with synthesized audio."),
    fmt: str = typer.Option(..., "--format", "-f", help="soundmind-folders (original SoundMind layout) or verl (RL parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write; its split folders/files are replaced."),
    modality: str = typer.Option("both", "--modality", help="verl only: what the prompt carries: audio, text or both."),
) -> None:
    """Write the corpus in layouts other tools read: the original SoundMind folders
    (<split>/<id>/question.wav, answer_<label>.wav, annotation.json, <split>/metadata.jsonl) or verl's RL parquet
    (<split>.parquet, ground truth = the label, audio as FLAC under audio/).

    Example: soundmind-data export synth/manifest.jsonl --format verl --modality audio --out verl-data
    """
    from soundmind_data.stages.export import ExportOptions

    _run_stage("export", manifest, out, ExportOptions(fmt, modality))

# ------------------------------------------------------------------------------------------------------------- add
@app.command("add")
def add_command(
    new_items: List[Path] = typer.Argument(..., help="JSONL files of new items, read in the order given."),
    to: Path = typer.Option(..., "--to", help="Item manifest to add them to; updated in place, atomically."),
    fmt: str = typer.Option("soundmind", "--format", "-f", help="soundmind (annotation lines: id, user_content, answer, label), logiqa2-nli, or items (our manifest format)."),
    ratios: Optional[str] = typer.Option(None, "--ratios", help="Splits and fractions for placing new items (default: the splits of --to, in the proportions it has them). Must name every split of --to."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split placement."),
    synthesize: Optional[bool] = typer.Option(None, "--synthesize/--no-synthesize", help="Speak the new items (default: when the items of --to have audio)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="TTS backend (default: the one the existing audio was made with, else piper)."),
    voice: List[str] = typer.Option([], "--voice", "-v", help="Voice(s), repeatable or comma-separated (default: the voices of the existing audio; a Piper model of your own must be given again by its path)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    workers: int = typer.Option(1, "--workers", "-w", help="Synthesis worker processes."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Audio cache folder (default: the .cache folder beside --to, as synthesize makes it)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Add a contributor's new items to a manifest: check them, reject duplicates, place them in splits without
    moving any existing item, and synthesise their audio only.

    A new item is rejected when its line is bad, its id is already taken, or its premises and conclusion equal an
    existing or earlier new item's (exactly, or after normalising case, punctuation and spacing); the reason names
    the item it duplicates. Rejects go to MANIFEST.add-rejects.jsonl. New audio matches the existing audio's
    backend, voices, format, sample rate and loudness. Exit code 1 if anything was rejected, 2 for usage errors.

    Example: soundmind-data add my-items.jsonl --to corpus/manifest.jsonl --json add.json
    """
    from soundmind_data.stages.add import add_items
    from soundmind_data.stages.split import parse_ratios
    from soundmind_data.stages.synthesize import split_voices

    parsed = parse_ratios(ratios) if ratios else None
    with Bars() as bars:
        bars.start("add", unit="line")
        report = add_items(new_items, to=to, fmt=fmt, ratios=parsed, seed=seed, synthesize=synthesize,
                           backend=backend, voices=split_voices(voice), device=device, workers=workers,
                           cache_dir=cache, report_path=json_report, on_progress=bars.advance)
    for reject in report.rejected:
        typer.echo(f"{reject['file']}:{reject['line']}: {reject['reason']}")
    if report.rejected:
        typer.echo("")
    added = report.added_counts()
    typer.echo(_before_after_table(report.before, report.after, {
        "added not-entailed": {name: added[name][0] for name in report.after},
        "added entailed": {name: added[name][1] for name in report.after},
    }))
    for warning in report.warnings:
        err(f"warning: {warning}")
    ratios_text = ", ".join(f"{name}={ratio:.3g}" for name, ratio in report.ratios.items())
    summary = (f"add: {len(report.added)} added -> {to} (splits {ratios_text}, "
               f"{'from the manifest' if report.ratios_from == 'manifest' else 'from --ratios'})"
               if report.added else f"add: nothing added, {to} unchanged")
    summary += f"; {len(report.rejected)} rejected -> {report.rejects_file}"
    if report.synthesis:
        summary += (f"; {report.synthesis['synthesized']} audio files synthesised, {report.synthesis['cached']} "
                    f"from cache ({report.synthesis['backend']})")
    err(summary)
    _finish(report)

# ------------------------------------------------------------------------------------------------------------ diff
@app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="The manifest before (JSONL)."),
    new: Path = typer.Argument(..., help="The manifest after (JSONL)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Show items added, removed and changed between two manifests, and the label balance shift per split.

    Example: soundmind-data diff corpus-v1.jsonl corpus-v2.jsonl --json diff.json
    """
    from soundmind_data.stages.diff import diff_manifests

    report = diff_manifests(old, new, report_path=json_report)
    changed = [f"{item_id} ({', '.join(fields)})" for item_id, fields in report.changed.items()]
    typer.echo(format_table(("change", "items", "ids"), [
        ("added", len(report.added), id_sample(report.added)),
        ("removed", len(report.removed), id_sample(report.removed)),
        ("changed", len(report.changed), id_sample(changed, 3)),
    ]))
    typer.echo("")
    typer.echo(format_table(("split", "old not-entailed", "old entailed", "new not-entailed", "new entailed",
                             "entailed share shift (points)"), report.balance_rows()))

# ------------------------------------------------------------------------------------------------------------- run
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
    from soundmind_data.pipeline import corpus_summary, load_pipeline, run_pipeline, with_overrides

    pipeline = with_overrides(load_pipeline(pipeline_file), sets=set_options, skip=skip, limit=limit)
    if from_stage and only:
        raise UsageError("give --from or --only, not both")
    total = len(pipeline.stages)
    current = None  # the stage under way, named when the run is interrupted

    def announce(step, status: str) -> None:
        nonlocal current
        current = step.name
        position = pipeline.stages.index(step) + 1
        err(f"[{position}/{total}] {step.name}: {'unchanged, skipped' if status == 'skipped' else 'running'}")

    def report(step, result, error: str | None) -> None:
        bars.close()
        if error:
            err(f"error: {error}")
        else:
            PRINTERS[step.command](result)

    try:
        with Bars() as bars:
            summary = run_pipeline(pipeline, workdir or Path("work") / pipeline.name, progress=bars,
                                   from_stage=from_stage, only=only, on_stage=announce, on_done=report)
    except KeyboardInterrupt:  # main() reports it and exits 130 (143 for SIGTERM)
        where = f" in stage {current}" if current else ""
        err(f"run: stopped{where}; finished stages are kept, re-run the same command to resume")
        raise
    typer.echo("")
    rows = [(r.stage, r.status if r.exit_code == 0 or r.status == "failed" else f"{r.status} (exit {r.exit_code})",
             f"{r.duration_s:.1f}", r.items_in, r.items_out, r.failures) for r in summary.stages]
    typer.echo(format_table(("stage", "status", "seconds", "items in", "items out", "failures"), rows))
    for r in summary.stages:
        if r.failures:
            typer.echo(f"failures of {r.stage}: {r.failures} -> {r.failures_file}")
    if summary.final_manifest and summary.final_manifest.is_file():
        counts, audio_hours = corpus_summary(summary.final_manifest)
        typer.echo("")
        typer.echo(_split_label_table(counts))
        typer.echo(f"\naudio: {audio_hours:.3f} h; final manifest: {summary.final_manifest}")
    if summary.hub_folder:
        typer.echo(f"Hub-ready folder: {summary.hub_folder}")
    typer.echo(f"work dir: {summary.workdir} (run log: {summary.run_log})")
    if summary.plots:
        typer.echo(f"plots: {', '.join(str(path) for path in summary.plots)}")
    if summary.exit_code:
        failed = next(r for r in summary.stages if r.status == "failed")
        err(f"run: stage {failed.stage} failed (exit {failed.exit_code}); fix it and re-run to resume")
        raise typer.Exit(1)

def main() -> None:
    """Entry point: run the app, turning every error into one line on stderr and an exit code scripts can trust:
    2 for usage errors (bad arguments included), 1 for failed checks and bad data, 130 for Ctrl-C, 143 for SIGTERM.

    SIGTERM (how Slurm and Kubernetes stop a job) is handled like Ctrl-C, so partial outputs are removed the same way.
    """
    import signal

    # click's exception classes, reached through a public name: typer 0.29 vendors its own copy of click
    click_errors = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    bad_arguments, click_exception = click_errors["UsageError"], click_errors["ClickException"]
    terminated = False

    def on_sigterm(signum, frame) -> None:
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = app(standalone_mode=False)  # click's own error output is a multi-line box; ours is one line
    except bad_arguments as exc:  # a bad argument or option, a missing one, an unknown command
        message = " ".join(exc.format_message().split())
        if message:  # empty after the help text that a bare command prints
            err(f"error: {message}" + (f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""))
        sys.exit(2)
    except click_exception as exc:
        err(f"error: {' '.join(exc.format_message().split())}")
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
