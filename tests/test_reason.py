"""The reason stage against a real local OpenAI-compatible server (scripted per prompt) and a tiny local model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from factories import item, logiqa_line, read_jsonl, soundmind_line, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.labels import parse_final_answer
from soundmind_data.core.stage import command_line, parse_options
from soundmind_data.llm.canned_server import CannedReply, CannedServer
from soundmind_data.llm.openai_compat import OpenAICompatBackend
from soundmind_data.pipeline import load_pipeline
from soundmind_data.stages import declaration
from soundmind_data.stages.reason import PromptTemplate, judge, reason_manifest

ROOT = Path(__file__).resolve().parent.parent
YES = "Every parrot in the aviary is fed at noon, and this one lives there, so it is fed at noon too.\n\nAnswer: entailed."
NO = "Living in the aviary does not settle when it is fed.\n\nAnswer: not entailed."
YES_WITH_ARROW = "Aviary → fed at noon, so the parrot is fed.\n\nAnswer: entailed."
CASE = re.compile(r"case-(\w+)")


def scripted_reply(prompt: str, n: int):
    """The server's answer to the n-th request (from 1) for a prompt, chosen by the `case-NAME` in its conclusion."""
    case = CASE.search(prompt).group(1)
    if case == "agree":
        return YES
    if case == "agreeneg":
        return NO
    if case == "second":  # the first sample disagrees, the second agrees
        return NO if n == 1 else YES
    if case == "disagree":
        return NO
    if case == "malformed":  # no final answer at all
        return "I would rather not decide this one."
    if case == "unspeakable":  # agrees, but a voice cannot read the arrow
        return YES_WITH_ARROW if n == 1 else YES
    if case in ("429", "500"):
        return CannedReply(status=int(case), headers={"Retry-After": "0"}) if n == 1 else YES
    if case == "timeout":
        return CannedReply(content=YES, delay_s=5.0) if n == 1 else YES
    if case == "down":
        return CannedReply(status=500)
    if case == "badbody":
        return CannedReply(body=b"<html>proxy error</html>")
    raise AssertionError(case)


def case_item(case: str, item_id: str | None = None, **extra) -> dict:
    """An item whose prompt makes the server play `case`; the id is also in the conclusion, so prompts differ."""
    item_id = item_id or f"it-{case}"
    return item(item_id, conclusion=f"The parrot is fed at noon, case-{case} ({item_id})", **extra)


def by_id(path: Path) -> dict[str, dict]:
    return {record["id"]: record for record in read_jsonl(path)}


def prompt_of(record: dict, template: PromptTemplate | None = None) -> str:
    return (template or PromptTemplate.load()).render(record)


def test_judge_accepts_only_speakable_answers_that_reach_the_gold_label():
    assert judge(YES, 1) is None
    assert judge(NO, 1) == "not-entailed"
    assert judge(YES, 0) == "entailed"
    assert judge("No verdict here.", 1) == "undecidable"
    assert judge(YES_WITH_ARROW, 1) == "unspeakable"


def test_gold_files_give_soundmind_items_their_gold_label(tmp_path):
    # A SoundMind item labelled 0 by a model; the LogiQA file says the same triplet is entailed: the gold file wins.
    record = case_item("agree", item_id="it-sm", label=0)
    gold = write_jsonl(tmp_path / "dev.txt", [logiqa_line(record["major_premise"], record["minor_premise"],
                                                          record["conclusion"] + ".", "entailed")])
    manifest = write_jsonl(tmp_path / "items.jsonl", [record, case_item("agreeneg", label=0)])
    with CannedServer(scripted_reply) as server:
        backend = OpenAICompatBackend(server.base_url, "m", timeout_s=10.0, max_retries=0)
        report = reason_manifest(manifest, out=tmp_path / "out.jsonl", backend=backend, samples=1, gold_files=[gold])
    accepted = by_id(tmp_path / "out.jsonl")
    assert accepted["it-sm"]["label"] == 1 and accepted["it-sm"]["reason"]["gold_from"] == "gold-file"
    assert accepted["it-agreeneg"]["label"] == 0 and accepted["it-agreeneg"]["reason"]["gold_from"] == "label"
    assert report.gold_from == {"gold-file": 1, "label": 1}


