"""The reward adapters inside the real RL frameworks, called the way each framework calls them.

Each section skips, with the reason, when its framework is not installed. Nothing is downloaded: the tokenizer is a
byte-level BPE trained here on the prompts at hand, wrapped with ChatML special tokens and a ChatML chat template (the
template of the Qwen models SoundMind trains), and the model, where one is needed, is soundmind_data.rl.tiny's
random 2-layer Llama.
"""

from __future__ import annotations

import asyncio
import functools
import types

import pytest

from soundmind_data.rl.reward import count_tokens
from soundmind_data.stages.export import INSTRUCTION, SYSTEM_PROMPT

THINK = "<think>Tom is a cat, and every cat purrs, so Tom purrs.</think>\nAnswer: not-entailed"
QUESTION = "Major premise: all cats purr. Minor premise: Tom 🐈 is a cat. Conclusion: Tom never purrs."
OTHER_QUESTION = "Major premise: all birds fly. Minor premise: Tweety is a bird. Conclusion: Tweety flies."
ANSWER_WORDS = 40  # extra_info.answer_text: the reference for the text-length component
TEXT_LENGTH = count_tokens(THINK) / ANSWER_WORDS  # what THINK earns for text length against it
CHATML = ("{% for message in messages %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


# ================================================================================================================
# Shared: a row shaped like our verl export, and a ChatML tokenizer built offline
# ================================================================================================================
def export_row(question: str = QUESTION, label: int = 0) -> dict:
    """A text-only row as `soundmind-data export --format verl` writes it (string content, no audio)."""
    return {
        "data_source": "soundmind-data/alr",
        "prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                   {"role": "user", "content": f"{question} {INSTRUCTION}"}],
        "audios": None,
        "ability": "logical-reasoning",
        "reward_model": {"style": "rule", "ground_truth": ("not-entailed", "entailed")[label]},
        "extra_info": {"split": "train", "index": label, "id": f"alr-{label:03d}", "label": label,
                       "question_text": question, "answer_text": " ".join(["word"] * ANSWER_WORDS),
                       "question_audio": None, "answer_audio": None, "answer_duration_s": None},
    }


@pytest.fixture(scope="module")
def chatml_tokenizer():
    """A byte-level BPE tokenizer with ChatML's special tokens and template: it decodes exactly what it encoded, and a
    cut inside a multi-byte character decodes to U+FFFD, as a Qwen tokenizer's does."""
    for module in ("tokenizers", "transformers"):
        pytest.importorskip(module, reason=f"the framework tests need {module} (pip install 'soundmind-data[train]')")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([SYSTEM_PROMPT, INSTRUCTION, QUESTION, OTHER_QUESTION, THINK], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHATML)


# ================================================================================================================
# OpenRLHF 0.11: SingleTurnAgentExecutor with `--reward.remote_url <file>.py`, a fake vLLM engine
# ================================================================================================================
class FakeEngine:
    """vLLM's AsyncLLMEngine as OpenRLHF's executor calls it: `generate(token_ids, sampling_params)` returns a request
    output whose first completion is the response's tokens; it keeps the prompt tokens it was given."""

    def __init__(self, tokenizer, response_ids: list[int]):
        self.tokenizer, self.response_ids, self.prompt_ids = tokenizer, response_ids, None

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.prompt_ids = list(prompt_token_ids)
        completion = types.SimpleNamespace(token_ids=list(self.response_ids), finish_reason="stop", logprobs=None,
                                           text=self.tokenizer.decode(self.response_ids, skip_special_tokens=True))
        return types.SimpleNamespace(outputs=[completion])


@pytest.fixture(scope="module")
def openrlhf_executor(tmp_path_factory):
    """OpenRLHF's executor loading our reward from a file, as `--remote_rm_url soundmind_reward.py` makes it."""
    agent = pytest.importorskip("openrlhf.utils.agent",
                                reason="OpenRLHF is not installed (pip install --no-deps openrlhf)")
    reward_file = tmp_path_factory.mktemp("openrlhf") / "soundmind_reward.py"
    reward_file.write_text("from soundmind_data.rl import reward_func\n")  # the README's file, as it is
    return agent.SingleTurnAgentExecutor(remote_rm_url=str(reward_file))


@pytest.fixture(scope="module")
def export_parquet(tmp_path_factory):
    """A parquet with our export's columns (two text-only rows: label 0, then label 1), as `--data.prompt_dataset`."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("verl-data") / "train.parquet"
    pq.write_table(pa.Table.from_pylist([export_row(QUESTION, 0), export_row(OTHER_QUESTION, 1)]), path)
    return path


@pytest.fixture(scope="module")
def openrlhf_dataset(export_parquet, chatml_tokenizer, tmp_path_factory):
    """(prompt, label) pairs as OpenRLHF's trainer makes them from `--data.prompt_dataset <parquet> --data.input_key
    prompt --data.label_key <key> --data.apply_chat_template`: blending_datasets, then PromptDataset."""
    pytest.importorskip("openrlhf.utils.agent", reason="OpenRLHF is not installed (pip install --no-deps openrlhf)")
    import datasets
    from openrlhf.datasets import PromptDataset
    from openrlhf.datasets.utils import blending_datasets

    def load(label_key: str) -> list[tuple[str, object]]:
        data_args = types.SimpleNamespace(input_key="prompt", label_key=label_key, apply_chat_template=True)
        strategy = types.SimpleNamespace(args=types.SimpleNamespace(data=data_args, use_ms=False),
                                         print=lambda *_: None, is_rank_0=lambda: False)
        with pytest.MonkeyPatch.context() as patch:  # datasets caches the parquet here, not in ~/.cache
            patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
            dataset = PromptDataset(blending_datasets(str(export_parquet), None, strategy), chatml_tokenizer, strategy)
        return [(prompt, label) for _, prompt, label, _ in (dataset[i] for i in range(len(dataset)))]

    return {key: load(key) for key in ("reward_model", "extra_info")}


def run_openrlhf(executor, tokenizer, prompt: str, label, response: str, *, prompt_budget: int | None = None):
    """One rollout through the executor, the response tokens ending with the eos token as vLLM returns them.
    `prompt_budget` (tokens) makes max_length so small that the prompt is cut from the left. Returns the executor's
    output and the prompt tokens the engine saw."""
    response_ids = tokenizer(text=response, add_special_tokens=False)["input_ids"]
    engine = FakeEngine(tokenizer, response_ids)
    sampling = types.SimpleNamespace(max_tokens=len(response_ids), logprobs=None)  # vLLM SamplingParams' fields
    max_length = 4096 if prompt_budget is None else len(response_ids) + prompt_budget
    output = asyncio.run(executor.execute(prompt, label, sampling, max_length, tokenizer, engine))
    return output, engine.prompt_ids


def rewards(output) -> tuple[float, float, dict[str, float]]:
    assert output["reward"] is not None, "OpenRLHF got no reward (reward_func raised; OpenRLHF logs it at INFO)"
    return (output["reward"].item(), output["scores"].item(),
            {name: value.item() for name, value in output["extra_logs"].items()})


def test_openrlhf_reads_our_export_columns_as_labels(openrlhf_dataset):
    (prompt, model_label), (extra_prompt, extra_label) = (openrlhf_dataset[key][0] for key in ("reward_model",
                                                                                              "extra_info"))
    assert prompt == extra_prompt and prompt.endswith("<|im_start|>assistant\n") and INSTRUCTION in prompt
    assert model_label == {"style": "rule", "ground_truth": "not-entailed"}  # parquet structs arrive as dicts
    assert extra_label["label"] == 0 and extra_label["answer_text"].count("word") == ANSWER_WORDS


@pytest.mark.parametrize("label_key, text_length", [("reward_model", None), ("extra_info", TEXT_LENGTH)])
def test_openrlhf_right_answer_ending_in_im_end_scores_format_and_answer(openrlhf_executor, openrlhf_dataset,
                                                                         chatml_tokenizer, label_key, text_length):
    """`<|im_end|>` stays in OpenRLHF's query (skip_special_tokens=False) and must not cost the format reward; either
    column of our export is a label, and `extra_info` also brings the text-length reference (answer_text)."""
    prompt, label = openrlhf_dataset[label_key][0]
    output, seen = run_openrlhf(openrlhf_executor, chatml_tokenizer, prompt, label, THINK + "<|im_end|>")
    assert chatml_tokenizer.decode(seen, skip_special_tokens=False) == prompt  # not truncated
    assert chatml_tokenizer.decode(output["observation_tokens"], skip_special_tokens=False).endswith("<|im_end|>")
    reward, score, logs = rewards(output)
    if text_length is None:
        assert (reward, score, logs) == (3.0, 1.0, {"format": 1.0, "answer": 1.0})
    else:
        assert logs == {"format": 1.0, "answer": 1.0, "text_length": pytest.approx(text_length)}
        assert reward == pytest.approx(3.0 + text_length) and score == pytest.approx((3.0 + text_length) / 4.0)
    prompt, label = openrlhf_dataset[label_key][1]  # the entailed item: the same answer is wrong
    output, _ = run_openrlhf(openrlhf_executor, chatml_tokenizer, prompt, label, THINK + "<|im_end|>")
    assert rewards(output)[2]["answer"] == 0.0


def test_openrlhf_never_scores_the_prompt_of_a_left_truncated_query(openrlhf_executor, openrlhf_dataset,
                                                                     chatml_tokenizer):
    """A prompt cut from the left: the query starts inside the prompt, whose instruction ends with 'Answer:
    not-entailed'. A "blah blah" answer to a not-entailed item earns nothing; a right answer still earns it all."""
    prompt, label = openrlhf_dataset["reward_model"][0]
    output, seen = run_openrlhf(openrlhf_executor, chatml_tokenizer, prompt, label, "blah blah<|im_end|>",
                                prompt_budget=30)
    tail = chatml_tokenizer.decode(seen, skip_special_tokens=False)
    assert len(seen) == 30 and not tail.startswith(prompt) and "Answer: not-entailed" in tail  # the trap is there
    assert rewards(output) == (0.0, 0.0, {"format": 0.0, "answer": 0.0})
    prompt, label = openrlhf_dataset["extra_info"][0]
    output, _ = run_openrlhf(openrlhf_executor, chatml_tokenizer, prompt, label, THINK + "<|im_end|>",
                             prompt_budget=30)
    assert rewards(output)[2] == {"format": 1.0, "answer": 1.0, "text_length": pytest.approx(TEXT_LENGTH)}


def test_openrlhf_truncation_inside_a_multibyte_character(openrlhf_executor, openrlhf_dataset, chatml_tokenizer):
    """The cut falls inside 🐈's bytes: the query starts with U+FFFD, then the rest of the prompt."""
    prompt, label = openrlhf_dataset["reward_model"][0]
    ids = chatml_tokenizer(text=prompt, add_special_tokens=False)["input_ids"]
    cuts = [cut for cut in range(len(ids))
            if chatml_tokenizer.decode(ids[cut:], skip_special_tokens=False).startswith("\ufffd")]
    assert cuts, "the tokenizer should split the emoji into byte tokens"
    for response, expected in (("blah blah<|im_end|>", (0.0, 0.0)), (THINK + "<|im_end|>", (3.0, 1.0))):
        output, seen = run_openrlhf(openrlhf_executor, chatml_tokenizer, prompt, label, response,
                                    prompt_budget=len(ids) - cuts[0])
        assert chatml_tokenizer.decode(seen, skip_special_tokens=False).startswith("\ufffd")
        assert rewards(output)[:2] == expected


# The README's OpenRLHF recipe: the file and label key the tests above use, and flags OpenRLHF's CLI declares.
OPENRLHF_RECIPE = """\
soundmind-data export corpus/manifest.jsonl --format verl --modality text --out verl-data
echo "from soundmind_data.rl import reward_func" > soundmind_reward.py
python3 -m openrlhf.cli.train_ppo_ray \\
    --actor.model_name_or_path Qwen/Qwen2.5-7B-Instruct \\
    --data.prompt_dataset verl-data/train.parquet \\
    --data.input_key prompt \\
    --data.label_key extra_info \\
    --data.apply_chat_template \\
    --data.max_len 3072 \\
    --rollout.max_new_tokens 1024 \\
    --reward.remote_url soundmind_reward.py \\
    --algo.advantage.estimator group_norm \\
    --rollout.n_samples_per_prompt 8
"""


def test_openrlhf_recipe_uses_flags_openrlhf_declares(openrlhf_executor):
    """train_ppo_ray imports ray and builds its parser under __main__: its declared flags are read from its source."""
    import importlib.util
    import re
    from pathlib import Path

    source = Path(importlib.util.find_spec("openrlhf.cli.train_ppo_ray").origin).read_text(encoding="utf-8")
    declared = set(re.findall(r"add_argument\(\s*\"(--[\w.]+)\"", source))
    used = re.findall(r"^\s+(--[\w.]+)", OPENRLHF_RECIPE, re.MULTILINE)
    assert len(used) == 10 and set(used) <= declared, sorted(set(used) - declared)
    assert "from soundmind_data.rl import reward_func" in OPENRLHF_RECIPE  # the file the executor above loads
    assert "--data.input_key prompt" in OPENRLHF_RECIPE and "--data.label_key extra_info" in OPENRLHF_RECIPE


# ================================================================================================================
# TRL: GRPOTrainer for 2 steps with reward_funcs=[trl_reward], on CPU
# ================================================================================================================
def trl_dataset(shape: str, export_parquet, cache_dir):
    """`plain`: string prompts with `ground_truth` and `extra_info` columns; `verl`: our export's parquet as it is
    (chat prompts, `reward_model`, `extra_info` and the other columns), loaded as the README's TRL recipe loads it."""
    from datasets import Dataset, load_dataset

    if shape == "verl":
        return load_dataset("parquet", data_files=str(export_parquet), split="train", cache_dir=str(cache_dir))
    rows = [export_row(QUESTION, 0), export_row(OTHER_QUESTION, 1)]
    return Dataset.from_list([{"prompt": row["prompt"][1]["content"], "extra_info": row["extra_info"],
                               "ground_truth": row["reward_model"]["ground_truth"]} for row in rows])


@pytest.mark.parametrize("shape", ["plain", "verl"])
def test_trl_grpo_trainer_trains_with_trl_reward(chatml_tokenizer, export_parquet, tmp_path, shape):
    pytest.importorskip("trl", reason="TRL is not installed (pip install trl)")
    from trl import GRPOConfig, GRPOTrainer

    from soundmind_data.rl import trl_reward
    from soundmind_data.rl.tiny import build_model

    calls = []

    @functools.wraps(trl_reward)  # TRL logs a reward under its function's name
    def spy(prompts, completions, **kwargs):
        totals = trl_reward(prompts, completions, **kwargs)
        calls.append((completions, totals))
        return totals

    model = build_model(len(chatml_tokenizer), seed=0)
    for config in (model.config, model.generation_config):
        config.pad_token_id, config.eos_token_id = chatml_tokenizer.pad_token_id, chatml_tokenizer.eos_token_id
    args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=8, use_cpu=True, bf16=False, report_to="none", logging_steps=1,
                      save_strategy="no", seed=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[spy], args=args, processing_class=chatml_tokenizer,
                          train_dataset=trl_dataset(shape, export_parquet, tmp_path / "hf-datasets"))
    trainer.train()

    assert trainer.state.global_step == 2 and len(calls) == 2
    if shape == "verl":
        assert all(isinstance(completion, list) for completion in calls[0][0])  # chat completions: messages
    logged = [entry["rewards/trl_reward/mean"] for entry in trainer.state.log_history
              if "rewards/trl_reward/mean" in entry]
    assert logged == [pytest.approx(sum(totals) / len(totals)) for _, totals in calls]
    # the random model earns no format or answer: a reward above 0 is text length, so extra_info reached trl_reward
    totals = [total for _, step in calls for total in step]
    assert all(0.0 <= total < 1.0 for total in totals) and max(totals) > 0.0
