"""Publish: a manifest with audio becomes a Hub-ready folder (shards, plots, dataset card), checked the way users
will load it, and uploaded to the Hugging Face Hub.

With a folder (`out`, the CLI's --local-dir) the folder is built there and kept; without one it is staged in a
temporary folder beside the manifest and removed after the upload. A folder that holds anything must be an earlier
publish's (its `.soundmind-data-publish` says so) unless `overwrite`: publish replaces its `data/`, `plots/` and
card. Nothing is uploaded until the pre-push check passes, and nothing at all without a repo id or with `dry_run`.
The token is read by `upload.resolve_token()` and never leaves `huggingface_hub`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import CARD_FILE, DATA_DIR, PLOTS_DIR, RUN_LOG, from_workdir, in_workdir
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, iter_records
from soundmind_data.core.paths import AudioFolders, check_output_folder, check_output_owner, mark_output
from soundmind_data.core.stage import FOLDER, Progress, SILENT, Stage, StageReport, Summary, command_line, option
from soundmind_data.engines.manifest_audit import AuditReport, audit_manifest
from soundmind_data.hub import upload
from soundmind_data.hub.card import check_license, read_stage_runs, render_card
from soundmind_data.hub.folder.build import DEFAULT_MAX_SHARD_SIZE, REPLACED, STAGING, BuildResult, build_shards, \
    parse_size, replace_contents
from soundmind_data.hub.folder.check import CheckResult, check_folder
from soundmind_data.engines.soundmind_layout import ReleaseChanges, release_changes
from soundmind_data.report.table import id_sample

# What publish refuses without --allow-flagged: answers that contradict their label or are missing, and copies.
PUBLISH_BLOCKERS = ("answer_label_disagree", "answer_missing", "duplicates", "cross_split_leaks")


@dataclass(frozen=True)
class PublishOptions:
    repo_id: str | None = option(None, help="Hub dataset repo to upload to: ORG/NAME.")
    private: bool = option(False, help="Create the repo as private (an existing repo keeps its visibility).")
    max_shard_size: str = option(DEFAULT_MAX_SHARD_SIZE, help="Largest parquet shard: 500MB, 2GB, 100MiB...")
    revision: str | None = option(None, help="Branch to commit to, created if missing (default: main).")
    dry_run: bool = option(False, help="Build and check everything, name the repo in the card, upload nothing.")
    allow_flagged: bool = option(False,
        help="Publish even what the audit flags (answers against their label or missing, duplicates, cross-split "
             "leaks); the card says so.")
    overwrite: bool = option(False,
        help="Build in a --local-dir that holds files of its own (not an earlier publish), replacing its data/, "
             "plots/ and README.md.")
    license: str | None = option(None, metavar="ID",
        help="The card's licence as a Hub licence id (cc-by-nc-sa-4.0, mit, other...), instead of the strictest of "
             "the text's and the releases' licences; the card says it was chosen.")


@dataclass
class PublishReport(StageReport):
    folder: Path | None  # the Hub-ready folder kept; None when it was only staged for the upload
    repo_id: str | None
    build: BuildResult
    check: CheckResult
    push: upload.PushResult | None = None  # None: nothing uploaded (no repo id, a dry run, or a failed check)

    @property
    def ok(self) -> bool:
        return self.check.ok

    def built_lines(self) -> list[str]:
        """What was built and how the pre-push check went (stderr lines)."""
        build, check = self.build, self.check
        splits = ", ".join(f"{split} {stats.rows}" for split, stats in build.splits.items())
        shards = sum(path.endswith(".parquet") for path in build.files)
        plots = f" + {len(build.files) - shards - 1} plot(s)" if len(build.files) > shards + 1 else ""
        lines = [f"publish: {build.rows} items ({splits}), {build.audio_hours:.2f} h of audio, {shards} parquet "
                 f"shard(s) + README.md{plots} -> {self.folder or 'staging folder'}"]
        if check.ok:
            lines.append(f"publish: pre-push check ok (datasets loads {len(check.decoded)} splits, first rows decode)")
        else:
            lines.append("publish: pre-push check failed; nothing uploaded")
        return lines

    def summary(self) -> Summary:
        """The build and check lines (already shown through the progress before an upload), then the upload's."""
        push = self.push
        text = Summary(out=[f"check: {problem}" for problem in self.check.problems],
                       err=[] if push is not None else self.built_lines())
        if not self.check.ok:
            return text
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


