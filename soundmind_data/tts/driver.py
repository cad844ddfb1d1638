"""The synthesis driver: a manifest in, every item's question (and answer, where it has one) spoken, its audio
fields filled in. The synthesize stage runs it, and `add` for the items it adds.

The speaker plan (`tts.plan`) gives each item its voice; the engine (`tts.synthesizer`) turns each item into cached,
finished audio files hard-linked under `OUT/audio/`. A re-run therefore synthesises only texts it has not made
before (with the same voice), and a run killed at any moment resumes where it stopped; the next run sweeps the temp
files a killed run left.

Items run in one process (`workers=1`), in a pool of single-threaded worker processes, or on Ray Data
(`engine="ray"`); a `shard` keeps every N-th line so a job scheduler can split the corpus. The output manifest keeps
the input order; an item whose text is empty or unspeakable, or whose synthesis fails, goes to the failures file.
With `keep_audio` (repairing a release: its recordings stay), an audio entry whose file is in the manifest's folder is
kept as it is and only texts without audio are spoken; OUT must then be that folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

from soundmind_data.core.corpus import CORPUS_MANIFEST, FAILURES_FILE
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, check_output_file, iter_lines
from soundmind_data.core.procpool import stop_now, worker_signals
from soundmind_data.core.stage import Progress, SILENT, StageReport, Summary
from soundmind_data.text.speech_text import prepare_normaliser
from soundmind_data.text.textkey import DigestSet, id_digest
from soundmind_data.tts.plan import SpeakerPlan
from soundmind_data.tts.synthesizer import Cache, ItemResult, SynthesisOptions, Synthesizer

TASKS_PER_WORKER = 4  # how far submission runs ahead of the writer: keeps workers busy, memory bounded
RAY_WINDOW = 1024  # manifest lines handed to Ray at a time
ENGINES = ("local", "ray")
RAY_MISSING = "--engine ray needs Ray Data: pip install 'soundmind-data[ray]'"


@dataclass
class SynthesisReport(StageReport):
    manifest: Path
    failures_file: Path
    items: int = 0
    written: int = 0
    failed: int = 0
    synthesized: int = 0
    cached: int = 0
    kept: int = 0  # audio entries kept as they were (keep_audio)
    audio_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def set_aside(self) -> int:
        return self.failed

    @property
    def set_aside_file(self) -> Path:
        return self.failures_file

    def summary(self) -> Summary:
        return Summary(err=[
            f"synthesize: {self.items} items: {self.written} written -> {self.manifest}; {self.failed} failed -> "
            f"{self.failures_file}; {self.synthesized} files synthesised, {self.cached} from cache"
            f"{f', {self.kept} kept as they were' if self.kept else ''}; "
            f"{self.audio_s:.1f} s of audio in {self.wall_s:.1f} s "
            f"(real-time factor {real_time_factor(self.wall_s, self.audio_s)})"])

    def add(self, result: ItemResult) -> None:
        self.items += 1
        self.written += result.item is not None
        self.failed += result.item is None
        self.synthesized += result.synthesized
        self.cached += result.cached
        self.kept += result.kept
        self.audio_s += result.audio_s


# ------------------------------------------------------------------------------------------------------ workers
_WORKER: Synthesizer | None = None


def _start_worker(options: SynthesisOptions, out_dir: Path, cache_root: Path) -> None:
    global _WORKER
    worker_signals()
    _WORKER = Synthesizer(options, out_dir, Cache(cache_root))


def _work(task: Task) -> ItemResult:
    assert _WORKER is not None
    return _WORKER.process(*task)


def _run_pool(tasks: Iterable[tuple], workers: int, initargs: tuple) -> Iterator[ItemResult]:
    """Results in input order, with at most TASKS_PER_WORKER tasks per worker in flight."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=initargs)
    pending: deque[tuple[int, Future]] = deque()  # (line number, its result), in input order
    try:
        for task in tasks:
            pending.append((task[0], pool.submit(_work, task)))
            if len(pending) >= workers * TASKS_PER_WORKER:
                yield _oldest_result(pending)
        while pending:
            yield _oldest_result(pending)
    except BrokenProcessPool:
        pool.shutdown(wait=True)  # the pool is terminating the other workers: let them go before reporting
        lines = ", ".join(str(line) for line, future in pending if not future.done() or future.exception())
        raise DataError(f"a worker process died (killed, or out of memory) while lines {lines} were queued or in "
                        "progress; re-run to resume (finished audio is cached)") from None
    except BaseException:  # Ctrl-C, SIGTERM, a bad line: do not wait for the items in progress
        stop_now(pool)
        raise
    pool.shutdown()


