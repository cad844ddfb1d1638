"""Text-generation backends for the reason stage: one small interface, several ways to run a model.

A backend turns one prompt into one completion. It owns everything transport-specific (HTTP retries, a local
model's device); the reason stage owns sampling policy, and runs every backend alike through the response cache
(`response_cache`, which a rerun resumes from) and the request pool (`pool`).
"""

from __future__ import annotations

from soundmind_data.llm.base import LLM_BACKENDS, LLMBackend, LLMError, LLMSettings, llm_problems, load_llm

__all__ = ["LLM_BACKENDS", "LLMBackend", "LLMError", "LLMSettings", "llm_problems", "load_llm"]
