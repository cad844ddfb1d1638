"""Benchmark: `split` then `balance` on a generated 1,000,000-item manifest; prints items/s and peak RSS.

Each command runs as its own process (the CLI, as users run it), so its peak RSS is measured alone (os.wait4).
The manifest has short texts, a 55/45 label mix, 2% duplicate triplets and all items in "train".
Target: at least 100,000 items/s for each command.

    python bench/balance.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soundmind_data.core.jsonl import dumps

TARGET = 100_000  # items/s, each command
COMMAND = [str(Path(sys.executable).with_name("soundmind-data"))]


def write_manifest(path: Path, items: int) -> None:
    with path.open("wb") as out:
        for number in range(items):
            topic = number - number % 50 if number % 50 == 49 else number  # every 50th item repeats a triplet
            out.write(dumps({
                "id": f"bench-{number:07d}",
                "split": "train",
                "major_premise": f"All members of club {topic} play chess",
                "minor_premise": f"Member {topic} belongs to the club",
                "conclusion": f"Member {topic} plays chess",
                "label": 0 if number % 20 < 11 else 1,
                "question_text": f"Is it entailed that member {topic} plays chess?",
                "source": {"dataset": "contrib", "file": "bench.jsonl", "line": number + 1},
            }))


def timed(args: list[str]) -> tuple[float, float, float]:
    """Run the CLI with `args`; (wall seconds, CPU seconds, peak RSS in MiB) of that process alone.

    CPU seconds are printed too because wall time on a shared machine also counts other people's work."""
    start = time.perf_counter()
    process = subprocess.Popen(COMMAND + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed ({process.returncode}): {process.stderr.read().decode()}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    items = parser.parse_args().items
    with tempfile.TemporaryDirectory(prefix="bench-balance-") as folder:
        folder = Path(folder)
        manifest = folder / "items.jsonl"
        write_manifest(manifest, items)
        size_mib = manifest.stat().st_size / 2**20
        print(f"manifest: {items:,} items, {size_mib:.0f} MiB")
        runs = {
            "split": ["split", str(manifest), "--ratios", "train=0.8,dev=0.1,test=0.1", "--seed", "1",
                      "--out", str(folder / "split.jsonl")],
            "balance": ["balance", str(folder / "split.jsonl"), "--strategy", "downsample", "--seed", "1",
                        "--out", str(folder / "balanced.jsonl")],
        }
        total_wall = total_cpu = 0.0
        for name, args in runs.items():
            wall, cpu, peak_mib = timed(args)
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            print(f"{name:8} {wall:6.1f} s wall {items / wall:9,.0f} items/s | {cpu:6.1f} s CPU "
                  f"{items / cpu:9,.0f} items/s | peak RSS {peak_mib:5.0f} MiB")
        print(f"{'both':8} {total_wall:6.1f} s wall {items / total_wall:9,.0f} items/s | {total_cpu:6.1f} s CPU "
              f"{items / total_cpu:9,.0f} items/s (split then balance, one after the other)")
        print(f"target: >= {TARGET:,} items/s for each command")


if __name__ == "__main__":
    main()
