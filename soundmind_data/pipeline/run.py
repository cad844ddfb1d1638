"""Running a pipeline (`run_pipeline`): every stage's options, files and backends checked before any runs, then
each stage run or skipped as unchanged, the corpus plotted, its review page written, and the end-of-run summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundmind_data.core.corpus import AUDIO_FIELDS, CARD_FILE, PLOTS_DIR, REVIEW_DIR, RUN_LOG, STATE_FILE, LabelCounts
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import count_lines, iter_records
from soundmind_data.core.stage import FOLDER, Progress, SILENT, Stage, Summary, check_distinct
from soundmind_data.pipeline.config import Pipeline, Plan, plan_step
from soundmind_data.pipeline.state import StageRun, append_log, check_not_edited, check_own_path, load_state, \
    remember, stage_fingerprint, stage_run, still_valid
from soundmind_data.report.table import format_table, split_label_table
from soundmind_data.review import PAGE, SOURCES_FILE, ReviewReport, ReviewSources, StageStep, \
    saved_inputs_sha256, write_review
from soundmind_data.stages import declaration

INTERRUPTED_EXIT = 130  # logged for a stage stopped by Ctrl-C or SIGTERM, as the shell reports an interrupted command


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


def run_pipeline(
    pipeline: Pipeline,
    workdir: str | Path,
    *,
    stages: Callable[[str], Stage] = declaration,
    progress: Progress = SILENT,
    from_stage: str | None = None,
    only: str | None = None,
    check_files: Callable[[list[tuple[str, Path]]], None] | None = None,
) -> RunSummary:
    """Run the pipeline's stages in `workdir`; returns what each stage did.

    `stages` gives the declaration of a stage by name (tests give stand-ins). `from_stage` re-runs that stage and
    every later one even when unchanged, and even when its manifest was changed outside the pipeline (a usage error
    otherwise, before any stage runs); `only` runs that single stage (its input is the manifest recorded for the
    stage before it). Every stage's options are checked, and every stage that will run is asked whether its
    backends can run here (`_preflight`), before any stage runs. `progress` is told of every stage,
    `stage_started(step, "running" | "skipped")` before it and `stage_finished(step, report, error)` after it ran
    (its report, or the one-line error of a stage that failed on bad data, exit code 1), and goes down to the stage.
    A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) is logged and raised again; a UsageError is raised as it is. `check_files` is given every file the run
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
    state = load_state(workdir)
    for step in pipeline.stages:  # and no stage that may run would overwrite a manifest changed outside the pipeline
        if only_index is None and (forced_from is None or step.index < forced_from):
            check_not_edited(step, state.get(step.name))
    _preflight(pipeline, declared, workdir, state, forced_from, only_index)  # and every backend that will run is there

    summary = RunSummary(workdir)
    manifest: Path | None = None
    reviewed: list[Plan] = []  # the stages of this run, in order, for the review page
    last_manifest_stage = max(s.index for s in pipeline.stages if declared[s.name].writes_manifest)
    for step in pipeline.stages:
        plan = plan_step(step, declared[step.name], manifest, workdir)
        if only_index is not None and step.index != only_index:
            record = state.get(step.name)
            if step.index < only_index and plan.stage.writes_manifest:
                if not record or not record.get("manifest"):
                    raise UsageError(f"--only {only}: stage {step.name!r} before it has not run yet in {workdir}")
                manifest = Path(record["manifest"])
            continue
        fingerprint = stage_fingerprint(plan, workdir)
        forced = only_index == step.index or (forced_from is not None and step.index >= forced_from)
        if not forced and still_valid(state.get(step.name), fingerprint):
            progress.stage_started(step, "skipped")
            run = stage_run(plan, "skipped", 0, 0.0, state[step.name])
        else:
            run = _run_stage(plan, state, workdir, fingerprint, progress)
        summary.stages.append(run)
        append_log(workdir, run)
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
    symlink or other odd file where the runner writes (`check_own_path`). Returns every file the run reads or
    writes, each with what it is."""
    written = [("the run log", workdir / RUN_LOG), ("the pipeline state", workdir / STATE_FILE)]
    read: list[tuple[str, Path]] = []
    folders = [workdir / PLOTS_DIR, workdir / REVIEW_DIR]
    manifest = None  # each stage reads what the last stage that wrote a manifest wrote, as when the run goes on
    for step in pipeline.stages:
        try:
            plan = plan_step(step, declared[step.name], manifest, workdir)
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
        check_own_path(path)
    for folder in folders:
        check_own_path(folder, folder=True)
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
        plan = plan_step(step, declared[step.name], manifest, workdir)
        manifest = plan.out_manifest or manifest
        if only_index is not None:
            will_run = step.index == only_index
        else:
            forced = forced_from is not None and step.index >= forced_from
            unchanged_so_far = unchanged_so_far and not forced and still_valid(state.get(step.name),
                                                                                stage_fingerprint(plan, workdir))
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


def _run_stage(plan: Plan, state: dict[str, Any], workdir: Path, fingerprint: str, progress: Progress) -> StageRun:
    """Run one stage: call its entry function, record what it wrote, tell the caller."""
    progress.stage_started(plan.step, "running")
    started = time.perf_counter()
    report, error = None, None
    emptied = False
    try:
        report = plan.stage.call(plan.manifest, plan.out, plan.options, report=plan.report, progress=progress)
        exit_code = 0 if report.ok else 1
        # A manifest with no item stops the run here, whatever continue_on_failure says: the next stage could only
        # say that its input is empty, while this one can say why.
        if plan.out_manifest is not None and count_lines(plan.out_manifest) == 0:
            emptied = True
            error, exit_code = f"stage {plan.step.name} wrote no items: {report.why_empty()}", 1
    except DataError as exc:
        error, exit_code = str(exc), 1
    except KeyboardInterrupt:
        remember(state, workdir, plan, None, None)
        append_log(workdir, stage_run(plan, "failed", INTERRUPTED_EXIT, time.perf_counter() - started,
                                       state[plan.step.name]))
        raise
    failed = exit_code != 0 and (emptied or not plan.step.continue_on_failure)
    remember(state, workdir, plan, None if failed else fingerprint, report)
    progress.stage_finished(plan.step, report, error)
    return stage_run(plan, "failed" if failed else "ran", exit_code, time.perf_counter() - started,
                     state[plan.step.name])


def plot_corpus(manifest: Path, workdir: Path, *, redraw: bool) -> list[Path]:
    """Draw WORKDIR/plots/label-balance.png and durations.png (when the manifest has audio) from the final manifest.

    `redraw` is False when every stage was skipped: the manifest is the one already plotted, so existing plots are
    kept as they are (a no-op re-run writes nothing)."""
    from soundmind_data.report.plots import LABEL_BALANCE_PNG, write_corpus_plots

    folder = workdir / PLOTS_DIR
    if not redraw and (folder / LABEL_BALANCE_PNG).is_file():
        return sorted(folder.glob("*.png"))
    return write_corpus_plots(manifest, folder)


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
