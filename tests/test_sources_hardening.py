"""`sources fetch` against hostile or changing servers: a server that trickles (the time limit), an endless body (the
size cap), a file that changes upstream between an interrupted download and its resume (If-Range and the length
check), and credentials in HF_ENDPOINT (never printed or logged). Every server is local, on 127.0.0.1, and bounded
in what it sends, so a regression fails in seconds instead of hanging the suite."""

from __future__ import annotations

import base64
import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable

import pytest

from soundmind_data import sources
from soundmind_data.core.errors import DataError
from soundmind_data.core.redact import redact
from soundmind_data.sources import Source, SourceFile, fetch
from soundmind_data.sources.partials import state_path
from test_sources import (DEV, TRAIN, FixtureServer, LocalServer, _closed_port, _dead_pid, _env, _lines, _served, _sha, _table,
                          _temps, etag)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib honours *_proxy variables: the local servers are reached directly."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Server(LocalServer):
    """A local HTTP server whose every GET is answered by `respond(handler)`; `requests` records each path."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None]):
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: what the tests want
                    pass

        self.serve(Handler)


GAP_S = 0.1  # between two trickled bytes
TRICKLE = 60  # bytes trickled per request at most (6 s), then the connection is closed: bounded if nothing stops it


def trickle(where: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """A byte every GAP_S, in the body (10,000 bytes announced) or in an endless header, never the whole response."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if where == "body":
            handler.send_response(200)
            handler.send_header("Content-Length", "10000")
            handler.end_headers()
        else:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Slow: ")
        for _ in range(TRICKLE):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(GAP_S)
        handler.close_connection = True

    return respond


ENDLESS = 64 << 20  # what the endless server sends at most (far beyond any cap the tests set)


def endless(announce: int | None) -> Callable[[BaseHTTPRequestHandler], None]:
    """A body that does not end (up to ENDLESS bytes), with no Content-Length or the one given."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        if announce is not None:
            handler.send_header("Content-Length", str(announce))
        handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"x" * (1 << 16)
        for _ in range(ENDLESS // len(block)):
            handler.wfile.write(block)
        handler.close_connection = True

    return respond


def _one_file_table(size: int | None = None, **source: int) -> dict[str, Source]:
    """One source of one file, train.txt, of the `size` given; `source` sets the Source's fields (max_size)."""
    return {"demo": Source("demo", "demo source", "someone/demo", "github", "main", "https://example.invalid", "CC0",
                           (SourceFile("train.txt", "data/train.txt", size=size),), **source)}


def _lock(folder: Path) -> dict:
    path = folder / sources.LOCK_NAME
    return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------------------------------- 11: bounded in time and size
@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_server_that_trickles_fails_the_file_at_the_time_limit(tmp_path, where):
    with Server(trickle(where)) as server:
        started = time.monotonic()
        report = fetch(None, tmp_path, mirror=server.url, sources=_one_file_table(), retry_wait_s=0,
                       time_limit_s=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 4, elapsed  # the time limit, not the server, ended it
    [file] = report.files
    assert not report.ok and file.status == "failed"
    assert "not complete after 1 s (--time-limit)" in file.error and "run the same command again" in file.error
    assert not (tmp_path / "train.txt").exists() and "train.txt" not in _lock(tmp_path).get("demo", {})


def test_the_command_exits_1_when_a_file_runs_past_the_time_limit(tmp_path, run_cli):
    slow = {"/logiqa2-nli/dev.txt": DEV, "/logiqa2-nli/test.txt": DEV}

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path in slow:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(slow[handler.path])))
            handler.end_headers()
            handler.wfile.write(slow[handler.path])
        else:
            trickle("body")(handler)

    out = tmp_path / "logiqa"
    with Server(respond) as server:
        started = time.monotonic()
        proc = run_cli("sources", "fetch", "logiqa2-nli", "--out", out, "--time-limit", "1", "--retries", "0",
                       env=_env(server.url), timeout=60, check_rc=1)
    assert time.monotonic() - started < 20
    assert "train.txt: " in proc.stderr and "(--time-limit)" in proc.stderr and "Traceback" not in proc.stderr
    assert "2 downloaded" in proc.stderr and "1 failed" in proc.stderr
    assert not (out / "train.txt").exists() and (out / "dev.txt").read_bytes() == DEV
    assert set(_lock(out)["logiqa2-nli"]) == {"dev.txt", "test.txt"}


