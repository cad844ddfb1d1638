"""Pipeline stages: each reads a manifest (or source files) and writes a manifest. One stage, one module.

A stage a pipeline can run declares itself at the end of its module (`STAGE = Stage(...)`, see core/stage.py). Modules
are imported only when their stage is used: each brings heavy libraries of its own (numpy, pyarrow, an ASR engine).
A stage imports no other stage: what two of them share is an engine below them. `add` and `diff` work on a finished
manifest and are commands only (`soundmind_data/commands/`).
"""

from __future__ import annotations

from soundmind_data.core.registry import Registry
from soundmind_data.core.stage import Stage

PIPELINE_STAGES = ("ingest", "curate", "reason", "split", "synthesize", "validate", "rerender", "audit", "balance",
                   "publish", "export")
STAGES = Registry("stage", {name: f"soundmind_data.stages.{name}" for name in PIPELINE_STAGES}, attribute="STAGE")


def declaration(name: str) -> Stage:
    """The declaration of the pipeline stage `name` (one of PIPELINE_STAGES)."""
    return STAGES.load(name)
