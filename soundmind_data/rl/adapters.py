"""The SoundMind-RL reward in the shapes three RL frameworks call it.

- verl: `compute_score(data_source, solution_str, ground_truth, extra_info=None)`, set as
  `custom_reward_function.path=<this file's package>/adapters.py custom_reward_function.name=compute_score`;
- TRL: `trl_reward(prompts, completions, **kwargs)`, passed as `GRPOTrainer(reward_funcs=[trl_reward])`, ground truth
  read from the dataset column `ground_truth` (or `label`);
- OpenRLHF: `reward_func(queries, prompts, labels)` in a file given to `--remote_rm_url`, with `--label_key`.

Ground truth may be a label (0/1, "entailed", "not-entailed"), a mapping with `label` and optional reference lengths
(see reward.GroundTruth), or that mapping as a JSON string (parquet columns are often plain strings); with our verl
export, the reference answer's length comes from `extra_info.answer_text`. The model's
audio, when it speaks, comes as a path in `extra_info["response_audio"]` (verl) or the `response_audio` column (TRL).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from soundmind_data.rl.reward import COMPONENTS, GroundTruth, RewardWeights, count_tokens, score

DEFAULT_WEIGHTS = RewardWeights()


def _ground_truth(value: Any, extra: Mapping[str, Any] | None = None) -> GroundTruth:
    """The ground truth, completed from `extra_info`: reference lengths may travel beside the label, and our verl
    export carries the reference answer as `extra_info.answer_text` (its words are the text-length reference)."""
    truth = GroundTruth.parse(value)
    if not extra:
        return truth
    tokens = truth.reference_tokens
    if tokens is None:
        tokens = extra.get("reference_tokens") or (count_tokens(extra["answer_text"]) if extra.get("answer_text") else None)
    seconds = truth.reference_seconds if truth.reference_seconds is not None else extra.get("reference_seconds")
    return GroundTruth(truth.label, tokens, seconds)


def _completion_text(completion: Any) -> str:
    """TRL passes plain strings, or for chat datasets a list of messages whose last one is the assistant's."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **_: Any) -> dict[str, float]:
    """verl's custom reward function: the weighted total as `score`, each applicable component beside it.

    Which components apply depends on the dataset, not the sample, so every sample of a run returns the same keys (as
    verl's reward manager needs to stack them).
    """
    extra_info = extra_info or {}
    audio = extra_info.get("response_audio")
    result = score(solution_str, _ground_truth(ground_truth, extra_info), audio=audio,
                   audio_expected=bool(extra_info.get("audio_expected")), weights=DEFAULT_WEIGHTS)
    values = {"score": result.total}
    values.update({name: getattr(result, name) for name in COMPONENTS if getattr(result, name) is not None})
    return values


def trl_reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
    """TRL `reward_funcs` entry: one total per completion; dataset columns arrive as keyword lists."""
    truths = kwargs.get("ground_truth", kwargs.get("label"))
    if truths is None:
        raise ValueError("the dataset needs a 'ground_truth' or 'label' column for the SoundMind reward")
    audios = kwargs.get("response_audio") or [None] * len(completions)
    return [score(_completion_text(c), _ground_truth(t), audio=a, weights=DEFAULT_WEIGHTS).total
            for c, t, a in zip(completions, truths, audios)]


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]) -> dict[str, Any]:
    """OpenRLHF `--remote_rm_url` file entry: queries are prompt + response, so the response is what follows the prompt.

    Returns OpenRLHF's dict: `rewards` (the total), `scores` (the total over its maximum, in [0, 1], for dynamic
    filtering) and `extra_logs` (each component).
    """
    import torch

    results = []
    for query, prompt, label in zip(queries, prompts, labels):
        response = query[len(prompt):] if query.startswith(prompt) else query
        results.append(score(response, _ground_truth(label), weights=DEFAULT_WEIGHTS))
    rewards = torch.tensor([r.total for r in results], dtype=torch.float32)
    scores = torch.tensor([r.total / r.best_total(DEFAULT_WEIGHTS) for r in results], dtype=torch.float32)
    logged = [name for name in COMPONENTS if results and getattr(results[0], name) is not None]
    extra = {name: torch.tensor([getattr(r, name) or 0.0 for r in results], dtype=torch.float32) for name in logged}
    return {"rewards": rewards, "scores": scores, "extra_logs": extra}
