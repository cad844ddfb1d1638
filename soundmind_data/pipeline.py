"""Pipelines: a YAML list of stages, each one soundmind-data command, run in order over one work dir.

Each stage reads the previous stage's manifest and writes its own into the work dir, so every manifest after
synthesis sits beside the audio it points to. A stage is skipped on a re-run when its command, options and inputs
(content hashes of its input manifest, of every file its options name, and of the default files it reads) are
unchanged and its output is still the one it wrote, audio files included: an interrupted build resumes where it
stopped (and synthesis itself resumes item by item through its cache). A manifest changed since the pipeline wrote
it (a contributor's `soundmind-data add --to` on it) is never silently overwritten: the run stops with a usage error
unless `--from` asks for that stage to be rebuilt. Every stage run or skipped is appended to `run-log.jsonl` with
its command line, duration, item counts, failures and the toolkit version.

The runner does not import the CLI: it is given `invoke(args) -> exit code` and `check(args)` (parse without
running) by `cli.py`, so a pipeline stage is exactly the command a user would type.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from soundmind_data import __version__, schemas
from soundmind_data.errors import UsageError
from soundmind_data.jsonl import iter_lines, write_json

STATE_FILE = "pipeline-state.json"
RUN_LOG = "run-log.jsonl"
PLOTS_DIR = "plots"  # WORKDIR/plots/*.png, drawn after the last manifest; publish puts them on the dataset card
INTERRUPTED_EXIT = 130  # logged for a stage stopped by Ctrl-C or SIGTERM, as the shell reports an interrupted command
WRITTEN_OPTIONS = frozenset({"json"})  # options naming a file the stage writes (its report), not one it reads
AUDIO_FIELDS = ("question_audio", "answer_audio")


@dataclass(frozen=True)
class StageIO:
    """How the runner wires one command into the chain."""

    takes_manifest: bool  # the previous manifest is the command's first argument
    output_flag: str | None  # the option the runner points at the stage's output
    manifest_in_output: str | None  # for a folder output: the manifest the stage writes inside it
    writes_manifest: bool = True  # False: the stage's input passes through to the next stage
    report_flag: str | None = None  # "--json": the runner asks for a report in the work dir


STAGE_IO: dict[str, StageIO] = {
    "ingest": StageIO(False, "--out", None),
    "reason": StageIO(True, "--out", None, report_flag="--json"),
    "split": StageIO(True, "--out", None, report_flag="--json"),
    "synthesize": StageIO(True, "--out", "manifest.jsonl"),
    "validate": StageIO(True, "--out", None, report_flag="--json"),
    "audit": StageIO(True, None, None, writes_manifest=False, report_flag="--json"),
    "balance": StageIO(True, "--out", None, report_flag="--json"),
    "publish": StageIO(True, "--local-dir", None, writes_manifest=False),
    "export": StageIO(True, "--out", None, writes_manifest=False),
}


@dataclass
class Stage:
    index: int
    name: str
    command: str
    options: dict[str, Any]
    continue_on_failure: bool = False


@dataclass
class Pipeline:
    path: Path
    name: str
    stages: list[Stage]

    def stage_named(self, name: str) -> Stage:
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


@dataclass
class RunSummary:
    workdir: Path
    stages: list[StageRun] = field(default_factory=list)
    final_manifest: Path | None = None
    plots: list[Path] = field(default_factory=list)
    hub_folder: Path | None = None  # the Hub-ready folder, when a publish stage ran or was skipped

    @property
    def exit_code(self) -> int:
        return 1 if any(run.status == "failed" for run in self.stages) else 0


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    problem = schemas.first_error("pipeline", data)
    if problem:
        raise UsageError(f"{path}: {problem}")
    stages, seen = [], set()
    for index, entry in enumerate(data["stages"], start=1):
        name = entry.get("name") or entry["stage"]
        if name in seen:
            name = f"{name}-{index}"
        seen.add(name)
        stages.append(Stage(index, name, entry["stage"], dict(entry.get("with") or {}),
                            entry.get("continue_on_failure", False)))
    if stages[0].command != "ingest":
        raise UsageError(f"{path}: the first stage must be ingest (it makes the manifest the others read)")
    if any(stage.command == "ingest" for stage in stages[1:]):
        raise UsageError(f"{path}: ingest may only be the first stage")
    return Pipeline(path, data.get("name") or path.stem, stages)


def with_overrides(pipeline: Pipeline, *, sets: list[str] = (), skip: list[str] = (), limit: int | None = None) -> Pipeline:
    """The pipeline with command-line changes applied, for trial runs of a production pipeline:
    `--set synthesize.device=cpu` (the value is read as YAML: 2, true, [a, b]), `--skip reason`, `--limit 20`."""
    stages = {stage.name: stage for stage in pipeline.stages}
    for name in skip:
        stage = pipeline.stage_named(name)
        if stage.command == "ingest":
            raise UsageError(f"--skip {name}: the ingest stage cannot be skipped")
        del stages[stage.name]
    for assignment in sets:
        target, equals, raw = assignment.partition("=")
        name, dot, option = target.partition(".")
        if not (equals and dot and option):
            raise UsageError(f"--set {assignment!r}: expected STAGE.OPTION=VALUE, e.g. synthesize.device=cpu")
        stage = pipeline.stage_named(name)
        if stage.name not in stages:
            raise UsageError(f"--set {assignment!r}: stage {name!r} is skipped")
        stage.options[option.replace("-", "_")] = yaml.safe_load(raw) if raw else ""
    if limit is not None:
        pipeline.stages[0].options["limit"] = limit
    return Pipeline(pipeline.path, pipeline.name, list(stages.values()))


def option_args(options: dict[str, Any]) -> list[str]:
    """YAML options as command-line arguments: `{workers: 2, voice: [a, b], audio: true}` →
    `--workers 2 --voice a --voice b --audio`; `sources` (ingest's positional files) come first, bare."""
    args: list[str] = [str(s) for s in _as_list(options.get("sources", []))]
    for key, value in options.items():
        if key == "sources":
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        else:
            for one in _as_list(value):
                args += [flag, str(one)]
    return args


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Plan:
    """One stage's command line and what it writes."""

    args: list[str]
    out_manifest: Path | None  # the manifest the next stage reads
    output: Path | None  # what the output flag points at: that manifest, the work dir, or a folder
    report: Path | None  # the --json report the runner asked for


def _plan(stage: Stage, manifest: Path | None, workdir: Path) -> Plan:
    io = STAGE_IO[stage.command]
    args = [stage.command]
    if io.takes_manifest:
        args.append(str(manifest))
    args += option_args(stage.options)
    stem = workdir / f"{stage.index:02d}-{stage.name}"
    output: Path | None = None
    out_manifest: Path | None = None
    if io.output_flag:
        if io.manifest_in_output:  # the stage writes a folder: the work dir itself, so audio sits beside manifests
            output = workdir
            out_manifest = workdir / io.manifest_in_output
        elif io.writes_manifest:
            output = out_manifest = stem.with_suffix(".jsonl")
        else:
            output = workdir / stage.name  # a folder users open (the Hub-ready dataset, an export): a plain name
        args += [io.output_flag, str(output)]
    report: Path | None = None
    if io.report_flag and io.report_flag.lstrip("-") not in stage.options:
        report = stem.with_suffix(".report.json")
        args += [io.report_flag, str(report)]
    return Plan(args, out_manifest, output, report)


def file_sha256(path: Path) -> str:
    """sha256 of a file. A stage's output is hashed once to check it and again as the next stage's input: the
    digest is remembered for as long as the file's size and modification time stay the same."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_lines(path: Path | None) -> int | None:
    if path is None or not path.is_file():
        return None
    with open(path, "rb") as handle:
        return sum(1 for line in handle if not line.isspace())


def _default_files(command: str) -> dict[str, Path]:
    """The files a command reads when the option naming them is not given, by option name: they shape its output as
    much as a file named in the pipeline does (and can be edited in a checkout without a new toolkit version)."""
    if command == "reason":
        from soundmind_data.stages.reason import default_template_path

        return {"prompt_template": default_template_path()}
    return {}


def _files_read(stage: Stage) -> list[Path]:
    """The existing files a stage's options name (ingest's sources, --gold, --prompt-template, --config, a voice
    model...) and the default files it reads for the options it is not given."""
    named = [Path(str(value)) for key, values in stage.options.items() if key not in WRITTEN_OPTIONS
             for value in _as_list(values) if not isinstance(value, bool) and value is not None]
    defaults = [path for key, path in _default_files(stage.command).items() if key not in stage.options]
    return [path for path in named + defaults if os.path.isfile(path)]  # os.path: False for any odd string too


def _fingerprint(stage: Stage, args: list[str], inputs: list[Path], workdir: Path) -> str:
    """The hash of everything that shapes a stage's output. Paths inside the work dir count as `$WORKDIR/...`, so a
    work dir that was moved or copied (`cp -r demo-out my-corpus`) keeps its finished stages."""
    portable = lambda text: str(text).replace(str(workdir), "$WORKDIR")  # noqa: E731
    digest = hashlib.sha256(f"{__version__}\0{stage.command}\0".encode())
    digest.update("\0".join(map(portable, args)).encode())
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
                size = os.stat(manifest.parent / audio["path"]).st_size
            except OSError:
                size = -1
            digest.update(f"{audio['path']}\0{size}\n".encode())
    return digest.hexdigest()


_STATE_PATHS = ("manifest", "output")  # kept relative to the work dir in the state file, so it can move


def _load_state(workdir: Path) -> dict[str, Any]:
    try:
        state = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
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


def _check_not_edited(stage: Stage, record: dict[str, Any] | None) -> None:
    """Re-running a stage rewrites its manifest: one changed since the pipeline wrote it (items a contributor added
    with `soundmind-data add --to`, a hand edit) would be lost without a word, so that is a usage error."""
    manifest = record.get("manifest") if record else None
    if manifest and Path(manifest).is_file() and file_sha256(Path(manifest)) != record.get("manifest_sha256"):
        raise UsageError(f"{manifest}: changed since the pipeline wrote it (stage {stage.name}); re-running would "
                         f"overwrite it: move it away to keep it, or pass --from {stage.name} to rebuild it")


def _remember(state: dict[str, Any], workdir: Path, stage: Stage, plan: Plan, fingerprint: str | None) -> None:
    """Record what a stage wrote. `fingerprint` is None when it did not finish (failed, interrupted): it runs again
    next time, and what it left behind is still known as the pipeline's own output, not an outside edit."""
    manifest = plan.out_manifest
    written = manifest is not None and manifest.is_file()
    state[stage.name] = {
        "fingerprint": fingerprint,
        "manifest": str(manifest) if manifest else None,
        "manifest_sha256": file_sha256(manifest) if written else None,
        "audio_files": _audio_files_digest(manifest) if written else None,
        "output": str(plan.output) if plan.output else None,
    }
    _save_state(workdir, state)


