"""Publish's shards as the Hub stores them: written with the parquet options `datasets` writes with (content-defined
pages, a page index, the options in the footer), deduplicated by Xet when one item changes, and a pre-push check
that leaves nothing behind in the user's `datasets` cache."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile

from factories import item, write_jsonl
from soundmind_data.hub.folder.build import build_folder

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
ITEMS = 60  # about 2 MB of question audio in the one train row group: several pages of at most 1 MiB


def _bench_publish():
    """bench/publish.py, whose Xet-like chunker the test shares (the bench measures a 1,000-item corpus with it)."""
    spec = importlib.util.spec_from_file_location("bench_publish", ROOT / "bench" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def noise(path: Path, seconds: float, seed: int) -> dict:
    """Quiet noise as FLAC, described the way synthesis describes its audio: unlike a tone it does not shrink to a
    few bytes, so the shards are as big as spoken audio makes them."""
    samples = 0.05 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    soundfile.write(path, samples.astype(np.float32), RATE, format="FLAC", subtype="PCM_16")
    return {"path": f"audio/{path.name}", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "sample_rate": RATE, "channels": 1, "duration_s": seconds}


@pytest.fixture
def manifest(tmp_path) -> Path:
    root = tmp_path / "synth"
    (root / "audio").mkdir(parents=True)
    records = []
    for n in range(ITEMS):
        record = item(f"item-{n:03d}", split="test" if n % 10 == 0 else "train", label=n % 2,
                      major=f"Every member of club {n} pays the fee")
        record["question_audio"] = noise(root / "audio" / f"{n:03d}-q.flac", 1.0, seed=n)
        record["answer_audio"] = noise(root / "audio" / f"{n:03d}-a.flac", 0.5, seed=1000 + n)
        records.append(record)
    return write_jsonl(root / "manifest.jsonl", records)


def test_shards_carry_a_page_index_and_the_cdc_options_datasets_writes_with(manifest, tmp_path):
    from datasets import config

    result = build_folder(manifest, tmp_path / "hub")
    shards = [tmp_path / "hub" / name for name in result.files]
    assert len(shards) == 2  # train and test
    for shard in shards:
        metadata = pq.read_metadata(shard)
        assert json.loads(metadata.metadata[b"content_defined_chunking"]) == config.DEFAULT_CDC_OPTIONS, shard
        for group in range(metadata.num_row_groups):
            columns = [metadata.row_group(group).column(i) for i in range(metadata.num_columns)]
            assert all(column.has_offset_index for column in columns), shard
            # min/max of FLAC bytes would be noise: only the other columns get statistics, and so a column index
            assert {column.path_in_schema for column in columns if not column.has_column_index} == \
                {"question_audio.bytes", "answer_audio.bytes"}


def test_one_item_changed_stores_a_small_share_of_the_corpus_again(manifest, tmp_path):
    """Cut into chunks as Xet cuts files, the shards with one item changed (its question spoken again at another
    length, its answer text edited) share all but a few chunks with the shards before."""
    bench = _bench_publish()
    before = build_folder(manifest, tmp_path / "before")
    lines = manifest.read_text().splitlines()
    changed = json.loads(lines[ITEMS // 2 + 1])
    changed["question_audio"] = noise(manifest.parent / "audio" / "again-q.flac", 1.4, seed=99)
    changed["answer_text"] = "Paying the fee does not make Tom a member.\n\nAnswer: not entailed."
    lines[ITEMS // 2 + 1] = json.dumps(changed)
    edited = write_jsonl(manifest.parent / "edited.jsonl", lines)
    after = build_folder(edited, tmp_path / "after")

    fresh, total = bench.stored_again([tmp_path / "before" / name for name in before.files],
                                      [tmp_path / "after" / name for name in after.files])
    new_audio = (manifest.parent / "audio" / "again-q.flac").stat().st_size
    assert new_audio <= fresh < 0.10 * total, (fresh, total)


def test_the_pre_push_check_leaves_nothing_in_the_users_datasets_cache(manifest, tmp_path, monkeypatch):
    """`datasets` leaves a lock file named after the folder it loads in its cache, even streaming: publishing
    through a staging folder, deleted after, must not pile them up there. (The cache folder comes from
    HF_DATASETS_CACHE, read when `datasets` is imported: set here as that import left it.)"""
    from datasets import config

    from soundmind_data.stages.publish import PublishOptions, run

    cache = tmp_path / "ds-cache"
    monkeypatch.setattr(config, "HF_DATASETS_CACHE", cache)
    for _ in range(2):
        report = run(manifest, None, PublishOptions(repo_id="someone/corpus", dry_run=True))
        assert report.check.ok, report.check.problems
    assert not cache.exists() or list(cache.rglob("*")) == []
    assert sorted(path.name for path in manifest.parent.iterdir()) == ["audio", "manifest.jsonl"]