@pytest.mark.parametrize("answer, verdict", [
    ("Answer: entailed.\n\nActually no, it is not entailed.", "verdict-not-last"),
    ("Answer: entailed? No, not entailed.", "verdict-not-last"),
    ("**Step 1:** the premises hold.\nAnswer: entailed.", "unspeakable"),
    ("The rule is $P \\to Q$, so it holds. Answer: entailed.", "unspeakable"),
    ("\\frac{a}{b} is two. Answer: entailed.", "unspeakable"),
    ("<think>hmm</think> It holds. Answer: entailed.", "unspeakable"),
    ("Steps:\n- the cat is an animal\nAnswer: entailed.", "unspeakable"),
    ("# Reasoning\nIt holds.\nAnswer: entailed.", "unspeakable"),
    ("x | y holds. Answer: entailed.", "unspeakable"),
    ("Tom is a cat, and more than 5% of cats, e.g. Tom, are animals; x > 5 holds.\nAnswer: entailed.", None),
    ("It follows.\nAnswer: Entailed", None),
])
def test_judge_wants_the_verdict_last_and_plain_speakable_prose(answer, verdict):
    assert judge(answer, 1) == verdict


def test_default_prompt_renders_the_spoken_question_and_asks_for_the_final_line():
    record = item("a", conclusion="Tom costs $5")
    prompt = PromptTemplate.load().render(record)
    assert prompt.startswith(record["question_text"])
    assert "Answer: entailed." in prompt and "Answer: not entailed." in prompt
    assert "$" not in prompt.replace("$5", "")  # every placeholder was filled; the item's own dollar survives


@pytest.mark.parametrize("text, message", [
    ("Decide: $question and $premise", r"t\.txt:1: unknown placeholder '\$premise'"),
    ("Decide.\nCost: $ 5 $question", r"t\.txt:2: unknown placeholder '\$'"),
    ("Decide, whatever the item.", "uses neither"),
])
def test_a_bad_prompt_template_is_a_usage_error_naming_the_file(tmp_path, text, message):
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(UsageError, match=message):
        PromptTemplate.load(tmp_path / "t.txt")