def _failures_file(command: str, plan: Plan) -> Path | None:
    """The file in which a stage lists, one line each with the reason, what it set aside."""
    if command == "ingest":
        from soundmind_data.stages.ingest import rejects_path

        return rejects_path(plan.out_manifest)
    if command == "reason":
        from soundmind_data.stages.reason import unresolved_path

        return unresolved_path(plan.out_manifest)
    if command == "synthesize":
        from soundmind_data.stages.synthesize import output_names

        return plan.output / output_names(None)[1]
    if command == "validate":
        return plan.report  # its failures are listed in its report
    return None


def _failures(command: str, plan: Plan) -> tuple[int | None, Path | None]:
    """(how many, where) of the lines or items a stage set aside: ingest's rejects, reason's unresolved items,
    synthesis failures, the items validate failed; (None, None) for a stage that sets none aside."""
    listing = _failures_file(command, plan)
    if listing is None or not listing.is_file():
        return None, None
    if command == "validate":
        return json.loads(listing.read_text(encoding="utf-8"))["failed_items"], listing
    return _count_lines(listing), listing


def _stage_run(stage: Stage, plan: Plan, manifest: Path | None, status: str, exit_code: int,
               duration_s: float) -> StageRun:
    failures, failures_file = _failures(stage.command, plan)
    return StageRun(stage.name, shlex.join(["soundmind-data", *plan.args]), status, exit_code, round(duration_s, 3),
                    _count_lines(manifest), _count_lines(plan.out_manifest), str(plan.output) if plan.output else None,
                    failures, str(failures_file) if failures_file else None)


