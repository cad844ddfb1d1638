"""A pipeline's configuration: its YAML file loaded and checked (`load_pipeline`), the command line's changes to it
(`with_overrides`), and each stage's plan: its checked options and the paths in the work dir the runner gives it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmind_data.core import yamlfile
from soundmind_data.core.corpus import AUDIO_DIR, CORPUS_MANIFEST, ID_PATTERN, PLOTS_DIR, REVIEW_DIR
from soundmind_data.core.errors import UsageError
from soundmind_data.core.stage import CORPUS, FOLDER, MANIFEST, Stage, StageFiles, command_line, parse_options
from soundmind_data.stages import declaration

REPORT_OPTION = "json"  # a pipeline may name a stage's report file itself, as `--json` does on the command line


@dataclass
class Step:
    """One entry of a pipeline's `stages:` list."""

    index: int
    name: str
    command: str  # the stage it runs
    options: dict[str, Any]  # its `with:` mapping, as written (checked against the stage's options when it runs)
    continue_on_failure: bool = False


@dataclass
class Pipeline:
    path: Path
    name: str
    stages: list[Step]

    def stage_named(self, name: str) -> Step:
        """The stage called `name`, or else the only stage running the command `name`."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        running = [stage for stage in self.stages if stage.command == name]
        if len(running) == 1:
            return running[0]
        raise UsageError(f"{self.path}: no stage named {name!r} (stages: {', '.join(s.name for s in self.stages)})")


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    data = yamlfile.load(path)
    yamlfile.check(path, "pipeline", data)
    stages, seen = [], set()
    for index, entry in enumerate(data["stages"], start=1):
        name = entry.get("name") or entry["stage"]
        # A stage's name names its manifest and its output folder in the work dir: like an item's id, it must be a
        # plain file name ("." or ".." would put them outside the work dir, or make the work dir itself the output).
        if not ID_PATTERN.fullmatch(name):
            raise UsageError(f"{path}: stages.{index - 1}.name: {name!r} is not a plain file name (letters, digits, "
                             f"'.', '_', '-'; not '.' or '..')")
        if name in (AUDIO_DIR, PLOTS_DIR, REVIEW_DIR):  # folders the runner and synthesis write into the work dir
            raise UsageError(f"{path}: stages.{index - 1}.name: {name!r} is the name of the work dir's "
                             f"{name} folder; name the stage otherwise")
        if name in seen:
            name = f"{name}-{index}"
        seen.add(name)
        options = {key.replace("-", "_"): value for key, value in (entry.get("with") or {}).items()}
        stages.append(Step(index, name, entry["stage"], options,
                           entry.get("continue_on_failure", False)))
    # The first stage makes the manifest the others read: it is the one stage that reads none (ingest).
    if declaration(stages[0].command).reads_manifest:
        raise UsageError(f"{path}: the first stage must be one that reads sources, not a manifest (ingest)")
    for stage in stages[1:]:
        if not declaration(stage.command).reads_manifest:
            raise UsageError(f"{path}: {stage.command} may only be the first stage")
    return Pipeline(path, data.get("name") or path.stem, stages)


def with_overrides(pipeline: Pipeline, *, sets: list[str] = (), skip: list[str] = (), limit: int | None = None) -> Pipeline:
    """The pipeline with command-line changes applied, for trial runs of a production pipeline:
    `--set synthesize.device=cpu` (the value is read as YAML: 2, true, [a, b]), `--skip reason`, `--limit 20`."""
    stages = {stage.name: stage for stage in pipeline.stages}
    for name in skip:
        stage = pipeline.stage_named(name)
        if stage is pipeline.stages[0]:
            raise UsageError(f"--skip {name}: the first stage ({stage.command}) cannot be skipped")
        del stages[stage.name]
    for assignment in sets:
        target, equals, raw = assignment.partition("=")
        name, dot, option = target.partition(".")
        if not (equals and dot and option):
            raise UsageError(f"--set {assignment!r}: expected STAGE.OPTION=VALUE, e.g. synthesize.device=cpu")
        stage = pipeline.stage_named(name)
        if stage.name not in stages:
            raise UsageError(f"--set {assignment!r}: stage {name!r} is skipped")
        stage.options[option.replace("-", "_")] = yamlfile.parse_value(raw, f"--set {target}") if raw else ""
    if limit is not None:
        pipeline.stages[0].options["limit"] = limit
    return Pipeline(pipeline.path, pipeline.name, list(stages.values()))


@dataclass(frozen=True)
class Plan:
    """One stage of a run: its declaration, checked options and the paths the runner gives it."""

    step: Step
    stage: Stage
    options: Any
    manifest: Path | None  # what it reads
    out: Path | None  # what it writes: a manifest or a folder
    out_manifest: Path | None  # the manifest the next stage reads, when this stage writes one
    report: Path | None

    @property
    def command_line(self) -> str:
        return command_line(self.stage, self.manifest, self.out, self.options, self.report)

    @property
    def files(self) -> StageFiles:
        """What the stage reads and writes, as its command would name them."""
        return self.stage.files(self.manifest, self.out, self.options, self.report)


def plan_step(step: Step, stage: Stage, manifest: Path | None, workdir: Path) -> Plan:
    raw = dict(step.options)
    report_option = raw.pop(REPORT_OPTION, None) if stage.report else None
    where = f"stage {step.index} ({step.name})"
    options = parse_options(stage.options, raw, where)
    stem = workdir / f"{step.index:02d}-{step.name}"
    out = out_manifest = None
    if stage.output == MANIFEST:
        out = out_manifest = stem.with_suffix(".jsonl")
    elif stage.output == CORPUS:  # the work dir itself, so audio sits beside the manifests
        out, out_manifest = workdir, workdir / CORPUS_MANIFEST
    elif stage.output == FOLDER:  # a folder users open (the Hub-ready dataset, an export): a plain name
        out = workdir / step.name
    report = None
    if stage.report:
        report = Path(str(report_option)) if report_option else stem.with_suffix(".report.json")
    return Plan(step, stage, options, manifest if stage.reads_manifest else None, out, out_manifest, report)
