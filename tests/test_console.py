"""What the command line shows while it works, as batch jobs see it: stderr is a file, not a terminal."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from factories import item, write_jsonl

PROGRESS_LINE = re.compile(r"^synthesize: (\d+)/6 items \(\d+%\), [\d.]+ items/s, \w+ elapsed(, ETA \w+)?; "
                           r"audio [\d.]+h, rtf [\d.]+, failed 0$")


def six_items(tmp_path):
    sentences = "Every student in the library must be quiet. Maria is a student in the library. She must be quiet."
    return write_jsonl(tmp_path / "items.jsonl", [item(f"b{n}", conclusion=f"Claim {n}", answer=f"{sentences} {n}.")
                                                  for n in range(6)])


def test_a_batch_job_logs_progress_lines_while_it_runs(tmp_path):
    """stdout and stderr redirected to one file, as on Slurm: progress lines appear in it before the run ends."""
    log = tmp_path / "job.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "soundmind_data", "synthesize", str(six_items(tmp_path)),
                                 "--out", str(tmp_path / "spoken")], stdout=out, stderr=subprocess.STDOUT,
                                env={**_env(), "SOUNDMIND_DATA_PROGRESS_S": "0.5"})
        seen_while_running = []
        while proc.poll() is None:
            seen_while_running = [line for line in log.read_text().splitlines() if PROGRESS_LINE.match(line)]
            time.sleep(0.1)
    assert proc.returncode == 0, log.read_text()
    assert seen_while_running, log.read_text()
    lines = log.read_text().splitlines()
    progress = [PROGRESS_LINE.match(line) for line in lines if line.startswith("synthesize: ") and "/6" in line]
    assert all(progress), lines
    assert progress[-1].group(1) == "6" and progress[-1].group(2) is None  # the final line: all done, no ETA
    assert lines[-1].startswith("synthesize: 6 items: 6 written")


def test_quiet_silences_progress_and_a_log_file_keeps_it_timestamped(tmp_path):
    manifest = six_items(tmp_path)
    env = {**_env(), "SOUNDMIND_DATA_PROGRESS_S": "0"}
    cache = ["--cache", str(tmp_path / "cache")]  # the second run speaks nothing again
    quiet = subprocess.run([sys.executable, "-m", "soundmind_data", "--quiet", "synthesize", str(manifest), "--out",
                            str(tmp_path / "a"), *cache], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0
    assert quiet.stderr.splitlines() == [line for line in quiet.stderr.splitlines() if "written" in line]  # summary only

    log = tmp_path / "run.log"
    logged = subprocess.run([sys.executable, "-m", "soundmind_data", "-q", "--log-file", str(log), "synthesize",
                             str(manifest), "--out", str(tmp_path / "b"), *cache], capture_output=True, text=True, env=env)
    assert logged.returncode == 0
    entries = log.read_text().splitlines()
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    assert all(re.match(stamp, entry) for entry in entries)
    assert sum(bool(PROGRESS_LINE.match(re.sub(stamp, "", entry))) for entry in entries) >= 6
    assert "6 written" in entries[-1]


def test_a_log_file_that_is_not_a_file_is_a_usage_error(tmp_path, run_cli):
    proc = run_cli("--log-file", tmp_path, "validate", six_items(tmp_path), check_rc=2)
    assert proc.stderr.strip() == f"error: --log-file {tmp_path}: is a folder; give a file name"


def _env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if key != "SOUNDMIND_DATA_LOG_FILE"}


def test_a_mistyped_command_is_answered_with_the_closest_ones(run_cli):
    """The stages' commands are made when asked for, and a typo is still answered with them, as with the others."""
    for typo, meant in (("ingst", "ingest"), ("synthesise", "synthesize"), ("dif", "diff"), ("voics", "voices")):
        proc = run_cli(typo, check_rc=2)
        assert f"No such command '{typo}'. Did you mean '{meant}'" in proc.stderr, proc.stderr