def run_pipeline(
    pipeline: Pipeline,
    workdir: str | Path,
    *,
    invoke: Callable[[list[str]], int],
    check: Callable[[list[str]], None],
    from_stage: str | None = None,
    only: str | None = None,
    on_stage: Callable[[Stage, str], None] | None = None,
) -> RunSummary:
    """Run the pipeline's stages in `workdir`; returns what each stage did.

    `from_stage` re-runs that stage and every later one even when unchanged, and even when its manifest was changed
    outside the pipeline (a usage error otherwise, before any stage runs); `only` runs that single stage (its input
    is the manifest recorded for the stage before it). Every stage's arguments are checked before any stage runs.
    A KeyboardInterrupt from `invoke` (Ctrl-C, or SIGTERM turned into one) is logged and raised again.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    state = _load_state(workdir)
    forced_from = pipeline.stage_named(from_stage).index if from_stage else None
    only_index = pipeline.stage_named(only).index if only else None
    for stage in pipeline.stages:  # every stage's options are checked before anything runs
        try:
            check(_plan(stage, workdir / "input.jsonl", workdir).args)
        except UsageError as exc:
            raise UsageError(f"{pipeline.path}: stage {stage.index} ({stage.name}): {exc}") from None
    for stage in pipeline.stages:  # and no stage that may run would overwrite a manifest changed outside the pipeline
        if only_index is None and (forced_from is None or stage.index < forced_from):
            _check_not_edited(stage, state.get(stage.name))

    summary = RunSummary(workdir)
    manifest: Path | None = None
    last_manifest_stage = max(s.index for s in pipeline.stages if STAGE_IO[s.command].writes_manifest)
    for stage in pipeline.stages:
        plan = _plan(stage, manifest, workdir)
        if only_index is not None and stage.index != only_index:
            record = state.get(stage.name)
            if stage.index < only_index and STAGE_IO[stage.command].writes_manifest:
                if not record or not record.get("manifest"):
                    raise UsageError(f"--only {only}: stage {stage.name!r} before it has not run yet in {workdir}")
                manifest = Path(record["manifest"])
            continue
        inputs = [manifest] if STAGE_IO[stage.command].takes_manifest else []
        fingerprint = _fingerprint(stage, plan.args, inputs + _files_read(stage), workdir)
        forced = only_index == stage.index or (forced_from is not None and stage.index >= forced_from)
        if not forced and _still_valid(state.get(stage.name), fingerprint):
            if on_stage:
                on_stage(stage, "skipped")
            run = _stage_run(stage, plan, manifest, "skipped", 0, 0.0)
        else:
            if on_stage:
                on_stage(stage, "running")
            started = time.perf_counter()
            try:
                exit_code = invoke(plan.args) or 0
            except KeyboardInterrupt:
                _remember(state, workdir, stage, plan, None)
                _append_log(workdir, _stage_run(stage, plan, manifest, "failed", INTERRUPTED_EXIT,
                                                time.perf_counter() - started))
                raise
            failed = exit_code != 0 and not stage.continue_on_failure
            run = _stage_run(stage, plan, manifest, "failed" if failed else "ran", exit_code,
                             time.perf_counter() - started)
            _remember(state, workdir, stage, plan, None if failed else fingerprint)
        summary.stages.append(run)
        _append_log(workdir, run)
        if run.status == "failed":
            break
        if plan.out_manifest is not None:
            manifest = plan.out_manifest
        if stage.command == "publish":
            summary.hub_folder = plan.output
        if stage.index == last_manifest_stage:  # before publish, which copies the plots onto the dataset card
            summary.plots = plot_corpus(manifest, workdir, redraw=any(r.status == "ran" for r in summary.stages))
    summary.final_manifest = manifest
    return summary


def plot_corpus(manifest: Path, workdir: Path, *, redraw: bool) -> list[Path]:
    """Draw WORKDIR/plots/label-balance.png and durations.png (when the manifest has audio) from the final manifest.

    `redraw` is False when every stage was skipped: the manifest is the one already plotted, so existing plots are
    kept as they are (a no-op re-run writes nothing)."""
    from soundmind_data.checks.plots import LABEL_BALANCE_PNG, write_corpus_plots

    folder = workdir / PLOTS_DIR
    if not redraw and (folder / LABEL_BALANCE_PNG).is_file():
        return sorted(folder.glob("*.png"))
    return write_corpus_plots(manifest, folder)


def _append_log(workdir: Path, run: StageRun) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "toolkit_version": __version__, **run.__dict__}
    with open(workdir / RUN_LOG, "a", encoding="utf-8") as log:  # one write per line: a crash loses at most one entry
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")


def corpus_summary(manifest: Path) -> dict[str, Any]:
    """Items per split × label and hours of audio of a manifest, for the end-of-run summary."""
    from soundmind_data.jsonl import iter_records

    splits: dict[str, dict[int, int]] = {}
    audio_s = 0.0
    for item in iter_records(manifest):
        splits.setdefault(item["split"], {0: 0, 1: 0})[item["label"]] += 1
        if item.get("repeat_of"):
            continue  # an upsampled repeat points at audio already counted
        for key in ("question_audio", "answer_audio"):
            audio_s += (item.get(key) or {}).get("duration_s", 0.0)
    return {"splits": splits, "audio_hours": audio_s / 3600}
