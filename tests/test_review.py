"""`soundmind-data review`: the page is opened in a real headless Chromium, its table read, filtered, sorted and
its items opened; the audio it plays must be files that exist, and the page must log no error."""

import hashlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import orjson
import pytest
from factories import item, read_jsonl, text_pipeline, write_jsonl, write_tone
from pages import choose, listed, open_all, played_files

from soundmind_data.checks.asr import wer_words, word_errors
from soundmind_data.review import CHUNK, ReviewSources, write_review

HOSTILE = '<img src=x onerror="window.pwned = 1">'


def _with_audio(corpus: Path, record: dict) -> dict:
    for name in ("question", "answer"):
        audio = write_tone(corpus / "audio" / record["split"] / record["id"] / f"{name}.flac")
        record[f"{name}_audio"] = {**audio, "path": f"audio/{record['split']}/{record['id']}/{name}.flac",
                                   "loudness_lufs": -23.0}
    return record


@pytest.fixture
def curated(tmp_path):
    """A corpus after curation: kept, relabelled and hostile items in the manifest; two dropped ones only in the
    validated manifest; one only in the decisions file. Item c was heard wrong."""
    corpus = tmp_path / "corpus"
    validated = [_with_audio(corpus, item(i, conclusion=f"Conclusion {i}")) for i in "abcde"]
    validated.append(_with_audio(corpus, item("g", conclusion=HOSTILE, answer=f"{HOSTILE}\n\nAnswer: entailed.")))
    validated[2]["question_audio"]["speech_text"] = validated[2]["question_text"].replace("Conclusion c", "Conclusion see")
    for record in validated:  # as `validate --asr` writes them: each text heard as written, but c's answer misheard
        record["failed_checks"] = []
        for name in ("question", "answer"):
            audio = record[f"{name}_audio"]
            said = wer_words(audio.get("speech_text") or record[f"{name}_text"])
            heard = wer_words(record[f"{name}_text"].replace("case", "cake") if record["id"] == "c" else
                              record[f"{name}_text"])
            wer, edits = word_errors(said, heard)
            audio.update(wer=round(wer, 4), wer_sample_s=0.5, transcript=" ".join(heard), heard_edits=edits)
    validated[4].update(failed_checks=["asr_wer"])
    validated[4]["answer_audio"]["wer"] = 0.9
    write_jsonl(corpus / "validated.jsonl", validated)
    kept = [dict(validated[0]), dict(validated[1], label=1, curation={"decision": "relabel", "reasons": ["gold_disagree"],
                                                                        "old_label": 0}),
            dict(validated[2]), dict(validated[5])]
    for record in kept:  # what curate writes: the measurements travel with the item, the transcripts from --validated
        for name in ("question", "answer"):
            record[f"{name}_audio"] = {k: v for k, v in record[f"{name}_audio"].items()
                                       if k not in ("transcript", "heard_edits", "speech_text")}
    write_jsonl(corpus / "curated.jsonl", kept)
    write_jsonl(corpus / "curated.decisions.jsonl", [
        {"id": "b", "split": "train", "line": 2, "decision": "relabel", "reasons": ["gold_disagree"], "old_label": 0},
        {"id": "d", "split": "train", "line": 4, "decision": "drop", "reasons": ["duplicate"]},
        {"id": "e", "split": "train", "line": 5, "decision": "drop", "reasons": ["asr_wer"]},
        {"id": "f", "split": "test", "line": 7, "decision": "drop", "reasons": ["cross_split_leak"]},
    ])
    return corpus


def _review(run_cli, corpus: Path, out: Path, *extra) -> str:
    proc = run_cli("review", corpus / "curated.jsonl", "--decisions", corpus / "curated.decisions.jsonl",
                   "--validated", corpus / "validated.jsonl", "--out", out, *extra, check_rc=0)
    return proc.stdout + proc.stderr


