"""Synthesize: speak every item's question (and answer, where it has one) and fill in the manifest's audio fields.

The driver (`tts.driver`: the worker pool, Ray, resuming from the cache) does the work; this stage gives it its
options, its progress and the shard of the corpus to run.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import count_lines
from soundmind_data.text.speech_text import normaliser_note
from soundmind_data.core.stage import CORPUS, SILENT, Progress, Stage
from soundmind_data.tts.driver import RAY_MISSING, SynthesisReport, real_time_factor, synthesize_manifest
from soundmind_data.tts.synthesizer import ItemResult, SynthesisOptions
from soundmind_data.tts.voices import engine_problems, split_names


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
    keep_audio: bool = False


def run(manifest: Path, out: Path, options: SynthesizeOptions, *, report: None = None,
        progress: Progress = SILENT) -> SynthesisReport:
    """The synthesize stage: `out` is a folder (audio/, manifest.jsonl, failures.jsonl)."""
    synthesis = _synthesis_options(options)
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


def _synthesis_options(options: SynthesizeOptions) -> SynthesisOptions:
    if options.voices and options.voice:
        raise UsageError("--voices and --voice: give one (--voices names carry their engine: piper:joe)")
    return SynthesisOptions(backend=options.backend, voices=split_names(options.voices or options.voice),
                            test_voices=split_names(options.test_voices), seed=options.seed, device=options.device,
                            fmt=options.format, sample_rate=options.sample_rate, target_lufs=options.target_lufs,
                            keep_audio=options.keep_audio)


def _preflight(options: SynthesizeOptions) -> list[str]:
    """Every voice of the plan can speak here, on the device asked for."""
    synthesis = _synthesis_options(options)
    synthesis.check()
    ray_missing = [RAY_MISSING] if options.engine == "ray" and importlib.util.find_spec("ray") is None else []
    return ray_missing + engine_problems(synthesis.plan().voices, synthesis.device)


STAGE = Stage("synthesize", run, SynthesizeOptions, output=CORPUS, preflight=_preflight)
