"""Curate throughput and peak memory on a generated SoundMind-like manifest.

A manifest of N items (and one of 10×N) in three splits, with the SoundMind release's defects planted: ~40% of the
labels disagree with a gold file, a few answers contradict their label, duplicates within splits and triplets that
leak between splits. Each curate runs in a fresh process (its peak RSS is its own) with the gold file, and writes
its report. Targets (issue 13): ≥ 20,000 items/s at 100,000 items; peak RSS under 300 MB at 1,000,000.

    python bench/curate.py [--items 100000] [--scale 10]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_audit import measure_twice, sentence, timed_child  # noqa: E402  (the same text, timing and sizes)

ENTAILED = "The rule covers the case, so the conclusion follows.\n\nAnswer: entailed."
NOT_ENTAILED = "Nothing forces the conclusion.\n\nAnswer: not entailed."


def generate(folder: Path, items: int, seed: int = 0) -> tuple[Path, Path]:
    """(manifest, gold file) with the defects planted."""
    rng = random.Random(seed)
    manifest, gold = folder / f"items-{items}.jsonl", folder / f"gold-{items}.txt"
    with open(manifest, "w") as out, open(gold, "w") as gold_out:
        for i in range(items):
            major, minor, conclusion = sentence(rng, 25), sentence(rng, 12), f"{sentence(rng, 10)} {i}."
            truth = rng.randint(0, 1)
            label = 1 - truth if rng.random() < 0.4 else truth
            answer = ENTAILED if (label if rng.random() > 0.05 else 1 - label) else NOT_ENTAILED
            split = rng.choice(("train",) * 8 + ("dev", "test"))
            record = {"id": f"it-{i:07d}", "split": split, "major_premise": major, "minor_premise": minor,
                      "conclusion": conclusion, "label": label, "answer_text": answer,
                      "question_text": f"{major} {minor} Does it follow that {conclusion}",
                      "source": {"dataset": "soundmind", "file": "annotations.jsonl", "line": i + 1}}
            out.write(json.dumps(record) + "\n")
            if i % 50 == 49:  # a copy: in the same split, or leaking into another
                copy = {**record, "id": f"copy-{i:07d}", "split": rng.choice(("train", "dev", "test"))}
                out.write(json.dumps(copy) + "\n")
            gold_out.write(json.dumps({"label": "entailed" if truth else "not entailed", "major_premise": major,
                                       "minor_premise": minor, "conclusion": conclusion}) + "\n")
    return manifest, gold


def measure(folder: Path, items: int) -> dict:
    manifest, gold = generate(folder, items)
    lines = sum(1 for _ in open(manifest))
    seconds, rss_mb = timed_child(["curate", str(manifest), "--gold", str(gold), "--out",
                                   str(folder / f"curated-{items}.jsonl"), "--json", str(folder / f"r-{items}.json")])
    report = json.loads((folder / f"r-{items}.json").read_text())
    return {"items": lines, "seconds": seconds, "items_per_s": lines / seconds, "rss_mb": rss_mb,
            "decisions": report["decisions"]}


def main() -> None:
    _, rows = measure_twice(__doc__, measure)
    print(f"{'items':>9} {'seconds':>8} {'items/s':>9} {'peak RSS MB':>12}  decisions")
    for r in rows:
        print(f"{r['items']:>9} {r['seconds']:>8.2f} {r['items_per_s']:>9,.0f} {r['rss_mb']:>12.1f}  {r['decisions']}")
    small, large = rows
    print(f"curate at {small['items']} items: {small['items_per_s']:,.0f} items/s (target >= 20,000); peak RSS "
          f"{small['rss_mb']:.0f} MB -> {large['rss_mb']:.0f} MB at {large['items']} items (target < 300 MB)")


if __name__ == "__main__":
    main()
