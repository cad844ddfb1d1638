import json
import os
import signal
import subprocess
import sys
import time

import pytest
from factories import logiqa_line, read_jsonl, soundmind_line, write_jsonl

from soundmind_data.core import schemas
from soundmind_data.engines import importers as ingest_module
from soundmind_data.engines.importers import ingest
from soundmind_data.text.template import render_question


def test_logiqa_string_list_and_empty_premises(tmp_path):
    src = write_jsonl(tmp_path / "dev.txt", [
        logiqa_line(major="All cats are animals. ", conclusion=" Tom is an animal."),
        logiqa_line(major=["No reptile has fur", " Every snake is a reptile."], minor="Kaa is a snake",
                    conclusion="Kaa has no fur", label="Not Entailed"),
        logiqa_line(major=[], minor="Ann did not train", conclusion="Whoever trains is selected", label="not-entailed"),
    ])
    result = ingest([src], fmt="logiqa2-nli", split="dev", out=tmp_path / "items.jsonl")
    assert (result.items, result.rejected) == (3, 0)
    items = read_jsonl(tmp_path / "items.jsonl")
    assert [i["id"] for i in items] == ["dev-000001", "dev-000002", "dev-000003"]
    first, second, third = items
    assert first["major_premise"] == "All cats are animals" and first["conclusion"] == "Tom is an animal"
    assert first["question_text"] == render_question("All cats are animals", "Tom is a cat", "Tom is an animal")
    assert first["label"] == 1 and first["answer_text"] is None
    assert first["source"] == {"dataset": "logiqa2-nli", "file": str(src), "line": 1, "gold_label": 1}
    assert second["major_premise"] == "No reptile has fur. Every snake is a reptile"
    assert 'Major premise is "No reptile has fur. Every snake is a reptile".' in second["question_text"]
    assert second["label"] == 0
    assert third["major_premise"] == "" and 'Major premise is "".' in third["question_text"]
    assert third["source"]["line"] == 3 and third["source"]["gold_label"] == 0
    for item in items:
        assert schemas.first_error("item", item) is None


def test_soundmind_parses_triplet_back(tmp_path):
    line = soundmind_line("0577", major="Bones were found in caves", minor="No elephant  bones were found?",
                          conclusion="They hunted well", label=0, answer="Reasoning...\n\nAnswer: not entailed.")
    src = write_jsonl(tmp_path / "sm.jsonl", [line, soundmind_line("0578", answer="")])
    ingest([src], fmt="soundmind", split="test", out=tmp_path / "items.jsonl")
    first, second = read_jsonl(tmp_path / "items.jsonl")
    assert first["id"] == "0577" and first["split"] == "test" and first["label"] == 0
    assert (first["major_premise"], first["minor_premise"], first["conclusion"]) == (
        "Bones were found in caves", "No elephant  bones were found?", "They hunted well")
    assert first["question_text"] == line["user_content"]  # kept byte for byte
    assert first["answer_text"] == "Reasoning...\n\nAnswer: not entailed."
    assert first["source"] == {"dataset": "soundmind", "file": str(src), "line": 1}
    assert second["answer_text"] is None  # an empty answer is "no answer", for the audit to count


BAD_LINES = [
    ("{not json", "malformed JSON"),
    ('["a list"]', "expected a JSON object"),
    (soundmind_line("bad1") | {"label": "entailed"}, "label: expected 0 or 1"),
    (soundmind_line("bad2") | {"label": 3}, "label: unknown label 3"),
    ({k: v for k, v in soundmind_line("bad3").items() if k != "answer"}, "answer: missing"),
    (soundmind_line("bad4") | {"user_content": 42}, "user_content: expected a string, got int"),
    (soundmind_line("../etc/passwd"), "id: unsafe id"),
    (soundmind_line("a" * 65), "id: unsafe id"),
    (soundmind_line("bad5") | {"user_content": "Is this entailed?"}, "user_content: does not follow"),
    (soundmind_line("good"), "id: duplicate id 'good'"),
]


def test_bad_soundmind_lines_are_rejected_and_good_lines_kept(tmp_path):
    src = tmp_path / "mixed.jsonl"
    write_jsonl(src, [soundmind_line("good")] + [line for line, _ in BAD_LINES] + [soundmind_line("good2", label=0)])
    with open(src, "ab") as out:  # one line of invalid UTF-8, then a good line after it
        out.write(b'{"id": "x\xff\xfe"}\n' + json.dumps(soundmind_line("good3")).encode() + b"\n")
    result = ingest([src], fmt="soundmind", split="train", out=tmp_path / "out.jsonl")
    assert [i["id"] for i in read_jsonl(tmp_path / "out.jsonl")] == ["good", "good2", "good3"]
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert result.rejected == len(rejects) == len(BAD_LINES) + 1
    for reject, (_, reason), line in zip(rejects, BAD_LINES, range(2, 100)):
        assert reject["line"] == line and reject["file"] == str(src)
        assert reason in reject["reason"], reject
        assert schemas.first_error("reject", reject) is None
    assert rejects[-1]["line"] == len(BAD_LINES) + 3 and "invalid UTF-8" in rejects[-1]["reason"]


