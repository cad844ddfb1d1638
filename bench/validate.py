"""Validation throughput and the ASR judges' WER on real-length answers: schema-only, --audio, and --asr whisper
against --asr pocketsphinx.

Builds two corpora with `soundmind-data synthesize --workers N` (Piper, 16 kHz FLAC at -23 LUFS, as a real corpus is
made), in one folder:

1. short: the first --distinct demo items, repeated under new ids up to --items items. `validate_manifest` is timed
   on it schema only, then with --audio; target for --audio: >= 300x real time on 2 cores.
2. long: --long-items items whose answers are about --answer-s seconds of speech (600 s, a real SoundMind answer's
   average length). The examples hold only five distinct answers (`examples/demo/soundmind-demo.jsonl` two,
   `examples/add/new-items.jsonl` three), each a few sentences of reasoning and an "Answer: ..." line; a long
   answer is their reasoning joined in turn, each item starting at another of them, until it reaches --answer-s
   seconds at Piper's speaking rate, then its own item's verdict line, once, as a real answer ends. (Keeping every
   part's verdict would put "Answer: entailed" every 55 words, a phrase Whisper tiny.en hears as "answer and
   tailed", and raise the WER by itself.) Each item keeps its demo question (about 30 s). The corpus is validated
   with --asr whisper (every file transcribed whole) and with --asr pocketsphinx (files over 120 s transcribed on
   a bounded sample of about 90 s), both with --workers and --out, whose manifest gives each file's WER.

Prints a table of items per second and audio seconds checked per wall second for the short corpus; then, per judge
on the long corpus, audio seconds per wall second (all files, questions and answers, counted) and the seconds it
actually transcribed; then the WER distribution (median, p90, max) per judge over the answer files (the
real-length files, the headline) and, apart, over the question files. Targets (issue 14): whisper >= 25x real time
on 2 cores, whole files, with a median answer WER <= 0.05. Each target line says "meets" or "MISSES".

Usage: python bench/validate.py [--items 200] [--distinct 4] [--long-items 4] [--answer-s 600] [--workers 2]
                                [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The SoundMind-format examples: the demo has only two distinct answers, the contributed items three more.
SOURCES = [ROOT / "examples" / "demo" / "soundmind-demo.jsonl", ROOT / "examples" / "add" / "new-items.jsonl"]
AUDIO_TARGET_X = 300
WHISPER_TARGET_X = 25
WHISPER_TARGET_MEDIAN_WER = 0.05
PIPER_WORDS_PER_S = 3.4  # en_US-joe-medium's speaking rate on these answers, pauses included (measured)
JUDGES = ("whisper", "pocketsphinx")


def ingest_examples(folder: Path) -> Path:
    from soundmind_data.engines.importers import ingest

    items = folder / "example-items.jsonl"
    ingest(SOURCES, fmt="soundmind", split="bench", out=items)
    return items


def synthesize(items: Path, out: Path, workers: int) -> Path:
    """`soundmind-data synthesize` as a user runs it; returns the manifest it writes."""
    done = subprocess.run([sys.executable, "-m", "soundmind_data", "synthesize", str(items), "--out", str(out),
                           "--workers", str(workers)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"synthesize failed:\n{done.stderr}")
    return out / "manifest.jsonl"


def short_corpus(folder: Path, examples: Path, items: int, distinct: int, workers: int) -> Path:
    """Synthesise `distinct` demo items, then write a manifest of `items` items cycling over their audio."""
    from soundmind_data.core.jsonl import AtomicWriter, iter_records

    seed = folder / "seed-items.jsonl"
    with AtomicWriter(seed) as out:
        for _, record in zip(range(distinct), iter_records(examples)):
            out.write_record(record)
    spoken = synthesize(seed, folder / "spoken", workers)
    originals = list(iter_records(spoken))
    corpus = spoken.with_name("corpus.jsonl")  # beside the synthesised manifest: audio paths are relative to its folder
    with AtomicWriter(corpus) as out:
        for number in range(items):
            out.write_record({**originals[number % len(originals)], "id": f"bench-{number:06d}"})
    return corpus


def reasoning_and_verdict(answer: str) -> tuple[str, str]:
    """An answer's reasoning and its final "Answer: ..." line ("" when it has none)."""
    reasoning, marker, verdict = answer.rpartition("Answer:")
    return (reasoning.strip(), marker + verdict) if marker else (answer.strip(), "")


def long_corpus(folder: Path, examples: Path, items: int, answer_s: float, workers: int) -> Path:
    """Synthesise `items` items whose answers join the examples' distinct reasonings up to `answer_s` seconds."""
    from soundmind_data.core.jsonl import AtomicWriter, iter_records

    records = list(iter_records(examples))
    reasonings = list(dict.fromkeys(reasoning_and_verdict(record["answer_text"])[0] for record in records
                                    if record.get("answer_text")))
    words = answer_s * PIPER_WORDS_PER_S
    seed = folder / "long-items.jsonl"
    with AtomicWriter(seed) as out:
        for number in range(items):
            record = records[number % len(records)]
            parts: list[str] = []
            # Starting each item at another reasoning makes the items differ (as many ways as there are reasonings).
            while sum(len(part.split()) for part in parts) < words:
                parts.append(reasonings[(number + len(parts)) % len(reasonings)])
            verdict = reasoning_and_verdict(record["answer_text"])[1]  # the item's own, so it matches its label
            answer = "\n\n".join(parts + [verdict]).strip()
            out.write_record({**record, "id": f"long-{number:03d}", "answer_text": answer})
    return synthesize(seed, folder / "long", workers)


