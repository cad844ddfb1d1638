"""split and balance: leakage-free, stratified splits and per-split label balance, deterministic and streaming."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import item, read_jsonl, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import dumps
from soundmind_data.engines.splitting import parse_ratios, split_manifest
from soundmind_data.stages.balance import balance_manifest, parse_target, target_counts
from soundmind_data.text.textkey import text_key, triplet_key

# A small pool of triplets so that random manifests are full of duplicates and leaks; spelling variants of one
# triplet (case, punctuation, spacing) must count as the same triplet.
TRIPLETS = [
    ("All cats are animals", "Tom is a cat", "Tom is an animal"),
    ("all cats are animals.", "Tom is a  cat!", "TOM is an animal"),  # the same triplet, spelled differently
    ("All cats are animals", "Tom is a dog", "Tom is an animal"),  # same conclusion, different premise
    ("Every bird sings", "Kiwi is a bird", "Kiwi sings"),
    ("Every bird sings", "Kiwi is a bird", "Kiwi sings loudly"),
    ("No fish can walk", "Nemo is a fish", "Nemo cannot walk"),
] + [(f"Rule number {n} holds", f"Case {n} applies", f"Outcome {n} follows") for n in range(40)]

RATIOS = ["train=0.8,dev=0.1,test=0.1", "train=0.6,dev=0.2,test=0.2", "train=0.5,test=0.5", "a=0.34,b=0.33,c=0.33"]

manifests = st.lists(
    st.tuples(st.integers(0, len(TRIPLETS) - 1), st.integers(0, 1), st.sampled_from(["train", "dev", "test", "new"])),
    min_size=1, max_size=80,
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_items(rows) -> list[dict]:
    return [item(f"it-{n:03d}", split=split, major=TRIPLETS[t][0], minor=TRIPLETS[t][1], conclusion=TRIPLETS[t][2],
                 label=label) for n, (t, label, split) in enumerate(rows)]


def write_items(path: Path, items: list[dict], compact: bool = True) -> Path:
    """Compact lines as the toolkit writes them, or json.dumps's spaced layout (which must work as well)."""
    return write_jsonl(path, [line_of(i) for i in items] if compact else items)


def line_of(record: dict) -> str:
    """The record as the toolkit writes it, without the newline."""
    return dumps(record).decode("utf-8").rstrip("\n")


def group_key(record: dict, group: str) -> int:
    return triplet_key(record) if group == "triplet" else text_key(record["conclusion"])


# ---------------------------------------------------------------------------------------------------- split
@SETTINGS
@given(rows=manifests, ratios=st.sampled_from(RATIOS), seed=st.integers(0, 2**32), group=st.sampled_from(["triplet", "conclusion"]),
       keep_existing=st.booleans(), compact=st.booleans())
def test_split_keeps_groups_together_and_changes_only_splits(rows, ratios, seed, group, keep_existing, compact):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        items = make_items(rows)
        source = write_items(folder / "items.jsonl", items, compact)
        report = split_manifest(source, out=folder / "a.jsonl", ratios=parse_ratios(ratios), seed=seed, group=group,
                                keep_existing=keep_existing)
        split_manifest(source, out=folder / "b.jsonl", ratios=parse_ratios(ratios), seed=seed, group=group,
                       keep_existing=keep_existing)
        assert (folder / "a.jsonl").read_bytes() == (folder / "b.jsonl").read_bytes()  # deterministic
        out = read_jsonl(folder / "a.jsonl")

    names = list(parse_ratios(ratios))
    assert [{**o, "split": None} for o in out] == [{**i, "split": None} for i in items]  # only splits change
    splits_of_group = defaultdict(set)
    for record in out:
        assert record["split"] in names
        splits_of_group[group_key(record, group)].add(record["split"])
    assert all(len(splits) == 1 for splits in splits_of_group.values())  # no group in two splits

    if keep_existing:  # items of a group that sat in one named split only stay there
        input_splits = defaultdict(set)
        for record in items:
            if record["split"] in names:
                input_splits[group_key(record, group)].add(record["split"])
        for before, after in zip(items, out):
            if input_splits[group_key(before, group)] == {before["split"]}:
                assert after["split"] == before["split"]
    assert report.after.to_json() == {name: {"0": sum(1 for o in out if o["split"] == name and o["label"] == 0),
                                   "1": sum(1 for o in out if o["split"] == name and o["label"] == 1)}
                            for name in names}
    assert schemas.errors("split-report", report.to_json()) == []


