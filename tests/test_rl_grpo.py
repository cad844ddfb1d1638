"""The GRPO trainer: the loss against a hand computation, a seeded learning run on the toy task, exact resume, the
prompt readers (manifest, verl parquet, audio modes) and the `train` command."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
import torch

from factories import item as corpus_item, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_records
from soundmind_data.rl import tiny
from soundmind_data.rl.config import TrainConfig
from soundmind_data.rl.grpo import Trainer, batch_indices, completion_logprobs, group_advantages, grpo_loss
from soundmind_data.rl.prompts import load_prompts, with_instruction
from soundmind_data.rl.reward import load_audio
from soundmind_data.rl.training import learning_line, train


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_config(tmp_path, **overrides) -> TrainConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "toy.jsonl", tiny.toy_items(32, seed=0))
    settings = dict(data=str(data), out=str(tmp_path / "run"), steps=100, prompts_per_step=8, group_size=8,
                    max_new_tokens=4, learning_rate=3e-3, response_prefix=tiny.TOY_PREFIX, seed=0, checkpoint_every=50)
    settings.update(overrides)
    return TrainConfig(**settings)


# ----------------------------------------------------------------------------------------------------- the maths
def test_group_advantages():
    advantages = group_advantages(torch.tensor([1.0, 0.0, 0.0, 2.0, 3.0, 3.0]), group_size=2)
    a1, a2 = 0.5 / (math.sqrt(0.5) + 1e-4), 1.0 / (math.sqrt(2.0) + 1e-4)  # unbiased std of {1, 0} and of {0, 2}
    assert advantages.tolist() == pytest.approx([a1, -a1, -a2, a2, 0.0, 0.0])


def test_loss_equals_a_hand_computed_value_on_two_prompts():
    # Two prompts, two completions each (rewards 1, 0 | 0, 2), two tokens per completion; the last completion's
    # second token is padding. clip_eps 0.2, kl_beta 0.1.
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -1.5], [-2.0, -0.3], [-1.2, -9.9]])
    old = torch.tensor([[-1.1, -2.0], [-0.5, -1.0], [-2.0, -0.6], [-1.2, -0.1]])
    ref = torch.tensor([[-1.0, -2.5], [-0.7, -1.5], [-2.0, -0.3], [-1.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0]])
    a1, a2 = 0.5 / (math.sqrt(0.5) + 1e-4), 1.0 / (math.sqrt(2.0) + 1e-4)  # 0.70700..., 0.70705...
    advantages = torch.tensor([a1, -a1, -a2, a2])

    def kl(d):  # k3 estimator, d = ref - logp
        return math.exp(d) - d - 1

    # per token: -(min(r*A, clip(r)*A) - 0.1 * kl); r = exp(logp - old)
    c1 = (-(math.exp(0.1) * a1 - 0.1 * kl(0.0)) - (1.0 * a1 - 0.1 * kl(-0.5))) / 2          # r 1.105 inside the clip
    c2 = (-(-a1 - 0.1 * kl(-0.2)) - (0.8 * -a1 - 0.1 * kl(0.0))) / 2                      # r 0.607 clipped to 0.8
    c3 = (-(-a2 - 0.1 * kl(0.0)) - (math.exp(0.3) * -a2 - 0.1 * kl(0.0))) / 2              # r 1.350, A < 0: unclipped
    c4 = -(a2 - 0.1 * kl(0.2)) / 1                                                         # one real token
    expected = (c1 + c2 + c3 + c4) / 4
    assert expected == pytest.approx(0.006052352960854074)

    loss, stats = grpo_loss(logp, old, ref, advantages, mask, clip_eps=0.2, kl_beta=0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert stats["clip_fraction"] == pytest.approx(2 / 7)
    assert stats["kl"] == pytest.approx((kl(0) + kl(-0.5)) / 8 + (kl(-0.2) + kl(0)) / 8 + 0 + kl(0.2) / 4, rel=1e-5)


def test_logprobs_do_not_depend_on_left_padding(tmp_path):
    trainer = Trainer(toy_config(tmp_path, steps=1))
    short, long = trainer.prompts[0], trainer.prompts[1]
    long = type(long)(long.id, long.text + " so then all some", long.audio, long.truth)
    completion = torch.tensor([[5, 6, 7], [5, 6, 7]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    batch = trainer.policy.encode([short, long])
    assert batch["attention_mask"][0].tolist().count(0) == 4  # the short prompt is left-padded
    together = completion_logprobs(trainer.policy, batch, completion, mask, 1.0)
    alone = completion_logprobs(trainer.policy, trainer.policy.encode([short]), completion[:1], mask[:1], 1.0)
    assert together[0].tolist() == pytest.approx(alone[0].tolist(), abs=1e-5)


def test_batches_cover_every_prompt_once_per_epoch():
    first_epoch = [i for step in range(5) for i in batch_indices(10, 2, step, seed=3)]
    assert sorted(first_epoch) == list(range(10))
    assert batch_indices(10, 2, 7, seed=3) == batch_indices(10, 2, 7, seed=3)
    assert first_epoch != [i for step in range(5) for i in batch_indices(10, 2, step, seed=4)]


# ------------------------------------------------------------------------------------------------------ training
def test_seeded_toy_run_learns(tmp_path):
    trainer = Trainer(toy_config(tmp_path))
    history = trainer.run()
    assert [m["step"] for m in history] == list(range(1, 101))
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the policy starts as the reference
    first, last = history[:10], history[-10:]
    mean = lambda rows, key: float(np.mean([m[key] for m in rows]))  # noqa: E731
    assert mean(last, "reward") > mean(first, "reward") + 1.5, (mean(first, "reward"), mean(last, "reward"))
    assert mean(first, "answer") < 0.3 < 0.8 < mean(last, "answer")  # it reads the cue
    assert mean(last, "format") > mean(first, "format") + 0.3  # and learns to stop after the verdict
    assert mean(last, "kl") > 0  # the policy moved away from the frozen reference
    logged = list(iter_records(trainer.metrics_path))
    assert logged == history
    for metrics in logged:
        assert schemas.first_error("train-metrics", metrics) is None


COLD_START = ("steps: 14\nsft_steps: 10\nprompts_per_step: 8\ngroup_size: 4\nmax_new_tokens: 20\ntemperature: 0.7\n"
              "learning_rate: 0.001\nsft_learning_rate: 0.01\nupdates_per_batch: 4\nresponse_prefix: \"<think>\"\n")


def corpus_answers(tmp_path) -> Path:
    """Eight items in the corpus's layout: the SoundMind question, a short reasoning, then an "Answer:" line; no
    think tags, which the format reward wants."""
    return write_jsonl(tmp_path / "items.jsonl",
                       [corpus_item(f"q{n}", label=n % 2, conclusion=f"Claim number {n}") for n in range(8)])


def test_a_cold_start_teaches_the_format_and_grpo_keeps_it(tmp_path):
    """What `make demo` shows, on a small corpus: no sample has the layout at first, a short supervised cold start on
    the corpus's own answers teaches it, GRPO keeps it; the report's last line says so, read from metrics.jsonl."""
    (tmp_path / "cfg.yaml").write_text(f"data: {corpus_answers(tmp_path)}\nout: {tmp_path / 'run'}\n{COLD_START}")
    report = train(tmp_path / "cfg.yaml")
    history = report.history
    assert [m["phase"] for m in history] == ["sft"] * 10 + ["grpo"] * 4
    mean = lambda rows, key: float(np.mean([m[key] for m in rows]))  # noqa: E731
    assert history[0]["format"] == 0.0 and mean(history[-3:], "format") >= 0.8, [m["format"] for m in history]
    assert mean(history[-3:], "reward") >= mean(history[:3], "reward") + 0.3
    assert history[9]["loss"] < history[0]["loss"] / 4  # the answers' negative log-likelihood falls
    logged = list(iter_records(report.metrics_path))
    assert logged == history and all(schemas.first_error("train-metrics", m) is None for m in logged)
    line = report.summary().err[-1]
    assert line == learning_line(logged)
    assert re.fullmatch(r"training: format reward 0\.0\d -> (0\.[89]\d|1\.00), mean reward of the last 3 steps "
                        r"\d\.\d\d vs the first 3 0\.\d\d \(\+\d\.\d\d\), over 14 steps", line), line


def test_a_cold_start_needs_reference_answers(tmp_path):
    items = [corpus_item(f"q{n}", label=n % 2, answer=None) for n in range(2)]
    (tmp_path / "cfg.yaml").write_text(f"data: {write_jsonl(tmp_path / 'items.jsonl', items)}\nsft_steps: 2\n")
    with pytest.raises(UsageError, match=r"^sft_steps: no prompt of .*items.jsonl has a reference answer"):
        train(tmp_path / "cfg.yaml")


def test_resume_after_the_cold_start_keeps_its_reference(tmp_path):
    """GRPO's KL reference is the policy as the cold start left it: a resumed run must get it back from the
    checkpoint, or its KL (and so its loss) would be measured against the random start."""
    def config(folder, steps):
        return TrainConfig(data=str(corpus_answers(tmp_path)), out=str(folder), steps=steps, sft_steps=3,
                           prompts_per_step=2, group_size=2, max_new_tokens=8, sft_learning_rate=0.01,
                           response_prefix="<think>", checkpoint_every=4)

    straight = Trainer(config(tmp_path / "a", 6)).run()
    Trainer(config(tmp_path / "b", 4)).run()
    continued = Trainer(config(tmp_path / "b", 6), resume=True).run()
    assert [m["phase"] for m in continued] == ["grpo", "grpo"]
    assert [m["kl"] for m in continued] == pytest.approx([m["kl"] for m in straight[4:]], abs=1e-6)
    assert straight[5]["kl"] > 1e-4  # so that a random-start reference would show


def test_resume_continues_the_same_curve(tmp_path):
    straight = Trainer(toy_config(tmp_path / "a", steps=6, checkpoint_every=3)).run()

    first = Trainer(toy_config(tmp_path / "b", steps=3, checkpoint_every=3))
    first.run()
    with first.metrics_path.open("a") as log:  # a crash after logging step 4 but before its checkpoint
        log.write(json.dumps({"step": 4, "reward": 99.0}) + "\n")
    resumed = Trainer(toy_config(tmp_path / "b", steps=6, checkpoint_every=3), resume=True)
    assert resumed.step == 3
    continued = resumed.run()

    assert [m["step"] for m in continued] == [4, 5, 6]
    for key in ("reward", "answer", "format", "response_length"):
        assert [m[key] for m in continued] == [m[key] for m in straight[3:]]
    for key in ("loss", "kl"):
        assert [m[key] for m in continued] == pytest.approx([m[key] for m in straight[3:]], abs=1e-6)
    logged = list(iter_records(resumed.metrics_path))
    assert [m["step"] for m in logged] == [1, 2, 3, 4, 5, 6]
    assert [m["reward"] for m in logged] == [m["reward"] for m in straight]


def test_a_finished_run_is_not_overwritten(tmp_path):
    Trainer(toy_config(tmp_path, steps=1)).run()
    with pytest.raises(UsageError, match="--resume"):
        Trainer(toy_config(tmp_path, steps=1))
    with pytest.raises(UsageError, match="no checkpoint"):
        Trainer(toy_config(tmp_path, steps=1, out=str(tmp_path / "elsewhere")), resume=True)


def test_a_hugging_face_model_folder_trains_through_the_same_loop(tmp_path):
    """The --model path (AutoModelForCausalLM + AutoTokenizer + chat template) with a tiny model saved to a folder."""
    items = tiny.toy_items(8)
    tokenizer = tiny.train_tokenizer(item["question_text"] for item in items)
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[assistant]"
    tiny.build_model(len(tokenizer), seed=0).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    trainer = Trainer(toy_config(tmp_path, model=str(tmp_path / "model"), steps=2, prompts_per_step=2, group_size=2))
    assert trainer.policy.render(trainer.prompts[0]) == f"[user] {trainer.prompts[0].text} [assistant]{tiny.TOY_PREFIX}"
    history = trainer.run()
    assert [m["step"] for m in history] == [1, 2] and history[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert (tmp_path / "run" / "checkpoint.pt").exists() and (tmp_path / "run" / "metrics.jsonl").exists()


# ------------------------------------------------------------------------------------------------------- prompts
def test_parquet_prompts_in_verl_layout(tmp_path):
    rows = [
        {"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "cue yes"}],
         "reward_model": {"ground_truth": json.dumps({"label": "entailed", "reference_tokens": 12}), "style": "rule"},
         "extra_info": {"id": "q1"}},
        {"prompt": [{"role": "user", "content": "cue no"}], "reward_model": {"ground_truth": "not-entailed", "style": "rule"},
         "extra_info": {"id": "q2"}},
    ]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    prompts = load_prompts(path, "text")
    assert [(p.id, p.text, p.truth.label, p.truth.reference_tokens) for p in prompts] == [
        ("q1", "cue yes", 1, 12), ("q2", "cue no", 0, None)]

    bad_label = {"prompt": [{"role": "user", "content": "cue"}], "reward_model": {"ground_truth": "maybe", "style": "rule"},
                 "extra_info": {"id": "q3"}}
    pq.write_table(pa.Table.from_pylist([rows[0], bad_label]), path)
    with pytest.raises(DataError, match=r"train.parquet:row 2: reward_model.ground_truth: unknown label"):
        load_prompts(path, "text")
    with pytest.raises(DataError, match=r"row 1: audios: required in audio mode"):
        load_prompts(path, "audio")


def test_training_reads_a_manifests_train_split_only(tmp_path):
    """The dev and test items stay unseen by the policy: `split` (default train) picks a manifest's items."""
    from soundmind_data.rl.config import TrainConfig

    path = write_jsonl(tmp_path / "m.jsonl", [corpus_item("a"), corpus_item("b", split="test"), corpus_item("c", split="dev"), corpus_item("d")])
    assert [p.id for p in load_prompts(path, "text", TrainConfig(data=str(path)).split)] == ["a", "d"]
    assert [p.id for p in load_prompts(path, "text", None)] == ["a", "b", "c", "d"]
    with pytest.raises(DataError, match=r"m.jsonl: no prompts of split 'validation'"):
        load_prompts(path, "text", "validation")