def test_every_item_is_listed_filtered_and_heard(curated, tmp_path, run_cli, open_page):
    out = tmp_path / "review"
    said = _review(run_cli, curated, out)
    assert f"review page: {out / 'index.html'}" in said
    assert "7 items (3 keep, 1 relabel, 3 drop); 12 audio files linked" in said
    page = open_page(out / "index.html")

    assert sorted(listed(page)) == list("abcdefg")  # kept and dropped alike, f known from its decision only
    assert sorted(choose(page, "decision", "drop")) == ["d", "e", "f"]
    assert choose(page, "decision", "relabel") == ["b"]
    assert sorted(choose(page, "decision", "keep")) == ["a", "c", "g"]
    choose(page, "decision", "")
    assert choose(page, "reason", "duplicate") == ["d"]
    choose(page, "reason", "")
    assert choose(page, "check", "asr_wer") == ["e"]  # the failed check as the validated manifest has it
    choose(page, "check", "")
    page.fill("#filters input[name=text]", "conclusion c")
    assert listed(page) == ["c"]
    page.fill("#filters input[name=text]", "")

    wer = page.locator("#items thead th", has_text="WER")
    wer.locator("button").click()  # ascending, then descending
    wer.locator("button").click()
    assert listed(page)[:2] == ["e", "c"]
    assert wer.get_attribute("aria-sort") == "descending"

    open_all(page)
    played = played_files(page)
    assert len(played) == 12 and all(path.is_file() for path in played)
    assert {path.resolve().parent.parent.parent for path in played} == {(curated / "audio").resolve()}
    question, answer = page.locator("tr.detail[data-for=c] section").all()
    assert answer.locator("del").all_inner_texts() == ["case"] and answer.locator("ins").all_inner_texts() == ["cake"]
    assert "Conclusion see" in question.inner_text()  # the speech text, where it differs from the written one
    assert question.locator("del").all_inner_texts() == ["see"] and question.locator("ins").all_inner_texts() == ["c"]
    assert page.locator("tr.detail[data-for=a] :is(del, ins)").count() == 0  # heard as said
    assert "label was not-entailed" in page.locator("tr.detail[data-for=b]").inner_text()
    assert "no text, no audio" in page.locator("tr.detail[data-for=f]").inner_text()
    hostile = page.locator("tr.detail[data-for=g]")
    assert HOSTILE in hostile.inner_text() and hostile.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    header = page.locator("header").inner_text()
    assert "Licence: not stated" in header and "gold_disagree" in header
    assert page.problems == []


def test_embed_copies_the_audio_into_the_page_folder(curated, tmp_path, run_cli, open_page):
    out = tmp_path / "review"
    assert "12 audio files copied" in _review(run_cli, curated, out, "--embed")
    page = open_page(out / "index.html")
    open_all(page)
    played = played_files(page)
    assert len(played) == 12
    for path in played:
        assert path.resolve().is_relative_to(out.resolve())
        assert path.read_bytes() == (curated / path.relative_to(out)).read_bytes()  # audio/ mirrors the corpus's
    assert page.problems == []


