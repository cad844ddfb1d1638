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
from soundmind_data.core.stage import CORPUS, Progress, SILENT, Stage, option
from soundmind_data.text.speech_text import normaliser_note
from soundmind_data.tts.driver import RAY_MISSING, SynthesisReport, synthesize_manifest
from soundmind_data.tts.synthesizer import SynthesisOptions
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
    voices: tuple[str, ...] = option((),
        help="Voices by the names `soundmind-data voices` prints (piper:joe, hibari:heart, kokoro:jf_alpha, a Kokoro "
             "mix kokoro:jf_alpha+jm_kumo@0.5), repeatable or comma-separated, or 'all' for the default pool. The "
             "speaker plan gives each item one voice, balanced within every split x label. Default: piper:joe.")
    test_voices: tuple[str, ...] = option((),
        help="Voices held for the test split only and kept out of every other split (speaker-disjoint evaluation); "
             "comma-separated.")
    seed: int = option(0, help="Seed of the speaker plan.")
    backend: str | None = option(None, short="-b",
        help="Read --voice names as this engine's (piper, hibari, kokoro, flite, espeak, coqui); kept for scripts, "
             "--voices is the way.")
    voice: tuple[str, ...] = option((), short="-v",
        help="Voice(s) of --backend by the engine's own names (en_US-joe-medium, a Piper .onnx path, en-gb...), "
             "repeatable or comma-separated.")
    workers: int = option(1, short="-w",
        help="Worker processes, each with one single-threaded engine (Ray actors with --engine ray).")
    shard: str | None = option(None,
        help="I/N: only lines whose number modulo N is I (for Slurm arrays, k8s jobs); writes "
             "manifest.shard-I-of-N.jsonl.")
    engine: str = option("local",
        help="local (processes on this machine) or ray (Ray Data; RAY_ADDRESS or a local Ray).")
    device: str = option("cpu",
        help="cpu or cuda (piper, kokoro: need onnxruntime-gpu, the gpu extra; coqui: torch with CUDA; hibari, flite "
             "and espeak always run on the CPU).")
    format: str = option("flac", short="-f", help="flac, wav, mp3 or opus.")
    sample_rate: int = option(16000, help="Output sample rate in Hz.")
    target_lufs: float = option(-23.0, help="Integrated loudness of every file (ITU-R BS.1770), LUFS.")
    cache: Path | None = option(None,
        help="Audio cache folder, shareable between runs and corpora (default: OUT/.cache).")
    keep_audio: bool = option(False,
        help="Keep every audio entry whose file is there (a release's recordings) and speak only the texts without "
             "audio; OUT must be the manifest's folder.")


def run(manifest: Path, out: Path, options: SynthesizeOptions, *, progress: Progress = SILENT) -> SynthesisReport:
    """The synthesize stage: `out` is a folder (audio/, manifest.jsonl, failures.jsonl)."""
    synthesis = _synthesis_options(options)
    shard = parse_shard(options.shard) if options.shard else None
    if note := normaliser_note():
        progress.note(note)
    progress.start("synthesize", total=count_lines(manifest, shard and (lambda n: n % shard[1] == shard[0])))
    started = time.monotonic()
    summary = synthesize_manifest(manifest, out, synthesis, workers=options.workers, shard=shard,
                                  engine=options.engine, cache_dir=options.cache, progress=progress)
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


COMMAND_HELP = """Speak every item's question and answer, filling in question_audio, answer_audio and tts.

Texts are normalised for speech (logic symbols, numbers, abbreviations); an item with empty or unspeakable
text, or a failed synthesis, goes to OUT/failures.jsonl with the reason, and the exit code is 1. Finished audio
is cached by content: re-running synthesises only new or changed texts, and a killed run resumes.

Every voice comes out at --sample-rate and --target-lufs whatever its engine's own rate; each audio entry
records its voice and engine. Changing an item's voice re-renders that item alone.

Example: soundmind-data synthesize items.jsonl --out corpus --workers 2 --voices all --test-voices kokoro:jm_kumo
"""

STAGE = Stage("synthesize", run, SynthesizeOptions, output=CORPUS, preflight=_preflight,
              input_help="Item manifest (JSONL) whose texts are to be spoken.",
              output_help="Output folder: audio/<split>/<id>/, manifest.jsonl, failures.jsonl.",
              help=COMMAND_HELP)
