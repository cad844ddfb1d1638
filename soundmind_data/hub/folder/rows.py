"""A manifest item as a published row: its audio read, checked and embedded as FLAC, its fields as the published
features (`features()`, what `load_dataset` shows users) name them, and who speaks it (`speaker`, for the row and the
card's Voices table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_FIELDS, ID_PATTERN, SPLIT_PATTERN, imported_audio, voice_of
from soundmind_data.core.errors import DataError
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.hub.folder.audio import audio_bytes, checked_audio_bytes
from soundmind_data.tts.voices import CATALOG

# Licences by voice name, whether or not the voice is installed here: publishing needs no TTS engine.
CATALOG_VOICES = {voice.name: voice for voice in CATALOG}


def features():
    """The `datasets.Features` of a published row: what `load_dataset` shows users."""
    from datasets import Audio, ClassLabel, Features, Value

    text, number, integer = Value("string"), Value("float64"), Value("int64")
    return Features({
        "id": text,
        "question_audio": Audio(),
        "answer_audio": Audio(),
        "label": ClassLabel(names=list(LABEL_NAMES)),
        "question_text": text,
        "answer_text": text,
        "major_premise": text,
        "minor_premise": text,
        "conclusion": text,
        "source_dataset": text,
        "source_file": text,
        "source_line": integer,
        "source_gold_label": integer,
        "question_duration_s": number,
        "answer_duration_s": number,
        "question_wer": number,
        "answer_wer": number,
        "question_loudness_lufs": number,
        "answer_loudness_lufs": number,
        "sample_rate": integer,
        "voice": text,
        "tts_backend": text,
        "tts_voice": text,
        "tts_license": text,
        "tts_model_md5": text,
    })


def arrow_schema() -> pa.Schema:
    """The parquet schema, carrying the features as JSON under the `huggingface` metadata key (what `datasets` reads)."""
    return features().arrow_schema


def read_item_audio(item: dict, key: str, root: Path, where: str) -> dict | None:
    """`{"bytes": FLAC, "path": name}` for one audio field of an item, as the `Audio` feature stores it."""
    data = checked_audio_bytes(item, key, root, where)
    if data is None:
        return None
    name = f"{item['id']}-{key.removesuffix('_audio')}.flac"
    return {"bytes": audio_bytes(data, "flac", f"{where}: {key}.path"), "path": name}


def _audio_field(item: dict, key: str, name: str) -> Any:
    audio = item.get(key)
    return None if audio is None else audio.get(name)


class Speaker(NamedTuple):
    """Who speaks an item, as its row and the card's Voices table name it."""

    voice: str  # ENGINE:VOICE
    engine: str
    license: str


def public_voice(name: str) -> str:
    """A voice name fit to publish: a model given by its path (`piper:/home/me/my-voice.onnx`) keeps only its file
    name, since the path the builder typed may reveal their home folder."""
    engine, colon, engine_voice = name.partition(":")
    return f"{engine}:{Path(engine_voice).name}" if colon and "/" in engine_voice else name


def speaker(item: dict) -> Speaker:
    """The voice of an item's question audio (the speaker plan gives its answer the same voice), its engine and
    licence. Audio made before entries named their voice is attributed as `corpus.voice_of` does; the licence is the
    catalog's, else what the item's `tts` record says (a Kokoro mix, a model of the builder's own). That record tells
    of speech synthesised here, never of a release's own recording (whose answer alone may have been spoken again)."""
    audio = item["question_audio"]
    tts = {} if imported_audio(audio) else item.get("tts") or {}
    name = voice_of(item, audio)
    engine, colon, _ = name.partition(":")
    known = CATALOG_VOICES.get(name)
    return Speaker(voice=public_voice(name), engine=audio.get("engine") or (engine if colon else "unknown"),
                   license=known.license if known else tts.get("license") or "unknown")


def to_row(item: dict, root: Path, where: str) -> dict[str, Any]:
    """One manifest item as a published row (audio read, checked and embedded)."""
    source, tts = item["source"], item.get("tts") or {}
    question = read_item_audio(item, "question_audio", root, where)
    if question is None:
        raise DataError(f"{where}: question_audio: missing (run synthesis before publishing)")
    return {
        "id": item["id"],
        "question_audio": question,
        "answer_audio": read_item_audio(item, "answer_audio", root, where),
        "label": item["label"],
        "question_text": item["question_text"],
        "answer_text": item.get("answer_text"),
        "major_premise": item["major_premise"],
        "minor_premise": item["minor_premise"],
        "conclusion": item["conclusion"],
        "source_dataset": source["dataset"],
        # Only the file name: the path the builder typed may reveal their home folder.
        "source_file": Path(source["file"]).name,
        "source_line": source["line"],
        "source_gold_label": source.get("gold_label"),
        "question_duration_s": _audio_field(item, "question_audio", "duration_s"),
        "answer_duration_s": _audio_field(item, "answer_audio", "duration_s"),
        "question_wer": _audio_field(item, "question_audio", "wer"),
        "answer_wer": _audio_field(item, "answer_audio", "wer"),
        "question_loudness_lufs": _audio_field(item, "question_audio", "loudness_lufs"),
        "answer_loudness_lufs": _audio_field(item, "answer_audio", "loudness_lufs"),
        "sample_rate": item["question_audio"]["sample_rate"],
        "voice": speaker(item).voice,
        "tts_backend": tts.get("backend"),
        "tts_voice": tts.get("voice"),
        "tts_license": tts.get("license"),
        "tts_model_md5": tts.get("model_md5"),
    }


def check_names(item: dict, where: str) -> None:
    """The split, id and label become file and folder names (and split names must suit `datasets`): check them before
    anything is written, naming the field as the item schema does."""
    try:
        good = bool(SPLIT_PATTERN.fullmatch(item["split"]) and ID_PATTERN.fullmatch(item["id"])
                    and item["label"] in (0, 1) and not isinstance(item["label"], bool))
    except (KeyError, TypeError):
        good = False
    if not good:
        raise DataError(f"{where}: {schemas.first_error('item', item) or 'split, id or label'}")


def checked_row(item: dict, root: Path, where: str) -> dict[str, Any]:
    """`to_row`, consulting the item schema only when something is off: validating every item with jsonschema costs
    more than embedding its audio."""
    check_names(item, where)
    try:
        return to_row(item, root, where)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{where}: {schemas.first_error('item', item) or exc}") from None


def row_bytes(row: dict) -> int:
    """Approximate stored size of a row: its audio bytes (incompressible) plus its text."""
    audio = sum(len(row[key]["bytes"]) for key in AUDIO_FIELDS if row[key] is not None)
    text = sum(len(value.encode("utf-8")) for value in row.values() if isinstance(value, str))
    return audio + text
