"""The interface every text-generation backend implements, and the registry that opens them by name
(`LLM_BACKENDS`): each module listed there exposes its backend class as `BACKEND` (`core.registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from soundmind_data.core.errors import UsageError
from soundmind_data.core.registry import Registry


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


# Each module's `BACKEND` is its LLMBackend class (core.registry), imported only when opened.
LLM_BACKENDS = Registry("--backend", {
    "openai": "soundmind_data.llm.openai_compat",
    "transformers": "soundmind_data.llm.transformers_local",
})


def load_llm(name: str, *, model: str | None, **settings) -> LLMBackend:
    """The backend called `name` with `model` and `settings` (the other fields of LLMSettings), checked and ready.
    The openai backend reads its key from OPENAI_API_KEY (and its endpoint from OPENAI_BASE_URL when none is given),
    so a key never has to appear on a command line."""
    llm_settings = LLMSettings(model, **settings)
    return _backend_for(name, llm_settings).open(llm_settings)


def llm_problems(name: str, *, model: str | None, **settings) -> list[str]:
    """What keeps backend `name` (with the settings `load_llm` takes) from answering here, found in a few seconds
    without loading a model: for openai, an endpoint that does not answer one GET (`openai_compat.probe`); for
    transformers, its packages or its model missing. Bad settings are a UsageError, as from `load_llm`."""
    llm_settings = LLMSettings(model, **settings)
    return _backend_for(name, llm_settings).problems(llm_settings)


def _backend_for(name: str, settings: LLMSettings) -> type[LLMBackend]:
    """The class of backend `name`, once the settings every backend shares are checked, each bad one a UsageError
    naming its option (the backend checks the ones only it uses)."""
    backend = LLM_BACKENDS.load(name)
    if not settings.model:
        raise UsageError(f"--model is required with --backend {name}")
    if settings.temperature < 0:
        raise UsageError(f"--temperature {settings.temperature:g}: must be 0 or more")
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise UsageError(f"--max-tokens {settings.max_tokens}: must be at least 1")
    return backend
