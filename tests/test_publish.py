"""publish (Hub-ready parquet + card + pre-push check), the resumable upload against a local fake Hub, and export."""

from __future__ import annotations

import io

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile

from factories import item, read_jsonl, write_jsonl
from fakehub import FakeHub
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError
from soundmind_data.core.labels import parse_label
from soundmind_data.hub.card import read_card_metadata
from soundmind_data.hub.folder.build import build_folder
from soundmind_data.hub.folder.rows import features
from soundmind_data.stages.export import export

TOKEN = "hf_fake-test-secret-0123456789abcdef"  # not a real token; checked never to leak
SAMPLE_RATE = 16000
SPLITS = {"train": 6, "test": 3}


def write_audio(path: Path, seconds: float, freq: float, fmt: str) -> dict:
    """A tone with a little noise, as FLAC or 16-bit WAV, described the way synthesis describes its audio."""
    rng = np.random.default_rng(int(freq))
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    samples = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    soundfile.write(path, samples.astype("float32"), SAMPLE_RATE, format=fmt, subtype="PCM_16")
    return {"path": f"audio/{path.name}", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "sample_rate": SAMPLE_RATE, "channels": 1, "duration_s": len(t) / SAMPLE_RATE,
            "loudness_lufs": -20.0, "wer": 0.05}


def build_manifest(root: Path, *, unanswered: bool = False) -> Path:
    """Items over two splits: FLAC questions, WAV answers (re-encoded on publish), one item whose answer has no audio
    (with `unanswered`, no answer at all: a finding the audit flags). Its audio names no voice, as before the speaker
    plan (tests/test_publish_voices.py has voices)."""
    (root / "audio").mkdir(parents=True)
    records, n = [], 0
    for split, count in SPLITS.items():
        for k in range(count):
            label = n % 2
            record = item(f"{split}-{k:03d}", split=split, label=label, major=f"Every member {n} pays the fee",
                          answer=None if n == 4 and unanswered else "default",
                          source={"dataset": "logiqa2-nli", "file": "/home/someone/LogiQA2.0/dev.txt", "line": n + 1,
                                  "gold_label": label},
                          tts={"backend": "piper", "voice": "en_US-joe-medium", "model_md5": "0" * 32,
                               "license": "CC0-1.0", "toolkit_version": "0.1.0"})
            record["question_audio"] = write_audio(root / "audio" / f"{record['id']}-q.flac", 0.3 + 0.05 * n,
                                                   200 + 20 * n, "FLAC")
            if n != 4:
                record["answer_audio"] = write_audio(root / "audio" / f"{record['id']}-a.wav", 0.25, 700 + n, "WAV")
            records.append(record)
            n += 1
    return write_jsonl(root / "manifest.jsonl", records)


@pytest.fixture
def manifest(tmp_path) -> Path:
    return build_manifest(tmp_path / "synth")


@pytest.fixture
def hub_env(tmp_path):
    """Environment for a CLI process talking to a fake Hub: no real login, no Xet, our token."""
    home = tmp_path / "hf-home"
    home.mkdir()
    return {"HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_DATASETS_CACHE": str(tmp_path / "ds-cache")}


def source_samples(manifest: Path, record: dict, key: str) -> np.ndarray:
    samples, rate = soundfile.read(manifest.parent / record[key]["path"], dtype="int16")
    assert rate == SAMPLE_RATE
    return samples


def assert_no_token(tmp_path: Path, *outputs: str) -> None:
    for text in outputs:
        assert TOKEN not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


# ------------------------------------------------------------------------------------------------ local folder
def test_local_publish_loads_back_with_datasets(manifest, tmp_path, run_cli, hub_env):
    import datasets

    folder = tmp_path / "hub"
    proc = run_cli("publish", manifest, "--local-dir", folder, "--max-shard-size", "40KB", env=hub_env, check_rc=0)
    assert "pre-push check ok" in proc.stderr
    shards = sorted(p.name for p in (folder / "data").iterdir())
    train_shards = [name for name in shards if name.startswith("train-")]
    assert len(train_shards) > 1, shards  # 40KB forces several shards, named i-of-n
    assert train_shards == [f"train-{i:05d}-of-{len(train_shards):05d}.parquet" for i in range(len(train_shards))]
    for name in shards:
        parquet = pq.ParquetFile(folder / "data" / name)
        assert b"huggingface" in parquet.schema_arrow.metadata
        assert all(parquet.metadata.row_group(i).num_rows <= 100 for i in range(parquet.num_row_groups))
        for row in parquet.read().to_pylist():
            row["question_audio"]["bytes"] = "<flac>"
            if row["answer_audio"]:
                row["answer_audio"]["bytes"] = "<flac>"
            assert schemas.first_error("published-row", row) is None
            assert row["source_file"] == "dev.txt"  # never the builder's local path

    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "ds-cache"))
    assert {split: len(loaded[split]) for split in loaded} == SPLITS
    assert loaded["train"].features == features()
    assert loaded["train"].features["voice"] == datasets.Value("string")
    assert isinstance(loaded["train"].features["question_audio"], datasets.Audio)
    assert loaded["train"].features["label"].names == ["not-entailed", "entailed"]
    records = {record["id"]: record for record in read_jsonl(manifest)}
    for split in SPLITS:
        for row in loaded[split]:
            record = records[row["id"]]
            assert row["label"] == record["label"] and row["question_text"] == record["question_text"]
            assert row["voice"] == "piper:en_US-joe-medium"  # audio without a voice: the item's tts BACKEND:VOICE
            decoded = row["question_audio"].get_all_samples()
            assert decoded.sample_rate == SAMPLE_RATE
            # FLAC is lossless: the decoded samples are the source samples
            expected = source_samples(manifest, record, "question_audio") / 32768
            np.testing.assert_allclose(decoded.data.numpy()[0], expected, atol=1e-6)
            if "answer_audio" in record:  # WAV re-encoded as FLAC, still lossless
                answer = row["answer_audio"].get_all_samples().data.numpy()[0]
                np.testing.assert_allclose(answer, source_samples(manifest, record, "answer_audio") / 32768, atol=1e-6)
            else:
                assert row["answer_audio"] is None and row["answer_text"] == record["answer_text"]


