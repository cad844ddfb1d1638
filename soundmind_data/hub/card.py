"""The dataset card (`README.md`) of a published corpus: a YAML header the Hub reads, then text a person reads.

Everything in it is computed from the build (splits, labels, hours, voices), the audit's counts and, for a corpus a
pipeline built, its run log and plots, so the card cannot drift from the data it describes. The card is a
`huggingface_hub` `DatasetCard` with `DatasetCardData` metadata, as the Hub's own tools write them.

Provenance: each audio file is either a release's own recording, imported as it is (`corpus.imported_audio`), or
speech synthesised here; the card counts both, by voice. Licence: the text's licence is inherited (LogiQA 2.0 is
CC BY-NC-SA 4.0 and its ShareAlike clause binds every corpus derived from it; SoundMind's annotations are derived from
LogiQA 2.0 too), and a release an item was imported from may declare its own (`source.license`: SoundMind on the Hub
says MIT). The card uses the strictest of those licences, says so plainly where they differ, and takes the
publisher's choice instead when one is given (`publish --license`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from soundmind_data import __version__
from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_FIELDS, DATA_DIR, LICENSE_ID, PLOTS_DIR, imported_audio, in_workdir
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_lines
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.hub.folder.build import BuildResult
from soundmind_data.hub.folder.rows import features
from soundmind_data.engines.soundmind_layout import ReleaseChanges

HEADER_ORDER = ("license", "task_categories", "language", "size_categories", "pretty_name", "tags", "configs",
                "dataset_info")  # the card header's keys, in the order a person reads them
LOGIQA_LICENSE = "cc-by-nc-sa-4.0"
LOGIQA_DERIVED = {"logiqa2-nli", "soundmind"}  # source datasets whose text comes from LogiQA 2.0
# The licences the card can rank, by Hub licence id, from the most permissive to the strictest: a corpus bound by
# several (its text's, its releases') is published under the last of them. Their names as a person reads them.
LICENSES = {
    "cc0-1.0": "CC0 1.0",
    "mit": "MIT",
    "apache-2.0": "Apache 2.0",
    "cc-by-4.0": "CC BY 4.0",
    "cc-by-sa-4.0": "CC BY-SA 4.0",
    "cc-by-nc-4.0": "CC BY-NC 4.0",
    "cc-by-nc-sa-4.0": "CC BY-NC-SA 4.0",
}
UNKNOWN_LICENSE = "other"  # the Hub's id for a licence of its own, which the card's text then explains
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"))


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>10M"


def license_name(license_id: str) -> str:
    return LICENSES.get(license_id, license_id)


def check_license(value: str) -> str:
    """A licence id given by the publisher (--license), as the card's header will carry it."""
    license_id = value.strip().lower()
    if not LICENSE_ID.fullmatch(license_id):
        raise UsageError(f"--license {value!r}: expected a Hub licence id such as {', '.join(LICENSES)} or other")
    return license_id


@dataclass(frozen=True)
class CardLicense:
    id: str  # the header's `license`
    text: str  # the Licence section


def card_license(build: BuildResult, override: str | None = None) -> CardLicense:
    """The corpus's licence: `override` (the publisher's --license) when given, else the strictest of its text's
    licence and the licences its releases declare, else "other"; and the Licence section saying which applies and
    why, plainly where they differ."""
    text_license = LOGIQA_LICENSE if LOGIQA_DERIVED & set(build.source_datasets) else None
    declared: dict[str, list[str]] = {}  # licence -> the source datasets declaring it
    for dataset, license_id in sorted(build.declared_licenses):
        declared.setdefault(license_id, []).append(dataset)
    binding = list(dict.fromkeys([*([text_license] if text_license else []), *declared]))
    unranked = [license_id for license_id in binding if license_id not in LICENSES]
    if override:
        chosen, why = override, f"as its publisher chose (`--license {override}`)"
    elif unranked:
        chosen = UNKNOWN_LICENSE
        why = (f"since the toolkit cannot tell which of {' and '.join(map(license_name, binding))} is the stricter: "
               f"check each before reuse, or choose with `publish --license`")
    elif binding:
        chosen = max(binding, key=list(LICENSES).index)
        why = "the stricter" if len(binding) > 1 else ""
    else:
        chosen, why = UNKNOWN_LICENSE, ""
    uses = f"this card uses {license_name(chosen) if chosen != UNKNOWN_LICENSE else '`other`'}" + \
        (f", {why}" if why else "")
    sentences = []
    if text_license:
        sentences.append(
            "The premises, conclusions and labels come from [LogiQA 2.0](https://github.com/csitfun/LogiQA2.0), "
            "licensed [CC BY-NC-SA 4.0](https://creativecommons.org/licenses/by-nc-sa/4.0/)." +
            (" This corpus is a derived work and is distributed under the same licence: attribution, non-commercial "
             "use only, and derivatives must be shared alike." if chosen == text_license else ""))
    for license_id, datasets in declared.items():
        releases = " and ".join(f"`{dataset}`" for dataset in datasets)
        text = f"; its text comes from LogiQA 2.0 ({license_name(text_license)})" if text_license else ""
        sentences.append(f"The release {releases} declare{'' if len(datasets) > 1 else 's'} "
                         f"{license_name(license_id)}{text}; {uses}.")
    if not declared and (override or unranked):
        sentences.append(uses[0].upper() + uses[1:] + ".")
    if not binding:
        sentences.append("The items come from contributed sources whose licences are not known to the toolkit: "
                         "check each source before reuse.")
    if _has_audio(build, imported=True):
        sentences.append("The recordings imported from the release are published as the release made them, under "
                         "this licence.")
    if _has_audio(build, imported=False):
        sentences.append("The synthetic voices keep their own licences (table above).")
    return CardLicense(chosen, " ".join(sentences))


