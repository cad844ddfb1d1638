"""The interface every text-generation backend implements (the registry in `__init__` opens them by name)."""

from __future__ import annotations

from typing import Protocol


class BackendError(Exception):
    """A request failed for good (after any retries). The message is safe to print: it never holds a credential."""


class Backend(Protocol):
    name: str  # "openai", "transformers": recorded in each item's provenance
    model: str
    temperature: float
    max_tokens: int | None  # the length limit of a completion; None: the server's own
    retries: int  # requests sent again after a transient failure, for the report

    def complete(self, prompt: str, *, sample_index: int) -> str:
        """One completion of `prompt` as a single user message. `sample_index` lets local backends seed their
        sampler so that sample i of a prompt is reproducible; remote ones may ignore it."""
        ...

    def close(self) -> None:
        ...