def test_card_yaml_parses_and_matches_the_data(manifest, tmp_path, run_cli, hub_env):
    folder = tmp_path / "hub"
    run_cli("publish", manifest, "--local-dir", folder, "--repo-id", "my-org/spoken-logic", "--dry-run",
            env=hub_env, check_rc=0)
    card = (folder / "README.md").read_text(encoding="utf-8")
    meta = read_card_metadata(card)
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["language"] == ["en"] and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*"} for s in SPLITS]
    info = meta["dataset_info"]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == SPLITS
    assert info["features"] == features()._to_yaml_list()
    assert info["download_size"] == sum(p.stat().st_size for p in (folder / "data").iterdir())
    # the readable part: split x label table, licences, the repo named, how it was built
    assert "| train | 3 | 3 | 6 |" in card and "| test | 2 | 1 | 3 |" in card
    assert "CC BY-NC-SA 4.0" in card
    assert "| voice | engine | voice licence | train | test |\n|---|---|---|---|---|\n" \
           "| piper:en_US-joe-medium | piper | CC0-1.0 | 6 | 3 |\n\n" in card
    assert "load_dataset('my-org/spoken-logic')" in card
    assert f"soundmind-data publish {manifest}" in card
    assert "| answer missing | 0 |" in card  # the audit of what is published (flagged items are refused)


def test_shards_are_reproducible_and_a_bad_sha256_is_refused(manifest, tmp_path, run_cli, hub_env):
    first, second = tmp_path / "one", tmp_path / "two"
    run_cli("publish", manifest, "--local-dir", first, env=hub_env, check_rc=0)
    run_cli("publish", manifest, "--local-dir", second, env=hub_env, check_rc=0)
    for shard in (first / "data").iterdir():
        assert shard.read_bytes() == (second / "data" / shard.name).read_bytes()  # republishing re-uploads nothing

    records = read_jsonl(manifest)
    tampered = manifest.parent / records[2]["question_audio"]["path"]
    tampered.write_bytes(tampered.read_bytes()[:-10])
    before = {p.name: p.read_bytes() for p in (first / "data").iterdir()}
    proc = run_cli("publish", manifest, "--local-dir", first, env=hub_env, check_rc=1)
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {manifest}:3: question_audio.sha256:")
    assert "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in (first / "data").iterdir()} == before  # the old folder is intact
    assert not (first / ".building").exists()


def _build_all(manifest: Path, out: Path) -> None:
    """Publish and both exports of one manifest: each must refuse the same bad items the same way."""
    build_folder(manifest, out / "hub")
    export(manifest, fmt="soundmind-hub", out=out / "folders")
    export(manifest, fmt="verl", out=out / "verl")


@pytest.mark.parametrize("field, value, message", [
    ("split", "../evil", "split: '../evil' does not match"),
    ("split", "dev-hard", "split: 'dev-hard' does not match"),  # `datasets` refuses split names with "-"
    ("id", "../../evil", "id: '../../evil' does not match"),
    ("id", "..", "id: '..' should not be valid"),
    ("label", "yes", "label: 'yes' is not one of [0, 1]"),
    ("label", 2, "label: 2 is not one of [0, 1]"),
    ("id", "train-000", "id: duplicate id 'train-000'"),  # line 2 repeats line 1's id
])
def test_malformed_items_are_named_by_line_and_field(manifest, tmp_path, field, value, message):
    broken = read_jsonl(manifest)
    broken[1][field] = value
    write_jsonl(manifest, broken)
    builders = [lambda out: build_folder(manifest, out)] if "duplicate" in message else []  # publish: its own check
    builders += [lambda out: export(manifest, fmt="soundmind-hub", out=out),
                 lambda out: export(manifest, fmt="verl", out=out)]
    for number, build in enumerate(builders):
        out = tmp_path / "deep" / "er" / f"out{number}"
        with pytest.raises(DataError, match=f"^{manifest}:2: {message}".replace("[", r"\[").replace("(", r"\(")):
            build(out)
        assert not [p for p in (tmp_path / "deep").rglob("*") if "evil" in p.name]  # nothing written outside OUT
        assert not (out / "data").exists() and not (out / "train").exists() and not (out / "train.parquet").exists()


