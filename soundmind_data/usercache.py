"""The user's cache folder for what is built once per machine: `$SOUNDMIND_DATA_CACHE`, else
`$XDG_CACHE_HOME/soundmind-data`, else `~/.cache/soundmind-data`. NeMo's compiled grammars and de-quantised named
models live there, each in a folder of its own that is built aside and moved into place."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SOUNDMIND_DATA_CACHE"


def cache_root() -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "soundmind-data"
