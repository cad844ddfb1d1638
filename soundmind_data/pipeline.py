"""Pipelines: a YAML list of stages run in order over one work dir, each by calling its stage's entry function.

Each stage reads the previous stage's manifest and writes its own into the work dir, wired by the stage's
declaration (stage.py): what it reads, what it writes, whether it writes a report. Every manifest after synthesis
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

The runner knows no stage by name: everything it needs is in the declarations. It never prints; the caller is told
of each stage through `on_stage` and `on_done`.

The runner's own files in the work dir (run log, state file, plots, the review page) are never written or read through
a symlink, which could lead out of the work dir, nor waited on (a FIFO): such a file is a usage error before anything
runs. No file a stage writes may be one it reads, or one another stage or the runner writes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundmind_data import __version__, schemas, yamlfile
from soundmind_data.corpus import (AUDIO_DIR, AUDIO_FIELDS, CARD_FILE, CORPUS_MANIFEST, ID_PATTERN, PLOTS_DIR, REVIEW_DIR, RUN_LOG,
                                   STATE_FILE, LabelCounts, in_workdir)
from soundmind_data.errors import DataError, UsageError
from soundmind_data.digests import file_digest
from soundmind_data.jsonl import count_lines, iter_lines, iter_records, write_json
from soundmind_data.paths import UnsafePath, audio_file
from soundmind_data.review import PAGE, SOURCES_FILE, ReviewReport, ReviewSources, StageStep, \
    saved_inputs_sha256, sources_of_page, write_review
from soundmind_data.stage import CORPUS, FOLDER, MANIFEST, SILENT, Progress, Stage, StageReport, Summary, \
    StageFiles, check_distinct, command_line, option_values, parse_options
from soundmind_data.table import format_table, split_label_table
from soundmind_data.stages import declaration

INTERRUPTED_EXIT = 130  # logged for a stage stopped by Ctrl-C or SIGTERM, as the shell reports an interrupted command
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


@dataclass
class StageRun:
    stage: str
    command: str
    status: str  # ran | skipped | failed
    exit_code: int
    duration_s: float
    items_in: int | None
    items_out: int | None
    output: str | None
    failures: int | None = None  # lines or items the stage set aside; None for stages that set none aside
    failures_file: str | None = None  # where they are listed, with the reasons
    report: str | None = None  # the stage's JSON report


@dataclass
class RunSummary:
    workdir: Path
    stages: list[StageRun] = field(default_factory=list)
    final_manifest: Path | None = None
    plots: list[Path] = field(default_factory=list)
    hub_folder: Path | None = None  # the Hub-ready folder, when a publish stage ran or was skipped
    review: ReviewReport | None = None  # the review page of the final corpus, when this run wrote it
    review_page: Path | None = None  # where it is (written by this run or an earlier one)
    review_note: str | None = None  # why it could not be written

    @property
    def exit_code(self) -> int:
        return 1 if any(run.status == "failed" for run in self.stages) else 0

    @property
    def run_log(self) -> Path:
        return self.workdir / RUN_LOG

    def summary(self) -> Summary:
        """The end-of-run tables: each stage, its failures, the corpus it made and where everything is."""
        rows = [(r.stage, r.status if r.exit_code == 0 or r.status == "failed" else f"{r.status} (exit {r.exit_code})",
                 f"{r.duration_s:.1f}", r.items_in, r.items_out, r.failures) for r in self.stages]
        text = Summary(out=["", format_table(("stage", "status", "seconds", "items in", "items out", "failures"),
                                             rows)])
        text.out += [f"failures of {r.stage}: {r.failures} -> {r.failures_file}" for r in self.stages if r.failures]
        if self.final_manifest and self.final_manifest.is_file():
            counts, audio_hours = corpus_summary(self.final_manifest)
            text.out += ["", split_label_table(counts),
                         f"\naudio: {audio_hours:.3f} h; final manifest: {self.final_manifest}"]
        if self.hub_folder:
            text.out.append(f"Hub-ready folder: {self.hub_folder}")
        text.out.append(f"work dir: {self.workdir} (run log: {self.run_log})")
        if self.plots:
            text.out.append(f"plots: {', '.join(str(path) for path in self.plots)}")
        if self.review_page:
            text.out.append(f"review page: {self.review_page}")
        if self.review:
            text.err += self.review.summary().err
        if self.review_note:
            text.err.append(f"run: warning: {self.review_note}")
        if self.exit_code:
            failed = next(r for r in self.stages if r.status == "failed")
            text.err.append(f"run: stage {failed.stage} failed (exit {failed.exit_code}); fix it and re-run to resume")
        return text


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


def _plan(step: Step, stage: Stage, manifest: Path | None, workdir: Path) -> Plan:
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


def file_sha256(path: Path) -> str:
    """sha256 of a file. A stage's output is hashed once to check it and again as the next stage's input: the
    digest is remembered for as long as the file's size and modification time stay the same."""
    return file_digest(path, "sha256")