def _has_audio(build: BuildResult, *, imported: bool) -> bool:
    """Whether any audio file of the corpus is a release's own recording (`imported`), or else synthesised here."""
    return any(origin == imported for origin, _voice, _field in build.audio_origins)


def _provenance_text(build: BuildResult) -> list[str]:
    """Where each audio file came from: a release's own recordings, imported as they are, or speech synthesised
    here; by voice, with question and answer files counted apart."""
    files = {(imported, voice): [0, 0] for imported, voice, _field in sorted(build.audio_origins)}
    for (imported, voice, field_name), count in build.audio_origins.items():
        files[imported, voice][AUDIO_FIELDS.index(field_name)] += count
    imported_files = sum(sum(counts) for (imported, _voice), counts in files.items() if imported)
    total = sum(build.audio_origins.values())
    if not imported_files:
        return [f"All {total} audio files were synthesised by soundmind-data, with the voices below."]
    summary = (f"All {total} audio files are" if imported_files == total else f"{imported_files} of {total} audio "
               f"files are")
    rows = [("recorded by the release, imported as it is" if imported else "synthesised by soundmind-data", voice,
             *counts) for (imported, voice), counts in sorted(files.items(), key=lambda entry: not entry[0][0])]
    return [f"{summary} the recordings of the release the items come from, imported as they are (not synthesised "
            f"again); where each came from, by voice:",
            markdown_table(("origin", "voice", "question audio", "answer audio"), rows)]


def pretty_name(repo_id: str | None, folder: Path) -> str:
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    return f"{name}: spoken logical reasoning (SoundMind-style)"


