"""pipelines/demo.yaml end to end (on the first items of the demo, to keep the suite short), and a run killed in the
middle of synthesis that resumes without redoing finished stages or items."""

import os
import re
import signal
import subprocess
import sys
import time

import datasets
import pytest
from conftest import ROOT
from factories import read_jsonl
from pages import choose, listed, open_all, played_files

DEMO = ROOT / "pipelines" / "demo.yaml"
LIMIT = "6"


def _log_statuses(work):
    return [(e["stage"], e["status"]) for e in read_jsonl(work / "run-log.jsonl")]


def test_demo_pipeline_end_to_end(tmp_path, run_cli, request):
    work = tmp_path / "work"
    proc = run_cli("run", DEMO, "--workdir", work, "--limit", LIMIT, check_rc=0)
    assert [status for _, status in _log_statuses(work)] == ["ran"] * 10
    assert "final manifest" in proc.stdout and "audio:" in proc.stdout

    # the sample items carry a wrong label and an answer against its label: curated away before anything is spoken
    decisions = {d["id"]: d for d in read_jsonl(work / "03-curate.decisions.jsonl")}
    kept = {i["id"] for i in read_jsonl(work / "03-curate.jsonl")}
    assert sorted(kept | {k for k, d in decisions.items() if d["decision"] == "drop"}) == \
        sorted(i["id"] for i in read_jsonl(work / "01-ingest.jsonl"))
    card = (work / "soundmind-demo" / "README.md").read_text(encoding="utf-8")
    audit_rows = card[card.index("## Audit"):card.index("## How it was built")].splitlines()
    counts = [row.split("|")[2].strip() for row in audit_rows if row.startswith("| ") and "check" not in row]
    assert counts and set(counts) == {"0"}  # the published corpus carries no finding
    assert "Curation pass 1" in card and "Curation pass 2" in card
    assert str(work) not in card and "load_dataset('soundmind-demo')" in card  # no path of the builder's disk

    ds = datasets.load_dataset(str(work / "soundmind-demo"))
    manifest = read_jsonl(work / "09-curate-audio.jsonl")
    assert sum(ds[split].num_rows for split in ds) == len(manifest) > 0
    assert ds["train"].features["label"].names == ["not-entailed", "entailed"]
    mixed = [list(ds[split]["label"]) for split in ds if len(set(ds[split]["label"])) == 2]
    assert mixed and all(labels.count(0) == labels.count(1) for labels in mixed)  # balanced by the balance stage
    row = ds["train"][0]
    samples = row["question_audio"].get_all_samples()
    assert samples.sample_rate == 16000
    item = next(i for i in manifest if i["id"] == row["id"])
    assert samples.data.shape[-1] / 16000 == pytest.approx(item["question_audio"]["duration_s"], rel=0.01)
    assert item["question_audio"]["wer"] <= 0.3  # the Whisper round trip recorded by the validate stage
    # spoken by several voices, the test split by one that no other split hears (speaker-disjoint evaluation)
    voices = {split: set(ds[split]["voice"]) for split in ds}
    assert voices["test"] == {"kokoro:jm_kumo"}
    assert set().union(*(v for split, v in voices.items() if split != "test")) <= {"piper:joe", "hibari:heart"}
    assert {i["question_audio"]["voice"] for i in manifest} == set().union(*voices.values())

    # nothing changed: a re-run skips every stage
    run_cli("run", DEMO, "--workdir", work, "--limit", LIMIT, check_rc=0)
    assert [status for _, status in _log_statuses(work)[10:]] == ["skipped"] * 10

    # the review page, in a real browser: every item, the audio it plays exists, what Whisper heard, no error
    assert f"review page: {work / 'review' / 'index.html'}" in proc.stdout
    page = request.getfixturevalue("open_page")(work / "review" / "index.html")  # skips here without chromium
    assert sorted(listed(page)) == sorted(i["id"] for i in read_jsonl(work / "01-ingest.jsonl"))
    assert sorted(choose(page, "decision", "keep")) == sorted(item["id"] for item in manifest)
    choose(page, "decision", "")
    open_all(page)
    played = played_files(page)
    assert len(played) == 2 * len(manifest) and all(path.is_file() for path in played)
    assert page.locator("tr.detail section h4", has_text="Heard").count() == 2 * len(manifest)
    assert page.problems == []


def test_killed_mid_synthesis_resumes(tmp_path, run_cli):
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "soundmind_data", "run", str(DEMO), "--workdir", str(work), "--limit", LIMIT]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    audio = work / "audio"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (audio.is_dir() and any(audio.rglob("*.flac"))):
        assert proc.poll() is None, "the run ended before synthesis wrote anything"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its synthesis workers, mid-run
    proc.wait()
    done_before = len(list(audio.rglob("*.flac")))
    assert 0 < done_before
    assert not (work / "manifest.jsonl").exists()  # synthesis's manifest is written only when it finishes

    rerun = run_cli("run", DEMO, "--workdir", work, "--limit", LIMIT, check_rc=0)
    statuses = _log_statuses(work)
    before_kill = [("ingest", "ran"), ("audit", "ran"), ("curate", "ran"), ("split", "ran"), ("balance", "ran")]
    assert statuses[:5] == before_kill
    assert statuses[5:11] == [(stage, "skipped") for stage, _ in before_kill] + [("synthesize", "ran")]
    synthesised, cached = map(int, re.search(r"(\d+) files synthesised, (\d+) from cache", rerun.stderr).groups())
    assert synthesised + cached == 2 * len(read_jsonl(work / "05-balance.jsonl"))  # a question and an answer each
    assert cached >= done_before  # files finished before the kill were not synthesised again
    assert not list(work.rglob("*.tmp"))
