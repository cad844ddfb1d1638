"""Export: write an item manifest with audio in the layouts other tools already read.

- `soundmind-hub` (old name `soundmind-folders`): the SoundMind release's layout on the Hub (`engines.soundmind_layout`),
  `<split>/metadata.jsonl` and `<split>/<id>/{annotation.json, question.wav, answer_<label>.wav}`, which
  `datasets.load_dataset("audiofolder", data_dir=OUT)` and code written for the release read unchanged (the `dev`
  folder is `datasets`' validation split). Ids are the release's, per split (`soundmind_layout.ExportIds`). Audio goes
  out as WAV, a WAV file as it is and anything else as PCM of its own bit depth (16 bits for what has none), or as
  FLAC with `audio_format="flac"` (`hub/folder/audio.py`); so export -> ingest -> export gives the same bytes. An
  answer recording goes out only with its answer text, as the release's readers expect.
- `verl`: `<split>.parquet` in the shape verl's RL trainer reads (`data_source`, `prompt` chat messages, `audios`,
  `ability`, `reward_model`, `extra_info`), as SoundMind's preprocessing writes it, except that
  `reward_model.ground_truth` is the label itself (`entailed` / `not-entailed`), not the whole chain-of-thought answer.
  Message content is a string, with verl's `<audio>` placeholder where the question is heard (`--modality audio|both`);
  the question audio is embedded in the `audios` column as FLAC bytes (`{bytes, path}`, as `datasets`' Audio feature
  stores audio), which verl's loader can't decode by itself: `soundmind_data.rl.verl_dataset.SoundMindRLHFDataset`
  (verl's `data.custom_cls`) decodes it at the processor's rate. The reference answer audio, which training never
  feeds to the policy, goes beside it as FLAC under `audio/<split>/`, referenced by `extra_info.answer_audio`, a path
  relative to the export folder (where the parquet files are).

Everything is written into a staging folder of this run's own inside OUT (another export into OUT stages beside it)
and moved into place per split at the end, so an interrupted export never leaves a split half written. An OUT that
holds anything must be an earlier export's (its `.soundmind-data-export` says so, and lists what that export wrote)
unless `overwrite`: export replaces the split folders and files and `audio/` in it, and removes what the earlier
export wrote that this one does not (a split the manifest no longer has), never anything else. OUT must not hold
audio the manifest names (a release ingested in place): the swap would move it away.
"""

from __future__ import annotations

import shutil
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import split_sort_key
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, iter_records, write_json
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.core.paths import AudioFolders, check_output_folder, check_output_owner, mark_output, output_entries
from soundmind_data.core.stage import FOLDER, Progress, SILENT, Stage, StageReport, Summary, option
from soundmind_data.engines import soundmind_layout as layout
from soundmind_data.hub.folder.audio import audio_bytes, checked_audio_bytes
from soundmind_data.hub.folder.rows import check_names
from soundmind_data.hub.folder.shards import ROW_GROUP_BYTES
from soundmind_data.rl.prompts import AUDIO_PLACEHOLDER
from soundmind_data.text.textkey import DigestSet, id_digest

FORMATS = (layout.FORMAT, "verl")
ALIASES = {"soundmind-folders": layout.FORMAT}  # the name soundmind-hub had when it wrote a layout of its own
MODALITIES = ("audio", "text", "both")
VERL_DATA_SOURCE = "soundmind-data/alr"  # verl picks the reward function by data_source
VERL_ABILITY = "logic"
VERL_DATASET_OVERRIDES = ("data.custom_cls.path=pkg://soundmind_data.rl.verl_dataset "
                          "data.custom_cls.name=SoundMindRLHFDataset")
VERL_BATCH_ROWS = 1000
# Qwen2.5-Omni's documented system prompt: the model expects it whenever audio is involved.
SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                 "auditory and visual inputs, as well as generating text and speech.")
INSTRUCTION = ("Think the problem through step by step inside <think> </think> tags first. Then end your reply "
               "with the verdict on its own line, written exactly as 'Answer: entailed' or 'Answer: not-entailed'.")
# Temps named after their writer (`tempfiles.temp_name`), so that two exports into one folder never share them
STAGING = "export-staging"  # the new export, until it is complete
REPLACED = "export-replaced"  # the previous export's entries, until the new ones are in place


