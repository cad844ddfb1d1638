"""What a stage is: one entry function with typed options, and a declaration of what it reads and writes.

Every stage module (`soundmind_data/stages/*.py` that a pipeline can run) ends with a `STAGE = Stage(...)` naming
its entry function, its options dataclass, whether it reads the previous manifest, what it writes and whether it
writes a JSON report. The entry function has one shape:

    run(manifest, out, options, *, progress=SILENT) -> a report (a StageReport)

`manifest` is the manifest it reads (None for ingest, whose sources are an option), `out` what it writes (a
manifest, or a folder). The pipeline runner and the command line both run it through `Stage.call`; the runner reads
the declaration for its wiring, fingerprints, skip rule and summary, and the CLI prints the report. The options
dataclass is the single list of a stage's options: each field is declared with `option(...)`, which holds its
default, help text, short flag and bounds. A pipeline's `with:` keys are the field names (dashes or
underscores), and the stage's command is made from the declaration (`soundmind_data/declared_commands.py`): its long
options are the field names, its help the declaration's texts. Adding a stage is one module in `stages/` plus its name
in `stages.PIPELINE_STAGES` and in the `stage` enum of `schemas/pipeline.schema.json`.

`Stage.call` refuses a call that writes a file it reads, runs the entry function, and writes the JSON report (`--json`):
an entry function does neither. A command over a corpus that is not a stage (`commands/`) is declared the same way,
with a `Command`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import iter_lines, write_json
from soundmind_data.core.redact import redact

# What a stage writes, which decides where the runner points it and what the next stage reads.
MANIFEST = "manifest"  # a manifest file (WORKDIR/NN-NAME.jsonl), read by the next stage
CORPUS = "corpus"  # a folder with audio: the work dir itself, so audio sits beside the manifests; its manifest is
# corpus.CORPUS_MANIFEST, read by the next stage
FOLDER = "folder"  # a folder users open (a Hub-ready dataset, an export): WORKDIR/NAME; the input passes on


class Progress:
    """How a stage tells how far it got. The library calls it; the CLI shows it (a bar on a terminal). This base
    class shows nothing."""

    def start(self, desc: str, *, unit: str = "item", total: int | None = None) -> None:
        """A new piece of work begins (a stage, or a second pass of one)."""

    def advance(self, count: int = 1) -> None:
        """`count` more units are done."""

    def status(self, **values: Any) -> None:
        """Running figures shown beside the count (audio seconds, failures so far)."""

    def note(self, message: str) -> None:
        """A line worth reading while the work goes on (a failure)."""

    def stage_started(self, step: Any, status: str) -> None:
        """A pipeline's stage `step` begins (`status` "running") or is skipped as unchanged ("skipped"): the runner
        says it, a stage never does."""

    def stage_finished(self, step: Any, report: StageReport | None, error: str | None) -> None:
        """A pipeline's stage ran: its report, or the one-line error that stopped it."""


SILENT = Progress()


@dataclass
class Summary:
    """What a command shows of a report: `out` lines for stdout (tables and findings), `err` lines for stderr (the
    one-line summary, warnings). The library words it; the CLI prints it."""

    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)


class StageReport:
    """What the runner and the CLI read off every stage's report; a report class overrides what applies to it."""

    report_file: str | None = None  # where `Stage.call` wrote it as JSON (`--json`), for the summary to name

    def to_json(self) -> dict:
        """The report as JSON, for `--json`: a stage that writes a report (`Stage(report=True)`) overrides it."""
        raise NotImplementedError(type(self).__name__)

    def written_to(self, path: Path | None) -> StageReport:
        """This report, written as JSON to `path` when one is given (`--json`): what `Stage.call` and `Command.call`
        do last."""
        if path is not None:
            self.report_file = str(path)
            write_json(path, self.to_json())
        return self

    def summary(self) -> Summary:
        return Summary()

    @property
    def ok(self) -> bool:
        """False when the stage failed its checks or set something aside: the command's exit code 1."""
        return True

    @property
    def set_aside(self) -> int | None:
        """How many lines or items the stage set aside (rejects, failures); None for a stage that sets none aside."""
        return None

    @property
    def set_aside_file(self) -> Path | None:
        """Where they are listed, with the reasons."""
        return None

    def why_empty(self) -> str:
        """Why the stage wrote no item at all, in one line: its summary line(s), and the first reason its set-aside
        file gives. The runner says it, rather than leave the next stage to find an empty manifest. A report that
        can say it better (reason: what became of the requests) overrides it."""
        said = [*self.summary().err]
        first = first_set_aside(self.set_aside_file) if self.set_aside_file else None
        if first:
            said.append(f"the first set aside: {first}")
        return "; ".join(said) or "it reported nothing"


