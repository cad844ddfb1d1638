"""The pipeline runner on the text stages (the synthesis-backed demo pipeline has its own end-to-end test)."""

import json

from factories import text_pipeline


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

    # an output edited by hand is not trusted: that stage runs again, and rewrites the same output, so the stages
    # after it see an unchanged input and are skipped
    split_output = (work / "02-split.jsonl").read_text()
    (work / "02-split.jsonl").write_text(split_output.replace("Claim 1", "Claim one"))
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
    assert [e["status"] for e in _log(work)] == ["failed"]
    assert not (work / "02-split.jsonl").exists()
    source.write_text(good)
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert [e["status"] for e in _log(work)[1:]] == ["ran"] * 4


def test_bad_pipelines_are_usage_errors_before_anything_runs(tmp_path, run_cli):
    work = tmp_path / "work"
    bad_option = text_pipeline(tmp_path, extra="  - stage: publish\n    with: {colour: blue}\n")
    proc = run_cli("run", bad_option, "--workdir", work, check_rc=2)
    assert "stage 5 (publish): No such option: --colour" in proc.stderr
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
