"""GRPO step time of the tiny CPU model on the toy task (the learning test's settings) and on SoundMind-length prompts.

Prints the median seconds per step (sampling, scoring and the update; after one warm-up step) and completions per
second. Run it serially on an idle machine for figures worth comparing.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from soundmind_data.jsonl import AtomicWriter
from soundmind_data.rl import tiny
from soundmind_data.rl.config import TrainConfig
from soundmind_data.rl.grpo import Trainer
from soundmind_data.template import render_question

STEPS = 10


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


def bench(name: str, items: list[dict], folder: Path, **settings) -> None:
    data = write(folder / f"{name}.jsonl", items)
    config = TrainConfig(data=str(data), out=str(folder / name), steps=STEPS + 1, checkpoint_every=1000, seed=0, **settings)
    history = Trainer(config).run()[1:]
    per_step = statistics.median(m["seconds"] for m in history)
    samples = config.prompts_per_step * config.group_size
    print(f"  {name:<16} {per_step:7.3f} s/step  {samples / per_step:7.1f} completions/s  "
          f"({config.prompts_per_step}x{config.group_size} completions, up to {config.max_new_tokens} new tokens, "
          f"mean length {statistics.mean(m['response_length'] for m in history):.1f})")


def main() -> None:
    print(f"grpo: tiny model (2-layer Llama, hidden 64), median of {STEPS} steps, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bench("toy", tiny.toy_items(32), folder, prompts_per_step=8, group_size=8, max_new_tokens=4,
              learning_rate=3e-3, response_prefix=tiny.TOY_PREFIX)
        bench("soundmind-like", soundmind_like(16), folder, prompts_per_step=4, group_size=4, max_new_tokens=64,
              response_prefix="<think>")


if __name__ == "__main__":
    main()
