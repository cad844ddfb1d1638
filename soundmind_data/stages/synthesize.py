"""Synthesize: speak every item's question (and answer, where it has one) and fill in the manifest's audio fields.

For each text: speech normalisation (`speech_text.to_speech_text`, cached by content under `CACHE/text`), a
refusal if anything unspeakable remains, sentence chunks within the backend's limit, synthesis, then
`tts.audio.render` (join, trim, resample, loudness, encode). Files land in a content-addressed cache keyed by the
speech text and everything that shapes the audio, and are hard-linked to `OUT/audio/<split>/<id>/{question,answer}.<ext>`; a re-run therefore synthesises only texts it
has not made before, and a run killed at any moment resumes where it stopped. Cache files are written under
`CACHE/tmp` with the writer's host and pid in their name (`tempfiles`) and renamed into place, so a half-written
file never looks finished and the next run can sweep what a killed run left.

Items run in one process (`workers=1`), in a pool of single-threaded worker processes, or on Ray Data
(`engine="ray"`); a `shard` keeps every N-th line so a job scheduler can split the corpus. The output manifest keeps
the input order; an item whose text is empty or unspeakable, or whose synthesis fails, goes to the failures file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from soundmind_data import schemas, tempfiles
from soundmind_data.corpus import AUDIO_DIR, AUDIO_TEXT
from soundmind_data.errors import DataError, UsageError
from soundmind_data.jsonl import AtomicWriter, check_output_file, count_lines, iter_lines
from soundmind_data.procpool import stop_now, worker_signals
from soundmind_data.stage import CORPUS, SILENT, Progress, Stage, StageReport, Summary
from soundmind_data.speakable import describe, unspeakable_chars
from soundmind_data.speech_text import (SPEECH_RULES_VERSION, normaliser_name, normaliser_note, prepare_normaliser,
                                        split_sentences, to_speech_text)
from soundmind_data.textkey import DigestSet, id_digest
from soundmind_data.tts.audio import FORMATS, OPUS_RATES, render
from soundmind_data.tts.base import BACKEND_MODULES, Backend, BackendError, load_backend
from soundmind_data.tts.plan import SpeakerPlan
from soundmind_data.tts.voices import Voice, engine_default, resolve_all

RENDER_VERSION = 1  # bump when tts/audio.py changes the audio it makes, so old cache entries are not reused
PAUSE_S = 0.3  # silence between sentence chunks
TASKS_PER_WORKER = 4  # how far submission runs ahead of the writer: keeps workers busy, memory bounded
RAY_WINDOW = 1024  # manifest lines handed to Ray at a time
# Loudness targets the limiter can reach within 1 LU for speech (streaming services use -14; -10 missed by 2.8 LU)
MIN_TARGET_LUFS, MAX_TARGET_LUFS = -40.0, -14.0
ENGINES = ("local", "ray")


class Unspeakable(Exception):
    """A text that cannot be spoken faithfully: empty, or with characters left after normalisation."""


@dataclass(frozen=True)
class SynthesisOptions:
    """Everything that decides what audio an item gets."""

    backend: str | None = None  # the engine of voice names written without ENGINE: (the legacy --backend/--voice)
    voices: tuple[str, ...] = ()  # names as `voices` prints them, or "all"; empty: the backend's default voice
    test_voices: tuple[str, ...] = ()  # held for the test split, kept out of every other split
    seed: int = 0  # of the speaker plan
    device: str = "cpu"
    fmt: str = "flac"
    sample_rate: int = 16000
    target_lufs: float = -23.0
    pause_s: float = PAUSE_S

    def check(self) -> None:
        if self.backend is not None and self.backend not in BACKEND_MODULES:
            raise UsageError(f"--backend {self.backend!r}: choose one of {', '.join(BACKEND_MODULES)}")
        if self.fmt not in FORMATS:
            raise UsageError(f"--format {self.fmt!r}: choose one of {', '.join(FORMATS)}")
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device {self.device!r}: choose cpu or cuda")
        if not 8000 <= self.sample_rate <= 48000:
            raise UsageError(f"--sample-rate {self.sample_rate}: expected 8000 to 48000 Hz")
        if self.fmt == "opus" and self.sample_rate not in OPUS_RATES:
            raise UsageError(f"--format opus needs --sample-rate in {', '.join(map(str, OPUS_RATES))}")
        if not MIN_TARGET_LUFS <= self.target_lufs <= MAX_TARGET_LUFS:
            raise UsageError(f"--target-lufs {self.target_lufs:g}: expected {MIN_TARGET_LUFS:g} to {MAX_TARGET_LUFS:g} "
                             "(speech louder than that cannot reach its target without clipping)")

    def plan(self) -> SpeakerPlan:
        """The speaker plan these options describe; a voice that is unknown or not installed is a usage error."""
        voices = resolve_all(self.voices or (engine_default(self.backend or "piper").name,), self.backend)
        test_voices = resolve_all(self.test_voices, self.backend)
        return SpeakerPlan(voices + tuple(v for v in test_voices if v not in voices), test_voices, self.seed)


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N), 0 <= I < N: this run keeps lines whose number modulo N is I."""
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= shard[0] < shard[1]:
        raise UsageError(f"--shard {text!r}: I must be in 0..N-1")
    return shard




