"""`soundmind-data add`: a contributor's items join a manifest; duplicates are rejected with the id they duplicate,
existing items never move, and only the new items are synthesised."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from factories import item, read_jsonl, soundmind_line, write_jsonl
from soundmind_data.commands.add import add_items
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.tts.driver import synthesize_manifest
from soundmind_data.tts.synthesizer import SynthesisOptions

SPLITS = ["train"] * 16 + ["dev"] * 4 + ["test"] * 4


def triplet(n: int) -> dict[str, str]:
    """A question of its own for each n (distinct after normalisation)."""
    return {"major": f"Every member of club {n} plays the violin", "minor": f"Sam {n} is a member of club {n}",
            "conclusion": f"Sam {n} plays the violin"}


def existing_corpus(path: Path, splits: list[str] = SPLITS) -> Path:
    return write_jsonl(path, [item(f"c-{n:03d}", split=split, label=n % 2, **triplet(n))
                              for n, split in enumerate(splits)])


def test_add_rejects_planted_duplicates_keeps_existing_items_and_diff_shows_the_additions(tmp_path, run_cli):
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    old_bytes = manifest.read_bytes()
    old = tmp_path / "old.jsonl"
    old.write_bytes(old_bytes)
    c007, c010 = triplet(7), triplet(10)
    new = write_jsonl(tmp_path / "new.jsonl", [
        soundmind_line("n-001", **triplet(101), label=1),                                     # 1: added
        soundmind_line("c-005", **triplet(102), label=1),                                     # 2: id taken
        soundmind_line("n-002", major=c007["major"].upper() + "!", minor=c007["minor"].lower(),  # 3: same, normalised
                       conclusion=c007["conclusion"].replace("Sam", "sam,"), label=1),
        soundmind_line("n-003", **c010, label=0),                                             # 4: exact duplicate
        soundmind_line("n-004", **triplet(104), label=0),                                     # 5: added
        soundmind_line("n-005", major="  EVERY member of club 104 plays the violin.", minor="Sam 104 is a member "
                       "of club 104", conclusion="Sam 104 plays the violin!", label=0),           # 6: dup of line 5
        '{"id": "n-006", "user_content": ',                                                  # 7: malformed
        soundmind_line("n-007", **triplet(107), label=0),                                     # 8: added
        soundmind_line("n-001", **triplet(109), label=1),                                     # 9: id repeated
    ])

    proc = run_cli("add", new, "--to", manifest, "--json", tmp_path / "add.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr

    report = json.loads((tmp_path / "add.json").read_text())
    assert schemas.first_error("add-report", report) is None
    rejected = {r["line"]: (r["id"], r.get("duplicate_of"), r["reason"]) for r in report["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 6, 7, 9]
    assert rejected[2][:2] == ("c-005", "c-005") and rejected[2][2].startswith("id: 'c-005' already exists")
    assert rejected[3][:2] == ("n-002", "c-007")
    assert rejected[3][2].startswith("triplet: normalised duplicate of existing item 'c-007'")
    assert rejected[4] == ("n-003", "c-010", "triplet: exact duplicate of existing item 'c-010'")
    assert rejected[6][:2] == ("n-005", "n-004")
    assert rejected[6][2].startswith(f"triplet: normalised duplicate of new item 'n-004' ({new}:5)")
    assert rejected[7][0] is None and "malformed JSON" in rejected[7][2]
    assert rejected[9][0] == "n-001" and "duplicate id" in rejected[9][2]
    assert f"{new}:3: triplet: normalised duplicate of existing item 'c-007'" in proc.stdout
    rejects_file = read_jsonl(tmp_path / "manifest.add-rejects.jsonl")
    assert [(r["line"], r["reason"]) for r in rejects_file] == [(r["line"], r["reason"]) for r in report["rejected"]]
    assert all(schemas.first_error("reject", r) is None for r in rejects_file)

    # the published items, the test set included, are the same bytes in the same order; the new ones follow
    new_bytes = manifest.read_bytes()
    assert new_bytes.startswith(old_bytes)
    added = read_jsonl(manifest)[len(SPLITS):]
    assert [a["id"] for a in added] == ["n-001", "n-004", "n-007"]
    assert all(a["split"] in ("train", "dev", "test") for a in added)
    assert [(a["id"], a["split"], a["label"]) for a in added] == [
        (a["id"], a["split"], a["label"]) for a in report["added"]]
    assert report["ratios_from"] == "manifest" and report["ratios"] == {"train": 16 / 24, "dev": 4 / 24, "test": 4 / 24}

    run_cli("diff", old, manifest, "--json", tmp_path / "diff.json", check_rc=0)
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["added"] == ["n-001", "n-004", "n-007"] and diff["removed"] == [] and diff["changed"] == {}
    expected_new = {split: {"0": 0, "1": 0} for split in ("train", "dev", "test")}
    for n, split in enumerate(SPLITS):
        expected_new[split][str(n % 2)] += 1
    expected_old = json.loads(json.dumps(expected_new))
    for a in added:
        expected_new[a["split"]][str(a["label"])] += 1
    assert diff["balance"] == {split: {"old": expected_old[split], "new": expected_new[split]}
                               for split in expected_new}
    assert report["after"] == expected_new


def test_items_format_checks_the_schema_drops_foreign_audio_and_catches_repeated_new_ids(tmp_path):
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    foreign_audio = {"path": "audio/x.flac", "sha256": "0" * 64, "sample_rate": 16000, "channels": 1,
                     "duration_s": 1.0, "loudness_lufs": -23.0}
    new = write_jsonl(tmp_path / "new.jsonl", [
        item("n-1", split="whatever", question_audio=foreign_audio, **triplet(201)),
        item("n-2", label=2, **triplet(202)),
        item("n-1", **triplet(203)),
    ])
    report = add_items([new], to=manifest, fmt="items", ratios={"train": 0.5, "dev": 0.25, "test": 0.25}, seed=3)
    assert not report.ok and report.ratios_from == "option"
    assert [(r["line"], r["id"]) for r in report.rejected] == [(2, "n-2"), (3, "n-1")]
    assert report.rejected[0]["reason"].startswith("label: ")
    assert report.rejected[1]["reason"] == f"id: 'n-1' is also the id of new item at {new}:1"
    added = read_jsonl(manifest)[-1]
    assert added["id"] == "n-1" and added["split"] in ("train", "dev", "test") and "question_audio" not in added


def test_an_answer_that_contradicts_its_label_is_rejected_as_validate_strict_would(tmp_path):
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    new = write_jsonl(tmp_path / "new.jsonl", [
        item("n-1", label=1, answer="It fails.\nAnswer: not entailed.", **triplet(301)),
        item("n-2", label=1, answer="No verdict at all.", **triplet(302)),
        item("n-3", label=1, answer=None, **triplet(303)),  # no answer yet: welcome
        item("n-4", label=0, **triplet(304)),  # the factory's agreeing answer
    ])
    report = add_items([new], to=manifest, fmt="items", seed=3)
    assert [(r["line"], r["id"], r["reason"]) for r in report.rejected] == [
        (1, "n-1", "answer_text: the answer's final verdict contradicts the label 1 (entailed)"),
        (2, "n-2", "answer_text: the answer has no final 'Answer: entailed / not entailed' verdict"),
    ]
    assert [record["id"] for record in read_jsonl(manifest)][-2:] == ["n-3", "n-4"]


def test_add_refuses_to_move_existing_items(tmp_path, run_cli):
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    new = write_jsonl(tmp_path / "new.jsonl", [soundmind_line("n-1", **triplet(301))])
    before = manifest.read_bytes()
    with pytest.raises(UsageError, match="must name every split .* missing test"):
        add_items([new], to=manifest, ratios={"train": 0.9, "dev": 0.1})
    # a question already in two splits (a leak): placing new items would move one of them, so nothing is done
    leaky = tmp_path / "leaky.jsonl"
    records = read_jsonl(manifest)
    records.append({**records[0], "id": "c-leak", "split": "test"})
    write_jsonl(leaky, records)
    leaky_before = leaky.read_bytes()
    with pytest.raises(DataError, match="would move them: c-000"):
        add_items([new], to=leaky)
    assert manifest.read_bytes() == before and leaky.read_bytes() == leaky_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaky.jsonl", "manifest.jsonl", "new.jsonl"]
    proc = run_cli("add", new, "--to", manifest, "--ratios", "train=0.9,dev=0.1")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --ratios must name every split")
    assert len(proc.stderr.strip().splitlines()) == 1 and manifest.read_bytes() == before


def _audio_files(corpus: Path) -> dict[str, tuple[int, int, str]]:
    """Every audio file under the corpus: relative path -> (inode, mtime in ns, sha256)."""
    files = {}
    for path in sorted((corpus / "audio").rglob("*.flac")):
        stat = path.stat()
        files[path.relative_to(corpus).as_posix()] = (stat.st_ino, stat.st_mtime_ns,
                                                      hashlib.sha256(path.read_bytes()).hexdigest())
    return files


def test_add_synthesises_only_the_new_items_with_the_corpus_voice(tmp_path, run_cli):
    items = write_jsonl(tmp_path / "items.jsonl", [
        item(f"c-{n}", split=split, label=n % 2, answer=None, **triplet(n))
        for n, split in enumerate(["train", "train", "dev", "test"])])
    corpus = tmp_path / "corpus"
    synthesize_manifest(items, corpus, SynthesisOptions(backend="espeak"))
    manifest = corpus / "manifest.jsonl"
    existing_audio = _audio_files(corpus)
    assert len(existing_audio) == 4
    # Without the cache, only add's own restraint keeps the existing items from being synthesised again.
    shutil.rmtree(corpus / ".cache")
    new = write_jsonl(tmp_path / "new.jsonl", [
        soundmind_line("n-1", **triplet(401), label=1, answer="The rule covers Sam. Answer: entailed."),
        soundmind_line("n-2", **triplet(402), label=0, answer="Nothing forces it. Answer: not entailed."),
    ])

    proc = run_cli("add", new, "--to", manifest, "--json", tmp_path / "add.json", check_rc=0)
    assert "4 audio files synthesised, 0 from cache (espeak:en-us)" in proc.stderr
    report = json.loads((tmp_path / "add.json").read_text())
    assert report["synthesis"]["voices"] == ["espeak:en-us"] and report["synthesis"]["synthesized"] == 4

    after = _audio_files(corpus)
    assert {path: after[path] for path in existing_audio} == existing_audio  # same inode, mtime and content
    added = {a["id"]: a["split"] for a in report["added"]}
    assert set(after) - set(existing_audio) == {f"audio/{split}/{item_id}/{name}.flac"
                                                for item_id, split in added.items() for name in ("question", "answer")}
    new_items = read_jsonl(manifest)[4:]
    assert [i["tts"]["backend"] for i in new_items] == ["espeak", "espeak"]
    assert {i["answer_audio"]["sample_rate"] for i in new_items} == {16000}
    assert not any(p.name.startswith(".add-") for p in corpus.iterdir())
    run_cli("validate", manifest, "--audio", check_rc=0)


@pytest.mark.parametrize("bad, message", [
    ({"id": "x"}, "'split' is a required property"),
    ({"label": "entailed"}, "label: 'entailed' is not one of [0, 1]"),
])
def test_diff_names_a_bad_line_in_one_line(tmp_path, run_cli, bad, message):
    old = write_jsonl(tmp_path / "old.jsonl", [item("a")])
    new = write_jsonl(tmp_path / "new.jsonl", [item("a"), bad if "id" in bad else {**item("b"), **bad}])
    proc = run_cli("diff", old, new, check_rc=1)
    assert proc.stderr.strip().startswith(f"error: {new}:2: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_add_rejects_an_id_or_split_with_a_trailing_newline(tmp_path):
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    new = write_jsonl(tmp_path / "new.jsonl", [item("n-1\n", **triplet(201)),
                                               item("n-2", split="train\n", **triplet(202)), item("n-3", **triplet(203))])
    report = add_items([new], to=manifest, fmt="items", ratios={"train": 0.5, "dev": 0.25, "test": 0.25}, seed=3)
    assert [(r["line"], r["reason"].split(":")[0]) for r in report.rejected] == [(1, "id"), (2, "split")]
    assert [record["id"] for record in read_jsonl(manifest)][-1] == "n-3"


@pytest.mark.parametrize("field, value", [("id", "b\n"), ("id", "../b"), ("split", "train\n"), ("split", "dev-2")])
def test_diff_refuses_an_unsafe_id_or_split_in_one_line(tmp_path, run_cli, field, value):
    old = write_jsonl(tmp_path / "old.jsonl", [item("a")])
    new = write_jsonl(tmp_path / "new.jsonl", [item("a"), {**item("b"), field: value}])
    proc = run_cli("diff", old, new, check_rc=1)
    assert proc.stderr.strip().startswith(f"error: {new}:2: {field}: unsafe {field} {value!r}")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("clash", ["manifest", "new", "rejects"])
def test_add_refuses_a_report_or_log_file_that_is_a_file_it_reads_or_writes(tmp_path, run_cli, clash):
    """`--json` and `--log-file` are written whole and renamed into place: on the corpus manifest, a contributor's
    file or add's rejects file they would replace it. Refused before anything is read, and nothing changes."""
    manifest = existing_corpus(tmp_path / "manifest.jsonl")
    new = write_jsonl(tmp_path / "new.jsonl", [item("n-1", **triplet(301))])
    target = {"manifest": manifest, "new": new, "rejects": tmp_path / "manifest.add-rejects.jsonl"}[clash]
    before = {path: path.read_bytes() for path in (manifest, new)}
    for args in (["add", new, "--to", manifest, "--format", "items", "--json", target],
                 ["--log-file", target, "add", new, "--to", manifest, "--format", "items"]):
        proc = run_cli(*args, check_rc=2)
        assert f"{target}: is also " in proc.stderr and "Traceback" not in proc.stderr
    assert {path: path.read_bytes() for path in (manifest, new)} == before
    assert not (tmp_path / "manifest.add-rejects.jsonl").exists()


def test_diff_refuses_a_report_that_is_one_of_its_manifests(tmp_path, run_cli):
    old = existing_corpus(tmp_path / "old.jsonl")
    new = existing_corpus(tmp_path / "new.jsonl", SPLITS[:-1])
    before = old.read_bytes()
    proc = run_cli("diff", old, new, "--json", old, check_rc=2)
    assert proc.stderr.strip() == f"error: --json {old}: is also OLD {old}; choose another file"
    assert old.read_bytes() == before
    run_cli("diff", old, new, "--json", tmp_path / "diff.json", check_rc=0)
    assert json.loads((tmp_path / "diff.json").read_text())["removed"] == [f"c-{len(SPLITS) - 1:03d}"]