@SETTINGS
@given(labels=st.lists(st.integers(0, 1), min_size=1, max_size=60), ratios=st.sampled_from(RATIOS), seed=st.integers(0, 99))
def test_split_sizes_follow_the_ratios_within_each_label(labels, ratios, seed):
    """Distinct triplets (groups of one): each label's items are cut within one item of ratio x count."""
    with tempfile.TemporaryDirectory() as folder:
        items = [item(f"it-{n:03d}", major=f"Rule {n} holds", minor=f"Case {n}", conclusion=f"Outcome {n}", label=label)
                 for n, label in enumerate(labels)]
        source = write_items(Path(folder) / "items.jsonl", items)
        report = split_manifest(source, out=Path(folder) / "out.jsonl", ratios=parse_ratios(ratios), seed=seed)
    for label in (0, 1):
        total = sum(report.after[name][label] for name in report.after)
        cumulative, expected = 0, 0.0
        for name, ratio in parse_ratios(ratios).items():  # each cut point lands within one item of its target
            cumulative += report.after[name][label]
            expected += ratio * total
            assert abs(cumulative - expected) <= 1


def test_split_of_the_demo_sized_corpus_is_stratified(tmp_path):
    items = [item(f"demo-{n:03d}", major=f"Rule {n} holds", minor=f"Case {n}", conclusion=f"Outcome {n}",
                  label=0 if n < 11 else 1) for n in range(20)]
    source = write_items(tmp_path / "items.jsonl", items)
    report = split_manifest(source, out=tmp_path / "out.jsonl", ratios=parse_ratios("train=0.6,dev=0.2,test=0.2"), seed=0)
    assert report.before.to_json() == {"train": {"0": 11, "1": 9}}
    assert report.after.to_json() == {"train": {"0": 7, "1": 5}, "dev": {"0": 2, "1": 2}, "test": {"0": 2, "1": 2}}
    assert report.warnings == []


def test_split_depends_on_the_seed(tmp_path):
    items = [item(f"it-{n:03d}", major=f"Rule {n}", minor=f"Case {n}", conclusion=f"Outcome {n}", label=n % 2)
             for n in range(100)]
    source = write_items(tmp_path / "items.jsonl", items)
    outputs = set()
    for seed in (1, 2):
        split_manifest(source, out=tmp_path / "out.jsonl", ratios=parse_ratios("train=0.5,test=0.5"), seed=seed)
        outputs.add((tmp_path / "out.jsonl").read_bytes())
    assert len(outputs) == 2


