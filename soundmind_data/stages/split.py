"""Split: place items into named splits by ratio, stratified by label, grouped so that no question leaks (the
assignment and its rules are `splitting`'s)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.jsonl import write_json
from soundmind_data.engines.splitting import SplitReport, parse_ratios, split_manifest
from soundmind_data.core.stage import SILENT, Progress, Stage


@dataclass(frozen=True)
class SplitOptions:
    ratios: str = "train=0.8,dev=0.1,test=0.1"
    seed: int = 0
    group: str = "triplet"
    keep_existing: bool = False


def run(manifest: Path, out: Path, options: SplitOptions, *, report: Path | None = None,
        progress: Progress = SILENT) -> SplitReport:
    """The split stage."""
    ratios = parse_ratios(options.ratios)
    progress.start("split (2 passes)", unit="line")
    result = split_manifest(manifest, out=out, ratios=ratios, seed=options.seed, group=options.group,
                            keep_existing=options.keep_existing, on_line=progress.advance)
    if report:
        write_json(report, result.to_json())
    return result


STAGE = Stage("split", run, SplitOptions, report=True)
