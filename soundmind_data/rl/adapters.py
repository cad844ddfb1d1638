"""The SoundMind-RL reward in the shapes three RL frameworks call it.

- verl: `compute_score(data_source, solution_str, ground_truth, extra_info=None)`, set (verl 0.9.1) as
  `reward.custom_reward_function.path=pkg://soundmind_data.rl.adapters` (or this file's path)
  `reward.custom_reward_function.name=compute_score` (the top-level `custom_reward_function.*` is a legacy alias that
  verl migrates);
- TRL: `trl_reward(prompts, completions, **kwargs)`, passed as `GRPOTrainer(reward_funcs=[trl_reward])`, ground truth
  read from the dataset column `ground_truth` (or `label`, or verl's `reward_model`), reference lengths from an
  `extra_info` column if any;
- OpenRLHF: `reward_func(queries, prompts, labels)` in a file given to `--reward.remote_url` (`--remote_rm_url` in
  older releases; a file whose only line is `from soundmind_data.rl import reward_func`), with
  `--data.label_key extra_info` on our verl export (the label and both reference lengths) or
  `--data.label_key reward_model` (the label only: no text-length component).

Each takes an optional keyword `weights`, a mapping of component -> weight (reward.RewardWeights; the others keep
SoundMind-RL's defaults): in verl `+reward.custom_reward_function.reward_kwargs.weights.answer=3.0` (Hydra's append
form: verl's config does not declare `reward_kwargs`, so Hydra adds a key under it only with `+`); for TRL or OpenRLHF a
`functools.partial` or a two-line wrapper.

Ground truth may be a label (0/1, "entailed", "not-entailed"), a mapping with `label` (or verl's `ground_truth`) and
optional reference lengths (see reward.GroundTruth.parse), or that mapping as a JSON string (parquet columns are often
plain strings); with our verl export, the reference answer's lengths come from `extra_info.answer_text` (its words) and
`extra_info.answer_duration_s` (its audio's seconds). The model's audio, when it speaks, comes as a path in
`extra_info["response_audio"]` (verl) or the `response_audio` column (TRL).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Sequence

from soundmind_data.rl.reward import COMPONENTS, GroundTruth, RewardWeights, score

WeightMapping = Mapping[str, float]  # component -> weight, as a caller passes it
TRUTH_COLUMNS = ("ground_truth", "label", "reward_model")  # where trl_reward finds the ground truth, first one first

logger = logging.getLogger(__name__)

# OpenRLHF decodes prompt + response with `skip_special_tokens=False` and hands reward_func strings only, so the
# response's end-of-turn / end-of-text token arrives as text ("...Answer: entailed<|im_end|>") and would cost a right
# answer its format reward. Without the tokenizer we cannot ask which tokens are special, so we strip, at the end
# only, the end markers of the common chat templates: any `<|name|>` (ChatML / Qwen `<|im_end|>` `<|endoftext|>`,
# Llama 3 `<|eot_id|>` `<|end_of_text|>`, Phi `<|end|>`), and the literal strings below (Llama 2 / Mistral `</s>`,
# Gemma `<end_of_turn>` `<eos>`, DeepSeek's full-width-bar end of sentence, `<pad>`). A marker followed by other text
# is the model's own writing and stays scored (and fails the format, as it should).
_SPECIAL_MARKER_NAME = re.compile(r"[^|<>\s]+")  # what may stand between `<|` and `|>`
END_MARKERS = ("</s>", "<eos>", "<end_of_turn>", "<pad>", "<\uff5cend\u2581of\u2581sentence\uff5c>")
# Tail-matching floor: a shorter match between the prompt's end and the query's start can be a coincidence.
MIN_PROMPT_TAIL = 16
_REPLACEMENT = "\ufffd"  # what a token cut inside a multi-byte character decodes to


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
    """TRL `reward_funcs` entry: one total per completion; dataset columns arrive as keyword lists.

    The ground truth is the `ground_truth` column, else `label`, else `reward_model` (so our verl export's parquet
    works as it is: its `reward_model` and `extra_info` columns); reference lengths come from an `extra_info` column.
    """
    truths = next((kwargs[name] for name in TRUTH_COLUMNS if kwargs.get(name) is not None), None)
    if truths is None:
        raise ValueError(f"the dataset needs a {', '.join(map(repr, TRUTH_COLUMNS))} column for the SoundMind reward")
    reward_weights = RewardWeights.from_mapping(weights)
    audios = kwargs.get("response_audio") or [None] * len(completions)
    extras = kwargs.get("extra_info") or [None] * len(completions)
    return [score(_completion_text(c), GroundTruth.parse(t).completed(e), audio=a, weights=reward_weights).total
            for c, t, a, e in zip(completions, truths, audios, extras)]


def strip_trailing_special_tokens(text: str) -> str:
    """`text` without the end-of-turn / end-of-text markers (and whitespace) it ends with; see END_MARKERS."""
    while True:
        text = text.rstrip()
        if text.endswith("|>"):
            start = text.rfind("<|", 0, len(text) - 2)
            if start != -1 and _SPECIAL_MARKER_NAME.fullmatch(text, start + 2, len(text) - 2):
                text = text[:start]
                continue
        marker = next((m for m in END_MARKERS if text.endswith(m)), None)
        if marker is None:
            return text
        text = text[:-len(marker)]


def prompt_tail_length(prompt: str, text: str) -> int:
    """The length of the longest suffix of `prompt` that `text` starts with, if at least MIN_PROMPT_TAIL; else 0.

    Exact and linear in practice: every such suffix starts with `text`'s first MIN_PROMPT_TAIL characters, so the
    candidates are that probe's occurrences in `prompt` (found by str.find), tried from the left (the longest first).
    """
    probe = text[:MIN_PROMPT_TAIL]
    if len(probe) < MIN_PROMPT_TAIL:
        return 0
    start = prompt.find(probe)
    while start != -1:
        if text.startswith(prompt[start:]):
            return len(prompt) - start
        start = prompt.find(probe, start + 1)
    return 0


def response_after_prompt(query: str, prompt: str) -> str | None:
    """The response in an OpenRLHF query (the decoded prompt tokens + response tokens), or None if the prompt's text
    cannot be found at the query's start.

    OpenRLHF truncates a prompt longer than its budget from the left (`prompt_token_ids[-max_prompt_length:]`) and
    still passes the whole prompt string, so the query starts with the prompt's surviving tail, whose first token may
    be cut inside a multi-byte character (decoded as U+FFFD). The response is what follows the longest suffix of the
    prompt that the query (without those U+FFFD) starts with: the tail ends with the chat template's assistant-turn
    opener, and the response cannot extend it unless the tail repeats itself, which a tail of hundreds of tokens
    does not. Failing that, it is what follows the last occurrence of the prompt's final line (the opener).
    """
    if query.startswith(prompt):
        return query[len(prompt):]
    head = query.lstrip(_REPLACEMENT)
    tail = prompt_tail_length(prompt, head)
    if tail:
        return head[tail:]
    # A decode that does not give the prompt's text back exactly (a tokenizer that tidies spaces) leaves no exact
    # tail; the response still follows the last occurrence of the prompt's final line, the assistant-turn opener.
    opener = prompt.rstrip().rpartition("\n")[2]
    at = query.rfind(opener) if len(opener) >= MIN_PROMPT_TAIL else -1
    return query[at + len(opener):].lstrip() if at != -1 else None


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], *,
                weights: WeightMapping | None = None) -> dict[str, Any]:
    """OpenRLHF `--reward.remote_url` file entry: queries are (the tail of) the prompt + the response, decoded with
    special tokens; the response is what follows the prompt (response_after_prompt), without its end markers.

    A label is what OpenRLHF read from the `--data.label_key` column: a plain label, or with our verl export the
    `reward_model` or the `extra_info` mapping (GroundTruth.parse reads both; `extra_info` also brings the reference
    lengths). A query in which the prompt's text is not found is scored as an empty response (0, logged as a
    warning): scoring it whole would score the prompt, whose instruction itself ends with "Answer: not-entailed".

    Returns OpenRLHF's dict: `rewards` (the total), `scores` (the total over its maximum, in [0, 1], for dynamic
    filtering) and `extra_logs` (each component).
    """
    import torch

    reward_weights = RewardWeights.from_mapping(weights)
    results = []
    for query, prompt, label in zip(queries, prompts, labels):
        try:
            truth = GroundTruth.parse(label)
        except ValueError as exc:  # OpenRLHF logs a failing reward_func at INFO only and goes on without a reward
            logger.error("SoundMind reward: cannot read the label %r: %s", label, exc)
            raise
        response = response_after_prompt(query, prompt)
        if response is None:
            logger.warning("SoundMind reward: the prompt's text is not at the start of the query, scored as an empty "
                           "response (does the tokenizer's decode reproduce the prompt?); query starts %r",
                           query[:80])
            response = ""
        results.append(score(strip_trailing_special_tokens(response), truth, weights=reward_weights))
    rewards = torch.tensor([r.total for r in results], dtype=torch.float32)
    # every applicable weight at 0 leaves nothing to reach: such a response scores 0, not 0 / 0
    scores = torch.tensor([r.total / best if (best := r.best_total(reward_weights)) else 0.0 for r in results],
                          dtype=torch.float32)
    logged = [name for name in COMPONENTS if any(getattr(r, name) is not None for r in results)]
    extra = {name: torch.tensor([getattr(r, name) or 0.0 for r in results], dtype=torch.float32) for name in logged}
    return {"rewards": rewards, "scores": scores, "extra_logs": extra}