def test_prompts_from_the_verl_export(tmp_path):
    export = pytest.importorskip("soundmind_data.stages.export")
    items = _with_audio(tmp_path, tiny.toy_items(2), [-10, -60])
    rows = []
    for index, item in enumerate(items):
        flac = io.BytesIO()
        samples, rate = soundfile.read(str(tmp_path / item["question_audio"]["path"]))
        soundfile.write(flac, samples, rate, format="FLAC")
        row = export.verl_row(item, index, "both", {"bytes": flac.getvalue(), "path": f"{item['id']}.flac"}, None)
        assert schemas.first_error("verl-row", row) is None
        rows.append(row)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=export.verl_schema()), path)

    text = load_prompts(path, "text")
    assert [p.id for p in text] == [item["id"] for item in items]
    assert text[1].text.startswith(items[1]["question_text"]) and text[1].audio is None
    assert [p.truth.label for p in text] == [0, 1]
    assert text[0].truth.reference_tokens == len(items[0]["answer_text"].split())
    both = load_prompts(path, "both")
    assert both[0].audio.startswith(b"fLaC") and both[0].text == text[0].text
    assert [_level_db(p) for p in both] == pytest.approx([-10, -60], abs=1)  # each row's own audio, decoded


def test_manifest_prompts_check_each_line(tmp_path):
    items = tiny.toy_items(2)
    del items[1]["label"]
    path = write_jsonl(tmp_path / "items.jsonl", items)
    with pytest.raises(DataError, match=r"items.jsonl:2: label"):
        load_prompts(path, "text")
    path = write_jsonl(tmp_path / "items.jsonl", tiny.toy_items(2))
    with pytest.raises(DataError, match=r"items.jsonl:1: question_audio: required in audio\+text mode"):
        load_prompts(path, "audio+text")


