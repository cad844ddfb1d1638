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

from soundmind_data import schemas
from soundmind_data.errors import DataError
from soundmind_data.soundmind_hub import ExportIds
from soundmind_data.stages.export import export
from soundmind_data.stages.ingest import ingest

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
    assert [(i["id"], i["split"], i["source"]["split"]) for i in read_jsonl(tmp_path / "corpus" / "v.jsonl")] == [
        ("validation-0001", "validation", "validation"), ("validation-0002", "validation", "validation")]


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


def test_an_unsafe_release_id_is_an_error_naming_line_and_field(tmp_path):
    manifest = corpus_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    records[1]["source"] = {**records[1]["source"], "format": "soundmind-hub", "split": "train", "id": "../../evil"}
    write_jsonl(manifest, records)
    with pytest.raises(DataError, match=rf"^{manifest}:2: source.id: unsafe id '\.\./\.\./evil'"):
        export(manifest, fmt="soundmind-hub", out=tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.rglob("evil*"))


# --------------------------------------------------------------------------------------- validate, as they are
def test_validate_judges_imported_recordings_with_whisper(tmp_path, run_cli):
    from soundmind_data.tts.base import load_backend

    voice = load_backend("flite", None, "cpu")  # a fast engine Whisper tiny.en hears well
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
