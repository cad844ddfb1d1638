"""Publishing: shard-writing throughput, bytes per audio hour, peak memory as the corpus grows, and what the Hub
stores again when one item changes.

On a generated corpus of speech-like audio (voiced harmonics with a moving pitch and formants, syllable-rate
envelope, pauses, a low noise floor; 16 kHz 16-bit FLAC, as synthesis writes it), prints:
- shard-writing throughput of `publish` (reading, sha256-checking and embedding the audio, writing the shards)
  against a raw pyarrow write of the same rows (read the same files, one default `pq.write_table` per 100 rows),
  both in audio MB/s; target ≥ 0.8×;
- published bytes per audio hour, FLAC parquet against the same audio as 16-bit WAV; target ≤ 0.6×;
- peak RSS of a build of the 1× corpus and of the 10× corpus, each in a fresh process; target: flat;
- Xet deduplication: a corpus of --dedup-items items is published, then again with one item changed (its question
  re-spoken at another length, its answer text edited) and again with one item removed. Every shard of each build
  is cut into chunks as Xet cuts files (a gear hash over the bytes, 64 KiB chunks on average, 8 to 128 KiB), and the
  bytes of the new build's chunks that the first build lacks are what an upload sends and the Hub stores again:
  shown as a share of the corpus bytes, with parquet's content-defined chunking (as publish writes) and without it
  (the same writer with it turned off), in the same run; target: under 5% with it. Then `datasets` reads the
  changed corpus's shards back and every row must equal the item it was built from.

    python bench/publish.py [--items 150] [--scale 10] [--dedup-items 1000]
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
from unittest import mock

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
    from soundmind_data.text.template import render_question

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
    from soundmind_data.hub.folder.rows import arrow_schema, to_row

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
from soundmind_data.hub.folder.build import build_folder
build_folder(sys.argv[1], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(manifest: Path, folder: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_CHILD, str(manifest), str(folder)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


# ---------------------------------------------------------------------------------------- Xet's view of a change
XET_TARGET = 64 * 1024  # Xet's chunks: 64 KiB on average, between an eighth and twice that
XET_MIN, XET_MAX = XET_TARGET // 8, XET_TARGET * 2
XET_MASK = np.uint64((XET_TARGET - 1) << 48)  # a boundary where the hash's top 16 bits are zero: 1 byte in 65,536
# Xet's gear table is 256 fixed random 64-bit values; any such table cuts alike (not at the same places: the chunks
# here are not Xet's own, but they are as many, as big, and move with the content the same way).
GEAR = np.random.default_rng(0x9E37).integers(0, 2**64 - 1, 256, dtype=np.uint64, endpoint=True)
BLOCK = 1 << 22  # bytes hashed at a time: the hash arrays take 8 bytes a byte


def gear_hashes(data: np.ndarray) -> np.ndarray:
    """The gear hash after each byte, h = (h << 1) + GEAR[byte] (mod 2**64), as a hasher rolling over `data` from
    zero computes it. A byte's term has shifted out after 64 more, so h[i] = sum(GEAR[data[i-k]] << k, k < 64),
    which doubling builds in six vector steps instead of a Python loop over every byte."""
    hashes = GEAR[data]
    for step in (1, 2, 4, 8, 16, 32):
        hashes[step:] += hashes[:-step] << np.uint64(step)  # the right side is a new array: no aliasing
    return hashes


def xet_chunks(path: Path) -> list[tuple[bytes, int]]:
    """(digest, size) of each content-defined chunk of a file, cut as Xet cuts: at a hash boundary once the chunk
    holds XET_MIN bytes, and at XET_MAX bytes if none came."""
    data = np.fromfile(path, dtype=np.uint8)
    cuts, start = [], 0
    for offset in range(0, len(data), BLOCK):
        context = min(offset, 63)  # the bytes before the block that its first hashes still depend on
        hashes = gear_hashes(data[offset - context:offset + BLOCK])[context:]
        for end in (np.flatnonzero((hashes & XET_MASK) == 0) + offset + 1).tolist():
            while end - start > XET_MAX:
                start += XET_MAX
                cuts.append(start)
            if end - start >= XET_MIN:
                cuts.append(end)
                start = end
    while len(data) - start > XET_MAX:
        start += XET_MAX
        cuts.append(start)
    bounds = [0, *cuts] + ([len(data)] if start < len(data) else [])
    return [(hashlib.blake2b(data[a:b]).digest(), b - a) for a, b in zip(bounds, bounds[1:])]


def stored_again(old: list[Path], new: list[Path]) -> tuple[int, int]:
    """(bytes of `new`'s chunks found in none of `old`'s, total bytes of `new`): what uploading `new` over `old`
    sends and stores, Xet deduplicating by chunk across the repo's files (a chunk twice in `new` counts once)."""
    known = {digest for path in old for digest, _ in xet_chunks(path)}
    fresh, total = 0, 0
    for path in new:
        for digest, size in xet_chunks(path):
            total += size
            if digest not in known:
                known.add(digest)
                fresh += size
    return fresh, total