def test_openai_backend_keeps_only_agreeing_answers_and_retries_transient_failures(tmp_path):
    cases = ["agree", "second", "disagree", "malformed", "unspeakable", "429", "500", "timeout", "down", "badbody"]
    records = [case_item(c) for c in cases]
    # A LogiQA item whose label was overwritten: the gold label decides, and the accepted item gets it back.
    records.append(case_item("agree", item_id="it-relabel", label=0, source={
        "dataset": "logiqa2-nli", "file": "dev.txt", "line": 3, "gold_label": 1}))
    # A SoundMind item (no gold label): its own label decides; its stale answer audio must go with the old answer.
    records.append(case_item("agreeneg", label=0, answer="Old answer.\n\nAnswer: entailed.",
                             answer_audio={"path": "a.wav", "sha256": "0" * 64, "sample_rate": 16000, "duration_s": 1.0}))
    manifest = write_jsonl(tmp_path / "items.jsonl", records)
    out = tmp_path / "out.jsonl"

    with CannedServer(scripted_reply) as server:
        # The timeout is generous enough that a busy test machine never times out a prompt answer by accident.
        backend = OpenAICompatBackend(server.base_url, "canned-model", temperature=0.5, timeout_s=2.0, max_retries=2,
                                      backoff_s=0.01)
        report = reason_manifest(manifest, out=out, backend=backend, samples=3, concurrency=4)
        sent = dict(server.requests)

        accepted, unresolved = by_id(out), by_id(tmp_path / "out.unresolved.jsonl")
        assert list(accepted) == [r["id"] for r in records if r["id"] in accepted]  # input order kept
        assert set(accepted) == {"it-agree", "it-second", "it-unspeakable", "it-429", "it-500", "it-timeout",
                                 "it-relabel", "it-agreeneg"}
        assert set(unresolved) == {"it-disagree", "it-malformed", "it-down", "it-badbody"}

        # No accepted answer ever disagrees with the gold label, and every line is a valid item.
        for record in [*accepted.values(), *unresolved.values()]:
            assert schemas.first_error("item", record) is None, record["id"]
        for record in accepted.values():
            assert parse_final_answer(record["answer_text"]) == record["label"]
            assert record["reason"]["outcome"] == "accepted"

        assert accepted["it-agree"]["answer_text"] == YES
        assert accepted["it-agree"]["reason"] == {
            "outcome": "accepted", "backend": "openai", "model": "canned-model", "temperature": 0.5, "samples": 3,
            "prompt_sha256": PromptTemplate.load().sha256, "attempts": 1, "rejected_verdicts": [],
            "gold_from": "label"}
        assert accepted["it-second"]["reason"]["attempts"] == 2
        assert accepted["it-second"]["reason"]["rejected_verdicts"] == ["not-entailed"]
        assert accepted["it-unspeakable"]["answer_text"] == YES
        assert accepted["it-unspeakable"]["reason"]["rejected_verdicts"] == ["unspeakable"]
        assert accepted["it-relabel"]["label"] == 1 and accepted["it-relabel"]["reason"]["gold_from"] == "source.gold_label"
        assert accepted["it-agreeneg"]["answer_text"] == NO and "answer_audio" not in accepted["it-agreeneg"]

        # Rejected items keep their old answer and label; the reason says why, sample by sample.
        assert unresolved["it-disagree"]["answer_text"] == records[2]["answer_text"]
        assert unresolved["it-disagree"]["reason"]["outcome"] == "unresolved"
        assert unresolved["it-disagree"]["reason"]["rejected_verdicts"] == ["not-entailed"] * 3
        assert unresolved["it-malformed"]["reason"]["rejected_verdicts"] == ["undecidable"] * 3
        assert unresolved["it-down"]["reason"]["outcome"] == "failed"
        assert "HTTP 500" in unresolved["it-down"]["reason"]["error"]
        assert "malformed response" in unresolved["it-badbody"]["reason"]["error"]

        # Transient failures were retried (429, 500, timeout: one retry each; "down": every try), the rest were not.
        prompts = {r["id"]: prompt_of(r) for r in records}
        assert {name: sent[prompts[f"it-{name}"]] for name in ("agree", "429", "500", "timeout", "down", "badbody")} == {
            "agree": 1, "429": 2, "500": 2, "timeout": 2, "down": 3, "badbody": 1}
        assert report.retries == 1 + 1 + 1 + 2
        assert (report.outcomes["accepted"], report.outcomes["unresolved"], report.outcomes["failed"]) == (8, 2, 2)
        assert report.ids == {"unresolved": ["it-disagree", "it-malformed"], "failed": ["it-down", "it-badbody"]}
        # Every try that failed produced no completion: the retried ones, and the last of "down" and "badbody".
        assert report.requests == sum(sent.values()) - report.retries - 2
        assert not report.ok
        assert schemas.first_error("reason-report", report.to_json()) is None

        cache_lines = read_jsonl(tmp_path / "out.reason-cache.jsonl")
        assert len(cache_lines) == report.requests
        assert all(schemas.first_error("reason-cache", line) is None for line in cache_lines)

        # A second run sends only what never succeeded: the two failed items, and nothing else.
        before = server.total_requests
        again = reason_manifest(manifest, out=out, backend=backend, samples=3, concurrency=4)
        assert server.total_requests - before == 3 + 1  # "down" tried 3 times again, "badbody" once
        assert again.requests == 0 and again.cache_hits == report.requests
        assert by_id(out) == accepted