def test_audio_that_matches_its_sha256_but_is_not_audio_is_a_one_line_error(manifest, tmp_path, run_cli, hub_env):
    records = read_jsonl(manifest)
    junk = manifest.parent / records[1]["answer_audio"]["path"]  # a WAV answer: re-encoded, so decoded
    junk.write_bytes(b"RIFF" + bytes(100))
    records[1]["answer_audio"]["sha256"] = hashlib.sha256(junk.read_bytes()).hexdigest()
    write_jsonl(manifest, records)
    for command in (("publish", manifest, "--local-dir", tmp_path / "hub"),
                    ("export", manifest, "--format", "soundmind-hub", "--out", tmp_path / "folders"),
                    ("export", manifest, "--format", "verl", "--out", tmp_path / "verl")):
        proc = run_cli(*command, env=hub_env, check_rc=1)
        assert proc.stderr.strip().splitlines()[-1].startswith(
            f"error: {manifest}:2: answer_audio.path: does not decode as audio")
        assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2(manifest, tmp_path, run_cli, hub_env):
    assert "--local-dir" in run_cli("publish", manifest, env=hub_env, check_rc=2).stderr
    assert "invalid repo id" in run_cli("publish", manifest, "--repo-id", "bad id!", env=hub_env, check_rc=2).stderr
    proc = run_cli("publish", manifest, "--local-dir", tmp_path / "x", "--max-shard-size", "lots", env=hub_env,
                   check_rc=2)
    assert "--max-shard-size" in proc.stderr
    proc = run_cli("export", manifest, "--format", "zip", "--out", tmp_path / "x", check_rc=2)
    assert "unknown format" in proc.stderr


# --------------------------------------------------------------------------------------------------- uploading
def test_upload_interrupted_then_resumed_then_unchanged(manifest, tmp_path, run_cli, hub_env):
    folder = tmp_path / "hub"
    args = ("publish", manifest, "--repo-id", "my-org/spoken-logic", "--local-dir", folder, "--max-shard-size", "40KB")
    with FakeHub({TOKEN: ("alice", ["my-org"])}, fail_uploads_after=2) as hub:
        env = {**hub_env, "HF_ENDPOINT": hub.url}
        failed = run_cli(*args, env=env, check_rc=1)
        assert "re-run the same command to resume" in failed.stderr and "Traceback" not in failed.stderr
        # what was built and checked is said before the upload starts, so a failed upload does not hide it
        assert failed.stderr.index("pre-push check ok") < failed.stderr.index("error: ")
        assert len(hub.uploads) == 2 and hub.repos["my-org/spoken-logic"].commits == []
        shards = sorted(p for p in (folder / "data").iterdir())
        assert len(shards) > 3

        hub.heal()
        resumed = run_cli(*args, env=env, check_rc=0)
        # only what was missing went over the wire: every shard exactly once over both runs
        assert len(hub.uploads) == len(shards) == len(set(hub.uploads))
        assert hub.files("my-org/spoken-logic") == {
            **{f"data/{p.name}": p.read_bytes() for p in shards}, "README.md": (folder / "README.md").read_bytes()}

        unchanged = run_cli(*args, env=env, check_rc=0)
        assert "already up to date" in unchanged.stderr
        assert len(hub.uploads) == len(shards) and len(hub.repos["my-org/spoken-logic"].commits) == 1

        # change one answer text: only its shard (and the card) is uploaded again
        records = read_jsonl(manifest)
        records[-1]["answer_text"] = records[-1]["answer_text"].replace("Nothing", "Nought")
        write_jsonl(manifest, records)
        changed = run_cli(*args, env=env, check_rc=0)
        last_commit = hub.repos["my-org/spoken-logic"].commits[-1]
        last_test_shard = [p.name for p in shards if p.name.startswith("test-")][-1]
        assert sorted(last_commit["paths"]) == ["README.md", f"data/{last_test_shard}"]
        assert len(hub.uploads) == len(shards) + 1
        assert not any(TOKEN.encode() in body for body in hub.bodies)
    assert_no_token(tmp_path, failed.stdout, failed.stderr, resumed.stdout, resumed.stderr, unchanged.stdout,
                    unchanged.stderr, changed.stdout, changed.stderr)


