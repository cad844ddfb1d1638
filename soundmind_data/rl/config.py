"""The settings of a training run, read from YAML and checked against schemas/train-config.schema.json.

Kept apart from the trainer so that a bad config is refused before torch and transformers are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundmind_data.core.errors import UsageError
from soundmind_data.rl.prompts import ALIASES
from soundmind_data.rl.reward import RewardWeights
from soundmind_data.rl.tiny import TINY_SIZE

TINY = "tiny"
TINY_OMNI = "tiny-omni"
TINY_MODELS = (TINY, TINY_OMNI)  # built here from `tiny_model`, not loaded
TEXT_ONLY = (TINY,)  # policies that cannot hear: refused in the audio modes


@dataclass
class TrainConfig:
    """One training run; the YAML config's keys (schemas/train-config.schema.json). Relative paths are from the
    current directory."""

    data: str
    out: str = "runs/grpo"
    model: str = TINY
    device: str = "cpu"
    mode: str = "text"
    split: str | None = "train"  # a manifest's items of this split only (never dev or test); None: every item
    steps: int = 50  # every step, supervised ones included
    sft_steps: int = 0  # the first steps: supervised on the data's reference answers (a cold start), then GRPO
    prompts_per_step: int = 4
    group_size: int = 4
    max_new_tokens: int = 32
    temperature: float = 1.0
    learning_rate: float = 1e-3
    sft_learning_rate: float | None = None  # of the supervised steps; None: learning_rate
    weight_decay: float = 0.0
    clip_eps: float = 0.2
    kl_beta: float = 0.04
    updates_per_batch: int = 1  # optimisation passes over each step's batch (GRPO's mu; a supervised step's too)
    max_grad_norm: float = 1.0
    seed: int = 0
    response_prefix: str = ""  # forced start of every response (e.g. "<think>"), part of what is scored
    instruction: str = ""  # read after each question (in audio mode, the only text): how to lay out the reply
    checkpoint_every: int = 10
    reward_weights: dict[str, float] = field(default_factory=dict)
    tiny_model: dict[str, int] = field(default_factory=dict)  # hidden_size, layers, heads of tiny / tiny-omni

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Read and validate a YAML config; `overrides` (CLI options) that are not None replace its values."""
        from soundmind_data.core import yamlfile

        path = Path(path)
        values = yamlfile.load(path) or {}
        if not isinstance(values, dict):
            raise UsageError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        yamlfile.check(path, "train-config", values)
        if values.get("model", TINY) in TINY_MODELS:
            _check_tiny_size(path, values.get("tiny_model", {}))
        try:
            return cls(**values)
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None

    def __post_init__(self) -> None:
        self.mode = ALIASES.get(self.mode, self.mode)  # one spelling, so that a resumed run compares equal
        if self.model in TEXT_ONLY and self.mode != "text":
            raise UsageError(f"mode: {self.mode} needs a policy that hears the question, and model {self.model} reads "
                             f"text only; use --model {TINY_OMNI} (a tiny Qwen2.5-Omni thinker, CPU) or "
                             "Qwen/Qwen2.5-Omni-7B (GPU)")

    def phase(self, step: int) -> str:
        """What step `step` (1-based) does: "sft" for the first `sft_steps`, then "grpo"."""
        return "sft" if step <= self.sft_steps else "grpo"

    def learning_rate_of(self, phase: str) -> float:
        return (self.sft_learning_rate or self.learning_rate) if phase == "sft" else self.learning_rate

    @property
    def weights(self) -> RewardWeights:
        return RewardWeights.from_mapping(self.reward_weights)


def _check_tiny_size(path: Path, size: dict[str, int]) -> None:
    """Attention splits hidden_size into `heads` heads, and rotary embeddings split each head in two halves."""
    hidden_size, heads = size.get("hidden_size", TINY_SIZE["hidden_size"]), size.get("heads", TINY_SIZE["heads"])
    head_size, remainder = divmod(hidden_size, heads)
    if remainder or head_size % 2:
        raise UsageError(f"{path}: tiny_model.hidden_size: {hidden_size} must be tiny_model.heads ({heads}) times an "
                         "even number (the size of each attention head, which rotary embeddings split in two)")
