"""Voices: each engine's stage throughput against the same engine driven by a plain script, Kokoro packed against
Kokoro sentence by sentence, the default pool's corpus throughput next to joe alone, and the Whisper judge's WER per
voice on the same items.

Runs, in one go, on the same texts (the demo items' distinct questions and answers, speech-normalised):
(1) per engine (hibari heart, kokoro jf_alpha), a plain script that loads the engine with one thread and speaks every
    text sentence by sentence, against `soundmind-data synthesize --workers 1 --voices VOICE`: target >= 0.9x;
(2) Kokoro with several sentences per model call (what the engine does) against one call per sentence, in one
    process on the same sentences: target >= 1.5x;
(3) `synthesize --workers 2 --voices all` (the default pool, balanced by the plan) and `--voices piper:joe`, audio
    seconds per wall second;
(4) `validate --asr whisper` over (3)'s corpus and one corpus per default-pool voice: mean and max WER per voice
    and how many files pass the 0.3 gate (every default-pool voice must pass on clean text).
Usage: python bench/voices.py [--items N] [--judge-items N]   (defaults 6 and 4: Kokoro runs at about 0.6x real
time on one core, so 50 items per voice take hours on CPU)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from synth import bench_manifest, verdict  # noqa: E402  (the same distinct-texts corpus as bench/synth.py)

# Each engine as its own package's API gives it, one thread, sentence by sentence; prints seconds of audio.
RAW_SCRIPTS = {
    "hibari:heart": r"""
import json, sys
from hibari import Hibari
tts = Hibari("heart", threads=1)
print(sum(tts(text, seed=0).size for text in json.load(open(sys.argv[1]))) / 24000)
""",
    "kokoro:jf_alpha": r"""
import json, sys, numpy as np, onnxruntime as ort
from hibari import Hibari
from hibari.g2p import G2P
from soundmind_data.tts import kokoro
vocab, styles = kokoro._package_data()
options = ort.SessionOptions(); options.intra_op_num_threads = options.inter_op_num_threads = 1
session = ort.InferenceSession(str(kokoro.model_path()), options, providers=["CPUExecutionProvider"])
g2p = G2P()
samples = 0
for text in json.load(open(sys.argv[1])):
    for phonemes in map(g2p, Hibari.split_sentences(text)):
        tokens = [vocab[c] for c in phonemes if c in vocab]
        samples += session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": styles["jf_alpha"][len(tokens) - 1].reshape(1, 256), "speed": np.array([1.0], np.float32)})[0].size
print(samples / 24000)
""",
}

# Kokoro packed (several sentences per call, as the engine runs) against one call per sentence, same sentences.
PACKING_SCRIPT = r"""
import json, sys, time
from soundmind_data.text.speech_text import split_sentences
from soundmind_data.tts.kokoro import KokoroEngine
texts = json.load(open(sys.argv[1]))
engine = KokoroEngine("jf_alpha", "cpu")
engine.synthesize(["Warm up."])
walls = []
for packed in (True, False):
    started, samples = time.perf_counter(), 0
    for text in texts:
        chunks = split_sentences(text, engine.max_chars)
        if packed:
            samples += sum(audio.size for audio in engine.synthesize(chunks))
        else:  # one model call per sentence
            samples += sum(engine._speak(tokens).size for chunk in chunks for tokens in engine.tokens(chunk))
    walls.append((time.perf_counter() - started, samples / 24000))
