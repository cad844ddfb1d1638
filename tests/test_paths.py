"""The corpus folder's boundary (issue 15): audio is read only from inside the manifest's folder, no output folder
replaces the corpus it is made from, no output replaces something that is not a regular file, and a pipeline's stage
names are plain file names."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from factories import item, soundmind_line, text_pipeline, write_jsonl, write_tone

OUTSIDE = "leads outside the manifest's folder"


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, to show a command left it as it was."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def hf_env(tmp_path) -> dict[str, str]:
    """publish loads what it built with `datasets`: its caches stay in the test's folder."""
    return {"HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(tmp_path / "ds-cache"),
            "HF_HUB_DISABLE_TELEMETRY": "1"}


# ---------------------------------------------------------------------------------- audio from outside the corpus
def corpus_pointing_out(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A one-item corpus whose question audio is a real, correctly described file outside the corpus folder, named
    by an absolute path, a `..` path, a symlink inside the corpus, or a path with a NUL byte. Returns the manifest
    and the path it gives."""
    root = tmp_path / "corpus"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere" / "q.flac"
    audio = write_tone(elsewhere)
    if how == "symlink":
        (root / "audio").mkdir()
        (root / "audio" / "q.flac").symlink_to(elsewhere)
    path = {"absolute": str(elsewhere), "dotdot": "../elsewhere/q.flac", "symlink": "audio/q.flac",
            "nul": "audio/q\0.flac"}[how]
    return write_jsonl(root / "manifest.jsonl", [item("a", question_audio={**audio, "path": path})]), path


@pytest.mark.parametrize("how, reason", [
    ("absolute", "is absolute; audio paths are relative to the manifest's folder"),
    ("dotdot", OUTSIDE),
    ("symlink", OUTSIDE),
    ("nul", "contains a NUL byte"),
])
def test_publish_and_export_read_no_audio_from_outside_the_corpus_folder(tmp_path, run_cli, hf_env, how, reason):
    manifest, path = corpus_pointing_out(tmp_path, how)
    for number, command in enumerate([("publish", "--local-dir"), ("export", "--format", "verl", "--out"),
                                      ("export", "--format", "soundmind-hub", "--out")]):
        out = tmp_path / f"out{number}"
        proc = run_cli(command[0], manifest, *command[1:], out, env=hf_env, check_rc=1)
        assert proc.stderr.strip().splitlines()[-1].startswith(
            f"error: {manifest}:1: question_audio.path: {path}: {reason}"), (command, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not out.exists() or files(out) == {}  # nothing built from it


@pytest.mark.parametrize("how, reason", [("symlink", OUTSIDE), ("nul", "contains a NUL byte")])
def test_validate_fails_audio_outside_the_corpus_folder_as_a_file_check(tmp_path, run_cli, how, reason):
    """The item schema already refuses absolute and `..` paths; a symlink out and a NUL byte pass it."""
    manifest, path = corpus_pointing_out(tmp_path, how)
    report = tmp_path / "report.json"
    proc = run_cli("validate", manifest, "--audio", "--json", report, check_rc=1)
    expected = f"{manifest}:1: question_audio.path: {path}: {reason}"
    assert [line for line in proc.stdout.splitlines() if line.startswith(expected)], proc.stdout
    assert "Traceback" not in proc.stderr
    failure, = [f for f in json.loads(report.read_text())["failures"] if f["field"] == "question_audio.path"]
    assert failure["check"] == "file_exists"


# ----------------------------------------------------------------------------- output folders over the corpus
def synthesized_corpus(root: Path) -> Path:
    """A corpus laid out as synthesis lays it out: manifest.jsonl and audio/<split>/<id>/question.flac."""
    audio = write_tone(root / "audio" / "train" / "a" / "question.flac")
    return write_jsonl(root / "manifest.jsonl", [item("a", question_audio={**audio, "path": "audio/train/a/question.flac"})])


@pytest.mark.parametrize("where", ["corpus folder", "its parent", "its audio folder"])
def test_export_and_publish_refuse_an_output_folder_that_is_or_holds_the_corpus(tmp_path, run_cli, hf_env, where):
    root = tmp_path / "corpus"
    manifest = synthesized_corpus(root)
    out = {"corpus folder": root, "its parent": tmp_path, "its audio folder": root / "audio"}[where]
    before, beside = files(root), sorted(tmp_path.iterdir())
    for command in [("export", "--format", "verl", "--out"), ("export", "--format", "soundmind-hub", "--out"),
                    ("publish", "--local-dir")]:
        proc = run_cli(command[0], manifest, *command[1:], out, env=hf_env, check_rc=2)
        assert proc.stderr.startswith(f"error: {command[-1]} {out}: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert files(root) == before and sorted(tmp_path.iterdir()) == beside


def test_synthesis_refuses_to_write_its_manifest_over_its_input(tmp_path, run_cli):
    """Synthesis may write into the input's folder (a pipeline's work dir does), never over the input itself."""
    root = tmp_path / "corpus"
    manifest = synthesized_corpus(root)
    before = files(root)
    proc = run_cli("synthesize", manifest, "--out", root, "--backend", "espeak", check_rc=2)
    assert proc.stderr.strip() == (f"error: --out {root}: would overwrite the input manifest {manifest}; "
                                   f"choose another folder")
    assert files(root) == before and not (root / ".cache").exists()


@pytest.mark.parametrize("name", [".", "..", "export\n"])
def test_a_stage_name_that_is_not_a_plain_file_name_is_refused_before_anything_runs(tmp_path, run_cli, name):
    """A stage's name names its output folder: "." would make it the work dir, ".." the folder above."""
    pipeline = text_pipeline(tmp_path, extra=f"""  - stage: export
    name: {json.dumps(name)}
    with: {{format: verl, modality: text}}
""")
    beside = sorted(tmp_path.iterdir())
    proc = run_cli("run", pipeline, "--workdir", tmp_path / "work", check_rc=2)
    assert proc.stderr.startswith(f"error: {pipeline}: stages.4.name: ") and proc.stderr.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == beside  # no work dir, nothing beside it


