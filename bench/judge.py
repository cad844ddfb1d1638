"""The Whisper judge on clean audio of every default-pool voice and on planted defects: false rejects, defects caught,
the phoneme error rates that calibrate `max_per`, and the judge's speed.

Speaks the demo and example items (distinct questions, distinct answers) in every voice of the default pool with
`soundmind-data synthesize --voices VOICE`, then plants defects in copies of the clean files, each judged against
the item's own text:
  cut        15 % of the speech cut out of the middle
  half       speech stopping halfway (the rest silence)
  other-q    another item's question audio (the same template, other premises)
  other-a    another item's answer audio (an answer spoken for another item)
  changed    the question spoken with three content words of its premises changed
  silence    silence as long as the clean file
Each corpus goes through `soundmind-data validate --asr whisper --workers N --out` (second opinions included). Prints
per voice the clean files passed, per defect the files caught, and for each kind the PER and the item's-own-span PER
(median, max or min), so the gate can be set between them; then audio seconds judged per wall second.

Usage: python bench/judge.py [--items 6] [--workers 2] [--voices all|NAME,...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "examples" / "demo" / "soundmind-demo.jsonl", ROOT / "examples" / "add" / "new-items.jsonl"]
DEFECTS = ("cut", "half", "other-q", "other-a", "changed", "silence")
SPEED_TARGET_X = 25


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundmind_data", *args], cwd=ROOT, capture_output=True, text=True)


def distinct_items(folder: Path, count: int) -> list[dict]:
    """Items whose questions and answers are all distinct (the demo repeats its answers)."""
    from soundmind_data.core.jsonl import iter_records
    from soundmind_data.engines.importers import ingest

    ingest(SOURCES, fmt="soundmind", split="bench", out=folder / "all.jsonl")
    chosen, questions, answers = [], set(), set()
    for record in iter_records(folder / "all.jsonl"):
        if record["question_text"] in questions or record.get("answer_text") in answers:
            continue
        questions.add(record["question_text"])
        answers.add(record.get("answer_text"))
        chosen.append({**record, "split": "test"})
        if len(chosen) == count:
            break
    return chosen


def changed_question(item: dict) -> str:
    """The question with three content words of its premises replaced by others."""
    from soundmind_data.text.template import render_question

    swaps = iter(["violin", "harbour", "seventeen", "purple", "engine", "winter"])
    words = item["major_premise"].split()
    longest = sorted(range(len(words)), key=lambda i: -len(words[i].strip(".,")))[:3]
    for index in longest:
        words[index] = next(swaps)
    return render_question(" ".join(words), item["minor_premise"], item["conclusion"])


def write_audio(corpus: Path, relative: str, samples: np.ndarray, rate: int) -> dict:
    path = corpus / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, format="FLAC", subtype="PCM_16")
    data = path.read_bytes()
    return {"path": relative, "sha256": hashlib.sha256(data).hexdigest(), "sample_rate": rate, "channels": 1,
            "duration_s": round(len(samples) / rate, 3)}


def plant(corpus: Path, clean: list[dict], changed: dict[str, dict], kind: str) -> Path:
    """A manifest of `clean`'s items (audio inside `corpus`) with one defect planted in each item's question (answer for
    other-a), judged against the item's own text."""
    rows = []
    for number, item in enumerate(clean):
        other = clean[(number + 1) % len(clean)]
        field = "answer_audio" if kind == "other-a" else "question_audio"
        audio, rate = soundfile.read(corpus / item[field]["path"], dtype="float32")
        if kind == "cut":
            cut = int(0.15 * len(audio))
            start = (len(audio) - cut) // 2
            audio = np.concatenate([audio[:start], audio[start + cut:]])
        elif kind == "half":
            audio = np.concatenate([audio[:len(audio) // 2], np.zeros(len(audio) - len(audio) // 2, np.float32)])
        elif kind in ("other-q", "other-a"):
            audio, rate = soundfile.read(corpus / other[field]["path"], dtype="float32")
        elif kind == "changed":
            audio, rate = soundfile.read(corpus / changed[item["id"]]["question_audio"]["path"], dtype="float32")
        elif kind == "silence":
            audio = np.zeros_like(audio)
        planted = {**item, field: {**item[field], **write_audio(corpus, f"planted/{kind}/{item['id']}.flac",
                                                                  audio, rate)}}
        rows.append(planted)
    manifest = corpus / f"planted-{kind}.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


def judged(manifest: Path, workers: int) -> tuple[list[dict], float]:
    """The validated items and the wall seconds of `validate --asr whisper`."""
    out = manifest.with_name(manifest.stem + ".judged.jsonl")
    started = time.monotonic()
    done = cli("validate", str(manifest), "--asr", "whisper", "--workers", str(workers), "--out", str(out))
    wall = time.monotonic() - started
    if done.returncode not in (0, 1) or not out.exists():
        sys.exit(f"validate failed on {manifest}:\n{done.stderr}")
    return [json.loads(line) for line in out.open()], wall


def figures(values: list[float]) -> str:
    values = [value for value in values if value is not None]
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.3f}, min {min(values):.3f}, max {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=6, help="Distinct items per voice (default 6).")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes (default 2).")
    parser.add_argument("--voices", default="all", help="Voices to judge (default: the default pool).")
    args = parser.parse_args()
    from soundmind_data.tts.voices import resolve_all

    voices = resolve_all(tuple(args.voices.split(",")))
    per: dict[str, list[float]] = {}
    own: dict[str, list[float]] = {}
    caught: dict[str, list[bool]] = {}
    judged_s = wall_s = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-judge-") as tmp:
        folder = Path(tmp)
        items = distinct_items(folder, args.items)
        (folder / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
        changed_items = [{**item, "id": item["id"] + "-changed", "question_text": changed_question(item),
                          "answer_text": None} for item in items]
        (folder / "changed.jsonl").write_text("".join(json.dumps(item) + "\n" for item in changed_items))
        print(f"{len(items)} items per voice, {len(voices)} voices, defects: {', '.join(DEFECTS)}", flush=True)
        for voice in voices:
            corpus = folder / voice.name.replace(":", "-")
            for source in ("items", "changed"):
                done = cli("synthesize", str(folder / f"{source}.jsonl"), "--out", str(corpus), "--voices", voice.name,
                           "--workers", str(args.workers))
                if done.returncode != 0:
                    sys.exit(f"synthesize failed for {voice.name}:\n{done.stderr}")
                (corpus / "manifest.jsonl").rename(corpus / f"{source}-spoken.jsonl")
            clean = [json.loads(line) for line in (corpus / "items-spoken.jsonl").open()]
            changed = {item["id"].removesuffix("-changed"): item
                       for item in map(json.loads, (corpus / "changed-spoken.jsonl").open())}
            manifests = {"clean": corpus / "items-spoken.jsonl",
                         **{kind: plant(corpus, clean, changed, kind) for kind in DEFECTS}}
            for kind, manifest in manifests.items():
                results, wall = judged(manifest, args.workers)
                fields = ("question_audio", "answer_audio") if kind == "clean" else \
                    (("answer_audio",) if kind == "other-a" else ("question_audio",))
                for item in results:
                    for field in fields:
                        audio = item[field]
                        per.setdefault(kind, []).append(audio.get("per"))
                        own.setdefault(kind, []).append(audio.get("own_per"))
                        failed = "asr_per" in item["failed_checks"] or "asr_wer" in item["failed_checks"]
                        caught.setdefault(f"{kind} {voice.name}" if kind == "clean" else kind, []).append(failed)
                if kind == "clean":
                    judged_s += sum(item[f]["duration_s"] for item in results for f in fields)
                    wall_s += wall
            rejects = caught[f"clean {voice.name}"]
            print(f"{voice.name:<22} clean files failed by the judge: {sum(rejects)}/{len(rejects)}", flush=True)

    print(f"\n{'kind':<9} {'caught':>9}   PER / the item's own span's PER")
    for kind in ("clean", *DEFECTS):
        flags = [flag for key, values in caught.items() if key.split()[0] == kind for flag in values]
        print(f"{kind:<9} {sum(flags):>4}/{len(flags):<4}   PER {figures(per.get(kind, []))}; "
              f"own {figures(own.get(kind, []))}")
    print(f"\nspeed: {judged_s:.0f} s of clean audio judged in {wall_s:.0f} s = {judged_s / wall_s:.1f}x real time "
          f"(target >= {SPEED_TARGET_X}x on 2 cores)")


if __name__ == "__main__":
    main()
