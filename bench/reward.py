"""Reward throughput: SoundMind-RL text rewards scored per second on CPU (target: at least 20,000 responses/s).

Responses are SoundMind-sized (a ~90-word chain of thought in <think> tags and a final answer) in the spellings
models produce, plus malformed ones; each is scored on format, answer and text length, as a text-output GRPO run
scores them. Prints responses/s for the library call and for verl's compute_score adapter.
"""

from __future__ import annotations

import random
import time

from soundmind_data.rl import compute_score
from soundmind_data.rl.reward import GroundTruth, score

COUNT = 50_000
TARGET = 20_000
WORDS = ("the major premise gives a general rule and the minor premise places the case under it so the conclusion "
         "follows unless some other reading breaks the link which none does here").split()
ENDINGS = ["Answer: entailed", "Answer: not entailed", "**Answer:** Not-Entailed.", "Answer: entailed.",
           "Answer: maybe", "", "Answer: not entailed\n\nAnswer: entailed"]


def responses(count: int, rng: random.Random) -> list[tuple[str, GroundTruth]]:
    made = []
    for _ in range(count):
        thought = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 140)))
        body = f"<think>{thought}</think>\n{rng.choice(ENDINGS)}" if rng.random() < 0.9 else f"{thought} {rng.choice(ENDINGS)}"
        made.append((body, GroundTruth(rng.randint(0, 1), reference_tokens=90)))
    return made


def rate(function, items) -> float:
    start = time.perf_counter()
    for response, truth in items:
        function(response, truth)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    items = responses(COUNT, random.Random(0))
    library = max(rate(lambda r, t: score(r, t), items) for _ in range(3))
    verl = max(rate(lambda r, t: compute_score("soundmind", r, t), items) for _ in range(3))
    print(f"reward: {COUNT} responses, best of 3 runs, 1 process")
    print(f"  score()          {library:>10,.0f} responses/s")
    print(f"  compute_score()  {verl:>10,.0f} responses/s  (verl adapter)")
    print(f"  target           {TARGET:>10,} responses/s  -> {'met' if min(library, verl) >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
