"""Ingest + audit throughput and peak memory on generated LogiQA 2.0 NLI files.

Prints items/s end to end (ingest, then audit of the resulting manifest) and the peak RSS of each stage, for a
corpus of N items and one of 10×N, each run in a fresh process so the peaks do not mix.
Targets (issue 2): ≥ 20,000 items/s end to end; peak RSS under 300 MB and flat as the input grows 10×.

    python bench/ingest_audit.py [--items 100000] [--scale 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("cat animal bird fly rule case student exam passed review session doctor writer museum holiday open closed "
         "engineer painting rain match cancelled member fee book rare lamp switch car red lot company manager").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize()


def generate(path: Path, items: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w") as out:
        for i in range(items):
            major = sentence(rng, 25) if i % 3 else [sentence(rng, 12), sentence(rng, 12)]
            if i % 50 == 0 and i:
                major = f"¬P → Q, {major}" if isinstance(major, str) else major
            line = {"label": rng.choice(["entailed", "not entailed"]), "major_premise": major,
                    "minor_premise": sentence(rng, 12), "conclusion": sentence(rng, 10) + "."}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            if i % 100 == 99:  # some duplicates, as in the real corpus
                out.write(json.dumps(line, ensure_ascii=False) + "\n")


def timed_child(args: list[str]) -> tuple[float, float]:
    """Run the CLI in a fresh process; return (wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "soundmind_data", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"soundmind-data {' '.join(args)} failed with {status}")
    return wall, usage.ru_maxrss / 1024


def measure(workdir: Path, items: int) -> dict:
    source = workdir / f"logiqa-{items}.txt"
    generate(source, items)
    lines = sum(1 for _ in open(source))
    manifest = workdir / f"items-{items}.jsonl"
    ingest_s, ingest_mb = timed_child(["ingest", str(source), "--format", "logiqa2-nli", "--split", "train",
                                       "--out", str(manifest)])
    audit_s, audit_mb = timed_child(["audit", str(manifest), "--json", str(workdir / f"audit-{items}.json")])
    return {"items": lines, "ingest_s": ingest_s, "audit_s": audit_s, "items_per_s": lines / (ingest_s + audit_s),
            "ingest_rss_mb": ingest_mb, "audit_rss_mb": audit_mb}


def measure_twice(doc: str, measure) -> tuple[argparse.Namespace, list[dict]]:
    """Parse `--items N --scale K` and run `measure(folder, items)` for N and K×N items in a temporary folder."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return args, [measure(Path(tmp), args.items), measure(Path(tmp), args.items * args.scale)]


def main() -> None:
    args, rows = measure_twice(__doc__, measure)
    print(f"{'items':>9} {'ingest s':>9} {'audit s':>8} {'items/s (ingest+audit)':>23} {'ingest RSS MB':>14} {'audit RSS MB':>13}")
    for r in rows:
        print(f"{r['items']:>9} {r['ingest_s']:>9.2f} {r['audit_s']:>8.2f} {r['items_per_s']:>23,.0f} "
              f"{r['ingest_rss_mb']:>14.1f} {r['audit_rss_mb']:>13.1f}")
    small, large = rows
    peak_small = max(small["ingest_rss_mb"], small["audit_rss_mb"])
    peak_large = max(large["ingest_rss_mb"], large["audit_rss_mb"])
    print(f"peak RSS growth for {args.scale}x the items: {peak_large / peak_small:.2f}x "
          f"({peak_small:.0f} MB -> {peak_large:.0f} MB); target: under 300 MB, flat")
    print(f"end-to-end throughput at {small['items']} items: {small['items_per_s']:,.0f} items/s (target >= 20,000)")


if __name__ == "__main__":
    main()
