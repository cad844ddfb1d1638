"""Training prompts from an item manifest (our JSONL) or a parquet file, in SoundMind's three input modes.

- text: the question text;
- audio: the question audio only (the spoken question replaces the text, as in SoundMind's alr_audio.py);
- audio+text (alias "both", as `export --modality both` calls it): both.

Parquet rows follow verl's layout, as `soundmind-data export --format verl` writes them: `prompt` (a string, or chat
messages whose last user message holds the question, as a string or as `{type: text|audio, ...}` parts),
`reward_model.ground_truth` (a label, or a mapping / JSON string with `label` and reference lengths), `audios` (the
question audio: embedded `{bytes, path}` as our export writes it, or a path relative to the parquet's folder) and
`extra_info` (`id`, `answer_text` and `answer_duration_s` for the length references; `answer_text`, like a manifest's
or a published row's, is also the reference answer that `sft_steps` learn). A user message's string content
may carry verl's `<audio>` placeholder, which is not part of the question text. Row schema:
schemas/train-parquet-row.schema.json. An export made with `--modality audio` has only the instruction as text: train
it in audio+text mode to give the policy that instruction too.

A parquet without a `prompt` column but with `question_text` and `label` is a shard of the published dataset
(`soundmind-data publish`, data/{split}-0000N-of-0000M.parquet, schemas/published-row.schema.json): the question
audio is read from the FLAC bytes embedded in `question_audio`, and the answer audio is never read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_records
from soundmind_data.core.labels import parse_label
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.rl.reward import GroundTruth, count_tokens

MODES = ("text", "audio", "audio+text")
AUDIO_PLACEHOLDER = "<audio>"  # verl's marker for where an `audios` entry is heard
ALIASES = {"both": "audio+text"}
# The columns of a published shard that training reads; question_text and label mark the layout.
PUBLISHED_COLUMNS = ("id", "label", "question_text", "answer_text", "answer_duration_s", "question_audio")


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str | None  # None in audio mode
    audio: Path | bytes | None  # None in text mode; a published row's embedded FLAC as bytes
    truth: GroundTruth
    answer: str | None = None  # the reference answer (answer_text), what supervised steps teach


def load_prompts(path: str | Path, mode: str, split: str | None = None) -> list[Prompt]:
    """Every prompt of a manifest (.jsonl) or parquet file, of a manifest's items in `split` only when given (a
    parquet file holds one split); a malformed row is a DataError naming file, row and field."""
    mode = ALIASES.get(mode, mode)
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    prompts = _from_parquet(path, mode) if path.suffix == ".parquet" else _from_manifest(path, mode, split)
    if not prompts:
        raise DataError(f"{path}: no prompts" + (f" of split {split!r}" if split and path.suffix != ".parquet" else ""))
    return prompts


def with_instruction(prompts: list[Prompt], instruction: str) -> list[Prompt]:
    """Each prompt with `instruction` read after its question, as a paragraph of its own (in audio mode, where the
    question is only heard, the instruction is the prompt's text)."""
    instruction = instruction.strip()
    if not instruction:
        return prompts
    return [replace(p, text=f"{p.text}\n\n{instruction}" if p.text else instruction) for p in prompts]


def _from_manifest(path: Path, mode: str, split: str | None) -> list[Prompt]:
    prompts = []
    for number, item in enumerate(iter_records(path), start=1):
        problem = schemas.first_error("item", item)
        if problem:
            raise DataError(f"{path}:{number}: {problem}")
        if split is not None and item["split"] != split:
            continue
        audio = None
        if mode != "text":
            if "question_audio" not in item:
                raise DataError(f"{path}:{number}: question_audio: required in {mode} mode "
                                "(synthesize the corpus first)")
            try:
                audio = audio_file(path.parent, item["question_audio"]["path"])
            except UnsafePath as exc:
                raise DataError(f"{path}:{number}: question_audio.path: {exc}") from None
            if not audio.is_file():  # found now rather than steps into a run
                raise DataError(f"{path}:{number}: question_audio.path: {item['question_audio']['path']!r}: "
                                "no such file")
        reference = item.get("answer_text")
        seconds = item.get("answer_audio", {}).get("duration_s")
        truth = GroundTruth(item["label"], count_tokens(reference) if reference else None, seconds)
        prompts.append(Prompt(item["id"], None if mode == "audio" else item["question_text"], audio, truth,
                              reference or None))
    return prompts


def _from_parquet(path: Path, mode: str) -> list[Prompt]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise UsageError(f"{path}: not a readable parquet file: {exc}") from None
    names = set(parquet.schema_arrow.names)
    if "prompt" not in names and {"question_text", "label"} <= names:
        if mode != "text" and "question_audio" not in names:
            raise DataError(f"{path}: question_audio: column required in {mode} mode")
        wanted = [name for name in PUBLISHED_COLUMNS if name in names and (mode != "text" or name != "question_audio")]
        read_prompt, batches = _published_prompt, parquet.iter_batches(batch_size=256, columns=wanted)
    else:
        read_prompt, batches = _verl_prompt, parquet.iter_batches(batch_size=1024)
    prompts = []
    row = 0
    for batch in batches:
        for record in batch.to_pylist():
            row += 1
            prompts.append(read_prompt(path, row, record, mode))
    return prompts


def _published_prompt(path: Path, row: int, record: dict[str, Any], mode: str) -> Prompt:
    """A row of a published shard: the label is the ClassLabel index, the question audio embedded FLAC bytes."""
    where = f"{path}:row {row}"
    try:
        label = parse_label(record["label"])
    except ValueError as exc:
        raise DataError(f"{where}: label: {exc}") from None
    text = record["question_text"]
    if mode != "audio" and not (isinstance(text, str) and text.strip()):
        raise DataError(f"{where}: question_text: empty")
    audio = None
    if mode != "text":
        audio = (record["question_audio"] or {}).get("bytes")
        if not audio:
            raise DataError(f"{where}: question_audio.bytes: required in {mode} mode")
    truth = GroundTruth(label).completed(record)  # answer_text and answer_duration_s are the length references
    return Prompt(str(record.get("id") or f"row-{row}"), None if mode == "audio" else text, audio, truth,
                  record.get("answer_text") or None)


def _verl_prompt(path: Path, row: int, record: dict[str, Any], mode: str) -> Prompt:
    where = f"{path}:row {row}"
    problem = schemas.first_error("train-parquet-row", record)
    if problem:
        raise DataError(f"{where}: {problem}")
    text, part_audios = _user_turn(record["prompt"])
    if text is None and mode != "audio":
        raise DataError(f"{where}: prompt: no user text")
    extra = record.get("extra_info") or {}
    try:
        truth = GroundTruth.parse(record["reward_model"]["ground_truth"]).completed(extra)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise DataError(f"{where}: reward_model.ground_truth: {exc}") from None
    audio = None
    if mode != "text":
        audios = record.get("audios") or part_audios
        if not audios:
            raise DataError(f"{where}: audios: required in {mode} mode")
        first = audios[0]
        if isinstance(first, dict):
            audio = first.get("bytes")
            if not audio:
                raise DataError(f"{where}: audios: entry 1 has no bytes")
        else:
            try:  # a path beside the parquet, never one that leads elsewhere
                audio = audio_file(path.parent, first)
            except UnsafePath as exc:
                raise DataError(f"{where}: audios: {first!r} {exc}") from None
            if not audio.is_file():
                raise DataError(f"{where}: audios: {first!r}: no such file")
    return Prompt(str(extra.get("id") or f"row-{row}"), None if mode == "audio" else text, audio, truth,
                  extra.get("answer_text") or None)


def _user_turn(prompt: str | list[dict]) -> tuple[str | None, list[str]]:
    """The text and audio paths of the last user message (a plain-string prompt is all text)."""
    if isinstance(prompt, str):
        return prompt, []
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    if not users:
        return None, []
    content = users[-1]
    if isinstance(content, str):
        return content.replace(AUDIO_PLACEHOLDER, "").strip() or None, []
    texts = [part["text"] for part in content if part.get("type") == "text" and part.get("text")]
    audios = [part["audio"] for part in content if part.get("type") == "audio" and part.get("audio")]
    return (" ".join(texts) or None), audios
