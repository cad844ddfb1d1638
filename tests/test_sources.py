"""`sources fetch`: downloads checked against pinned (or first-seen) digests, placed atomically, resumed with Range
requests; every test serves fixture files from a local HTTP server on 127.0.0.1, never the network."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from soundmind_data import sources
from soundmind_data.core import tempfiles
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.sources import Source, SourceFile, fetch
from soundmind_data.sources.partials import state_path

ROOT = Path(__file__).resolve().parent.parent


class LocalServer:
    """A threading HTTP server on 127.0.0.1 for one handler class, started and stopped as a context manager."""

    def serve(self, handler: type) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FixtureServer(LocalServer):
    """Serves `files` ({url path: bytes}) on 127.0.0.1, each with a strong ETag (`etag`). `ranges`: honour Range
    requests (206). `if_range`: honour If-Range too (a Range whose If-Range does not match the current ETag gets the
    whole file, 200); without it the Range is served whatever If-Range says. `drop`: {url path: bytes} to send of
    the file's first request before cutting the connection (the full Content-Length announced). `requests` records
    (path, Range header) of every GET, `if_ranges` the If-Range header of each."""

    def __init__(self, files: dict[str, bytes], *, ranges: bool = True, if_range: bool = True,
                 drop: dict[str, int] | None = None):
        self.files, self.ranges, self.if_range, self.drop = dict(files), ranges, if_range, dict(drop or {})
        self.requests: list[tuple[str, str | None]] = []
        self.if_ranges: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path, wanted, validator = self.path, self.headers.get("Range"), self.headers.get("If-Range")
                owner.requests.append((path, wanted))
                owner.if_ranges.append(validator)
                if path not in owner.files:
                    self.send_error(404)
                    return
                body, start = owner.files[path], 0
                if owner.if_range and validator is not None and validator != etag(body):
                    wanted = None  # the file changed since the validator was given: all of it
                if wanted and owner.ranges:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("ETag", etag(body))
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = owner.drop.pop(path, None)
                if cut is not None:  # announce it all, send part of it, hang up
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.serve(Handler)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def etag(data: bytes) -> str:
    """The strong ETag FixtureServer sends for `data`."""
    return f'"{_sha(data)[:16]}"'


def _lines(count: int, seed: str) -> bytes:
    return b"".join(json.dumps({"label": "entailed", "major_premise": f"{seed} premise {i}", "minor_premise": "m",
                                "conclusion": f"c {i}"}).encode() + b"\n" for i in range(count))


TRAIN, DEV = _lines(3000, "train"), _lines(40, "dev")  # ~300 KB (several blocks) and ~4 KB


def _table(pins: dict[str, str | None] | None = None, name: str = "demo") -> dict[str, Source]:
    pins = {"train.txt": _sha(TRAIN), "dev.txt": _sha(DEV)} if pins is None else pins
    files = tuple(SourceFile(file, f"data/{file}", sha256=pin) for file, pin in pins.items())
    return {name: Source(name, "demo source", "someone/demo", "github", "main", "https://example.invalid",
                         "CC0", files)}


def _served(**extra: bytes) -> dict[str, bytes]:
    return {"/demo/train.txt": TRAIN, "/demo/dev.txt": DEV, **{f"/demo/{k}": v for k, v in extra.items()}}


def _fetch(out: Path, server: FixtureServer, table=None, **kwargs):
    return fetch(None, out, mirror=server.url, sources=table or _table(), retry_wait_s=0, **kwargs)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(tempfiles.SUFFIX))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib honours *_proxy variables: the fixture server is reached directly."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------------- the library
def test_fetch_downloads_checks_and_places_every_file(tmp_path):
    out = tmp_path / "data"
    with FixtureServer(_served()) as server:
        report = _fetch(out, server)
    assert report.ok
    assert [(f.name, f.status, f.pin, f.sha256) for f in report.files] == [
        ("train.txt", "downloaded", "pinned", _sha(TRAIN)), ("dev.txt", "downloaded", "pinned", _sha(DEV))]
    assert (out / "train.txt").read_bytes() == TRAIN and (out / "dev.txt").read_bytes() == DEV
    assert _temps(out) == []
    lock = json.loads((out / sources.LOCK_NAME).read_text())
    assert lock["demo"]["train.txt"] == {"url": "https://raw.githubusercontent.com/someone/demo/main/data/train.txt",
                                         "size": len(TRAIN), "sha256": _sha(TRAIN), "pinned_upstream": True}
    summary = report.summary()
    assert _sha(TRAIN) in summary.out[0] and "2 downloaded" in summary.err[-1]


def test_a_complete_checked_file_is_not_downloaded_again(tmp_path):
    with FixtureServer(_served()) as server:
        _fetch(tmp_path, server)
        before = len(server.requests)
        report = _fetch(tmp_path, server)
    assert report.ok and [f.status for f in report.files] == ["present", "present"]
    assert len(server.requests) == before


def test_a_dropped_connection_is_resumed_with_a_range_request(tmp_path):
    with FixtureServer(_served(), drop={"/demo/train.txt": 100_000}) as server:
        report = _fetch(tmp_path, server)
    assert report.ok and report.files[0].status == "downloaded"
    assert (tmp_path / "train.txt").read_bytes() == TRAIN
    assert [r for r in server.requests if r[0] == "/demo/train.txt"] == [
        ("/demo/train.txt", None), ("/demo/train.txt", "bytes=100000-")]
    assert _temps(tmp_path) == []


def test_an_interrupted_fetch_keeps_what_arrived_and_the_next_one_resumes_it(tmp_path):
    with FixtureServer(_served(), drop={"/demo/train.txt": 70_000}) as server:
        with pytest.raises(DataError, match="run the same command again to resume"):
            _fetch(tmp_path, server, retries=0)
        assert not (tmp_path / "train.txt").exists()
        [partial] = [name for name in _temps(tmp_path) if name.startswith(".train.txt~")]
        assert (tmp_path / partial).stat().st_size == 70_000
        report = _fetch(tmp_path, server)
    assert report.ok and report.files[0].resumed_from == 70_000
    assert (tmp_path / "train.txt").read_bytes() == TRAIN
    assert server.requests[-2:][0] == ("/demo/train.txt", "bytes=70000-")
    assert _temps(tmp_path) == []


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _left_by_a_killed_process(folder: Path, name: str, data: bytes, whole: bytes) -> None:
    """The partial of `name` (holding `data`) and its resume state (the validator of `whole`) a killed fetch left."""
    left = folder / f".{name}~{socket.gethostname()}~{_dead_pid()}~0001{tempfiles.SUFFIX}"
    left.write_bytes(data)
    state_path(left).write_text(json.dumps({"validator": etag(whole), "size": len(whole)}))


def test_a_killed_process_leaves_a_partial_that_the_next_fetch_takes_over(tmp_path):
    _left_by_a_killed_process(tmp_path, "train.txt", TRAIN[:12_345], TRAIN)
    with FixtureServer(_served()) as server:
        report = _fetch(tmp_path, server)
    assert report.ok and report.files[0].resumed_from == 12_345
    assert ("/demo/train.txt", "bytes=12345-") in server.requests
    assert (tmp_path / "train.txt").read_bytes() == TRAIN
    assert _temps(tmp_path) == []


def test_a_server_without_range_support_sends_the_whole_file_again(tmp_path):
    _left_by_a_killed_process(tmp_path, "train.txt", TRAIN[:5_000], TRAIN)
    with FixtureServer(_served(), ranges=False) as server:
        report = _fetch(tmp_path, server)
    assert report.ok
    assert (tmp_path / "train.txt").read_bytes() == TRAIN  # not the first 5,000 bytes twice


def test_a_partial_that_is_already_complete_is_finished_without_a_body(tmp_path):
    _left_by_a_killed_process(tmp_path, "dev.txt", DEV, DEV)  # killed between the last byte and the rename
    with FixtureServer(_served()) as server:
        report = _fetch(tmp_path, server)
    assert report.ok and (tmp_path / "dev.txt").read_bytes() == DEV
    assert ("/demo/dev.txt", f"bytes={len(DEV)}-") in server.requests


def test_a_download_that_fails_its_pinned_digest_is_removed(tmp_path):
    table = _table({"train.txt": _sha(TRAIN), "dev.txt": _sha(b"another file")})
    with FixtureServer(_served()) as server:
        report = _fetch(tmp_path, server, table)
    assert not report.ok
    assert [f.status for f in report.files] == ["downloaded", "failed"]
    assert not (tmp_path / "dev.txt").exists() and _temps(tmp_path) == []
    error = report.files[1].error
    assert f"sha256 {_sha(DEV)}, expected {_sha(b'another file')} (pinned)" in error and "removed" in error
    assert "dev.txt" not in json.loads((tmp_path / sources.LOCK_NAME).read_text())["demo"]
    assert any("dev.txt:" in line for line in report.summary().err)


def test_a_file_without_a_pin_is_trusted_on_first_use_and_held_to_it(tmp_path):
    table = _table({"train.txt": None, "dev.txt": None})
    with FixtureServer(_served()) as server:
        first = _fetch(tmp_path, server, table)
        assert first.ok and [f.pin for f in first.files] == ["first use", "first use"]
        summary = first.summary()
        assert _sha(DEV) in summary.out[0] and any("recorded on first use" in line for line in summary.err)
        assert json.loads((tmp_path / sources.LOCK_NAME).read_text())["demo"]["dev.txt"]["sha256"] == _sha(DEV)
        server.files["/demo/dev.txt"] = b"upstream changed\n"
        (tmp_path / "dev.txt").unlink()
        second = _fetch(tmp_path, server, table)
    assert not second.ok and second.files[1].pin == "recorded"
    assert "expected " + _sha(DEV) in second.files[1].error and sources.LOCK_NAME in second.files[1].error
    assert not (tmp_path / "dev.txt").exists()


def test_a_file_already_there_that_does_not_match_is_reported_and_left_alone(tmp_path):
    (tmp_path / "dev.txt").write_bytes(b"edited by hand\n")
    with FixtureServer(_served()) as server:
        report = _fetch(tmp_path, server)
    assert not report.ok and report.files[1].status == "failed"
    assert "delete it to download it again" in report.files[1].error
    assert (tmp_path / "dev.txt").read_bytes() == b"edited by hand\n"
    assert all(path != "/demo/dev.txt" for path, _ in server.requests)


def test_a_missing_file_upstream_fails_that_file(tmp_path):
    served = _served()
    del served["/demo/dev.txt"]
    with FixtureServer(served) as server:
        report = _fetch(tmp_path, server)
    assert [f.status for f in report.files] == ["downloaded", "failed"]
    assert "HTTP 404" in report.files[1].error and _temps(tmp_path) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_host_stops_with_one_line_and_leaves_nothing(tmp_path):
    port = _closed_port()
    with pytest.raises(DataError) as caught:
        fetch(None, tmp_path, mirror=f"http://127.0.0.1:{port}", sources=_table())
    assert str(caught.value).startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert f'download the files by hand into {tmp_path} (see README "Sources")' in str(caught.value)
    assert _temps(tmp_path) == []


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no source 'nope'"):
        fetch(["nope"], tmp_path)
    with pytest.raises(UsageError, match="expected an http"):
        fetch(None, tmp_path, mirror="ftp://example.org/")
    with pytest.raises(UsageError, match="password in the URL is not supported") as caught:
        fetch(None, tmp_path, mirror="https://me:s3cret@mirror.example/")
    assert "s3cret" not in str(caught.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        fetch(["logiqa2-nli"], tmp_path / "file", mirror="http://127.0.0.1:9/")


@pytest.mark.parametrize("kind", ["fifo", "dangling link", "folder"])
def test_a_target_that_is_not_a_regular_file_is_neither_read_nor_replaced(tmp_path, kind):
    target = tmp_path / "train.txt"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dangling link":
        target.symlink_to(tmp_path / "nowhere")
    else:
        target.mkdir()
    with FixtureServer(_served()) as server:
        with pytest.raises(UsageError, match="exists and is not a regular file"):
            _fetch(tmp_path, server)
        assert server.requests == []
    assert os.path.lexists(target) and not target.is_file()


# ------------------------------------------------------------------------------------------------------ the table
def test_the_source_table_points_at_the_upstream_files():
    logiqa, soundmind = sources.SOURCES["logiqa2-nli"], sources.SOURCES["soundmind"]
    assert [logiqa.upstream_url(f) for f in logiqa.files] == [
        f"https://raw.githubusercontent.com/csitfun/LogiQA2.0/main/logiqa2nli/DATA/QA2NLI/{split}.txt"
        for split in ("train", "dev", "test")]
    hub = "https://huggingface.co/datasets/SoundMind-RL/SoundMindDataset/resolve/main"
    assert [soundmind.upstream_url(f) for f in soundmind.files] == [
        *(f"{hub}/dataset/{split}/metadata.jsonl" for split in ("train", "dev", "test")), f"{hub}/README.md"]
    for source in sources.SOURCES.values():
        assert len({f.name for f in source.files}) == len(source.files)
        for file in source.files:
            assert file.sha256 is None or (len(file.sha256) == 64 and int(file.sha256, 16) >= 0)
            assert source.url(file, "http://mirror.example/base/") == \
                f"http://mirror.example/base/{source.name}/{file.name}"


def test_the_soundmind_pipeline_reads_what_fetch_writes_by_default():
    pipeline = yaml.safe_load((ROOT / "pipelines" / "soundmind.yaml").read_text())
    fetched = {f"data/logiqa2-nli/{file.name}" for file in sources.SOURCES["logiqa2-nli"].files}
    ingest = next(stage for stage in pipeline["stages"] if stage["stage"] == "ingest")
    assert set(ingest["with"]["sources"]) == fetched
    assert "soundmind-data sources fetch logiqa2-nli --out data/logiqa2-nli" in \
        (ROOT / "pipelines" / "soundmind.yaml").read_text()


# ------------------------------------------------------------------------------------------------- the command
def _logiqa_served(test: bytes = b'{"label": "entailed"}\n') -> dict[str, bytes]:
    return {"/logiqa2-nli/train.txt": TRAIN, "/logiqa2-nli/dev.txt": DEV, "/logiqa2-nli/test.txt": test}


def _env(url: str) -> dict[str, str]:
    env = {"SOUNDMIND_DATA_SOURCES_URL": url}
    return {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, **env}


def test_the_command_fetches_from_a_mirror_and_says_what_it_trusted(tmp_path, run_cli):
    out = tmp_path / "logiqa"
    with FixtureServer(_logiqa_served()) as server:
        proc = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=_env(server.url), check_rc=0)
        again = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=_env(server.url), check_rc=0)
    assert (out / "train.txt").read_bytes() == TRAIN and (out / "dev.txt").read_bytes() == DEV
    assert _sha(TRAIN) in proc.stdout and "downloaded" in proc.stdout
    assert "recorded on first use" in proc.stderr and "3 downloaded" in proc.stderr
    assert "3 already present" in again.stderr and "Traceback" not in proc.stderr + again.stderr


def test_the_command_exits_1_on_a_digest_that_changed_and_removes_the_file(tmp_path, run_cli):
    out = tmp_path / "logiqa"
    with FixtureServer(_logiqa_served()) as server:
        run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=_env(server.url), check_rc=0)
        (out / "test.txt").unlink()
        server.files["/logiqa2-nli/test.txt"] = b'{"label": "not entailed"}\n'
        proc = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, env=_env(server.url), check_rc=1)
    assert "test.txt: downloaded from" in proc.stderr and "the download was removed" in proc.stderr
    assert not (out / "test.txt").exists() and "Traceback" not in proc.stderr


def test_the_command_offline_is_one_line_and_exit_1(tmp_path, run_cli):
    port = _closed_port()
    proc = run_cli("sources", "fetch", "logiqa2-nli", "--out", tmp_path / "x", "--mirror", f"http://127.0.0.1:{port}",
                   env=_env(""), check_rc=1)
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot reach 127.0.0.1:{port}: Connection refused; download the files by hand into "
        f'{tmp_path / "x"} (see README "Sources")']


def test_the_command_usage_errors_exit_2(tmp_path, run_cli):
    assert "no source 'nope'" in run_cli("sources", "fetch", "nope", check_rc=2).stderr
    assert "expected an http" in run_cli("sources", "fetch", "--mirror", "ftp://x", check_rc=2).stderr
    assert "--retries" in run_cli("sources", "fetch", "--retries", "-1", check_rc=2).stderr


def test_the_list_shows_every_upstream_url(run_cli):
    proc = run_cli("sources", "list", check_rc=0)
    assert "raw.githubusercontent.com/csitfun/LogiQA2.0/main/logiqa2nli/DATA/QA2NLI/train.txt" in proc.stdout
    assert "CC BY-NC-SA 4.0" in proc.stdout and "not pinned" in proc.stdout
