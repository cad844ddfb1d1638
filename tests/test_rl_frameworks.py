"""Our exports and reward adapters inside the real RL frameworks (verl, TRL, OpenRLHF), called the way each calls
them, with the README's recipes as they are written.

Each section skips, with the reason, when its framework is not installed. Nothing is downloaded: tokenizers are
trained here on the prompts at hand (with ChatML special tokens and template, the template of the Qwen models SoundMind
trains), Qwen2-Audio's processor is built from them, and the model, where one is needed, is soundmind_data.rl.tiny's
random 2-layer Llama.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import re
import shlex
import types
from pathlib import Path

import numpy as np
import pytest

from factories import item, write_jsonl, write_tone
from soundmind_data.rl.reward import count_tokens
from soundmind_data.stages.export import INSTRUCTION, SYSTEM_PROMPT, VERL_DATASET_OVERRIDES, export

README = Path(__file__).resolve().parent.parent / "README.md"
REWARD_FILE = "from soundmind_data.rl import reward_func"  # OpenRLHF's --reward.remote_url file, whole

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
def readme_block(marker: str) -> str:
    """The fenced code block that follows `<!-- marker` in the README: the recipe users copy is the one tested."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(f"<!-- {marker}"):]
    return re.search(r"```\w*\n(.*?)```", after, re.DOTALL).group(1)


@pytest.fixture(scope="module")
def export_parquet(tmp_path_factory):
    """`soundmind-data export --format verl --modality text` of two items (not entailed, then entailed), whose
    reference answers are ANSWER_WORDS long: the parquet the TRL and OpenRLHF recipes read."""
    root = tmp_path_factory.mktemp("corpus")
    answer = " ".join(["word"] * ANSWER_WORDS)
    items = [item("alr-000", label=0, question_text=QUESTION, answer=answer),
             item("alr-001", label=1, question_text=OTHER_QUESTION, answer=answer)]
    export(write_jsonl(root / "manifest.jsonl", items), fmt="verl", out=root / "verl-data", modality="text")
    return root / "verl-data" / "train.parquet"


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
    reward_file.write_text(REWARD_FILE + "\n")  # the README's file, as it is
    return agent.SingleTurnAgentExecutor(remote_rm_url=str(reward_file))


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


def test_openrlhf_recipe_uses_flags_openrlhf_declares(openrlhf_executor):
    """train_ppo_ray imports ray and builds its parser under __main__: its declared flags are read from its source."""
    import importlib.util

    recipe = readme_block("openrlhf-recipe")
    source = Path(importlib.util.find_spec("openrlhf.cli.train_ppo_ray").origin).read_text(encoding="utf-8")
    declared = set(re.findall(r"add_argument\(\s*\"(--[\w.]+)\"", source))
    used = re.findall(r"^\s+(--[\w.]+)", recipe, re.MULTILINE)
    assert len(used) == 10 and set(used) <= declared, sorted(set(used) - declared)
    assert f'"{REWARD_FILE}"' in recipe  # the file the executor above loads
    assert "--data.input_key prompt" in recipe and "--data.label_key extra_info" in recipe


# ================================================================================================================
# TRL: GRPOTrainer for 2 steps with reward_funcs=[trl_reward], on CPU
# ================================================================================================================
TRL_TEST_SETTINGS = dict(max_steps=2, per_device_train_batch_size=2, num_generations=2, max_completion_length=8,
                         use_cpu=True, bf16=False, report_to="none", logging_steps=1, save_strategy="no", seed=0,
                         disable_tqdm=True)  # laid over the recipe's GRPOConfig: 2 short steps on a CPU
README_TRL_MODEL = '"Qwen/Qwen2.5-0.5B-Instruct"'