def _fingerprint(plan: Plan, workdir: Path) -> str:
    """The hash of everything that shapes a stage's output. Paths inside the work dir count as `$WORKDIR/...`, so a
    work dir that was moved or copied (`cp -r demo-out my-corpus`) keeps its finished stages."""
    portable = lambda text: in_workdir(str(text), workdir)  # noqa: E731
    inputs = [path for _, path in plan.files.read]  # the input manifest, the files its options name, default files
    shaping = {"version": __version__, "stage": plan.stage.name, "options": option_values(plan.options),
               "out": plan.out and str(plan.out), "report": plan.report and str(plan.report)}
    digest = hashlib.sha256(portable(json.dumps(shaping, sort_keys=True)).encode())
    for path in inputs:
        digest.update(f"\0{portable(path)}\0{file_sha256(path) if path.is_file() else 'missing'}".encode())
    return digest.hexdigest()


def _audio_files_digest(manifest: Path) -> str:
    """sha256 over the path and size of every audio file a manifest points to (relative to its folder): a deleted or
    truncated file changes it, at the cost of one stat per file rather than reading the audio."""
    digest = hashlib.sha256()
    for line in iter_lines(manifest):
        for key in AUDIO_FIELDS:
            audio = (line.record or {}).get(key)
            if not isinstance(audio, dict) or "path" not in audio:
                continue
            try:
                size = os.stat(audio_file(manifest.parent, audio["path"])).st_size
            except (UnsafePath, OSError):  # a path the stages refuse counts as a missing file
                size = -1
            digest.update(f"{audio['path']}\0{size}\n".encode())
    return digest.hexdigest()


_STATE_PATHS = ("manifest", "output", "failures_file")  # kept relative to the work dir in the state file
_STATE_HELP = "fix it, or delete it to run every stage again"


def _load_state(workdir: Path) -> dict[str, Any]:
    """The state file, checked against schemas/pipeline-state.schema.json: a hand-edited one of the wrong shape is a
    usage error naming the field, not a traceback in the middle of the skip rule."""
    path = workdir / STATE_FILE
    try:
        handle = os.fdopen(_open_own(path, os.O_RDONLY), encoding="utf-8")
    except FileNotFoundError:
        return {}
    with handle:
        try:
            state = json.load(handle)
        except ValueError as exc:  # UnicodeDecodeError included
            raise UsageError(f"{path}: not JSON ({yamlfile.shorten(exc)}); {_STATE_HELP}") from None
    if problem := schemas.first_error("pipeline-state", state):
        raise UsageError(f"{path}: {yamlfile.shorten(problem)}; {_STATE_HELP}")
    for record in state.values():
        for key in _STATE_PATHS:
            if record.get(key):
                record[key] = str(workdir / record[key])  # an absolute path stays as it is
    return state


def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    def relative(path: str | None) -> str | None:
        return os.path.relpath(path, workdir) if path and Path(path).is_relative_to(workdir) else path

    write_json(workdir / STATE_FILE, {name: {**record, **{key: relative(record.get(key)) for key in _STATE_PATHS}}
                                      for name, record in state.items()})


