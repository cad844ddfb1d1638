"""The audio policy: tiny-omni (a random tiny Qwen2.5-Omni thinker with a real processor, built offline into the user
cache) trained through the code that Qwen2.5-Omni-7B runs, and proof that the question audio reaches the policy.

Nothing is downloaded. A whole Qwen2.5-Omni checkpoint (thinker, talker and token2wav, as the Hub's 7B is laid out)
is built here at a tiny size, so that the README's 7B command runs with it in the 7B's place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import transformers

from factories import item, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError
from soundmind_data.core.jsonl import iter_records
from soundmind_data.core.usercache import CACHE_ENV
from soundmind_data.rl import omni
from soundmind_data.rl.config import TrainConfig
from soundmind_data.rl.grpo import Trainer, completion_logprobs, grpo_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

README = Path(__file__).resolve().parent.parent / "README.md"
RATE = 16_000
SECONDS = (1.0, 1.4, 1.2, 1.6)  # each question's audio: its own length, its own noise


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The user cache tiny-omni is built into, this module's own."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Four synthesized items (question audio beside the manifest) with corpus-style answers."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    items = []
    for n, seconds in enumerate(SECONDS):
        record = item(f"q{n}", label=n % 2, conclusion=f"Claim number {n}")
        samples = (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
        soundfile.write(root / f"q{n}.flac", samples, RATE, format="FLAC", subtype="PCM_16")
        record["question_audio"] = {"path": f"q{n}.flac", "sha256": "0" * 64, "sample_rate": RATE,
                                    "duration_s": seconds}
        items.append(record)
    return write_jsonl(root / "manifest.jsonl", items)


def omni_config(corpus: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(data=str(corpus), out=str(out), model="tiny-omni", mode="audio", steps=2, prompts_per_step=2,
                    group_size=2, max_new_tokens=6, response_prefix="<think>", checkpoint_every=100)
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def folder(cache, corpus, tmp_path_factory) -> Path:
    """tiny-omni's folder for the corpus, as the trainer builds it."""
    return Trainer(omni_config(corpus, tmp_path_factory.mktemp("run"), steps=1)).policy.model.name_or_path


