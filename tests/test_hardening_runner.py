"""What the commands and the pipeline runner write, and where: no output is an input (issue 26 item 4), the runner
neither follows a symlink nor waits on a FIFO in its work dir (13), a log file is never one of the toolkit's own files
and a log that cannot be written is a warning (15), and a hand-edited state file of the wrong shape is one line (17).
Every run that could hang has a timeout, so a regression fails instead of blocking the suite."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from factories import item, soundmind_line, text_pipeline, write_jsonl

from soundmind_data.core import schemas
from soundmind_data.core.errors import UsageError
from soundmind_data.stages import declaration
from soundmind_data.stages.split import SplitOptions

TIMEOUT_S = 120  # a run of the text pipeline takes seconds; a run blocked on a FIFO never ends


def _manifest(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "m.jsonl", [item(f"i{n}", conclusion=f"Claim {n}", label=n % 2) for n in range(8)])


def _one_error_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    return line


# --------------------------------------------------------------------------------- 4. no output is an input
@pytest.mark.parametrize("args, flag, same_as", [
    (["audit", "{m}", "--json", "{m}"], "--json {m}", "the input manifest {m}"),
    (["validate", "{m}", "--json", "{m}"], "--json {m}", "the input manifest {m}"),
    (["validate", "{m}", "--out", "{m}"], "--out {m}", "the input manifest {m}"),
    (["validate", "{m}", "--out", "{o}", "--json", "{o}"], "--json {o}", "--out {o}"),
    (["split", "{m}", "--out", "{o}", "--json", "{m}"], "--json {m}", "the input manifest {m}"),
    (["split", "{m}", "--out", "{m}"], "--out {m}", "the input manifest {m}"),
    (["balance", "{m}", "--strategy", "downsample", "--out", "{o}", "--json", "{m}"], "--json {m}",
     "the input manifest {m}"),
    (["balance", "{m}", "--strategy", "downsample", "--out", "{m}"], "--out {m}", "the input manifest {m}"),
])
def test_no_output_of_a_stage_command_may_be_its_input(tmp_path, run_cli, args, flag, same_as):
    manifest = _manifest(tmp_path)
    before = manifest.read_bytes()
    names = {"m": manifest, "o": tmp_path / "o.jsonl"}
    proc = run_cli(*[arg.format(**names) for arg in args], check_rc=2)
    assert _one_error_line(proc) == f"error: {flag.format(**names)}: is also {same_as.format(**names)}; " \
                                    f"choose another file"
    assert manifest.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.jsonl"]  # nothing written


def test_paths_are_compared_resolved(tmp_path, run_cli):
    """A symlink to the manifest, or a relative path that leads to it, is the manifest."""
    manifest = _manifest(tmp_path)
    before = manifest.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(manifest)
    run_cli("audit", manifest, "--json", tmp_path / "link.json", check_rc=2)
    proc = run_cli("split", "m.jsonl", "--out", "s.jsonl", "--json", "sub/../m.jsonl", cwd=tmp_path, check_rc=2)
    assert _one_error_line(proc) == "error: --json sub/../m.jsonl: is also the input manifest m.jsonl; " \
                                    "choose another file"
    assert manifest.read_bytes() == before and not (tmp_path / "s.jsonl").exists()


def test_a_stage_side_file_may_not_be_an_input_either():
    """Files a stage declares it writes beside its output (ingest's rejects, curate's decisions) are outputs too."""
    stage = dataclasses.replace(declaration("split"), side_files=lambda out: {"the rejects file": out.with_name("r")})
    files = stage.files(Path("r"), Path("out.jsonl"), SplitOptions(), None)
    with pytest.raises(UsageError, match=r"^the rejects file r: is also the input manifest r; choose another file$"):
        files.check()


@pytest.mark.parametrize("report, same_as", [("01-ingest.jsonl", "the input manifest"),
                                              ("run-log.jsonl", "the run log")])
def test_a_pipeline_report_may_not_be_an_input_or_the_runners_own_file(tmp_path, run_cli, report, same_as):
    work = tmp_path / "work"
    source = write_jsonl(tmp_path / "src.jsonl", [soundmind_line("a"), soundmind_line("b", label=0)])
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"name: t\nstages:\n  - stage: ingest\n    with: {{sources: [{source}], format: soundmind, "
                        f"split: train}}\n  - stage: audit\n    with: {{json: {work / report}}}\n")
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
    line = _one_error_line(proc)
    assert line.startswith(f"error: {pipeline}: ") and f"{work / report}: is also {same_as}" in line
    assert list(work.iterdir()) == []  # nothing ran


# ------------------------------------------------------------- 13. the runner's files: no symlink, no FIFO
def _built(tmp_path: Path, run_cli) -> tuple[Path, Path]:
    pipeline, work = text_pipeline(tmp_path), tmp_path / "work"
    run_cli("run", pipeline, "--workdir", work, check_rc=0, timeout=TIMEOUT_S)
    return pipeline, work


def _replace(path: Path, kind: str, outside: Path) -> None:
    """Put a symlink leading out of the work dir (to a file or a folder) or a FIFO where the runner writes."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(outside)


