"""The SoundMind release's layout on the Hub, in and out (issue 25): `ingest --format soundmind-hub` takes a release
with its recordings (splits from its folders, ids unique across splits, audio attached inside the corpus folder),
`ingest --format soundmind` reads the indented annotation.json files, and `export --format soundmind-hub` writes the
layout back so that export -> ingest -> export gives the same bytes and `datasets`' audiofolder reads it.

Every release here is written by the test: WAV tones as the release's recordings, and flite speech where Whisper
must hear them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
from factories import item, read_jsonl, soundmind_line, write_jsonl

from soundmind_data.core import schemas
from soundmind_data.engines.importers import ingest
from soundmind_data.engines.soundmind_layout import ExportIds
from soundmind_data.stages.export import export

RATE = 16000
HUB_FIELDS = ["id", "question_file_name", "answer_file_name", "annotation_question", "annotation_answer", "label"]
CARD = "---\nlicense: mit\ntask_categories:\n- text-classification\n---\n# SoundMind Dataset\n"


def tone(path: Path, seconds: float, freq: float, fmt: str = "WAV") -> bytes:
    """A tone with a little noise as 16-bit audio at `path`; returns the file's bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(RATE * seconds)) / RATE
    noise = 0.01 * np.random.default_rng(int(freq)).standard_normal(len(t))
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype("float32"), RATE, format=fmt,
                    subtype="PCM_16")
    return path.read_bytes()


def hub_line(hub_id: str, record: dict, *, answered: bool = True) -> dict:
    label = record["label"]
    return {"id": hub_id, "question_file_name": f"{hub_id}/question.wav",
            "answer_file_name": f"{hub_id}/answer_{label}.wav" if answered else None,
            "annotation_question": record["user_content"], "annotation_answer": record["answer"], "label": label}


def write_release(root: Path, splits: dict[str, int], *, card: str | None = CARD) -> Path:
    """A SoundMind release as the Hub lays it out: per split a metadata.jsonl and a folder per item (indented
    annotation.json, question.wav, answer_<label>.wav), ids restarting at 0001 in every split."""
    for number, (split, count) in enumerate(splits.items()):
        lines = []
        for n in range(1, count + 1):
            hub_id, label = f"{n:04d}", (n + number) % 2
            record = soundmind_line(hub_id, conclusion=f"The {split} claim {n} holds", label=label)
            folder = root / split / hub_id
            tone(folder / "question.wav", 0.3 + 0.05 * n, 200 + 30 * n + number)
            tone(folder / f"answer_{label}.wav", 0.25, 600 + 20 * n + number)
            (folder / "annotation.json").write_text(json.dumps(record, indent=4), encoding="utf-8")
            lines.append(hub_line(hub_id, record))
        write_jsonl(root / split / "metadata.jsonl", lines)
    if card is not None:
        (root / "README.md").write_text(card, encoding="utf-8")
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


# ------------------------------------------------------------------------------------------------------ ingest
def test_a_release_outside_the_corpus_is_linked_in_with_its_splits_and_unique_ids(tmp_path, run_cli):
    release = write_release(tmp_path / "download" / "dataset", {"train": 2, "dev": 2, "test": 1})
    before = tree(release)
    out = tmp_path / "corpus" / "items.jsonl"
    proc = run_cli("ingest", release, "--format", "soundmind-hub", "--out", out, check_rc=0)
    assert "5 items (2 not-entailed, 3 entailed)" in proc.stderr
    assert f"0 referenced in place, 10 linked or copied into {tmp_path / 'corpus' / 'items.audio'}" in proc.stderr
    items = read_jsonl(out)
    assert [i["id"] for i in items] == ["train-0001", "train-0002", "dev-0001", "dev-0002", "test-0001"]
    metadata = {split: read_jsonl(release / split / "metadata.jsonl") for split in ("train", "dev", "test")}
    for record in items:
        split, hub_id = record["id"].split("-", 1)  # the documented reverse mapping
        line = metadata[split][int(hub_id) - 1]
        assert schemas.first_error("item", record) is None
        assert record["split"] == split and record["label"] == line["label"]
        assert record["question_text"] == line["annotation_question"]
        assert record["answer_text"] == line["annotation_answer"]
        assert record["conclusion"] == f"The {split} claim {int(hub_id)} holds"
        assert record["source"] == {"dataset": "soundmind", "file": str(release / split / "metadata.jsonl"),
                                    "line": int(hub_id), "format": "soundmind-hub", "split": split, "id": hub_id,
                                    "license": "mit"}
        for key, name in (("question_audio", "question_file_name"), ("answer_audio", "answer_file_name")):
            audio, original = record[key], release / split / line[name]
            assert audio["path"] == f"items.audio/{split}/{line[name]}"
            placed = out.parent / audio["path"]
            assert os.path.samefile(placed, original)  # hard-linked: same file system here
            data = placed.read_bytes()
            assert audio["sha256"] == hashlib.sha256(data).hexdigest()
            info = soundfile.info(placed)
            assert (audio["sample_rate"], audio["channels"]) == (RATE, 1)
            assert audio["duration_s"] == pytest.approx(info.frames / RATE)
            assert (audio["voice"], audio["engine"]) == ("upstream", "upstream")
    assert tree(release) == before  # the release is read, never written

    # a second run over the same release links the same files again and gives the same manifest
    first = out.read_bytes()
    run_cli("ingest", release, "--format", "soundmind-hub", "--out", out, check_rc=0)
    assert out.read_bytes() == first


