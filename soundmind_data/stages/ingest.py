"""Ingest: LogiQA 2.0 NLI and SoundMind annotation files, or a SoundMind release with its audio, become one item
manifest, by the importers of `engines.importers`; this module is the stage's options and declaration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.corpus import rejects_path
from soundmind_data.core.stage import SILENT, Progress, Stage, argument, option
from soundmind_data.engines.importers import IngestReport, ingest


@dataclass(frozen=True)
class IngestOptions:
    sources: tuple[Path, ...] = argument(
        help="Source files (JSON Lines, or one JSON object each, like annotation.json), read in the order given; for "
             "soundmind-hub, the release folder or one split's metadata.jsonl.")
    format: str = option(short="-f",
        help="Source format: logiqa2-nli, soundmind (annotation lines or annotation.json files) or soundmind-hub "
             "(the Hub release with its audio).")
    split: str | None = option(None, short="-s",
        help="Split name given to every item (train, dev, test...); required but for soundmind-hub, whose split "
             "folders name the splits.")
    limit: int | None = option(None, min=1, help="Keep only the first N items of each source file (trial runs).")


def run(manifest: None, out: Path, options: IngestOptions, *, progress: Progress = SILENT) -> IngestReport:
    """The ingest stage: `options.sources` into the manifest `out`."""
    progress.start("ingest", unit="line")
    return ingest(options.sources, fmt=options.format, split=options.split, out=out, limit=options.limit,
                  progress=progress)


COMMAND_HELP = """Turn LogiQA 2.0 NLI or SoundMind annotation files, or the SoundMind release with its audio, into one
item manifest.

soundmind-hub reads the layout of the Hub dataset SoundMind-RL/SoundMindDataset: SPLIT/metadata.jsonl and a
folder per item (question.wav, answer_LABEL.wav). Ids restart at 0001 in every split, so an item's id is
SPLIT-ID (dev-0001) and its source keeps the release's split and id, which export --format soundmind-hub writes
back. Each item's recordings become its audio entries (voice "upstream"): referenced in place when the release
lies in OUT's folder, else hard-linked (copied across file systems) into OUT's stem + .audio/SPLIT/ID/. A file
name leading out of its split folder, or a missing or undecodable file, rejects the line; nothing outside the
split folder is read.

Bad lines go to OUT.rejects.jsonl with file, line and reason; exit code 1 if any line was rejected.

Example: soundmind-data ingest dev.txt --format logiqa2-nli --split dev --out items.jsonl

Example: soundmind-data ingest dataset --format soundmind-hub --out corpus/items.jsonl
"""

STAGE = Stage("ingest", run, IngestOptions, reads_manifest=False,
              side_files=lambda out: {"the rejects file": rejects_path(out)},
              output_help="Item manifest to write (JSONL); rejects go beside it, and a release's audio from outside "
                          "its folder into OUT's stem + .audio/.",
              help=COMMAND_HELP)