@pytest.mark.parametrize("name, kind", [
    ("run-log.jsonl", "symlink"), ("run-log.jsonl", "fifo"),
    ("pipeline-state.json", "symlink"), ("pipeline-state.json", "fifo"),
    ("review/sources.json", "fifo"), ("plots/label-balance.png", "symlink"),
    ("review", "symlink"), ("plots", "symlink"), ("04-balance.report.json", "fifo"),
])
def test_the_runner_never_follows_a_symlink_or_waits_on_a_fifo_in_its_work_dir(tmp_path, run_cli, name, kind):
    pipeline, work = _built(tmp_path, run_cli)
    outside = tmp_path / "outside"
    folder = name in ("review", "plots")
    if folder:
        outside.mkdir()
    else:
        outside.write_bytes((work / name).read_bytes())
    before = outside.read_bytes() if not folder else None
    _replace(work / name, kind, outside)
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
    expected = "a symlink" if kind == "symlink" else "a FIFO"
    assert _one_error_line(proc).startswith(f"error: {work / name}: is {expected}, where the runner writes ")
    if folder:
        assert list(outside.iterdir()) == []
    else:
        assert outside.read_bytes() == before


def test_a_symlinked_state_file_is_refused_before_any_stage_runs(tmp_path, run_cli):
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "state.json"
    outside.write_text("{}")
    (work / "pipeline-state.json").symlink_to(outside)
    run_cli("run", text_pipeline(tmp_path), "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
    assert sorted(path.name for path in work.iterdir()) == ["pipeline-state.json"]
    assert outside.read_text() == "{}"


# ------------------------------------------------------------------------------------------ 15. --log-file
def test_a_log_file_that_cannot_be_written_is_one_warning_not_a_crash(tmp_path, run_cli):
    proc = run_cli("--log-file", "/dev/full", "validate", _manifest(tmp_path), check_rc=0)
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "/dev/full" in line] == [
        "warning: --log-file /dev/full: cannot write: No space left on device; logging stopped"]
    assert "validate: 8 items, 0 failed" in proc.stderr  # the work's own lines still print


def test_a_failing_log_keeps_the_exit_code_the_work_gave(tmp_path, run_cli):
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{oops"])
    proc = run_cli("--log-file", "/dev/full", "validate", bad, check_rc=1)
    assert "Traceback" not in proc.stderr and "logging stopped" in proc.stderr


@pytest.mark.parametrize("log_name", ["run-log.jsonl", "pipeline-state.json", "build.log"])
def test_a_log_file_may_not_be_a_pipelines_own_file(tmp_path, run_cli, log_name):
    pipeline, work = _built(tmp_path, run_cli)
    target = work / ("run-log.jsonl" if log_name == "build.log" else log_name)
    if log_name == "build.log":  # a link to the run log is the run log
        (tmp_path / log_name).symlink_to(target)
    log = work / log_name if log_name != "build.log" else tmp_path / log_name
    before = target.read_bytes()
    proc = run_cli("--log-file", log, "run", pipeline, "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
    assert _one_error_line(proc) == (f"error: --log-file {log}: names a pipeline's "
                                     f"{'state file' if 'state' in target.name else 'run log'} ({target.name}), "
                                     f"which holds JSON only; log elsewhere")
    assert target.read_bytes() == before


def test_a_run_log_file_may_not_be_a_stage_manifest_or_a_source(tmp_path, run_cli):
    """`run` knows every file its stages read and write before anything runs: none of them may be the log."""
    pipeline, work = _built(tmp_path, run_cli)
    for log in (work / "01-ingest.jsonl", work / "02-split.jsonl", work / "01-ingest.rejects.jsonl"):
        before = log.read_bytes()
        proc = run_cli("--log-file", log, "run", pipeline, "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
        assert _one_error_line(proc).startswith(f"error: --log-file {log}: is also ")
        assert log.read_bytes() == before


@pytest.mark.parametrize("via", ["--log-file", "env"])
@pytest.mark.parametrize("which", ["input", "report"])
def test_a_log_file_may_not_be_a_file_the_command_reads_or_writes(tmp_path, run_cli, via, which):
    manifest = _manifest(tmp_path)
    before = manifest.read_bytes()
    report = tmp_path / "r.json"
    log = manifest if which == "input" else report
    root, env, name = (["--log-file", log], {}, "--log-file") if via == "--log-file" else \
        ([], {"SOUNDMIND_DATA_LOG_FILE": str(log)}, "$SOUNDMIND_DATA_LOG_FILE")
    proc = run_cli(*root, "validate", manifest, "--json", report, env=env, check_rc=2)
    same_as = f"the input manifest {manifest}" if which == "input" else f"--json {report}"
    assert _one_error_line(proc) == f"error: {name} {log}: is also {same_as}; choose another file"
    assert manifest.read_bytes() == before and not report.exists()


# ---------------------------------------------------------------------------- 17. the state file's shape
@pytest.mark.parametrize("state, field", [
    ("[]", "(root): [] is not of type 'object'"),
    ('{"ingest": null}', "ingest: None is not of type 'object'"),
    ('{"ingest": {"manifest": 5}}', "ingest.manifest: 5 is not of type 'string', 'null'"),
    ('{"split": {"set_aside": "3"}}', "split.set_aside: '3' is not of type 'integer', 'null'"),
    ('{"ingest": {"fingerprint": "x"}}', "ingest.fingerprint: 'x' does not match '^[0-9a-f]{64}$'"),
    ("{", "not JSON"),
])
def test_a_state_file_of_the_wrong_shape_is_one_line_naming_the_field(tmp_path, run_cli, state, field):
    pipeline, work = _built(tmp_path, run_cli)
    assert schemas.first_error("pipeline-state", json.loads((work / "pipeline-state.json").read_text())) is None
    (work / "pipeline-state.json").write_text(state)
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=2, timeout=TIMEOUT_S)
    assert _one_error_line(proc).startswith(f"error: {work / 'pipeline-state.json'}: {field}")
    assert proc.stderr.rstrip().endswith("fix it, or delete it to run every stage again")