@pytest.mark.parametrize("announce", [None, 10 << 30], ids=["no length", "10 GiB announced"])
def test_an_endless_body_stops_at_the_sources_cap_and_is_never_pinned(tmp_path, announce):
    with Server(endless(announce)) as server:
        report = fetch(None, tmp_path, mirror=server.url, sources=_one_file_table(max_size=1 << 20), retry_wait_s=0)
    [file] = report.files
    assert not report.ok and file.status == "failed"
    assert "more than the 1,048,576 bytes" in file.error and "removed" in file.error
    assert len(server.requests) == 1  # not retried: more of the same would not help
    assert not (tmp_path / "train.txt").exists() and _temps(tmp_path) == []
    assert "train.txt" not in _lock(tmp_path).get("demo", {})


def test_a_body_longer_than_the_size_in_the_table_stops_there(tmp_path):
    with Server(endless(None)) as server:
        report = fetch(None, tmp_path, mirror=server.url, sources=_one_file_table(size=4096), retry_wait_s=0)
    [file] = report.files
    assert file.status == "failed" and "more than the 4,096 bytes" in file.error
    assert _temps(tmp_path) == []


def test_the_table_caps_every_source_and_the_command_defaults_to_the_librarys_time_limit():
    import inspect

    from soundmind_data.cli import sources_fetch

    for source in sources.SOURCES.values():
        assert 0 < source.max_size <= 1 << 30
    assert inspect.signature(sources_fetch).parameters["time_limit"].default.default == sources.TIME_LIMIT_S


# ---------------------------------------------------------------------- 12: a resume never splices two versions
CHANGED = _lines(3000, "tra1n")  # the same length as TRAIN, other bytes: only the validator tells them apart
assert len(CHANGED) == len(TRAIN) and CHANGED != TRAIN


def _interrupted_then_changed(tmp_path: Path, server: FixtureServer, new: bytes) -> None:
    with pytest.raises(DataError, match="run the same command again to resume"):
        fetch(None, tmp_path, mirror=server.url, sources=_table({"train.txt": None, "dev.txt": None}),
              retry_wait_s=0, retries=0)
    server.files["/demo/train.txt"] = new


def test_a_file_that_changed_upstream_before_the_resume_is_downloaded_anew(tmp_path):
    with FixtureServer(_served(), drop={"/demo/train.txt": 70_000}) as server:
        _interrupted_then_changed(tmp_path, server, CHANGED)
        report = fetch(None, tmp_path, mirror=server.url, sources=_table({"train.txt": None, "dev.txt": None}),
                       retry_wait_s=0)
    assert report.ok
    assert (tmp_path / "train.txt").read_bytes() == CHANGED  # not TRAIN's first 70,000 bytes + CHANGED's rest
    assert _lock(tmp_path)["demo"]["train.txt"]["sha256"] == _sha(CHANGED)
    resume = [i for i, (path, _) in enumerate(server.requests) if path == "/demo/train.txt"][1]
    assert server.requests[resume] == ("/demo/train.txt", "bytes=70000-")
    assert server.if_ranges[resume] == etag(TRAIN)  # the first response's validator
    assert _temps(tmp_path) == []


def test_a_resume_whose_total_length_changed_starts_again_even_if_the_server_ignores_if_range(tmp_path):
    longer = TRAIN + b'{"label": "entailed"}\n'
    with FixtureServer(_served(), drop={"/demo/train.txt": 70_000}, if_range=False) as server:
        _interrupted_then_changed(tmp_path, server, longer)
        report = fetch(None, tmp_path, mirror=server.url, sources=_table({"train.txt": None, "dev.txt": None}),
                       retry_wait_s=0)
    assert report.ok and (tmp_path / "train.txt").read_bytes() == longer
    assert _lock(tmp_path)["demo"]["train.txt"]["sha256"] == _sha(longer)
    assert [r for r in server.requests if r[0] == "/demo/train.txt"][-1] == ("/demo/train.txt", None)


