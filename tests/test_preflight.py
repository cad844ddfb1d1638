"""Before the first stage starts, every stage that will run is asked whether its backends can run here, and a stage
that writes no item says why: real pipelines run as real processes, against a real local LLM server or a closed
port, with the engines this machine has (coqui not installed, no GPU)."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import threading
import time

import pytest

from factories import read_jsonl, soundmind_line, write_jsonl
from soundmind_data.core.devices import cuda_problem
from soundmind_data.llm.canned_server import CannedReply, CannedServer
from soundmind_data.llm.openai_compat import probe

YES = "Every cat is an animal and Tom is a cat, so Tom is an animal.\n\nAnswer: entailed."


def closed_port_endpoint() -> str:
    """The URL of a local port nobody listens at (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def pipeline(tmp_path, *stages: str, items: int = 3):
    """ingest (`items` entailed SoundMind items) followed by `stages` (YAML list entries, indented)."""
    source = write_jsonl(tmp_path / "src.jsonl", [soundmind_line(f"s{n}", conclusion=f"Tom is animal number {n}")
                                                  for n in range(items)])
    path = tmp_path / "p.yaml"
    path.write_text("name: t\nstages:\n  - stage: ingest\n"
                    f"    with: {{sources: [{source}], format: soundmind, split: train}}\n" + "".join(stages))
    return path


def reason(endpoint: str) -> str:
    return f"  - stage: reason\n    with: {{backend: openai, endpoint: '{endpoint}', model: m, retries: 0}}\n" \
           "    continue_on_failure: true\n"


SPLIT = "  - stage: split\n    with: {ratios: 'train=0.5,test=0.5', seed: 0}\n"


def files_in(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_an_llm_server_that_is_not_up_stops_the_run_before_ingest_writes_anything(tmp_path, run_cli):
    endpoint = closed_port_endpoint()
    path = pipeline(tmp_path, reason(endpoint), SPLIT)
    started = time.monotonic()
    proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=2)
    assert time.monotonic() - started < 5  # one refused connection, not minutes of retries
    assert proc.stderr.splitlines() == [f"error: {path}: stage 2 (reason): cannot reach the LLM endpoint {endpoint}: "
                                        "[Errno 111] Connection refused; is its server running?"]
    assert files_in(tmp_path / "work") == []


def test_the_reason_command_probes_its_endpoint_too(tmp_path, run_cli):
    endpoint = closed_port_endpoint()
    manifest = write_jsonl(tmp_path / "items.jsonl", [])
    started = time.monotonic()
    proc = run_cli("reason", manifest, "--out", tmp_path / "out.jsonl", "--backend", "openai", "--endpoint", endpoint,
                   "--model", "m", check_rc=2)
    assert time.monotonic() - started < 5
    assert proc.stderr.strip() == f"error: cannot reach the LLM endpoint {endpoint}: [Errno 111] Connection refused; " \
                                  "is its server running?"
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.skipif(importlib.util.find_spec("TTS") is not None, reason="coqui-tts is installed here")
def test_every_stage_is_checked_and_every_problem_named_before_stage_1(tmp_path, run_cli):
    """A coqui voice without coqui-tts (`soundmind-data voices` lists it as not installed) and an LLM server that is
    not up: both are told at once, each on its line naming its stage, and nothing runs."""
    endpoint = closed_port_endpoint()
    path = pipeline(tmp_path, reason(endpoint), SPLIT,
                    "  - stage: synthesize\n    with: {voices: ['coqui:Ana Florence', 'piper:joe']}\n")
    proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=2)
    assert proc.stderr.splitlines() == [
        f"error: {path}: stage 2 (reason): cannot reach the LLM endpoint {endpoint}: [Errno 111] Connection refused; "
        "is its server running?",
        f"error: {path}: stage 4 (synthesize): backend coqui needs coqui-tts: pip install 'soundmind-data[coqui]'"]
    assert files_in(tmp_path / "work") == []