def test_upload_killed_mid_upload_then_resumed(manifest, tmp_path, run_cli, hub_env):
    folder = tmp_path / "hub"
    args = ["publish", str(manifest), "--repo-id", "my-org/k", "--local-dir", str(folder), "--max-shard-size", "40KB"]
    with FakeHub({TOKEN: ("alice", ["my-org"])}, hold_uploads_after=1) as hub:
        env = {**os.environ, **hub_env, "HF_ENDPOINT": hub.url}
        process = subprocess.Popen([sys.executable, "-m", "soundmind_data", *args], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert hub.held.wait(timeout=120), "the upload never started"
        finally:
            process.kill()  # SIGKILL: no cleanup code runs, as with a crash or a lost machine
            process.wait()
        hub.heal()
        assert len(hub.uploads) == 1 and hub.repos["my-org/k"].commits == []
        resumed = run_cli(*args, env=hub_env | {"HF_ENDPOINT": hub.url}, check_rc=0)
        shards = sorted((folder / "data").iterdir())
        assert len(hub.uploads) == len(shards) == len(set(hub.uploads))  # the first shard was not sent again
        assert {p: c for p, c in hub.files("my-org/k").items() if p.startswith("data/")} == {
            f"data/{p.name}": p.read_bytes() for p in shards}
    assert_no_token(tmp_path, resumed.stdout, resumed.stderr)


def test_hub_errors_are_one_line_and_never_show_the_token(manifest, tmp_path, run_cli, hub_env):
    args = ("publish", manifest, "--local-dir", tmp_path / "hub")
    outputs = []
    with FakeHub({TOKEN: ("alice", ["my-org"])}) as hub:
        env = {**hub_env, "HF_ENDPOINT": hub.url}
        no_token = {k: v for k, v in env.items() if k != "HF_TOKEN"}
        cases = [
            (no_token, "my-org/a", 2, "no Hugging Face token"),
            ({**env, "HF_TOKEN": "hf_wrong"}, "my-org/a", 2, "token was rejected (401)"),
            (env, "someone-else/a", 2, "no permission to create or write someone-else/a (403)"),
        ]
        for case_env, repo_id, code, message in cases:
            proc = run_cli(*args, "--repo-id", repo_id, env=case_env, check_rc=code)
            assert proc.stderr.strip() == f"error: {message}" or message in proc.stderr.strip().splitlines()[-1]
            outputs += [proc.stdout, proc.stderr]
        assert hub.repos == {}
    with socket.socket() as probe:  # a port nobody listens on: the network is down
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    proc = run_cli(*args, "--repo-id", "my-org/a", env={**hub_env, "HF_ENDPOINT": closed}, check_rc=1)
    assert "cannot reach the Hub (ConnectError" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "hub").exists()  # failed before building anything
    assert_no_token(tmp_path, *outputs, proc.stdout, proc.stderr)


def test_dry_run_contacts_nothing_and_revision_goes_to_a_branch(manifest, tmp_path, run_cli, hub_env):
    with FakeHub({TOKEN: ("alice", ["my-org"])}) as hub:
        env = {**hub_env, "HF_ENDPOINT": hub.url}
        run_cli("publish", manifest, "--repo-id", "my-org/s", "--dry-run", env=env, check_rc=0)
        assert hub.requests == []
        assert not list(manifest.parent.glob(".publish~*"))  # the staging folder is cleaned up
        run_cli("publish", manifest, "--repo-id", "my-org/s", "--revision", "v2", "--private", env=env, check_rc=0)
        repo = hub.repos["my-org/s"]
        assert repo.private and repo.branches["main"] == {}
        assert "README.md" in repo.branches["v2"] and any(p.startswith("data/train-") for p in repo.branches["v2"])


# ------------------------------------------------------------------------------------------------------ exports
# soundmind-hub (the SoundMind release's layout): tests/test_soundmind_hub.py
@pytest.mark.parametrize("modality", ["audio", "text", "both"])
def test_export_verl_round_trips(manifest, tmp_path, modality, run_cli):
    out = tmp_path / "verl"
    run_cli("export", manifest, "--format", "verl", "--modality", modality, "--out", out, check_rc=0)
    records = {record["id"]: record for record in read_jsonl(manifest)}
    for split, count in SPLITS.items():
        rows = pq.read_table(out / f"{split}.parquet").to_pylist()
        assert len(rows) == count
        for index, row in enumerate(rows):
            assert schemas.first_error("verl-row", row) is None
            record = records[row["extra_info"]["id"]]
            assert parse_label(row["reward_model"]["ground_truth"]) == record["label"]
            assert row["extra_info"]["index"] == index
            user = next(message["content"] for message in row["prompt"] if message["role"] == "user")
            assert (record["question_text"] in user) == (modality != "audio")
            assert user.count("<audio>") == len(row["audios"] or [])  # verl pairs placeholders with entries
            if modality == "text":
                assert row["audios"] is None and row["extra_info"]["answer_audio"] is None
            else:
                decoded, _ = soundfile.read(io.BytesIO(row["audios"][0]["bytes"]), dtype="int16")
                np.testing.assert_array_equal(decoded, source_samples(manifest, record, "question_audio"))
                if "answer_audio" in record:
                    decoded, _ = soundfile.read(out / row["extra_info"]["answer_audio"], dtype="int16")
                    np.testing.assert_array_equal(decoded, source_samples(manifest, record, "answer_audio"))
                else:
                    assert row["extra_info"]["answer_audio"] is None
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == [".soundmind-data-export"]
    if modality == "text":
        assert not (out / "audio").exists()


