"""Text-generation backends for the reason stage: one small interface, several ways to run a model.

A backend turns one prompt into one completion. It owns everything transport-specific (HTTP retries, a local
model's device); the reason stage owns sampling policy, and runs every backend alike through the response cache
(`response_cache`, which a rerun resumes from) and the request pool (`pool`).
"""

from __future__ import annotations

import os

from soundmind_data.core.errors import UsageError
from soundmind_data.llm.base import Backend, BackendError
from soundmind_data.core.redact import redact

__all__ = ["BACKENDS", "Backend", "BackendError", "backend_problems", "open_backend"]


BACKENDS = ("openai", "transformers")


def open_backend(
    name: str,
    *,
    model: str | None,
    endpoint: str | None = None,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    timeout_s: float = 300.0,
    max_retries: int = 5,
) -> Backend:
    """The backend called `name`, checked and ready. The openai backend reads its key from OPENAI_API_KEY (and its
    endpoint from OPENAI_BASE_URL when none is given), so a key never has to appear on a command line."""
    endpoint = _checked(name, model=model, endpoint=endpoint, temperature=temperature, max_tokens=max_tokens,
                        timeout_s=timeout_s, max_retries=max_retries)
    if name == "transformers":
        from soundmind_data.llm.transformers_local import TransformersBackend

        return TransformersBackend(model, temperature=temperature, max_tokens=max_tokens)

    from soundmind_data.llm.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(endpoint, model, api_key=os.environ.get("OPENAI_API_KEY"), temperature=temperature,
                               max_tokens=max_tokens, timeout_s=timeout_s, max_retries=max_retries)


def backend_problems(name: str, *, model: str | None, endpoint: str | None = None, **settings) -> list[str]:
    """What keeps backend `name` (with the settings `open_backend` takes) from answering here, found in a few seconds
    without loading a model: for openai, an endpoint that does not answer one GET (`openai_compat.probe`); for
    transformers, its packages or its model missing. Bad settings are a UsageError, as from `open_backend`."""
    endpoint = _checked(name, model=model, endpoint=endpoint, **settings)
    if name == "transformers":
        from soundmind_data.llm.transformers_local import model_problems

        return model_problems(model)
    from soundmind_data.llm.openai_compat import probe

    problem = probe(endpoint, api_key=os.environ.get("OPENAI_API_KEY"))
    return [problem] if problem else []


def _checked(name: str, *, model: str | None, endpoint: str | None, temperature: float = 0.7,
             max_tokens: int | None = None, timeout_s: float = 300.0, max_retries: int = 5) -> str | None:
    """The settings of backend `name` checked, each bad one a UsageError naming its option; returns the openai
    backend's endpoint (from OPENAI_BASE_URL when none is given)."""
    if name not in BACKENDS:
        raise UsageError(f"--backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if not model:
        raise UsageError(f"--model is required with --backend {name}")
    if temperature < 0:
        raise UsageError(f"--temperature {temperature:g}: must be 0 or more")
    if max_tokens is not None and max_tokens < 1:
        raise UsageError(f"--max-tokens {max_tokens}: must be at least 1")
    if name == "transformers":
        return None
    endpoint = endpoint or os.environ.get("OPENAI_BASE_URL")
    if not endpoint:
        raise UsageError("--endpoint is required with --backend openai (or set OPENAI_BASE_URL)")
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint {redact(endpoint)!r}: expected an http:// or https:// base URL, "
                         "e.g. http://127.0.0.1:8000/v1")
    if timeout_s <= 0:
        raise UsageError(f"--timeout {timeout_s:g}: must be more than 0")
    if max_retries < 0:
        raise UsageError(f"--retries {max_retries}: must be 0 or more")
    return endpoint