def copy_plots(source: Path, staging: Path) -> list[str]:
    """Copy `source/plots/*.png` into `staging/plots/`, the plots that replace those of an earlier publish (a plot the
    pipeline no longer draws must not linger on the card); returns their repo paths."""
    target = Path(staging) / PLOTS_DIR
    pngs = sorted((Path(source) / PLOTS_DIR).glob("*.png"))
    for png in pngs:
        with AtomicWriter(target / png.name) as out, open(png, "rb") as image:
            shutil.copyfileobj(image, out.file)
    return [f"{PLOTS_DIR}/{png.name}" for png in pngs]


def flagged_findings(audit: AuditReport) -> dict[str, int]:
    """The audit's findings that keep a manifest from being published (without --allow-flagged), by check."""
    return {check: audit.count(check) for check in PUBLISH_BLOCKERS if audit.count(check)}


def _refusal(manifest: Path, audit: AuditReport, flagged: dict[str, int]) -> str:
    findings = "; ".join(f"{count} {check} ({id_sample(audit.ids[check], 3, total=count)})"
                         for check, count in flagged.items())
    fix = "curate it (`soundmind-data curate`)"
    if "answer_missing" in flagged:
        fix += ", write the missing answers (`soundmind-data reason`)"
    return f"{manifest}: not published: the audit flags {findings}; {fix}, or pass --allow-flagged to publish it as it is"


