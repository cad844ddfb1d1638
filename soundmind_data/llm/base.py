"""The interface every text-generation backend implements (the registry `LLM_BACKENDS` in `__init__` opens them by
name): each module listed there exposes its backend class as `BACKEND` (`core.registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LLMError(Exception):
    """A request failed for good (after any retries). The message is safe to print: it never holds a credential."""


@dataclass(frozen=True)
class LLMSettings:
    """What a backend is opened with (`llm.load_llm`, which checks the settings every backend shares); each backend
    checks and takes the ones it uses."""

    model: str
    endpoint: str | None = None  # a server's base URL (openai)
    temperature: float = 0.7
    max_tokens: int | None = None  # the length limit of a completion; None: the backend's own
    timeout_s: float = 300.0  # of each wait on a server (openai)
    max_retries: int = 5  # re-sends of a request after a transient failure (openai)


class LLMBackend(Protocol):
    name: str  # "openai", "transformers": recorded in each item's provenance
    model: str
    temperature: float
    max_tokens: int | None  # the length limit of a completion; None: the server's own
    retries: int  # requests sent again after a transient failure, for the report

    @classmethod
    def open(cls, settings: LLMSettings) -> LLMBackend:
        """The backend ready to answer; a setting it cannot use is a UsageError naming its option."""
        ...

    @staticmethod
    def problems(settings: LLMSettings) -> list[str]:
        """What keeps the backend from answering here, one line each, found in a few seconds without loading a
        model; a setting it cannot use is a UsageError, as from `open`."""
        ...

    def complete(self, prompt: str, *, sample_index: int) -> str:
        """One completion of `prompt` as a single user message. `sample_index` lets local backends seed their
        sampler so that sample i of a prompt is reproducible; remote ones may ignore it."""
        ...

    def close(self) -> None:
        ...
