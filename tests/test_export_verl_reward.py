"""`export --format verl` carries the reference answer audio's duration, so verl's compute_score scores audio length."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile

from factories import item, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.rl import compute_score
from soundmind_data.stages.export import export, verl_row

RATE = 16_000
RESPONSE = "<think>The minor premise places the case under the rule.</think>\nAnswer: entailed"


def _speech(path: Path, seconds: float) -> dict:
    """Steady noise at -20 dBFS (speech to the energy VAD), described the way synthesis describes its audio."""
    samples = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * RATE))).astype(np.float32)
    soundfile.write(str(path), samples, RATE, subtype="PCM_16")
    return {"path": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "sample_rate": RATE,
            "duration_s": seconds}


@pytest.fixture
def spoken_items(tmp_path) -> list[dict]:
    """Two entailed items with question audio; the first has a 2 s answer audio, the second no answer audio."""
    items = [item("a-000", label=1), item("a-001", label=1, answer=None)]
    for record in items:
        record["question_audio"] = _speech(tmp_path / f"{record['id']}-q.wav", 1.0)
    items[0]["answer_audio"] = _speech(tmp_path / "a-000-a.wav", 2.0)
    return items


def test_verl_row_carries_the_answer_audio_duration(spoken_items):
    answered, unanswered = spoken_items
    for modality in ("audio", "text", "both"):
        question = None if modality == "text" else {"bytes": b"fLaC", "path": "a-000-question.flac"}
        row = verl_row(answered, 0, modality, question, None if modality == "text" else "audio/train/a-000-answer.flac")
        assert schemas.first_error("verl-row", row) is None
        assert row["extra_info"]["answer_duration_s"] == 2.0  # in text modality too: it is the reward's reference
    row = verl_row(unanswered, 1, "both", {"bytes": b"fLaC", "path": "a-001-question.flac"}, None)
    assert schemas.first_error("verl-row", row) is None and row["extra_info"]["answer_duration_s"] is None


def test_compute_score_scores_audio_length_on_an_exported_row(spoken_items, tmp_path):
    write_jsonl(tmp_path / "manifest.jsonl", spoken_items)
    export(tmp_path / "manifest.jsonl", fmt="verl", out=tmp_path / "verl", modality="both")
    rows = pq.read_table(tmp_path / "verl" / "train.parquet").to_pylist()
    assert [row["extra_info"]["answer_duration_s"] for row in rows] == [2.0, None]
    response_audio = _speech(tmp_path / "response.wav", 1.0)  # the policy spoke for half the reference's length

    answered = compute_score(rows[0]["data_source"], RESPONSE, rows[0]["reward_model"]["ground_truth"],
                             {**rows[0]["extra_info"], "response_audio": str(tmp_path / response_audio["path"])})
    assert answered["audio_format"] == 1.0 and answered["audio_length"] == pytest.approx(0.5, abs=0.02)
    unanswered = compute_score(rows[1]["data_source"], RESPONSE, rows[1]["reward_model"]["ground_truth"],
                               {**rows[1]["extra_info"], "response_audio": str(tmp_path / response_audio["path"])})
    assert "audio_length" not in unanswered and unanswered["audio_format"] == 1.0
