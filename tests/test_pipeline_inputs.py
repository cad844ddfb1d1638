"""What makes the pipeline runner re-run a stage, and what it reports, with stand-ins for the stages (the runner
called in-process, no CLI involved): the files a stage reads by default, the audio files its manifest points to,
the failures it sets aside, the Hub-ready folder."""

import dataclasses
from pathlib import Path

import pytest
from factories import item, read_jsonl, text_pipeline, write_jsonl

from soundmind_data.core.errors import UsageError
from soundmind_data.core.stage import Progress, Stage, StageReport
from soundmind_data.pipeline import load_pipeline, run_pipeline
from soundmind_data.stages import declaration, reason

AUDIO = {"sha256": "0" * 64, "sample_rate": 16000, "duration_s": 1.0}


class FakeStages:
    """Stands in for the stages: each is the real declaration (options, outputs, default files) with an entry function
    that writes what the real one would, from a fixed corpus of two items; ingest rejects a line, reason resolves
    every item, synthesis sets an item aside, validate fails one (each going on, as with continue_on_failure)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, name: str) -> Stage:
        def run(manifest, out, options, *, progress=None):
            self.ran.append(name)
            return getattr(self, name)(manifest, out)

        # No preflight either: the stand-ins need no backend (the reason stage here names no model or endpoint).
        return dataclasses.replace(declaration(name), run=run, preflight=lambda options: [])

    def ingest(self, manifest, out):
        write_jsonl(out, [item("a"), item("b", label=0)])
        rejects = write_jsonl(out.with_name("01-ingest.rejects.jsonl"),
                              [{"file": "src.jsonl", "line": 3, "reason": "bad"}])
        return Outcome(True, 1, rejects)

    def reason(self, manifest, out):
        out.write_bytes(manifest.read_bytes())
        return Outcome(True, 0, write_jsonl(out.with_name("02-reason.unresolved.jsonl"), []))

    def synthesize(self, manifest, out):
        items = read_jsonl(manifest)
        for one in items:
            for key in ("question_audio", "answer_audio"):
                path = f"audio/train/{one['id']}/{key}.flac"
                (out / path).parent.mkdir(parents=True, exist_ok=True)
                (out / path).write_bytes(b"fLaC" * 100)
                one[key] = {"path": path, **AUDIO}
        write_jsonl(out / "manifest.jsonl", items)
        failures = write_jsonl(out / "failures.jsonl", [{"line": 3, "field": "answer_text", "reason": "unspeakable"}])
        return Outcome(True, 1, failures)

    def validate(self, manifest, out):
        out.write_bytes(manifest.read_bytes())
        return Outcome(True, 1, None, {"items": 2, "failed_items": 1, "failures": []})  # listed in the report

    def publish(self, manifest, out):
        out.mkdir(exist_ok=True)
        return Outcome(True, None, None)


@dataclasses.dataclass
class Outcome(StageReport):
    passed: bool
    count: int | None
    listing: Path | None
    as_json: dict | None = None  # a stage that writes a report: what the runner writes to it

    ok = property(lambda self: self.passed)
    set_aside = property(lambda self: self.count)
    set_aside_file = property(lambda self: self.listing or (self.report_file and Path(self.report_file)))

    def to_json(self):
        return self.as_json


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
    stages, work = FakeStages(), tmp_path / "work"
    assert _statuses(run_pipeline(audio_pipeline, work, stages=stages)) == ["ran"] * 5
    assert _statuses(run_pipeline(audio_pipeline, work, stages=stages)) == ["skipped"] * 5

    template.write_text("Think aloud, then say whether $conclusion is entailed.\n")
    summary = run_pipeline(audio_pipeline, work, stages=stages)
    assert _statuses(summary) == ["skipped", "ran", "skipped", "skipped", "skipped"]  # same manifest out


@pytest.mark.parametrize("change", ["delete", "truncate"])
def test_missing_or_changed_audio_reruns_synthesis(tmp_path, audio_pipeline, change):
    stages, work = FakeStages(), tmp_path / "work"
    run_pipeline(audio_pipeline, work, stages=stages)
    answer = work / "audio" / "train" / "b" / "answer_audio.flac"
    if change == "delete":
        answer.unlink()
    else:
        answer.write_bytes(b"fLaC")
    summary = run_pipeline(audio_pipeline, work, stages=stages)
    assert _statuses(summary) == ["skipped", "skipped", "ran", "skipped", "skipped"]  # the audio is back as it was
    assert answer.stat().st_size == 400


def test_failures_and_the_hub_folder_are_reported(tmp_path, audio_pipeline):
    work = tmp_path / "work"
    for _ in range(2):  # ran, then skipped: the counts are the same
        summary = run_pipeline(audio_pipeline, work, stages=FakeStages())
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


def test_the_real_text_stages_run_in_process_and_report_to_the_caller(tmp_path):
    """The runner calls the stages' entry functions itself: no command line, no argv, and what each stage reports
    reaches the caller as the report object."""
    pipeline = load_pipeline(text_pipeline(tmp_path))
    events, reports = [], {}

    class Told(Progress):
        def stage_started(self, step, status):
            events.append((step.name, status))

        def stage_finished(self, step, report, error):
            assert error is None
            reports[step.name] = report

    summary = run_pipeline(pipeline, tmp_path / "work", progress=Told())
    assert events == [("ingest", "running"), ("split", "running"), ("audit", "running"), ("balance", "running")]
    assert reports["ingest"].items == 12 and reports["audit"].items == 12
    balanced = read_jsonl(tmp_path / "work" / "04-balance.jsonl")
    assert summary.final_manifest == tmp_path / "work" / "04-balance.jsonl"
    assert reports["balance"].after.total() == len(balanced) == summary.stages[-1].items_out
    for split in reports["balance"].after:  # downsampled to 1:1 in every split
        assert reports["balance"].after[split][0] == reports["balance"].after[split][1]
    assert (tmp_path / "work" / "03-audit.report.json").is_file()
    assert summary.stages[0].command.startswith("soundmind-data ingest ")

    events.clear()
    again = run_pipeline(pipeline, tmp_path / "work", progress=Told())
    assert events == [(name, "skipped") for name in ("ingest", "split", "audit", "balance")]
    assert [run.status for run in again.stages] == ["skipped"] * 4


def test_a_report_asked_of_a_stage_that_writes_none_is_refused_before_it_runs(tmp_path):
    """`Stage.call` writes a stage's JSON report; asked one of a stage without a report, it refuses before the
    stage writes anything."""
    source = write_jsonl(tmp_path / "src.jsonl", [item("a")])
    options = declaration("ingest").options(sources=(source,), format="soundmind", split="train")
    with pytest.raises(UsageError, match="ingest writes no JSON report"):
        declaration("ingest").call(None, tmp_path / "out.jsonl", options, report=tmp_path / "r.json")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src.jsonl"]
