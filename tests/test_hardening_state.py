"""State files the toolkit writes and reads back, edited by hand into the right JSON of the wrong shape (issue 26.17):
each is checked against its schema and refused in one line naming the file and the field, never with a traceback.
Through the real command line, as a user meets them."""

from __future__ import annotations

import functools
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from factories import text_pipeline

from soundmind_data.sources import LOCK_NAME


DELETE = object()  # an edit that removes the key


def _edited(data, keys: tuple, value):
    """A copy of the JSON `data` with the value at `keys` replaced by `value` (the whole of it for no keys)."""
    if not keys:
        return value
    data = json.loads(json.dumps(data))
    *parents, last = keys
    holder = functools.reduce(lambda node, key: node[key], parents, data)
    if value is DELETE:
        del holder[last]
    else:
        holder[last] = value
    return data


def _refused(proc, path: Path, field: str) -> None:
    """Exit 2 (the usage error a malformed lock or sources file always was) in one line naming file and field."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and field in lines[0], proc.stderr


# ------------------------------------------------------------------------------------------- review/sources.json
REVIEW_EDITS = [  # (where, what a hand edit put there, what the message says)
    (("stages", 0, "read"), None, "stages.0.read: None is not of type 'string'"),
    (("stages", 0), None, "stages.0: None is not of type 'object'"),
    (("stages", 1, "wrote"), DELETE, "stages.1.wrote: 'wrote' is a required property"),
    (("plots",), "plots/x.png", "plots: 'plots/x.png' is not of type 'array', 'null'"),
    (("manifest",), 4, "manifest: 4 is not of type 'string'"),
    ((), [], "(root): [] is not of type 'object'"),
]


def test_a_review_sources_file_of_the_wrong_shape_is_refused_in_one_line(tmp_path, run_cli):
    pipeline = text_pipeline(tmp_path)
    work = tmp_path / "work"
    run_cli("run", pipeline, "--workdir", work, check_rc=0)
    path = work / "review" / "sources.json"
    written = json.loads(path.read_text())
    for keys, value, field in REVIEW_EDITS:
        path.write_text(json.dumps(_edited(written, keys, value)))
        _refused(run_cli("review", work, "--out", tmp_path / "again"), path, field)
        assert not (tmp_path / "again").exists(), field
    path.write_text(json.dumps(written))  # as written, the page is made again
    run_cli("review", work, "--out", tmp_path / "again", check_rc=0)


# --------------------------------------------------------------------------------------------- sources.lock.json
@pytest.fixture
def mirror(tmp_path):
    """A folder laid out as a `--mirror` (BASE/<source>/<file name>), served on 127.0.0.1."""
    folder = tmp_path / "mirror"
    (folder / "logiqa2-nli").mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (folder / "logiqa2-nli" / f"{split}.txt").write_text(json.dumps({"label": "entailed", "split": split}) + "\n")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


LOCK_EDITS = [
    (("logiqa2-nli", "dev.txt"), None, "logiqa2-nli.dev.txt: None is not of type 'object'"),
    (("logiqa2-nli", "test.txt", "sha256"), None, "logiqa2-nli.test.txt.sha256: None is not of type 'string'"),
    (("logiqa2-nli", "test.txt", "sha256"), 12, "logiqa2-nli.test.txt.sha256: 12 is not of type 'string'"),
    (("logiqa2-nli", "train.txt", "size"), "22", "logiqa2-nli.train.txt.size: '22' is not of type 'integer'"),
    (("logiqa2-nli",), [], "logiqa2-nli: [] is not of type 'object'"),
]


def test_a_lock_file_of_the_wrong_shape_is_refused_in_one_line(tmp_path, run_cli, mirror):
    out = tmp_path / "logiqa"
    env = {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, "SOUNDMIND_DATA_SOURCES_URL": mirror}
    run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=env, check_rc=0)
    path = out / LOCK_NAME
    written = json.loads(path.read_text())
    for keys, value, field in LOCK_EDITS:
        edited = _edited(written, keys, value)
        path.write_text(json.dumps(edited))
        (out / "dev.txt").unlink(missing_ok=True)  # a file to download: the fetch would go by the lock for it
        proc = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=env)
        _refused(proc, path, field)
        assert "mend it, or move it away" in proc.stderr, field
        assert json.loads(path.read_text()) == edited and not (out / "dev.txt").exists(), field  # nothing touched
    path.write_text(json.dumps(written))
    again = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=env, check_rc=0)
    assert "1 downloaded, 2 already present" in again.stderr
