"""Wall time of the demo pipeline split by stage, and the overhead of `soundmind-data run` over calling the stages
directly (target <= 5%).

    .venv/bin/python bench/pipeline.py               # the whole demo (a few minutes on 2 cores)
    .venv/bin/python bench/pipeline.py --limit 4     # a quick trial: run --limit 4

Fairness: both runs start cold in their own fresh temp work dir (the synthesis cache defaults to OUT/.cache, inside
the work dir, so neither run finds cached audio), from the repository root, with this Python. The direct run replays
the exact `command` lines of the run's run-log.jsonl, each as its own process, with the work dir path swapped.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "soundmind_data"]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "demo.yaml"))
    parser.add_argument("--limit", type=int, help="passed to `run --limit` (default: the full demo)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        run_dir, direct_dir = Path(tmp) / "run", Path(tmp) / "direct"
        limit = ["--limit", str(options.limit)] if options.limit else []
        run_wall = timed([*CLI, "run", options.pipeline, "--workdir", str(run_dir), *limit])
        log = [json.loads(line) for line in (run_dir / "run-log.jsonl").read_text().splitlines()]
        stages = [entry for entry in log if entry["status"] == "ran"]

        print(f"demo via `soundmind-data run`{f' --limit {options.limit}' if options.limit else ''}: "
              f"{run_wall:.1f} s wall")
        print(f"{'stage':<14}{'seconds':>9}{'share':>8}")
        for entry in stages:
            print(f"{entry['stage']:<14}{entry['duration_s']:>9.1f}{entry['duration_s'] / run_wall:>8.1%}")
        in_stages = sum(entry["duration_s"] for entry in stages)
        print(f"{'(outside)':<14}{run_wall - in_stages:>9.1f}{(run_wall - in_stages) / run_wall:>8.1%}"
              "   startup, checks, hashing, plots")

        direct_dir.mkdir()
        direct_wall = 0.0
        for entry in stages:
            args = shlex.split(entry["command"].replace(str(run_dir), str(direct_dir)))
            direct_wall += timed([*CLI, *args[1:]])  # args[0] is "soundmind-data"
        overhead = (run_wall - direct_wall) / direct_wall
        print(f"\nsame {len(stages)} stage commands, one process each: {direct_wall:.1f} s wall")
        print(f"overhead of run over direct calls: {run_wall - direct_wall:+.1f} s ({overhead:+.1%}; target <= +5%)")


if __name__ == "__main__":
    main()
