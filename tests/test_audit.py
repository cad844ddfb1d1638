import json

import pytest
from factories import item, logiqa_line, soundmind_line, write_jsonl

from soundmind_data.core import schemas
from soundmind_data.engines.manifest_audit import audit_manifest
from soundmind_data.report.table import id_sample


@pytest.fixture
def defective(tmp_path):
    """A manifest with known defects, one or two of each kind, and a gold file that disagrees on one item."""
    items = [
        item("ok1", major="Birds fly", minor="Tweety is a bird", conclusion="Tweety flies", label=1),
        item("dis1", label=1, answer="Hmm.\n\nAnswer: **not entailed**", conclusion="Claim one"),
        item("dis2", label=1, answer="Answer: Not Entailed.", conclusion="Claim two"),
        item("dis3", label=0, answer="Answer: entailed? no...\nAnswer: Entailed!", conclusion="Claim three"),
        item("agree-hyphen", label=0, answer="Answer: not-entailed", conclusion="Claim four"),
        item("miss1", answer=None, conclusion="Claim five"),
        item("miss2", answer="   ", conclusion="Claim six"),
        item("undec", answer="I cannot decide.", conclusion="Claim seven"),
        item("dup-a", conclusion="The same claim", split="train"),
        item("dup-b", conclusion="the SAME claim!", split="train"),
        item("leak-dev", conclusion="Tweety flies", major="Birds fly.", minor="tweety is a bird", split="dev"),
        item("sym", major="★ P holds", conclusion="Claim eight"),  # "¬P → Q" would be fine: normalisation reads it
        item("logic", major="¬P → Q holds", conclusion="Claim eleven"),
        item("cjk", minor="Tom is a cat，他是猫", conclusion="Claim nine"),
        item("ctl", conclusion="Claim\x07 ten"),
    ]
    manifest = write_jsonl(tmp_path / "m.jsonl", items)
    gold = write_jsonl(tmp_path / "gold.txt", [
        logiqa_line(major="BIRDS FLY", minor="Tweety is a bird.", conclusion="Tweety flies.", label="not entailed"),
        logiqa_line(major="All cats are animals", minor="Tom is a cat", conclusion="Claim one", label="entailed"),
        "{a bad gold line is skipped",
    ])
    return manifest, gold


def test_audit_counts_known_defects(defective):
    manifest, gold = defective
    report = audit_manifest(manifest, gold_files=[gold]).to_json()
    assert report["items"] == 15
    assert report["splits"] == {"train": {"0": 2, "1": 12}, "dev": {"0": 0, "1": 1}}
    assert report["ids"]["answer_label_disagree"] == ["dis1", "dis2", "dis3"]
    assert report["ids"]["answer_missing"] == ["miss1", "miss2"]
    assert report["ids"]["answer_undecidable"] == ["undec"]
    # ok1 and leak-dev match the gold triplet (case/punctuation insensitive) whose gold label is 0; dis1 matches with 1
    assert report["gold_matched"] == 3
    assert report["ids"]["gold_disagree"] == ["ok1", "leak-dev"]
    assert report["duplicates"] == 1 and report["ids"]["duplicates"] == ["dup-b"]
    assert report["duplicate_groups"] == [["dup-a", "dup-b"]]
    assert report["cross_split_leaks"] == 2 and sorted(report["ids"]["cross_split_leaks"]) == ["leak-dev", "ok1"]
    assert report["leak_groups"] == [{"train": ["ok1"], "dev": ["leak-dev"]}]
    assert report["ids"]["unspeakable"] == ["sym", "cjk", "ctl"]
    for key in ("answer_label_disagree", "answer_missing", "gold_matched", "gold_disagree", "duplicates",
                "cross_split_leaks", "unspeakable"):
        assert key in report
    assert schemas.first_error("audit-report", report) is None


def test_audit_cli_table_and_json(defective, run_cli, tmp_path):
    manifest, gold = defective
    proc = run_cli("audit", manifest, "--gold", gold, "--json", tmp_path / "a.json", check_rc=0)
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines() if line.strip() and line[0] != "-"}
    assert rows["answer_label_disagree"] == "3" and rows["gold_disagree"] == "2" and rows["unspeakable"] == "3"
    assert "dis1, dis2, dis3" in proc.stdout
    assert json.loads((tmp_path / "a.json").read_text())["gold_disagree"] == 2