def test_a_run_stops_when_the_endpoint_keeps_failing(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", [case_item("down", item_id=f"it-{i}") for i in range(20)])
    with CannedServer(scripted_reply) as server:
        backend = OpenAICompatBackend(server.base_url, "m", max_retries=0)
        with pytest.raises(DataError, match="3 items in a row failed, the last with: HTTP 500"):
            reason_manifest(manifest, out=tmp_path / "out.jsonl", backend=backend, concurrency=1, max_failures_in_a_row=3)
        assert server.total_requests <= 3 + 2  # the failed ones, and at most the two queued behind them
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_resumes_after_kill_without_resending_finished_requests(tmp_path):
    """kill -9 a real run while a request hangs; the rerun must not send the finished requests again."""
    records = [case_item(c, item_id=f"it-{i}") for i, c in enumerate(["agree", "second", "agree", "hang", "agree"])]
    manifest = write_jsonl(tmp_path / "items.jsonl", records)
    out = tmp_path / "out.jsonl"
    release = threading.Event()

    def reply(prompt: str, n: int):
        if "case-hang" in prompt:
            if n == 1:  # the first try hangs until the test lets go; the run is killed meanwhile
                release.wait(30)
            return YES
        return scripted_reply(prompt, n)

    secret = "sk-test-do-not-log-0123456789"
    with CannedServer(reply) as server:
        command = [sys.executable, "-m", "soundmind_data", "reason", str(manifest), "--out", str(out),
                   "--backend", "openai", "--endpoint", server.base_url, "--model", "canned", "--samples", "2",
                   "--concurrency", "1", "--json", str(tmp_path / "report.json")]
        env = {**os.environ, "OPENAI_API_KEY": secret}
        first = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        hang_prompt = prompt_of(records[3])
        deadline = time.monotonic() + 60
        while server.requests[hang_prompt] == 0 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests[hang_prompt] == 1, first.communicate()
        first.send_signal(signal.SIGKILL)
        first.communicate()
        release.set()
        assert not out.exists()  # no half manifest that looks finished
        cache = tmp_path / "out.reason-cache.jsonl"
        assert len(read_jsonl(cache)) == 4  # it-0, both samples of it-1, it-2
        with open(cache, "a") as torn:  # what a kill in the middle of a write leaves behind
            torn.write('{"key": "0123')

        finished = dict(server.requests)
        rerun = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        for record in records[:3]:
            prompt = prompt_of(record)
            assert server.requests[prompt] == finished[prompt], record["id"]  # not one finished request re-sent
        assert server.requests[hang_prompt] == 2 and server.requests[prompt_of(records[4])] == 1
        assert server.authorizations == {f"Bearer {secret}"}

    assert [r["id"] for r in read_jsonl(out)] == [r["id"] for r in records]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["requests"], report["cache_hits"], report["accepted"]) == (2, 4, 5)
    lines = cache.read_text().splitlines()
    assert lines[4] == '{"key": "0123' and all(json.loads(line) for line in lines[5:])  # appends start on a new line
    assert "accepted" in rerun.stdout and "5 accepted" in rerun.stderr
    for text in (rerun.stdout, rerun.stderr, *(p.read_text() for p in tmp_path.iterdir())):
        assert secret not in text