def _level_db(prompt) -> float:
    """The RMS level of a prompt's question audio, decoded: which of the fixtures' loud or quiet files it is."""
    samples, _ = load_audio(prompt.audio)
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2)))


def _with_audio(tmp_path, items, levels_db):
    """Give each item a question WAV: 1 s of noise, loud or quiet."""
    rng = np.random.default_rng(0)
    for item, level in zip(items, levels_db):
        name = f"{item['id']}.wav"
        soundfile.write(str(tmp_path / name), (10 ** (level / 20) * rng.standard_normal(16000)).astype(np.float32),
                        16000, subtype="PCM_16")
        item["question_audio"] = {"path": name, "sha256": "0" * 64, "sample_rate": 16000, "duration_s": 1.0}
    return items


def test_audio_modes_read_the_question_audio_and_the_text_model_refuses_them(tmp_path):
    """The prompts of the audio modes; training on them is tests/test_rl_omni.py's (tiny-omni hears them)."""
    items = _with_audio(tmp_path, tiny.toy_items(4), [-10, -60, -10, -60])
    data = write_jsonl(tmp_path / "items.jsonl", items)
    both = load_prompts(data, "audio+text")
    assert [p.text for p in both] == [item["question_text"] for item in items]
    assert [_level_db(p) for p in both] == pytest.approx([-10, -60, -10, -60], abs=1)
    audio = load_prompts(data, "audio")
    assert [p.text for p in audio] == [None] * 4 and [p.audio for p in audio] == [p.audio for p in both]
    for mode in ("audio", "both"):
        with pytest.raises(UsageError, match=r"^mode: audio(\+text)? needs a policy that hears the question, and "
                                             r"model tiny reads text only; use --model tiny-omni"):
            toy_config(tmp_path, data=str(data), mode=mode)