def metadata(build: BuildResult, *, repo_id: str | None, license_id: str):
    """The YAML header (`DatasetCardData`): what the Hub indexes and what `datasets` uses to find splits and
    features."""
    from huggingface_hub import DatasetCardData

    shard_bytes = sum((build.folder / path).stat().st_size for path in build.files if path.endswith(".parquet"))
    return DatasetCardData(
        license=license_id,
        task_categories=["audio-text-to-text", "question-answering"],
        language=["en"],
        size_categories=[size_category(build.rows)],
        pretty_name=pretty_name(repo_id, build.folder),
        tags=["audio", "speech", "logical-reasoning", "natural-language-inference", "chain-of-thought",
              *(["synthetic"] if _has_audio(build, imported=False) else [])],
        configs=[{
            "config_name": "default",
            "data_files": [{"split": split, "path": f"{DATA_DIR}/{split}-*"} for split in build.splits],
        }],
        dataset_info={
            "features": features()._to_yaml_list(),
            "splits": [{"name": split, "num_bytes": stats.num_bytes, "num_examples": stats.rows}
                       for split, stats in build.splits.items()],
            "download_size": shard_bytes,
            "dataset_size": sum(stats.num_bytes for stats in build.splits.values()),
        },
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """A table cell as text: a "|" or a line break in a value (a voice named in a manifest) would end the cell."""
    return "" if value is None else " ".join(str(value).split()).replace("|", "\\|")


def _mean(total: float, count: int) -> str:
    return f"{total / count:.1f}" if count else "-"


def _voice_rows(build: BuildResult, license_id: str) -> list[tuple[Any, ...]]:
    """(voice, engine, licence, items in each split) rows, the most-heard voice first; a voice a split never hears
    shows 0 there (as a speaker-disjoint test split's voices do in the other splits). The release's own recordings
    have no voice licence of their own: they come under the corpus's (`license_id`)."""
    ranked = sorted(build.voices.items(), key=lambda entry: (-sum(entry[1].values()), entry[0]))
    return [(speaker.voice, speaker.engine,
             f"the corpus's ({license_name(license_id)})" if imported_audio(speaker._asdict()) else speaker.license,
             *(per_split[split] for split in build.splits)) for speaker, per_split in ranked]


def read_stage_runs(run_log: Path) -> list[dict[str, Any]]:
    """The latest `ran` entry of each stage in a pipeline's run log (schemas/run-log.schema.json), in the order the
    stages first appear; [] when there is no run log. Skipped entries are left out: the data is what the stage's last
    real run wrote. A bad line is a DataError naming the file, line and field."""
    if not run_log.is_file():
        return []
    latest: dict[str, dict[str, Any]] = {}
    for line in iter_lines(run_log):
        problem = line.error or schemas.first_error("run-log", line.record)
        if problem:
            raise DataError(f"{line.file}:{line.number}: {problem}")
        if line.record["status"] == "ran":
            latest[line.record["stage"]] = line.record
    # The runner logs paths inside the work dir as $WORKDIR, so the card neither leaks the builder's folders nor
    # depends on where the build ran; logs of older versions held absolute paths, shown the same way while unmoved.
    return [{**entry, "command": in_workdir(entry["command"], run_log.parent.resolve())} for entry in latest.values()]


def _stage_run_rows(stage_runs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    def cell(command: str) -> str:  # code span in a table cell: only the pipe needs escaping
        return "`" + command.replace("|", "\\|") + "`"

    return [(run["stage"], cell(run["command"]), f"{run['duration_s']:.1f}", run["items_in"], run["items_out"],
             run["toolkit_version"]) for run in stage_runs]


def _curation_text(curation: Sequence[dict[str, Any]]) -> list[str]:
    """The Curation section's paragraphs, from the reports of the curate passes (schemas/curate-report.schema.json)."""
    if not curation:
        return ["No `soundmind-data curate` pass is recorded in a pipeline run log beside the published manifest; the "
                "audit below is of the items as they are published."]
    text = []
    for number, report in enumerate(curation, start=1):
        decisions = ", ".join(f"{count} {decision}" for decision, count in report["decisions"].items())
        policy = ", ".join(f"{rule} → {', '.join(value) if isinstance(value, list) else value}"
                           for rule, value in report["policy"].items())
        totals: dict[tuple[str, str], int] = {}
        for decisions_by_split in report["reasons"].values():
            for decision, reasons in decisions_by_split.items():
                for reason, count in reasons.items():
                    if decision != "keep":
                        totals[decision, reason] = totals.get((decision, reason), 0) + count
        text.append(f"Curation pass {number} (`soundmind-data curate`): {report['items']} items in, "
                    f"{report['items_out']} out ({decisions}). Policy: {policy}.")
        if totals:
            text.append(markdown_table(("decision", "reason", "items"),
                                       [(decision, reason, count) for (decision, reason), count in totals.items()]))
    return text


def render_card(build: BuildResult, audit_counts: Sequence[tuple[str, int]], *, repo_id: str | None, command: str,
                stage_runs: Sequence[dict[str, Any]] = (), curation: Sequence[dict[str, Any]] = (),
                flagged: dict[str, int] | None = None, license_id: str | None = None,
                release: ReleaseChanges | None = None) -> str:
    """The whole README.md text. `audit_counts` are (check, items) rows of the audit of the published manifest;
    `stage_runs` (from `read_stage_runs`) adds the pipeline's stages to "How it was built"; `curation` (curate
    reports) fills "Curation"; `flagged` are the audit's findings a publish with --allow-flagged let through; plots
    among `build.files` are shown under "Plots"; `license_id` is the publisher's choice of licence (--license),
    overriding the one the sources bind the corpus to; `release` is what a repair changed against the release the
    items were ingested from (`soundmind_layout.release_changes`), which opens "Curation"."""
    from huggingface_hub import DatasetCard

    licence = card_license(build, license_id)
    # a local folder by its name, loadable from the folder that holds it: an absolute path would be untrue once the
    # folder is moved or copied, and would show the builder's disk on a shared card
    load_target = repo_id or Path(build.folder).name
    split_rows = []
    for split, stats in build.splits.items():
        hours = (stats.question_seconds + stats.answer_seconds) / 3600
        split_rows.append((split, stats.labels[0], stats.labels[1], stats.rows, f"{hours:.2f}",
                           _mean(stats.question_seconds, stats.rows), _mean(stats.answer_seconds, stats.answers)))
    audit_rows = [(check.replace("_", " "), count) for check, count in audit_counts]
    first_split = next(iter(build.splits))
    plots = [path for path in build.files if path.startswith(f"{PLOTS_DIR}/")]
    tts_versions = ", ".join(sorted(build.toolkit_versions)) or "not recorded"
    synthesised = (f"speech synthesised with toolkit version {tts_versions}" if _has_audio(build, imported=False)
                   else "no speech synthesised: the audio is the release's own recordings")
    answered = sum(stats.answers for stats in build.splits.values())
    answers = ("with a spoken chain-of-thought answer ending in its verdict" if answered == build.rows else
               f"{answered} of them with a spoken chain-of-thought answer ending in its verdict" if answered else
               "without spoken answers (the `answer_audio` column is empty)")
    sections = [
        f"# {pretty_name(repo_id, build.folder)}",
        "Spoken logical-reasoning items in the style of SoundMind (arXiv 2506.12935): each row is a natural-language "
        f"inference question (major premise, minor premise, conclusion) read aloud, {answers}, and a label "
        f"`{LABEL_NAMES[1]}` or `{LABEL_NAMES[0]}`. Audio is embedded as "
        "FLAC in the parquet files; the text, the source provenance and the quality measures (durations, loudness, "
        "ASR word error rate of the speech) are columns beside it.",
        "## Contents",
        markdown_table(("split", LABEL_NAMES[0], LABEL_NAMES[1], "items", "audio hours", "mean question s",
                        "mean answer s"), split_rows),
        f"{build.rows} items, {build.audio_hours:.2f} hours of audio in total.",
        *(["## Plots", "\n\n".join(f"![{Path(path).stem.replace('-', ' ')}]({path})" for path in plots)]
          if plots else []),
        "## Provenance",
        *_provenance_text(build),
        "## Voices",
        "Who speaks the items (the `voice` column: the voice of the question, which also reads the answer), the "
        "engine and the licence of the voice, and items per split:",
        markdown_table(("voice", "engine", "voice licence", *build.splits), _voice_rows(build, licence.id)),
        "## Licence",
        licence.text,
        "## Curation",
        *(release.paragraphs() if release else []),
        *_curation_text(curation),
        "## Audit",
        "Curation checks run on the published manifest by `soundmind-data audit` (counts of items):",
        markdown_table(("check", "items"), audit_rows),
        *(["**Published with `--allow-flagged`**: this corpus carries items the audit flags ("
           + ", ".join(f"{count} {check.replace('_', ' ')}" for check, count in flagged.items())
           + "). Use them knowing that."] if flagged else []),
        "## How it was built",
        f"Built with soundmind-data {__version__} ({synthesised}) by:",
        f"```bash\n{command}\n```",
        *(["from the manifest of a `soundmind-data run` pipeline whose run log (`run-log.jsonl`) records these "
           "stages (the latest run of each; `$WORKDIR` is the pipeline's work dir):",
           markdown_table(("stage", "command", "seconds", "items in", "items out", "toolkit version"),
                          _stage_run_rows(stage_runs))] if stage_runs else []),
        "## How to load",
        "```python\n"
        "from datasets import load_dataset\n\n"
        f"ds = load_dataset({load_target!r}){'' if repo_id else '  # from the folder that holds this one'}\n"
        f"row = ds[{first_split!r}][0]\n"
        "samples = row[\"question_audio\"].get_all_samples()  # torchcodec: samples.data, samples.sample_rate\n"
        f"print(row[\"question_text\"], ds[{first_split!r}].features[\"label\"].int2str(row[\"label\"]))\n"
        "```",
    ]
    header = metadata(build, repo_id=repo_id, license_id=licence.id).to_yaml(original_order=list(HEADER_ORDER))
    return DatasetCard(f"---\n{header}\n---\n\n" + "\n\n".join(sections) + "\n").content


def read_card_metadata(text: str) -> dict[str, Any]:
    """The YAML header of a card as plain data (for checks and tests)."""
    from huggingface_hub import DatasetCard

    return DatasetCard(text).data.to_dict()