def edited(manifest: Path, out: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """Two variants of `manifest`: its middle train item changed (question re-spoken at another length, answer text
    edited; audio written beside the others) and that item removed (the train rows after it move up by one, across
    row groups: the bigger edit for the shards)."""
    lines = manifest.read_text().splitlines(keepends=True)
    middle = next(i for i in range(len(lines) // 2, len(lines)) if json.loads(lines[i])["split"] == "train")
    item = json.loads(lines[middle])
    item["question_audio"] = write_audio(manifest.parent / "audio" / "edited-q.flac",
                                         speech_like(QUESTION_SECONDS * 1.3, rng))
    item["answer_text"] = "Paying the fee is what members do; Tom may not be one.\n\nAnswer: not entailed"
    changed, removed = out / "changed.jsonl", out / "removed.jsonl"
    changed.write_text("".join(lines[:middle] + [json.dumps(item) + "\n"] + lines[middle + 1:]))
    removed.write_text("".join(lines[:middle] + lines[middle + 1:]))
    return changed, removed


def shard_paths(folder: Path) -> list[Path]:
    return sorted((folder / "data").glob("*.parquet"))


def read_back_unchanged(manifest: Path, folder: Path) -> int:
    """Read the shards with `datasets` (audio as stored bytes) and check every row against the row its manifest
    item makes; returns the rows checked."""
    import datasets

    from soundmind_data.hub.folder.rows import to_row

    expected: dict[str, list[dict]] = {}
    with open(manifest) as lines:
        for number, line in enumerate(lines, start=1):
            item = json.loads(line)
            expected.setdefault(item["split"], []).append(to_row(item, manifest.parent, f"{manifest}:{number}"))
    files = {split: [str(p) for p in shard_paths(folder) if p.name.startswith(f"{split}-")] for split in expected}
    loaded = datasets.load_dataset("parquet", data_files=files, streaming=True)
    checked = 0
    for split, rows in expected.items():
        stream = loaded[split]
        for key in ("question_audio", "answer_audio"):
            stream = stream.cast_column(key, datasets.Audio(decode=False))
        got = list(stream)
        if got != rows:
            bad = next((row["id"] for row, want in zip(got, rows) if row != want), f"{len(got)} rows, not {len(rows)}")
            raise SystemExit(f"datasets reads split {split} of {folder} back changed: {bad}")
        checked += len(got)
    return checked


def dedup_figures(manifest: Path, root: Path, rng: np.random.Generator) -> None:
    """Publish `manifest`, its one-item edit and its one-item removal, with and without content-defined chunking,
    and print what Xet would store again for each edit."""
    from soundmind_data.hub.folder import build, shards

    changed, removed = edited(manifest, root, rng)
    builds = {}
    for cdc in (True, False):
        # Without: the very same writer with parquet's content-defined chunking turned off (pages cut every 1 MiB).
        with mock.patch.object(shards, "CDC_OPTIONS", shards.CDC_OPTIONS if cdc else False):
            for name, source in (("base", manifest), ("changed", changed), ("removed", removed)):
                folder = root / f"dedup-{name}-{'cdc' if cdc else 'plain'}"
                build.build_folder(source, folder)
                builds[name, cdc] = shard_paths(folder)
    items = len(manifest.read_text().splitlines())
    corpus_mb = sum(p.stat().st_size for p in builds["base", True]) / 1e6
    print(f"Xet deduplication, {items} items ({corpus_mb:.1f} MB of shards), bytes stored again after one edit:")
    for edit in ("changed", "removed"):
        shares = {}
        for cdc in (True, False):
            fresh, total = stored_again(builds["base", cdc], builds[edit, cdc])
            shares[cdc] = fresh / total
            print(f"  one item {edit + ',':8} {'with CDC:   ' if cdc else 'without CDC:'} {fresh / 1e6:8.2f} MB "
                  f"= {100 * fresh / total:5.2f}% of {total / 1e6:.1f} MB" + ("  (target < 5%)" if cdc else ""))
        print(f"  {'':22} ratio:       {shares[True] / shares[False]:8.2f}x  (with / without CDC)")
    rows = read_back_unchanged(changed, root / "dedup-changed-cdc")
    print(f"  datasets reads the changed corpus back unchanged: {rows} rows equal their items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=150, help="items in the 1x corpus")
    parser.add_argument("--scale", type=int, default=10, help="size of the big corpus, in multiples of --items")
    parser.add_argument("--dedup-items", type=int, default=1000, help="items in the corpus of the Xet figures")
    args = parser.parse_args()
    from soundmind_data.hub.folder.build import build_folder

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        root = Path(tmp)
        corpus = write_corpus(root, max(args.items * args.scale, args.dedup_items), np.random.default_rng(0))
        big = head(corpus, args.items * args.scale, root / "big.jsonl")
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

        dedup_figures(head(corpus, args.dedup_items, root / "dedup.jsonl"), root, np.random.default_rng(1))


if __name__ == "__main__":
    main()
