"""The CPU path: a tiny random transformer, a word-level tokenizer trained offline, an audio-feature stub, a toy task.

Nothing is downloaded: the tokenizer is trained with `tokenizers` on the prompts at hand and the model is a 2-layer
Llama built from a config with seeded random weights. This is what tests and the demo train; it proves the loop
learns, not that a model of some 100,000 parameters reasons.

Audio stub: a tiny text model cannot hear, so in the audio modes it reads the question audio as a short row of
loudness tokens (`<a0>` quiet … `<a7>` loud, one per segment). It exercises the audio data path end to end; real
audio understanding is the GPU path (Qwen2.5-Omni through its processor).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

import numpy as np

AUDIO_LEVELS = 8
AUDIO_SEGMENTS = 16
AUDIO_TOKENS = [f"<a{level}>" for level in range(AUDIO_LEVELS)]
# Words every response needs, kept in the vocabulary even when the prompts never use them.
RESPONSE_WORDS = ["<think>", "</think>", "Answer:", "entailed", "not", "entailed.", "not-entailed"]
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
TINY_SIZE = {"hidden_size": 64, "layers": 2, "heads": 4}  # the default of each `tiny_model` config key


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2000):
    """A word-level tokenizer (whitespace split) trained on `texts`, wrapped for transformers.

    Word level keeps the vocabulary tiny (tens of words on the toy task), which is what lets a random model find the
    rewarded words by sampling within seconds; decoding joins words with single spaces.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS, UNK])
    words = list(RESPONSE_WORDS) + AUDIO_TOKENS
    tokenizer.train_from_iterator(list(texts) + [" ".join(words)], trainer=trainer)
    return wrap_tokenizer(tokenizer)


def wrap_tokenizer(tokenizer):
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    wrapped.padding_side = "left"  # prompts are left-padded so every completion starts at the same column
    return wrapped


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    return wrap_tokenizer(Tokenizer.from_file(str(path)))


def build_model(vocab_size: int, *, seed: int, hidden_size: int = TINY_SIZE["hidden_size"],
                layers: int = TINY_SIZE["layers"], heads: int = TINY_SIZE["heads"], max_positions: int = 1024):
    """A Llama-architecture causal LM with seeded random weights (the same seed gives the same weights)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=hidden_size * 2, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, attention_dropout=0.0, pad_token_id=0, eos_token_id=1, bos_token_id=None,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def audio_stub(samples: np.ndarray, sample_rate: int) -> str:
    """The audio as AUDIO_SEGMENTS loudness tokens: each segment's RMS level in dBFS, -80…0 dB in AUDIO_LEVELS steps."""
    samples = np.asarray(samples, dtype=np.float64)
    segments = np.array_split(samples, AUDIO_SEGMENTS) if samples.size >= AUDIO_SEGMENTS else [samples]
    tokens = []
    for segment in segments:
        level_db = 10 * np.log10(np.mean(segment * segment) + 1e-12) if segment.size else -120.0
        level = int(np.clip((level_db + 80.0) / 80.0 * AUDIO_LEVELS, 0, AUDIO_LEVELS - 1))
        tokens.append(AUDIO_TOKENS[level])
    return " ".join(tokens)


# ------------------------------------------------------------------------------------------------------- toy task
TOY_PREFIX = "<think> the cue decides </think> Answer:"


def toy_items(count: int, *, seed: int = 0) -> list[dict]:
    """Item-manifest records for a toy version of the task where the prompt carries the answer cue.

    The question says "cue yes" (entailed) or "cue no" (not entailed) among filler words; with the response prefix
    TOY_PREFIX the policy only has to learn to read the cue and say "entailed" or "not entailed", then stop.
    """
    rng = random.Random(seed)
    filler = ["premise", "conclusion", "rule", "case", "so", "then", "all", "some"]
    items = []
    for index in range(count):
        label = index % 2
        words = rng.sample(filler, 3) + ["cue", "yes" if label else "no"]
        answer = f"{TOY_PREFIX} {'entailed' if label else 'not entailed'}"
        items.append({
            "id": f"toy-{index:04d}", "split": "train", "major_premise": "toy", "minor_premise": "toy",
            "conclusion": f"toy {index}", "label": label, "question_text": " ".join(words), "answer_text": answer,
            "source": {"dataset": "contrib", "file": "toy", "line": index + 1},
        })
    return items