def test_the_licence_comes_from_the_card_at_the_hub_repositorys_root_too(tmp_path):
    """On the Hub (and in what `sources fetch soundmind` writes) the card sits one folder above `dataset/`."""
    download = tmp_path / "download"
    release = write_release(download / "dataset", {"dev": 1}, card=None)
    (download / "README.md").write_text(CARD, encoding="utf-8")
    ingest([release], fmt="soundmind-hub", out=tmp_path / "corpus" / "items.jsonl")
    assert read_jsonl(tmp_path / "corpus" / "items.jsonl")[0]["source"]["license"] == "mit"


def test_a_release_inside_the_corpus_is_referenced_in_place_and_one_split_takes_its_folders_name(tmp_path):
    release = write_release(tmp_path / "corpus" / "dataset", {"dev": 2, "test": 1}, card=None)
    out = tmp_path / "corpus" / "items.jsonl"
    result = ingest([release], fmt="soundmind-hub", out=out)
    assert (result.items, result.audio_in_place, result.audio_placed) == (3, 6, 0)
    items = read_jsonl(out)
    assert items[0]["question_audio"]["path"] == "dataset/dev/0001/question.wav"
    assert items[2]["answer_audio"]["path"] == "dataset/test/0001/answer_0.wav"
    assert "license" not in items[0]["source"]  # no card, no licence claimed
    assert not (tmp_path / "corpus" / "items.audio").exists()

    one = ingest([release / "test" / "metadata.jsonl"], fmt="soundmind-hub", out=tmp_path / "corpus" / "t.jsonl")
    assert one.items == 1 and read_jsonl(tmp_path / "corpus" / "t.jsonl")[0]["id"] == "test-0001"
    renamed = ingest([release / "dev"], fmt="soundmind-hub", split="validation", out=tmp_path / "corpus" / "v.jsonl")
    assert renamed.items == 2
    # the item's split is the one given; its source keeps the release's folder, where its id is the release's
    assert [(i["id"], i["split"], i["source"]["split"]) for i in read_jsonl(tmp_path / "corpus" / "v.jsonl")] == [
        ("validation-0001", "validation", "dev"), ("validation-0002", "validation", "dev")]


