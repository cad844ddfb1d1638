"""Every kind of backend is found one way (issue 28): a registry of name -> module, each module's `BACKEND` of its
kind, loaded only when used, and an unknown name a usage error that names the choices."""

import importlib
import subprocess
import sys

import pytest

from soundmind_data.checks.asr import JUDGES, Judge, judge_problems
from soundmind_data.core.errors import UsageError
from soundmind_data.llm import LLM_BACKENDS, load_llm
from soundmind_data.tts.base import VOICE_ENGINES, VoiceEngine, load_voice_engine


@pytest.mark.parametrize("registry, kind", [(VOICE_ENGINES, VoiceEngine), (JUDGES, Judge)])
def test_every_registered_module_exposes_a_backend_of_its_kind(registry, kind):
    for name, module in registry.items():
        assert issubclass(importlib.import_module(module).BACKEND, kind), name


def test_every_llm_backend_opens_and_checks_itself_from_its_settings():
    for name, module in LLM_BACKENDS.items():
        backend = importlib.import_module(module).BACKEND
        assert backend.name == name and callable(backend.open) and callable(backend.problems)


def test_an_unknown_name_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match="--backend 'nope': choose one of piper, hibari, kokoro, flite, espeak"):
        load_voice_engine("nope", None, "cpu")
    with pytest.raises(UsageError, match="--backend 'gpt': choose one of openai, transformers"):
        load_llm("gpt", model="m")
    assert judge_problems("vosk") == ["--asr vosk: expected one of whisper, pocketsphinx"]


def test_no_backend_module_is_imported_until_it_is_used():
    modules = [module for registry in (VOICE_ENGINES, JUDGES, LLM_BACKENDS) for module in registry.values()]
    script = ("import sys, soundmind_data.tts.base, soundmind_data.checks.asr, soundmind_data.llm\n"
              f"print([module for module in {modules!r} if module in sys.modules])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
