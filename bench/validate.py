"""Validation throughput: schema-only, --audio and --asr pocketsphinx on one generated corpus.

Generates the corpus first: the first --distinct demo items are spoken by `soundmind-data synthesize` (Piper, 16 kHz
FLAC at -23 LUFS, as a real corpus is made), then repeated under new ids up to --items items, all in one folder.
Then times `validate_manifest` on it: schema only; --audio with --workers; and --asr pocketsphinx with --workers on
the first --asr-items items (ASR is two orders of magnitude slower). Prints items per second and audio seconds
checked per wall second (real-time factor) for each; the target for --audio is >= 300x real time on 2 cores, ASR is
reported as measured.

Usage: python bench/validate.py [--items 200] [--distinct 4] [--asr-items 8] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo" / "soundmind-demo.jsonl"
AUDIO_TARGET_X = 300


def generate_corpus(folder: Path, items: int, distinct: int, workers: int) -> Path:
    """Synthesise `distinct` demo items, then write a manifest of `items` items cycling over their audio."""
    from soundmind_data.jsonl import AtomicWriter, iter_records
    from soundmind_data.stages.ingest import ingest

    demo = folder / "demo-items.jsonl"
    ingest([DEMO], fmt="soundmind", split="bench", out=demo)
    seed = folder / "seed-items.jsonl"
    with AtomicWriter(seed) as out:
        for _, record in zip(range(distinct), iter_records(demo)):
            out.write_record(record)
    spoken = folder / "spoken"
    done = subprocess.run([sys.executable, "-m", "soundmind_data", "synthesize", str(seed), "--out", str(spoken),
                           "--workers", str(workers)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"synthesize failed:\n{done.stderr}")
    originals = list(iter_records(spoken / "manifest.jsonl"))
    corpus = spoken / "corpus.jsonl"  # beside the synthesised manifest: audio paths are relative to its folder
    with AtomicWriter(corpus) as out:
        for number in range(items):
            out.write_record({**originals[number % len(originals)], "id": f"bench-{number:06d}"})
    return corpus


def head(manifest: Path, lines: int) -> Path:
    """The first `lines` lines, in the same folder (so audio paths still resolve)."""
    path = manifest.with_name(f"{manifest.stem}.head{lines}.jsonl")
    with open(manifest, encoding="utf-8") as source, open(path, "w", encoding="utf-8") as out:
        for _, line in zip(range(lines), source):
            out.write(line)
    return path


def timed_validate(manifest: Path, **options) -> tuple[float, object]:
    from soundmind_data.stages.validate import validate_manifest

    started = time.perf_counter()
    report = validate_manifest(manifest, **options)
    wall = time.perf_counter() - started
    if not report.ok:
        sys.exit(f"the generated corpus failed validation: {report.failures[:3]}")
    return wall, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200, help="items in the corpus")
    parser.add_argument("--distinct", type=int, default=4, help="distinct demo items synthesised")
    parser.add_argument("--asr-items", type=int, default=8, help="items the ASR run checks (the corpus's first)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the corpus in this folder and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        corpus = generate_corpus(folder, args.items, args.distinct, args.workers)
        print(f"corpus: {args.items} items ({args.distinct} distinct, synthesised in "
              f"{time.perf_counter() - started:.1f} s) -> {corpus}")

        rows = []
        wall, report = timed_validate(corpus)
        rows.append(("schema only", report.items, wall, None))
        wall, report = timed_validate(corpus, audio=True, workers=args.workers)
        rows.append((f"--audio --workers {args.workers}", report.items, wall, report.audio_seconds))
        audio_x = report.audio_seconds / wall
        wall, report = timed_validate(head(corpus, args.asr_items), asr="pocketsphinx", workers=args.workers)
        rows.append((f"--asr pocketsphinx --workers {args.workers}", report.items, wall, report.audio_seconds))

    from soundmind_data.table import format_table

    print(format_table(("mode", "items", "wall s", "items/s", "audio s", "audio s per wall s"), [
        (mode, items, f"{wall:.2f}", f"{items / wall:.1f}", "" if audio is None else f"{audio:.0f}",
         "" if audio is None else f"{audio / wall:.1f}") for mode, items, wall, audio in rows]))
    verdict = "meets" if audio_x >= AUDIO_TARGET_X else "MISSES"
    print(f"--audio: {audio_x:.0f}x real time ({verdict} the {AUDIO_TARGET_X}x target on {args.workers} workers)")


if __name__ == "__main__":
    main()
