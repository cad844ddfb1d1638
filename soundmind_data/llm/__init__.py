"""Text-generation backends for the reason stage: one small interface, several ways to run a model.

A backend turns one prompt into one completion. It owns everything transport-specific (HTTP retries, a local
model's device); the reason stage owns sampling policy, and runs every backend alike through the response cache
(`response_cache`, which a rerun resumes from) and the request pool (`pool`).
"""

from __future__ import annotations

from soundmind_data.core.errors import UsageError
from soundmind_data.core.registry import Registry
from soundmind_data.llm.base import LLMBackend, LLMError, LLMSettings

__all__ = ["LLM_BACKENDS", "LLMBackend", "LLMError", "LLMSettings", "llm_problems", "load_llm"]


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

