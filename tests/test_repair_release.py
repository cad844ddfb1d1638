"""Repairing the published release (issue 25): `pipelines/repair-release.yaml` run on a release in the Hub's layout
that the test writes itself, with real speech and planted defects (a wrong label, a truncated recording, a
recording of another item's question), and `synthesize --keep-audio`, which speaks only what has no audio.

The release's recordings are flite's rms (which Whisper tiny.en hears well); our own voice, for the new answer and
the recordings spoken again, is flite's slt. The new answer comes from llm/canned_server.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import ROOT
from factories import item, read_jsonl, soundmind_line, write_jsonl, write_tone

from soundmind_data.core.errors import DataError
from soundmind_data.hub.card import read_card_metadata
from soundmind_data.engines.soundmind_layout import release_changes
from soundmind_data.llm.canned_server import CannedServer
from soundmind_data.tts.driver import synthesize_manifest
from soundmind_data.tts.synthesizer import SynthesisOptions

PIPELINE = ROOT / "pipelines" / "repair-release.yaml"
RELEASE_VOICE, OUR_VOICE = "rms", "flite:slt"
CARD = "---\nlicense: mit\n---\n# SoundMind Dataset\n"
WRONG, TRUNCATED, OTHERS = "dev-0002", "test-0001", "dev-0003"  # the planted defects
NEW_ANSWER = ("The basket holds red apples, but this fruit is a pear, so the premises say nothing about its colour."
              "\n\nAnswer: not entailed.")
# split -> (major premise, minor premise, conclusion, the release's label, the gold label)
RELEASE = {
    "train": [("Every student in the library must be quiet", "Maria is a student in the library",
               "Maria must be quiet", 1, 1)],
    "dev": [("Every doctor at the clinic works on Sunday", "David is a doctor at the clinic", "David works on Sunday",
             1, 1),
            ("All the apples in the basket are red", "This fruit is a pear from the basket", "This fruit is red",
             1, 0),  # WRONG: the release says entailed, and so does its answer
            ("Every teacher in the town walks to work", "Peter is a teacher in the town", "Peter walks to work",
             1, 1)],  # OTHERS: its question recording is dev-0001's
    "test": [("Every player on the team trains in the morning", "James is a player on the team",
              "James trains in the morning", 1, 1),  # TRUNCATED: its question recording stops halfway
             ("Some cooks in the kitchen are tired", "Lucy is a cook in the kitchen", "Lucy is tired", 0, 0)],
}


def answer_text(minor: str, label: int) -> str:
    """The release's answer: a few spoken sentences ending in its verdict (Whisper tiny.en does not hear flite's
    last word, so an entailed one names its verdict before, and what is heard last is still the verdict)."""
    said = f"Let me think it through. The minor premise says that {minor[0].lower()}{minor[1:]}."
    if label:
        return f"{said} The major premise covers everyone like that, so the conclusion is entailed.\n\n" \
               "Answer: entailed."
    return (f"{said} The major premise speaks only of some of them, so it does not decide the conclusion.\n\n"
            "Answer: not entailed.")


def write_release(root: Path) -> tuple[Path, Path]:
    """The release as `sources fetch soundmind --with-audio` lays it out, every recording spoken by flite; and the
    LogiQA 2.0 NLI gold file of its items. Returns (the dataset folder, the gold file)."""
    from soundmind_data.tts.base import load_voice_engine

    voice = load_voice_engine("flite", RELEASE_VOICE, "cpu")
    dataset = root / "dataset"
    gold = []
    for split, triplets in RELEASE.items():
        lines = []
        for n, (major, minor, conclusion, label, gold_label) in enumerate(triplets, start=1):
            hub_id = f"{n:04d}"
            record = soundmind_line(hub_id, major=major, minor=minor, conclusion=conclusion, label=label,
                                    answer=answer_text(minor, label))
            folder = dataset / split / hub_id
            folder.mkdir(parents=True)
            for name, text in (("question", record["user_content"]), (f"answer_{label}", record["answer"])):
                samples = np.concatenate(voice.synthesize([text]))
                soundfile.write(folder / f"{name}.wav", samples, voice.sample_rate, subtype="PCM_16")
            (folder / "annotation.json").write_text(json.dumps(record, indent=4), encoding="utf-8")
            lines.append({"id": hub_id, "question_file_name": f"{hub_id}/question.wav",
                          "answer_file_name": f"{hub_id}/answer_{label}.wav", "annotation_question":
                          record["user_content"], "annotation_answer": record["answer"], "label": label})
            gold.append({"label": "entailed" if gold_label else "not entailed", "major_premise": major,
                         "minor_premise": minor, "conclusion": conclusion})
        write_jsonl(dataset / split / "metadata.jsonl", lines)
    # the planted recordings: one stops halfway, one is another item's question
    truncated = dataset / "test" / "0001" / "question.wav"
    samples, rate = soundfile.read(truncated, dtype="int16")
    soundfile.write(truncated, samples[: len(samples) // 2], rate, subtype="PCM_16")
    (dataset / "dev" / "0003" / "question.wav").write_bytes((dataset / "dev" / "0001" / "question.wav").read_bytes())
    (root / "README.md").write_text(CARD, encoding="utf-8")  # the card at the repository's root, as on the Hub
    return dataset, write_jsonl(root / "logiqa-gold.txt", gold)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_release_is_repaired_and_the_card_says_what_changed(tmp_path, run_cli):
    import datasets

    dataset, gold = write_release(tmp_path / "data" / "soundmind")
    work = tmp_path / "repair"
    with CannedServer(lambda prompt, n: NEW_ANSWER) as server:
        proc = run_cli("run", PIPELINE, "--workdir", work,
                       "--set", f"ingest.sources=[{dataset}]", "--set", f"audit.gold=[{gold}]",
                       "--set", f"curate.gold=[{gold}]",
                       "--set", f"reason.endpoint={server.base_url}", "--set", "reason.model=canned",
                       "--set", "reason.samples=1", "--set", "reason.concurrency=1",
                       "--set", f"synthesize.voices=[{OUR_VOICE}]", "--set", "synthesize.workers=1",
                       "--set", "validate.workers=1", "--set", f"rerender.voices=[{OUR_VOICE}]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert server.total_requests == 1  # only the relabelled item's answer was written anew

    # every item of the release ingested with both its recordings attached
    ingested = {record["id"]: record for record in read_jsonl(work / "01-ingest.jsonl")}
    assert sorted(ingested) == sorted(f"{split}-{n:04d}" for split, rows in RELEASE.items()
                                      for n in range(1, len(rows) + 1))
    for item_id, record in ingested.items():
        split, hub_id = item_id.split("-")
        for key, name in (("question_audio", "question"), ("answer_audio", f"answer_{record['label']}")):
            assert record[key]["voice"] == "upstream", (item_id, key)
            assert sha256(work / record[key]["path"]) == sha256(dataset / split / hub_id / f"{name}.wav")

    # the judge flags exactly the truncated recording and the recording of another item
    validated = {record["id"]: record for record in read_jsonl(work / "06-validate.jsonl")}
    assert sorted(i for i, record in validated.items() if record["failed_checks"]) == sorted([TRUNCATED, OTHERS])
    report = json.loads((work / "06-validate.report.json").read_text(encoding="utf-8"))
    assert {(f["id"], f["field"].split(".")[0]) for f in report["failures"]} == {
        (TRUNCATED, "question_audio"), (OTHERS, "question_audio")}
    assert all("asr_per" in validated[item_id]["failed_checks"] for item_id in (TRUNCATED, OTHERS))

    # curate took the wrong label's answer away with its audio: the recording said the old verdict
    curated = {record["id"]: record for record in read_jsonl(work / "03-curate.jsonl")}
    assert curated[WRONG]["needs_answer"] is True
    assert "answer_text" not in curated[WRONG] and "answer_audio" not in curated[WRONG]

    final = {record["id"]: record for record in read_jsonl(work / "08-curate-audio.jsonl")}
    assert sorted(final) == sorted(ingested)  # every defect repaired: nothing dropped
    # the wrong label is the gold one now, with a new answer spoken by our voice; its question is the release's
    fixed = final[WRONG]
    assert (ingested[WRONG]["label"], fixed["label"]) == (1, 0)
    assert fixed["curation"]["old_label"] == 1 and fixed["answer_text"] == NEW_ANSWER
    assert fixed["answer_audio"]["voice"] == OUR_VOICE
    assert fixed["question_audio"] == validated[WRONG]["question_audio"]
    assert fixed["question_audio"]["voice"] == "upstream"
    # the failed recordings were spoken again by our voice, into files of their own, and passed
    for item_id in (TRUNCATED, OTHERS):
        record = final[item_id]
        assert [a["voice"] for a in record["rerender"]["attempts"]] == ["upstream", OUR_VOICE]
        for key, name in (("question_audio", "question"), ("answer_audio", "answer")):  # WAV, as the release's
            assert record[key]["voice"] == OUR_VOICE
            assert record[key]["path"] == f"audio/{record['split']}/{item_id}/{name}.attempt-1.wav"
            assert soundfile.info(work / record[key]["path"]).format == "WAV"
    # every recording that passed is still the release's file, byte for byte (rerender spoke both of a failed
    # item's recordings again: its question and answer keep one voice)
    for item_id, record in final.items():
        if item_id in (TRUNCATED, OTHERS):
            continue
        split, hub_id = item_id.split("-")
        assert record["question_audio"]["voice"] == "upstream"
        assert sha256(work / record["question_audio"]["path"]) == record["question_audio"]["sha256"] == \
            sha256(dataset / split / hub_id / "question.wav")
        if item_id != WRONG:
            assert sha256(work / record["answer_audio"]["path"]) == \
                sha256(dataset / split / hub_id / f"answer_{record['label']}.wav")

    # the card names each fix against the release
    folder = work / "soundmind-repaired"
    card = (folder / "README.md").read_text(encoding="utf-8")
    curation = card[card.index("## Curation"):card.index("## Audit")]
    assert "of its 6 items, 6 are published" in curation
    assert f"1 label corrected to the gold label: {WRONG} (entailed → not-entailed)" in curation
    assert f"1 answer written anew to reach the label (`reason`): {WRONG}" in curation
    assert f"1 whose text was written anew: {WRONG} (answer)" in curation
    assert f"4 that failed validation: {OTHERS} (question, answer; failed asr_per), {TRUNCATED} (question, answer; " \
           "failed speaking_rate, asr_per)" in curation
    assert "7 recordings published as the release made them" in curation
    assert read_card_metadata(card)["license"] == "cc-by-nc-sa-4.0"  # the stricter of MIT and LogiQA's

    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert {split: loaded[split].num_rows for split in loaded} == {"train": 1, "dev": 3, "test": 2}
    row = next(row for row in loaded["dev"] if row["id"] == WRONG)
    assert row["label"] == 0 and row["answer_text"] == NEW_ANSWER


# ------------------------------------------------------------------------------------- synthesize --keep-audio
def test_keep_audio_speaks_only_the_texts_without_audio(tmp_path, run_cli):
    corpus = tmp_path / "corpus"
    outside = write_tone(tmp_path / "elsewhere.flac")
    (corpus / "rec").mkdir(parents=True)
    (corpus / "rec" / "out.flac").symlink_to(tmp_path / "elsewhere.flac")
    recorded = {"voice": "upstream", "engine": "upstream"}
    question = {**write_tone(corpus / "rec" / "a-q.flac", 0.4), "path": "rec/a-q.flac", **recorded}
    both = ({**write_tone(corpus / "rec" / "c-q.flac", 0.6), "path": "rec/c-q.flac", **recorded},
            {**write_tone(corpus / "rec" / "c-a.flac", 0.7), "path": "rec/c-a.flac", **recorded})
    manifest = write_jsonl(corpus / "items.jsonl", [
        item("a", conclusion="Tom is a pet", question_audio=question),  # its answer has no audio: spoken
        item("b", conclusion="Tom is a cat", answer=None,  # its file is gone: spoken again
             question_audio={**question, "path": "rec/gone.flac"}),
        item("c", conclusion="Tom is furry", question_audio=both[0], answer_audio=both[1]),  # all kept
        item("d", conclusion="Tom is grey", answer=None, question_audio={**outside, "path": "rec/out.flac"}),
    ])
    before = {name: sha256(corpus / "rec" / name) for name in ("a-q.flac", "c-q.flac", "c-a.flac")}
    proc = run_cli("synthesize", manifest, "--out", corpus, "--voices", "espeak:en-us", "--keep-audio", check_rc=1)
    assert "2 files synthesised, 0 from cache, 3 kept as they were" in proc.stderr
    spoken = {record["id"]: record for record in read_jsonl(corpus / "manifest.jsonl")}
    assert sorted(spoken) == ["a", "b", "c"]
    assert spoken["a"]["question_audio"] == question
    assert spoken["a"]["answer_audio"]["path"] == "audio/train/a/answer.flac"
    assert spoken["a"]["answer_audio"]["voice"] == "espeak:en-us" and spoken["a"]["tts"]["backend"] == "espeak"
    assert spoken["b"]["question_audio"]["path"] == "audio/train/b/question.flac" and "answer_audio" not in spoken["b"]
    assert (spoken["c"]["question_audio"], spoken["c"]["answer_audio"]) == both and "tts" not in spoken["c"]
    for record in spoken.values():
        for key in ("question_audio", "answer_audio"):
            if key in record:
                assert sha256(corpus / record[key]["path"]) == record[key]["sha256"], (record["id"], key)
    assert {name: sha256(corpus / "rec" / name) for name in before} == before  # the kept files are untouched
    failures = read_jsonl(corpus / "failures.jsonl")
    assert [(f["line"], f["id"], f["field"]) for f in failures] == [(4, "d", "question_audio")]
    assert failures[0]["reason"].startswith("path: leads outside the manifest's folder")

    # without the option every text is spoken; with it, OUT must be the manifest's folder
    summary = synthesize_manifest(manifest, tmp_path / "all", SynthesisOptions(backend="espeak"))
    assert summary.kept == 0 and summary.written == 4
    other = tmp_path / "other"
    proc = run_cli("synthesize", manifest, "--out", other, "--voices", "espeak:en-us", "--keep-audio", check_rc=2)
    assert proc.stderr.strip() == f"error: --keep-audio: --out {other} must be the folder of {manifest}: the audio " \
                                  "kept is described relative to it"
    assert not other.exists()


# ----------------------------------------------------------------------------------- what the card says changed
def test_release_changes_account_for_every_item_of_the_release(tmp_path):
    def from_release(item_id: str, **fields) -> dict:
        split, hub_id = item_id.split("-")
        record = item(item_id, split=split, **fields)
        record["source"] |= {"format": "soundmind-hub", "split": split, "id": hub_id}
        return record

    upstream = {"path": "x.wav", "voice": "upstream", "engine": "upstream"}
    ours = {"path": "y.flac", "voice": "piper:joe", "engine": "piper"}
    published = write_jsonl(tmp_path / "published.jsonl", [
        from_release("dev-0001", label=0, curation={"decision": "regenerate", "old_label": 1,
                                                    "reasons": ["gold_disagree", "answer_label_disagree"]},
                     reason={"backend": "openai"}, question_audio=upstream, answer_audio=ours),
        from_release("dev-0002", question_audio=upstream, answer_audio=upstream),
        from_release("test-0001", question_audio=ours, answer_audio=ours,
                     rerender={"attempts": [{"voice": "upstream", "failed_checks": ["asr_per"]},
                                            {"voice": "piper:joe", "failed_checks": []}]}),
        from_release("test-0002", question_audio=upstream, answer_audio=ours),  # the release had no answer audio
        item("mine-1", question_audio=ours),  # not from the release: not counted
    ])
    ingested = write_jsonl(tmp_path / "ingested.jsonl", [
        from_release(item_id) for item_id in ("dev-0001", "dev-0002", "dev-0003", "dev-0004", "test-0001",
                                              "test-0002", "test-0003")] + [item("mine-1"), item("mine-2")])
    decisions = [write_jsonl(tmp_path / "1.decisions.jsonl", [
        {"id": "dev-0003", "split": "dev", "line": 3, "decision": "drop", "reasons": ["duplicate"],
         "kept_instead": "dev-0002"},
        {"id": "mine-2", "split": "train", "line": 9, "decision": "drop", "reasons": ["unspeakable"]}]),
        write_jsonl(tmp_path / "2.decisions.jsonl", [
            {"id": "dev-0004", "split": "dev", "line": 4, "decision": "drop", "reasons": ["asr_per"]}])]

    intro, changes = release_changes(published, decisions, ingested).paragraphs()
    assert intro == "**Against the release** (`soundmind`): of its 7 items, 4 are published, repaired as follows."
    assert changes.splitlines() == [
        "- 1 label corrected to the gold label: dev-0001 (entailed → not-entailed)",
        "- 1 answer written anew to reach the label (`reason`): dev-0001",
        "- 4 recordings synthesised again: 1 whose text was written anew: dev-0001 (answer); 2 that failed "
        "validation: test-0001 (question, answer; failed asr_per); 1 that the release did not have: test-0002 (answer)",
        "- 4 recordings published as the release made them",
        "- 1 item dropped by `curate` (duplicate): dev-0003",
        "- 1 item dropped by `curate` (asr_per): dev-0004",
        "- 1 item left out by another stage (no answer reached the gold label, or synthesis failed: see the run log): "
        "test-0003",
    ]
    # without the ingested manifest neither the release's size nor which drops were its items is known
    alone = release_changes(published, decisions)
    assert alone.paragraphs()[0] == "**Against the release** (`soundmind`): 4 are published, repaired as follows."
    assert "dropped" not in alone.paragraphs()[1] and "left out" not in alone.paragraphs()[1]
    assert release_changes(write_jsonl(tmp_path / "mine.jsonl", [item("mine-1")])) is None

    bad = write_jsonl(tmp_path / "bad.decisions.jsonl", [{"id": "dev-0003", "decision": "drop"}])
    with pytest.raises(DataError, match=rf"^{bad}:1: "):
        release_changes(published, [bad], ingested)
