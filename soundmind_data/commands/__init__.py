"""Commands over a finished corpus that are not pipeline stages: `add` (new items join a manifest) and `diff` (what
changed between two manifests). Each module ends with a `COMMAND = Command(...)` declaration (core/stage.py): its
options dataclass declares its options once, and its command is made from it as a stage's is (declared_commands.py).
`add` runs the engines the stages run (ingest's importers, the split assignment, the synthesis driver) on the items it
adds."""

from __future__ import annotations

from soundmind_data.core.registry import Registry
from soundmind_data.core.stage import Command

CORPUS_COMMANDS = Registry("command", {name: f"soundmind_data.commands.{name}" for name in ("add", "diff")},
                           attribute="COMMAND")


def declaration(name: str) -> Command:
    """The declaration of the command `name` (one of CORPUS_COMMANDS)."""
    return CORPUS_COMMANDS.load(name)