def _oldest_result(pending: deque[tuple[int, Future]]) -> ItemResult:
    """Wait for the oldest item's result; it leaves `pending` only once it has one, so that a worker's death is
    reported with the line it was working on."""
    result = pending[0][1].result()
    pending.popleft()
    return result


def _run_ray(tasks: Iterable[tuple], workers: int, initargs: tuple) -> Iterator[ItemResult]:
    """The same per-item work as Ray Data actors (one engine each), results back in input order.

    Connects to the cluster named by RAY_ADDRESS, else starts a local Ray with `workers` CPUs. OUT must be on a
    filesystem every node sees. Tasks go to Ray in windows of RAY_WINDOW lines, so the driver's memory does not grow
    with the corpus; each window starts its actors afresh, which costs one voice load per actor per window.
    """
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    # Its INFO and WARNING lines repeat what our summary says, and its ERROR lines the traceback we turn into one line.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    tasks = iter(tasks)
    while rows := [{"task": json.dumps(task, ensure_ascii=False)} for task in islice(tasks, RAY_WINDOW)]:
        dataset = ray.data.from_items(rows).map_batches(
            _RayWorker, fn_constructor_args=initargs, batch_size=1, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))))
        try:
            for row in dataset.iter_rows():
                yield ItemResult(**json.loads(row["result"]))
        except ray.exceptions.RayError as exc:
            raise _from_ray(exc) from None


# How Ray shows our errors raised in a worker: `<module>.UsageError: message`, the module taken from the class itself.
_REMOTE_ERROR = re.compile(rf"^{re.escape(UsageError.__module__)}\.(UsageError|DataError): (.+)$", re.MULTILINE)


def _from_ray(exc: BaseException) -> Exception:
    """The project's own error inside a Ray failure, so that it ends as the same one line and exit code as without
    Ray. Ray Data keeps only the text of an exception raised in a UDF (its remote traceback), so that is read."""
    found = _REMOTE_ERROR.search(str(exc))
    if found:
        return (UsageError if found.group(1) == "UsageError" else DataError)(found.group(2))
    return DataError(f"synthesis failed inside Ray ({type(exc).__name__}); run with --engine local to see the error")


class _RayWorker:
    """A Ray Data actor: one Synthesizer, fed one task per batch."""

    def __init__(self, options: SynthesisOptions, out_dir: Path, cache_root: Path):
        self.synthesizer = Synthesizer(options, out_dir, Cache(cache_root))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        results = [self.synthesizer.process(*json.loads(task)) for task in batch["task"]]
        return {"result": [json.dumps(asdict(result), ensure_ascii=False) for result in results]}


# ------------------------------------------------------------------------------------------------------- driver
Task = tuple[int, "dict | None", "str | None", "str | None"]  # line number, record, error, voice name


def plan_voices(manifest: Path, plan: SpeakerPlan) -> dict[int, str]:
    """The voice name of every line that names an id, a split and a label, by line number. The whole manifest is
    planned, also for one shard, so that every shard gives an item the voice a single run would."""
    def planned() -> Iterator[tuple[int, str, str, object]]:
        for line in iter_lines(manifest):
            record = line.record if isinstance(line.record, dict) else {}
            if isinstance(record.get("id"), str) and isinstance(record.get("split"), str):
                yield line.number, record["id"], record["split"], record.get("label")

    return {line: voice.name for line, voice in plan.assign(planned()).items()}


def _tasks(manifest: Path, shard: tuple[int, int] | None, voices: dict[int, str]) -> Iterator[Task]:
    """The task of each line of this shard; a repeated id is an error, since two items would share one audio folder
    and the second would overwrite the first's files."""
    seen_ids = DigestSet()
    for line in iter_lines(manifest):
        if shard is not None and line.number % shard[1] != shard[0]:
            continue
        item_id = line.record.get("id") if isinstance(line.record, dict) else None
        voice = voices.get(line.number)
        if isinstance(item_id, str) and not seen_ids.add(id_digest(item_id)):
            yield line.number, line.record, f"id: duplicate id {item_id!r} (an earlier line has it)", voice
        else:
            yield line.number, line.record, line.error, voice