def test_bad_release_lines_are_rejected_by_file_line_and_field_and_nothing_outside_is_read(tmp_path):
    release = write_release(tmp_path / "download" / "dataset", {"dev": 2})
    dev = release / "dev"
    secret = tmp_path / "download" / "secret.wav"
    secret_bytes = tone(secret, 0.2, 900)
    good = soundmind_line("x", label=1)
    (dev / "0003").mkdir()
    (dev / "0003" / "question.wav").symlink_to(secret)
    (dev / "0004").mkdir()
    (dev / "0004" / "question.wav").write_bytes(b"RIFF not audio at all")
    files = {"question_file_name": "0001/question.wav", "answer_file_name": "0001/answer_1.wav"}  # they exist

    def line(hub_id: str, **changes) -> dict:
        return hub_line(hub_id, good) | files | changes

    bad = [
        (hub_line("0009", good), "question_file_name: no such file '0009/question.wav'"),
        (line("0010", question_file_name="../../secret.wav"), "question_file_name: '../../secret.wav' leads outside"),
        (line("0011", question_file_name=str(secret)), f"question_file_name: '{secret}' is absolute"),
        (line("0003", question_file_name="0003/question.wav"),
         "question_file_name: '0003/question.wav' leads outside"),  # a symlink out of the split folder
        (line("0004", question_file_name="0004/question.wav"),
         "question_file_name: question.wav does not decode as audio"),
        (line("0012", answer_file_name="../../secret.wav"), "answer_file_name: '../../secret.wav' leads outside"),
        (line("0016", annotation_answer=None),
         "answer_file_name: names the answer's audio, but annotation_answer is empty"),
        (line("0013", label="entailed"), "label: expected 0 or 1"),
        (line("0014", annotation_question="Is it?"), "annotation_question: does not follow"),
        ({k: v for k, v in line("0015").items() if k != "question_file_name"}, "question_file_name: missing"),
        (line("../x"), "id: unsafe id"),
        # a second dev-0001, pointing at 0002's question: it must not replace the first one's placed file
        (line("0001", question_file_name="0002/question.wav"), "id: duplicate id 'dev-0001'"),
    ]
    with open(dev / "metadata.jsonl", "a", encoding="utf-8") as metadata:
        for record, _ in bad:
            metadata.write(json.dumps(record) + "\n")
    out = tmp_path / "corpus" / "items.jsonl"
    result = ingest([release], fmt="soundmind-hub", out=out)
    assert result.items == 2 and result.rejected == len(bad)
    rejects = read_jsonl(out.with_name("items.rejects.jsonl"))
    for reject, (_, reason), number in zip(rejects, bad, range(3, 100)):
        assert reject["file"] == str(dev / "metadata.jsonl") and reject["line"] == number, reject
        assert reject["reason"].startswith(reason), reject
        assert schemas.first_error("reject", reject) is None
    placed = {path.read_bytes() for path in (tmp_path / "corpus").rglob("*.wav")}
    assert secret_bytes not in placed and len(placed) == 4  # the two good items' files, nothing else
    first = read_jsonl(out)[0]["question_audio"]
    assert hashlib.sha256((out.parent / first["path"]).read_bytes()).hexdigest() == first["sha256"]


def test_usage_errors_name_the_problem_in_one_line(tmp_path, run_cli):
    release = write_release(tmp_path / "dataset", {"dev": 1, "test": 1})
    (tmp_path / "empty").mkdir()
    for args, message in [
        ((release, "--format", "soundmind-hub", "--split", "dev"),
         f"--split dev: {release} holds the splits dev, test, named by their folders"),
        ((tmp_path / "empty", "--format", "soundmind-hub"), f"{tmp_path / 'empty'}: holds no split folder"),
        ((release / "dev" / "0001" / "annotation.json", "--format", "soundmind"),
         "--split: required with --format soundmind"),
    ]:
        proc = run_cli("ingest", *args, "--out", tmp_path / "x.jsonl", check_rc=2)
        assert proc.stderr.strip() == f"error: {message}" or proc.stderr.strip().startswith(f"error: {message}"), \
            proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.jsonl").exists()


# ------------------------------------------------------------------------------------------- indented JSON files
def test_annotation_json_files_are_read_one_object_each(tmp_path):
    release = write_release(tmp_path / "dataset", {"dev": 2}, card=None)
    files = [release / "dev" / hub_id / "annotation.json" for hub_id in ("0001", "0002")]
    windows = tmp_path / "windows.json"  # a byte-order mark and CRLF, as Windows editors write them
    windows.write_bytes(b"\xef\xbb\xbf\r\n" + json.dumps(soundmind_line("0003"), indent=2).replace("\n", "\r\n").encode())
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "id": "0004",\n  "label": ,\n}\n')
    listed = tmp_path / "listed.json"
    listed.write_text(json.dumps([soundmind_line("0005")], indent=2))
    result = ingest([*files, windows, broken, listed], fmt="soundmind", split="dev", out=tmp_path / "items.jsonl")
    items = read_jsonl(tmp_path / "items.jsonl")
    assert [(i["id"], i["source"]["line"]) for i in items] == [("0001", 1), ("0002", 1), ("0003", 2)]
    assert items[0]["question_text"] == json.loads(files[0].read_text())["user_content"]
    assert result.rejected == 2
    assert read_jsonl(tmp_path / "items.rejects.jsonl") == [
        {"file": str(broken), "line": 3, "reason": "malformed JSON: unexpected character, expected a JSON value "
                                                   "at column 12"},
        {"file": str(listed), "line": 1, "reason": "expected a JSON object, got list"}]


