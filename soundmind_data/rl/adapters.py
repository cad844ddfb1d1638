"""The SoundMind-RL reward in the shapes three RL frameworks call it.

- verl: `compute_score(data_source, solution_str, ground_truth, extra_info=None)`, set as
  `custom_reward_function.path=<this file's package>/adapters.py custom_reward_function.name=compute_score`;
- TRL: `trl_reward(prompts, completions, **kwargs)`, passed as `GRPOTrainer(reward_funcs=[trl_reward])`, ground truth
  read from the dataset column `ground_truth` (or `label`), reference lengths from an `extra_info` column if any;
- OpenRLHF: `reward_func(queries, prompts, labels)` in a file given to `--remote_rm_url`, with `--label_key`.

Each takes an optional keyword `weights`, a mapping of component -> weight (reward.RewardWeights; the others keep
SoundMind-RL's defaults): in verl `custom_reward_function.reward_kwargs.weights.answer=3.0`; for TRL or OpenRLHF a
`functools.partial` or a two-line wrapper.

Ground truth may be a label (0/1, "entailed", "not-entailed"), a mapping with `label` and optional reference lengths
(see reward.GroundTruth), or that mapping as a JSON string (parquet columns are often plain strings); with our verl
export, the reference answer's lengths come from `extra_info.answer_text` (its words) and
`extra_info.answer_duration_s` (its audio's seconds). The model's audio, when it speaks, comes as a path in
`extra_info["response_audio"]` (verl) or the `response_audio` column (TRL).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from soundmind_data.rl.reward import COMPONENTS, GroundTruth, RewardWeights, score

WeightMapping = Mapping[str, float]  # component -> weight, as a caller passes it


def _completion_text(completion: Any) -> str:
    """TRL passes plain strings, or for chat datasets a list of messages whose last one is the assistant's."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  weights: WeightMapping | None = None, **_: Any) -> dict[str, float]:
    """verl's custom reward function: the weighted total as `score`, each applicable component beside it.

    Which components apply depends on the dataset, not the sample, so every sample of a run returns the same keys (as
    verl's reward manager needs to stack them). Other keywords are ignored: newer verl reward loops pass their own
    (a reward router address, a tokenizer) to every custom function.
    """
    extra_info = extra_info or {}
    audio = extra_info.get("response_audio")
    result = score(solution_str, GroundTruth.parse(ground_truth).completed(extra_info), audio=audio,
                   audio_expected=bool(extra_info.get("audio_expected")), weights=RewardWeights.from_mapping(weights))
    values = {"score": result.total}
    values.update({name: getattr(result, name) for name in COMPONENTS if getattr(result, name) is not None})
    return values


def trl_reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), *,
               weights: WeightMapping | None = None, **kwargs: Any) -> list[float]:
    """TRL `reward_funcs` entry: one total per completion; dataset columns arrive as keyword lists."""
    truths = kwargs.get("ground_truth", kwargs.get("label"))
    if truths is None:
        raise ValueError("the dataset needs a 'ground_truth' or 'label' column for the SoundMind reward")
    reward_weights = RewardWeights.from_mapping(weights)
    audios = kwargs.get("response_audio") or [None] * len(completions)
    extras = kwargs.get("extra_info") or [None] * len(completions)
    return [score(_completion_text(c), GroundTruth.parse(t).completed(e), audio=a, weights=reward_weights).total
            for c, t, a, e in zip(completions, truths, audios, extras)]


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], *,
                weights: WeightMapping | None = None) -> dict[str, Any]:
    """OpenRLHF `--remote_rm_url` file entry: queries are prompt + response, so the response is what follows the prompt.

    Returns OpenRLHF's dict: `rewards` (the total), `scores` (the total over its maximum, in [0, 1], for dynamic
    filtering) and `extra_logs` (each component).
    """
    import torch

    reward_weights = RewardWeights.from_mapping(weights)
    results = []
    for query, prompt, label in zip(queries, prompts, labels):
        response = query[len(prompt):] if query.startswith(prompt) else query
        results.append(score(response, GroundTruth.parse(label), weights=reward_weights))
    rewards = torch.tensor([r.total for r in results], dtype=torch.float32)
    # every applicable weight at 0 leaves nothing to reach: such a response scores 0, not 0 / 0
    scores = torch.tensor([r.total / best if (best := r.best_total(reward_weights)) else 0.0 for r in results],
                          dtype=torch.float32)
    logged = [name for name in COMPONENTS if results and getattr(results[0], name) is not None]
    extra = {name: torch.tensor([getattr(r, name) or 0.0 for r in results], dtype=torch.float32) for name in logged}
    return {"rewards": rewards, "scores": scores, "extra_logs": extra}