@dataclass
class ExportReport(StageReport):
    out: Path
    format: str
    modality: str
    splits: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)  # what was written, relative to `out`

    @property
    def items(self) -> int:
        return sum(self.splits.values())

    def summary(self) -> Summary:
        splits = ", ".join(f"{split} {count}" for split, count in self.splits.items())
        modality = f" ({self.modality})" if self.format == "verl" else ""
        lines = [f"export: {self.items} items ({splits}) as {self.format}{modality} -> {self.out}, "
                 f"{len(self.files)} files"]
        if self.format == "verl" and self.modality != "text":  # verl can't decode the embedded audio by itself
            lines.append(f"export: for verl, add {VERL_DATASET_OVERRIDES}")
        return Summary(err=lines)


def export(
    manifest: str | Path,
    *,
    fmt: str,
    out: str | Path,
    modality: str = "both",
    overwrite: bool = False,
    audio_format: str = "wav",
    progress: Progress = SILENT,
) -> ExportReport:
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if modality not in MODALITIES:
        raise UsageError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    if audio_format not in layout.AUDIO_FORMATS:
        raise UsageError(f"--audio-format {audio_format!r}: choose one of {', '.join(layout.AUDIO_FORMATS)}")
    manifest, out = Path(manifest), Path(out)
    ids, audio_folders = first_pass(manifest, fmt)
    check_output_folder(out, manifest, "--out", audio_folders)
    check_output_owner(out, "export", "--out", overwrite=overwrite, own=(STAGING, REPLACED))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in (STAGING, REPLACED):
            tempfiles.sweep(out, name)  # what exports killed here left; a live one's are its own
        staging = tempfiles.make_temp_dir(out, STAGING)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create folder: {exc.strerror}") from None
    result = ExportReport(out=out, format=fmt, modality=modality)
    seen_ids = DigestSet()
    writer = HubFolders(staging, ids, audio_format) if ids is not None else VerlParquet(staging, modality)
    try:
        for number, item in enumerate(iter_records(manifest), start=1):
            where = f"{manifest}:{number}"
            check_names(item, where)  # an id like "../x" must not write outside OUT
            if "question_text" not in item:
                raise DataError(f"{where}: question_text: missing")
            if not seen_ids.add(id_digest(item["id"])):
                raise DataError(f"{where}: id: duplicate id {item['id']!r}")
            writer.add(item, manifest.parent, where, index=result.splits[item["split"]])
            result.splits[item["split"]] += 1
            progress.advance()
        writer.close()
    except BaseException:
        writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written = {entry.name for entry in staging.iterdir()}
    ours = output_entries(out, "export") | written  # the previous export's entries this one lacks are removed too
    # marked before the swap with every entry it may remove, so that a run killed during it lets the next one finish
    mark_output(out, "export", ours)
    # the old entries go aside before the new ones come in, and are deleted only then: a kill at any moment leaves
    # every split whole, old or new
    aside = out / tempfiles.temp_name(REPLACED)
    tempfiles.swap_in(out, staging, aside, tuple(sorted(ours)))
    staging.rmdir()
    shutil.rmtree(aside)
    mark_output(out, "export", written)
    result.splits = Counter({split: result.splits[split] for split in sorted(result.splits, key=split_sort_key)})
    result.files = writer.files
    return result


def first_pass(manifest: Path, fmt: str) -> tuple[layout.ExportIds | None, set[Path]]:
    """What export must know before it writes, from a first pass over the manifest (the second checks the rest of
    each line): the ids a soundmind-hub export gives (None for verl), and the folders holding the audio files the
    manifest names, as they lie and as their links resolve (OUT must not hold them: the swap would move them away)."""
    wanted, folders = [], AudioFolders(manifest.parent)
    for item in iter_records(manifest):
        split = item.get("split")
        wanted.append((split if isinstance(split, str) else None, layout.source_id(item)))
        folders.add(item)
    return (layout.ExportIds(wanted) if fmt == layout.FORMAT else None), folders.folders


