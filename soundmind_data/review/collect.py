"""The items of a review besides the corpus's own: those dropped on the way to it, and what a validated manifest
measured.

An item dropped is read from the last manifest that held it: by a pipeline's stages (an id in a stage's input and
not in its output; its reasons from the file the stage set it aside in, else the stage's name), or by the curate
decisions files given (from the validated manifest). Every item is checked against the item schema as it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_FIELDS, DECISIONS, HEARD_FIELDS
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_manifest_lines, iter_records
from soundmind_data.review.sources import ReviewSources

KEPT, DROPPED = DECISIONS[0], DECISIONS[-1]  # "keep", "drop"


@dataclass
class Found:
    """An item dropped on the way to the corpus: where it was last seen, and why it left."""

    decision: str
    reasons: list[str]
    dropped_by: str
    note: str = ""
    split: str = ""  # what a decision line says of an item that no manifest given holds
    manifest: Path | None = None
    position: int = -1  # 0-based among the manifest's non-blank lines
    line: int | None = None  # its line number there


def checked(record: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    """An item as the item schema has it, or a one-line error naming file, line and field."""
    problem = schemas.first_error("item", record)
    if problem:
        raise DataError(f"{path}:{line}: {problem}")
    return record


def read_decisions(paths: list[Path]) -> dict[str, Found]:
    """id -> the last decision about it among curate decisions files (a later file is a later pass)."""
    decided: dict[str, Found] = {}
    for path in paths:
        for line in iter_manifest_lines(path):
            record = line.record
            problem = schemas.first_error("curate-decision", record)
            if problem:
                raise UsageError(f"{path}:{line.number}: {problem} (not a curate decisions line)")
            decided[record["id"]] = Found(record["decision"], list(record.get("reasons") or []), "curate",
                                          split=record["split"])
    return decided


def dropped_items(sources: ReviewSources, seen: set[str],
                  decided: dict[str, Found]) -> Iterator[tuple[Path, list[Found]]]:
    """(manifest, the dropped items to read from it) for items not in the corpus: those a stage of the pipeline
    dropped (from the manifest it read) and those a decisions file names (from the validated manifest)."""
    by_manifest: dict[Path, list[Found]] = {}
    ids: dict[Path, set[str]] = {}  # each stage's output is the next one's input: its ids are collected once
    for step in reversed(sources.stages):  # the latest stage an item reached is the one that dropped it
        reasons = None
        kept = ids.pop(step.wrote, None)
        if kept is None:
            kept = {record.get("id") for record in iter_records(step.wrote)}
        read_ids = ids[step.read] = set()
        for position, line in enumerate(iter_manifest_lines(step.read)):
            item_id = line.record.get("id")
            read_ids.add(item_id)
            if item_id in kept or item_id in seen:
                continue
            seen.add(item_id)
            if reasons is None:
                reasons = _set_aside_reasons(step.set_aside)
            decision = decided.pop(item_id, None)
            why, note = reasons.get(item_id) or (decision.reasons if decision else [step.name], "")
            found = Found(DROPPED, why, step.name, note, manifest=step.read, position=position, line=line.number)
            by_manifest.setdefault(step.read, []).append(found)
    if sources.validated and decided:
        for position, line in enumerate(iter_manifest_lines(sources.validated)):
            item_id = line.record.get("id")
            decision = decided.pop(item_id, None) if item_id not in seen else None
            if decision:
                seen.add(item_id)
                decision.manifest, decision.position, decision.line = sources.validated, position, line.number
                by_manifest.setdefault(sources.validated, []).append(decision)
    yield from by_manifest.items()


def _set_aside_reasons(path: Path | None) -> dict[str, tuple[list[str], str]]:
    """id -> (reasons, note) from a stage's set-aside lines: curate's decisions ({reasons}), synthesis failures
    ({field, reason}: the stage's message). A stage whose set-aside file is a report (validate) drops nothing."""
    found: dict[str, tuple[list[str], str]] = {}
    if path is None or path.suffix != ".jsonl" or not path.is_file():
        return found
    for record in iter_records(path):
        if not isinstance(record.get("id"), str):
            continue
        if isinstance(record.get("reasons"), list) and record["reasons"]:
            found[record["id"]] = ([str(r) for r in record["reasons"]], "")
        elif record.get("reason"):
            reasons, notes = found.get(record["id"], ([], ""))
            note = f"{record.get('field', '')}: {record['reason']}".lstrip(": ")
            found[record["id"]] = (reasons, "; ".join(filter(None, [notes, note])))
    return {item_id: (reasons or [path.stem.split(".")[0]], note) for item_id, (reasons, note) in found.items()}


_MEASURED = ("duration_s", "loudness_lufs", "wer", "wer_sample_s", *HEARD_FIELDS)


def read_validated(path: Path, notes: list[str]) -> dict[str, dict[str, Any]]:
    """id -> the validated manifest's measurements: failed checks and, per audio field, duration, loudness, WER and
    transcript. A manifest holding no items adds a line to `notes` (the review report's)."""
    measured = {}
    for line in iter_manifest_lines(path):
        record = checked(line.record, path, line.number)
        measured[record["id"]] = {
            "failed_checks": record.get("failed_checks"),
            **{key: {k: v for k, v in (record.get(key) or {}).items() if k in _MEASURED} for key in AUDIO_FIELDS}}
    if not measured:
        notes.append(f"{path}: no items to take measurements from")
    return measured

