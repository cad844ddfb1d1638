"""Audit: the curation checks the published SoundMind corpus never had (`manifest_audit`), as a stage that reports
and passes its input on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.jsonl import write_json
from soundmind_data.engines.manifest_audit import AuditReport, audit_manifest
from soundmind_data.core.stage import SILENT, Progress, Stage


@dataclass(frozen=True)
class AuditOptions:
    gold: tuple[Path, ...] = ()


def run(manifest: Path, out: None, options: AuditOptions, *, report: Path | None = None,
        progress: Progress = SILENT) -> AuditReport:
    """The audit stage: reports, never fails on findings; its input passes on to the next stage."""
    progress.start("audit")
    result = audit_manifest(manifest, gold_files=options.gold, on_item=progress.advance)
    if report:
        write_json(report, result.to_json())
    return result


STAGE = Stage("audit", run, AuditOptions, output=None, report=True)