# ------------------------------------------------------------------------------------------------------ export
def corpus_manifest(root: Path) -> Path:
    """A synthesised corpus: FLAC questions, WAV answers (16 kHz), ids of our own, three splits, one item whose
    answer has no audio."""
    records = []
    for n, split in enumerate(["train", "train", "train", "dev", "dev", "test", "test"]):
        label = n % 2
        record = item(f"{split}-{n:03d}", split=split, label=label, conclusion=f"Claim {n} holds")
        record["question_audio"] = {"path": f"audio/{n}-q.flac", **_described(root / "audio" / f"{n}-q.flac",
                                                                              0.3 + 0.05 * n, 220 + 25 * n, "FLAC")}
        if n != 4:
            record["answer_audio"] = {"path": f"audio/{n}-a.wav", **_described(root / "audio" / f"{n}-a.wav", 0.25,
                                                                               700 + n, "WAV")}
        records.append(record)
    return write_jsonl(root / "manifest.jsonl", records)


def _described(path: Path, seconds: float, freq: float, fmt: str) -> dict:
    data = tone(path, seconds, freq, fmt)
    return {"sha256": hashlib.sha256(data).hexdigest(), "sample_rate": RATE, "channels": 1,
            "duration_s": int(RATE * seconds) / RATE, "voice": "piper:joe", "engine": "piper"}


def test_export_ingest_export_gives_the_same_bytes_in_the_release_layout(tmp_path, run_cli):
    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    first = tmp_path / "first"
    run_cli("export", manifest, "--format", "soundmind-hub", "--out", first, check_rc=0)
    by_split = {"train": records[:3], "dev": records[3:5], "test": records[5:]}
    for split, originals in by_split.items():
        lines = read_jsonl(first / split / "metadata.jsonl")
        assert [line["id"] for line in lines] == [f"{n:04d}" for n in range(1, len(originals) + 1)]
        for line, original in zip(lines, originals):
            assert list(line) == HUB_FIELDS and isinstance(line["label"], int)
            hub_id, label = line["id"], original["label"]
            assert schemas.first_error("soundmind-metadata", line) is None
            assert (line["label"], line["annotation_question"], line["annotation_answer"]) == (
                label, original["question_text"], original["answer_text"])
            assert line["question_file_name"] == f"{hub_id}/question.wav"
            expected_answer = None if "answer_audio" not in original else f"{hub_id}/answer_{label}.wav"
            assert line["answer_file_name"] == expected_answer
            annotation = (first / split / hub_id / "annotation.json").read_text(encoding="utf-8")
            assert annotation.startswith("{\n  ")  # indented, as the release has it
            assert json.loads(annotation) == {"id": hub_id, "user_content": original["question_text"],
                                              "answer": original["answer_text"], "label": label}
            question = first / split / line["question_file_name"]
            assert soundfile.info(question).format == "WAV"
            np.testing.assert_array_equal(soundfile.read(question, dtype="int16")[0],
                                          soundfile.read(manifest.parent / original["question_audio"]["path"],
                                                         dtype="int16")[0])
            if expected_answer:  # a WAV goes out as it is
                assert (first / split / expected_answer).read_bytes() == \
                    (manifest.parent / original["answer_audio"]["path"]).read_bytes()
        assert sorted(p.name for p in (first / split).iterdir()) == sorted(["metadata.jsonl", *(
            line["id"] for line in lines)])

    corpus = tmp_path / "corpus" / "items.jsonl"
    ingested = ingest([first], fmt="soundmind-hub", out=corpus)
    assert (ingested.items, ingested.rejected) == (7, 0)
    back = read_jsonl(corpus)
    assert [i["id"] for i in back] == ["train-0001", "train-0002", "train-0003", "dev-0001", "dev-0002",
                                       "test-0001", "test-0002"]
    for original, record in zip(records, back):
        for key in ("split", "label", "major_premise", "minor_premise", "conclusion", "question_text", "answer_text"):
            assert record[key] == original[key], key
        assert ("answer_audio" in record) == ("answer_audio" in original)

    second = tmp_path / "second"
    run_cli("export", corpus, "--format", "soundmind-hub", "--out", second, check_rc=0)
    assert tree(second) == tree(first)  # every file byte for byte: metadata, annotations, audio, the marker

    # the annotation.json files read back with --format soundmind: the same texts and labels
    annotations = sorted((first / "dev").glob("*/annotation.json"))
    ingest(annotations, fmt="soundmind", split="dev", out=tmp_path / "annotations.jsonl")
    assert [(i["id"], i["question_text"], i["label"]) for i in read_jsonl(tmp_path / "annotations.jsonl")] == [
        (f"{n:04d}", r["question_text"], r["label"]) for n, r in enumerate(records[3:5], start=1)]


