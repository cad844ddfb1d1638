"""How every kind of pluggable thing is found by name: voice engines (`tts.base.VOICE_ENGINES`), ASR judges
(`checks.asr.JUDGES`), LLM backends (`llm.base.LLM_BACKENDS`), and the declarations of the pipeline stages
(`stages.STAGES`) and of the commands over a corpus (`commands.CORPUS_COMMANDS`).

A registry maps each name to the module that defines it, and every such module exposes what it defines under one
attribute of its kind: `BACKEND` for a backend (a class, built with the arguments its kind's loader passes), `STAGE`
or `COMMAND` for a declaration. A module is imported only when it is used, so that an engine's heavy or optional
packages (onnxruntime, torch, faster-whisper) cost nothing to a run that never uses it, and are no error where they
are not installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from soundmind_data.core.errors import UsageError

CHOOSE_ONE = "{option} {name!r}: choose one of {choices}"


class Registry(Mapping[str, str]):
    """The plug-ins of one kind: name -> path of the module that defines it (read-only)."""

    def __init__(self, option: str, modules: Mapping[str, str], wording: str = CHOOSE_ONE, attribute: str = "BACKEND"):
        """`option`: how a user names one of this kind (`--backend`, `--asr`), for messages. `wording`: the message
        for a name that is not registered, from `option`, `name` and `choices`. `attribute`: what each module names
        what it defines."""
        self.option = option
        self._modules = dict(modules)
        self._wording = wording
        self._attribute = attribute

    def __getitem__(self, name: str) -> str:
        return self._modules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def unknown(self, name: str) -> str | None:
        """Why `name` is no backend of this kind, naming the choices; None when it is one."""
        if name in self._modules:
            return None
        return self._wording.format(option=self.option, name=name, choices=", ".join(self._modules))

    def check(self, name: str) -> None:
        """A UsageError naming the choices when `name` is no backend of this kind."""
        if problem := self.unknown(name):
            raise UsageError(problem)

    def load(self, name: str) -> Any:
        """What `name` is (its module's attribute of this kind), its module imported now."""
        self.check(name)
        return getattr(importlib.import_module(self._modules[name]), self._attribute)
