"""Audit: the curation checks the published SoundMind corpus never had (`manifest_audit`), as a stage that reports
and passes its input on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.stage import Progress, SILENT, Stage, option
from soundmind_data.engines.manifest_audit import AuditReport, audit_manifest


@dataclass(frozen=True)
class AuditOptions:
    gold: tuple[Path, ...] = option((), help="LogiQA 2.0 NLI file with gold labels; repeatable.")


def run(manifest: Path, out: None, options: AuditOptions, *, progress: Progress = SILENT) -> AuditReport:
    """The audit stage: reports, never fails on findings; its input passes on to the next stage."""
    progress.start("audit")
    return audit_manifest(manifest, gold_files=options.gold, progress=progress)


COMMAND_HELP = """Report curation problems: answer/label disagreement, gold-label disagreement, duplicates, cross-split
leaks, unspeakable text.

Audit reports; it does not fail (exit 0) unless the manifest cannot be read.

Example: soundmind-data audit items.jsonl --gold dev.txt --json audit.json
"""

STAGE = Stage("audit", run, AuditOptions, output=None, report=True,
              input_help="Item manifest (JSONL) to audit.",
              help=COMMAND_HELP)