def test_audit_of_clean_manifest(tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", [item(f"i{n}", conclusion=f"Claim {n}") for n in range(5)])
    report = audit_manifest(manifest)
    assert report.items == 5
    assert all(report.count(check) == 0 for check in report.ids)


def test_audit_of_unreadable_manifest_names_the_line(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "m.jsonl", [item("a"), "{oops"])
    proc = run_cli("audit", manifest, check_rc=1)
    assert proc.stderr.strip().startswith(f"error: {manifest}:2: malformed JSON")


def test_audit_names_a_wrong_typed_field(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "m.jsonl", [item("a"), item("b") | {"conclusion": 42}])
    proc = run_cli("audit", manifest, check_rc=1)
    assert proc.stderr.strip() == f"error: {manifest}:2: conclusion: missing or not a string (see `soundmind-data validate`)"


def test_id_lists_are_capped_but_counts_stay_exact(tmp_path):
    items = [item(f"d{n}", conclusion="Same claim", answer=None) for n in range(7)]
    report = audit_manifest(write_jsonl(tmp_path / "m.jsonl", items), ids_limit=3).to_json()
    assert report["answer_missing"] == 7 and report["ids"]["answer_missing"] == ["d0", "d1", "d2"]
    assert report["duplicates"] == 6 and report["ids"]["duplicates"] == ["d1", "d2", "d3"]
    assert report["duplicate_groups"] == [[f"d{n}" for n in range(7)]]
    assert schemas.first_error("audit-report", report) is None


def test_id_samples_count_the_ids_beyond_a_capped_list():
    capped = [f"d{n}" for n in range(8)]  # a report's list, capped at 8 of 12
    assert id_sample(capped, total=12) == "d0, d1, d2, d3, d4 (+7 more)"
    assert id_sample(capped) == "d0, d1, d2, d3, d4 (+3 more)"
    assert id_sample(["a", "b"]) == "a, b"


def test_a_gold_file_of_another_format_is_a_usage_error(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "m.jsonl", [item("a")])
    not_gold = write_jsonl(tmp_path / "soundmind.jsonl", [soundmind_line("a")])
    proc = run_cli("audit", manifest, "--gold", not_gold, check_rc=2)
    assert proc.stderr.strip() == (f"error: {not_gold}: no usable LogiQA 2.0 NLI line (line 1: label: expected a "
                                   "word, got 1); --gold takes LogiQA 2.0 NLI files")


def test_audit_and_synthesis_agree_on_what_is_unspeakable(tmp_path):
    """One definition: what is left unreadable after normalisation. Items audit flags are exactly the items
    synthesis refuses as unspeakable, whatever the normaliser reads (money, dates, logic, Greek) or cannot (CJK,
    "|", "✓", "₹")."""
    import shutil

    from soundmind_data.tts.driver import synthesize_manifest
    from soundmind_data.tts.synthesizer import SynthesisOptions

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    texts = {"money": "It costs €5bn, £3.50 or 50¢", "date": "On 2020-01-05 at 12:30", "logic": "¬P → Q ∧ R",
             "greek": "Γ ⊨ φ", "power": "x² ≥ 0", "cjk": "Tom is a cat，他是猫", "bar": "P(A|B) is high",
             "tick": "done ✓", "rupee": "costs 5 ₹", "plain": "Tom is an animal"}
    items = [item(name, conclusion=text, answer=None) for name, text in texts.items()]
    manifest = write_jsonl(tmp_path / "m.jsonl", items)
    flagged = audit_manifest(manifest).to_json()["ids"]["unspeakable"]
    summary = synthesize_manifest(manifest, tmp_path / "spoken", SynthesisOptions(backend="espeak"))
    refused = [json.loads(line)["id"] for line in summary.failures_file.read_text().splitlines()
               if "unspeakable after normalisation" in line]
    assert flagged == refused == ["cjk", "bar", "tick", "rupee"]