# ------------------------------------------------------------------------------ outputs that are not regular files
def make_odd_output(folder: Path, kind: str) -> Path:
    path = folder / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        (folder / "real.jsonl").write_text("keep\n")
        path.symlink_to("real.jsonl")
    return path


def assert_left_alone(path: Path, kind: str) -> None:
    mode = os.lstat(path).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISLNK(mode)
    if kind == "symlink":
        assert (path.parent / "real.jsonl").read_text() == "keep\n"


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_alone(tmp_path, run_cli, kind):
    source = write_jsonl(tmp_path / "src.jsonl", [soundmind_line("a")])
    work = tmp_path / "work"
    work.mkdir()
    out = make_odd_output(work, kind)
    proc = run_cli("ingest", source, "--format", "soundmind", "--split", "train", "--out", out, check_rc=2)
    assert proc.stderr.strip() == f"error: {out}: exists and is not a regular file; refusing to replace it"
    assert_left_alone(out, kind)
    assert {path.name for path in work.iterdir()} == ({"out.jsonl", "real.jsonl"} if kind == "symlink" else {"out.jsonl"})


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_synthesis_refuses_an_odd_manifest_path_before_it_changes_anything(tmp_path, run_cli, kind):
    """Synthesis removes the manifest it is about to rewrite before it starts: the check must come before that."""
    items = write_jsonl(tmp_path / "items.jsonl", [item("a", answer=None)])
    out = tmp_path / "out"
    out.mkdir()
    target = make_odd_output(out, kind).rename(out / "manifest.jsonl")
    proc = run_cli("synthesize", items, "--out", out, "--backend", "espeak", check_rc=2)
    assert proc.stderr.strip() == f"error: {target}: exists and is not a regular file; refusing to replace it"
    assert_left_alone(target, kind)
    assert not (out / ".cache").exists()
