"""The review page on a corpus of real size: does 10,000 items open and respond without freezing the browser?

Builds a validated corpus of --items items whose answers are about --answer-words words (a SoundMind answer is about
1,000: some 6 KB of text), each with question and answer audio (one short FLAC hard-linked under every item's
paths), a transcript of each (a word in fifty misheard) and a speech text where the written one has numbers; a
tenth of the items are dropped by a decisions file, half of those with a failed check. Then:

1. times `write_review` (the index, the detail files, the links) and prints the sizes of what it wrote;
2. opens the page in headless Chromium (Debian's, driven by Playwright) and times, in the page: loading until the
   first rows are drawn, filtering by a decision, sorting by WER, searching text, turning to the last page, and
   opening an item of the last detail file (its file loaded and drawn); and the JS heap it used.

Targets: the page shows its first rows within 2 s, each filter, sort or search redraws within 200 ms (a click
that feels instant), and an item opens within 500 ms. Each target line says "meets" or "MISSES".

Usage: python bench/review.py [--items 10000] [--answer-words 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fixture builders
from factories import item  # noqa: E402

from soundmind_data.review import ReviewSources, write_review  # noqa: E402

WORDS = ("the major premise gives a rule and the minor premise places the case under it so the conclusion follows "
         "unless another reading breaks the link which I checked in 1998 and again at 10:30").split()


def build_corpus(folder: Path, items: int, answer_words: int) -> tuple[Path, Path, Path]:
    """(curated manifest, decisions file, validated manifest) of a corpus of `items` items."""
    tone = folder / "tone.flac"
    soundfile.write(tone, (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32), 16000, format="FLAC")
    sha = hashlib.sha256(tone.read_bytes()).hexdigest()
    rng = np.random.default_rng(0)
    dropped = set(range(0, items, 10))
    with open(folder / "validated.jsonl", "wb") as validated, open(folder / "curated.jsonl", "wb") as curated, \
            open(folder / "decisions.jsonl", "wb") as decisions:
        for n in range(items):
            words = [WORDS[(n + k) % len(WORDS)] for k in range(answer_words)]
            heard = [w if rng.random() > 0.02 else "mm" for w in words]
            record = item(f"i{n:05d}", split=("train", "dev", "test")[n % 3], label=n % 2,
                          conclusion=f"Claim number {n}", answer=" ".join(words) + ". Answer: entailed.",
                          failed_checks=["asr_per"] if n in dropped and n % 20 == 0 else [])
            question = record["question_text"].lower().split()
            spoken = {"question": (question, question, None),
                      "answer": (words, heard, " ".join(words).replace("1998", "nineteen ninety-eight"))}
            for name, (said, got, speech_text) in spoken.items():
                path = folder / "audio" / record["split"] / record["id"] / f"{name}.flac"
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(tone, path)
                record[f"{name}_audio"] = {
                    "path": path.relative_to(folder).as_posix(), "sha256": sha, "sample_rate": 16000,
                    "duration_s": 0.5, "loudness_lufs": -23.0, "wer": round(float(rng.random()) / 10, 4),
                    "wer_sample_s": 0.5, "transcript": " ".join(got),
                    "heard_edits": [[k, k + 1, a] for k, (a, b) in enumerate(zip(said, got)) if a != b],
                    **({"speech_text": speech_text} if speech_text else {})}
            validated.write(orjson.dumps(record) + b"\n")
            if n in dropped:
                reasons = ["asr_per"] if record["failed_checks"] else ["duplicate"]
                decisions.write(orjson.dumps({"id": record["id"], "split": record["split"], "line": n + 1,
                                              "decision": "drop", "reasons": reasons}) + b"\n")
            else:
                curated.write(orjson.dumps(record) + b"\n")
    return folder / "curated.jsonl", folder / "decisions.jsonl", folder / "validated.jsonl"


# Run in the page: each returns the milliseconds from the change until the table was drawn again.
_CHANGE = """([selector, value]) => { const field = document.querySelector('#filters ' + selector);
  const start = performance.now(); field.value = value; field.dispatchEvent(new Event('input', {bubbles: true}));
  return performance.now() - start; }"""
_CLICK = """(selector) => { const start = performance.now(); document.querySelector(selector).click();
  return performance.now() - start; }"""


def time_page(page_file: Path, items: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import find_chromium

    executable = find_chromium()
    if executable is None:
        sys.exit("no chromium on PATH: make setup installs Debian's chromium")
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        start = time.perf_counter()
        page.goto(page_file.as_uri())
        page.wait_for_selector("#items tbody tr.item")
        figures["first rows drawn (load)"] = (time.perf_counter() - start) * 1000
        figures["filter by decision"] = page.evaluate(_CHANGE, ["select[name=decision]", "drop"])
        figures["filter back to all"] = page.evaluate(_CHANGE, ["select[name=decision]", ""])
        figures["sort by WER"] = page.evaluate(_CLICK, "#items thead th:nth-child(9) button")
        figures["search text"] = page.evaluate(_CHANGE, ["input[name=text]", "claim number 99"])
        page.evaluate(_CHANGE, ["input[name=text]", ""])
        last_page = 0.0
        while page.locator("#next").is_enabled():
            last_page = max(last_page, page.evaluate(_CLICK, "#next"))
        figures["turn a page (slowest)"] = last_page
        last = page.locator("#items tbody tr.item").last
        start = time.perf_counter()
        last.click()
        page.wait_for_selector("tr.detail .spoken")
        figures["open an item (its detail file loaded)"] = (time.perf_counter() - start) * 1000
        figures["rows in the document"] = page.locator("#items tbody tr.item").count()
        figures["JS heap (MB)"] = page.evaluate("performance.memory.usedJSHeapSize") / 1e6
        shown = page.locator("#count").inner_text()
        browser.close()
    if errors or not shown.endswith(f"of {items} items"):
        sys.exit(f"the page failed: {errors or shown}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--answer-words", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="Build here and keep it (default: a temp folder, removed).")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-review-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        curated, decisions, validated = build_corpus(folder, args.items, args.answer_words)
        print(f"corpus: {args.items} items, answers of {args.answer_words} words, built in "
              f"{time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        report = write_review(ReviewSources(curated, decisions=[decisions], validated=validated, plots=[]),
                              folder / "review")
        seconds = time.perf_counter() - start
        data = folder / "review" / "data"
        details = sorted(data.glob("details-*.js"))
        print(f"write_review: {seconds:.1f} s ({report.items / seconds:,.0f} items/s), {report.audio_linked} audio "
              f"links; index.js {(data / 'index.js').stat().st_size / 1e6:.1f} MB, {len(details)} detail files "
              f"{sum(p.stat().st_size for p in details) / 1e6:.0f} MB (largest "
              f"{max(p.stat().st_size for p in details) / 1e6:.1f} MB)")
        figures = time_page(folder / "review" / "index.html", report.items)
        for name, value in figures.items():
            print(f"  {name:40s} {value:10.1f}")
        targets = [("first rows drawn (load)", 2000), ("filter by decision", 200), ("filter back to all", 200),
                   ("sort by WER", 200), ("search text", 200), ("turn a page (slowest)", 200),
                   ("open an item (its detail file loaded)", 500)]
        for name, limit in targets:
            verdict = "meets" if figures[name] <= limit else "MISSES"
            print(f"target {name} <= {limit} ms: {figures[name]:.0f} ms, {verdict}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