def first_set_aside(path: Path) -> str | None:
    """The first line of a set-aside file (ingest's rejects, synthesis failures, curate's decisions) as `WHERE:
    REASON`, or None when it has none or cannot be read. Its lines name a source file and line, or the item by id or
    manifest line, and give a `reason` (or `reasons`)."""
    try:
        line = next((line for line in iter_lines(path) if isinstance(line.record, dict)), None)
    except OSError:
        return None
    if line is None:
        return None
    record = line.record
    reason = record.get("reason", record.get("reasons"))
    if isinstance(reason, list):
        reason = ", ".join(map(str, reason))
    if not isinstance(reason, str) or not reason:
        return None
    where = (f"{record['file']}:{record.get('line')}" if record.get("file") else record.get("id")
             or (f"line {record['line']}" if "line" in record else f"{path.name}:{line.number}"))
    return f"{where}: {redact(reason)[:300]}"


REPORT_HELP = "Also write a machine-readable report here."  # every command's --json


def option(default: Any = dataclasses.MISSING, *, help: str, short: str | None = None, flag: str | None = None,
           metavar: str | None = None, min: int | None = None) -> Any:
    """An option: a field of a stage's (or a command's) options dataclass, with what its command-line option shows.
    `default` left out makes it required; `short` is the one-letter flag (`-w`); `flag` the long one when it is not
    the field's name (a command's `--synthesize/--no-synthesize`: a stage's long options are its `with:` keys, so
    they keep their names); `min` bounds a number, on the command line and in a pipeline alike."""
    return field(default=default, metadata={"help": help, "short": short, "flag": flag, "metavar": metavar,
                                            "min": min})


def argument(default: Any = dataclasses.MISSING, *, help: str) -> Any:
    """An option the command line takes as bare arguments (ingest's SOURCES, diff's OLD and NEW)."""
    return field(default=default, metadata={"help": help, "argument": True})


def no_default_files(options: Any) -> dict[str, Path]:
    return {}


def no_side_files(out: Path) -> dict[str, Path]:
    return {}


def no_preflight(options: Any) -> list[str]:
    return []