@pytest.mark.parametrize("line, reason", [
    (logiqa_line(label="maybe"), "label: unknown label 'maybe'"),
    (logiqa_line(label=1), "label: expected a word, got 1"),
    (logiqa_line(major=["ok", 3]), "major_premise: expected a string or a list of strings"),
    ({k: v for k, v in logiqa_line().items() if k != "minor_premise"}, "minor_premise: missing"),
    (logiqa_line(conclusion="  "), "conclusion: empty"),
    (logiqa_line(conclusion=" . "), "conclusion: empty"),  # the template trims its full stop: nothing is left
])
def test_bad_logiqa_lines(tmp_path, line, reason):
    src = write_jsonl(tmp_path / "dev.txt", [logiqa_line(), line])
    result = ingest([src], fmt="logiqa2-nli", split="dev", out=tmp_path / "out.jsonl")
    assert result.items == 1
    (reject,) = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert reject["line"] == 2 and reject["reason"] == reason
    # the input schema agrees with the importer about what is bad, and about what is good
    assert schemas.first_error("logiqa2-nli", line) is not None
    assert schemas.first_error("logiqa2-nli", logiqa_line()) is None


def test_input_schema_agrees_on_soundmind_lines():
    assert schemas.first_error("soundmind-annotation", soundmind_line("ok")) is None
    for line, _ in BAD_LINES[2:8]:
        assert schemas.first_error("soundmind-annotation", line) is not None, line


def test_empty_file_is_a_reject(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    result = ingest([tmp_path / "empty.jsonl"], fmt="soundmind", split="dev", out=tmp_path / "out.jsonl")
    assert result.items == 0
    assert read_jsonl(tmp_path / "out.rejects.jsonl") == [
        {"file": str(tmp_path / "empty.jsonl"), "line": 0, "reason": "empty file: no JSON lines"}]
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_cli_exit_codes_and_summary(tmp_path, run_cli):
    good = write_jsonl(tmp_path / "good.jsonl", [soundmind_line("a"), soundmind_line("b", label=0)])
    proc = run_cli("ingest", good, "--format", "soundmind", "--split", "dev", "--out", tmp_path / "o.jsonl", check_rc=0)
    assert "2 items (1 not-entailed, 1 entailed)" in proc.stderr and "0 rejected" in proc.stderr
    bad = write_jsonl(tmp_path / "bad.jsonl", [soundmind_line("a"), "{oops"])
    proc = run_cli("ingest", bad, "--format", "soundmind", "--split", "dev", "--out", tmp_path / "b.jsonl", check_rc=1)
    assert "1 rejected" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    dev_v1 = write_jsonl(tmp_path / "v1" / "dev.txt", [logiqa_line()])
    dev_v2 = write_jsonl(tmp_path / "v2" / "dev.txt", [logiqa_line(conclusion="Tom is a dog.")])
    for args, message in [
        ((tmp_path / "missing.jsonl", "--format", "soundmind"), "missing.jsonl: no such file"),
        ((good, "--format", "csv"), "unknown format 'csv'"),
        ((dev_v1, dev_v2, "--format", "logiqa2-nli"), f"{dev_v1} and {dev_v2} would both give ids dev-NNNNNN"),
        ((good, "--format", "soundmind", "--out", good), f"{good}: is also a SOURCE"),
    ]:
        out = () if "--out" in args else ("--out", tmp_path / "x.jsonl")
        proc = run_cli("ingest", *args, "--split", "dev", *out, check_rc=2)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()
    assert [line["id"] for line in read_jsonl(good)] == ["a", "b"]  # the source refused as --out is untouched


def test_interrupted_ingest_leaves_no_file_that_looks_valid(tmp_path, monkeypatch):
    previous = tmp_path / "out.jsonl"
    previous.write_text('{"id": "from-an-earlier-run"}\n')
    src = write_jsonl(tmp_path / "sm.jsonl", [soundmind_line(f"i{n}") for n in range(5)])
    calls = 0
    real = ingest_module.from_soundmind

    def crash_on_third(record, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real(record, **kwargs)

    monkeypatch.setitem(ingest_module.CONVERTERS, "soundmind", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        ingest([src], fmt="soundmind", split="dev", out=previous)
    assert previous.read_text() == '{"id": "from-an-earlier-run"}\n'  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "sm.jsonl"]  # no temp files left


def test_killed_process_leaves_no_partial_manifest(tmp_path):
    # A slow source (a named pipe fed line by line) keeps the real process mid-write when it is killed.
    fifo = tmp_path / "slow.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "soundmind_data", "ingest", str(fifo), "--format", "soundmind",
                             "--split", "dev", "--out", str(out)], stderr=subprocess.DEVNULL)
    with open(fifo, "w") as feed:
        for n in range(3):
            feed.write(json.dumps(soundmind_line(f"i{n}")) + "\n")
            feed.flush()
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    assert not (tmp_path / "out.rejects.jsonl").exists()


@pytest.mark.parametrize("signum, rc, message", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupt_and_terminate_exit_cleanly_and_leave_no_temp(tmp_path, signum, rc, message):
    # Ctrl-C, or SIGTERM as Slurm and Kubernetes send it: the temp files are removed and the exit code says which.
    fifo = tmp_path / "slow.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "soundmind_data", "ingest", str(fifo), "--format", "soundmind",
                             "--split", "dev", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    with open(fifo, "w") as feed:
        for n in range(3):
            feed.write(json.dumps(soundmind_line(f"i{n}")) + "\n")
            feed.flush()
        deadline = time.monotonic() + 30
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl~")] and time.monotonic() < deadline:
            time.sleep(0.05)  # until the writer's temp exists: the process is mid-write
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == rc
    assert stderr.strip() == message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.jsonl"]
