"""Curate: every planted defect gets its decision, every item is accounted for, the output is deterministic, reason
fills exactly the marked items, publish refuses what the audit flags, and a SoundMind-sized corpus with ~40% wrong
labels curates to a clean audit."""

import random

import pytest
from conftest import ROOT
from factories import ENTAILED_ANSWER, NOT_ENTAILED_ANSWER, item, logiqa_line, read_jsonl, write_jsonl

from soundmind_data.core import schemas
from soundmind_data.core.corpus import decisions_path
from soundmind_data.engines.manifest_audit import audit_manifest
from soundmind_data.llm.canned_server import CannedServer
from soundmind_data.llm.openai_compat import OpenAICompatBackend
from soundmind_data.stages.curate import Policy, curate_manifest
from soundmind_data.stages.reason import reason_manifest


def src(line: int) -> dict:
    return {"dataset": "soundmind", "file": "annotations.jsonl", "line": line}


def planted() -> list[dict]:
    """One item per defect class, plus clean ones (source lines give the duplicate rule its order)."""
    return [
        item("clean", conclusion="Claim clean", source=src(1)),
        item("dup-late", conclusion="Claim dup", source=src(9)),  # a second copy, later in the source
        item("dup-early", conclusion="Claim dup.", source=src(2)),  # same normalised triplet: kept
        item("leak-train", conclusion="Claim leak", source=src(3)),
        item("leak-test", split="test", conclusion="Claim leak", source=src(4)),  # evaluation split keeps it
        item("contra", conclusion="Claim contra", label=0, answer=ENTAILED_ANSWER, source=src(5)),
        item("undecided", conclusion="Claim undecided", answer="Hard to say.", source=src(6)),
        item("unanswered", conclusion="Claim unanswered", answer=None, source=src(7)),
        # gold says 0; its answer argues for 1 (its old label): relabelled, and the answer must be rewritten
        item("gold-flip", conclusion="Claim gold flip", label=1, source=src(8)),
        # gold says 1; its answer already argues for 1 against its label 0: relabelled, answer kept
        item("gold-fix", conclusion="Claim gold fix", label=0, answer=ENTAILED_ANSWER, source=src(10)),
        item("symbol", major="Every ★ holds", conclusion="Claim symbol", source=src(11)),
        item("logic", major="If P → Q and P", conclusion="Claim logic", source=src(12)),  # normalisation reads it
        item("audio-bad", conclusion="Claim audio", source=src(13), failed_checks=["loudness", "asr_wer"]),
    ]