def test_keep_existing_places_new_items_and_leaves_published_lines_untouched(tmp_path):
    published = [item(f"old-{n:03d}", major=f"Rule {n}", minor=f"Case {n}", conclusion=f"Outcome {n}", label=n % 2)
                 for n in range(40)]
    first = split_manifest(write_items(tmp_path / "v1.jsonl", published), out=tmp_path / "v1-split.jsonl",
                           ratios=parse_ratios("train=0.5,dev=0.25,test=0.25"), seed=3)
    assert first.placed == 40
    v1_lines = (tmp_path / "v1-split.jsonl").read_text().splitlines()
    test_item = next(r for r in read_jsonl(tmp_path / "v1-split.jsonl") if r["split"] == "test")
    contributed = [item("new-000", split="new", major=test_item["major_premise"].upper(),  # joins a test triplet
                        minor=test_item["minor_premise"], conclusion=test_item["conclusion"] + ".", label=1)]
    contributed += [item(f"new-{n:03d}", split="new", major=f"Fresh rule {n}", minor=f"Fresh case {n}",
                         conclusion=f"Fresh outcome {n}", label=n % 2) for n in range(1, 21)]
    with open(tmp_path / "v1-split.jsonl", "a", encoding="utf-8") as out:
        out.writelines(line_of(r) + "\n" for r in contributed)

    report = split_manifest(tmp_path / "v1-split.jsonl", out=tmp_path / "v2.jsonl",
                            ratios=parse_ratios("train=0.5,dev=0.25,test=0.25"), seed=99, keep_existing=True)
    v2_lines = (tmp_path / "v2.jsonl").read_text().splitlines()
    assert v2_lines[:40] == v1_lines  # published items: same bytes, same splits, whatever the seed
    v2 = read_jsonl(tmp_path / "v2.jsonl")
    assert v2[40]["split"] == "test"  # a new item repeating a test triplet joins it instead of leaking
    assert {r["split"] for r in v2[41:]} <= {"train", "dev", "test"}
    assert report.placed == 21 and report.moved_ids == []
    for name, ratio in {"train": 0.5, "dev": 0.25, "test": 0.25}.items():  # filled towards each ratio of all 61
        assert abs(report.after.total(name) - ratio * 61) <= 1


