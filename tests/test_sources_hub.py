"""`sources fetch soundmind` against the fake Hub (tests/fakehub.py), driven by the real `huggingface_hub` client:
the Hub's layout (dataset/SPLIT/metadata.jsonl; with --with-audio the recordings and annotations beside them), a
second run that asks for nothing it has, a run killed mid-fetch resumed by the next, a transfer cut off resumed by a
Range request, every file checked against the Hub's listing, offline as one line, and no secret ever shown."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fakehub import FakeHub
from test_sources import _closed_port

from soundmind_data import sources
from soundmind_data.core.errors import UsageError
from soundmind_data.sources import Source, SourceFile, fetch

ROOT = Path(__file__).resolve().parent.parent
REPO = "SoundMind-RL/SoundMindDataset"
TOKEN = "hf_fake-sources-secret-0123456789"  # not a real token; checked never to leak
PASSWORD = "endpoint-pass-8642"
METADATA = [*(f"dataset/{split}/metadata.jsonl" for split in ("train", "dev", "test")), "README.md"]  # and the card


def _wav(seconds: float, freq: float) -> bytes:
    out = io.BytesIO()
    t = np.arange(int(16000 * seconds)) / 16000
    soundfile.write(out, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, format="WAV",
                    subtype="PCM_16")
    return out.getvalue()


def _release() -> dict[str, bytes]:
    """A small SoundMind release as the Hub lays it out: 4 items over 3 splits, each with its recordings."""
    files, number = {"README.md": b"---\nlicense: mit\n---\n# SoundMind\n"}, 0
    for split, count in (("train", 2), ("dev", 1), ("test", 1)):
        lines = []
        for _ in range(count):
            number += 1
            item_id, label = f"{number:04d}", number % 2
            folder = f"dataset/{split}/{item_id}"
            files[f"{folder}/question.wav"] = _wav(0.2 + 0.05 * number, 300 + 40 * number)
            files[f"{folder}/answer_{label}.wav"] = _wav(0.3, 500 + 40 * number)
            files[f"{folder}/annotation.json"] = json.dumps({"id": item_id, "label": label}).encode()
            lines.append(json.dumps({"id": item_id, "question_file_name": f"{item_id}/question.wav",
                                     "answer_file_name": f"{item_id}/answer_{label}.wav", "label": label}))
        files[f"dataset/{split}/metadata.jsonl"] = ("\n".join(lines) + "\n").encode()
    return files


RELEASE = _release()
RECORDINGS = sorted(path for path in RELEASE if path.endswith((".wav", "annotation.json")))  # 12 files
# the same files, each changed: the next commit of main
MOVED = {path: _wav(0.4, 900 + 20 * number) if path.endswith(".wav") else content + b"\n"
         for number, (path, content) in enumerate(RELEASE.items())}
HELD = "dataset/train/0002/answer_0.wav"


@pytest.fixture
def hub():
    with FakeHub(tokens={TOKEN: ("alice", [])}) as fake:
        fake.add_files(REPO, RELEASE)
        yield fake


def _env(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """A CLI process's environment: the fake Hub, no proxy, no token or offline flag from outside, no Xet."""
    kept = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith(("HF_", "SOUNDMIND"))}
    return {**kept, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def _fetched(out: Path) -> dict[str, bytes]:
    """What the folder holds of the release (the lock file and the client's .cache/ left out)."""
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in out.rglob("*")
            if path.is_file() and ".cache" not in path.parts and path.name != sources.LOCK_NAME}


def _header(headers: dict[str, str], name: str) -> str | None:
    """A request header as the fake Hub recorded it, whatever the case the client wrote its name in."""
    return {key.lower(): value for key, value in headers.items()}.get(name.lower())


def _resolved(hub: FakeHub, since: int = 0) -> list[tuple[str, str]]:
    """(method, repo path) of each file request (HEAD or GET resolve) after the `since`-th request."""
    prefix = f"/datasets/{REPO}/resolve/"
    return [(method, path[len(prefix):].split("/", 1)[1]) for method, path, _ in hub.requests[since:]
            if path.startswith(prefix)]