# ------------------------------------------------------------------------------------ pipeline run log and plots
def _run_log_entry(stage: str, status: str, seconds: float, command: str) -> dict:
    return {"time": "2026-01-01T00:00:00Z", "toolkit_version": "0.1.0", "stage": stage, "command": command,
            "status": status, "exit_code": 0, "duration_s": seconds, "items_in": 9, "items_out": 9, "output": None}


def test_card_cites_the_run_log_beside_the_manifest(manifest, tmp_path):
    from soundmind_data.stages.publish import prepare

    plain, _ = prepare(manifest, tmp_path / "plain", repo_id=None, command="soundmind-data publish m")
    plain_card = (tmp_path / "plain" / "README.md").read_text(encoding="utf-8")
    assert "run-log.jsonl" not in plain_card and "## Plots" not in plain_card  # no run log, no plots: as before

    workdir = str(manifest.parent.resolve())
    write_jsonl(manifest.parent / "run-log.jsonl", [
        _run_log_entry("ingest", "ran", 1.25, "soundmind-data ingest src.jsonl --out " + workdir + "/01-ingest.jsonl"),
        _run_log_entry("synthesize", "ran", 40.0, "soundmind-data synthesize old"),
        _run_log_entry("synthesize", "ran", 61.5, f"soundmind-data synthesize {workdir}/01-ingest.jsonl"),
        _run_log_entry("synthesize", "skipped", 0.0, "soundmind-data synthesize skipped"),
    ])
    build, check = prepare(manifest, tmp_path / "hub", repo_id=None, command="soundmind-data publish m")
    assert check.ok
    card = (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
    built = card[card.index("## How it was built"):card.index("## How to load")]
    assert "| ingest | `soundmind-data ingest src.jsonl --out $WORKDIR/01-ingest.jsonl` | 1.2 | 9 | 9 | 0.1.0 |" in built
    # the latest run of each stage; skipped entries are not runs
    assert "| synthesize | `soundmind-data synthesize $WORKDIR/01-ingest.jsonl` | 61.5 |" in built
    assert "old" not in built and "skipped" not in built and workdir not in card

    (manifest.parent / "run-log.jsonl").write_text('{"stage": "ingest"}\n')
    with pytest.raises(DataError, match=r"run-log.jsonl:1: command"):
        prepare(manifest, tmp_path / "hub", repo_id=None, command="soundmind-data publish m")


def test_plots_beside_the_manifest_are_published_and_shown(manifest, tmp_path, run_cli, hub_env):
    from soundmind_data.report.plots import write_corpus_plots

    plots = write_corpus_plots(manifest, manifest.parent / "plots")
    folder = tmp_path / "hub"
    args = ("publish", manifest, "--repo-id", "my-org/plotted", "--local-dir", folder)
    with FakeHub({TOKEN: ("alice", ["my-org"])}) as hub:
        env = {**hub_env, "HF_ENDPOINT": hub.url}
        proc = run_cli(*args, env=env, check_rc=0)
        assert "README.md + 2 plot(s)" in proc.stderr
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert "![label balance](plots/label-balance.png)" in card and "![durations](plots/durations.png)" in card
        shards = sum(p.stat().st_size for p in (folder / "data").iterdir())
        assert read_card_metadata(card)["dataset_info"]["download_size"] == shards  # the plots are not data
        files = hub.files("my-org/plotted")
        assert {path: files[path] for path in files if path.startswith("plots/")} == {
            f"plots/{png.name}": png.read_bytes() for png in plots}

        (manifest.parent / "plots" / "durations.png").unlink()  # a plot no longer drawn leaves the Hub and the card
        run_cli(*args, env=env, check_rc=0)
        assert "plots/durations.png" not in hub.files("my-org/plotted")
        assert not (folder / "plots" / "durations.png").exists()
        assert "durations.png" not in (folder / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- flagged manifests
def test_publish_refuses_what_the_audit_flags_unless_allowed(tmp_path, run_cli, hub_env):
    manifest = build_manifest(tmp_path / "synth", unanswered=True)
    records = read_jsonl(manifest)
    records.append({**records[0], "id": "train-copy"})  # a duplicate triplet in the same split
    write_jsonl(manifest, records)
    folder = tmp_path / "hub"
    proc = run_cli("publish", manifest, "--local-dir", folder, env=hub_env, check_rc=1)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "1 answer_missing (train-004)" in proc.stderr and "1 duplicates (train-copy)" in proc.stderr
    assert "--allow-flagged" in proc.stderr and "soundmind-data reason" in proc.stderr
    assert not folder.exists()  # refused before anything is built

    run_cli("publish", manifest, "--local-dir", folder, "--allow-flagged", env=hub_env, check_rc=0)
    card = (folder / "README.md").read_text(encoding="utf-8")
    audit = card[card.index("## Audit"):card.index("## How it was built")]
    assert "**Published with `--allow-flagged`**" in audit and "1 answer missing, 1 duplicates" in audit
    assert "No `soundmind-data curate` pass is recorded" in card


def test_the_card_tells_the_curation_of_a_pipeline(tmp_path, run_cli, hub_env):
    """A curate pass recorded in the run log beside the manifest: its decisions and policy are on the card."""
    manifest = build_manifest(tmp_path / "synth")
    report = tmp_path / "synth" / "03-curate.report.json"
    report.write_text(json.dumps({
        "stage": "curate", "manifest": "in.jsonl", "out": "out.jsonl", "decisions_file": "d.jsonl",
        "policy": {"gold_disagree": "relabel", "split_precedence": ["test", "dev"]}, "items": 12, "items_out": 9,
        "decisions": {"keep": 7, "relabel": 2, "regenerate": 0, "drop": 3},
        "reasons": {"train": {"keep": {"-": 7}, "relabel": {"gold_disagree": 2}, "drop": {"duplicate": 3}}}}))
    write_jsonl(tmp_path / "synth" / "run-log.jsonl", [{
        **_run_log_entry("curate", "ran", 0.5, "soundmind-data curate in.jsonl --out out.jsonl"),
        "report": str(report)}])
    run_cli("publish", manifest, "--local-dir", tmp_path / "hub", env=hub_env, check_rc=0)
    card = (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
    curation = card[card.index("## Curation"):card.index("## Audit")]
    assert "12 items in, 9 out (7 keep, 2 relabel, 0 regenerate, 3 drop)" in curation
    assert "gold_disagree → relabel" in curation and "split_precedence → test, dev" in curation
    assert "| relabel | gold_disagree | 2 |" in curation and "| drop | duplicate | 3 |" in curation


def test_a_moved_work_dir_keeps_a_true_run_log_and_card(tmp_path, run_cli):
    """The run log writes work-dir paths as $WORKDIR: after `mv`, the card cites no old absolute path and still
    finds the curate reports it describes."""
    from factories import text_pipeline

    from soundmind_data.hub.card import read_stage_runs
    from soundmind_data.stages.publish import _curation_reports

    pipeline = text_pipeline(tmp_path, extra="  - stage: curate\n")
    old, new = tmp_path / "work", tmp_path / "moved"
    run_cli("run", pipeline, "--workdir", old, check_rc=0)
    old.rename(new)
    log = (new / "run-log.jsonl").read_text(encoding="utf-8")
    assert str(old) not in log and "$WORKDIR/05-curate.jsonl" in log
    runs = read_stage_runs(new / "run-log.jsonl")
    assert [run["stage"] for run in runs] == ["ingest", "split", "audit", "balance", "curate"]
    assert [report["items"] for report in _curation_reports(runs, new)] == [8]  # what balance kept


@pytest.mark.parametrize("answers, wording", [
    ("all", "read aloud, with a spoken chain-of-thought answer ending in its verdict, and a label"),
    ("some", "read aloud, 8 of them with a spoken chain-of-thought answer ending in its verdict, and a label"),
    ("none", "read aloud, without spoken answers (the `answer_audio` column is empty), and a label"),
])
def test_the_card_says_what_answers_the_folder_holds(tmp_path, answers, wording):
    from soundmind_data.stages.publish import prepare

    manifest = build_manifest(tmp_path / "synth")
    records = read_jsonl(manifest)
    for record in records:
        if answers == "none" or (answers == "all" and "answer_audio" not in record):
            record.pop("answer_audio", None)
            if answers == "all":
                record["answer_audio"] = records[0]["answer_audio"]
    write_jsonl(manifest, records)
    prepare(manifest, tmp_path / "hub", repo_id=None, command="soundmind-data publish m")
    assert wording in (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ output folders: never the user's
def _tree(folder: Path) -> dict[str, bytes | None]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() if path.is_file() else None
            for path in folder.rglob("*")}


@pytest.mark.parametrize("command, theirs", [
    (("publish", "--local-dir"), "data/theirs.parquet"),
    (("export", "--format", "soundmind-hub", "--out"), "train/notes.txt"),
    (("export", "--format", "verl", "--out"), "audio/theirs.flac"),
])
def test_a_folder_of_the_users_is_refused_unless_overwrite(manifest, tmp_path, run_cli, hub_env, command, theirs):
    name, *flags = command
    folder = tmp_path / "theirs"
    (folder / theirs).parent.mkdir(parents=True)
    (folder / theirs).write_bytes(b"the user's own file")
    before = _tree(folder)
    proc = run_cli(name, manifest, *flags, folder, env=hub_env, check_rc=2)
    assert proc.stderr.strip() == (
        f"error: {flags[-1]} {folder}: holds files and is not the output of an earlier {name} (no "
        f".soundmind-data-{name} in it), and {name} would replace folders in it: choose a new or empty folder, or "
        f"pass --overwrite to replace them")
    assert _tree(folder) == before  # the refusal touches nothing

    run_cli(name, manifest, *flags, folder, "--overwrite", env=hub_env, check_rc=0)
    assert not (folder / theirs).exists()  # replaced, as asked
    from soundmind_data import __version__

    marker = json.loads((folder / f".soundmind-data-{name}").read_text(encoding="utf-8"))
    # export lists what it wrote: what its next run may remove, should the manifest lose a split
    entries = {"entries": sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))} \
        if name == "export" else {}
    assert marker == {"command": name, "version": __version__, **entries}
    run_cli(name, manifest, *flags, folder, env=hub_env, check_rc=0)  # its own earlier output: replaced again


def test_an_empty_folder_is_taken_and_another_commands_output_is_not(manifest, tmp_path, run_cli, hub_env):
    folder = tmp_path / "empty"
    folder.mkdir()
    run_cli("export", manifest, "--format", "verl", "--out", folder, check_rc=0)
    proc = run_cli("publish", manifest, "--local-dir", folder, env=hub_env, check_rc=2)
    assert "not the output of an earlier publish" in proc.stderr
    assert not (folder / "data").exists()


def test_what_a_killed_first_publish_left_is_not_the_users(manifest, tmp_path, run_cli, hub_env):
    """The marker is written once the new corpus is complete: before that, a killed run leaves only its staging."""
    folder = tmp_path / "hub"
    (folder / ".building" / "data").mkdir(parents=True)
    (folder / ".building" / "data" / ".train-00000.parquet.tmp").write_bytes(b"half a shard")
    run_cli("publish", manifest, "--local-dir", folder, env=hub_env, check_rc=0)
    assert sorted(path.name for path in folder.iterdir()) == [".soundmind-data-publish", "README.md", "data"]


def test_the_runner_re_runs_an_export_into_its_own_folder(tmp_path, run_cli):
    """A pipeline's publish and export write WORKDIR/NAME on every run: their marker lets a re-run replace it."""
    from factories import text_pipeline

    work = tmp_path / "work"
    export_stage = "  - stage: export\n    with: {format: verl, modality: text}\n"
    run_cli("run", text_pipeline(tmp_path, extra=export_stage), "--workdir", work, check_rc=0)
    run_cli("run", text_pipeline(tmp_path, "upsample", extra=export_stage), "--workdir", work, check_rc=0)
    statuses = [json.loads(line)["status"] for line in (work / "run-log.jsonl").read_text().splitlines()]
    assert statuses[-2:] == ["ran", "ran"]  # balance changed, so export ran again into work/export
    assert sum(pq.read_metadata(path).num_rows for path in (work / "export").glob("*.parquet")) == \
        len(read_jsonl(work / "04-balance.jsonl"))


def test_a_publish_stage_re_runs_into_its_own_folder(manifest, tmp_path):
    """What the runner does on every re-run of a pipeline's publish: the same call into the same folder."""
    from soundmind_data.stages import declaration
    from soundmind_data.stages.publish import PublishOptions

    publish = declaration("publish")
    for _ in range(2):
        assert publish.run(manifest, tmp_path / "work" / "hub", PublishOptions()).ok


# Runs `python -m soundmind_data ARGS` with shutil.rmtree deleting one parquet shard of a folder and then killing
# the process, as a kill -9 (or a SIGTERM) landing while publish deletes the old corpus does.
KILLED_WHILE_DELETING = """
import os, shutil, signal, sys
from pathlib import Path

delete = shutil.rmtree

def killed_midway(path, *args, **kwargs):
    shards = sorted(Path(path).rglob("*.parquet")) if Path(path).is_dir() else []
    if shards:
        shards[0].unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    delete(path, *args, **kwargs)

shutil.rmtree = killed_midway
sys.argv[0] = "soundmind-data"
from soundmind_data.cli import main
main()
"""


def assert_whole(folder: Path) -> dict[str, int]:
    """The folder's card describes exactly the shards in its data/: every split's i-of-n shards, all there, holding
    the rows the card counts. Returns the rows per split."""
    from soundmind_data.hub.folder.shards import shard_name

    info = read_card_metadata((folder / "README.md").read_text(encoding="utf-8"))["dataset_info"]
    rows = {split["name"]: split["num_examples"] for split in info["splits"]}
    shards = sorted(path.name for path in (folder / "data").iterdir())
    expected = []
    for split in rows:
        count = sum(name.startswith(f"{split}-") for name in shards)
        expected += [shard_name(split, index, count) for index in range(count)]
        assert sum(pq.read_metadata(folder / "data" / name).num_rows for name in shards
                   if name.startswith(f"{split}-")) == rows[split]
    assert sorted(expected) == shards
    assert info["download_size"] == sum((folder / "data" / name).stat().st_size for name in shards)
    return rows


def test_a_publish_killed_while_deleting_the_old_corpus_leaves_a_whole_folder(manifest, tmp_path, run_cli, hub_env):
    from conftest import ROOT

    folder = tmp_path / "hub"
    run_cli("publish", manifest, "--local-dir", folder, "--max-shard-size", "40KB", env=hub_env, check_rc=0)
    assert assert_whole(folder) == SPLITS
    fewer = write_jsonl(manifest.parent / "fewer.jsonl", read_jsonl(manifest)[1:])  # one train item less
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_DELETING, "publish", str(fewer), "--local-dir",
                             str(folder)], cwd=ROOT, env={**os.environ, **hub_env}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert assert_whole(folder) in (SPLITS, {"train": 5, "test": 3})  # the old corpus or the new one, whole

    run_cli("publish", fewer, "--local-dir", folder, env=hub_env, check_rc=0)  # the next run finishes the job
    assert assert_whole(folder) == {"train": 5, "test": 3}
    assert sorted(path.name for path in folder.iterdir()) == [".soundmind-data-publish", "README.md", "data"]