def test_ctrl_c_stops_at_once_even_with_a_request_in_flight(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", [case_item("hang")])
    release = threading.Event()
    with CannedServer(lambda prompt, n: release.wait(30) and YES) as server:
        command = [sys.executable, "-m", "soundmind_data", "reason", str(manifest), "--out", str(tmp_path / "out.jsonl"),
                   "--backend", "openai", "--endpoint", server.base_url, "--model", "m"]
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while server.total_requests == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        try:  # the request hangs for 30 s and the client would wait 300 s: returning at all means it did not wait
            _, stderr = proc.communicate(timeout=20)
        finally:
            proc.kill()
            release.set()
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_exits_1_and_lists_items_whose_requests_failed(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [case_item("agree"), case_item("down")])
    with CannedServer(scripted_reply) as server:
        proc = run_cli("reason", manifest, "--out", tmp_path / "out.jsonl", "--backend", "openai", "--endpoint",
                       server.base_url, "--model", "m", "--retries", "0", check_rc=1)
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["it-agree"]
    [failed] = read_jsonl(tmp_path / "out.unresolved.jsonl")
    assert failed["id"] == "it-down" and failed["reason"]["outcome"] == "failed"
    assert "failed (1 items): HTTP 500: canned HTTP 500" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, rc, message", [
    (["--backend", "openai", "--endpoint", "http://127.0.0.1:9/v1"], 2, "--model is required"),
    (["--backend", "gpt", "--model", "m"], 2, "--backend 'gpt': choose one of openai, transformers"),
    (["--backend", "openai", "--model", "m", "--endpoint", "127.0.0.1:8000"], 2, "expected an http:// or https://"),
    (["--backend", "openai", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1", "--samples", "0"], 2,
     "--samples 0: must be at least 1"),
    (["--backend", "openai", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1", "--prompt-template", "BADTEMPLATE"],
     2, "bad.txt:1: unknown placeholder '$answer'"),
    (["--backend", "openai", "--model", "m", "--endpoint", "LIVE", "--manifest-is-bad"], 1,
     "items.jsonl:2: label: 2 is not one of [0, 1]"),
    (["--backend", "openai", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1"], 2,
     "cannot reach the LLM endpoint http://127.0.0.1:9/v1: [Errno 111] Connection refused"),
    (["--backend", "transformers", "--model", "./missing-folder"], 2, "--model ./missing-folder: no such folder"),
])
def test_cli_usage_and_data_errors_are_one_line(tmp_path, run_cli, args, rc, message):
    good, bad = item("a"), {**item("b"), "label": 2}
    manifest = write_jsonl(tmp_path / "items.jsonl", [good, bad] if "--manifest-is-bad" in args else [good])
    (tmp_path / "bad.txt").write_text("$question $answer")
    with CannedServer(lambda prompt, n: YES) as server:  # LIVE: an endpoint that answers, so the data is read
        args = [str(tmp_path / "bad.txt") if a == "BADTEMPLATE" else server.base_url if a == "LIVE" else a
                for a in args if a != "--manifest-is-bad"]
        proc = run_cli("reason", manifest, "--out", tmp_path / "out.jsonl", *args, "--retries", "0", check_rc=rc)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


KEY = "sk-echo-Q7rT9wXe2LpV4mZk"  # not a real key; checked never to leak, not even its first characters


def test_a_server_that_echoes_the_key_gets_it_into_no_message_or_file(tmp_path, run_cli):
    """A server or proxy that echoes the Authorization header in its error text, or in a body that is not a
    completion (where the key straddles the 120 characters a message quotes of it): the messages keep the server's
    words, and the key reaches neither stderr, nor the JSON report, nor the unresolved file, nor the cache."""
    def echo(prompt: str, n: int) -> CannedReply:
        [header] = server.authorizations  # what the client sent: "Bearer <key>"
        case = CASE.search(prompt).group(1)
        if case == "html":
            return CannedReply(body=("x" * 100 + header).encode())
        error = {"error": {"message": f"bad Authorization: {header}"}}
        return CannedReply(status=int(case), body=json.dumps(error).encode())

    manifest = write_jsonl(tmp_path / "items.jsonl", [case_item("401"), case_item("500"), case_item("html")])
    with CannedServer(echo) as server:
        proc = run_cli("reason", manifest, "--out", tmp_path / "out.jsonl", "--backend", "openai", "--endpoint",
                       server.base_url, "--model", "m", "--retries", "0", "--json", tmp_path / "report.json",
                       env={"OPENAI_API_KEY": KEY}, check_rc=1)
    assert server.authorizations == {f"Bearer {KEY}"}
    assert "HTTP 401: bad Authorization: Bearer *** (check OPENAI_API_KEY)" in proc.stderr
    assert "HTTP 500: bad Authorization: Bearer ***" in proc.stderr
    assert "malformed response (not a chat completion): 'xxx" in proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(report["ids"]["failed"]) == ["it-401", "it-500", "it-html"]
    for text in (proc.stdout, proc.stderr, *(path.read_text() for path in tmp_path.iterdir())):
        assert KEY[:10] not in text


@pytest.mark.parametrize("endpoint, rc", [
    # Refused before any request (the endpoint is probed first): urllib takes `user:...@127.0.0.1` for the host name
    ("http://user:{password}@127.0.0.1:9/v1", 2),
    ("http://user:{password}@127.0.0.1/v1", 2),  # ... and `...@127.0.0.1` for the port: "nonnumeric port"
    ("user:{password}@127.0.0.1:9/v1", 2),  # no scheme: a usage error that quotes the endpoint
])
@pytest.mark.parametrize("password", ["pw-S3cr3t-42", "pw%40S3cr3t-42"])  # the second is "pw@S3cr3t-42" encoded
def test_a_password_in_the_endpoint_url_gets_into_no_message_or_file(tmp_path, run_cli, endpoint, rc, password):
    manifest = write_jsonl(tmp_path / "items.jsonl", [case_item("agree")])
    proc = run_cli("reason", manifest, "--out", tmp_path / "out.jsonl", "--backend", "openai", "--endpoint",
                   endpoint.format(password=password), "--model", "m", "--retries", "0", "--json",
                   tmp_path / "report.json", check_rc=rc)
    assert "user:***@127.0.0.1" in proc.stderr and "Traceback" not in proc.stderr
    for text in (proc.stdout, proc.stderr, *(path.read_text() for path in tmp_path.iterdir())):
        assert "S3cr3t" not in text


def test_a_pipeline_shows_and_logs_the_reason_endpoint_without_its_password(tmp_path, run_cli):
    """An endpoint urllib cannot reach (it takes `user:...@127.0.0.1` for the host) is refused before any stage runs,
    shown redacted; the command a run log (and the dataset card, which cites it) records redacts it too."""
    source = write_jsonl(tmp_path / "src.jsonl", [soundmind_line("s1")])
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"""name: t
stages:
  - stage: ingest
    with: {{sources: [{source}], format: soundmind, split: train}}
  - stage: reason
    with: {{backend: openai, endpoint: "http://user:pw-S3cr3t-42@127.0.0.1:9/v1", model: m, retries: 0}}
""")
    proc = run_cli("run", pipeline, "--workdir", tmp_path / "work", check_rc=2)
    assert "stage 2 (reason): cannot reach the LLM endpoint http://user:***@127.0.0.1:9/v1" in proc.stderr
    files = [path for path in (tmp_path / "work").rglob("*") if path.is_file()]
    assert files == []
    step = load_pipeline(pipeline).stages[1]
    options = parse_options(declaration("reason").options, step.options, "reason")
    logged = command_line(declaration("reason"), Path("in.jsonl"), Path("out.jsonl"), options)
    assert "--endpoint 'http://user:***@127.0.0.1:9/v1'" in logged
    for text in (proc.stdout, proc.stderr, *(path.read_text() for path in files)):
        assert "S3cr3t" not in text


def _tiny_random_model(folder: Path) -> Path:
    """A 1-layer GPT-2 with random weights and a word-level tokenizer whose vocabulary lacks "answer" and "entailed",
    so it can never write a final answer: every sample must be rejected as undecidable."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = "the a parrot is fed at noon all birds in aviary lives so not because premise conclusion true".split()
    vocab = {word: i for i, word in enumerate(["[UNK]", "[EOS]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="[EOS]")
    fast.chat_template = "{% for message in messages %}user {{ message['content'] }}{% endfor %} so"  # as instruct models have
    fast.save_pretrained(folder)
    config = GPT2Config(vocab_size=len(vocab), n_positions=1024, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_transformers_backend_runs_a_tiny_random_model_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from soundmind_data.cli import app

    model = _tiny_random_model(tmp_path / "model")
    # Distinct prompts: two items with one prompt share cache keys, and which of the two draws first is a race.
    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a"), item("b", conclusion="Tom is a plant", label=0)])
    args = ["reason", str(manifest), "--out", str(tmp_path / "out.jsonl"), "--backend", "transformers",
            "--model", str(model), "--samples", "2", "--max-tokens", "6", "--json", str(tmp_path / "report.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == []  # random text reaches no verdict, so nothing is accepted
    unresolved = read_jsonl(tmp_path / "out.unresolved.jsonl")
    assert [r["reason"]["rejected_verdicts"] for r in unresolved] == [["undecidable"] * 2] * 2
    assert all(r["reason"]["backend"] == "transformers" and r["reason"]["attempts"] == 2 for r in unresolved)
    samples = [line["text"] for line in read_jsonl(tmp_path / "out.reason-cache.jsonl")]
    assert len(samples) == 4 and any(text.strip() for text in samples)  # the model really generated text

    rerun = CliRunner().invoke(app, args)  # every sample is cached: same verdicts, nothing generated again
    assert rerun.exit_code == 0, rerun.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["requests"], report["cache_hits"], report["unresolved"]) == (0, 4, 2)

    longer = CliRunner().invoke(app, [*args[:-3], "7", *args[-2:]])  # --max-tokens 7 shapes new completions
    assert longer.exit_code == 0, longer.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["requests"], report["cache_hits"]) == (4, 0)