# ---------------------------------------------------------------------------------------------------- the command
def test_by_default_only_the_metadata_come_in_the_hubs_layout(tmp_path, hub, run_cli):
    out = tmp_path / "soundmind"
    proc = run_cli("sources", "fetch", "soundmind", "--out", out, env=_env(tmp_path, hub.url), check_rc=0)
    assert _fetched(out) == {path: RELEASE[path] for path in METADATA}
    assert sorted(path for _, path in _resolved(hub)) == sorted(METADATA)  # no recording asked for
    assert sorted(json.loads((out / sources.LOCK_NAME).read_text())["soundmind"]) == sorted(METADATA)
    assert "4 downloaded" in proc.stderr and "recordings" not in proc.stderr


def test_with_audio_the_recordings_come_beside_them_and_a_second_run_asks_for_none(tmp_path, hub, run_cli):
    out = tmp_path / "soundmind"
    env = _env(tmp_path, hub.url)
    first = run_cli("sources", "fetch", "soundmind", "--with-audio", "--out", out, env=env, check_rc=0)
    assert _fetched(out) == {path: RELEASE[path] for path in [*METADATA, *RECORDINGS]}
    commit = hub.repos[REPO].heads["main"]
    assert f"sources: soundmind recordings at commit {commit[:12]}: 12 files in {out}: 12 downloaded" in first.stderr
    before = len(hub.requests)
    second = run_cli("sources", "fetch", "soundmind", "--with-audio", "--out", out, env=env, check_rc=0)
    assert _resolved(hub, before) == []  # neither HEAD nor GET: the folder says it has them all at that commit
    assert "4 already present" in second.stderr and "0 downloaded (0 bytes), 12 already present, 0 failed" \
        in second.stderr and "Traceback" not in first.stderr + second.stderr