def _still_valid(record: dict[str, Any] | None, fingerprint: str) -> bool:
    if not record or record.get("fingerprint") != fingerprint:
        return False
    manifest = record.get("manifest")
    if manifest:
        return (Path(manifest).is_file() and file_sha256(Path(manifest)) == record.get("manifest_sha256")
                and _audio_files_digest(Path(manifest)) == record.get("audio_files"))
    output = record.get("output")
    return output is None or Path(output).exists()


def _check_not_edited(step: Step, record: dict[str, Any] | None) -> None:
    """Re-running a stage rewrites its manifest: one changed since the pipeline wrote it (items a contributor added
    with `soundmind-data add --to`, a hand edit) would be lost without a word, so that is a usage error."""
    manifest = record.get("manifest") if record else None
    if manifest and Path(manifest).is_file() and file_sha256(Path(manifest)) != record.get("manifest_sha256"):
        raise UsageError(f"{manifest}: changed since the pipeline wrote it (stage {step.name}); re-running would "
                         f"overwrite it: move it away to keep it, or pass --from {step.name} to rebuild it")


def _remember(state: dict[str, Any], workdir: Path, plan: Plan, fingerprint: str | None,
              report: StageReport | None) -> None:
    """Record what a stage wrote and what it set aside. `fingerprint` is None when it did not finish (failed,
    interrupted): it runs again next time, and what it left behind is still known as the pipeline's own output, not
    an outside edit."""
    manifest = plan.out_manifest
    written = manifest is not None and manifest.is_file()
    set_aside_file = report.set_aside_file if report else None
    state[plan.step.name] = {
        "fingerprint": fingerprint,
        "manifest": str(manifest) if manifest else None,
        "manifest_sha256": file_sha256(manifest) if written else None,
        "audio_files": _audio_files_digest(manifest) if written else None,
        "output": str(plan.out) if plan.out else None,
        "set_aside": report.set_aside if report else None,
        "failures_file": str(set_aside_file) if set_aside_file else None,
    }
    _save_state(workdir, state)


def _stage_run(plan: Plan, status: str, exit_code: int, duration_s: float, record: dict[str, Any]) -> StageRun:
    """The run-log entry of a stage; what it set aside is as `_remember` recorded it (for a skipped stage: when it
    last ran)."""
    return StageRun(plan.step.name, plan.command_line, status, exit_code, round(duration_s, 3),
                    count_lines(plan.manifest) if plan.manifest else None,
                    count_lines(plan.out_manifest) if plan.out_manifest else None,
                    str(plan.out) if plan.out else None, record.get("set_aside"), record.get("failures_file"),
                    str(plan.report) if plan.report else None)


