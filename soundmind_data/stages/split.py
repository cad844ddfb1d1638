"""Split: place items into named splits by ratio, stratified by label, grouped so that no question leaks (the
assignment and its rules are `splitting`'s)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.stage import Progress, SILENT, Stage, option
from soundmind_data.engines.splitting import SplitReport, parse_ratios, split_manifest


@dataclass(frozen=True)
class SplitOptions:
    ratios: str = option("train=0.8,dev=0.1,test=0.1", help="Split names and fractions summing to 1.")
    seed: int = option(0, help="Seed of the shuffle: same input and seed give a byte-identical output.")
    group: str = option("triplet",
        help="What never spans two splits: 'triplet' (same normalised premises and conclusion) or 'conclusion' (same "
             "normalised conclusion).")
    keep_existing: bool = option(False,
        help="Keep items already in a split named in --ratios; place only the others (e.g. items ingested with "
             "--split new).")


def run(manifest: Path, out: Path, options: SplitOptions, *, progress: Progress = SILENT) -> SplitReport:
    """The split stage."""
    ratios = parse_ratios(options.ratios)
    progress.start("split (2 passes)", unit="line")
    result = split_manifest(manifest, out=out, ratios=ratios, seed=options.seed, group=options.group,
                            keep_existing=options.keep_existing, progress=progress)
    return result


COMMAND_HELP = """Assign train/dev/test splits by ratio, stratified by label, keeping each triplet group in one split.

Prints a before/after table of split x label counts and the leaks fixed. Warns about a split left empty or with
one label only.

Example: soundmind-data split items.jsonl --ratios train=0.8,dev=0.1,test=0.1 --seed 0 --out split.jsonl
"""

STAGE = Stage("split", run, SplitOptions, report=True,
              input_help="Item manifest (JSONL) to split.",
              output_help="Manifest to write: the same items, each with its split.",
              help=COMMAND_HELP)
