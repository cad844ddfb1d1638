"""Our verl export inside verl 0.9.1 itself: its config (with the README's overrides), its dataset loader with our
dataset class and a Qwen2-Audio processor built locally, and its reward manager with our compute_score."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile

from factories import item, write_jsonl
from soundmind_data.stages.export import VERL_DATASET_OVERRIDES, export

verl = pytest.importorskip("verl", reason="verl is not installed (make setup installs verl==0.9.1 with --no-deps)")
pytest.importorskip("hydra", reason="hydra-core is not installed (the `clients` extra)")

README = Path(__file__).resolve().parent.parent / "README.md"
SOURCE_RATE = 22_050  # Piper's rate: the dataset class must resample to the processor's 16 kHz
QUESTION_SECONDS = {"tr-0": 1.5, "tr-1": 2.25, "dv-0": 1.0}
RIGHT = "<think>The minor premise puts Tom under the rule, so the conclusion follows from it.</think>\nAnswer: entailed"
WRONG = "<think>The minor premise puts Tom under the rule, so the conclusion follows from it.</think>\nAnswer: not-entailed"


def readme_verl_overrides() -> list[str]:
    """The Hydra overrides of the README's verl command, as a shell would split them."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("<!-- verl-recipe"):]
    block = block[block.index("```bash") + len("```bash"):block.index("```", block.index("```bash") + 7)]
    command = block[block.index("python3 -m verl.trainer.main_ppo"):].replace("\\\n", " ")
    return shlex.split(command)[3:]


def _tone(path: Path, seconds: float) -> dict:
    samples = 0.2 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE)
    soundfile.write(path, samples.astype(np.float32), SOURCE_RATE, subtype="PCM_16")
    return {"path": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "sample_rate": SOURCE_RATE,
            "duration_s": seconds}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A small corpus with question and answer audio, exported as the README says (`--modality both`)."""
    root = tmp_path_factory.mktemp("verl")
    items = [item("tr-0", label=1), item("tr-1", label=0), item("dv-0", split="dev", label=1)]
    for record in items:
        record["question_audio"] = _tone(root / f"{record['id']}-q.wav", QUESTION_SECONDS[record["id"]])
        record["answer_audio"] = _tone(root / f"{record['id']}-a.wav", 3.0)
    write_jsonl(root / "manifest.jsonl", items)
    export(root / "manifest.jsonl", fmt="verl", out=root / "verl-data", modality="both")
    return root / "verl-data"


@pytest.fixture(scope="module")
def verl_config(exported):
    """verl's own trainer config, composed by Hydra with the README's overrides, data paths pointed at the export."""
    from hydra import compose, initialize_config_module

    overrides = [o.replace("verl-data/", f"{exported}/") for o in readme_verl_overrides()]
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