@dataclass(frozen=True)
class Stage:
    """A stage's declaration: what the runner needs to wire it into a pipeline."""

    name: str  # the command name, and the `stage:` of a pipeline
    run: Callable[..., StageReport]
    options: type  # a dataclass
    reads_manifest: bool = True  # False: ingest, which reads the source files its options name
    output: str | None = MANIFEST  # MANIFEST, CORPUS, FOLDER or None (writes no output of its own)
    output_flag: str = "--out"  # how the command line names the output, for the command a run log records
    hub_ready: bool = False  # its output folder is a corpus ready to upload to the Hub (a run's summary names it)
    report: bool = False  # writes a JSON report when given a path (`--json`)
    # The files a stage reads when an option naming them is not given, by option name: they shape its output as
    # much as a file named in the pipeline does.
    default_files: Callable[[Any], dict[str, Path]] = no_default_files
    # The files a MANIFEST stage writes beside its output manifest `out`, by what they are (ingest's rejects file,
    # curate's decisions file): like the output and the report, none may be a file the stage reads.
    side_files: Callable[[Path], dict[str, Path]] = no_side_files
    # What keeps the stage's backends from running here (an extra not installed, a model file missing, no GPU for
    # `device: cuda`, an LLM endpoint nobody answers at), one line each, found quickly and without loading a model:
    # the runner asks every stage that will run before the first one starts, the command line before its stage runs.
    # It may raise a UsageError for options it cannot make sense of.
    preflight: Callable[[Any], list[str]] = no_preflight
    # What its command shows: `help` (first line: the summary in `soundmind-data --help`), the input manifest's help
    # (the MANIFEST argument) and the output's (`output_flag`), and whether the output may be left out.
    help: str = ""
    input_help: str = "Item manifest (JSONL)."
    output_help: str = ""
    output_optional: bool = False
    cites_command: bool = False  # the command line that ran it goes into what it writes (publish's card)

    def call(self, manifest: Path | None, out: Path | None, options: Any, *, report: Path | None = None,
             progress: Progress = SILENT, **context: Any) -> StageReport:
        """Run the stage as the runner and the command line both run it: refuse a call that writes a file it reads
        (or one file twice), call the entry function, then write the JSON report when `report` names a file."""
        if report is not None and not self.report:
            raise UsageError(f"{self.name} writes no JSON report (--json)")
        self.files(manifest, out, options, report).check()
        return self.run(manifest, out, options, progress=progress, **context).written_to(report)

    @property
    def positional(self) -> str | None:
        """The option the command line takes as bare arguments (ingest's sources), if it has one."""
        return next((spec.name for spec in dataclasses.fields(self.options) if spec.metadata.get("argument")), None)

    @property
    def writes_manifest(self) -> bool:
        """Whether the next stage reads what this one wrote (else this stage's input passes on)."""
        return self.output in (MANIFEST, CORPUS)

    def problems(self, options: Any) -> list[str]:
        """What `preflight` finds for these options; a usage error in them is one of the problems."""
        try:
            return list(self.preflight(options))
        except UsageError as exc:
            return [str(exc)]

    def files(self, manifest: Path | None, out: Path | None, options: Any, report: Path | None) -> StageFiles:
        """The files one call of the stage reads and writes, each named as its command names it."""
        read = [("the input manifest", manifest)] if self.reads_manifest and manifest is not None else []
        defaults = [(flag_name(options, name), path) for name, path in self.default_files(options).items()
                    if getattr(options, name, None) is None]
        read += named_files(options) + [(name, path) for name, path in defaults if os.path.isfile(path)]
        written = []
        if out is not None and self.output == MANIFEST:
            written += [(self.output_flag, out), *self.side_files(out).items()]
        if report is not None:
            written.append(("--json", report))
        return StageFiles(read, written)


@dataclass(frozen=True)
class Command:
    """A command over a finished corpus that is not a pipeline stage (`commands/`: add, diff): its options dataclass
    declares its options as a stage's does, and its command is made from it the same way. `run(options, *,
    progress)` returns its report; an options field `report` (`--json`) names where `call` writes it."""

    name: str
    run: Callable[..., StageReport]
    options: type  # a dataclass of `option(...)` and `argument(...)` fields
    help: str
    # The files it writes besides its report, by what they are (add's rejects file), from its options.
    side_files: Callable[[Any], dict[str, Path]] = no_side_files

    def files(self, options: Any) -> StageFiles:
        """The files one call reads (every existing file its options name) and writes (its side files, its report)."""
        report = getattr(options, "report", None)
        read = [(name, path) for name, path in named_files(options) if name != "--json"]
        written = [*self.side_files(options).items(), *([("--json", report)] if report is not None else [])]
        return StageFiles(read, written)

    def call(self, options: Any, *, progress: Progress = SILENT) -> StageReport:
        """Run the command: refuse a call that writes a file it reads (or one file twice), call `run`, then write the
        JSON report."""
        self.files(options).check()
        return self.run(options, progress=progress).written_to(getattr(options, "report", None))


def named_files(options: Any) -> list[tuple[str, Path]]:
    """Every existing file the options name, each with how the command line names its option."""
    named = [(flag_name(options, name), Path(one)) for name, value in option_values(options).items()
             for one in (value if isinstance(value, list) else [value]) if isinstance(one, str)]
    return [(name, path) for name, path in named if os.path.isfile(path)]  # os.path: False for any odd string too


def flag_name(options: Any, name: str) -> str:
    """How the command line names the option `name`: `--prompt-template`, `--json` for a flag of its own; a bare
    argument is `OLD` (diff's), one of several `a SOURCE` (ingest's SOURCES)."""
    metadata = next((spec.metadata for spec in dataclasses.fields(options) if spec.name == name), {})
    if metadata.get("argument"):
        several = typing.get_origin(typing.get_type_hints(type(options))[name]) is tuple
        return "a " + name.removesuffix("s").upper() if several else name.upper()
    return (metadata.get("flag") or "--" + name.replace("_", "-")).partition("/")[0]