KILLED_WHILE_DELETING_AN_EXPORT = KILLED_WHILE_DELETING.replace('"*.parquet"', '"*.wav"')


def test_an_export_killed_while_deleting_the_old_one_leaves_every_split_whole(manifest, tmp_path, run_cli):
    """Issue 26.3 for export: the old split folders go aside before the new ones come in, and are deleted last."""
    from conftest import ROOT

    def whole(folder: Path) -> dict[str, int]:
        rows = {}
        for metadata in sorted(folder.glob("*/metadata.jsonl")):
            lines = read_jsonl(metadata)
            for line in lines:
                assert (metadata.parent / line["question_file_name"]).is_file()
                assert line["answer_file_name"] is None or (metadata.parent / line["answer_file_name"]).is_file()
            rows[metadata.parent.name] = len(lines)
        return rows

    out = tmp_path / "release"
    run_cli("export", manifest, "--format", "soundmind-hub", "--out", out, check_rc=0)
    before = whole(out)
    fewer = write_jsonl(manifest.parent / "fewer.jsonl", read_jsonl(manifest)[1:])
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_DELETING_AN_EXPORT, "export", str(fewer), "--format",
                             "soundmind-hub", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert whole(out) == {**before, "train": before["train"] - 1}  # the new export, whole
    assert any(path.name.startswith(".export-replaced~") for path in out.iterdir())  # the killed run's, aside
    run_cli("export", fewer, "--format", "soundmind-hub", "--out", out, check_rc=0)  # the next run tidies up
    assert sorted(path.name for path in out.iterdir() if path.name.startswith(".")) == [".soundmind-data-export"]
    assert whole(out) == {**before, "train": before["train"] - 1}