class HubFolders:
    """The SoundMind release's layout (`engines.soundmind_layout`), written into the staging folder item by item."""

    def __init__(self, staging: Path, ids: layout.ExportIds, audio_format: str):
        self.staging, self.ids, self.audio_format = staging, ids, audio_format
        self.files: list[str] = []
        self._metadata: dict[str, AtomicWriter] = {}  # split -> its metadata.jsonl, open until close()
        self._open_files = ExitStack()

    def add(self, item: dict, root: Path, where: str, index: int) -> None:
        split, label = item["split"], item["label"]
        question = checked_audio_bytes(item, "question_audio", root, where)
        if question is None:
            raise DataError(f"{where}: question_audio: missing (run synthesis before exporting)")
        answer = checked_audio_bytes(item, "answer_audio", root, where) if layout.answered(item) else None
        hub_id = self.ids.next(split, layout.source_id(item))
        question_name, answer_name = layout.file_names(hub_id, label, self.audio_format, answer is not None)
        folder = self.staging / split
        (folder / hub_id).mkdir(parents=True, exist_ok=True)
        for name, data, key in ((question_name, question, "question_audio"), (answer_name, answer, "answer_audio")):
            if name is not None:
                (folder / name).write_bytes(audio_bytes(data, self.audio_format, f"{where}: {key}.path"))
        write_json(folder / hub_id / layout.ANNOTATION, layout.annotation(hub_id, item))
        if split not in self._metadata:
            self._metadata[split] = self._open_files.enter_context(AtomicWriter(folder / layout.METADATA))
        self._metadata[split].write_record(layout.metadata_line(hub_id, item, question_name, answer_name))
        self.files += [f"{split}/{name}" for name in (question_name, answer_name, f"{hub_id}/{layout.ANNOTATION}")
                       if name is not None]

    def close(self) -> None:
        self._open_files.close()
        self.files += [f"{split}/{layout.METADATA}" for split in self._metadata]

    def abort(self) -> None:
        aborted = RuntimeError("export aborted")
        self._open_files.__exit__(type(aborted), aborted, None)  # AtomicWriter drops its temporary file


def verl_schema() -> pa.Schema:
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(message)),
        ("audios", pa.list_(audio)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([
            ("split", pa.string()), ("index", pa.int64()), ("id", pa.string()), ("label", pa.int64()),
            ("question_text", pa.string()), ("answer_text", pa.string()),
            ("answer_audio", pa.string()), ("answer_duration_s", pa.float64()),
        ])),
    ])


def verl_row(item: dict, index: int, modality: str, question_audio: dict | None, answer_audio: str | None) -> dict[str, Any]:
    """One verl row. The user turn: audio only (the question is heard, the instruction read), text only, or both.

    `question_audio` is `{bytes, path}` (the FLAC and its name), `answer_audio` a path relative to the export folder.
    """
    text = INSTRUCTION if modality == "audio" else f"{item['question_text']} {INSTRUCTION}"
    user = text if modality == "text" else f"{AUDIO_PLACEHOLDER}\n{text}"
    return {
        "data_source": VERL_DATA_SOURCE,
        "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        "audios": [question_audio] if question_audio else None,  # one entry per <audio> placeholder, in order
        "ability": VERL_ABILITY,
        "reward_model": {"style": "rule", "ground_truth": LABEL_NAMES[item["label"]]},
        "extra_info": {
            "split": item["split"], "index": index, "id": item["id"], "label": item["label"],
            "question_text": item["question_text"], "answer_text": item.get("answer_text"),
            "answer_audio": answer_audio,
            # the audio-length reward's reference (rl.adapters.compute_score reads it), in every modality: the
            # prompt's modality is what the policy hears, not whether its spoken answer is scored
            "answer_duration_s": (item.get("answer_audio") or {}).get("duration_s"),
        },
    }


