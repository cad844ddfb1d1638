"""Pool workers die with their parent: kill -9 of a command that forks a process pool leaves no worker behind.

Each test starts the real command on enough work to keep its pool busy, waits until the workers exist (Python
processes below the command in /proc), kills the command with SIGKILL and gives its workers a few seconds to be
gone. Workers that outlive a failing test are killed in a `finally`, so that no test leaves processes behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import item, logiqa_line, write_jsonl, write_tone

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")

Process = tuple[int, str]  # (pid, start time in clock ticks since boot): a pid reused later is another process


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces and parentheses itself


def python_descendants(root: int) -> set[Process]:
    """The running Python processes below `root`: pool workers, and a fork server or resource tracker where the
    start method has them (not the programs workers run, like espeak-ng)."""
    python = os.path.realpath(sys.executable)
    parents, starts = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        fields = stat_fields(pid)
        try:
            is_python = os.path.realpath(f"/proc/{pid}/exe") == python
        except OSError:  # another user's process (the link cannot be read), or one gone meanwhile
            continue
        if fields and is_python:
            parents[pid], starts[pid] = int(fields[1]), fields[19]
    below = {root}
    while new := {pid for pid, parent in parents.items() if parent in below} - below:
        below |= new
    return {(pid, starts[pid]) for pid in below - {root}}


def running(process: Process) -> bool:
    fields = stat_fields(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] not in "ZX"  # a zombie has finished


def assert_workers_die_with_parent(command: list[str], workers: int) -> None:
    """Run `command` until it has `workers` Python processes below it, kill -9 it, and see them all gone in 5 s."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: set[Process] = set()
    try:
        deadline = time.monotonic() + 120
        while len(found) < workers:
            assert process.poll() is None, f"the command ended before its workers were seen: {process.stderr.read()}"
            assert time.monotonic() < deadline, f"no {workers} workers within 120 s (saw {found})"
            time.sleep(0.02)
            found = python_descendants(process.pid)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 5
        while (left := [worker for worker in found if running(worker)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"workers {left} outlived their parent by 5 s"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for worker in found:
            if running(worker):
                os.kill(worker[0], signal.SIGKILL)
        process.stderr.close()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synthesize_workers_die_with_a_killed_parent(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", [
        item(f"s{n}", question_text=f"Question number {n}.", answer=f"Answer {n}: entailed.") for n in range(300)])
    assert_workers_die_with_parent([sys.executable, "-m", "soundmind_data", "synthesize", str(manifest), "--out",
                                    str(tmp_path / "out"), "--backend", "espeak", "--workers", "2"], workers=2)


def busy_validate_manifest(tmp_path: Path) -> Path:
    tone = write_tone(tmp_path / "tone.flac", seconds=5.0)
    # One file, many items: each item is checked on its own, which keeps both workers busy for a long while.
    return write_jsonl(tmp_path / "items.jsonl", [item(f"v{n}", question_audio=tone) for n in range(5000)])


def test_validate_workers_die_with_a_killed_parent(tmp_path):
    assert_workers_die_with_parent([sys.executable, "-m", "soundmind_data", "validate",
                                    str(busy_validate_manifest(tmp_path)), "--audio", "--workers", "2"], workers=2)


def test_validate_spawned_workers_die_with_a_killed_parent(tmp_path):
    """A CUDA judge's workers are spawned, not forked (CUDA does not survive a fork). The CLI takes --device only
    with --asr, which would need a GPU here; the library call takes the same pool path without one."""
    script = ("import sys; from soundmind_data.checks.manifest import validate_manifest; "
              "validate_manifest(sys.argv[1], audio=True, workers=2, asr_device='cuda')")
    assert_workers_die_with_parent([sys.executable, "-c", script, str(busy_validate_manifest(tmp_path))], workers=2)


def test_curate_gold_reader_dies_with_a_killed_parent(tmp_path):
    # Long enough that the first pass (here) and the gold file (in the worker) take seconds to read.
    manifest = write_jsonl(tmp_path / "items.jsonl", [item(f"c{n}", conclusion=f"Claim {n}") for n in range(100_000)])
    gold = write_jsonl(tmp_path / "gold.txt", [logiqa_line(conclusion=f"Claim {n}") for n in range(100_000)])
    assert_workers_die_with_parent([sys.executable, "-m", "soundmind_data", "curate", str(manifest), "--gold",
                                    str(gold), "--out", str(tmp_path / "curated.jsonl")], workers=1)


# A pool of two workers sleeping through their tasks, made by the command line's own process; argv: the start method,
# and "without-prctl" to take away the kernel's help, as on a system without prctl (the forked workers inherit it).
POOL = """
import multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
from soundmind_data.core import procpool

if sys.argv[2] == "without-prctl":
    procpool._parent_death_signal = lambda: False
pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(sys.argv[1]), initializer=procpool.worker_signals)
for _ in range(2):
    pool.submit(time.sleep, 600)
time.sleep(600)
"""


@pytest.mark.parametrize("method, kernel, workers", [
    ("fork", "without-prctl", 2),  # elsewhere than Linux: a thread in each worker watches its parent
    ("spawn", "with-prctl", 2),
    ("forkserver", "with-prctl", 3),  # Python 3.14's default on Linux: the fork server and its two workers
])
def test_every_start_method_leaves_no_worker_behind(method, kernel, workers):
    assert_workers_die_with_parent([sys.executable, "-c", POOL, method, kernel], workers=workers)