def plain_dataset(export_parquet):
    """String prompts with `ground_truth` and `extra_info` columns: the other dataset shape trl_reward reads."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    rows = pq.read_table(export_parquet).to_pylist()
    return Dataset.from_list([{"prompt": row["prompt"][1]["content"], "extra_info": row["extra_info"],
                               "ground_truth": row["reward_model"]["ground_truth"]} for row in rows])


@pytest.mark.parametrize("shape", ["readme", "plain"])
def test_trl_grpo_trainer_trains_with_trl_reward(chatml_tokenizer, export_parquet, tmp_path, monkeypatch, shape):
    """`readme`: the README's TRL recipe run as it is on our export, with a tiny local model for Qwen and 2 CPU steps;
    `plain`: string prompts with a `ground_truth` column."""
    trl = pytest.importorskip("trl", reason="TRL is not installed (pip install trl)")
    import datasets

    import soundmind_data.rl
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
    real_config = trl.GRPOConfig
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    if shape == "readme":
        model.save_pretrained(tmp_path / "model")
        chatml_tokenizer.save_pretrained(tmp_path / "model")
        recipe = readme_block("trl-recipe")
        assert recipe.count(README_TRL_MODEL) == 1 and "verl-data/train.parquet" in recipe
        monkeypatch.chdir(export_parquet.parent.parent)  # where the recipe's export went
        monkeypatch.setattr(trl, "GRPOConfig", lambda **given: real_config(
            **{**given, **TRL_TEST_SETTINGS, "output_dir": str(tmp_path / "out")}))
        monkeypatch.setattr(soundmind_data.rl, "trl_reward", spy)
        namespace: dict = {}
        exec(recipe.replace(README_TRL_MODEL, repr(str(tmp_path / "model"))), namespace)
        trainer = namespace["trainer"]
        assert all(isinstance(completion, list) for completion in calls[0][0])  # chat completions: messages
    else:
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[spy], processing_class=chatml_tokenizer,
                                  args=real_config(output_dir=str(tmp_path / "out"), **TRL_TEST_SETTINGS),
                                  train_dataset=plain_dataset(export_parquet))
        trainer.train()

    assert trainer.state.global_step == 2 and len(calls) == 2
    logged = [entry["rewards/trl_reward/mean"] for entry in trainer.state.log_history
              if "rewards/trl_reward/mean" in entry]
    assert logged == [pytest.approx(sum(totals) / len(totals)) for _, totals in calls]
    # the random model earns no format or answer: a reward above 0 is text length, so extra_info reached trl_reward
    totals = [total for _, step in calls for total in step]
    assert all(0.0 <= total < 1.0 for total in totals) and max(totals) > 0.0


# ================================================================================================================
# verl 0.9.1: its config with the README's overrides, RLHFDataset with our dataset class and a Qwen2-Audio
# processor built locally, its reward manager with our compute_score
# ================================================================================================================
SOURCE_RATE = 22_050  # Piper's rate: the dataset class must resample to the processor's 16 kHz
QUESTION_SECONDS = {"tr-0": 1.5, "tr-1": 2.25, "dv-0": 1.0}
RIGHT = "<think>The minor premise puts Tom under the rule, so the conclusion follows from it.</think>\nAnswer: entailed"
WRONG = "<think>The minor premise puts Tom under the rule, so the conclusion follows from it.</think>\nAnswer: not-entailed"


def readme_verl_overrides() -> list[str]:
    """The Hydra overrides of the README's verl command, as a shell would split them."""
    block = readme_block("verl-recipe")
    command = block[block.index("python3 -m verl.trainer.main_ppo"):].replace("\\\n", " ")
    return shlex.split(command)[3:]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A small corpus with question and answer audio, exported as the README says (`--modality both`)."""
    root = tmp_path_factory.mktemp("verl")
    items = [item("tr-0", label=1), item("tr-1", label=0), item("dv-0", split="dev", label=1)]
    for record in items:
        record["question_audio"] = write_tone(root / f"{record['id']}-q.flac", QUESTION_SECONDS[record["id"]], SOURCE_RATE)
        record["answer_audio"] = write_tone(root / f"{record['id']}-a.flac", 3.0, SOURCE_RATE)
    write_jsonl(root / "manifest.jsonl", items)
    export(root / "manifest.jsonl", fmt="verl", out=root / "verl-data", modality="both")
    return root / "verl-data"


@pytest.fixture(scope="module")
def verl_config(exported):
    """verl's own trainer config, composed by Hydra with the README's overrides, data paths pointed at the export."""
    pytest.importorskip("verl", reason="verl is not installed (make setup installs verl==0.9.1 with --no-deps)")
    pytest.importorskip("hydra", reason="hydra-core is not installed (the `clients` extra)")
    from hydra import compose, initialize_config_module

    overrides = [o.replace("verl-data/", f"{exported}/") for o in readme_verl_overrides()]
    # datasets >= 5 runs a filter with one worker in a forked pool process, and a fork of this process, whose torch
    # threads other tests have started, can hang: the same filter runs in-process
    overrides.append("data.filter_overlong_prompts_workers=null")
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    """Qwen2-Audio's processor class with a tokenizer trained here (ChatML and audio special tokens), no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2AudioProcessor, WhisperFeatureExtractor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    corpus = [item("x")["question_text"], RIGHT, WRONG, "system user assistant Audio 1:"]
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", *special]))
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      unk_token="[UNK]", additional_special_tokens=special[1:])
    return Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=wrapped)


