"""The commands made from declarations rather than written out: one per pipeline stage, and one per command over a
corpus (add, diff).

A declaration's options dataclass gives the command's options: each field's name, type and default, and the help
text, short flag and bounds its `option(...)` holds (an `argument(...)` field is taken as bare arguments). A stage's
`Stage` gives the rest: the command's help, the input manifest argument, the output option (`--out`, or publish's
`--local-dir`) and `--json` for a stage that writes a report. So an option is declared once, and a pipeline's
`with:` keys and the command's options cannot drift apart. The app's command group (`DeclaredCommands`) makes a
command only when it is asked for, so that any other command imports no stage module (each brings heavy libraries).
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import sys
import types
import typing
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from soundmind_data import commands, stages
from soundmind_data.console import Bars, check_log_file, show
from soundmind_data.core.errors import UsageError
from soundmind_data.core.stage import REPORT_HELP, Command, Stage

class DeclaredCommands(TyperGroup):
    """The app's commands: the ones cli.py writes out, a command per pipeline stage and one per command over a
    corpus, each made from its declaration when it is asked for (`soundmind-data --help` asks for them all)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*stages.PIPELINE_STAGES, *commands.CORPUS_COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: typer.Context, name: str) -> TyperCommand | None:
        if name in stages.PIPELINE_STAGES:
            return stage_command(stages.declaration(name))
        if name in commands.CORPUS_COMMANDS:
            return corpus_command(commands.declaration(name))
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, TyperCommand | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as error:  # Typer suggests only the commands it holds: the declared ones too
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in error.message:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise


def stage_command(stage: Stage) -> TyperCommand:
    """The `soundmind-data NAME` command of a pipeline stage: the input manifest, the output, the stage's options,
    the report; it runs the stage as `run` does (`run_stage`)."""
    output_param = stage.output_flag.lstrip("-").replace("-", "_")
    params = [_param("manifest", Path, typer.Argument(..., help=stage.input_help))] if stage.reads_manifest else []
    if stage.output is not None:
        flags = [stage.output_flag, *(["-o"] if stage.output_flag == "--out" else [])]
        params.append(_param(output_param, Optional[Path] if stage.output_optional else Path,
                             typer.Option(None if stage.output_optional else ..., *flags, help=stage.output_help)))
    params += _option_params(stage.options)
    if stage.report:
        params.append(_param("json", Optional[Path], typer.Option(None, "--json", help=REPORT_HELP)))

    def command(**values: Any) -> None:
        manifest, out, report = values.pop("manifest", None), values.pop(output_param, None), values.pop("json", None)
        context = {"command": shlex.join(["soundmind-data", *sys.argv[1:]])} if stage.cites_command else {}
        run_stage(stage, manifest, out, _options(stage.options, values), report, **context)

    return _typer_command(stage.name, stage.help, params, command)


def corpus_command(declared: Command) -> TyperCommand:
    """The command over a corpus (add, diff): its options, with bars on stderr and its report printed; exit code 1
    when the report says something was set aside."""
    def command(**values: Any) -> None:
        options = _options(declared.options, values)
        files = declared.files(options)
        check_log_file([*files.read, *files.written])
        with Bars() as bars:
            report = declared.call(options, progress=bars)
        show(report)
        if not report.ok:
            raise typer.Exit(1)

    return _typer_command(declared.name, declared.help, _option_params(declared.options), command)


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


def _typer_command(name: str, help: str, params: list[inspect.Parameter], command: Callable[..., None]) -> TyperCommand:
    command.__signature__ = inspect.Signature(params)  # what Typer reads the command's parameters from
    command.__annotations__ = {param.name: param.annotation for param in params}
    command.__doc__ = help
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name, context_settings={"help_option_names": ["-h", "--help"]})(command)
    return typer.main.get_command(app)


def _option_params(options: type) -> list[inspect.Parameter]:
    """A parameter per field of an options dataclass, in its order."""
    hints = typing.get_type_hints(options)
    params = []
    for spec in dataclasses.fields(options):
        meta = spec.metadata
        default = ... if spec.default is dataclasses.MISSING else \
            list(spec.default) if isinstance(spec.default, tuple) else spec.default
        annotation = _cli_type(hints[spec.name])
        if meta.get("argument"):
            params.append(_param(spec.name, annotation, typer.Argument(default, help=meta["help"])))
            continue
        flags = [meta.get("flag") or "--" + spec.name.replace("_", "-"), *([meta["short"]] if meta.get("short") else [])]
        option = typer.Option(default, *flags, help=meta["help"], min=meta.get("min"), metavar=meta.get("metavar"))
        params.append(_param(spec.name, annotation, option))
    return params


def _options(options: type, values: dict[str, Any]) -> Any:
    """The options dataclass from the parsed command line (a repeatable option's list is the field's tuple)."""
    return options(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _cli_type(hint: Any) -> Any:
    """The type Typer reads for an option's field type: a tuple is a repeatable option (a list), `X | None` an
    optional one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return Optional[_cli_type(next(arg for arg in args if arg is not type(None)))]
    if origin is tuple:
        return List[args[0]]
    return hint
