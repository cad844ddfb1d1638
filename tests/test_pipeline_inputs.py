"""What makes the pipeline runner re-run a stage, and what it reports, with stand-ins for the commands: the files a
stage reads by default, the audio files its manifest points to, the failures it sets aside, the Hub-ready folder."""

import json
from pathlib import Path

import pytest
from factories import item, read_jsonl, write_jsonl

from soundmind_data.pipeline import load_pipeline, run_pipeline
from soundmind_data.stages import reason

AUDIO = {"sha256": "0" * 64, "sample_rate": 16000, "duration_s": 1.0}


class FakeCommands:
    """Stands in for `soundmind-data COMMAND`: each writes what the real command would, from a fixed corpus of two
    items; ingest rejects a line, reason resolves every item, synthesis sets an item aside, validate fails one."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, args: list[str]) -> int:
        command = args[0]
        self.ran.append(command)
        out = Path(args[args.index("--local-dir" if command == "publish" else "--out") + 1])
        if command == "ingest":
            write_jsonl(out, [item("a"), item("b", label=0)])
            write_jsonl(out.with_name("01-ingest.rejects.jsonl"), [{"file": "src.jsonl", "line": 3, "reason": "bad"}])
        elif command == "reason":
            out.write_bytes(Path(args[1]).read_bytes())
            write_jsonl(out.with_name("02-reason.unresolved.jsonl"), [])
        elif command == "synthesize":
            items = read_jsonl(args[1])
            for one in items:
                for key in ("question_audio", "answer_audio"):
                    path = f"audio/train/{one['id']}/{key}.flac"
                    (out / path).parent.mkdir(parents=True, exist_ok=True)
                    (out / path).write_bytes(b"fLaC" * 100)
                    one[key] = {"path": path, **AUDIO}
            write_jsonl(out / "manifest.jsonl", items)
            write_jsonl(out / "failures.jsonl", [{"line": 3, "field": "answer_text", "reason": "unspeakable"}])
        elif command == "validate":
            out.write_bytes(Path(args[1]).read_bytes())
            report = Path(args[args.index("--json") + 1])
            report.write_text(json.dumps({"items": 2, "failed_items": 1, "failures": []}))
        elif command == "publish":
            out.mkdir(exist_ok=True)
        return 0


@pytest.fixture
def audio_pipeline(tmp_path):
    source = write_jsonl(tmp_path / "src.jsonl", [])  # the fake ingest does not read it
    path = tmp_path / "p.yaml"
    path.write_text(f"""name: fake
stages:
  - stage: ingest
    with: {{sources: [{source}], format: soundmind, split: train}}
  - stage: reason
    with: {{backend: openai}}
  - stage: synthesize
  - stage: validate
  - stage: publish
    name: hub
""")
    return load_pipeline(path)


def _statuses(summary):
    return [run.status for run in summary.stages]


def test_the_default_prompt_template_is_an_input_of_reason(tmp_path, audio_pipeline, monkeypatch):
    template = tmp_path / "reason.txt"
    template.write_text("Is $conclusion entailed?\n")
    monkeypatch.setattr(reason, "default_template_path", lambda: template)
    commands, work = FakeCommands(), tmp_path / "work"
    assert _statuses(run_pipeline(audio_pipeline, work, invoke=commands, check=lambda args: None)) == ["ran"] * 5
    assert _statuses(run_pipeline(audio_pipeline, work, invoke=commands, check=lambda args: None)) == ["skipped"] * 5

    template.write_text("Think aloud, then say whether $conclusion is entailed.\n")
    summary = run_pipeline(audio_pipeline, work, invoke=commands, check=lambda args: None)
    assert _statuses(summary) == ["skipped", "ran", "skipped", "skipped", "skipped"]  # same manifest out


@pytest.mark.parametrize("change", ["delete", "truncate"])
def test_missing_or_changed_audio_reruns_synthesis(tmp_path, audio_pipeline, change):
    commands, work = FakeCommands(), tmp_path / "work"
    run_pipeline(audio_pipeline, work, invoke=commands, check=lambda args: None)
    answer = work / "audio" / "train" / "b" / "answer_audio.flac"
    if change == "delete":
        answer.unlink()
    else:
        answer.write_bytes(b"fLaC")
    summary = run_pipeline(audio_pipeline, work, invoke=commands, check=lambda args: None)
    assert _statuses(summary) == ["skipped", "skipped", "ran", "skipped", "skipped"]  # the audio is back as it was
    assert answer.stat().st_size == 400


def test_failures_and_the_hub_folder_are_reported(tmp_path, audio_pipeline):
    work = tmp_path / "work"
    for _ in range(2):  # ran, then skipped: the counts are the same
        summary = run_pipeline(audio_pipeline, work, invoke=FakeCommands(), check=lambda args: None)
        failures = {run.stage: (run.failures, run.failures_file) for run in summary.stages}
        assert failures == {
            "ingest": (1, str(work / "01-ingest.rejects.jsonl")),
            "reason": (0, str(work / "02-reason.unresolved.jsonl")),
            "synthesize": (1, str(work / "failures.jsonl")),
            "validate": (1, str(work / "04-validate.report.json")),
            "hub": (None, None),
        }
        assert summary.hub_folder == work / "hub"
    assert [entry["failures"] for entry in read_jsonl(work / "run-log.jsonl")] == [1, 0, 1, 1, None] * 2