def test_the_readme_recipe_is_a_valid_verl_config(verl_config, exported):
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import get_dataset_class

    assert verl_config.data.train_files == f"{exported}/train.parquet"
    assert set(VERL_DATASET_OVERRIDES.split()) <= set(readme_verl_overrides())  # what `export` tells verl users
    assert get_dataset_class(verl_config.data).__name__ == "SoundMindRLHFDataset"
    assert verl_config.reward.custom_reward_function.reward_kwargs.weights.answer == 3.0
    assert get_custom_reward_fn(verl_config) is not None
    # without Hydra's "+", the weight override is refused: the form the README used to show
    from hydra import compose, initialize_config_module
    from hydra.errors import ConfigCompositionException

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        with pytest.raises(ConfigCompositionException, match="use \\+"):
            compose(config_name="ppo_trainer", overrides=["reward.custom_reward_function.reward_kwargs.weights.answer=3"])


def test_verl_loads_every_row_with_the_question_heard_and_read(verl_config, processor, exported):
    from verl.utils.dataset.rl_dataset import get_dataset_class
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    dataset_class = get_dataset_class(verl_config.data)
    dataset = dataset_class(data_files=verl_config.data.train_files, tokenizer=processor.tokenizer,
                            config=verl_config.data, processor=processor)
    assert len(dataset) == 2  # verl's length filter dropped nothing (a failed row is dropped, not raised)
    for index, expected_id in enumerate(["tr-0", "tr-1"]):
        row = dataset[index]
        assert row["extra_info"]["id"] == expected_id and row["reward_model"]["ground_truth"] in ("entailed", "not-entailed")
        user = row["raw_prompt"][-1]["content"]
        audio = [part["audio"] for part in user if part["type"] == "audio"]
        text = " ".join(part["text"] for part in user if part["type"] == "text")
        assert len(audio) == 1 and audio[0].dtype == np.float32
        assert len(audio[0]) == pytest.approx(QUESTION_SECONDS[expected_id] * 16_000, abs=2)  # resampled to 16 kHz
        assert item("x")["question_text"] in text and "Answer: entailed" in text

        # what verl's agent loop then does with it: the chat template, the audio extracted, the processor's inputs
        messages = row["raw_prompt"]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert prompt.count("<|AUDIO|>") == 1 and item("x")["question_text"] in prompt
        _, _, audios = dataset_class._process_multi_modal_info(messages, 14, verl_config.data)
        inputs = build_multimodal_processor_inputs(processor, text=[prompt], audio=audios)
        assert inputs["input_features"].shape[:2] == (1, 128)
        assert int((inputs["input_ids"] == processor.audio_token_id).sum()) > 1  # the placeholder, expanded


def test_verl_reward_manager_scores_with_our_compute_score(verl_config, processor, exported):
    import torch
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.dataset.rl_dataset import get_dataset_class

    tokenizer = processor.tokenizer
    dataset = get_dataset_class(verl_config.data)(data_files=verl_config.data.train_files, tokenizer=tokenizer,
                                                  config=verl_config.data, processor=processor)
    row = dataset[0]  # tr-0, entailed

    def batch(response: str) -> DataProto:
        prompt_ids = torch.tensor([tokenizer.encode("system user assistant")])
        response_ids = torch.tensor([tokenizer.encode(response)])
        mask = torch.ones(1, prompt_ids.shape[1] + response_ids.shape[1], dtype=torch.long)
        non_tensors = {key: np.array([row[key]], dtype=object) for key in ("data_source", "reward_model", "extra_info")}
        return DataProto.from_dict(tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask},
                                   non_tensors=non_tensors)

    async def scores() -> list[dict]:
        manager = load_reward_manager(verl_config, tokenizer)  # its event loop must be the running one
        return [await manager.run_single(batch(response)) for response in (RIGHT, WRONG)]

    right, wrong = asyncio.run(scores())
    reference_words = len(row["extra_info"]["answer_text"].split())
    text_length = min(1.0, len(RIGHT.split()) / reference_words)
    # the README's weights.answer=3.0 reached compute_score: format 1 + answer 3 + text length
    assert right["reward_score"] == pytest.approx(1.0 + 3.0 + text_length)
    assert wrong["reward_score"] == pytest.approx(1.0 + 0.0 + text_length)
    assert right["reward_extra_info"]["answer"] == 1.0 and wrong["reward_extra_info"]["answer"] == 0.0


