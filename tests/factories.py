"""Builders for the test fixtures: source lines and manifest items the tests write themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import soundfile

from soundmind_data.text.template import render_question

ENTAILED_ANSWER = "The rule covers the case, so the conclusion follows.\n\nAnswer: entailed."
NOT_ENTAILED_ANSWER = "Nothing forces the conclusion.\n\nAnswer: not entailed."


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    """Write records (dicts, or raw str lines written as they are) one per line."""
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write((record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def logiqa_line(major: Any = "All cats are animals", minor: str = "Tom is a cat", conclusion: str = "Tom is an animal.",
                label: Any = "entailed") -> dict:
    return {"label": label, "major_premise": major, "minor_premise": minor, "conclusion": conclusion}


def soundmind_line(item_id: str = "0001", major: str = "All cats are animals", minor: str = "Tom is a cat",
                   conclusion: str = "Tom is an animal", label: int = 1, answer: str | None = None) -> dict:
    if answer is None:
        answer = ENTAILED_ANSWER if label == 1 else NOT_ENTAILED_ANSWER
    return {"id": item_id, "user_content": render_question(major, minor, conclusion), "answer": answer, "label": label}


def item(item_id: str, *, split: str = "train", major: str = "All cats are animals", minor: str = "Tom is a cat",
         conclusion: str = "Tom is an animal", label: int = 1, answer: str | None = "default", **extra: Any) -> dict:
    """A manifest item as the ingest stage writes it."""
    if answer == "default":
        answer = ENTAILED_ANSWER if label == 1 else NOT_ENTAILED_ANSWER
    return {
        "id": item_id, "split": split, "major_premise": major, "minor_premise": minor, "conclusion": conclusion,
        "label": label, "question_text": render_question(major, minor, conclusion), "answer_text": answer,
        "source": {"dataset": "soundmind", "file": "fixture.jsonl", "line": 1}, **extra,
    }


def write_tone(path: Path, seconds: float = 0.5, rate: int = 16000) -> dict:
    """A quiet tone as FLAC at `path`, described the way synthesis describes its audio; its `path` is the file name
    (give the one relative to the manifest's folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    soundfile.write(path, samples.astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    return {"path": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "sample_rate": rate,
            "channels": 1, "duration_s": seconds}


def text_pipeline(tmp_path: Path, balance_strategy: str = "downsample", extra: str = "") -> Path:
    """A pipeline YAML of the text stages (ingest, split, audit, balance) over 12 items; `extra` appends stages."""
    source = write_jsonl(tmp_path / "src.jsonl", [soundmind_line(f"i{n}", conclusion=f"Claim {n}", label=int(n % 3 == 0))
                                                  for n in range(12)])
    path = tmp_path / "p.yaml"
    path.write_text(f"""name: t
stages:
  - stage: ingest
    with: {{sources: [{source}], format: soundmind, split: train}}
  - stage: split
    with: {{ratios: "train=0.5,test=0.5", seed: 3}}
  - stage: audit
  - stage: balance
    with: {{strategy: {balance_strategy}, seed: 0}}
{extra}""")
    return path
