"""Pipelines: a YAML list of stages run in order over one work dir, each by calling its stage's entry function.

Each stage reads the previous stage's manifest and writes its own into the work dir, wired by the stage's
declaration (core/stage.py): what it reads, what it writes, whether it writes a report. Every manifest after synthesis
sits beside the audio it points to. A stage is skipped on a re-run when its options and inputs (content hashes of
its input manifest, of every file its options name, and of the default files it reads) are unchanged and its output
is still the one it wrote, audio files included: an interrupted build resumes where it stopped (and synthesis itself
resumes item by item through its cache). A manifest changed since the pipeline wrote it (a contributor's
`soundmind-data add --to` on it) is never silently overwritten: the run stops with a usage error unless `--from`
asks for that stage to be rebuilt. Every stage run or skipped is appended to `run-log.jsonl` with the equivalent
command line, duration, item counts, failures and the toolkit version.

Before the first stage starts, every stage that will run is asked whether its backends can run here (its
`preflight`: extras installed, model files present, the GPU there, the LLM endpoint answering); what any of them
lacks is one usage error, a line per problem, and nothing runs. A stage that writes a manifest with no item stops
the run with the reason it gives (the next stage could only say that its input is empty).

The runner knows no stage by name: everything it needs is in the declarations. It never prints; the caller's
`Progress` is told of each stage (`stage_started`, `stage_finished`).

The runner's own files in the work dir (run log, state file, plots, the review page) are never written or read through
a symlink, which could lead out of the work dir, nor waited on (a FIFO): such a file is a usage error before anything
runs. No file a stage writes may be one it reads, or one another stage or the runner writes.

The package, by job: `config.py` the pipeline file and its plans, `state.py` the state file, run log and fingerprints,
`run.py` the runner itself.
"""

from soundmind_data.pipeline.config import load_pipeline, with_overrides
from soundmind_data.pipeline.run import run_pipeline

__all__ = ["load_pipeline", "run_pipeline", "with_overrides"]