@pytest.mark.skipif(cuda_problem() is None, reason="a GPU is visible here")
def test_device_cuda_without_a_gpu_stops_the_run_before_stage_1(tmp_path, run_cli):
    path = pipeline(tmp_path, "  - stage: synthesize\n    with: {voices: [piper:joe], device: cuda}\n",
                    "  - stage: validate\n    with: {asr: whisper, device: cuda}\n")
    proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=2)
    no_gpu = f"--device cuda: {cuda_problem()}"
    import onnxruntime

    piper = no_gpu if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else \
        "--device cuda with Piper needs onnxruntime-gpu (pip install 'soundmind-data[gpu]')"
    assert proc.stderr.splitlines() == [f"error: {path}: stage 2 (synthesize): {piper}",
                                        f"error: {path}: stage 3 (validate): {no_gpu}"]
    assert files_in(tmp_path / "work") == []


def test_left_out_and_finished_stages_need_no_server(tmp_path, run_cli):
    """--skip leaves a stage unchecked; a re-run does not ask for the server of a stage it will skip as unchanged
    (resuming a build), nor does --from a later stage; --from that stage does."""
    path = pipeline(tmp_path, reason(closed_port_endpoint()), SPLIT)
    run_cli("run", path, "--workdir", tmp_path / "skipped", "--skip", "reason", check_rc=0)

    with CannedServer(lambda prompt, n: YES) as server:
        path = pipeline(tmp_path, reason(server.base_url), SPLIT)
        run_cli("run", path, "--workdir", tmp_path / "work", check_rc=0)
    # the server is gone now
    proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=0)
    assert "[2/3] reason: unchanged, skipped" in proc.stderr
    run_cli("run", path, "--workdir", tmp_path / "work", "--from", "split", check_rc=0)
    proc = run_cli("run", path, "--workdir", tmp_path / "work", "--from", "reason", check_rc=2)
    assert f"stage 2 (reason): cannot reach the LLM endpoint {server.base_url}" in proc.stderr
    assert [entry["stage"] for entry in read_jsonl(tmp_path / "work" / "run-log.jsonl")] == ["ingest", "reason",
                                                                                             "split"] * 3


def test_a_stage_that_writes_no_item_says_why_and_the_next_one_does_not_run(tmp_path, run_cli):
    """Every request refused (continue_on_failure lets the run go on after failures): reason says what became of
    them, rather than split saying that its input has no items."""
    with CannedServer(lambda prompt, n: CannedReply(status=400)) as server:
        path = pipeline(tmp_path, reason(server.base_url), SPLIT)
        proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=1)
    work = tmp_path / "work"
    assert (f"error: stage reason wrote no items: 0 of 3 items got an answer: 3 failed, the first with: HTTP 400: "
            f"canned HTTP 400 -> {work / '02-reason.unresolved.jsonl'}") in proc.stderr.splitlines()
    assert "no items" not in proc.stderr.replace("wrote no items", "")
    assert [(entry["stage"], entry["status"]) for entry in read_jsonl(work / "run-log.jsonl")] == [
        ("ingest", "ran"), ("reason", "failed")]


def test_an_emptied_stage_without_words_of_its_own_names_its_first_set_aside_line(tmp_path, run_cli):
    """ingest rejecting every line: its summary line and the first reject's reason."""
    path = pipeline(tmp_path, SPLIT, items=0)
    write_jsonl(tmp_path / "src.jsonl", ['{"id": "0001"}', "{not json"])
    proc = run_cli("run", path, "--workdir", tmp_path / "work", check_rc=1)
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    rejects = tmp_path / "work" / "01-ingest.rejects.jsonl"
    assert line.startswith("error: stage ingest wrote no items: ingest: 0 items")
    assert line.endswith(f"2 rejected -> {rejects}; the first set aside: {tmp_path / 'src.jsonl'}:1: user_content: "
                         "missing")


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_probe_tells_a_refused_key_from_a_server_without_a_model_list():
    """401 fails every request: a problem (the key never shown). Any other answer means a server is there (the
    canned server has no GET at all: 501)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1"
        assert probe(endpoint, api_key="sk-not-shown") == (f"the LLM endpoint {endpoint} answers HTTP 401 "
                                                           "(check OPENAI_API_KEY)")
    finally:
        server.shutdown()
        server.server_close()
    with CannedServer(lambda prompt, n: YES) as canned:
        assert probe(canned.base_url) is None
