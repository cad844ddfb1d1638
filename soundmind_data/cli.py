"""The `soundmind-data` command line: parses arguments, calls library functions, prints their summaries.

Exit codes scripts can trust: 0 success, 1 failed checks or rejected data, 2 usage errors, 130 interrupted.
The library never prints or exits; this module is the only place that does.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from tqdm import tqdm

from soundmind_data import __version__
from soundmind_data.errors import DataError, UsageError
from soundmind_data.table import format_table, id_sample

app = typer.Typer(
    name="soundmind-data",
    help="Build, curate and publish audio logical-reasoning corpora like SoundMind.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"soundmind-data {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Build, curate and publish audio logical-reasoning corpora like SoundMind."""


@contextmanager
def progress(desc: str, unit: str = "item", total: int | None = None) -> Iterator[tqdm]:
    """A tqdm bar on stderr; silent when stderr is not a terminal (logs and CI stay clean)."""
    with tqdm(desc=desc, unit=unit, total=total, file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
        yield bar


def err(message: str) -> None:
    typer.echo(message, err=True)


# ---------------------------------------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    sources: List[Path] = typer.Argument(..., help="Source JSONL files, read in the order given."),
    fmt: str = typer.Option(..., "--format", "-f", help="Source format: logiqa2-nli or soundmind."),
    split: str = typer.Option(..., "--split", "-s", help="Split name given to every item (train, dev, test...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Item manifest to write (JSONL); rejects go beside it."),
) -> None:
    """Turn LogiQA 2.0 NLI or SoundMind annotation files into one item manifest.

    Bad lines go to OUT.rejects.jsonl with file, line and reason; exit code 1 if any line was rejected.

    Example: soundmind-data ingest dev.txt --format logiqa2-nli --split dev --out items.jsonl
    """
    from soundmind_data.stages.ingest import ingest as run_ingest

    with progress("ingest", "line") as bar:
        result = run_ingest(sources, fmt=fmt, split=split, out=out, on_line=bar.update)
    err(f"ingest: {result.items} items ({result.per_label[0]} not-entailed, {result.per_label[1]} entailed) -> {out}; "
        f"{result.rejected} rejected -> {result.rejects}")
    if result.rejected:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------------------------- validate
@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to check."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Check every line of a manifest against schemas/item.schema.json (and that ids are unique).

    Prints each failure as FILE:LINE: FIELD: MESSAGE; exit code 1 if any line fails.

    Example: soundmind-data validate items.jsonl --json validate.json
    """
    from soundmind_data.jsonl import write_json
    from soundmind_data.stages.validate import validate_manifest

    with progress("validate") as bar:
        report = validate_manifest(manifest, on_item=bar.update)
    for failure in report.failures:
        typer.echo(f"{manifest}:{failure['line']}: {failure['field']}: {failure['message']}")
    if json_report:
        write_json(json_report, report.to_json())
    err(f"validate: {report.items} items, {len(report.failed_lines)} failed, {len(report.failures)} failures")
    if not report.ok:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------------------- audit
@app.command()
def audit(
    manifest: Path = typer.Argument(..., help="Item manifest (JSONL) to audit."),
    gold: List[Path] = typer.Option([], "--gold", help="LogiQA 2.0 NLI file with gold labels; repeatable."),
    json_report: Optional[Path] = typer.Option(None, "--json", help="Also write a machine-readable report here."),
) -> None:
    """Report curation problems: answer/label disagreement, gold-label disagreement, duplicates, cross-split leaks,
    unspeakable text.

    Audit reports; it does not fail (exit 0) unless the manifest cannot be read.

    Example: soundmind-data audit items.jsonl --gold dev.txt --json audit.json
    """
    from soundmind_data.jsonl import write_json
    from soundmind_data.stages.audit import CHECKS, audit_manifest

    with progress("audit") as bar:
        report = audit_manifest(manifest, gold_files=gold, on_item=bar.update)
    split_rows = [(split, labels[0], labels[1], labels[0] + labels[1]) for split, labels in report.splits.items()]
    typer.echo(format_table(("split", "not-entailed", "entailed", "items"), split_rows))
    typer.echo("")
    rows = [("items", report.items, "")]
    if report.gold_files:
        rows.append(("gold_matched", report.gold_matched, ""))
    for check in CHECKS:
        if check == "gold_disagree" and not report.gold_files:
            continue
        rows.append((check, report.count(check), id_sample(report.ids[check])))
    typer.echo(format_table(("check", "count", "ids"), rows))
    if json_report:
        write_json(json_report, report.to_json())


def main() -> None:
    """Entry point: run the app, turning library errors into one-line messages and exit codes.

    Typer (click) already answers bad arguments with usage text and exit code 2.
    """
    try:
        app()
    except UsageError as exc:
        err(f"error: {exc}")
        sys.exit(2)
    except DataError as exc:
        err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