def output_names(shard: tuple[int, int] | None) -> tuple[str, str]:
    """(manifest, failures) file names in OUT; a shard writes its own pair so shards never collide."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard else ""
    manifest, failures = (name.removesuffix(".jsonl") + suffix + ".jsonl" for name in (CORPUS_MANIFEST, FAILURES_FILE))
    return manifest, failures


def synthesize_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    options: SynthesisOptions = SynthesisOptions(),
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    engine: str = "local",
    cache_dir: str | Path | None = None,
    progress: Progress = SILENT,
) -> SynthesisReport:
    """Synthesise a manifest into `out_dir`; see the module docstring. `progress` advances once per line, with the
    audio made so far, the real-time factor and the failures (each one noted as it happens)."""
    started = time.monotonic()  # the real-time factor counts the engines' loading too, as the run's summary does
    options.check()
    if not Path(manifest).exists():  # before anything is created in OUT
        raise UsageError(f"{manifest}: no such file")
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected at least 1")
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    out_dir = Path(out_dir)
    # The manifest synthesis writes in OUT is removed before the run starts, so its outputs are checked before
    # anything there changes. OUT is often the input's own folder (a pipeline's work dir), never the input itself.
    for name in output_names(shard):
        if os.path.realpath(out_dir / name) == os.path.realpath(manifest):
            raise UsageError(f"--out {out_dir}: would overwrite the input manifest {manifest}; choose another folder")
        check_output_file(out_dir / name)
    if options.keep_audio and os.path.realpath(out_dir) != os.path.realpath(Path(manifest).parent):
        raise UsageError(f"--keep-audio: --out {out_dir} must be the folder of {manifest}: the audio kept is "
                         "described relative to it")
    cache = Cache(Path(cache_dir) if cache_dir else out_dir / ".cache")
    manifest_name, failures_name = output_names(shard)
    # Build (and md5-check) the voices once here, before anything in OUT is created or removed: an engine that
    # cannot run (a missing extra, no GPU, a bad --voice) is one usage error that leaves the last run's files alone.
    synthesizer = Synthesizer(options, out_dir, cache)
    for voice in synthesizer.plan.voices:
        synthesizer.engine(voice.name)
    voices = plan_voices(Path(manifest), synthesizer.plan)
    prepare_normaliser()  # compiles its grammars the first time on this machine, before workers fork
    cache.prepare()
    cache.sweep()

    # A re-run replaces audio files in place: the previous run's manifest must not outlive it and describe files that
    # have changed under it (the new one appears, atomically, when the run finishes).
    (out_dir / manifest_name).unlink(missing_ok=True)
    tasks = _tasks(manifest, shard, voices)
    initargs = (options, out_dir, cache.root)
    if engine == "ray":
        results = _run_ray(tasks, workers, initargs)
    elif workers > 1:
        results = _run_pool(tasks, workers, initargs)
    else:
        results = (synthesizer.process(*task) for task in tasks)

    summary = SynthesisReport(out_dir / manifest_name, out_dir / failures_name)
    with AtomicWriter(summary.manifest) as items_out, AtomicWriter(summary.failures_file) as failures_out:
        for result in results:
            if result.item is not None:
                items_out.write_record(result.item)
            for failure in result.failures:
                failures_out.write_record(failure)
                progress.note(f"{manifest}:{failure['line']}: {failure['field'] or '(line)'}: {failure['reason']}")
            summary.add(result)
            progress.status(audio=f"{summary.audio_s / 3600:.2f}h",
                            rtf=real_time_factor(time.monotonic() - started, summary.audio_s), failed=summary.failed)
            progress.advance()
    cache.sweep()  # temps of writers that died during this run (a killed worker of a pool)
    return summary


def real_time_factor(wall_s: float, audio_s: float) -> str:
    """Wall seconds per audio second (below 1: faster than real time); "n/a" before any audio exists."""
    return f"{wall_s / audio_s:.3f}" if audio_s > 0 else "n/a"
