"""Publishing: shard-writing throughput, bytes per audio hour, and peak memory as the corpus grows.

On a generated corpus of speech-like audio (voiced harmonics with a moving pitch and formants, syllable-rate
envelope, pauses, a low noise floor; 16 kHz 16-bit FLAC, as synthesis writes it), prints:
- shard-writing throughput of `publish` (reading, sha256-checking and embedding the audio, writing the shards)
  against a raw pyarrow write of the same rows (read the same files, one default `pq.write_table` per 100 rows),
  both in audio MB/s; target ≥ 0.8×;
- published bytes per audio hour, FLAC parquet against the same audio as 16-bit WAV; target ≤ 0.6×;
- peak RSS of a build of the 1× corpus and of the 10× corpus, each in a fresh process; target: flat.

    python bench/publish.py [--items 150] [--scale 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile

SAMPLE_RATE = 16000
CLIPS = 8  # base clips per role, each item gets its own rotation of one
QUESTION_SECONDS, ANSWER_SECONDS = 6.0, 10.0


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced, speech-shaped signal: harmonics of a wandering f0 shaped by two moving formants, cut into
    syllables (~4 per second) with short pauses between phrases."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 10 * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    formants = (500 + 300 * np.sin(2 * np.pi * 3.1 * t), 1500 + 500 * np.sin(2 * np.pi * 2.3 * t + 1))
    voice = np.zeros(n)
    for k in range(1, 25):
        freq = k * f0
        gain = sum(np.exp(-((freq - f) / 150) ** 2) for f in formants) / k
        voice += gain * np.sin(k * phase)
    syllables = np.clip(np.sin(np.pi * 4 * t + rng.uniform(0, 3)), 0, None) ** 0.6
    phrases = (np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)) > -0.8).astype(float)
    signal = voice * syllables * phrases
    signal = 0.3 * signal / np.abs(signal).max() + 0.0005 * rng.standard_normal(n)
    return signal.astype("float32")


def write_audio(path: Path, samples: np.ndarray) -> dict:
    soundfile.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return {"path": f"audio/{path.name}", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "sample_rate": SAMPLE_RATE, "channels": 1, "duration_s": len(samples) / SAMPLE_RATE,
            "loudness_lufs": -23.0, "wer": 0.0}


def write_corpus(root: Path, items: int, rng: np.random.Generator) -> Path:
    """A manifest of `items` items, each with its own question and answer FLAC files.

    Every file is unique (a base clip rotated by an item-specific offset), as real synthesis output is: repeated
    audio would let parquet's dictionary encoding shrink the corpus and flatter both the size and the speed figures.
    """
    from soundmind_data.template import render_question

    (root / "audio").mkdir(parents=True)
    questions = [speech_like(QUESTION_SECONDS * rng.uniform(0.8, 1.2), rng) for _ in range(CLIPS)]
    answers = [speech_like(ANSWER_SECONDS * rng.uniform(0.8, 1.2), rng) for _ in range(CLIPS)]
    manifest = root / "manifest.jsonl"
    with open(manifest, "w") as out:
        for i in range(items):
            label = i % 2
            major, minor, conclusion = f"Every member of club {i} pays the fee", "Tom pays the fee", "Tom is a member"
            out.write(json.dumps({
                "id": f"bench-{i:07d}", "split": "test" if i % 10 == 0 else "train", "major_premise": major,
                "minor_premise": minor, "conclusion": conclusion, "label": label,
                "question_text": render_question(major, minor, conclusion),
                "answer_text": "Paying the fee does not make Tom a member.\n\nAnswer: " + ("entailed" if label else "not entailed"),
                "source": {"dataset": "logiqa2-nli", "file": "dev.txt", "line": i + 1, "gold_label": label},
                "question_audio": write_audio(root / "audio" / f"{i:07d}-q.flac", np.roll(questions[i % CLIPS], 37 * i)),
                "answer_audio": write_audio(root / "audio" / f"{i:07d}-a.flac", np.roll(answers[i % CLIPS], 53 * i)),
                "tts": {"backend": "bench", "voice": "speech-like", "model_md5": None, "license": "CC0-1.0",
                        "toolkit_version": "bench"},
            }) + "\n")
    return manifest


def head(manifest: Path, items: int, path: Path) -> Path:
    """The first `items` lines of a manifest, in the same folder (so its audio paths still resolve)."""
    with open(manifest) as source, open(path, "w") as out:
        for _, line in zip(range(items), source):
            out.write(line)
    return path


def raw_pyarrow_write(manifest: Path, out: Path) -> int:
    """The baseline: the same rows (same audio bytes read from the same files), written by plain pyarrow."""
    from soundmind_data.hubfolder import arrow_schema, to_row

    schema, rows, audio_bytes = arrow_schema(), [], 0
    with pq.ParquetWriter(out, schema) as writer, open(manifest) as lines:
        for line in lines:
            item = json.loads(line)
            row = to_row(item, manifest.parent, "bench")
            audio_bytes += len(row["question_audio"]["bytes"]) + len(row["answer_audio"]["bytes"])
            rows.append(row)
            if len(rows) == 100:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return audio_bytes


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


PEAK_RSS_CHILD = """
import resource, sys
from soundmind_data.hubfolder import build_folder
build_folder(sys.argv[1], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(manifest: Path, folder: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_CHILD, str(manifest), str(folder)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=150, help="items in the 1x corpus")
    parser.add_argument("--scale", type=int, default=10, help="size of the big corpus, in multiples of --items")
    args = parser.parse_args()
    from soundmind_data.hubfolder import build_folder

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        root = Path(tmp)
        big = write_corpus(root, args.items * args.scale, np.random.default_rng(0))
        small = head(big, args.items, root / "small.jsonl")
        audio_mb = raw_pyarrow_write(small, root / "warm.parquet") / 1e6  # also warms the page cache
        ours = best_of(3, lambda: build_folder(small, root / "ours"))
        raw = best_of(3, lambda: raw_pyarrow_write(small, root / "raw.parquet"))
        print(f"shard writing, {args.items} items, {audio_mb:.1f} MB of FLAC audio:")
        print(f"  publish shards:   {audio_mb / ours:8.1f} MB/s")
        print(f"  raw pyarrow:      {audio_mb / raw:8.1f} MB/s")
        print(f"  ratio:            {raw / ours:8.2f}x  (target >= 0.8x)")

        result = build_folder(small, root / "ours")
        hours = result.audio_hours
        parquet_bytes = sum((root / "ours" / path).stat().st_size for path in result.files)
        seconds = hours * 3600
        wav_bytes = seconds * SAMPLE_RATE * 2 + 44 * 2 * result.rows  # 16-bit mono samples + one header per file
        print(f"bytes per audio hour ({hours:.2f} h):")
        print(f"  FLAC parquet:     {parquet_bytes / hours / 1e6:8.1f} MB/h")
        print(f"  16-bit WAV:       {wav_bytes / hours / 1e6:8.1f} MB/h")
        print(f"  ratio:            {parquet_bytes / wav_bytes:8.2f}x  (target <= 0.6x)")

        rss_small = peak_rss_mb(small, root / "rss-small")
        rss_big = peak_rss_mb(big, root / "rss-big")
        print("peak RSS of a build (fresh process each):")
        print(f"  1x  ({args.items} items):   {rss_small:8.1f} MB")
        print(f"  {args.scale}x ({args.items * args.scale} items):  {rss_big:8.1f} MB")
        print(f"  ratio:            {rss_big / rss_small:8.2f}x  (target: flat, ~1.0x)")


if __name__ == "__main__":
    main()
