import json

from factories import item, write_jsonl

from soundmind_data.core import schemas


def test_valid_manifest_passes(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "m.jsonl", [item("a"), item("b", label=0, answer=None)])
    proc = run_cli("validate", manifest, "--json", tmp_path / "r.json", check_rc=0)
    assert f"{manifest}:" not in proc.stdout  # no failure lines
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["items"], report["failed_items"], report["failures"]) == (2, 0, [])
    assert schemas.first_error("validate-report", report) is None


def test_every_failure_is_reported_with_file_line_and_field(tmp_path, run_cli):
    bad_audio = item("e", question_audio={"path": "/abs/q.flac", "sha256": "xyz", "sample_rate": 16000, "duration_s": 1.0})
    lines = [
        item("a"),
        item("b", label=2),
        {k: v for k, v in item("c").items() if k != "conclusion"},
        item("../d"),
        bad_audio,
        "{broken",
        item("a"),
        item("f") | {"source": {"dataset": "soundmind", "file": "x", "line": "7"}},
    ]
    manifest = write_jsonl(tmp_path / "m.jsonl", lines)
    proc = run_cli("validate", manifest, "--json", tmp_path / "r.json", check_rc=1)
    out = proc.stdout.splitlines()
    assert f"{manifest}:2: label: 2 is not one of [0, 1]" in out
    assert f"{manifest}:3: conclusion: 'conclusion' is a required property" in out
    assert any(line.startswith(f"{manifest}:4: id: ") for line in out)
    assert any(line.startswith(f"{manifest}:5: question_audio.path: ") for line in out)
    assert any(line.startswith(f"{manifest}:5: question_audio.sha256: ") for line in out)
    assert any(line.startswith(f"{manifest}:6: (line): malformed JSON") for line in out)
    assert f"{manifest}:7: id: duplicate id 'a' (first on line 1)" in out
    assert f"{manifest}:8: source.line: '7' is not of type 'integer'" in out
    assert "Traceback" not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["items"] == 8 and report["failed_items"] == 7
    assert {f["check"] for f in report["failures"]} == {"schema", "json", "unique_id"}
    assert schemas.first_error("validate-report", report) is None


def test_missing_manifest_is_a_usage_error(tmp_path, run_cli):
    proc = run_cli("validate", tmp_path / "nope.jsonl", check_rc=2)
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such file"


def test_an_id_or_split_with_a_trailing_newline_fails(tmp_path, run_cli):
    """A JSON Schema pattern ending in `$` lets Python's regexes accept one final newline; ids and splits become
    folder names, so the schema must refuse it."""
    manifest = write_jsonl(tmp_path / "m.jsonl", [item("demo-x\n"), item("b", split="train\n"), item("c")])
    proc = run_cli("validate", manifest, check_rc=1)
    out = proc.stdout.splitlines()
    assert any(line.startswith(f"{manifest}:1: id: 'demo-x\\n'") for line in out), out
    assert any(line.startswith(f"{manifest}:2: split: 'train\\n'") for line in out), out
    assert not any(line.startswith(f"{manifest}:3:") for line in out)
