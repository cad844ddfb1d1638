"""`soundmind-data train`: a GRPO run from a YAML config, as a library call (the CLI prints what it returns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import iter_records
from soundmind_data.core.stage import Progress, SILENT, StageReport, Summary
from soundmind_data.rl.config import TrainConfig

SHOWN = ("reward", "format", "answer", "text_length", "audio_format", "audio_length", "kl", "response_length")
WINDOW = 3  # steps averaged at each end of a run for its learning line


@dataclass
class TrainReport(StageReport):
    config: TrainConfig
    prompts: int
    metrics_path: Path
    checkpoint: Path
    start_step: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> Summary:
        if not self.history:
            return Summary(err=[f"train: already at step {self.start_step} of {self.config.steps}; nothing to do",
                                learning_line(list(iter_records(self.metrics_path)))])
        first, last = self.history[0], self.history[-1]
        return Summary(err=[f"train: steps {first['step']}-{last['step']}, mean reward {first['reward']:.3f} -> "
                            f"{last['reward']:.3f}; metrics -> {self.metrics_path}; checkpoint -> {self.checkpoint}",
                            learning_line(list(iter_records(self.metrics_path)))])


def step_line(metrics: dict[str, Any], steps: int) -> str:
    values = "  ".join(f"{name} {metrics[name]:.3f}" for name in SHOWN if name in metrics)
    return f"step {metrics['step']}/{steps} {metrics['phase']:<4}  {values}"


def learning_line(metrics: list[dict[str, Any]]) -> str:
    """What the whole run (every line of its metrics.jsonl, resumed parts included) learned: the format reward and
    the mean reward over its first WINDOW steps and its last WINDOW (fewer, overlapping, in a shorter run)."""
    window = min(WINDOW, len(metrics))
    first, last = metrics[:window], metrics[-window:]

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return sum(row[key] for row in rows) / len(rows)

    gain = mean(last, "reward") - mean(first, "reward")
    ends = (f"last {window} steps", f"first {window}") if window > 1 else ("last step", "first")
    return (f"training: format reward {mean(first, 'format'):.2f} -> {mean(last, 'format'):.2f}, mean reward of the "
            f"{ends[0]} {mean(last, 'reward'):.2f} vs the {ends[1]} {mean(first, 'reward'):.2f} ({gain:+.2f}), over "
            f"{len(metrics)} step{'s' * (len(metrics) != 1)}")


def train(config: Path, *, resume: bool = False, progress: Progress = SILENT,
          on_step: Callable[[str], None] | None = None, **overrides: Any) -> TrainReport:
    """Train from `config` (overrides: data, out, model, device, mode, steps, sft_steps, seed). `progress` is told
    what is trained (a note) and advances once per step; `on_step` gets each step's metrics line, the command's
    output (stdout), which is not progress."""
    settings = TrainConfig.from_yaml(config, **overrides)
    try:  # torch and transformers load only once the config is known good
        from soundmind_data.rl.grpo import CHECKPOINT, Trainer
    except ImportError as exc:
        raise UsageError(f"train needs the 'train' extra (pip install 'soundmind-data[train]'): {exc}") from None

    trainer = Trainer(settings, resume=resume)
    cold_start = (f", {settings.sft_steps} supervised step{'s' * (settings.sft_steps != 1)} then GRPO"
                  if settings.sft_steps else "")
    progress.note(f"train: {len(trainer.prompts)} prompts ({settings.mode}), model {settings.model} on "
                  f"{settings.device}{cold_start}; metrics -> {trainer.metrics_path}")
    report = TrainReport(settings, len(trainer.prompts), trainer.metrics_path, trainer.out / CHECKPOINT, trainer.step)
    progress.start("train", unit="step", total=settings.steps)
    progress.advance(trainer.step)

    def each_step(metrics: dict[str, Any]) -> None:
        progress.advance()
        if on_step:
            on_step(step_line(metrics, settings.steps))

    report.history = trainer.run(each_step)
    return report