@dataclass
class ItemResult:
    """What became of one manifest line."""

    line: int
    item: dict[str, Any] | None  # the item with its audio fields; None when it failed
    failures: list[dict[str, Any]] = field(default_factory=list)
    audio_s: float = 0.0
    synthesized: int = 0  # files made by this run
    cached: int = 0  # files found in the cache


@dataclass
class SynthesisSummary(StageReport):
    manifest: Path
    failures_file: Path
    items: int = 0
    written: int = 0
    failed: int = 0
    synthesized: int = 0
    cached: int = 0
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
            f"{self.failures_file}; {self.synthesized} files synthesised, {self.cached} from cache; "
            f"{self.audio_s:.1f} s of audio in {self.wall_s:.1f} s "
            f"(real-time factor {real_time_factor(self.wall_s, self.audio_s)})"])

    def add(self, result: ItemResult) -> None:
        self.items += 1
        self.written += result.item is not None
        self.failed += result.item is None
        self.synthesized += result.synthesized
        self.cached += result.cached
        self.audio_s += result.audio_s


# ---------------------------------------------------------------------------------------------------------- cache
class Cache:
    """Content-addressed audio: `ROOT/<key[:2]>/<key>.<ext>` and its metadata `<key>.json`, written after it; and
    speech text: `ROOT/text/<key[:2]>/<key>.txt`, so that a re-run finds its audio without normalising again."""

    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"

    def prepare(self) -> None:
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{self.root}: cannot create cache folder: {exc.strerror}") from None

    def sweep(self) -> int:
        """Delete temps left by killed writers on this host; returns how many."""
        return tempfiles.sweep(self.tmp)

    @staticmethod
    def key(speech: str, backend: Backend, options: SynthesisOptions) -> str:
        shaping = {
            "text": speech, "provenance": asdict(backend.provenance), "render": RENDER_VERSION,
            "sample_rate": options.sample_rate, "target_lufs": options.target_lufs, "pause_s": options.pause_s,
            "format": options.fmt,
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode("utf-8")).hexdigest()

    def speech_text(self, text: str) -> str:
        """What the voice is asked to say for `text`, normalised once per text and normaliser."""
        made_by = {"text": text, "normaliser": normaliser_name(), "rules": SPEECH_RULES_VERSION}
        key = hashlib.sha256(json.dumps(made_by, sort_keys=True).encode("utf-8")).hexdigest()
        path = self.root / "text" / key[:2] / f"{key}.txt"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
        speech = to_speech_text(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicWriter(path, temp_dir=self.tmp) as out:
            out.write(speech)
        return speech

    def paths(self, key: str, ext: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.{ext}", folder / f"{key}.json"

    def get(self, key: str, ext: str) -> dict[str, Any] | None:
        """The entry's metadata, or None when absent or incomplete."""
        audio, meta = self.paths(key, ext)
        try:
            entry = json.loads(meta.read_text(encoding="utf-8"))
            complete = audio.stat().st_size == entry["bytes"]
        except (OSError, ValueError, KeyError):
            return None
        return entry if complete else None

    def put(self, key: str, ext: str, data: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        audio, meta = self.paths(key, ext)
        audio.parent.mkdir(exist_ok=True)
        with AtomicWriter(audio, temp_dir=self.tmp) as out:
            out.file.write(data)
        with AtomicWriter(meta, temp_dir=self.tmp) as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry


def _place(source: Path, target: Path) -> None:
    """Make `target` the cache file: a hard link (no second copy), or a copy across filesystems; atomically."""
    if target.exists() and os.path.samefile(source, target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tempfiles.sweep(target.parent, target.name)  # a link a killed run left half-made
    tmp = target.with_name(tempfiles.temp_name(target.name))
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


# -------------------------------------------------------------------------------------------------- one process
class Synthesizer:
    """Turns manifest lines into items with audio; one per worker process (it owns that process's engines)."""

    def __init__(self, options: SynthesisOptions, out_dir: Path, cache: Cache):
        self.options = options
        self.out_dir = out_dir
        self.cache = cache
        self.plan = options.plan()
        self._voices = {voice.name: voice for voice in self.plan.voices}
        self._backends: dict[str, Backend] = {}

    def backend(self, voice_name: str) -> Backend:
        """The loaded engine of one voice of the plan (built on first use, then kept)."""
        if voice_name not in self._backends:
            voice = self._voices[voice_name]
            self._backends[voice_name] = load_backend(voice.engine, voice.engine_voice, self.options.device)
        return self._backends[voice_name]

    def process(self, line: int, record: dict[str, Any] | None, error: str | None, voice_name: str | None) -> ItemResult:
        """One manifest line, spoken by `voice_name` (the plan's voice for it; None for a line that is an error)."""
        if error is None:
            error = schemas.first_error("item", record)
        if error is not None or voice_name is None:
            item_id = record.get("id") if isinstance(record, dict) else None
            return ItemResult(line, None, [_failure(line, item_id, "", error or "no voice planned")])
        item = dict(record)
        voice = self._voices[voice_name]
        backend = self.backend(voice_name)
        result = ItemResult(line, item)
        for audio_field, text_field in AUDIO_TEXT.items():
            name = audio_field.removesuffix("_audio")  # question, answer: the audio file's name
            text = item.get(text_field)
            if text is None:  # an item without an answer: nothing to speak, and no stale audio kept
                item.pop(audio_field, None)
                continue
            try:
                item[audio_field] = {**self._speak(text, backend, item, name, result),
                                     "voice": voice.name, "engine": voice.engine}
            except (BackendError, Unspeakable) as exc:
                result.failures.append(_failure(line, item["id"], text_field, str(exc)))
        item["tts"] = {**backend.provenance.to_item_field(), "normaliser": normaliser_name()}
        if result.failures:
            result.item = None
        return result

    def _speak(self, text: str, backend: Backend, item: dict[str, Any], name: str, result: ItemResult) -> dict:
        speech = self.cache.speech_text(text)
        if not speech.strip(" \n.,;:!?\"'()"):
            raise Unspeakable("nothing to speak")
        unspeakable = unspeakable_chars(speech)
        if unspeakable:
            raise Unspeakable(f"unspeakable after normalisation: {describe(unspeakable)}")
        ext = FORMATS[self.options.fmt][2]
        key = Cache.key(speech, backend, self.options)
        entry = self.cache.get(key, ext)
        if entry is None:
            arrays = backend.synthesize(split_sentences(speech, backend.max_chars))
            opts = self.options
            rendered = render(arrays, backend.sample_rate, sample_rate=opts.sample_rate,
                              target_lufs=opts.target_lufs, pause_s=opts.pause_s, fmt=opts.fmt)
            entry = self.cache.put(key, ext, rendered.data, {
                "key": key, "sha256": hashlib.sha256(rendered.data).hexdigest(), "bytes": len(rendered.data),
                "sample_rate": rendered.sample_rate, "channels": 1, "duration_s": rendered.duration_s,
                "loudness_lufs": rendered.loudness_lufs,
            })
            result.synthesized += 1
        else:
            result.cached += 1
        relative = Path(AUDIO_DIR, item["split"], item["id"], f"{name}.{ext}")
        _place(self.cache.paths(key, ext)[0], self.out_dir / relative)
        result.audio_s += entry["duration_s"]
        return {"path": relative.as_posix(), **{k: entry[k] for k in
                ("sha256", "sample_rate", "channels", "duration_s", "loudness_lufs")},
                "loudness_target_lufs": self.options.target_lufs}  # what validate's loudness check measures against


def _failure(line: int, item_id: Any, field_name: str, reason: str) -> dict[str, Any]:
    return {"line": line, "id": item_id if isinstance(item_id, str) else None, "field": field_name, "reason": reason}


# ------------------------------------------------------------------------------------------------------ workers
_WORKER: Synthesizer | None = None


def _start_worker(options: SynthesisOptions, out_dir: Path, cache_root: Path) -> None:
    global _WORKER
    _die_with_parent()
    worker_signals()
    _WORKER = Synthesizer(options, out_dir, Cache(cache_root))


def _work(task: Task) -> ItemResult:
    assert _WORKER is not None
    return _WORKER.process(*task)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when its parent dies (kill -9 leaves no orphans synthesising)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # other systems: orphans finish their current item and exit when the queue closes


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
        raise UsageError("--engine ray needs Ray Data: pip install 'soundmind-data[ray]'") from None
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


_REMOTE_ERROR = re.compile(r"^soundmind_data\.errors\.(UsageError|DataError): (.+)$", re.MULTILINE)


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


# --------------------------------------------------------------------------------------------------------- stage
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
    return f"manifest{suffix}.jsonl", f"failures{suffix}.jsonl"


def synthesize_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    options: SynthesisOptions = SynthesisOptions(),
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    engine: str = "local",
    cache_dir: str | Path | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
) -> SynthesisSummary:
    """Synthesise a manifest into `out_dir`; see the module docstring. `on_result` is called once per line."""
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
    cache = Cache(Path(cache_dir) if cache_dir else out_dir / ".cache")
    manifest_name, failures_name = output_names(shard)
    # Build (and md5-check) the voices once here, before anything in OUT is created or removed: a backend that
    # cannot run (a missing extra, no GPU, a bad --voice) is one usage error that leaves the last run's files alone.
    synthesizer = Synthesizer(options, out_dir, cache)
    for voice in synthesizer.plan.voices:
        synthesizer.backend(voice.name)
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

    summary = SynthesisSummary(out_dir / manifest_name, out_dir / failures_name)
    with AtomicWriter(summary.manifest) as items_out, AtomicWriter(summary.failures_file) as failures_out:
        for result in results:
            if result.item is not None:
                items_out.write_record(result.item)
            for failure in result.failures:
                failures_out.write_record(failure)
            summary.add(result)
            if on_result:
                on_result(result)
    cache.sweep()  # temps of writers that died during this run (a killed worker of a pool)
    return summary


def real_time_factor(wall_s: float, audio_s: float) -> str:
    """Wall seconds per audio second (below 1: faster than real time); "n/a" before any audio exists."""
    return f"{wall_s / audio_s:.3f}" if audio_s > 0 else "n/a"


def split_voices(voices: Iterable[str]) -> tuple[str, ...]:
    """Voices given repeatedly or comma-separated (`-v a -v b,c`), as one tuple."""
    return tuple(name.strip() for names in voices for name in names.split(",") if name.strip())


@dataclass(frozen=True)
class SynthesizeOptions:
    voices: tuple[str, ...] = ()
    test_voices: tuple[str, ...] = ()
    seed: int = 0
    backend: str | None = None
    voice: tuple[str, ...] = ()
    workers: int = 1
    shard: str | None = None
    engine: str = "local"
    device: str = "cpu"
    format: str = "flac"
    sample_rate: int = 16000
    target_lufs: float = -23.0
    cache: Path | None = None


def run(manifest: Path, out: Path, options: SynthesizeOptions, *, report: None = None,
        progress: Progress = SILENT) -> SynthesisSummary:
    """The synthesize stage: `out` is a folder (audio/, manifest.jsonl, failures.jsonl)."""
    if options.voices and options.voice:
        raise UsageError("--voices and --voice: give one (--voices names carry their engine: piper:joe)")
    synthesis = SynthesisOptions(backend=options.backend, voices=split_voices(options.voices or options.voice),
                                 test_voices=split_voices(options.test_voices), seed=options.seed,
                                 device=options.device, fmt=options.format, sample_rate=options.sample_rate,
                                 target_lufs=options.target_lufs)
    shard = parse_shard(options.shard) if options.shard else None
    if note := normaliser_note():
        progress.note(note)
    progress.start("synthesize", total=count_lines(manifest, shard and (lambda n: n % shard[1] == shard[0])))
    started = time.monotonic()
    audio_s, failed = 0.0, 0

    def on_result(result: ItemResult) -> None:
        nonlocal audio_s, failed
        audio_s += result.audio_s
        failed += result.item is None
        for failure in result.failures:
            progress.note(f"{manifest}:{failure['line']}: {failure['field'] or '(line)'}: {failure['reason']}")
        progress.status(audio=f"{audio_s / 3600:.2f}h", rtf=real_time_factor(time.monotonic() - started, audio_s),
                        failed=failed)
        progress.advance()

    summary = synthesize_manifest(manifest, out, synthesis, workers=options.workers, shard=shard,
                                  engine=options.engine, cache_dir=options.cache, on_result=on_result)
    summary.wall_s = time.monotonic() - started
    return summary


STAGE = Stage("synthesize", run, SynthesizeOptions, output=CORPUS)