def test_a_text_export_needs_no_processor(verl_config, processor, exported, tmp_path):
    """`--modality text` rows are plain chat: verl loads them with a tokenizer alone."""
    from verl.utils.dataset.rl_dataset import get_dataset_class

    manifest = exported.parent / "manifest.jsonl"
    export(manifest, fmt="verl", out=tmp_path / "text", modality="text")
    tokenizer = copy.deepcopy(processor.tokenizer)  # the module's processor stays as it was
    tokenizer.chat_template = processor.chat_template
    dataset = get_dataset_class(verl_config.data)(data_files=str(tmp_path / "text" / "train.parquet"),
                                                  tokenizer=tokenizer, config=verl_config.data)
    assert len(dataset) == 2
    user = dataset[1]["raw_prompt"][-1]["content"]
    assert isinstance(user, str) and user.startswith(item("x")["question_text"]) and "<audio>" not in user


def test_verl_builds_the_audio_policies_with_their_head(verl_config, tmp_path, monkeypatch):
    """verl's own model choice and loading (`get_hf_auto_model_class`, then `from_pretrained` as its FSDP engine
    calls it) on tiny checkpoints of the three layouts: a Qwen2.5-Omni thinker alone (tiny-omni's folder), a whole
    Qwen2.5-Omni (as the Hub holds the 7B) and Qwen2-Audio. Stock transformers maps only the first to a class with a
    language-model head; the README's `external_lib` registers the other two."""
    import torch
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    from verl.utils.import_utils import import_external_libs
    from verl.utils.model import get_hf_auto_model_class

    from soundmind_data.rl import omni
    from soundmind_data.core.usercache import CACHE_ENV
    from test_rl_omni import whole_omni_checkpoint

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    thinker = omni.tiny_folder([RIGHT, WRONG], seed=0, size={})
    whole = whole_omni_checkpoint(thinker, tmp_path / "whole-omni")
    audio_config = transformers.Qwen2AudioConfig(
        audio_config={"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
        text_config={"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2},
        audio_token_index=63)
    transformers.Qwen2AudioForConditionalGeneration(audio_config).save_pretrained(tmp_path / "qwen2-audio")

    assert "qwen2_5_omni_thinker" in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES  # transformers' own mapping
    assert not {"qwen2_5_omni", "qwen2_audio"} & set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    import_external_libs(verl_config.actor_rollout_ref.model.external_lib)  # as verl's workers do

    def verl_builds(path: Path):
        config = transformers.AutoConfig.from_pretrained(path)
        return get_hf_auto_model_class(config).from_pretrained(pretrained_model_name_or_path=str(path),
                                                               torch_dtype=torch.float32, config=config)

    tiny_thinker = omni.load_thinker(thinker, dtype=torch.float32).state_dict()
    for path, built in [(thinker, transformers.Qwen2_5OmniThinkerForConditionalGeneration),
                        (whole, transformers.Qwen2_5OmniThinkerForConditionalGeneration),
                        (tmp_path / "qwen2-audio", transformers.Qwen2AudioForConditionalGeneration)]:
        model = verl_builds(path)
        assert type(model) is built, path
        vocab = model.config.get_text_config().vocab_size
        assert model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, vocab)  # the head is there
        if built is transformers.Qwen2_5OmniThinkerForConditionalGeneration:  # the whole checkpoint's thinker
            assert all(torch.equal(weights, tiny_thinker[name]) for name, weights in model.state_dict().items())