# ----------------------------------------------------------------------------------------------------------- CLI
def test_train_command(tmp_path, run_cli):
    write_jsonl(tmp_path / "toy.jsonl", tiny.toy_items(8))
    (tmp_path / "cfg.yaml").write_text(
        "data: toy.jsonl\nout: run\nsteps: 2\nprompts_per_step: 2\ngroup_size: 2\nmax_new_tokens: 4\n"
        f"response_prefix: \"{tiny.TOY_PREFIX}\"\nreward_weights: {{answer: 3.0}}\n")
    done = run_cli("train", "--config", "cfg.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "metrics -> run/metrics.jsonl" in done.stderr
    assert re.fullmatch(r"training: format reward \d\.\d\d -> \d\.\d\d, mean reward of the last 2 steps "
                        r"\d\.\d\d vs the first 2 \d\.\d\d \([+-]\d\.\d\d\), over 2 steps",
                        done.stderr.splitlines()[-1]), done.stderr  # the command's last line
    assert [line.split()[1] for line in done.stdout.splitlines()] == ["1/2", "2/2"]
    assert [m["step"] for m in iter_records(tmp_path / "run" / "metrics.jsonl")] == [1, 2]

    more = run_cli("train", "--config", "cfg.yaml", "--resume", "--steps", "3", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert [m["step"] for m in iter_records(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3]

    (tmp_path / "bad.yaml").write_text("data: toy.jsonl\nreward_weights: {answr: 3.0}\n")
    bad = run_cli("train", "--config", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: bad.yaml: reward_weights: Additional properties are not allowed ('answr' was unexpected)"


def test_train_command_errors_are_one_line(tmp_path, run_cli):
    write_jsonl(tmp_path / "toy.jsonl", tiny.toy_items(4))
    (tmp_path / "cfg.yaml").write_text("data: toy.jsonl\nout: run\nsteps: 1\n")
    (tmp_path / "heads.yaml").write_text("data: toy.jsonl\ntiny_model: {hidden_size: 10, heads: 3}\n")
    cases = [
        (["--config", "heads.yaml"], "error: heads.yaml: tiny_model.hidden_size: 10 must be tiny_model.heads (3)"),
        (["--config", "cfg.yaml", "--model", "nobody-here/no-such-model"], "error: model 'nobody-here/no-such-model': "
                                                                           "cannot load it"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--config", "cfg.yaml", "--device", "cuda"], "error: device 'cuda': this torch"))
    for args, message in cases:
        done = run_cli("train", *args, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(message), done.stderr


def test_tiny_model_size_is_checked_with_the_config(tmp_path):
    for size, field in [("{hidden_size: 10, heads: 3}", "10 must be tiny_model.heads (3)"),
                        ("{hidden_size: 9, heads: 3}", "9 must be tiny_model.heads (3)"),  # odd head size
                        ("{heads: 3}", "64 must be tiny_model.heads (3)")]:
        (tmp_path / "cfg.yaml").write_text(f"data: toy.jsonl\ntiny_model: {size}\n")
        with pytest.raises(UsageError, match=rf"cfg.yaml: tiny_model.hidden_size: {re.escape(field)}"):
            TrainConfig.from_yaml(tmp_path / "cfg.yaml")
    (tmp_path / "cfg.yaml").write_text("data: toy.jsonl\nmodel: some/model\ntiny_model: {hidden_size: 10, heads: 3}\n")
    assert TrainConfig.from_yaml(tmp_path / "cfg.yaml").model == "some/model"  # the tiny size is unused then
    (tmp_path / "cfg.yaml").write_text("data: toy.jsonl\ntiny_model: {hidden_size: 12, heads: 3}\n")
    assert TrainConfig.from_yaml(tmp_path / "cfg.yaml").tiny_model == {"hidden_size": 12, "heads": 3}


def test_unusable_device_and_missing_model_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=r"^device 'cuda:1': this torch .* sees no CUDA GPU; use --device cpu$"):
        Trainer(toy_config(tmp_path, device="cuda:1"))
    missing = tmp_path / "no-model-here"
    with pytest.raises(UsageError, match=rf"^model '{re.escape(str(missing))}': cannot load it"):
        Trainer(toy_config(tmp_path, model=str(missing)))


def test_resume_refuses_a_different_run(tmp_path):
    small = {"prompts_per_step": 2, "group_size": 2}
    Trainer(toy_config(tmp_path, steps=1, **small)).run()
    other_data = write_jsonl(tmp_path / "other.jsonl", tiny.toy_items(8, seed=1))
    for change, named in [({"data": str(other_data)}, "data ("), ({"seed": 1}, "seed (0 -> 1)"),
                          ({"sft_steps": 1}, "sft_steps (0 -> 1)"),
                          ({"tiny_model": {"hidden_size": 32}}, "tiny_model ({} -> {'hidden_size': 32})"),
                          ({"learning_rate": 1e-2, "group_size": 4},
                           "group_size (2 -> 4); learning_rate (0.003 -> 0.01)")]:
        with pytest.raises(UsageError, match=r"checkpoint.pt: cannot resume with other settings") as refused:
            Trainer(toy_config(tmp_path, steps=2, **{**small, **change}), resume=True)
        assert named in str(refused.value)
        assert "only checkpoint_every, device, out, steps may change" in str(refused.value)
    resumed = Trainer(toy_config(tmp_path, steps=2, checkpoint_every=1, **small), resume=True)  # the safe changes
    assert [m["step"] for m in resumed.run()] == [2]


def test_resume_command_names_the_changed_setting(tmp_path, run_cli):
    write_jsonl(tmp_path / "toy.jsonl", tiny.toy_items(4))
    (tmp_path / "cfg.yaml").write_text("data: toy.jsonl\nout: run\nsteps: 1\nprompts_per_step: 2\ngroup_size: 2\n")
    run_cli("train", "--config", "cfg.yaml", cwd=tmp_path, check_rc=0)
    done = run_cli("train", "--config", "cfg.yaml", "--resume", "--steps", "2", "--seed", "3", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: run/checkpoint.pt: cannot resume with other settings than its run's: "
                                          "seed (0 -> 3); only")


def _flac(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, 16000, format="FLAC", subtype="PCM_16")
    return out.getvalue()


def _published_rows(items: list[dict], levels_db: list[float]) -> list[dict]:
    """Rows with the columns of a `publish` shard (hub/folder/rows.py `to_row`), FLAC bytes embedded."""
    rng = np.random.default_rng(0)
    rows = []
    for index, (item, level) in enumerate(zip(items, levels_db)):
        question = (10 ** (level / 20) * rng.standard_normal(16000)).astype(np.float32)
        rows.append({
            "id": item["id"], "question_audio": {"bytes": _flac(question), "path": f"{item['id']}-question.flac"},
            "answer_audio": {"bytes": _flac(question[:8000]), "path": f"{item['id']}-answer.flac"},
            "label": item["label"], "question_text": item["question_text"], "answer_text": item["answer_text"],
            "major_premise": "toy", "minor_premise": "toy", "conclusion": item["conclusion"],
            "source_dataset": "contrib", "source_file": "toy", "source_line": index + 1, "source_gold_label": None,
            "question_duration_s": 1.0, "answer_duration_s": 0.5 + index, "question_wer": None, "answer_wer": None,
            "question_loudness_lufs": None, "answer_loudness_lufs": None, "sample_rate": 16000,
            "voice": "piper:joe", "tts_backend": "piper", "tts_voice": "en_US-joe-medium", "tts_license": "CC0-1.0",
            "tts_model_md5": None,
        })
    return rows


def test_prompts_from_a_published_shard(tmp_path):
    items = tiny.toy_items(2)
    rows = _published_rows(items, [-10, -60])
    assert all(schemas.first_error("published-row", row) is None for row in rows)
    path = tmp_path / "data" / "train-00000-of-00001.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), path)

    text = load_prompts(path, "text")
    assert [(p.id, p.text, p.audio, p.truth.label) for p in text] == [
        (item["id"], item["question_text"], None, item["label"]) for item in items]
    assert [p.truth.reference_tokens for p in text] == [len(item["answer_text"].split()) for item in items]
    assert [p.truth.reference_seconds for p in text] == [0.5, 1.5]
    audio = load_prompts(path, "audio")
    assert audio[0].text is None and audio[0].audio == rows[0]["question_audio"]["bytes"]
    assert [_level_db(p) for p in load_prompts(path, "both")] == pytest.approx([-10, -60], abs=1)
    trainer = Trainer(toy_config(tmp_path, data=str(path), steps=1, prompts_per_step=2, group_size=2))
    assert [m["step"] for m in trainer.run()] == [1]

    rows[1]["label"] = 7
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=r"train-00000-of-00001.parquet:row 2: label: unknown label 7"):
        load_prompts(path, "text")
    pq.write_table(pa.Table.from_pylist(rows).drop(["question_audio"]), path)
    with pytest.raises(DataError, match=r"parquet: question_audio: column required in audio\+text mode"):
        load_prompts(path, "both")


def test_a_parquet_audio_path_may_not_lead_outside_its_folder(tmp_path):
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    row = {"prompt": [{"role": "user", "content": "<audio>\ncue"}], "audios": ["../secret.wav"],
           "reward_model": {"ground_truth": "entailed", "style": "rule"}, "extra_info": {"id": "q1"}}
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "data" / "train.parquet")
    with pytest.raises(DataError, match=r"train.parquet:row 1: audios: '../secret.wav' leads outside"):
        load_prompts(tmp_path / "data" / "train.parquet", "audio")


def test_the_instruction_is_read_after_each_question(tmp_path):
    """What the smollm2 config shows a small model: the reply layout, after the question in text mode, alone in
    audio mode."""
    layout = "Reply in exactly this form:\n<think> why </think>\nAnswer: entailed"
    text = Trainer(toy_config(tmp_path / "text", steps=1, instruction=layout + "\n"))
    item = tiny.toy_items(1)[0]
    assert text.prompts[0].text == f"{item['question_text']}\n\n{layout}"
    assert text.policy.render(text.prompts[0]).startswith(f"{item['question_text']}\n\nReply in exactly")
    items = _with_audio(tmp_path, tiny.toy_items(2), [-10, -60])
    data = write_jsonl(tmp_path / "audio.jsonl", items)
    assert [p.text for p in with_instruction(load_prompts(data, "audio"), layout)] == [layout, layout]