class VerlParquet:
    def __init__(self, staging: Path, modality: str):
        self.staging, self.modality = staging, modality
        self.schema = verl_schema()
        self.files: list[str] = []
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._buffers: dict[str, list[dict]] = {}
        self._buffered_bytes: dict[str, int] = {}

    def _flac(self, item: dict, key: str, root: Path, where: str) -> bytes | None:
        data = checked_audio_bytes(item, key, root, where)
        return None if data is None else audio_bytes(data, "flac", f"{where}: {key}.path")

    def add(self, item: dict, root: Path, where: str, index: int) -> None:
        question = answer = None
        if self.modality != "text":
            flac = self._flac(item, "question_audio", root, where)
            if flac is None:
                raise DataError(f"{where}: question_audio: missing (use --modality text, or run synthesis first)")
            question = {"bytes": flac, "path": f"{item['id']}-question.flac"}
            answer_flac = self._flac(item, "answer_audio", root, where)
            if answer_flac is not None:
                answer = f"audio/{item['split']}/{item['id']}-answer.flac"
                (self.staging / answer).parent.mkdir(parents=True, exist_ok=True)
                (self.staging / answer).write_bytes(answer_flac)
                self.files.append(answer)
        split = item["split"]
        buffer = self._buffers.setdefault(split, [])
        buffer.append(verl_row(item, index, self.modality, question, answer))
        self._buffered_bytes[split] = self._buffered_bytes.get(split, 0) + len(question["bytes"] if question else b"")
        if len(buffer) >= VERL_BATCH_ROWS or self._buffered_bytes[split] >= ROW_GROUP_BYTES:
            self._flush(split)

    def _flush(self, split: str) -> None:
        if split not in self._writers:
            self._writers[split] = pq.ParquetWriter(self.staging / f"{split}.parquet", self.schema)
        self._writers[split].write_table(pa.Table.from_pylist(self._buffers[split], schema=self.schema))
        self._buffers[split], self._buffered_bytes[split] = [], 0

    def close(self) -> None:
        for split in list(self._buffers):
            if self._buffers[split]:
                self._flush(split)
            self._writers.pop(split).close()
            self.files.append(f"{split}.parquet")

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


@dataclass(frozen=True)
class ExportOptions:
    format: str = option(short="-f",
        help="soundmind-hub (the SoundMind release's layout on the Hub; soundmind-folders is its old name) or verl "
             "(RL parquet).")
    modality: str = option("both", help="verl only: what the prompt carries: audio, text or both.")
    overwrite: bool = option(False,
        help="Write into an --out that holds files of its own (not an earlier export), replacing its split "
             "folders/files and audio/.")
    audio_format: str = option("wav",
        help="soundmind-hub only: wav (as the release has it; a WAV file goes out as it is) or flac.")


def run(manifest: Path, out: Path, options: ExportOptions, *, progress: Progress = SILENT) -> ExportReport:
    """The export stage: `out` is the folder to write."""
    progress.start("export")
    return export(manifest, fmt=options.format, out=out, modality=options.modality, overwrite=options.overwrite,
                  audio_format=options.audio_format, progress=progress)


COMMAND_HELP = """Write the corpus in layouts other tools read: the SoundMind release's layout on the Hugging Face Hub
(SoundMind-RL/SoundMindDataset: <split>/metadata.jsonl with id, question_file_name, answer_file_name,
annotation_question, annotation_answer, label; <split>/<id>/question.wav, answer_<label>.wav, annotation.json),
which datasets.load_dataset("audiofolder", data_dir=OUT) and code written for the release read unchanged, or
verl's RL parquet (<split>.parquet, ground truth = the label, the question audio embedded as FLAC for verl's
<audio> placeholder, which verl reads with data.custom_cls.path=pkg://soundmind_data.rl.verl_dataset
data.custom_cls.name=SoundMindRLHFDataset; the answer audio as FLAC under audio/).

soundmind-hub ids restart at 0001 in every split: an item keeps the id it had in the release (ingest --format
soundmind-hub), unless another item of its split wants it too; the others are numbered 0001, 0002... in manifest
order. Export, ingest and export again give the same bytes.

Example: soundmind-data export synth/manifest.jsonl --format soundmind-hub --out dataset

Example: soundmind-data export synth/manifest.jsonl --format verl --modality audio --out verl-data
"""

STAGE = Stage("export", run, ExportOptions, output=FOLDER,
              input_help="Item manifest (JSONL) with synthesized audio.",
              output_help="Folder to write; its split folders/files and audio/ are replaced (a folder with files of "
                          "its own, not an earlier export, only with --overwrite).",
              help=COMMAND_HELP)