def test_a_pipeline_run_writes_the_review_of_its_final_corpus(tmp_path, run_cli, open_page):
    """Items dropped by curate (an answer against its label) and by balance (downsampled) are listed with the stage
    and reasons, from the manifests the pipeline wrote."""
    pipeline = text_pipeline(tmp_path, extra="""  - stage: curate
    with: {policy: %s}
""" % (Path(__file__).parent.parent / "pipelines/policies/no-llm.yaml"))
    source = tmp_path / "src.jsonl"
    lines = read_jsonl(source)
    lines[4].update(label=1, answer="Nothing forces it.\n\nAnswer: not entailed.")  # entailed: never downsampled
    write_jsonl(source, lines)
    work = tmp_path / "work"
    proc = run_cli("run", pipeline, "--workdir", work, check_rc=0)
    assert f"review page: {work / 'review' / 'index.html'}" in proc.stdout

    kept = {record["id"] for record in read_jsonl(work / "05-curate.jsonl")}
    balanced_away = {r["id"] for r in read_jsonl(work / "04-balance.jsonl")} ^ \
        {r["id"] for r in read_jsonl(work / "02-split.jsonl")}
    assert balanced_away and "i4" not in kept
    page = open_page(work / "review" / "index.html")
    assert sorted(listed(page)) == sorted(f"i{n}" for n in range(12))
    assert sorted(choose(page, "decision", "drop")) == sorted(balanced_away | {"i4"})
    assert choose(page, "reason", "answer_label_disagree") == ["i4"]
    assert sorted(choose(page, "reason", "balance")) == sorted(balanced_away)
    rows = page.locator("#items tbody tr.item td:nth-child(6)").all_inner_texts()
    assert set(rows) == {"balance"}
    assert page.problems == []

    page_file = work / "review" / "index.html"
    before = page_file.stat().st_mtime_ns
    run_cli("run", pipeline, "--workdir", work, check_rc=0)  # nothing changed: the page is not written again
    assert page_file.stat().st_mtime_ns == before
    again = run_cli("review", work, "--out", tmp_path / "again", check_rc=0)  # made again from what the run used
    assert "12 items (" in again.stderr and (tmp_path / "again" / "index.html").is_file()

    # a run without balance reviews what that run made, not the stale balance manifest still in the work dir
    run_cli("run", pipeline, "--workdir", work, "--skip", "balance", check_rc=0)
    page = open_page(page_file)
    assert sorted(listed(page)) == sorted(f"i{n}" for n in range(12))
    assert choose(page, "decision", "drop") == ["i4"]
    assert "balance" not in page.locator("#filters select[name=reason]").inner_text()

    # every stage skipped but the last one left out: the page is of this run's corpus all the same
    run_cli("run", pipeline, "--workdir", work, "--skip", "curate", check_rc=0)
    page = open_page(page_file)
    assert sorted(choose(page, "decision", "drop")) == sorted(balanced_away)

    # sources.json travels with the work dir: a path in it that leads out of the work dir is refused
    sources = json.loads((work / "review" / "sources.json").read_text())
    (tmp_path / "secret.png").write_bytes(b"not yours")
    (work / "review" / "sources.json").write_text(json.dumps({**sources, "plots": ["../secret.png"]}))
    proc = run_cli("review", work, "--out", tmp_path / "leak", check_rc=2)
    assert "'../secret.png' is not a path inside" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "leak").exists()

    # a folder of the user's where the page goes is left alone, and the corpus is still built
    shutil.rmtree(work / "review")
    (work / "review").mkdir()
    (work / "review" / "notes.txt").write_text("mine")
    proc = run_cli("run", pipeline, "--workdir", work, "--from", "curate", check_rc=0)
    assert "warning: no review page" in proc.stderr and "review page:" not in proc.stdout
    assert [p.name for p in (work / "review").iterdir()] == ["notes.txt"]


