"""Companion RL: the SoundMind-RL reward, adapters for verl / TRL / OpenRLHF, and a minimal GRPO trainer.

`soundmind_data.rl.compute_score` is verl's custom reward function. Importing this package needs numpy only; the
trainer (`soundmind_data.rl.grpo`) needs the `train` extra (torch, transformers, tokenizers).
"""

from soundmind_data.rl.adapters import compute_score, reward_func, trl_reward
from soundmind_data.rl.reward import RewardBreakdown, RewardWeights, score

__all__ = ["compute_score", "reward_func", "trl_reward", "RewardBreakdown", "RewardWeights", "score"]