def test_keep_existing_closes_a_leak_towards_the_held_out_split(tmp_path):
    items = [item("a", split="train", label=1), item("b", split="test", label=1),
             item("c", split="dev", major="Other rule", label=0), item("d", split="train", major="Third rule", label=0)]
    report = split_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl",
                            ratios=parse_ratios("train=0.8,dev=0.1,test=0.1"), seed=0, keep_existing=True)
    assert [r["split"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["test", "test", "dev", "train"]
    assert report.moved_ids == ["a"] and report.leaks_fixed == 1


def test_group_conclusion_keeps_a_shared_conclusion_in_one_split(tmp_path):
    items = [item(f"it-{n:02d}", major=f"Premise {n}", minor=f"Fact {n}", conclusion="Tom is an animal", label=n % 2)
             for n in range(10)]
    items += [item(f"x-{n:02d}", major=f"Rule {n}", minor=f"Case {n}", conclusion=f"Outcome {n}", label=n % 2)
              for n in range(30)]
    source = write_items(tmp_path / "items.jsonl", items)
    split_manifest(source, out=tmp_path / "out.jsonl", ratios=parse_ratios("train=0.5,test=0.5"), seed=4,
                   group="conclusion")
    assert len({r["split"] for r in read_jsonl(tmp_path / "out.jsonl")[:10]}) == 1


# ------------------------------------------------------------------------------------------------- balance
@SETTINGS
@given(rows=manifests, strategy=st.sampled_from(["downsample", "upsample", "weights"]), seed=st.integers(0, 2**32),
       compact=st.booleans(), target=st.sampled_from(["1:1", "55:45", "3:7"]))
def test_balance_is_exact_per_split_without_duplicates(rows, strategy, seed, compact, target):
    items = make_items(rows)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = write_items(folder / "items.jsonl", items, compact)
        report = balance_manifest(source, out=folder / "a.jsonl", strategy=strategy, seed=seed, target=target)
        balance_manifest(source, out=folder / "b.jsonl", strategy=strategy, seed=seed, target=target)
        assert (folder / "a.jsonl").read_bytes() == (folder / "b.jsonl").read_bytes()  # deterministic
        again = balance_manifest(folder / "a.jsonl", out=folder / "c.jsonl", strategy=strategy, seed=seed,
                                 target=target)
        out = read_jsonl(folder / "a.jsonl")
        assert read_jsonl(folder / "c.jsonl") == out  # balancing twice is balancing once
        if compact:  # and byte for byte when lines are in the toolkit's own layout
            assert (folder / "c.jsonl").read_bytes() == (folder / "a.jsonl").read_bytes()
    assert again.after == report.after

    by_id = {i["id"]: i for i in items}
    originals = [o for o in out if "repeat_of" not in o]
    seen = set()
    for record in originals:  # no triplet twice in a split; original lines are the input's, in order
        key = (record["split"], triplet_key(record))
        assert key not in seen
        seen.add(key)
        assert {k: v for k, v in record.items() if k != "sample_weight"} == by_id[record["id"]]
    assert [o["id"] for o in originals] == [i["id"] for i in items if i["id"] in {o["id"] for o in originals}]

    shares = parse_target(target)
    removed = {i for group in report.duplicates for i in group["removed"]}
    first_of = {}
    for record in items:
        first_of.setdefault((record["split"], triplet_key(record)), record["id"])
    assert removed == {i["id"] for i in items} - set(first_of.values())  # exactly the later duplicates

    for split in {i["split"] for i in items}:
        members = [o for o in out if o["split"] == split]
        labels = Counter(o["label"] for o in members)
        deduplicated = Counter(by_id[i]["label"] for (s, _), i in first_of.items() if s == split)
        if len(deduplicated) < 2:  # one label only: left as it is, with a warning
            assert labels == deduplicated and any(repr(split) in w for w in report.warnings)
        elif strategy in ("downsample", "upsample"):
            shrink = strategy == "downsample"
            assert all(labels[n] <= deduplicated[n] if shrink else labels[n] >= deduplicated[n] for n in (0, 1))
            whole = [n for n in (0, 1) if labels[n] == deduplicated[n]]  # one label kept exactly, the other to ratio
            assert any(abs(labels[1 - n] - labels[n] * shares[1 - n] / shares[n]) <= Fraction(1, 2) for n in whole)
            if target == "1:1":
                assert labels[0] == labels[1] == (min if shrink else max)(deduplicated.values())
        else:
            assert labels == deduplicated
            weight_sums = [sum(o["sample_weight"] for o in members if o["label"] == label) for label in (0, 1)]
            assert weight_sums[0] / sum(weight_sums) == pytest.approx(float(shares[0]))
            assert sum(weight_sums) == pytest.approx(len(members))
    for record in out:
        if "repeat_of" in record:  # a repeat is its original under a new id, audio and all
            assert record["id"].startswith(record["repeat_of"] + ".rep")
            original = next(o for o in originals if o["id"] == record["repeat_of"])
            assert {**record, "id": None, "repeat_of": None} == {**original, "id": None, "repeat_of": None}
    assert len({o["id"] for o in out}) == len(out)
    assert schemas.errors("balance-report", report.to_json()) == []
    assert all(schemas.first_error("item", o) is None for o in out)


@SETTINGS
@given(majority=st.integers(2, 40), minority=st.integers(1, 20), added=st.integers(1, 10), seed=st.integers(0, 999))
def test_downsampling_after_adding_items_changes_little(majority, minority, added, seed):
    """Which items are dropped depends on a seeded hash of their id, not on position: adding k majority items changes
    at most k of the kept ones."""
    def rows(count, label, prefix):
        return [item(f"{prefix}-{n:03d}", major=f"{prefix} rule {n}", minor="case", conclusion=f"{prefix} {n}", label=label)
                for n in range(count)]
    minority_items = rows(minority, 1, "min")
    before_items = rows(majority + minority, 0, "maj") + minority_items
    after_items = before_items + rows(added, 0, "add")
    with tempfile.TemporaryDirectory() as folder:
        kept = []
        for name, items in (("before", before_items), ("after", after_items)):
            source = write_items(Path(folder) / f"{name}.jsonl", items)
            balance_manifest(source, out=Path(folder) / f"{name}-out.jsonl", strategy="downsample", seed=seed)
            kept.append({r["id"] for r in read_jsonl(Path(folder) / f"{name}-out.jsonl") if r["label"] == 0})
    assert len(kept[0]) == len(kept[1]) == minority
    assert len(kept[0] - kept[1]) <= added


def test_downsample_keeps_the_lowest_seeded_hashes(tmp_path):
    items = [item(f"it-{n:02d}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=0) for n in range(10)]
    items += [item(f"en-{n:02d}", major=f"Other {n}", conclusion=f"Result {n}", label=1) for n in range(3)]
    balance_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl", strategy="downsample", seed=7)
    kept = {r["id"] for r in read_jsonl(tmp_path / "out.jsonl") if r["label"] == 0}
    seed_key = hashlib.blake2b(b"7").digest()  # the documented scheme: blake2b of the id, keyed by the seed
    ranked = sorted((f"it-{n:02d}" for n in range(10)),
                    key=lambda i: hashlib.blake2b(i.encode(), digest_size=8, key=seed_key).digest())
    assert kept == set(ranked[:3])


def test_upsample_repeats_by_reference_and_never_copies_audio(tmp_path):
    audio = {"path": "audio/q-0.wav", "sha256": "0" * 64, "sample_rate": 16000, "duration_s": 1.5}
    items = [item(f"ne-{n}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=0) for n in range(5)]
    items += [item("en-0", major="Other", conclusion="Result", label=1, question_audio=audio)]
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "q-0.wav").write_bytes(b"RIFF")
    report = balance_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl",
                              strategy="upsample", seed=0)
    out = read_jsonl(tmp_path / "out.jsonl")
    repeats = [r for r in out if r.get("repeat_of") == "en-0"]
    assert [r["id"] for r in repeats] == ["en-0.rep1", "en-0.rep2", "en-0.rep3", "en-0.rep4"]
    assert all(r["question_audio"] == audio for r in repeats)
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["q-0.wav"]
    assert report.repeated == {"train": 4} and report.after.to_json() == {"train": {"0": 5, "1": 5}}


def test_weights_give_each_label_its_target_share(tmp_path):
    items = [item(f"ne-{n}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=0) for n in range(7)]
    items += [item(f"en-{n}", major=f"Other {n}", conclusion=f"Result {n}", label=1) for n in range(5)]
    source = write_items(tmp_path / "items.jsonl", items)
    report = balance_manifest(source, out=tmp_path / "out.jsonl", strategy="weights", target="55:45")
    weights = {r["id"]: r["sample_weight"] for r in read_jsonl(tmp_path / "out.jsonl")}
    assert weights["ne-0"] == pytest.approx(0.55 * 12 / 7) and weights["en-0"] == pytest.approx(0.45 * 12 / 5)
    assert report.weights["train"] == {"0": weights["ne-0"], "1": weights["en-0"]}


@pytest.mark.parametrize("target", ["1:1", "55:45", "3:7", "1:2"])
@pytest.mark.parametrize("grow", [False, True])
def test_target_counts_are_a_fixed_point(target, grow):
    shares = parse_target(target)
    for counts in ((a, b) for a in range(60) for b in range(60)):
        balanced = target_counts(counts, shares, grow=grow)
        assert all(balanced[n] >= counts[n] if grow else balanced[n] <= counts[n] for n in (0, 1))
        assert target_counts(balanced, shares, grow=grow) == balanced, (counts, balanced)


def test_target_ratio_other_than_one_to_one(tmp_path):
    items = [item(f"ne-{n}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=0) for n in range(50)]
    items += [item(f"en-{n}", major=f"Other {n}", conclusion=f"Result {n}", label=1) for n in range(50)]
    report = balance_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl",
                              strategy="downsample", target="3:2")
    assert report.after.to_json() == {"train": {"0": 50, "1": 33}}  # 50 : 33.3, never more than there is


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, message", [
    ("train=0.8,dev=0.1", "sum to 0.9, not 1"),
    ("train=0.9,dev=0.1,test=0", "test needs a ratio above 0"),
    ("train=0.5,train=0.5", "given twice"),
    ("train=half,dev=0.5", "is not a number"),
    ("train:1", "expected NAME=FRACTION"),
])
def test_bad_ratios_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_ratios(text)


@pytest.mark.parametrize("text", ["1", "1:0", "a:b", "1:2:3", "-1:1"])
def test_bad_targets_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_target(text)


GOOD = {"id": "a", "split": "train", "major_premise": "x", "minor_premise": "y", "conclusion": "z", "label": 1}


@pytest.mark.parametrize("line, message", [
    ('{"id":"a","split":"train"', "items.jsonl:2: malformed JSON"),
    (line_of({k: v for k, v in GOOD.items() if k != "label"}), "items.jsonl:2: label: missing"),
    (line_of({**GOOD, "label": True}), "items.jsonl:2: label: expected 0 or 1"),
    (line_of({**GOOD, "major_premise": 7}), "items.jsonl:2: major_premise: expected a string"),
    (line_of({**GOOD, "id": 5}), "items.jsonl:2: id: expected a string"),
    (line_of({**GOOD, "split": None}), "items.jsonl:2: split: expected a string"),
    # ids and splits become file and folder names in later stages, so the two stages that read only a few fields
    # still refuse what the item schema refuses
    (line_of({**GOOD, "id": "a\n"}), r"items.jsonl:2: id: unsafe id 'a\\n'"),
    (line_of({**GOOD, "id": "../a"}), "items.jsonl:2: id: unsafe id '../a'"),
    (line_of({**GOOD, "split": "train\n"}), r"items.jsonl:2: split: unsafe split 'train\\n'"),
    (line_of({**GOOD, "split": "dev-2"}), "items.jsonl:2: split: unsafe split 'dev-2'"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, message):
    source = write_jsonl(tmp_path / "items.jsonl", [line_of(item("ok")), line])
    for run in (lambda: split_manifest(source, out=tmp_path / "out.jsonl", ratios={"train": 1.0}),
                lambda: balance_manifest(source, out=tmp_path / "out.jsonl", strategy="weights")):
        with pytest.raises(DataError, match=message):
            run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.jsonl"]  # no output, no temp file left


def test_cli_split_and_balance_print_tables_and_write_reports(tmp_path, run_cli):
    items = [item(f"it-{n:02d}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=int(n >= 11)) for n in range(20)]
    items.append(item("dup", major="Rule 3", conclusion="outcome 3!", label=0))
    write_items(tmp_path / "items.jsonl", items)
    proc = run_cli("split", tmp_path / "items.jsonl", "--ratios", "train=0.6,dev=0.2,test=0.2", "--seed", "0",
                   "--out", tmp_path / "split.jsonl", "--json", tmp_path / "split.json", check_rc=0)
    assert "not-entailed before" in proc.stdout and "split: 21 items in 20 triplet groups" in proc.stderr
    assert schemas.errors("split-report", json.loads((tmp_path / "split.json").read_text())) == []
    proc = run_cli("balance", tmp_path / "split.jsonl", "--strategy", "downsample", "--seed", "0",
                   "--out", tmp_path / "balanced.jsonl", "--json", tmp_path / "balance.json", check_rc=0)
    report = json.loads((tmp_path / "balance.json").read_text())
    assert schemas.errors("balance-report", report) == []
    assert [group["removed"] for group in report["duplicates"]] == [["dup"]]
    assert "duplicates removed" in proc.stdout and "1 duplicates removed" in proc.stderr
    for counts in report["after"].values():
        assert counts["0"] == counts["1"]


@pytest.mark.parametrize("args, rc, message", [
    (["split", "--ratios", "train=0.7,test=0.2"], 2, "error: --ratios 'train=0.7,test=0.2': ratios sum to 0.9, not 1"),
    (["balance", "--strategy", "shuffle"], 2, "error: unknown strategy 'shuffle'"),
    (["balance", "--strategy", "upsample", "--target", "1:0"], 2, "error: --target '1:0'"),
    (["split", "--group", "premise"], 2, "error: unknown grouping 'premise'"),
])
def test_cli_bad_options_exit_2_with_one_line(tmp_path, run_cli, args, rc, message):
    write_items(tmp_path / "items.jsonl", [item("a")])
    proc = run_cli(args[0], tmp_path / "items.jsonl", "--out", tmp_path / "out.jsonl", *args[1:], check_rc=rc)
    assert proc.stderr.strip() == message or proc.stderr.strip().startswith(message)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_warns_about_empty_and_one_label_splits(tmp_path, run_cli):
    write_items(tmp_path / "items.jsonl", [item("a", label=1), item("b", major="Other rule", label=1)])
    proc = run_cli("split", tmp_path / "items.jsonl", "--out", tmp_path / "split.jsonl", check_rc=0)
    assert "warning: split 'dev' got no items" in proc.stderr and "warning: split 'train' has only entailed items" in proc.stderr
    proc = run_cli("balance", tmp_path / "split.jsonl", "--strategy", "downsample", "--out", tmp_path / "out.jsonl", check_rc=0)
    assert "warning: split 'train' has only entailed items; left unbalanced" in proc.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "split.jsonl").read_bytes()


def test_cli_empty_manifest_exits_1(tmp_path, run_cli):
    (tmp_path / "items.jsonl").write_text("\n")
    proc = run_cli("balance", tmp_path / "items.jsonl", "--strategy", "weights", "--out", tmp_path / "out.jsonl", check_rc=1)
    assert proc.stderr.strip().endswith("items.jsonl: no items")


def test_upsample_refuses_a_repeat_id_longer_than_the_schema_allows(tmp_path):
    long_id = "x" * 62
    items = [item(long_id, label=1), item("n1", major="Rule 1", label=0), item("n2", major="Rule 2", label=0)]
    with pytest.raises(DataError, match="would exceed 64 characters"):
        balance_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl", strategy="upsample")
    assert not (tmp_path / "out.jsonl").exists()


def test_upsample_repeat_ids_skip_ids_that_are_taken(tmp_path):
    """Ids `n.rep1` and `n.rep2` already exist (e.g. from an earlier balance), so the repeats of `n` take the next
    free numbers; the second `n` (a repeated id, in another split) must not get the same repeat ids either."""
    items = [item("n", major="Rule 0", label=1)]
    items += [item(item_id, major=f"Rule {k}", label=0) for k, item_id in enumerate(["n.rep1", "n.rep2", "z"], 1)]
    items += [item("n", split="test", major="Rule 5", label=1), item("y", split="test", major="Rule 6", label=0),
              item("x", split="test", major="Rule 7", label=0)]
    balance_manifest(write_items(tmp_path / "items.jsonl", items), out=tmp_path / "out.jsonl", strategy="upsample")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out if r.get("repeat_of") == "n"] == ["n.rep3", "n.rep4", "n.rep5"]
    assert Counter(r["id"] for r in out)["n"] == 2 and len({r["id"] for r in out}) == len(out) - 1  # only n twice


def test_blank_lines_and_crlf_endings_keep_the_two_passes_aligned(tmp_path):
    items = [item(f"it-{n}", major=f"Rule {n}", conclusion=f"Outcome {n}", label=n % 2) for n in range(6)]
    lines = [line_of(i) for i in items]
    (tmp_path / "items.jsonl").write_bytes(
        ("\n \t\n" + lines[0] + "\r\n\n" + "\r\n".join(lines[1:]) + "\r\n   \n").encode("utf-8"))
    split_manifest(tmp_path / "items.jsonl", out=tmp_path / "split.jsonl", ratios=parse_ratios("a=0.5,b=0.5"), seed=0)
    out = read_jsonl(tmp_path / "split.jsonl")
    assert [{**o, "split": None} for o in out] == [{**i, "split": None} for i in items]
    (tmp_path / "last.jsonl").write_text("\n".join(lines))  # no newline after the last line
    balance_manifest(tmp_path / "last.jsonl", out=tmp_path / "out.jsonl", strategy="weights")
    assert [o["id"] for o in read_jsonl(tmp_path / "out.jsonl")] == [i["id"] for i in items]