def run_pipeline(
    pipeline: Pipeline,
    workdir: str | Path,
    *,
    stages: Callable[[str], Stage] = declaration,
    progress: Progress = SILENT,
    from_stage: str | None = None,
    only: str | None = None,
    on_stage: Callable[[Step, str], None] | None = None,
    on_done: Callable[[Step, StageReport | None, str | None], None] | None = None,
    check_files: Callable[[list[tuple[str, Path]]], None] | None = None,
) -> RunSummary:
    """Run the pipeline's stages in `workdir`; returns what each stage did.

    `stages` gives the declaration of a stage by name (tests give stand-ins). `from_stage` re-runs that stage and
    every later one even when unchanged, and even when its manifest was changed outside the pipeline (a usage error
    otherwise, before any stage runs); `only` runs that single stage (its input is the manifest recorded for the
    stage before it). Every stage's options are checked, and every stage that will run is asked whether its
    backends can run here (`_preflight`), before any stage runs. `on_stage(step, "running" |
    "skipped")` is called before a stage, `on_done(step, report, error)` after one ran: its report, or the one-line
    error of a stage that failed on bad data (exit code 1). A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into
    one) is logged and raised again; a UsageError is raised as it is. `check_files` is given every file the run
    reads or writes, each with what it is, before anything runs (the CLI refuses a `--log-file` that is one of them).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    forced_from = pipeline.stage_named(from_stage).index if from_stage else None
    only_index = pipeline.stage_named(only).index if only else None
    declared = {step.name: stages(step.command) for step in pipeline.stages}
    files = _check_plans(pipeline, declared, workdir)  # every stage's options and files, before anything runs
    if check_files is not None:
        check_files(files)
    state = _load_state(workdir)
    for step in pipeline.stages:  # and no stage that may run would overwrite a manifest changed outside the pipeline
        if only_index is None and (forced_from is None or step.index < forced_from):
            _check_not_edited(step, state.get(step.name))
    _preflight(pipeline, declared, workdir, state, forced_from, only_index)  # and every backend that will run is there

    summary = RunSummary(workdir)
    manifest: Path | None = None
    reviewed: list[Plan] = []  # the stages of this run, in order, for the review page
    last_manifest_stage = max(s.index for s in pipeline.stages if declared[s.name].writes_manifest)
    for step in pipeline.stages:
        plan = _plan(step, declared[step.name], manifest, workdir)
        if only_index is not None and step.index != only_index:
            record = state.get(step.name)
            if step.index < only_index and plan.stage.writes_manifest:
                if not record or not record.get("manifest"):
                    raise UsageError(f"--only {only}: stage {step.name!r} before it has not run yet in {workdir}")
                manifest = Path(record["manifest"])
            continue
        fingerprint = _fingerprint(plan, workdir)
        forced = only_index == step.index or (forced_from is not None and step.index >= forced_from)
        if not forced and _still_valid(state.get(step.name), fingerprint):
            if on_stage:
                on_stage(step, "skipped")
            run = _stage_run(plan, "skipped", 0, 0.0, state[step.name])
        else:
            run = _run_stage(plan, state, workdir, fingerprint, progress, on_stage, on_done)
        summary.stages.append(run)
        _append_log(workdir, run)
        if run.status == "failed":
            break
        reviewed.append(plan)
        if plan.out_manifest is not None:
            manifest = plan.out_manifest
        if plan.stage.hub_ready:
            summary.hub_folder = plan.out
        if step.index == last_manifest_stage:  # before publish, which copies the plots onto the dataset card
            summary.plots = plot_corpus(manifest, workdir, redraw=any(r.status == "ran" for r in summary.stages))
    summary.final_manifest = manifest
    if only_index is None and summary.exit_code == 0 and manifest is not None:
        _review(summary, pipeline, reviewed, state, progress)
    return summary


def _check_plans(pipeline: Pipeline, declared: dict[str, Stage], workdir: Path) -> list[tuple[str, Path]]:
    """Check every stage's options, and every file the run would write: none may be a file its stage reads, or
    one that another stage or the runner writes (a `json:` naming a manifest, the run log...), and none may be a
    symlink or other odd file where the runner writes (`_check_own_path`). Returns every file the run reads or
    writes, each with what it is."""
    written = [("the run log", workdir / RUN_LOG), ("the pipeline state", workdir / STATE_FILE)]
    read: list[tuple[str, Path]] = []
    folders = [workdir / PLOTS_DIR, workdir / REVIEW_DIR]
    manifest = None  # each stage reads what the last stage that wrote a manifest wrote, as when the run goes on
    for step in pipeline.stages:
        try:
            plan = _plan(step, declared[step.name], manifest, workdir)
        except UsageError as exc:
            raise UsageError(f"{pipeline.path}: {exc}") from None
        files = plan.files
        try:
            files.check()
        except UsageError as exc:
            raise UsageError(f"{pipeline.path}: stage {step.index} ({step.name}): {exc}") from None
        written += [(f"{name} of stage {step.name}", path) for name, path in files.written]
        read += [(f"{name} of stage {step.name}", path) for name, path in files.read]
        if plan.stage.output == FOLDER:
            folders.append(plan.out)
        manifest = plan.out_manifest or manifest
    try:
        check_distinct([], written)
    except UsageError as exc:
        raise UsageError(f"{pipeline.path}: {exc}") from None
    plots = workdir / PLOTS_DIR
    pngs = sorted(plots.glob("*.png")) if plots.is_dir() and not plots.is_symlink() else []  # handed on to publish
    for path in [*(path for _, path in written), workdir / REVIEW_DIR / SOURCES_FILE, *pngs]:
        _check_own_path(path)
    for folder in folders:
        _check_own_path(folder, folder=True)
    return read + written


def _preflight(pipeline: Pipeline, declared: dict[str, Stage], workdir: Path, state: dict[str, Any],
               forced_from: int | None, only_index: int | None) -> None:
    """Ask every stage that will run whether its backends can run here (`Stage.preflight`: extras installed, model
    files present, the GPU there, the LLM endpoint answering), and refuse the run, one line per problem, before the
    first stage starts: a missing extra must not surface hours into a build, nor an LLM server that is not up as
    minutes of retries. Not asked: stages left out (`--skip`), those `--only` does not run, and those that will be
    skipped as unchanged (the leading run of still-valid stages, judged as the run will judge them), so that resuming
    a build does not need the LLM server of a stage that already finished."""
    problems = []
    manifest: Path | None = None
    unchanged_so_far = only_index is None
    for step in pipeline.stages:
        plan = _plan(step, declared[step.name], manifest, workdir)
        manifest = plan.out_manifest or manifest
        if only_index is not None:
            will_run = step.index == only_index
        else:
            forced = forced_from is not None and step.index >= forced_from
            unchanged_so_far = unchanged_so_far and not forced and _still_valid(state.get(step.name),
                                                                                 _fingerprint(plan, workdir))
            will_run = not unchanged_so_far
        if will_run:
            problems += [f"{pipeline.path}: stage {step.index} ({step.name}): {problem}"
                         for problem in plan.stage.problems(plan.options)]
    if problems:
        raise UsageError("\n".join(problems))


def _review(summary: RunSummary, pipeline: Pipeline, plans: list[Plan], state: dict[str, Any],
            progress: Progress) -> None:
    """Write WORKDIR/review/: the final corpus and every item each stage of this run dropped on the way, unless the
    page there was made from the same files. A page that cannot be written is a warning: the corpus is built."""
    page = summary.workdir / REVIEW_DIR
    card = summary.hub_folder / CARD_FILE if summary.hub_folder else None
    stages = [StageStep(plan.step.name, plan.manifest, plan.out_manifest,
                        Path(state[plan.step.name]["failures_file"]) if state[plan.step.name].get("failures_file")
                        else None)
              for plan in plans if plan.manifest and plan.out_manifest]
    sources = ReviewSources(summary.final_manifest, stages=stages, card=card if card and card.is_file() else None,
                            plots=summary.plots or None, title=pipeline.name)
    if (page / PAGE).is_file() and saved_inputs_sha256(page) == sources.inputs_sha256():
        summary.review_page = page / PAGE  # made from the same files: nothing to write
        return
    try:
        summary.review = write_review(sources, page, progress=progress)
    except (UsageError, DataError) as exc:
        summary.review_note = f"no review page: {exc}"
    else:
        summary.review_page = summary.review.page


def _run_stage(plan: Plan, state: dict[str, Any], workdir: Path, fingerprint: str, progress: Progress,
               on_stage: Callable | None, on_done: Callable | None) -> StageRun:
    """Run one stage: call its entry function, record what it wrote, tell the caller."""
    if on_stage:
        on_stage(plan.step, "running")
    started = time.perf_counter()
    report, error = None, None
    emptied = False
    try:
        report = plan.stage.run(plan.manifest, plan.out, plan.options, report=plan.report, progress=progress)
        exit_code = 0 if report.ok else 1
        # A manifest with no item stops the run here, whatever continue_on_failure says: the next stage could only
        # say that its input is empty, while this one can say why.
        if plan.out_manifest is not None and count_lines(plan.out_manifest) == 0:
            emptied = True
            error, exit_code = f"stage {plan.step.name} wrote no items: {report.why_empty()}", 1
    except DataError as exc:
        error, exit_code = str(exc), 1
    except KeyboardInterrupt:
        _remember(state, workdir, plan, None, None)
        _append_log(workdir, _stage_run(plan, "failed", INTERRUPTED_EXIT, time.perf_counter() - started,
                                        state[plan.step.name]))
        raise
    failed = exit_code != 0 and (emptied or not plan.step.continue_on_failure)
    _remember(state, workdir, plan, None if failed else fingerprint, report)
    if on_done:
        on_done(plan.step, report, error)
    return _stage_run(plan, "failed" if failed else "ran", exit_code, time.perf_counter() - started,
                      state[plan.step.name])


def plot_corpus(manifest: Path, workdir: Path, *, redraw: bool) -> list[Path]:
    """Draw WORKDIR/plots/label-balance.png and durations.png (when the manifest has audio) from the final manifest.

    `redraw` is False when every stage was skipped: the manifest is the one already plotted, so existing plots are
    kept as they are (a no-op re-run writes nothing)."""
    from soundmind_data.plots import LABEL_BALANCE_PNG, write_corpus_plots

    folder = workdir / PLOTS_DIR
    if not redraw and (folder / LABEL_BALANCE_PNG).is_file():
        return sorted(folder.glob("*.png"))
    return write_corpus_plots(manifest, folder)


def _append_log(workdir: Path, run: StageRun) -> None:
    """One line of the run log. Paths in the work dir are written `$WORKDIR/...`, so the log (and the card citing
    it) stays true after the work dir is moved."""
    portable = {key: in_workdir(value, workdir) if isinstance(value, str) else value
                for key, value in run.__dict__.items()}
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "toolkit_version": __version__, **portable}
    fd = _open_own(workdir / RUN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "w", encoding="utf-8") as log:  # one write per line: a crash loses at most one entry
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------- the runner's own files
def _check_own_path(path: Path, *, folder: bool = False) -> None:
    """Refuse what is in the way of a file (`folder`: a folder) the runner writes in the work dir: a symlink, which
    could lead out of it, or anything else that is not a regular file (a folder), such as a FIFO, which would block
    the run forever. Nothing there is fine: the runner makes it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
        raise _odd_path(path, mode, folder)