def test_audiofolder_loads_the_export_and_flac_is_on_request(tmp_path):
    import datasets

    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    out = tmp_path / "hub"
    export(manifest, fmt="soundmind-folders", out=out)  # the old name: an alias
    loaded = datasets.load_dataset("audiofolder", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    assert {split: len(rows) for split, rows in loaded.items()} == {"train": 3, "validation": 2, "test": 2}
    assert loaded["train"].column_names == ["id", "question", "answer", "annotation_question", "annotation_answer",
                                            "label"]
    dev = loaded["validation"]
    assert dev[0]["annotation_question"] == records[3]["question_text"] and dev[0]["label"] == records[3]["label"]
    assert dev[1]["answer"] is None  # the item whose answer has no audio
    decoded = dev[0]["question"].get_all_samples()
    expected = soundfile.read(manifest.parent / records[3]["question_audio"]["path"], dtype="float32")[0]
    assert decoded.sample_rate == RATE
    np.testing.assert_allclose(decoded.data.numpy()[0], expected, atol=1e-4)

    flac = tmp_path / "flac"
    export(manifest, fmt="soundmind-hub", out=flac, audio_format="flac")
    line = read_jsonl(flac / "test" / "metadata.jsonl")[0]
    assert (line["question_file_name"], line["answer_file_name"]) == ("0001/question.flac", "0001/answer_1.flac")
    assert (flac / "test" / "0001" / "question.flac").read_bytes() == \
        (manifest.parent / records[5]["question_audio"]["path"]).read_bytes()  # FLAC as it is
    np.testing.assert_array_equal(soundfile.read(flac / "test" / "0001" / "answer_1.flac", dtype="int16")[0],
                                  soundfile.read(manifest.parent / records[5]["answer_audio"]["path"],
                                                 dtype="int16")[0])


def test_export_keeps_release_ids_unique_per_split_and_numbers_the_rest():
    wanted = [("train", None), ("train", "0002"), ("train", "0007"), ("train", "0007"), ("train", None),
              ("dev", "0001"), ("train", "0001")]
    ids = ExportIds(wanted)
    assert [ids.next(split, hub_id) for split, hub_id in wanted] == [
        "0003", "0002", "0004", "0005", "0006", "0001", "0001"]


def test_a_release_id_that_is_no_plain_folder_name_is_renumbered(tmp_path):
    """Review 8a: `metadata.jsonl` is a safe id but the name of the split's metadata file, and `../../evil` no
    folder at all: only a plain name of letters, digits and `_` is kept."""
    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    for record, hub_id in zip(records[:3], ["metadata.jsonl", "../../evil", "0007"]):
        record["source"] = {**record["source"], "format": "soundmind-hub", "split": "train", "id": hub_id}
    write_jsonl(manifest, records)
    export(manifest, fmt="soundmind-hub", out=tmp_path / "out")
    assert [line["id"] for line in read_jsonl(tmp_path / "out" / "train" / "metadata.jsonl")] == [
        "0001", "0002", "0007"]
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == ["0001", "0002", "0007",
                                                                              "metadata.jsonl"]
    assert not list(tmp_path.rglob("evil*"))


# --------------------------------------------------------------------------------------- validate, as they are
def test_validate_judges_imported_recordings_with_whisper(tmp_path, run_cli):
    from soundmind_data.tts.base import load_voice_engine

    voice = load_voice_engine("flite", None, "cpu")  # a fast engine Whisper tiny.en hears well
    release = tmp_path / "dataset"
    lines = []
    for n, (major, minor, conclusion, label) in enumerate([
            ("Every student in the library must be quiet", "Maria is a student in the library",
             "Maria must be quiet", 1),
            ("All birds in the park can fly", "Tom is a dog in the park", "Tom can fly", 0)], start=1):
        record = soundmind_line(f"{n:04d}", major=major, minor=minor, conclusion=conclusion, label=label, answer="")
        (release / "dev" / f"{n:04d}").mkdir(parents=True)
        samples = np.concatenate(voice.synthesize([record["user_content"]]))
        soundfile.write(release / "dev" / f"{n:04d}" / "question.wav", samples, voice.sample_rate, subtype="PCM_16")
        lines.append(hub_line(f"{n:04d}", record, answered=False) | {"annotation_answer": None})
    write_jsonl(release / "dev" / "metadata.jsonl", lines)
    out = tmp_path / "corpus" / "items.jsonl"
    run_cli("ingest", release, "--format", "soundmind-hub", "--out", out, check_rc=0)
    proc = run_cli("validate", out, "--asr", "whisper", "--json", tmp_path / "validate.json")
    report = json.loads((tmp_path / "validate.json").read_text())
    assert proc.returncode == 0 and report["failures"] == [], proc.stdout + proc.stderr
    checked = {check: counts for check, counts in report["checks"].items()}
    for check in ("sha256", "decode", "sample_rate", "channels", "duration", "asr_per"):
        assert checked[check]["passed"] == 2, (check, checked[check])
    assert list(report["voices"]) == ["upstream"]


# ------------------------------------------------------------------------------- issue 25's adversarial review
def test_export_refuses_an_out_that_holds_audio_its_manifest_uses(tmp_path, run_cli):
    """Review 1: a release ingested in place, exported into its own folder, would be moved aside and deleted."""
    from soundmind_data.core.errors import UsageError

    release = tmp_path / "corpus" / "rel"
    export(corpus_manifest(tmp_path / "synth"), fmt="soundmind-hub", out=release)  # marked: an export's folder
    items = tmp_path / "corpus" / "items.jsonl"
    assert ingest([release], fmt="soundmind-hub", out=items).audio_in_place == 13
    before = tree(release)
    proc = run_cli("export", items, "--format", "soundmind-hub", "--out", release, check_rc=2)
    assert proc.stderr.startswith(f"error: --out {release}: holds audio files that {items} names (") and \
        len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for fmt, out in (("verl", release), ("soundmind-hub", release / "dev"), ("verl", release / "test" / "0001")):
        with pytest.raises(UsageError, match=f"^--out {out}: holds audio files that"):
            export(items, fmt=fmt, out=out, overwrite=True)  # not even with --overwrite
    assert tree(release) == before
    for record in read_jsonl(items):
        assert (items.parent / record["question_audio"]["path"]).is_file()
    # a file named through a link: where it lies counts too
    store, links = tmp_path / "corpus" / "store", tmp_path / "corpus" / "links"
    store.mkdir(), links.mkdir()
    (store / "q.wav").write_bytes((release / "dev" / "0001" / "question.wav").read_bytes())
    (links / "q.wav").symlink_to(store / "q.wav")
    linked = read_jsonl(items)[:1]
    linked[0]["question_audio"]["path"] = "links/q.wav"
    with pytest.raises(UsageError, match=f"^--out {store}: holds audio files that"):
        export(write_jsonl(tmp_path / "corpus" / "linked.jsonl", linked), fmt="verl", out=store, overwrite=True)
    assert (store / "q.wav").is_file()
    # beside them, and among the corpus's other files, is fine
    assert export(items, fmt="soundmind-hub", out=tmp_path / "corpus" / "again").items == 7
    # publish swaps data/ in its --local-dir in the same way: a folder holding the corpus's audio is refused too
    proc = run_cli("publish", items, "--local-dir", release, "--overwrite", check_rc=2)
    assert proc.stderr.startswith(f"error: --local-dir {release}: holds audio files that {items} names (")
    assert tree(release) == before


def test_a_re_export_removes_what_the_previous_one_wrote_and_the_new_one_lacks(tmp_path):
    """Review 2: a split the manifest no longer has, and verl's audio/ in --modality text, do not survive."""
    manifest = corpus_manifest(tmp_path / "synth")
    no_test = write_jsonl(tmp_path / "synth" / "no-test.jsonl",
                          [record for record in read_jsonl(manifest) if record["split"] != "test"])
    folders = tmp_path / "hub"
    export(manifest, fmt="soundmind-hub", out=folders)
    (folders / "notes.txt").write_text("the user's own", encoding="utf-8")  # not the toolkit's to remove
    export(no_test, fmt="soundmind-hub", out=folders)
    assert sorted(p.name for p in folders.iterdir()) == [".soundmind-data-export", "dev", "notes.txt", "train"]

    verl = tmp_path / "verl"
    export(manifest, fmt="verl", out=verl)
    assert sorted(p.name for p in (verl / "audio").iterdir()) == ["dev", "test", "train"]
    export(no_test, fmt="verl", out=verl)
    assert sorted(p.name for p in verl.iterdir()) == [".soundmind-data-export", "audio", "dev.parquet",
                                                      "train.parquet"]
    assert sorted(p.name for p in (verl / "audio").iterdir()) == ["dev", "train"]
    export(no_test, fmt="verl", out=verl, modality="text")
    assert sorted(p.name for p in verl.iterdir()) == [".soundmind-data-export", "dev.parquet", "train.parquet"]

    # the marker lives in the user's folder: what it lists beyond a plain name of an entry there is never removed
    marker = verl / ".soundmind-data-export"
    record = json.loads(marker.read_text(encoding="utf-8"))
    assert record["entries"] == ["dev.parquet", "train.parquet"]
    record["entries"] += ["..", "../synth", str(tmp_path / "synth"), ".", ""]
    marker.write_text(json.dumps(record), encoding="utf-8")
    export(no_test, fmt="verl", out=verl, modality="text")
    assert manifest.is_file() and sorted(p.name for p in verl.iterdir()) == [
        ".soundmind-data-export", "dev.parquet", "train.parquet"]


def test_an_answer_recording_without_answer_text_stays_out_and_the_round_trip_keeps_the_item(tmp_path):
    """Review 3: an audio entry that describes no text must not go out (ingest rejects such a line)."""
    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    records[0]["answer_text"], records[1]["answer_text"] = None, "  "  # their answer_audio stays
    write_jsonl(manifest, records)
    out = tmp_path / "hub"
    export(manifest, fmt="soundmind-hub", out=out)
    lines = read_jsonl(out / "train" / "metadata.jsonl")
    assert [line["answer_file_name"] for line in lines] == [None, None, "0003/answer_0.wav"]
    assert sorted(p.name for p in (out / "train" / "0001").iterdir()) == ["annotation.json", "question.wav"]
    result = ingest([out], fmt="soundmind-hub", out=tmp_path / "corpus" / "items.jsonl")
    assert (result.items, result.rejected) == (7, 0)


def test_an_item_rejected_for_one_recording_places_none_of_its_files(tmp_path):
    """Review 4: both recordings are checked before either is placed, and only placed files of kept items count."""
    release = write_release(tmp_path / "download" / "dataset", {"dev": 2})
    junk = read_jsonl(release / "dev" / "metadata.jsonl")[1]["answer_file_name"]
    (release / "dev" / junk).write_bytes(b"RIFF\x00\x00\x00\x00WAVE not audio")
    out = tmp_path / "corpus" / "items.jsonl"
    result = ingest([release], fmt="soundmind-hub", out=out)
    assert (result.items, result.rejected, result.audio_placed) == (1, 1, 2)
    assert f"2 linked or copied into {out.parent / 'items.audio'}" in result.summary().err[-1]
    assert sorted(p.relative_to(out.parent).as_posix() for p in (out.parent / "items.audio").rglob("*.wav")) == [
        "items.audio/dev/0001/answer_1.wav", "items.audio/dev/0001/question.wav"]


def test_a_re_ingest_of_another_release_never_changes_a_file_another_manifest_describes(tmp_path):
    """Review 4: a placed file is reused when identical, else the new one takes a name of its own."""
    import shutil

    out = tmp_path / "corpus" / "items.jsonl"
    ingest([write_release(tmp_path / "a" / "dataset", {"dev": 2})], fmt="soundmind-hub", out=out)
    curated = shutil.copyfile(out, tmp_path / "corpus" / "curated.jsonl")  # another manifest of the corpus
    second = write_release(tmp_path / "b" / "dataset", {"dev": 2})  # the same recordings...
    other = tone(second / "dev" / "0001" / "question.wav", 0.5, 999)  # ...but one
    ingest([second], fmt="soundmind-hub", out=out)
    for manifest in (curated, out):
        for record in read_jsonl(manifest):
            for key in ("question_audio", "answer_audio"):
                audio = record[key]
                assert hashlib.sha256((out.parent / audio["path"]).read_bytes()).hexdigest() == audio["sha256"]
    first, _ = read_jsonl(out)
    digest = hashlib.sha256(other).hexdigest()
    assert first["question_audio"]["path"] == f"items.audio/dev/0001/question.{digest[:8]}.wav"
    assert first["answer_audio"]["path"] == "items.audio/dev/0001/answer_1.wav"  # identical: the same file
    assert read_jsonl(out)[1]["question_audio"]["path"] == "items.audio/dev/0002/question.wav"


def test_a_card_licence_that_is_no_hub_licence_id_is_ignored_and_said(tmp_path):
    """Review 5: the release's card is not ours to copy into our card's Licence section."""
    card = '---\nlicense: "mit\\n# injected"\n---\n# Card\n'
    release = write_release(tmp_path / "dataset", {"dev": 1}, card=card)
    result = ingest([release], fmt="soundmind-hub", out=tmp_path / "corpus" / "items.jsonl")
    assert "license" not in read_jsonl(tmp_path / "corpus" / "items.jsonl")[0]["source"]
    assert result.summary().err[-1] == (
        f"ingest: {release / 'README.md'}: the release's card declares licence 'mit\\n# injected', which is not a "
        "Hub licence id: ignored")


def test_no_card_above_the_splits_is_read_but_the_hub_repositorys_and_a_broken_one_is_ignored(tmp_path):
    """Review 6: one folder up is the Hub repository's root only above a `dataset/` folder; a card that does not
    parse costs its licence, not the ingest."""
    home = tmp_path / "home"
    project = write_release(home / "proj", {"dev": 1}, card=None)
    (home / "README.md").write_text("---\nlicense: apache-2.0\n---\n# My notes\n", encoding="utf-8")
    out = tmp_path / "corpus" / "items.jsonl"
    ingest([project / "dev" / "metadata.jsonl"], fmt="soundmind-hub", out=out)
    assert "license" not in read_jsonl(out)[0]["source"]

    (project / "README.md").write_text("---\nlicense: [mit\n---\n", encoding="utf-8")
    result = ingest([project], fmt="soundmind-hub", out=out)
    assert result.items == 1 and "license" not in read_jsonl(out)[0]["source"]
    assert result.summary().err[-1].startswith(
        f"ingest: {project / 'README.md'}: the release's card is ignored: its YAML header does not parse (")


def test_a_24_bit_recording_keeps_its_depth_as_wav_and_as_flac(tmp_path):
    """Review 8b and 9: one re-encoding, keeping the source's bit depth where the target format holds it."""
    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    deep = (0.3 * np.sin(np.arange(RATE // 2) / 5) * 2 ** 31).astype("int32")[:, None]
    for key, name, fmt in (("question_audio", "deep-q.flac", "FLAC"), ("answer_audio", "deep-a.wav", "WAV")):
        soundfile.write(manifest.parent / "audio" / name, deep, RATE, format=fmt, subtype="PCM_24")
        records[0][key] |= {"path": f"audio/{name}", "duration_s": 0.5,
                            "sha256": hashlib.sha256((manifest.parent / "audio" / name).read_bytes()).hexdigest()}
    write_jsonl(manifest, records)
    expected = soundfile.read(manifest.parent / "audio" / "deep-q.flac", dtype="int32")[0]
    export(manifest, fmt="soundmind-hub", out=tmp_path / "wav")
    question = tmp_path / "wav" / "train" / "0001" / "question.wav"
    assert soundfile.info(question).subtype == "PCM_24"
    np.testing.assert_array_equal(soundfile.read(question, dtype="int32")[0], expected)
    export(manifest, fmt="soundmind-hub", out=tmp_path / "flac", audio_format="flac")
    answer = tmp_path / "flac" / "train" / "0001" / f"answer_{records[0]['label']}.flac"
    assert soundfile.info(answer).subtype == "PCM_24"
    np.testing.assert_array_equal(soundfile.read(answer, dtype="int32")[0], expected)


def test_export_leaves_a_live_writers_staging_alone_and_sweeps_a_dead_ones(tmp_path):
    """Review 8e: two exports into one folder each stage in a folder of their own; a first export takes a folder
    holding nothing but such leftovers."""
    import socket
    import subprocess
    import sys

    from soundmind_data.core import tempfiles
    from soundmind_data.stages.export import STAGING

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    out = tmp_path / "out"
    live = out / tempfiles.temp_name(STAGING)  # this process's: a writer at work
    gone = out / f".{STAGING}~{socket.gethostname()}~{dead}~0000.tmp"
    for staging in (live, gone):
        (staging / "train" / "0001").mkdir(parents=True)
    export(corpus_manifest(tmp_path / "synth"), fmt="soundmind-hub", out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted([".soundmind-data-export", "dev", "test", "train",
                                                            live.name])
    assert (live / "train" / "0001").is_dir()