@pytest.fixture
def corpus(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", planted())
    gold = write_jsonl(tmp_path / "gold.txt", [
        logiqa_line(conclusion="Claim gold flip", label="not entailed"),
        logiqa_line(conclusion="Claim gold fix", label="entailed"),
        logiqa_line(conclusion="Claim clean", label="entailed"),
    ])
    return manifest, gold


def test_every_defect_gets_its_decision_and_every_item_is_accounted_for(corpus, tmp_path):
    manifest, gold = corpus
    out = tmp_path / "curated.jsonl"
    report = curate_manifest(manifest, out=out, gold_files=[gold])
    decisions = {line["id"]: line for line in read_jsonl(decisions_path(out))}
    curated = {record["id"]: record for record in read_jsonl(out)}

    assert {k: (v["decision"], v["reasons"]) for k, v in decisions.items()} == {
        "dup-late": ("drop", ["duplicate"]),
        "leak-train": ("drop", ["cross_split_leak"]),
        "contra": ("regenerate", ["answer_label_disagree"]),
        "undecided": ("regenerate", ["answer_undecidable"]),
        "unanswered": ("regenerate", ["answer_missing"]),
        "gold-flip": ("regenerate", ["gold_disagree", "answer_label_disagree"]),
        "gold-fix": ("relabel", ["gold_disagree"]),
        "symbol": ("drop", ["unspeakable"]),
        "audio-bad": ("drop", ["loudness", "asr_wer"]),
    }
    assert decisions["dup-late"]["kept_instead"] == "dup-early"
    assert decisions["leak-train"]["kept_instead"] == "leak-test"
    assert (decisions["gold-flip"]["old_label"], decisions["gold-flip"]["new_label"]) == (1, 0)
    assert (decisions["gold-fix"]["old_label"], decisions["gold-fix"]["new_label"]) == (0, 1)
    # nothing vanishes: each input item is in the curated manifest or dropped in the decisions file, exactly once
    dropped = [k for k, v in decisions.items() if v["decision"] == "drop"]
    assert sorted(list(curated) + dropped) == sorted(record["id"] for record in planted())
    assert list(curated) == ["clean", "dup-early", "leak-test", "contra", "undecided", "unanswered", "gold-flip",
                             "gold-fix", "logic"]  # input order

    assert curated["gold-fix"]["label"] == 1 and curated["gold-fix"]["answer_text"] == ENTAILED_ANSWER
    assert curated["gold-fix"]["curation"] == {"decision": "relabel", "reasons": ["gold_disagree"], "old_label": 0}
    assert curated["gold-flip"]["label"] == 0 and "answer_text" not in curated["gold-flip"]
    for item_id in ("contra", "undecided", "unanswered", "gold-flip"):
        assert curated[item_id]["needs_answer"] is True and "answer_text" not in curated[item_id]
    assert [k for k, v in curated.items() if not v["needs_answer"]] == ["clean", "dup-early", "leak-test", "gold-fix",
                                                                         "logic"]
    for record in curated.values():
        assert schemas.first_error("item", record) is None
    for line in decisions.values():
        assert schemas.first_error("curate-decision", line) is None
    assert schemas.first_error("curate-report", report.to_json()) is None
    assert dict(report.decisions) == {"keep": 4, "relabel": 1, "regenerate": 4, "drop": 4}
    assert report.items == 13 and report.items_out == 9 and report.set_aside == 4

    # what remains is clean for the audit, but for the answers reason is to write
    audit = audit_manifest(out, gold_files=[gold])
    assert {check: audit.count(check) for check, _ in audit.check_counts() if audit.count(check)} == \
        {"answer_missing": 4}


def test_same_input_and_policy_give_the_same_bytes(corpus, tmp_path):
    manifest, gold = corpus
    for name in ("a", "b"):
        curate_manifest(manifest, out=tmp_path / f"{name}.jsonl", gold_files=[gold])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert decisions_path(tmp_path / "a.jsonl").read_bytes() == decisions_path(tmp_path / "b.jsonl").read_bytes()


def test_a_policy_file_changes_each_rule(corpus, tmp_path, run_cli):
    manifest, gold = corpus
    policy = tmp_path / "policy.yaml"
    policy.write_text("answer_label_disagree: drop\nanswer_missing: keep\ngold_disagree: keep\nduplicate: keep\n"
                      "split_precedence: [train, test]\nunspeakable: keep\nfailed_checks: keep\n")
    out = tmp_path / "curated.jsonl"
    proc = run_cli("curate", manifest, "--gold", gold, "--policy", policy, "--out", out, "--json", tmp_path / "r.json",
                   check_rc=0)
    decisions = {line["id"]: (line["decision"], line["reasons"]) for line in read_jsonl(decisions_path(out))}
    assert decisions == {
        "leak-test": ("drop", ["cross_split_leak"]),  # train now comes first
        "contra": ("drop", ["answer_label_disagree"]),
        "gold-fix": ("drop", ["answer_label_disagree"]),  # its label stays, and its answer contradicts it
        "undecided": ("regenerate", ["answer_undecidable"]),
    }
    assert "curate: 13 items: 9 keep, 0 relabel, 1 regenerate, 3 drop" in proc.stderr
    assert "train  drop" in proc.stdout and "cross_split_leak" in proc.stdout

    policy.write_text("gold_disagree: maybe\n")
    proc = run_cli("curate", manifest, "--policy", policy, "--out", out, check_rc=2)
    assert proc.stderr.startswith(f"error: {policy}: gold_disagree") and "Traceback" not in proc.stderr


def test_validate_failures_come_from_a_validated_manifest_too(corpus, tmp_path):
    manifest, _ = corpus
    validated = write_jsonl(tmp_path / "validated.jsonl", [{"id": "clean", "failed_checks": ["clipping"]}])
    curate_manifest(manifest, out=tmp_path / "c.jsonl", validated=validated)
    dropped = {line["id"]: line["reasons"] for line in read_jsonl(decisions_path(tmp_path / "c.jsonl"))
               if line["decision"] == "drop"}
    assert dropped["clean"] == ["clipping"] and dropped["audio-bad"] == ["loudness", "asr_wer"]


def test_reason_fills_exactly_the_items_marked_regenerate(corpus, tmp_path):
    manifest, gold = corpus
    curated = tmp_path / "curated.jsonl"
    curate_manifest(manifest, out=curated, gold_files=[gold])
    asked = []

    def reply(prompt: str, n: int) -> str:
        asked.append(prompt)
        return NOT_ENTAILED_ANSWER if "gold flip" in prompt or "contra" in prompt else ENTAILED_ANSWER

    with CannedServer(reply) as server:
        backend = OpenAICompatBackend(server.base_url, "m", timeout_s=10.0, max_retries=0)
        report = reason_manifest(curated, out=tmp_path / "answered.jsonl", backend=backend, samples=1,
                                 gold_files=[gold])
    marked = {r["id"] for r in read_jsonl(curated) if r["needs_answer"]}
    assert marked == {"contra", "undecided", "unanswered", "gold-flip"}
    assert len(asked) == 4 and all(any(r["conclusion"] in prompt for prompt in asked)
                                   for r in read_jsonl(curated) if r["needs_answer"])
    answered = {r["id"]: r for r in read_jsonl(tmp_path / "answered.jsonl")}
    assert list(answered) == [r["id"] for r in read_jsonl(curated)]  # the rest passed through, in order
    assert report.items == 4 and report.passed_through == 5 and report.outcomes["accepted"] == 4
    assert all(not r["needs_answer"] and r["answer_text"] for r in answered.values())
    unchanged = {r["id"]: r for r in read_jsonl(curated) if not r["needs_answer"]}
    assert all(answered[k] == v for k, v in unchanged.items())
    assert audit_manifest(tmp_path / "answered.jsonl", gold_files=[gold]).check_counts() == [
        ("answer_label_disagree", 0), ("answer_missing", 0), ("answer_undecidable", 0), ("gold_disagree", 0),
        ("duplicates", 0), ("cross_split_leaks", 0), ("unspeakable", 0)]


def test_a_soundmind_sized_corpus_with_wrong_labels_curates_to_a_clean_audit(tmp_path):
    """1,262 items like the SoundMind release: ~40% of labels disagree with gold, answers argue for their labels
    (some against them), duplicates within splits and triplets leaking between dev and test."""
    rng = random.Random(7)
    items, gold_lines = [], []
    for n in range(1200):
        truth = rng.randint(0, 1)
        label = 1 - truth if rng.random() < 0.4 else truth
        answer_for = 1 - label if rng.random() < 0.05 else label  # ~60 answers that contradict their own label
        split = rng.choice(["train"] * 8 + ["dev", "test"])
        conclusion = f"Conclusion number {n}"
        items.append(item(f"sm-{n:04d}", split=split, conclusion=conclusion, label=label,
                          answer=ENTAILED_ANSWER if answer_for else NOT_ENTAILED_ANSWER, source=src(n + 1)))
        gold_lines.append(logiqa_line(conclusion=conclusion, label="entailed" if truth else "not entailed"))
    for n in range(62):  # copies: half in the same split, half leaking into another split
        original = items[rng.randrange(1200)]
        other = original["split"] if n % 2 else ("test" if original["split"] != "test" else "dev")
        items.append({**original, "id": f"copy-{n:03d}", "split": other, "source": src(2000 + n)})
    assert len(items) == 1262
    manifest = write_jsonl(tmp_path / "soundmind.jsonl", items)
    gold = write_jsonl(tmp_path / "gold.txt", gold_lines)
    before = audit_manifest(manifest, gold_files=[gold])
    assert 0.35 < before.count("gold_disagree") / 1262 < 0.45 and before.count("answer_label_disagree") > 30
    assert before.count("duplicates") and before.count("cross_split_leaks")

    out = tmp_path / "curated.jsonl"
    curate_manifest(manifest, out=out, gold_files=[gold], policy=Policy(answer_label_disagree="drop"))
    after = audit_manifest(out, gold_files=[gold])
    for check in ("answer_label_disagree", "gold_disagree", "duplicates", "cross_split_leaks"):
        assert after.count(check) == 0, check
    decisions = read_jsonl(decisions_path(out))
    assert after.items + sum(d["decision"] == "drop" for d in decisions) == 1262


def test_logiqa_sources_curate_to_marked_items_without_leaks(tmp_path, run_cli):
    """LogiQA 2.0 NLI files as ingest reads them: the same triplet in dev and test, a repeat within dev. Their labels
    are gold already; every item needs an answer, so every kept one is marked for reason."""
    dev = write_jsonl(tmp_path / "dev.txt", [logiqa_line(conclusion="One."), logiqa_line(conclusion="Two."),
                                             logiqa_line(conclusion="one"), logiqa_line(conclusion="Three.")])
    test = write_jsonl(tmp_path / "test.txt", [logiqa_line(conclusion="Three", label="not entailed")])
    parts = []
    for source, split in ((dev, "dev"), (test, "test")):
        run_cli("ingest", source, "--format", "logiqa2-nli", "--split", split, "--out", tmp_path / f"{split}.jsonl",
                check_rc=0)
        parts += read_jsonl(tmp_path / f"{split}.jsonl")
    manifest = write_jsonl(tmp_path / "items.jsonl", parts)
    out = tmp_path / "curated.jsonl"
    proc = run_cli("curate", manifest, "--out", out, check_rc=0)
    decisions = {d["id"]: (d["decision"], d["reasons"]) for d in read_jsonl(decisions_path(out))}
    assert decisions == {
        "dev-000001": ("regenerate", ["answer_missing"]), "dev-000002": ("regenerate", ["answer_missing"]),
        "dev-000003": ("drop", ["duplicate"]),  # "one" repeats line 1 once case and the full stop are set aside
        "dev-000004": ("drop", ["cross_split_leak"]),  # "Three" stays in test, the evaluation split
        "test-000001": ("regenerate", ["answer_missing"])}
    assert [(r["id"], r["label"], r["needs_answer"]) for r in read_jsonl(out)] == [
        ("dev-000001", 1, True), ("dev-000002", 1, True), ("test-000001", 0, True)]
    assert "curate: 5 items: 0 keep, 0 relabel, 3 regenerate, 2 drop" in proc.stderr


def test_copies_within_a_split_go_even_when_leaks_are_kept(tmp_path):
    items = [item("test-a", split="test", conclusion="Same", source=src(5)),
             item("train-late", conclusion="Same", source=src(9)), item("train-early", conclusion="Same", source=src(3))]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    for policy, expected in ((Policy(), {"train-late": ["duplicate", "cross_split_leak"],
                                         "train-early": ["cross_split_leak"]}),
                             (Policy(cross_split_leak="keep"), {"train-late": ["duplicate"]}),
                             (Policy(duplicate="keep"), {"train-late": ["cross_split_leak"],
                                                         "train-early": ["cross_split_leak"]})):
        out = tmp_path / "out.jsonl"
        curate_manifest(manifest, out=out, policy=policy)
        lines = read_jsonl(decisions_path(out))
        assert {line["id"]: line["reasons"] for line in lines} == expected
        assert all(line["kept_instead"] == ("train-early" if line["reasons"] == ["duplicate"] else "test-a")
                   for line in lines)


def test_bad_lines_and_paths_are_one_line_errors_and_nothing_is_written(corpus, tmp_path, run_cli):
    manifest, gold = corpus
    records = read_jsonl(manifest)
    out = tmp_path / "out.jsonl"
    for name, broken, field in (("nosource", {k: v for k, v in records[0].items() if k != "source"}, "source"),
                                ("goldlabel", {**records[0], "source": {**src(1), "gold_label": "0"}}, "gold_label"),
                                ("failed", {**records[0], "failed_checks": "loudness"}, "failed_checks"),
                                ("answer", {**records[0], "answer_text": 0}, "answer_text")):
        bad = write_jsonl(tmp_path / f"{name}.jsonl", records[:3] + [broken])
        proc = run_cli("curate", bad, "--out", out, check_rc=1)
        assert proc.stderr.startswith(f"error: {bad}:4: ") and field in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()
    validated = write_jsonl(tmp_path / "v.jsonl", [{"id": "clean", "failed_checks": ["x"]}, {"failed_checks": []}])
    proc = run_cli("curate", manifest, "--validated", validated, "--out", out, check_rc=1)
    assert proc.stderr.startswith(f"error: {validated}:2: id") and not out.exists()
    for args in (("--out", out, "--json", manifest), ("--out", out, "--json", out), ("--out", gold, "--gold", gold)):
        proc = run_cli("curate", manifest, *args, check_rc=2)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert read_jsonl(manifest) == records and not out.exists()


def test_a_copy_that_goes_anyway_is_not_the_one_kept(tmp_path):
    items = [item("early-bad", conclusion="Same", source=src(1), failed_checks=["loudness"]),
             item("late-good", conclusion="Same", source=src(2)),
             item("test-bad", split="test", conclusion="Other", source=src(3), failed_checks=["asr_wer"]),
             item("train-good", conclusion="Other", source=src(4))]
    out = tmp_path / "out.jsonl"
    curate_manifest(write_jsonl(tmp_path / "items.jsonl", items), out=out)
    assert [r["id"] for r in read_jsonl(out)] == ["late-good", "train-good"]  # each triplet survives once
    decisions = {d["id"]: d for d in read_jsonl(decisions_path(out))}
    assert decisions["early-bad"]["reasons"] == ["duplicate", "loudness"]
    assert decisions["early-bad"]["kept_instead"] == "late-good"
    assert decisions["test-bad"]["reasons"] == ["cross_split_leak", "asr_wer"]
    assert decisions["test-bad"]["kept_instead"] == "train-good"


def test_curating_a_curated_manifest_again_changes_nothing(corpus, tmp_path):
    manifest, gold = corpus
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    curate_manifest(manifest, out=once, gold_files=[gold])
    report = curate_manifest(once, out=twice, gold_files=[gold])
    assert read_jsonl(twice) == read_jsonl(once)  # the waiting items keep why they were first marked
    assert report.decisions["drop"] == 0 and report.decisions["relabel"] == 0
    assert {d["id"] for d in read_jsonl(decisions_path(twice))} == {r["id"] for r in read_jsonl(once)
                                                                    if r["needs_answer"]}


def test_the_copy_kept_is_one_that_survives_its_own_answer_check(tmp_path):
    """With the no-llm policy an answer against its label drops its item: the copy kept of its triplet (in its split,
    and across splits) is one that stays, whatever the gold files make of its label, and `kept_instead` never names
    an item that is dropped."""
    contradicting = {"label": 0, "answer": ENTAILED_ANSWER}
    items = [item("dup-contra", conclusion="Same", source=src(1), **contradicting),
             item("dup-good", conclusion="Same", source=src(2)),
             item("test-contra", split="test", conclusion="Leaked", source=src(3), **contradicting),
             item("train-good", conclusion="Leaked", source=src(4)),
             # the gold file says 0: relabelled, the first copy's answer argues for 1 and goes, the second's agrees
             item("gold-contra", conclusion="Gold", label=1, answer=ENTAILED_ANSWER, source=src(5)),
             item("gold-good", conclusion="Gold", label=0, answer=NOT_ENTAILED_ANSWER, source=src(6)),
             # every copy goes for its own answer: neither is kept in place of the other
             item("both-a", conclusion="Both", source=src(7), **contradicting),
             item("both-b", conclusion="Both", source=src(8), **contradicting)]
    gold = write_jsonl(tmp_path / "gold.txt", [logiqa_line(conclusion="Gold", label="not entailed")])
    out = tmp_path / "out.jsonl"
    curate_manifest(write_jsonl(tmp_path / "items.jsonl", items), out=out, gold_files=[gold],
                    policy=Policy.load(ROOT / "pipelines" / "policies" / "no-llm.yaml"))
    assert [r["id"] for r in read_jsonl(out)] == ["dup-good", "train-good", "gold-good"]
    decisions = {d["id"]: d for d in read_jsonl(decisions_path(out))}
    assert {name: (d["decision"], d["reasons"], d.get("kept_instead")) for name, d in decisions.items()} == {
        "dup-contra": ("drop", ["duplicate", "answer_label_disagree"], "dup-good"),
        "test-contra": ("drop", ["cross_split_leak", "answer_label_disagree"], "train-good"),
        "gold-contra": ("drop", ["duplicate", "answer_label_disagree"], "gold-good"),
        "both-a": ("drop", ["answer_label_disagree"], None),
        "both-b": ("drop", ["answer_label_disagree"], None)}
    dropped = {name for name, d in decisions.items() if d["decision"] == "drop"}
    assert not [d for d in decisions.values() if d.get("kept_instead") in dropped]