@dataclass
class StageFiles:
    """What one call of a stage reads and writes: (how the command names it, the file) pairs. `read` holds the input
    manifest, every existing file its options name (ingest's sources, --gold, --config, a voice model...) and the
    default files it reads for options not given (reason's prompt template); `written` its output manifest, side
    files and report (an output folder is the stage's own business)."""

    read: list[tuple[str, Path]]
    written: list[tuple[str, Path]]

    def check(self) -> None:
        """Refuse a call that writes a file it reads, or writes one file twice: outputs are renamed into place, so
        `audit m.jsonl --json m.jsonl` would silently leave the audit report where the manifest was."""
        check_distinct(self.read, self.written)


def check_distinct(read: list[tuple[str, Path]], written: list[tuple[str, Path]]) -> None:
    """A usage error naming both paths when a file in `written` is one in `read` or another one in `written`.
    Paths are compared resolved (relative paths, `..`, symlinks), as the file system will take them."""
    seen: dict[str, tuple[str, Path]] = {}
    for name, path in read:
        seen.setdefault(os.path.realpath(path), (name, path))
    for name, path in written:
        real = os.path.realpath(path)
        if real in seen:
            other_name, other = seen[real]
            raise UsageError(f"{name} {path}: is also {other_name} {other}; choose another file")
        seen[real] = (name, path)


# ------------------------------------------------------------------------------------------------ options from YAML
def parse_options(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An options dataclass from a pipeline's `with:` mapping, every value checked against the field's type:
    `{workers: 2, voice: [a, b], dry-run: true}`. A scalar is taken for a one-element list; numbers are taken for
    text options (YAML reads `seed: 0` and `name: 2024` as numbers). Unknown and missing options are usage errors."""
    fields = {spec.name: spec for spec in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise UsageError(f"{where}: no option {key!r} (options: {', '.join(fields)})")
        kwargs[name] = _convert(value, hints[name], f"{where}: {key}")
        minimum = fields[name].metadata.get("min")
        if minimum is not None and kwargs[name] is not None and kwargs[name] < minimum:
            raise UsageError(f"{where}: {key}: {value!r} is below the minimum {minimum}")
    for name, spec in fields.items():
        if name not in kwargs and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise UsageError(f"{where}: missing option {name!r}")
    return cls(**kwargs)


def option_values(options: Any) -> dict[str, Any]:
    """An options dataclass as plain JSON-able values (paths as text), for fingerprints and command lines."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(one) for one in value]
        return str(value) if isinstance(value, Path) else value

    return {field.name: plain(getattr(options, field.name)) for field in dataclasses.fields(options)}


def command_line(stage: Stage, manifest: Path | None, out: Path | None, options: Any,
                 report: Path | None = None) -> str:
    """The `soundmind-data` command that does what a call of `stage.run` does, options left at their defaults
    omitted: what run logs and dataset cards cite, and what a user can paste to redo one stage by hand. A password in
    an option's URL (reason's --endpoint) shows as ***: logs and cards are shared."""
    import shlex

    args = ["soundmind-data", stage.name]
    if stage.reads_manifest:
        args.append(str(manifest))
    for spec in dataclasses.fields(options):
        value = getattr(options, spec.name)
        if spec.name == stage.positional:
            args += [str(one) for one in value]
        elif value == spec.default or value is False or value is None or value == ():  # 0 and 0.0 are values
            continue
        elif value is True:
            args.append("--" + spec.name.replace("_", "-"))
        else:
            for one in value if isinstance(value, tuple) else [value]:
                args += ["--" + spec.name.replace("_", "-"), redact(one)]
    if out is not None and stage.output:
        args += [stage.output_flag, str(out)]
    if report is not None:
        args += ["--json", str(report)]
    return shlex.join(args)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
        inner = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner[0], where)
    if origin in (tuple, list):
        element = args[0]
        values = value if isinstance(value, list) else [value]
        return tuple(_convert(one, element, where) for one in values)
    if isinstance(value, (list, dict)) or value is None:
        raise UsageError(f"{where}: expected one {_type_name(hint)}, got {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected {_type_name(hint)}, got {value!r}")
    if hint is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():  # `seed: 3.0`
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except ValueError:
            pass
    elif hint is str:
        return str(value)
    elif hint is Path:
        return Path(str(value))
    raise UsageError(f"{where}: expected {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "text", Path: "a path", bool: "true or false"}.get(hint, str(hint))
