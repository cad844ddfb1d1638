"""The one way the toolkit reads YAML (pipelines, curate policies, check and train configs, `--set` values): safe
loading without aliases, and every problem as one short usage error naming the file and line.

Aliases are refused because a few hundred bytes of nested ones (a "billion laughs" document) stand for billions of
values: validating them, or quoting them in an error message, never ends. No file of the toolkit needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from soundmind_data.core import schemas
from soundmind_data.core.errors import UsageError

MAX_MESSAGE = 200  # characters of a message about a value: a schema message quotes the value, which may be a whole file


class _AliasRefused(yaml.YAMLError):
    def __init__(self, event: yaml.AliasEvent):
        super().__init__(event.anchor)
        self.anchor, self.mark = event.anchor, event.start_mark


class _NoAliasLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, stopping at the first alias, before anything is built from it."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _AliasRefused(self.peek_event())
        return super().compose_node(parent, index)


def _parse(text: str, where: str, *, with_line: bool) -> Any:
    def at(mark) -> str:
        return f"{where}:{mark.line + 1}" if with_line and mark else where

    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except _AliasRefused as exc:
        raise UsageError(f"{at(exc.mark)}: YAML alias *{exc.anchor}: aliases are not accepted; write the value out") \
            from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise UsageError(f"{at(getattr(exc, 'problem_mark', None))}: not valid YAML: {shorten(problem)}") from None


def load(path: str | Path) -> Any:
    """The document in the YAML file `path` (None for an empty file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, expected a YAML file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return _parse(text, str(path), with_line=True)


def parse_value(text: str, where: str) -> Any:
    """A YAML value given on the command line (`--set STAGE.OPTION=VALUE`); `where` names it in errors."""
    return _parse(text, where, with_line=False)


def check(where: str | Path, schema: str, data: Any) -> None:
    """Refuse `data` that does not follow `schemas/<schema>.schema.json`, in one short line naming `where`."""
    if problem := schemas.first_error(schema, data):
        raise UsageError(f"{where}: {shorten(problem)}")


def shorten(message: object) -> str:
    """`message` on one line and at most MAX_MESSAGE characters: its start (the field) and its end (what was
    expected) are kept, and a long value quoted between them is cut."""
    text = " ".join(str(message).split())
    if len(text) <= MAX_MESSAGE:
        return text
    keep = (MAX_MESSAGE - 5) // 2
    return f"{text[:keep]} ... {text[-keep:]}"
