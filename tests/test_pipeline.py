"""The pipeline runner on the text stages (the synthesis-backed demo pipeline has its own end-to-end test)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from factories import logiqa_line, soundmind_line, text_pipeline, write_jsonl


def _log(workdir):
    return [json.loads(line) for line in (workdir / "run-log.jsonl").read_text().splitlines()]


def test_rerun_skips_unchanged_stages_and_reruns_changed_ones(tmp_path, run_cli):
    work = tmp_path / "work"
    proc = run_cli("run", text_pipeline(tmp_path), "--workdir", work, check_rc=0)
    assert "[4/4] balance: running" in proc.stderr
    first = (work / "04-balance.jsonl").read_bytes()
    assert [e["status"] for e in _log(work)] == ["ran"] * 4
    assert _log(work)[0]["command"].startswith("soundmind-data ingest ")

    run_cli("run", text_pipeline(tmp_path), "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[4:]] == ["skipped"] * 4
    assert (work / "04-balance.jsonl").read_bytes() == first

    # a changed option re-runs that stage only; its output changes
    run_cli("run", text_pipeline(tmp_path, "upsample"), "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[8:]] == ["skipped", "skipped", "skipped", "ran"]
    assert (work / "04-balance.jsonl").read_bytes() != first

    # a deleted output: that stage runs again and rewrites the same output, so the stages after it see an unchanged
    # input and are skipped
    split_output = (work / "02-split.jsonl").read_text()
    (work / "02-split.jsonl").unlink()
    run_cli("run", text_pipeline(tmp_path, "upsample"), "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[12:]] == ["skipped", "ran", "skipped", "skipped"]
    assert (work / "02-split.jsonl").read_text() == split_output


def test_from_and_only(tmp_path, run_cli):
    work = tmp_path / "work"
    pipeline = text_pipeline(tmp_path)
    proc = run_cli("run", pipeline, "--workdir", work, "--only", "split", check_rc=2)
    assert "stage 'ingest' before it has not run yet" in proc.stderr
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    run_cli("run", pipeline, "--workdir", work, "--from", "audit", check_rc=0)
    assert [e["status"] for e in _log(work)[4:]] == ["skipped", "skipped", "ran", "ran"]
    run_cli("run", pipeline, "--workdir", work, "--only", "split", check_rc=0)
    assert [(e["stage"], e["status"]) for e in _log(work)[8:]] == [("split", "ran")]


def test_failed_stage_stops_the_run_and_the_rerun_resumes(tmp_path, run_cli):
    work = tmp_path / "work"
    pipeline = text_pipeline(tmp_path)
    source = tmp_path / "src.jsonl"
    good = source.read_text()
    source.write_text(good + "{broken\n")  # ingest rejects a line: exit 1 stops the pipeline
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=1)
    assert "run: stage ingest failed (exit 1)" in proc.stderr
    assert f"failures of ingest: 1 -> {work / '01-ingest.rejects.jsonl'}" in proc.stdout
    assert [e["status"] for e in _log(work)] == ["failed"]
    assert _log(work)[0]["failures"] == 1
    assert not (work / "02-split.jsonl").exists()
    source.write_text(good)
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[1:]] == ["ran"] * 4
    assert "failures of" not in proc.stdout

    # a failing stage that rewrote its manifest (an item more, a line rejected) after a good run: the manifest is
    # still the pipeline's own, so the next run re-runs the stage instead of taking it for an outside edit
    source.write_text(good + json.dumps(soundmind_line("extra", conclusion="Claim extra")) + "\n{broken\n")
    run_cli("run", pipeline, "--workdir", work, check_rc=1)
    source.write_text(good)
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[6:]] == ["ran", "skipped", "skipped", "skipped"]


def test_a_manifest_changed_outside_the_pipeline_is_not_overwritten(tmp_path, run_cli):
    work = tmp_path / "work"
    pipeline = text_pipeline(tmp_path)
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    balanced = work / "04-balance.jsonl"
    new_items = write_jsonl(tmp_path / "new.jsonl", [soundmind_line("new1", conclusion="A brand new claim")])
    run_cli("add", new_items, "--to", balanced, check_rc=0)  # a contributor adds an item to the pipeline's output
    contributed = balanced.read_text()

    proc = run_cli("run", pipeline, "--workdir", work, check_rc=2)
    assert proc.stderr.startswith(f"error: {balanced}: changed since the pipeline wrote it (stage balance)")
    assert "--from balance" in proc.stderr
    assert balanced.read_text() == contributed and len(_log(work)) == 4  # nothing ran, nothing was overwritten

    run_cli("run", pipeline, "--workdir", work, "--from", "balance", check_rc=0)  # rebuilt, deliberately
    assert "new1" not in balanced.read_text()
    assert [e["status"] for e in _log(work)[4:]] == ["skipped", "skipped", "skipped", "ran"]


def test_a_copied_work_dir_keeps_its_finished_stages_and_its_guard(tmp_path, run_cli):
    pipeline = text_pipeline(tmp_path)
    run_cli("run", pipeline, "--workdir", tmp_path / "work", check_rc=0)
    copy = tmp_path / "my-corpus"
    shutil.copytree(tmp_path / "work", copy)  # `cp -r demo-out my-corpus`
    run_cli("run", pipeline, "--workdir", copy, check_rc=0)
    assert [e["status"] for e in _log(copy)[4:]] == ["skipped"] * 4  # nothing to redo in the copy

    balanced = copy / "04-balance.jsonl"
    new_items = write_jsonl(tmp_path / "new.jsonl", [soundmind_line("new1", conclusion="A brand new claim")])
    run_cli("add", new_items, "--to", balanced, check_rc=0)
    proc = run_cli("run", pipeline, "--workdir", copy, check_rc=2)  # the copy's own manifest is guarded, not the original's
    assert proc.stderr.startswith(f"error: {balanced}: changed since the pipeline wrote it")
    assert "new1" in balanced.read_text()


def test_a_changed_file_named_by_an_option_reruns_its_stage(tmp_path, run_cli):
    work = tmp_path / "work"
    gold_lines = [logiqa_line(conclusion=f"Claim {n}", label="entailed" if n % 3 == 0 else "not entailed")
                  for n in range(12)]
    gold = write_jsonl(tmp_path / "gold.jsonl", gold_lines)
    pipeline = text_pipeline(tmp_path, extra=f"  - stage: audit\n    name: gold\n    with: {{gold: [{gold}]}}\n")
    report = work / "05-gold.report.json"
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert json.loads(report.read_text())["gold_disagree"] == 0

    write_jsonl(gold, [{**line, "label": "not entailed" if line["label"] == "entailed" else "entailed"}
                       for line in gold_lines])
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert "gold: unchanged, skipped" not in proc.stderr
    assert [e["status"] for e in _log(work)[5:]] == ["skipped"] * 4 + ["ran"]
    assert json.loads(report.read_text())["gold_disagree"] == 8  # the 8 items balance kept, all flipped


@pytest.mark.parametrize("signum, exit_code, said", [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")])
def test_an_interrupted_stage_stops_the_run_with_130_or_143(tmp_path, signum, exit_code, said):
    work = tmp_path / "work"
    fifo = tmp_path / "src.fifo"
    os.mkfifo(fifo)  # ingest blocks opening it, with no writer: a stage under way when the signal comes
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"stages:\n  - stage: ingest\n"
                        f"    with: {{sources: [{fifo}], format: soundmind, split: train}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "soundmind_data", "run", str(pipeline), "--workdir", str(work)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert "ingest: running" in proc.stderr.readline()
    time.sleep(0.5)  # into the stage, blocked on the FIFO
    proc.send_signal(signum)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == exit_code, stderr
    assert "run: stopped in stage ingest" in stderr and stderr.rstrip().endswith(said)
    assert "failed" not in stderr
    assert [(e["stage"], e["status"], e["exit_code"]) for e in _log(work)] == [("ingest", "failed", 130)]


def test_bad_pipelines_are_usage_errors_before_anything_runs(tmp_path, run_cli):
    work = tmp_path / "work"
    bad_option = text_pipeline(tmp_path, extra="  - stage: publish\n    with: {colour: blue}\n")
    proc = run_cli("run", bad_option, "--workdir", work, check_rc=2)
    assert "stage 5 (publish): no option 'colour'" in proc.stderr
    assert not (work / "01-ingest.jsonl").exists()

    (tmp_path / "bad.yaml").write_text("stages:\n  - stage: ingest\n   with: [\n")
    proc = run_cli("run", tmp_path / "bad.yaml", check_rc=2)
    assert proc.stderr.startswith(f"error: {tmp_path / 'bad.yaml'}:") and "Traceback" not in proc.stderr

    (tmp_path / "unknown.yaml").write_text("stages:\n  - stage: ingest\n  - stage: dance\n")
    proc = run_cli("run", tmp_path / "unknown.yaml", check_rc=2)
    assert "stages.1.stage" in proc.stderr

    proc = run_cli("run", text_pipeline(tmp_path), "--set", "balance.strategy", check_rc=2)
    assert "expected STAGE.OPTION=VALUE" in proc.stderr


def test_overrides_for_trial_runs(tmp_path, run_cli):
    work = tmp_path / "work"
    run_cli("run", text_pipeline(tmp_path), "--workdir", work, "--limit", "5", "--skip", "audit",
            "--set", "split.ratios=train=0.6,test=0.4", check_rc=0)
    assert [e["stage"] for e in _log(work)] == ["ingest", "split", "balance"]
    assert len((work / "01-ingest.jsonl").read_text().splitlines()) == 5
    assert "--ratios train=0.6,test=0.4" in _log(work)[1]["command"]
