"""Re-render before drop: a defective clip (another item's question) fails validate, is spoken again by another voice
of its split, judged again and passes; an item no voice can mend is left failing, with every attempt recorded, and
curate's decisions say so."""

import hashlib
import json
import shutil

from factories import item, read_jsonl, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.stages.rerender import allowed_extras, next_voices

VOICES = "piper:joe,hibari:heart"


def _corpus(tmp_path, run_cli):
    """Two items of one split and label, one per voice, then item a's question audio swapped for b's."""
    items = [item("a", major="All birds in the aviary are fed at noon", minor="The parrot lives in the aviary",
                  conclusion="The parrot is fed at noon", answer=None),
             item("b", major="Every violinist in the orchestra practises daily",
                  minor="Tom is a violinist in the orchestra", conclusion="Tom practises daily", answer=None)]
    corpus = tmp_path / "corpus"
    run_cli("synthesize", write_jsonl(tmp_path / "items.jsonl", items), "--out", corpus, "--voices", VOICES,
            check_rc=0)
    spoken = {record["id"]: record for record in read_jsonl(corpus / "manifest.jsonl")}
    swapped = corpus / "swapped.flac"  # a file of its own: the synthesised ones are links into the cache
    shutil.copyfile(corpus / spoken["b"]["question_audio"]["path"], swapped)
    spoken["a"]["question_audio"] = {**spoken["b"]["question_audio"], "path": swapped.name,
                                     "voice": spoken["a"]["question_audio"]["voice"],
                                     "sha256": hashlib.sha256(swapped.read_bytes()).hexdigest()}
    manifest = write_jsonl(corpus / "defective.jsonl", spoken.values())
    run_cli("validate", manifest, "--asr", "whisper", "--out", corpus / "validated.jsonl", check_rc=1)
    return corpus, spoken


def test_a_defective_clip_is_spoken_again_by_another_voice_and_then_passes(tmp_path, run_cli):
    corpus, spoken = _corpus(tmp_path, run_cli)
    validated = {record["id"]: record for record in read_jsonl(corpus / "validated.jsonl")}
    assert validated["a"]["failed_checks"] == ["asr_per"] and validated["b"]["failed_checks"] == []
    first_voice = spoken["a"]["question_audio"]["voice"]
    proc = run_cli("rerender", corpus / "validated.jsonl", "--out", corpus / "rerendered.jsonl", "--json",
                   tmp_path / "rerender.json", check_rc=0)
    assert "mended 1 after 1 attempt" in proc.stderr
    report = json.loads((tmp_path / "rerender.json").read_text())
    assert schemas.first_error("rerender-report", report) is None
    assert (report["failed"], report["mended"], report["still_failing"]) == (1, {"1": 1}, [])
    rerendered = {record["id"]: record for record in read_jsonl(corpus / "rerendered.jsonl")}
    mended = rerendered["a"]
    other_voice = next(voice for voice in VOICES.split(",") if voice != first_voice)
    assert mended["rerender"]["attempts"] == [{"voice": first_voice, "failed_checks": ["asr_per"]},
                                              {"voice": other_voice, "failed_checks": []}]
    audio = mended["question_audio"]
    assert audio["voice"] == other_voice and audio["path"] == "audio/train/a/question.attempt-1.flac"
    assert audio["per"] <= 0.15 and audio["sha256"] == hashlib.sha256((corpus / audio["path"]).read_bytes()).hexdigest()
    assert mended["failed_checks"] == [] and schemas.first_error("item", mended) is None
    assert rerendered["b"] == validated["b"]  # an item that passed is written as it was
    # the validated manifest's files are untouched, and the mended item now passes validate as it stands
    assert (corpus / spoken["a"]["question_audio"]["path"]).exists()
    run_cli("validate", corpus / "rerendered.jsonl", "--asr", "whisper", check_rc=0)
    run_cli("curate", corpus / "rerendered.jsonl", "--out", corpus / "curated.jsonl", check_rc=0)
    assert [record["id"] for record in read_jsonl(corpus / "curated.jsonl")] == ["a", "b"]  # kept (to get answers)
    # the review page says how many times the item was spoken, and what each voice failed
    run_cli("review", corpus / "rerendered.jsonl", "--out", tmp_path / "page", check_rc=0)
    details = (tmp_path / "page" / "data" / "details-00000.js").read_text(encoding="utf-8")
    assert f"spoken 2 times: {first_voice} failed asr_per; {other_voice} passed" in details


def test_an_item_no_voice_mends_keeps_its_failures_and_curate_lists_every_attempt(tmp_path, run_cli):
    corpus, spoken = _corpus(tmp_path, run_cli)
    strict = tmp_path / "strict.yaml"  # no speech is this slow: every attempt fails
    strict.write_text("min_speaking_rate_wpm: 400\nmax_speaking_rate_wpm: 500\n")
    proc = run_cli("rerender", corpus / "validated.jsonl", "--out", corpus / "rerendered.jsonl", "--attempts", "2",
                   "--config", strict, check_rc=1)
    assert "1 still failing" in proc.stderr
    failing = next(r for r in read_jsonl(corpus / "rerendered.jsonl") if r["id"] == "a")
    attempts = failing["rerender"]["attempts"]
    # the split's other voice, once: every engine here but hibari says a text the same way each time
    assert [attempt["voice"] for attempt in attempts][1:] == [v for v in VOICES.split(",") if v != attempts[0]["voice"]]
    assert all("speaking_rate" in attempt["failed_checks"] for attempt in attempts[1:])
    assert failing["question_audio"] == next(r for r in read_jsonl(corpus / "validated.jsonl")
                                             if r["id"] == "a")["question_audio"]  # its first audio, as judged
    run_cli("curate", corpus / "rerendered.jsonl", "--out", corpus / "curated.jsonl", check_rc=0)
    decision = next(d for d in read_jsonl(corpus / "curated.decisions.jsonl") if d["id"] == "a")
    assert decision["decision"] == "drop" and decision["rerender_attempts"] == attempts
    assert schemas.first_error("curate-decision", decision) is None


def test_next_voices_go_round_the_splits_other_voices_and_keep_the_test_split_apart():
    assert next_voices("b", ["a", "b", "c"], (), 3) == ["c", "a"]
    assert next_voices("a", ["a"], ("x",), 2) == ["x"]
    assert next_voices("a", ["a"], (), 2) == ["a"]  # no other voice: the same again, once
    voices = {"train": ["joe", "heart"], "test": ["kumo"]}
    assert allowed_extras("test", voices, ("joe", "alpha")) == ("alpha",)  # a training voice never speaks test
    assert allowed_extras("train", voices, ("kumo", "alpha")) == ("alpha",)  # nor a test-only voice train


def test_rerender_refuses_to_overwrite_its_input(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "validated.jsonl", [item("a")])
    proc = run_cli("rerender", manifest, "--out", manifest, check_rc=2)
    assert "is also the input manifest" in proc.stderr and "Traceback" not in proc.stderr
