"""The command of every pipeline stage, made from its declaration (core/stage.py) rather than written out.

A stage's options dataclass gives the command's long options: each field's name, type and default, and the help
text, short flag and bounds its `option(...)` holds. Its `Stage` gives the rest: the command's help, the input
manifest argument, the output option (`--out`, or publish's `--local-dir`) and `--json` for a stage that writes a
report. So a stage's options are declared once, and a pipeline's `with:` keys and the command's options cannot
drift apart. cli.py hands a stage's name to `stage_command` only when that command is asked for, so that a command
that is not a stage imports no stage module (each brings heavy libraries of its own).
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import sys
import types
import typing
from pathlib import Path
from typing import Any, List, Optional

import click
import typer

from soundmind_data.core.errors import UsageError
from soundmind_data.core.stage import Stage
from soundmind_data.report.console import Bars, check_log_file, show
from soundmind_data.stages import declaration

REPORT_HELP = "Also write a machine-readable report here."


def run_stage(stage: Stage, manifest: Path | None, out: Path | None, options: Any, report: Path | None = None,
              **context: Any) -> None:
    """Run one stage as its command: refuse a --log-file the stage reads or writes, and a file it both reads and
    writes, ask its preflight whether its backends can run here (as `run` asks of every stage), run it with bars on
    stderr and print its report; exit code 1 when the report says the stage failed its checks or set something
    aside."""
    files = stage.files(manifest, out, options, report)
    check_log_file([*files.read, *files.written])
    files.check()  # before the preflight, as `run` does: `Stage.call` checks again, for callers of the library
    if problems := stage.problems(options):
        raise UsageError("\n".join(problems))
    with Bars() as bars:
        result = stage.call(manifest, out, options, report=report, progress=bars, **context)
    show(result)
    if not result.ok:
        raise typer.Exit(1)


def stage_command(name: str) -> click.Command:
    """The `soundmind-data NAME` command of the pipeline stage NAME."""
    stage = declaration(name)
    output_param = stage.output_flag.lstrip("-").replace("-", "_")
    params = _command_params(stage, output_param)

    def command(**values: Any) -> None:
        manifest, out, report = values.pop("manifest", None), values.pop(output_param, None), values.pop("json", None)
        options = stage.options(**{key: tuple(value) if isinstance(value, list) else value
                                   for key, value in values.items()})
        context = {"command": shlex.join(["soundmind-data", *sys.argv[1:]])} if stage.cites_command else {}
        run_stage(stage, manifest, out, options, report, **context)

    command.__signature__ = inspect.Signature(params)  # what Typer reads the command's parameters from
    command.__annotations__ = {param.name: param.annotation for param in params}
    command.__doc__ = stage.help
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name, context_settings={"help_option_names": ["-h", "--help"]})(command)
    return typer.main.get_command(app)


def _command_params(stage: Stage, output_param: str) -> list[inspect.Parameter]:
    """The command's parameters, in the order its help lists them: the input manifest, the stage's options, the
    output, the report."""
    def param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    params = []
    if stage.reads_manifest:
        params.append(param("manifest", Path, typer.Argument(..., help=stage.input_help)))
    hints = typing.get_type_hints(stage.options)
    for spec in dataclasses.fields(stage.options):
        meta = spec.metadata
        default = ... if spec.default is dataclasses.MISSING else \
            list(spec.default) if isinstance(spec.default, tuple) else spec.default
        annotation = _cli_type(hints[spec.name])
        if spec.name == stage.positional:
            params.append(param(spec.name, annotation, typer.Argument(default, help=meta["help"])))
            continue
        flags = ["--" + spec.name.replace("_", "-"), *([meta["short"]] if meta.get("short") else [])]
        params.append(param(spec.name, annotation, typer.Option(default, *flags, help=meta["help"], min=meta.get("min"),
                                                                metavar=meta.get("metavar"))))
    if stage.output is not None:
        flags = [stage.output_flag, *(["-o"] if stage.output_flag == "--out" else [])]
        params.append(param(output_param, Optional[Path] if stage.output_optional else Path,
                            typer.Option(None if stage.output_optional else ..., *flags, help=stage.output_help)))
    if stage.report:
        params.append(param("json", Optional[Path], typer.Option(None, "--json", help=REPORT_HELP)))
    return params


def _cli_type(hint: Any) -> Any:
    """The type Typer reads for an option's field type: a tuple is a repeatable option (a list), `X | None` an
    optional one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return Optional[_cli_type(next(arg for arg in args if arg is not type(None)))]
    if origin is tuple:
        return List[args[0]]
    return hint