print(json.dumps(walls))
"""
GATE = 0.3


def timed(command: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode not in (0, 1):
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr}")
    return wall, done.stdout + done.stderr


def audio_seconds(manifest: Path) -> float:
    return sum(record[field]["duration_s"] for record in map(json.loads, manifest.open())
               for field in ("question_audio", "answer_audio") if record.get(field))


def wer_per_voice(validated: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for record in map(json.loads, validated.open()):
        for field in ("question_audio", "answer_audio"):
            audio = record.get(field)
            if audio and audio.get("wer") is not None:
                found.setdefault(audio["voice"], []).append(audio["wer"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=6, help="Items with distinct questions for throughput (default 6).")
    parser.add_argument("--judge-items", type=int, default=4, help="Items per voice for the judge (default 4).")
    args = parser.parse_args()

    from soundmind_data.core.jsonl import iter_records
    from soundmind_data.text.speech_text import to_speech_text
    from soundmind_data.tts.voices import default_pool

    cli = [sys.executable, "-m", "soundmind_data"]
    with tempfile.TemporaryDirectory(prefix="bench-voices-") as tmp:
        folder = Path(tmp)
        manifest = bench_manifest(None, args.items, folder)
        texts = [to_speech_text(record[field]) for record in iter_records(manifest)
                 for field in ("question_text", "answer_text") if record[field]]
        (folder / "texts.json").write_text(json.dumps(texts))
        print(f"corpus: {len(texts)} texts, {sum(len(t.split()) for t in texts)} words", flush=True)

        print("\n(1) the stage against a plain script of the same engine, one worker")
        print(f"{'voice':<18} {'script s':>9} {'stage s':>8} {'audio s':>8} {'ratio':>6}")
        for voice, script in RAW_SCRIPTS.items():
            raw_wall, raw_out = timed([sys.executable, "-c", script, str(folder / "texts.json")])
            out = folder / f"one-{voice.replace(':', '-')}"
            stage_wall, _ = timed(cli + ["synthesize", str(manifest), "--out", str(out), "--voices", voice])
            ratio = raw_wall / stage_wall
            print(f"{voice:<18} {raw_wall:>9.1f} {stage_wall:>8.1f} {audio_seconds(out / 'manifest.jsonl'):>8.1f} "
                  f"{ratio:>5.2f}x  ({verdict(ratio >= 0.9)} the target >= 0.9x)", flush=True)

        print("\n(2) Kokoro: several sentences per model call against one call per sentence")
        _, packing_out = timed([sys.executable, "-c", PACKING_SCRIPT, str(folder / "texts.json")])
        (packed_wall, packed_audio), (single_wall, single_audio) = json.loads(packing_out.strip().splitlines()[-1])
        speedup = single_wall / packed_wall
        print(f"packed {packed_wall:.1f} s ({packed_audio:.1f} s of audio), sentence by sentence {single_wall:.1f} s "
              f"({single_audio:.1f} s): {speedup:.2f}x ({verdict(speedup >= 1.5)} the target >= 1.5x)", flush=True)

        print("\n(3) corpus throughput, --workers 2")
        pool_wall, _ = timed(cli + ["synthesize", str(manifest), "--out", str(folder / "pool"), "--voices", "all",
                                    "--workers", "2"])
        joe_wall, _ = timed(cli + ["synthesize", str(manifest), "--out", str(folder / "joe"), "--voices",
                                   "piper:joe", "--workers", "2"])
        for name, wall, out in (("default pool", pool_wall, "pool"), ("piper:joe alone", joe_wall, "joe")):
            seconds = audio_seconds(folder / out / "manifest.jsonl")
            print(f"{name:<16} {seconds:>7.1f} s of audio in {wall:>6.1f} s = {seconds / wall:>5.1f} audio s / s")

        print(f"\n(4) the Whisper judge per voice, {args.judge_items} items each (questions and answers)")
        judge_folder = folder / "judge"
        judge_folder.mkdir()
        judge_manifest = bench_manifest(None, args.judge_items, judge_folder)
        print(f"{'voice':<22} {'files':>5} {'mean WER':>9} {'max WER':>8} {'pass':>5}")
        for voice in default_pool():
            out = judge_folder / voice.name.replace(":", "-")
            timed(cli + ["synthesize", str(judge_manifest), "--out", str(out), "--voices", voice.name,
                         "--workers", "2"])
            timed(cli + ["validate", str(out / "manifest.jsonl"), "--asr", "whisper", "--workers", "2",
                         "--out", str(out / "validated.jsonl")])
            wers = wer_per_voice(out / "validated.jsonl").get(voice.name, [])
            passed = sum(wer <= GATE for wer in wers)
            print(f"{voice.name:<22} {len(wers):>5} {statistics.mean(wers):>9.3f} {max(wers):>8.3f} "
                  f"{passed:>2}/{len(wers)}  ({verdict(passed == len(wers))} the gate {GATE})", flush=True)


if __name__ == "__main__":
    main()
