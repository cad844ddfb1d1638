"""Validate: check every line of an item manifest against `schemas/item.schema.json`, and that ids are unique.

Failures are collected as records (line, id, check, field, message) so the CLI can print them as
`file:line: field: message` and write them as a JSON report; the stage itself never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundmind_data import schemas
from soundmind_data.jsonl import iter_lines
from soundmind_data.textkey import id_digest


@dataclass
class ValidateReport:
    manifest: str
    items: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_lines: set[int] = field(default_factory=set)

    def fail(self, line: int, item_id: str | None, check: str, field_name: str, message: str) -> None:
        self.failures.append({"line": line, "id": item_id, "check": check, "field": field_name, "message": message})
        self.failed_lines.add(line)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "items": self.items, "failed_items": len(self.failed_lines),
                "failures": self.failures}


def validate_manifest(path: str | Path, *, on_item: Callable[[], None] | None = None) -> ValidateReport:
    report = ValidateReport(manifest=str(path))
    seen_ids: dict[bytes, int] = {}
    for line in iter_lines(path):
        if on_item:
            on_item()
        report.items += 1
        if line.error:
            report.fail(line.number, None, "json", "(line)", line.error)
            continue
        record = line.record
        item_id = record.get("id") if isinstance(record.get("id"), str) else None
        for error in schemas.errors("item", record):
            report.fail(line.number, item_id, "schema", schemas.field_path(error), error.message)
        if item_id is not None:
            digest = id_digest(item_id)
            if digest in seen_ids:
                report.fail(line.number, item_id, "unique_id", "id", f"duplicate id {item_id!r} (first on line {seen_ids[digest]})")
            else:
                seen_ids[digest] = line.number
    return report