def test_publish_into_the_current_folder_passes_its_own_check(manifest, tmp_path, run_cli, hub_env):
    """`--local-dir .` is the same folder as its absolute path: the pre-push check loads it as well."""
    here = tmp_path / "here"
    here.mkdir()
    proc = run_cli("publish", manifest.resolve(), "--local-dir", ".", env=hub_env, cwd=here, check_rc=0)
    assert "pre-push check ok" in proc.stderr and (here / "data").is_dir() and (here / "README.md").is_file()


@pytest.mark.parametrize("command", ["publish", "verl"])
def test_a_truncated_file_that_matches_its_sha256_never_goes_out(manifest, tmp_path, run_cli, hub_env, command):
    """Not the first row of its split: every audio file that goes out is decoded, not only the first of a split."""
    records = read_jsonl(manifest)
    victim = [record for record in records if record["split"] == "train"][2]
    path = manifest.parent / victim["question_audio"]["path"]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut, and its sha256 taken afterwards
    victim["question_audio"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    write_jsonl(manifest, records)
    args = (["publish", manifest, "--local-dir", tmp_path / "out"] if command == "publish" else
            ["export", manifest, "--format", "verl", "--out", tmp_path / "out"])
    proc = run_cli(*args, env=hub_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = records.index(victim) + 1  # named by file, line and field
    assert f"{manifest}:{line}: question_audio.path:" in proc.stderr
    assert "truncated or damaged" in proc.stderr or "does not decode" in proc.stderr
    assert not (tmp_path / "out" / "data").exists() and not list((tmp_path / "out").glob("*.parquet"))
