"""Inputs as Windows editors, careless pipes and hostile files give them (issue 26, items 8, 10 and 16): a byte-order
mark and CRLF line ends in a source file, a stdin line that is not UTF-8, a YAML file of nested aliases. Each is
read or refused in one line; nothing hangs, nothing prints a traceback."""

import json
import subprocess
import sys

import pytest
from factories import logiqa_line, read_jsonl, soundmind_line, write_jsonl

from soundmind_data.core.errors import DataError
from soundmind_data.core.jsonl import count_lines, iter_lines, iter_manifest_lines
from soundmind_data.engines.importers import ingest

BOM = b"\xef\xbb\xbf"


# ------------------------------------------------------------------------------------------ item 8: BOM and CRLF
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("fmt, line", [("logiqa2-nli", lambda n: logiqa_line(conclusion=f"Claim {n}")),
                                       ("soundmind", lambda n: soundmind_line(f"s{n}", conclusion=f"Claim {n}"))])
def test_ingest_keeps_the_first_line_after_a_byte_order_mark(tmp_path, fmt, line, newline):
    src = tmp_path / "dev.txt"
    src.write_bytes(BOM + b"".join(json.dumps(line(n)).encode() + newline for n in (1, 2, 3)))
    result = ingest([src], fmt=fmt, split="dev", out=tmp_path / "items.jsonl")
    assert (result.items, result.rejected) == (3, 0), (tmp_path / "items.rejects.jsonl").read_text()
    items = read_jsonl(tmp_path / "items.jsonl")
    assert [(i["source"]["line"], i["conclusion"]) for i in items] == [(1, "Claim 1"), (2, "Claim 2"), (3, "Claim 3")]


def test_a_bom_is_skipped_by_every_reader_of_outside_files_but_refused_in_our_own_manifests(tmp_path):
    """Second passes over a manifest (split, balance) read its raw lines again: a manifest that passed its first
    pass only because the BOM was skipped would fail them with a traceback, so a manifest keeps refusing one."""
    src = tmp_path / "items.jsonl"
    src.write_bytes(BOM + b'{"id": "a"}\r\n\r\n{"id": "b"}\r\n')
    assert [(line.number, line.record) for line in iter_lines(src)] == [(1, {"id": "a"}), (3, {"id": "b"})]
    assert count_lines(src) == 2
    with pytest.raises(DataError, match=r"items.jsonl:1: .*byte order mark"):
        list(iter_manifest_lines(src))


# ------------------------------------------------------------------------------------- item 16: stdin not UTF-8
def speech_text(*args: bytes, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """The command on raw bytes (run_cli speaks text, which could not carry them)."""
    return subprocess.run([sys.executable, "-m", "soundmind_data", "speech-text", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_speech_text_names_a_stdin_line_that_is_not_utf8():
    proc = speech_text(stdin="If R → W.\n".encode() + b"Latin-1: caf\xe9\nmore\n")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.decode() == "If R implies W.\n"
    assert proc.stderr.decode().strip().splitlines()[-1] == "error: <stdin>:2: not UTF-8 text (byte 13 of the line)"
    assert b"Traceback" not in proc.stderr


def test_speech_text_refuses_a_text_argument_that_is_not_utf8():
    proc = speech_text(b"caf\xe9")
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr.decode().strip() == "error: TEXT: not UTF-8 text"


# ------------------------------------------------------------------------------- item 10: YAML "billion laughs"
def nested_aliases(depth: int = 9) -> str:
    """A flow list of `depth` levels, each nine aliases of the one before: 9**depth strings in ~40 bytes a level."""
    levels = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"&l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, depth)]
    return f"[{', '.join(levels)}]"


@pytest.fixture
def laughs(tmp_path):
    """Write `name` with `key: <nested aliases>` on its second line: a key whose schema wants another type, so the
    error message would quote the whole expanded value."""

    def write(name: str, key: str, first_line: str = "# a hostile file") -> str:
        document = f"{first_line}\n{key}: {nested_aliases()}\n"
        assert len(nested_aliases()) < 430  # the size of the example
        (tmp_path / name).write_text(document, encoding="utf-8")
        return name

    return write


def _refused(run_cli, tmp_path, *args) -> str:
    """Run the command (a regression that expands the aliases hangs: the timeout fails the test instead); it must
    end with a one-line usage error, short whatever the document expands to."""
    proc = run_cli(*args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and len(proc.stderr) < 300, proc.stderr[-2000:]
    return proc.stderr.strip()


def test_every_yaml_file_refuses_aliases(run_cli, tmp_path, laughs):
    manifest = write_jsonl(tmp_path / "items.jsonl", []).name
    pipeline = laughs("pipeline.yaml", "name", "stages: [{stage: ingest, with: {sources: [x], format: soundmind, "
                                               "split: dev}}]")
    expected = "2: YAML alias *l0: aliases are not accepted; write the value out"
    assert _refused(run_cli, tmp_path, "run", pipeline, "--workdir", "w") == f"error: pipeline.yaml:{expected}"
    policy = laughs("policy.yaml", "duplicate")
    assert _refused(run_cli, tmp_path, "curate", manifest, "--policy", policy, "--out", "o.jsonl") == \
        f"error: policy.yaml:{expected}"
    checks = laughs("checks.yaml", "clip_level")
    assert _refused(run_cli, tmp_path, "validate", manifest, "--config", checks) == f"error: checks.yaml:{expected}"
    train = laughs("train.yaml", "model")
    assert _refused(run_cli, tmp_path, "train", "--config", train) == f"error: train.yaml:{expected}"


def test_a_set_value_refuses_aliases(run_cli, tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("stages: [{stage: ingest, with: {sources: [x], format: soundmind, split: dev}}]\n")
    stderr = _refused(run_cli, tmp_path, "run", pipeline, "--workdir", "w", "--set", f"ingest.split={nested_aliases()}")
    assert stderr == "error: --set ingest.split: YAML alias *l0: aliases are not accepted; write the value out"


def test_a_long_value_is_quoted_short(run_cli, tmp_path):
    """Without aliases a value is as long as its file, and a schema message quotes it whole: the message is cut."""
    (tmp_path / "policy.yaml").write_text(f"duplicate: [{', '.join(['lol'] * 5000)}]\n")
    write_jsonl(tmp_path / "items.jsonl", [])
    stderr = _refused(run_cli, tmp_path, "curate", "items.jsonl", "--policy", "policy.yaml", "--out", "o.jsonl")
    assert stderr.startswith("error: policy.yaml: duplicate: ['lol', 'lol'") and stderr.endswith("is not one of "
                                                                                                 "['drop', 'keep']")
