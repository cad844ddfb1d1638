"""The CPU path's text policy: a tiny random transformer, a word-level tokenizer trained offline, a toy task.

Nothing is downloaded: the tokenizer is trained with `tokenizers` on the prompts at hand and the model is a 2-layer
Llama built from a config with seeded random weights. This is what tests and the demo train; it proves the loop
learns, not that a model of some 100,000 parameters reasons. It reads text only: the audio modes need a policy that
hears, `tiny-omni` on a CPU (rl.omni) or Qwen2.5-Omni on a GPU.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

# Words every response needs, kept in the vocabulary even when the prompts never use them.
RESPONSE_WORDS = ["<think>", "</think>", "Answer:", "entailed", "not", "entailed.", "not-entailed"]
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
TINY_SIZE = {"hidden_size": 64, "layers": 2, "heads": 4}  # the default of each `tiny_model` config key


def word_level(texts: Iterable[str], special_tokens: list[str], *, unk: str = UNK, vocab_size: int = 2000):
    """A word-level `tokenizers.Tokenizer` (whitespace split) trained on `texts` and RESPONSE_WORDS, the special
    tokens first (ids 0, 1, ...) and matched whole inside words, as chat templates glue them to text.

    Word level keeps the vocabulary tiny (tens of words on the toy task, hundreds on a corpus), which is what lets a
    random model find the rewarded words by sampling within seconds; decoding joins words with single spaces.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token=unk))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special_tokens)
    tokenizer.train_from_iterator(list(texts) + [" ".join(RESPONSE_WORDS)], trainer=trainer)
    return tokenizer


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2000):
    """The tiny model's tokenizer, trained on `texts`, wrapped for transformers."""
    return wrap_tokenizer(word_level(texts, [PAD, EOS, UNK], vocab_size=vocab_size))


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