def _open_own(path: Path, flags: int) -> int:
    """A descriptor on the run log or the state file, opened without following a symlink or blocking on a FIFO
    (O_NOFOLLOW, O_NONBLOCK: a no-op on a regular file), and refused unless it is a regular file. FileNotFoundError
    when there is none and `flags` do not create it."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # a symlink; a FIFO nobody reads; a folder
            raise _odd_path(path, os.lstat(path).st_mode, folder=False) from None
        raise UsageError(f"{path}: cannot open: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _odd_path(path, mode, folder=False)
    return fd


def _odd_path(path: Path, mode: int, folder: bool) -> UsageError:
    kind = ("a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "a FIFO" if
            stat.S_ISFIFO(mode) else "a file" if stat.S_ISREG(mode) else "a device or a socket")
    return UsageError(f"{path}: is {kind}, where the runner writes {'a folder' if folder else 'a file'}; it never "
                      f"follows or waits on one: move it away")


def corpus_summary(manifest: Path) -> tuple[LabelCounts, float]:
    """Items per split × label and hours of audio of a manifest, for the end-of-run summary."""
    counts = LabelCounts()
    audio_s = 0.0
    for item in iter_records(manifest):
        counts.add(item["split"], item["label"])
        if item.get("repeat_of"):
            continue  # an upsampled repeat points at audio already counted
        for key in AUDIO_FIELDS:
            audio_s += (item.get(key) or {}).get("duration_s", 0.0)
    return counts, audio_s / 3600


def review_sources(workdir: Path) -> ReviewSources:
    """What the review page of a work dir was made from at the end of its last finished run (its sources file), to
    make it again: elsewhere, or with the audio copied in."""
    return sources_of_page(workdir / REVIEW_DIR, workdir)
