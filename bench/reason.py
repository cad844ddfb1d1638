"""Reason stage throughput against a local OpenAI-compatible server that takes 50 ms per completion.

Prints completions per second at concurrency 1, 8 and 32, and the speed-up over concurrency 1 (target: near-linear
up to 8). The server is soundmind_data's canned server in this same process, so the figures measure the stage's own
overhead (HTTP client, cache fsync, manifest writing) on top of a fixed model latency, not a model.

Run: .venv/bin/python bench/reason.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from soundmind_data.core.jsonl import AtomicWriter
from soundmind_data.engines.importers import from_logiqa
from soundmind_data.llm.canned_server import CannedServer
from soundmind_data.llm.openai_compat import OpenAICompatBackend
from soundmind_data.report.table import format_table
from soundmind_data.stages.reason import reason_manifest

LATENCY_S = 0.050
RUNS = ((1, 40), (8, 320), (32, 640))  # (concurrency, items): about 2 s each at the ideal rate
TARGET_SPEEDUP_AT_8 = 7.0  # "near-linear to 8" (issue 9)
ANSWER = "The premises cover this case, so the conclusion has to hold.\n\nAnswer: entailed."


def write_manifest(path: Path, items: int) -> Path:
    with AtomicWriter(path) as out:
        for line in range(1, items + 1):
            record = {"label": "entailed", "major_premise": f"All birds in aviary {line} are fed at noon",
                      "minor_premise": "The parrot lives in the aviary", "conclusion": "The parrot is fed at noon."}
            out.write_record(from_logiqa(record, split="bench", file="bench", line=line, id_prefix="bench"))
    return path


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder, CannedServer(lambda prompt, n: ANSWER, latency_s=LATENCY_S) as server:
        base_rate = None
        for concurrency, items in RUNS:
            manifest = write_manifest(Path(folder) / f"items-{concurrency}.jsonl", items)
            backend = OpenAICompatBackend(server.base_url, "canned", timeout_s=30)
            started = time.perf_counter()
            report = reason_manifest(manifest, out=Path(folder) / f"out-{concurrency}.jsonl", backend=backend,
                                     samples=1, concurrency=concurrency)
            elapsed = time.perf_counter() - started
            assert report.outcomes["accepted"] == items and report.requests == items, report.to_json()
            rate = report.requests / elapsed
            base_rate = base_rate or rate
            rows.append((concurrency, report.requests, f"{elapsed:.2f}", f"{rate:.1f}", f"{rate / base_rate:.2f}",
                         f"{concurrency / LATENCY_S:.0f}"))
    print(f"reason stage, openai backend, local server with {LATENCY_S * 1000:.0f} ms per completion")
    print(format_table(("concurrency", "requests", "seconds", "requests/s", "speed-up", "ideal requests/s"), rows))
    speedup_at_8 = float(next(row[4] for row in rows if row[0] == 8))
    verdict = "met" if speedup_at_8 >= TARGET_SPEEDUP_AT_8 else "MISSED"
    print(f"target: near-linear to 8, speed-up >= {TARGET_SPEEDUP_AT_8:g} at concurrency 8: {speedup_at_8:.2f} ({verdict})")


if __name__ == "__main__":
    main()