def _curation_reports(stage_runs: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """The reports of the pipeline's curate passes, in stage order (none for a manifest built by hand)."""
    reports = []
    for entry in stage_runs:
        path = from_workdir(entry.get("report") or "", workdir)
        if entry["command"].startswith("soundmind-data curate ") and path.is_file():
            reports.append(json.loads(path.read_text(encoding="utf-8")))
    return reports


def _release_changes(manifest: Path, stage_runs: list[dict[str, Any]], workdir: Path) -> ReleaseChanges | None:
    """What the corpus changed against the release its items came from (None when they did not come from one),
    with the pipeline's curate decisions (each curate run's `failures_file`) and the manifest its ingest wrote."""
    def written(entry: dict[str, Any], key: str) -> Path | None:
        path = from_workdir(entry.get(key) or "", workdir)
        return path if entry.get(key) and path.is_file() else None

    decisions = [path for entry in stage_runs if entry["command"].startswith("soundmind-data curate ")
                 and (path := written(entry, "failures_file"))]
    ingested = next((written(entry, "output") for entry in stage_runs
                     if entry["command"].startswith("soundmind-data ingest ")), None)
    return release_changes(manifest, decisions, ingested)


def prepare(manifest: Path, folder: Path, *, repo_id: str | None, command: str,
            max_shard_size: str = DEFAULT_MAX_SHARD_SIZE, audit: AuditReport | None = None, allow_flagged: bool = False,
            license_id: str | None = None, progress: Progress = SILENT) -> tuple[BuildResult, CheckResult]:
    """Build the Hub-ready folder (shards and plots beside the old ones, swapped in, then the card), then run the
    pre-push check on it. Uploads nothing.

    A pipeline's run log, curate reports and plots beside the manifest (its work dir) are cited and shown on the
    card; with `allow_flagged`, the card names the audit's findings the corpus carries."""
    audit = audit or audit_manifest(manifest)
    stage_runs = read_stage_runs(Path(manifest).parent / RUN_LOG)
    if stage_runs:  # built by a pipeline: its work dir is $WORKDIR on the card, as in the stage table
        command = in_workdir(command, Path(manifest).parent.resolve())
    progress.start("publish")
    build = build_shards(manifest, folder, max_shard_size=max_shard_size, progress=progress)
    build.files += copy_plots(Path(manifest).parent, Path(folder) / STAGING)
    mark_output(folder, "publish")
    # From here until the new card is written the folder has none: no card ever describes shards that are not there.
    replaced = replace_contents(Path(folder), (DATA_DIR, PLOTS_DIR))
    card = render_card(build, audit.check_counts(), repo_id=repo_id, command=command, stage_runs=stage_runs,
                       curation=_curation_reports(stage_runs, Path(manifest).parent.resolve()),
                       release=_release_changes(manifest, stage_runs, Path(manifest).parent.resolve()),
                       flagged=flagged_findings(audit) if allow_flagged else None, license_id=license_id)
    with AtomicWriter(Path(folder) / CARD_FILE) as out:
        out.write(card)
    build.files.append(CARD_FILE)
    shutil.rmtree(replaced)  # the slow step, last: a run killed here leaves a whole folder, and the next one removes it
    return build, check_folder(folder, build)


def run(manifest: Path, out: Path | None, options: PublishOptions, *, progress: Progress = SILENT,
        command: str | None = None) -> PublishReport:
    """The publish stage. `command` is the command line the card cites (default: this stage's own)."""
    if not options.repo_id and not out:
        raise UsageError("give --local-dir DIR (build only), --repo-id ORG/NAME (build and upload), or both")
    if not manifest.is_file():
        raise UsageError(f"{manifest}: no such file")
    if out:
        audio = AudioFolders(manifest.parent)  # a --local-dir holding the corpus's audio would see it moved aside
        for item in iter_records(manifest):
            audio.add(item)
        check_output_folder(out, manifest, STAGE.output_flag, audio.folders)
        check_output_owner(out, "publish", STAGE.output_flag, overwrite=options.overwrite, own=(STAGING, REPLACED))
    parse_size(options.max_shard_size)  # a bad size or licence fails now, not after the build
    license_id = check_license(options.license) if options.license else None
    audit = audit_manifest(manifest)
    flagged = flagged_findings(audit)
    if flagged and not options.allow_flagged:
        raise DataError(_refusal(manifest, audit, flagged))
    remote = None
    if options.repo_id:
        upload.check_repo_id(options.repo_id)
        if not options.dry_run:  # a bad token or a missing permission fails here, before the corpus is built
            remote = upload.open_repo(options.repo_id, token=upload.resolve_token(), private=options.private,
                                   revision=options.revision)
    if not out:
        tempfiles.sweep(manifest.parent, "publish")  # staging folders of killed runs
    folder = out or tempfiles.make_temp_dir(manifest.parent, "publish")
    try:
        build, check = prepare(manifest, folder, repo_id=options.repo_id, max_shard_size=options.max_shard_size,
                               command=command or command_line(STAGE, manifest, out, options), audit=audit,
                               allow_flagged=options.allow_flagged, license_id=license_id, progress=progress)
        result = PublishReport(folder=out, repo_id=options.repo_id, build=build, check=check)
        if remote is None or not check.ok:
            return result
        for line in result.built_lines():  # before the upload, which may take long or fail
            progress.note(line)
        progress.start("compare with the Hub", unit="file", total=len(build.files))
        result.push = upload.push_folder(remote, folder, commit_message=f"Publish {build.rows} items with soundmind-data",
                                      progress=progress)
        return result
    finally:
        if not out:
            shutil.rmtree(folder, ignore_errors=True)


COMMAND_HELP = """Build Hub-ready parquet shards (audio embedded as FLAC) and a dataset card, check that `datasets`
loads and decodes them, and upload them to the Hub.

--local-dir alone builds the folder and uploads nothing; --repo-id uploads (building in --local-dir or in a
temporary folder beside the manifest). A --local-dir that holds files is refused unless it is an earlier
publish's or --overwrite is given. A manifest the audit flags (answers against their label or missing,
duplicates, cross-split leaks) is refused unless --allow-flagged. Re-running after an interruption uploads only
what is missing. The token comes from HF_TOKEN or `hf auth login` and is never printed. Exit 1 if the audit, the
check or the upload fails.

The card tells imported recordings (voice upstream) from synthesised speech, and takes the strictest of the
text's licence (LogiQA 2.0: CC BY-NC-SA 4.0) and those the releases declare (SoundMind: MIT), saying so where
they differ, unless --license chooses.

Example: soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --local-dir hub-folder
"""

STAGE = Stage("publish", run, PublishOptions, output=FOLDER, output_flag="--local-dir", hub_ready=True,
              input_help="Item manifest (JSONL) with synthesized audio (paths relative to it).",
              output_help="Build the Hub-ready folder here and keep it.",
              output_optional=True,
              cites_command=True,
              help=COMMAND_HELP)