# ------------------------------------------------------------------------------------------------------ tiny-omni
def test_tiny_omni_is_a_real_qwen2_5_omni_thinker_and_processor(folder, cache):
    folder = Path(folder)
    assert folder.parent == cache / "models" and folder.name.startswith("tiny-omni-")
    assert transformers.AutoConfig.from_pretrained(folder).model_type == "qwen2_5_omni_thinker"
    processor = omni.load_processor(folder)
    assert isinstance(processor, transformers.Qwen2_5OmniProcessor)
    assert isinstance(processor.feature_extractor, transformers.WhisperFeatureExtractor)
    assert processor.feature_extractor.feature_size == 128 and processor.feature_extractor.sampling_rate == RATE
    thinker = omni.load_thinker(folder, dtype=torch.float32)
    assert 300_000 < sum(p.numel() for p in thinker.parameters()) < 450_000  # about 380k
    assert thinker.lm_head.out_features == len(processor.tokenizer)

    chat = [{"role": "user", "content": [{"type": "audio", "audio": "q.flac"}, {"type": "text", "text": "Claim"}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|audio_bos|><|AUDIO|><|audio_eos|>Claim<|im_end|>\n<|im_start|>assistant\n")
    # 30 s of audio: Whisper's 3,000 frames of 128 mel bins, heard as 750 audio tokens
    batch = processor(text=[text], audio=[np.zeros(30 * RATE, np.float32)], sampling_rate=RATE, return_tensors="pt")
    assert tuple(batch["input_features"].shape) == (1, 128, 3000)
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == 750


def test_tiny_omni_is_built_once_and_again_when_damaged(folder, corpus, tmp_path):
    weights = Path(folder) / "model.safetensors"
    built, stamp = weights.read_bytes(), weights.stat().st_mtime_ns
    again = Trainer(omni_config(corpus, tmp_path / "a", steps=1)).policy.model.name_or_path
    assert again == folder and weights.stat().st_mtime_ns == stamp  # loaded, not built again

    damaged = bytearray(built)
    damaged[-100] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    assert Trainer(omni_config(corpus, tmp_path / "b", steps=1)).policy.model.name_or_path == folder
    assert weights.read_bytes() == built  # built again, the same: seeded

    other = Trainer(omni_config(corpus, tmp_path / "c", steps=1, seed=1)).policy.model.name_or_path
    assert other != folder


# ------------------------------------------------------------------------------------------- the audio is heard
def test_changing_only_the_question_audio_changes_the_logits(folder, corpus, tmp_path):
    trainer = Trainer(omni_config(corpus, tmp_path / "run"))
    policy, (first, second) = trainer.policy, trainer.prompts[:2]
    assert first.text == second.text  # audio mode: the instruction-less prompt is the audio alone
    completion, mask = policy.encode_completions(["Answer: entailed"])

    def logprobs(prompt):
        inputs = policy.encode([prompt])
        audio_tokens = int((inputs["input_ids"] == policy.processor.audio_token_id).sum())
        seconds = soundfile.info(str(prompt.audio)).duration
        assert audio_tokens == round(seconds * 25)  # one placeholder per 40 ms of the question
        with torch.no_grad():
            return completion_logprobs(policy, inputs, completion, mask, 1.0)

    heard = logprobs(first)
    assert torch.equal(logprobs(first), heard)  # the same audio, the same logits
    other = logprobs(dataclasses.replace(first, audio=second.audio))
    assert (other - heard).abs().max() > 1e-4


def test_a_step_moves_the_audio_encoder(folder, corpus, tmp_path):
    """A supervised step changes the audio tower's weights; a GRPO loss sends it gradients."""
    trainer = Trainer(omni_config(corpus, tmp_path / "run", sft_steps=1, sft_learning_rate=0.01))
    tower = trainer.policy.model.model.audio_tower
    before = {name: p.detach().clone() for name, p in tower.named_parameters()}
    metrics = trainer.train_step()
    assert metrics["phase"] == "sft" and all(math.isfinite(metrics[k]) for k in ("loss", "reward", "grad_norm"))
    still = {name for name, p in tower.named_parameters() if torch.equal(p, before[name])}
    assert still == {"audio_bos_eos_token.weight"}  # every other weight moved; that one marks audio within video

    batch = trainer.prompts[:2]
    inputs = trainer.policy.encode(batch)
    completion, mask = trainer.policy.encode_completions(["Answer: entailed", "Answer: not entailed"])
    logp = completion_logprobs(trainer.policy, inputs, completion, mask, 1.0)
    loss, _ = grpo_loss(logp, logp.detach(), logp.detach(), torch.tensor([1.0, -1.0]), mask, clip_eps=0.2,
                        kl_beta=0.04)
    trainer.policy.model.zero_grad()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.layers[0].parameters())


def test_a_manifest_whose_audio_is_missing_is_a_one_line_error(corpus, tmp_path):
    items = list(iter_records(corpus))
    items[1]["question_audio"]["path"] = "gone.flac"
    data = write_jsonl(corpus.parent / "missing.jsonl", items)
    with pytest.raises(DataError, match=r"^\S*missing.jsonl:2: question_audio.path: 'gone.flac': no such file$"):
        Trainer(omni_config(data, tmp_path / "run"))

    items[1]["question_audio"]["path"] = "broken.flac"
    (corpus.parent / "broken.flac").write_bytes(b"fLaC not really")
    data = write_jsonl(corpus.parent / "broken.jsonl", items)
    trainer = Trainer(omni_config(data, tmp_path / "run2", prompts_per_step=4))
    with pytest.raises(DataError, match=r"^\S*broken.flac: cannot decode it: .+$"):
        trainer.train_step()


# -------------------------------------------------------------------------------------- the README's Omni recipe
def whole_omni_checkpoint(tiny_folder: Path, out: Path) -> Path:
    """tiny-omni's thinker inside a whole Qwen2.5-Omni (with a tiny talker and token2wav), saved as the Hub's 7B is:
    one config of model_type qwen2_5_omni, the thinker's weights under `thinker.`, the processor beside them."""
    thinker = omni.load_thinker(tiny_folder, dtype=torch.float32)
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}
    config = transformers.Qwen2_5OmniConfig(
        thinker_config=thinker.config.to_dict(),
        talker_config={"vocab_size": 64, "embedding_size": 64, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16,
                       "rope_parameters": rope},
        token2wav_config={"dit_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                         "head_dim": 16, "emb_dim": 16, "enc_emb_dim": 16, "enc_dim": 16,
                                         "enc_channels": [16, 16, 16, 16, 48], "enc_attention_channels": 8,
                                         "enc_se_channels": 8, "num_embeds": 64, "look_ahead_layers": [0],
                                         "look_backward_layers": [0]},
                          "bigvgan_config": {"upsample_initial_channel": 64}})
    torch.manual_seed(1)
    whole = transformers.Qwen2_5OmniForConditionalGeneration(config)
    whole.thinker.load_state_dict(thinker.state_dict())
    whole.save_pretrained(out)
    omni.load_processor(tiny_folder).save_pretrained(out)
    return out


def readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```\w*\n(.*?)```", text[text.index("<!-- omni-recipe"):], re.DOTALL).group(1)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.startswith("soundmind-data")]


def test_the_readme_omni_recipe_runs_with_tiny_models(folder, corpus, tmp_path, run_cli, cache):
    """The 7B command with a tiny whole Qwen2.5-Omni checkpoint in the 7B's place on a CPU (the same loading and
    training code: the thinker taken out of the whole checkpoint), then the tiny-omni command as it is written. The
    config's batch is shrunk to two prompts of two completions of 8 tokens: the tiny models are random."""
    seven_b, tiny = readme_commands()
    assert seven_b[seven_b.index("--model") + 1] == "Qwen/Qwen2.5-Omni-7B" and "cuda" in seven_b
    assert tiny[tiny.index("--model") + 1] == "tiny-omni"
    config = Path(seven_b[seven_b.index("--config") + 1])
    assert tiny[tiny.index("--config") + 1] == str(config)
    small = tmp_path / config.name
    small.write_text((README.parent / config).read_text(encoding="utf-8")
                     + "prompts_per_step: 2\ngroup_size: 2\nmax_new_tokens: 8\n", encoding="utf-8")
    whole = whole_omni_checkpoint(Path(folder), tmp_path / "Qwen2.5-Omni-tiny")

    def run(command: list[str], **swap: str) -> Path:
        args = command[1:]
        for flag, value in {"--config": str(small), "--data": str(corpus), **swap}.items():
            args[args.index(flag) + 1] = value
        args += [] if "--steps" in args else ["--steps", "2"]
        args[args.index("--steps") + 1] = "2"
        out = Path(args[args.index("--out") + 1])
        done = run_cli(*args, cwd=tmp_path, env={CACHE_ENV: str(cache)})
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.splitlines()[-1].startswith("training: format reward"), done.stderr
        metrics = list(iter_records(tmp_path / out / "metrics.jsonl"))
        assert [m["step"] for m in metrics] == [1, 2]
        for line in metrics:
            assert schemas.first_error("train-metrics", line) is None
            assert all(math.isfinite(v) for v in line.values() if isinstance(v, float)), line
        return tmp_path / out

    run(seven_b, **{"--model": str(whole), "--device": "cpu"})
    trained = torch.load(run(tiny) / "checkpoint.pt", weights_only=True)["model"]
    assert any(name.startswith("model.audio_tower.") for name in trained)  # the thinker, audio tower included
    assert json.loads((Path(folder) / omni.RECORD).read_text())["size"] == {"hidden_size": 64, "layers": 2, "heads": 4}