def test_ten_thousand_items_open_a_page_at_a_time(tmp_path, open_page):
    corpus = tmp_path / "big"
    corpus.mkdir()
    with open(corpus / "manifest.jsonl", "wb") as out:
        for n in range(10_000):
            out.write(orjson.dumps(item(f"i{n:05d}", split=("train", "dev", "test")[n % 3], label=n % 2,
                                        conclusion=f"Claim number {n}")) + b"\n")
    report = write_review(ReviewSources(corpus / "manifest.jsonl", plots=[]), tmp_path / "review")
    assert report.items == 10_000
    assert len(list((tmp_path / "review" / "data").glob("details-*.js"))) == -(-10_000 // CHUNK)
    page = open_page(tmp_path / "review" / "index.html")
    assert len(listed(page)) == 100  # one page of rows in the document, not 10,000
    assert page.locator("#count").inner_text() == "10000 of 10000 items"
    page.click("#next")
    assert listed(page)[0] == "i00100"
    assert len(choose(page, "split", "dev")) == 100
    assert page.locator("#count").inner_text() == "3333 of 10000 items"
    choose(page, "split", "")
    page.fill("#filters input[name=text]", "claim number 9999")
    assert listed(page) == ["i09999"]
    page.click("tr.item[data-id=i09999]")  # its texts come from the last detail file
    page.wait_for_selector("tr.detail .spoken")
    assert "Claim number 9999" in page.locator("tr.detail").inner_text()
    assert page.problems == []


def test_what_review_refuses(curated, tmp_path, run_cli):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("mine")
    proc = run_cli("review", curated / "curated.jsonl", "--out", mine, check_rc=2)
    assert "is not a review page written by soundmind-data" in proc.stderr and "Traceback" not in proc.stderr
    assert (mine / "todo.txt").read_text() == "mine" and len(list(mine.iterdir())) == 1
    proc = run_cli("review", curated / "curated.jsonl", "--out", tmp_path, check_rc=2)
    assert "is or holds the folder of the corpus being read" in proc.stderr

    good = {"id": "a", "split": "train", "line": 1, "decision": "drop", "reasons": ["duplicate"]}
    bad = write_jsonl(tmp_path / "bad.decisions.jsonl", [good, {**good, "decision": "x"}])
    proc = run_cli("review", curated / "curated.jsonl", "--decisions", bad, "--out", tmp_path / "r", check_rc=2)
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: decision:")
    assert not (tmp_path / "r").exists()
    broken = write_jsonl(tmp_path / "broken.jsonl", [read_jsonl(curated / "curated.jsonl")[0], {"id": "x", "split": "train"}])
    proc = run_cli("review", broken, "--out", tmp_path / "r", check_rc=1)  # a manifest line the item schema refuses
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {broken}:2: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()

    pipeline = tmp_path / "p.yaml"  # the run writes WORKDIR/review and WORKDIR/plots: no stage may take the names
    pipeline.write_text("stages:\n  - stage: ingest\n    with: {sources: [x.jsonl]}\n  - stage: publish\n    name: review\n")
    proc = run_cli("run", pipeline, "--workdir", tmp_path / "w", check_rc=2)
    assert "stages.1.name: 'review' is the name of the work dir's review folder" in proc.stderr

    out = tmp_path / "again"
    run_cli("review", curated / "curated.jsonl", "--out", out, check_rc=0)
    run_cli("review", curated / "curated.jsonl", "--out", out, check_rc=0)  # an earlier page is replaced whole
    assert [p.name for p in tmp_path.glob(".again*")] == []


def test_audio_outside_the_corpus_folder_is_not_linked(curated, tmp_path, run_cli):
    secret = tmp_path / "secret.flac"
    secret.write_bytes(b"not yours")
    target = curated / "audio" / "train" / "a" / "answer.flac"
    target.unlink()
    os.symlink(secret, target)
    out = tmp_path / "review"
    proc = run_cli("review", curated / "curated.jsonl", "--out", out, check_rc=0)
    assert "7 audio files linked, 1 missing" in proc.stderr
    details = (out / "data" / "details-00000.js").read_text()
    assert "secret" not in details
    first = orjson.loads(details[details.index("(") + 1:details.rindex(")")])["data"][0]
    assert first["answer"]["audio"] is None and first["question"]["audio"].endswith("question.flac")


def test_the_voice_column_and_filter(tmp_path, open_page):
    """Each item shows who speaks it (question's voice, then answer's where it differs) and the voice filter keeps
    that voice's items; audio from before entries named their voice shows its item's `tts` voice, or "unknown"."""
    corpus = tmp_path / "corpus"
    records = {item_id: _with_audio(corpus, item(item_id, conclusion=f"Conclusion {item_id}")) for item_id in "abcdeg"}
    for item_id, question, answer in (("a", "piper:joe", "piper:joe"), ("b", "piper:joe", "piper:joe"),
                                      ("c", "kokoro:jf_alpha", "kokoro:jf_alpha"), ("d", "kokoro:jf_alpha", "hibari:heart")):
        for kind, voice in (("question", question), ("answer", answer)):
            records[item_id][f"{kind}_audio"].update(voice=voice, engine=voice.split(":")[0])
    records["e"]["tts"] = {"backend": "piper", "voice": "en_US-joe-medium"}  # written before voices were recorded
    manifest = write_jsonl(corpus / "manifest.jsonl", records.values())
    decisions = write_jsonl(corpus / "decisions.jsonl", [  # an item known from its decision only: no audio, no voice
        {"id": "f", "split": "train", "line": 7, "decision": "drop", "reasons": ["duplicate"]}])
    write_review(ReviewSources(manifest, decisions=[decisions], plots=[]), tmp_path / "review")
    page = open_page(tmp_path / "review" / "index.html")

    options = page.locator("#filters select[name=voice] option").all_inner_texts()
    assert options == ["all", "hibari:heart", "kokoro:jf_alpha", "piper:en_US-joe-medium", "piper:joe", "unknown"]
    assert choose(page, "voice", "piper:joe") == ["a", "b"]
    assert choose(page, "voice", "kokoro:jf_alpha") == ["c", "d"]
    assert choose(page, "voice", "hibari:heart") == ["d"]  # the answer's voice counts too
    assert choose(page, "voice", "piper:en_US-joe-medium") == ["e"]
    assert choose(page, "voice", "unknown") == ["g"]
    assert sorted(choose(page, "voice", "")) == list("abcdefg")

    column = page.locator("#items thead th").all_inner_texts().index("Voice") + 1
    shown = dict(zip(listed(page), page.locator(f"#items tbody tr.item td:nth-child({column})").all_inner_texts()))
    assert shown == {"a": "piper:joe", "b": "piper:joe", "c": "kokoro:jf_alpha", "d": "kokoro:jf_alpha / hibari:heart",
                     "e": "piper:en_US-joe-medium", "f": "", "g": "unknown"}
    assert page.problems == []


def _page_data(out: Path, name: str) -> object:
    text = (out / "data" / name).read_text(encoding="utf-8")
    return orjson.loads(text[text.index("(") + 1:text.rindex(")")])["data"]


def test_embedded_names_that_collide_never_write_into_the_corpus(tmp_path, run_cli):
    """Issue 26.2: OUT/audio/ mirrors the corpus's audio/, so `x.flac` and `audio/x.flac` want the same name; the one
    set aside, in a numbered folder, must not land on a name another file already has (here `audio/2/x.flac`, once
    hard-linked to the corpus's own file): every embedded file is a new one, the corpus is left as it was."""
    corpus = tmp_path / "corpus"
    paths = {"p": ("audio/2/x.flac", "audio/x.flac"), "r": ("x.flac", "audio/1/x.flac"), "s": ("audio/3/x.flac", None)}
    records = []
    for item_id, (question, answer) in paths.items():
        record = item(item_id)
        for kind, path in (("question", question), ("answer", answer)):
            if path:
                data = f"audio of {path}".encode()
                (corpus / path).parent.mkdir(parents=True, exist_ok=True)
                (corpus / path).write_bytes(data)
                record[f"{kind}_audio"] = {"path": path, "sha256": hashlib.sha256(data).hexdigest(),
                                           "sample_rate": 16000, "duration_s": 1.0}
        records.append(record)
    write_jsonl(corpus / "manifest.jsonl", records)
    before = {path: path.read_bytes() for path in corpus.rglob("*.flac")}

    out = tmp_path / "review"
    assert "5 audio files copied" in run_cli("review", corpus, "--out", out, "--embed", check_rc=0).stderr
    assert {path: path.read_bytes() for path in corpus.rglob("*.flac")} == before
    played = {}
    for row, detail in zip(_page_data(out, "index.js")["rows"], _page_data(out, "details-00000.js")):
        for kind in ("question", "answer"):
            if detail[kind]["audio"]:
                played[(row["id"], kind)] = (out / unquote(detail[kind]["audio"])).read_bytes()
    assert played == {(item_id, kind): f"audio of {path}".encode() for item_id, pair in paths.items()
                      for kind, path in zip(("question", "answer"), pair) if path}
