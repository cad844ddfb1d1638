"""Temps named after their writer: a killed writer's leftovers are swept, a live writer's never are."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from soundmind_data.core import tempfiles
from soundmind_data.core.jsonl import AtomicWriter

ROOT = Path(__file__).resolve().parent.parent


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_sweep_removes_only_temps_of_dead_writers_on_this_host(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    left_by_dead = tmp_path / f".a.flac~{host}~{dead}~0001.tmp"
    being_written = tmp_path / f".b.flac~{host}~{os.getpid()}~0002.tmp"
    other_host = tmp_path / f".c.flac~elsewhere.example.org~{dead}~0003.tmp"
    dead_folder = tmp_path / f".publish~{host}~{dead}~0004.tmp"
    not_a_temp = tmp_path / "d.flac"
    for path in (left_by_dead, being_written, other_host, not_a_temp):
        path.write_bytes(b"half")
    (dead_folder / "data").mkdir(parents=True)
    assert tempfiles.sweep(tmp_path, "b.flac") == 0  # a name whose only temp is a live writer's
    assert tempfiles.sweep(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([being_written.name, other_host.name, "d.flac"])


def test_a_killed_writer_leaves_a_temp_that_the_next_write_of_that_file_removes(tmp_path):
    out = tmp_path / "items.jsonl"
    script = (
        "import os, signal, sys\n"
        "from soundmind_data.core.jsonl import AtomicWriter\n"
        "with AtomicWriter(sys.argv[1]) as writer:\n"
        "    writer.write_record({'id': 'half'})\n"
        "    writer.file.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert not out.exists() and len(leftovers) == 1 and leftovers[0].startswith(".items.jsonl~")

    (tmp_path / "other.jsonl").write_text("")  # someone else's file in the folder is not touched
    with AtomicWriter(out) as writer:
        writer.write_record({"id": "whole"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.jsonl", "other.jsonl"]
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"id": "whole"}]


def test_temp_names_parse_back_even_for_names_with_glob_characters(tmp_path):
    name = "odd[1]*~x.jsonl"
    live = tmp_path / tempfiles.temp_name(name)
    assert live.name.startswith(f".{name}~{socket.gethostname()}~{os.getpid()}~")
    dead = tmp_path / f".{name}~{socket.gethostname()}~{_dead_pid()}~0001.tmp"
    for path in (live, dead):
        path.write_text("x")
    assert tempfiles.sweep(tmp_path, name) == 1
    assert [p.name for p in tmp_path.iterdir()] == [live.name]