def test_the_validator_is_kept_beside_the_partial_for_a_later_process(tmp_path):
    with FixtureServer(_served(), drop={"/demo/train.txt": 70_000}) as server:
        _interrupted_then_changed(tmp_path, server, TRAIN)
    [partial] = [tmp_path / name for name in _temps(tmp_path) if name.startswith(".train.txt~")]
    state = state_path(partial)
    assert _temps(tmp_path) == sorted([partial.name, state.name])
    assert json.loads(state.read_text()) == {"validator": etag(TRAIN), "size": len(TRAIN)}


def test_a_partial_without_a_validator_is_downloaded_again_from_the_start(tmp_path):
    """A partial left by an earlier version (no validator beside it) cannot be resumed safely: no bare Range."""
    (tmp_path / f".train.txt~{socket.gethostname()}~{_dead_pid()}~0001.tmp").write_bytes(b"x" * 5_000)
    with FixtureServer(_served()) as server:
        report = fetch(None, tmp_path, mirror=server.url, sources=_table(), retry_wait_s=0)
    assert report.ok and (tmp_path / "train.txt").read_bytes() == TRAIN
    assert server.requests[0] == ("/demo/train.txt", None)


# ------------------------------------------------------------------------- 14: credentials in HF_ENDPOINT stay hidden
SOUNDMIND = {"train": _lines(5, "sm train"), "dev": _lines(3, "sm dev")}  # no test split: one failure to report


def _hub(userinfo: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """The SoundMind files as the Hub resolves them, behind HTTP Basic auth with the URL's user name and password."""
    user, _, password = userinfo.partition(":")
    wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        split = handler.path.removeprefix("/datasets/SoundMind-RL/SoundMindDataset/resolve/main/dataset/")
        body = SOUNDMIND.get(split.removesuffix("/metadata.jsonl"))
        if handler.headers.get("Authorization") != wanted:
            handler.send_error(401)
        elif body is None:
            handler.send_error(404)
        else:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    return respond


@pytest.mark.parametrize("userinfo", ["user:secret", "secret"])
def test_credentials_in_hf_endpoint_reach_neither_output_nor_log(tmp_path, run_cli, userinfo):
    log, out = tmp_path / "fetch.log", tmp_path / "soundmind"
    with Server(_hub(userinfo)) as server:
        env = {**_env(""), "HF_ENDPOINT": server.url.replace("://", f"://{userinfo}@")}
        fetched = run_cli("--log-file", log, "sources", "fetch", "soundmind", "--out", out, env=env, check_rc=1)
        listed = run_cli("--log-file", log, "sources", "list", env=env, check_rc=0)
    assert (out / "dataset" / "train" / "metadata.jsonl").read_bytes() == SOUNDMIND["train"]  # the credentials were used
    assert "test/metadata.jsonl:" in fetched.stderr and "HTTP 404" in fetched.stderr  # a message naming the URL
    shown = redact(f"http://{userinfo}@127.0.0.1")
    assert shown in listed.stdout and shown in fetched.stderr
    texts = [fetched.stdout, fetched.stderr, listed.stdout, listed.stderr, log.read_text(),
             (out / sources.LOCK_NAME).read_text()]
    assert all("secret" not in text for text in texts)


def test_credentials_in_an_unreachable_hf_endpoint_are_not_echoed(tmp_path, run_cli):
    port = _closed_port()
    log = tmp_path / "fetch.log"
    env = {**_env(""), "HF_ENDPOINT": f"http://user:secret@127.0.0.1:{port}"}
    proc = run_cli("--log-file", log, "sources", "fetch", "soundmind", "--out", tmp_path / "x", env=env, check_rc=1)
    assert f"cannot reach 127.0.0.1:{port}: Connection refused" in proc.stderr
    assert "secret" not in proc.stderr + proc.stdout + log.read_text()


@pytest.mark.parametrize("url, shown", [
    ("http://user:secret@host/x", "http://user:***@host/x"),
    ("https://secret@host/x", "https://***@host/x"),
    ("see https://host/a@b and me@example.org", "see https://host/a@b and me@example.org"),
])
def test_redact_hides_a_urls_user_info(url, shown):
    assert redact(url) == shown
