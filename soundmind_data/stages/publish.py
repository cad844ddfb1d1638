"""Publish: a manifest with audio becomes a Hub-ready folder (shards, plots, dataset card), checked the way users
will load it, and uploaded to the Hugging Face Hub.

With a folder (`out`, the CLI's --local-dir) the folder is built there and kept; without one it is staged in a
temporary folder beside the manifest and removed after the upload. Nothing is uploaded until the pre-push check
passes, and nothing at all without a repo id or with `dry_run`. The token is read by `hub.resolve_token()` and never
leaves `huggingface_hub`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from soundmind_data import hub, tempfiles
from soundmind_data.card import read_stage_runs, render_card
from soundmind_data.corpus import CARD_FILE, PLOTS_DIR, RUN_LOG
from soundmind_data.errors import UsageError
from soundmind_data.hubfolder import DEFAULT_MAX_SHARD_SIZE, BuildResult, CheckResult, build_folder, check_folder, parse_size
from soundmind_data.jsonl import AtomicWriter
from soundmind_data.stage import FOLDER, SILENT, Progress, Stage, StageReport, Summary, command_line
from soundmind_data.stages.audit import audit_manifest


@dataclass(frozen=True)
class PublishOptions:
    repo_id: str | None = None
    private: bool = False
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE
    revision: str | None = None
    dry_run: bool = False


@dataclass
class PublishReport(StageReport):
    folder: Path | None  # the Hub-ready folder kept; None when it was only staged for the upload
    repo_id: str | None
    build: BuildResult
    check: CheckResult
    uploaded: bool = False  # False: checked only (no repo id, a dry run, or a failed check)
    push: hub.PushResult | None = None

    @property
    def ok(self) -> bool:
        return self.check.ok

    def summary(self) -> Summary:
        build, check, push = self.build, self.check, self.push
        splits = ", ".join(f"{split} {stats.rows}" for split, stats in build.splits.items())
        shards = sum(path.endswith(".parquet") for path in build.files)
        plots = f" + {len(build.files) - shards - 1} plot(s)" if len(build.files) > shards + 1 else ""
        text = Summary(out=[f"check: {problem}" for problem in check.problems], err=[
            f"publish: {build.rows} items ({splits}), {build.audio_hours:.2f} h of audio, {shards} parquet shard(s) "
            f"+ README.md{plots} -> {self.folder or 'staging folder'}"])
        if not check.ok:
            text.err.append("publish: pre-push check failed; nothing uploaded")
            return text
        text.err.append(f"publish: pre-push check ok (datasets loads {len(check.decoded)} splits, first rows decode)")
        if push is None:
            text.err.append(f"publish: dry run, nothing uploaded (would go to {self.repo_id})" if self.repo_id else
                            "publish: built only (no --repo-id), nothing uploaded")
        elif push.commit_url is None:
            text.err.append(f"publish: {self.repo_id} is already up to date ({len(push.unchanged)} files unchanged) "
                            f"-> {push.repo_url}")
        else:
            text.err.append(f"publish: {len(push.committed)} files uploaded, {len(push.unchanged)} unchanged, "
                            f"{len(push.deleted)} stale files deleted -> {push.commit_url}")
        return text


def copy_plots(source: Path, folder: Path) -> list[str]:
    """Copy `source/plots/*.png` into `folder/plots/`, replacing the plots of an earlier publish (a plot the pipeline
    no longer draws must not linger on the card); returns their repo paths."""
    source, target = Path(source) / PLOTS_DIR, Path(folder) / PLOTS_DIR
    pngs = sorted(source.glob("*.png"))
    if source.resolve() == target.resolve():  # publishing into the work dir itself: the plots are already in place
        return [f"{PLOTS_DIR}/{png.name}" for png in pngs]
    shutil.rmtree(target, ignore_errors=True)
    for png in pngs:
        with AtomicWriter(target / png.name) as out, open(png, "rb") as image:
            shutil.copyfileobj(image, out.file)
    return [f"{PLOTS_DIR}/{png.name}" for png in pngs]


def prepare(manifest: Path, folder: Path, *, repo_id: str | None, command: str,
            max_shard_size: str = DEFAULT_MAX_SHARD_SIZE, progress: Progress = SILENT) -> tuple[BuildResult, CheckResult]:
    """Build the Hub-ready folder (shards, plots, then the card), then run the pre-push check on it. Uploads nothing.

    A pipeline's run log and plots beside the manifest (its work dir) are cited and shown on the card."""
    progress.start("publish")
    build = build_folder(manifest, folder, max_shard_size=max_shard_size, on_item=progress.advance)
    build.files += copy_plots(Path(manifest).parent, folder)
    card = render_card(build, audit_manifest(manifest).check_counts(), repo_id=repo_id, command=command,
                       stage_runs=read_stage_runs(Path(manifest).parent / RUN_LOG))
    with AtomicWriter(Path(folder) / CARD_FILE) as out:
        out.write(card)
    build.files.append(CARD_FILE)
    return build, check_folder(folder, build)


def run(manifest: Path, out: Path | None, options: PublishOptions, *, report: None = None,
        progress: Progress = SILENT, command: str | None = None) -> PublishReport:
    """The publish stage. `command` is the command line the card cites (default: this stage's own)."""
    if not options.repo_id and not out:
        raise UsageError("give --local-dir DIR (build only), --repo-id ORG/NAME (build and upload), or both")
    if not manifest.is_file():
        raise UsageError(f"{manifest}: no such file")
    parse_size(options.max_shard_size)  # a bad size fails now, not after the build
    remote = None
    if options.repo_id:
        hub.check_repo_id(options.repo_id)
        if not options.dry_run:  # a bad token or a missing permission fails here, before the corpus is built
            remote = hub.open_repo(options.repo_id, token=hub.resolve_token(), private=options.private,
                                   revision=options.revision)
    if not out:
        tempfiles.sweep(manifest.parent, "publish")  # staging folders of killed runs
    folder = out or tempfiles.make_temp_dir(manifest.parent, "publish")
    try:
        build, check = prepare(manifest, folder, repo_id=options.repo_id, max_shard_size=options.max_shard_size,
                               command=command or command_line(STAGE, manifest, out, options), progress=progress)
        result = PublishReport(folder=out, repo_id=options.repo_id, build=build, check=check)
        if remote is None or not check.ok:
            return result
        progress.start("compare with the Hub", unit="file", total=len(build.files))
        result.push = hub.push_folder(remote, folder, commit_message=f"Publish {build.rows} items with soundmind-data",
                                      on_file=lambda _: progress.advance())
        result.uploaded = True
        return result
    finally:
        if not out:
            shutil.rmtree(folder, ignore_errors=True)


STAGE = Stage("publish", run, PublishOptions, output=FOLDER, output_flag="--local-dir", hub_ready=True)