def test_a_run_killed_mid_fetch_is_resumed_by_the_next_which_asks_only_for_what_is_missing(tmp_path, hub, run_cli):
    out = tmp_path / "soundmind"
    env = _env(tmp_path, hub.url)
    hub.hold_downloads[HELD] = 1000  # its first 1,000 bytes arrive, then the transfer hangs
    process = subprocess.Popen([sys.executable, "-m", "soundmind_data", "sources", "fetch", "soundmind",
                                "--with-audio", "--out", str(out)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert hub.held.wait(60)
        deadline = time.monotonic() + 60
        while len(_fetched(out)) < len(METADATA) + len(RECORDINGS) - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        hub.heal()
    assert HELD not in _fetched(out) and len(_fetched(out)) == len(METADATA) + len(RECORDINGS) - 1
    before = len(hub.requests)
    proc = run_cli("sources", "fetch", "soundmind", "--with-audio", "--out", out, env=env, check_rc=0)
    assert {path for _, path in _resolved(hub, before)} == {HELD}  # nothing else asked for again
    assert _fetched(out)[HELD] == RELEASE[HELD]
    assert "1 downloaded" in proc.stderr and "11 already present" in proc.stderr


def test_offline_is_one_line_and_exit_1(tmp_path, hub, run_cli):
    out = tmp_path / "soundmind"
    proc = run_cli("sources", "fetch", "soundmind", "--out", out, env=_env(tmp_path, hub.url, HF_HUB_OFFLINE="1"),
                   check_rc=1)
    assert proc.stderr.strip().splitlines() == [
        f"error: soundmind: HF_HUB_OFFLINE is set, so nothing is downloaded from the Hub: unset it, or download the "
        f'files by hand into {out} (see README "Sources")']
    assert hub.requests == []
    run_cli("sources", "fetch", "soundmind", "--out", out, env=_env(tmp_path, hub.url), check_rc=0)
    port = _closed_port()  # the metadata are there and checked without the Hub; the recordings need it
    down = run_cli("sources", "fetch", "soundmind", "--with-audio", "--out", out,
                   env=_env(tmp_path, f"http://127.0.0.1:{port}"), check_rc=1)
    assert down.stderr.strip().splitlines() == [
        f"error: cannot reach 127.0.0.1:{port}: [Errno 111] Connection refused; the recordings already in {out} are "
        f'kept: run the same command again to resume, or download them by hand (see README "Sources")']


@pytest.mark.parametrize("secret", ["token", "endpoint password"])
def test_no_token_or_endpoint_password_is_ever_shown(tmp_path, hub, run_cli, secret):
    out, log = tmp_path / "soundmind", tmp_path / "fetch.log"
    hub.gone.add(HELD)  # listed, then gone: the client's error names the URL it asked
    if secret == "token":  # the client sends it as a Bearer token
        env, sent = _env(tmp_path, hub.url, HF_TOKEN=TOKEN), f"Bearer {TOKEN}"
    else:  # the client sends it as HTTP Basic auth
        env = _env(tmp_path, hub.url.replace("://", f"://me:{PASSWORD}@"))
        sent = "Basic " + base64.b64encode(f"me:{PASSWORD}".encode()).decode()
    proc = run_cli("--log-file", log, "sources", "fetch", "soundmind", "--with-audio", "--out", out, env=env,
                   check_rc=1)
    assert f"{out / HELD}: " in proc.stderr and "404" in proc.stderr
    assert "11 downloaded" in proc.stderr and "1 failed" in proc.stderr, proc.stderr
    # the secret was used by the Hub client (the table's downloader, which asks for the metadata, sends no token:
    # its files are public)
    client = [headers for _, path, headers in hub.requests if not path.endswith(tuple(METADATA))]
    assert {_header(headers, "Authorization") for headers in client} == {sent}
    texts = [proc.stdout, proc.stderr, log.read_text()] + [path.read_bytes().decode("utf-8", "replace")
                                                           for path in tmp_path.rglob("*") if path.is_file()]
    assert not any(TOKEN in text or PASSWORD in text for text in texts)


def test_with_audio_usage_errors(tmp_path):
    with pytest.raises(UsageError, match=r"--with-audio: logiqa2-nli has no recordings \(sources with recordings: "
                                         r"soundmind\)"):
        fetch(["logiqa2-nli"], tmp_path, with_audio=True)
    with pytest.raises(UsageError, match=r"--with-audio: the recordings come from the Hub \(HF_ENDPOINT\), not from "
                                         r"a --mirror"):
        fetch(["soundmind"], tmp_path, with_audio=True, mirror="http://127.0.0.1:9/")
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


# ---------------------------------------------------------------------------------------------------- the library
@pytest.fixture
def in_process(hub, monkeypatch):
    """The library in this process, talking to the fake Hub."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # what HF_ENDPOINT sets when the client is imported
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    for name in ("HF_TOKEN", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return hub


def _table(max_size: int = sources.MAX_SIZE) -> dict[str, Source]:
    files = tuple(SourceFile(path, path) for path in METADATA)
    return {"sm": Source("sm", "the release", REPO, "hf-dataset", "main", "https://example.invalid", "MIT", files,
                         max_size=max_size, recordings=sources.SOURCES["soundmind"].recordings)}


def test_a_transfer_cut_off_is_resumed_with_a_range_request(tmp_path, in_process, monkeypatch):
    from huggingface_hub import constants

    # The client writes what arrived in blocks of DOWNLOAD_CHUNK_SIZE (10 MB): a block cut short is asked again.
    # Small blocks let a small file show the resume a recording of several MB gets.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256)
    cut = "dataset/train/0001/question.wav"
    in_process.drop_downloads[cut] = 1000
    report = fetch(None, tmp_path, with_audio=True, sources=_table())
    assert report.ok and report.recordings[0].downloaded == 12
    assert (tmp_path / cut).read_bytes() == RELEASE[cut]
    first, again = [_header(headers, "Range") for method, path, headers in in_process.requests
                    if method == "GET" and path.endswith(cut)]
    assert first is None and again in ("bytes=768-", "bytes=1000-")  # the blocks that arrived whole are kept


def test_files_too_big_or_not_what_the_listing_says_fail_and_are_not_kept(tmp_path, in_process):
    big = max(RECORDINGS, key=lambda path: len(RELEASE[path]))
    corrupt = "dataset/train/0001/question.wav"  # not the biggest
    oid = in_process.repos[REPO].branches["main"][corrupt].lfs_oid
    in_process.lfs_objects[oid] = bytes(len(RELEASE[corrupt]))  # the storage now serves other bytes
    report = fetch(None, tmp_path, with_audio=True, sources=_table(max_size=len(RELEASE[big]) - 1))
    recordings = report.recordings[0]
    assert not report.ok and recordings.downloaded == 10
    failures = dict(recordings.failures)
    assert set(failures) == {big, corrupt}
    assert failures[big] == (f"the Hub lists {len(RELEASE[big]):,} bytes, more than the {len(RELEASE[big]) - 1:,} "
                             f"bytes a file may have; not downloaded")
    assert failures[corrupt].startswith("sha256 ") and failures[corrupt].endswith(
        f"expected {oid} (the Hub's listing); the download was removed")
    assert not (tmp_path / big).exists() and not (tmp_path / corrupt).exists()
    assert big not in {path for _, path in _resolved(in_process)}  # never asked for
    summary = report.summary().err
    assert f"{tmp_path / corrupt}: sha256 " in "\n".join(summary) and "2 failed" in summary[-1]


def test_metadata_and_recordings_come_from_the_commit_main_pointed_at_when_the_fetch_began(tmp_path, in_process):
    """main moves once the metadata are fetched, before the recordings: all of them still come from one commit."""
    first, moved = in_process.repos[REPO].heads["main"], []

    def move_main(path: str) -> None:
        if path == METADATA[-1] and not moved:  # the last of the table's files: the recordings come next
            moved.append(in_process.add_files(REPO, MOVED))

    in_process.on_download = move_main
    report = fetch(None, tmp_path, with_audio=True, sources=_table())
    assert moved and report.ok
    assert _fetched(tmp_path) == {path: RELEASE[path] for path in [*METADATA, *RECORDINGS]}  # none of MOVED
    asked = {path.split("/resolve/", 1)[1].split("/", 1)[0] for _, path, _ in in_process.requests if "/resolve/" in path}
    assert asked == {first}  # every file, metadata and recordings, at that commit (never at main)
    summary = "\n".join(report.summary().err)
    assert f"sm: main is commit {first[:12]}" in summary and f"sm recordings at commit {first[:12]}: 12 files" in summary


@pytest.mark.parametrize("metadata", ["kept", "deleted to fetch anew"])
def test_when_main_moved_since_the_metadata_were_fetched_no_recording_is_touched(tmp_path, in_process, metadata):
    """Recordings of the new commit beside the metadata of the old one would not be the ones those describe: the
    metadata are checked first (against the lock file, and those kept against the commit's listing), and when they
    are not the commit's, no recording is asked for or changed."""
    assert fetch(None, tmp_path, with_audio=True, sources=_table()).ok
    if metadata != "kept":
        (tmp_path / METADATA[0]).unlink()
    kept = _fetched(tmp_path)
    new = in_process.add_files(REPO, MOVED)
    since = len(in_process.requests)
    report = fetch(None, tmp_path, with_audio=True, sources=_table())
    assert not report.ok and _fetched(tmp_path) == kept
    assert not {path for _, path in _resolved(in_process, since)} & set(RECORDINGS)  # none asked for
    recordings = report.recordings[0]
    assert (recordings.commit, recordings.downloaded, recordings.present) == (new, 0, 0)
    summary = report.summary().err
    assert summary[-1].startswith(f"sources: sm recordings at commit {new[:12]}: none fetched into {tmp_path}: ")
    if metadata == "kept":  # each is an earlier commit's, as its listing says
        assert [path for path, _ in recordings.failures] == METADATA
        assert f"{tmp_path / METADATA[0]}: not the file of commit {new[:12]}: git blob id " in "\n".join(summary)
        assert "the metadata named above are not that commit's" in summary[-1]
    else:  # the new one is downloaded from that commit, and refused by the lock file
        assert [one.status for one in report.files] == ["failed", "present", "present", "present"]
        assert "the metadata above failed their check" in summary[-1]