def timed_validate(manifest: Path, **options) -> tuple[float, object]:
    """Wall seconds and report of one validation; any failure but a WER over the gate (which is what an ASR run
    measures) means the corpus is broken."""
    from soundmind_data.checks.manifest import validate_manifest

    started = time.perf_counter()
    report = validate_manifest(manifest, **options)
    wall = time.perf_counter() - started
    broken = [failure for failure in report.failures if failure["check"] not in ("asr_per", "asr_wer")]
    if broken:
        sys.exit(f"the generated corpus failed validation: {broken[:3]}")
    return wall, report


def measured_files(manifest: Path) -> dict[str, list[dict]]:
    """The audio objects of a validate --out manifest, per audio field, each with its `wer` and `wer_sample_s`."""
    from soundmind_data.core.corpus import AUDIO_TEXT
    from soundmind_data.core.jsonl import iter_records

    files: dict[str, list[dict]] = {field: [] for field in AUDIO_TEXT}
    for record in iter_records(manifest):
        for field in AUDIO_TEXT:
            if "wer" in record.get(field, {}):
                files[field].append(record[field])
    return files


def p90(values: list[float]) -> float:
    """The 90th percentile, interpolated between the values (as numpy's default)."""
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def meets(met: bool) -> str:
    return "meets" if met else "MISSES"


def judge_long_corpus(corpus: Path, judge: str, workers: int) -> dict:
    wall, report = timed_validate(corpus, asr=judge, workers=workers, out=corpus.with_name(f"validated-{judge}.jsonl"))
    return {"wall": wall, "report": report, "files": measured_files(Path(report.out))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200, help="items in the short corpus")
    parser.add_argument("--distinct", type=int, default=4, help="distinct demo items synthesised for it")
    parser.add_argument("--long-items", type=int, default=4, help="items with real-length answers, judged by ASR")
    parser.add_argument("--answer-s", type=float, default=600.0, help="seconds of speech in each long answer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the corpora in this folder and keep them")
    args = parser.parse_args()

    from soundmind_data.report.table import format_table

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        examples = ingest_examples(folder)
        started = time.perf_counter()
        corpus = short_corpus(folder, examples, args.items, args.distinct, args.workers)
        print(f"short corpus: {args.items} items ({args.distinct} distinct, synthesised in "
              f"{time.perf_counter() - started:.1f} s) -> {corpus}")
        started = time.perf_counter()
        long_manifest = long_corpus(folder, examples, args.long_items, args.answer_s, args.workers)
        print(f"long corpus: {args.long_items} items with ~{args.answer_s:.0f} s answers (synthesised in "
              f"{time.perf_counter() - started:.1f} s) -> {long_manifest}", flush=True)

        rows = []
        wall, report = timed_validate(corpus)
        rows.append(("schema only", report.items, wall, None))
        wall, report = timed_validate(corpus, audio=True, workers=args.workers)
        rows.append((f"--audio --workers {args.workers}", report.items, wall, report.audio_seconds))
        audio_x = report.audio_seconds / wall
        judged = {judge: judge_long_corpus(long_manifest, judge, args.workers) for judge in JUDGES}

    print()
    print(format_table(("short corpus", "items", "wall s", "items/s", "audio s", "audio s per wall s"), [
        (mode, items, f"{wall:.2f}", f"{items / wall:.1f}", "" if audio is None else f"{audio:.0f}",
         "" if audio is None else f"{audio / wall:.1f}") for mode, items, wall, audio in rows]))
    print(f"--audio: {audio_x:.0f}x real time ({meets(audio_x >= AUDIO_TARGET_X)} the {AUDIO_TARGET_X}x target on "
          f"{args.workers} workers)")

    print()
    throughput = []
    for judge, run in judged.items():
        transcribed = sum(audio["wer_sample_s"] for files in run["files"].values() for audio in files)
        report = run["report"]
        throughput.append((f"--asr {judge} --workers {args.workers}", report.audio_files, f"{report.audio_seconds:.0f}",
                           f"{transcribed:.0f}", f"{run['wall']:.1f}", f"{report.audio_seconds / run['wall']:.1f}"))
    print(format_table(("long corpus", "files", "audio s", "transcribed s", "wall s", "audio s per wall s"),
                       throughput))
    print()
    distribution = []
    for field, name in (("answer_audio", "answers"), ("question_audio", "questions")):
        for judge, run in judged.items():
            files = run["files"][field]
            wers = [audio["wer"] for audio in files]
            # the gate: PER where the file was heard whole, the WER of a sample otherwise
            gated = [audio["per"] if audio.get("per") is not None else audio["wer"] for audio in files]
            gate = run["report"].max_per
            pers = [audio["per"] for audio in files if audio.get("per") is not None]
            distribution.append((judge, name, len(files), f"{statistics.mean(a['duration_s'] for a in files):.0f}",
                                 f"{statistics.median(pers):.3f}" if pers else "n/a",
                                 f"{statistics.median(wers):.3f}", f"{p90(wers):.3f}", f"{max(wers):.3f}",
                                 f"{sum(value > gate for value in gated)} (> {gate:g})"))
    print(format_table(("judge", "files", "n", "mean s", "median PER", "median WER", "p90 WER", "max WER",
                        "over gate"), distribution))

    whisper = judged["whisper"]
    whisper_x = whisper["report"].audio_seconds / whisper["wall"]
    median_wer = statistics.median(audio["wer"] for audio in whisper["files"]["answer_audio"])
    print(f"\nwhisper, whole files: {whisper_x:.1f}x real time ({meets(whisper_x >= WHISPER_TARGET_X)} the "
          f"{WHISPER_TARGET_X}x target on {args.workers} workers); median answer WER {median_wer:.3f} "
          f"({meets(median_wer <= WHISPER_TARGET_MEDIAN_WER)} the <= {WHISPER_TARGET_MEDIAN_WER} target)")


if __name__ == "__main__":
    main()
