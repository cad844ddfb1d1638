"""The synthesis engine: one item's texts to finished, cached audio files, with the voice the speaker plan gives it.

Shared by the synthesize stage (every item, in workers or on Ray), `add` (new items) and the rerender stage (items
whose audio failed the judge). For each text: speech normalisation (`speech_text.to_speech_text`, cached by content
under `CACHE/text`), a refusal if anything unspeakable remains, sentence chunks within the engine's limit, synthesis,
then `tts.audio.render` (join, trim, resample, loudness, encode). Files land in a content-addressed cache keyed by
the speech text and everything that shapes the audio (the voice included) and are hard-linked to
`OUT/audio/<split>/<id>/{question,answer}.<ext>`. Cache files are written under `CACHE/tmp` with the writer's host and
pid in their name (`tempfiles`) and renamed into place, so a half-written file never looks finished.

With `keep_audio` (a release being repaired), an audio entry the item already has and whose file is there is kept as
it is, and only texts without audio are spoken: every stage that changes a text removes the audio that spoke it
(curate's regenerate, reason), so an entry still present speaks its text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soundmind_data.core import schemas
from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import AUDIO_DIR, AUDIO_TEXT
from soundmind_data.core.devices import check_device
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter
from soundmind_data.core.paths import UnsafePath, audio_file
from soundmind_data.text.speakable import describe, unspeakable_chars
from soundmind_data.text.speech_text import SPEECH_RULES_VERSION, normaliser_name, split_sentences, to_speech_text
from soundmind_data.tts.audio import FORMATS, OPUS_RATES, render
from soundmind_data.tts.base import VOICE_ENGINES, VoiceEngine, VoiceEngineError, load_voice_engine
from soundmind_data.tts.plan import SpeakerPlan
from soundmind_data.tts.voices import engine_default, resolve_all

RENDER_VERSION = 1  # bump when tts/audio.py changes the audio it makes, so old cache entries are not reused
PAUSE_S = 0.3  # silence between sentence chunks
# Loudness targets the limiter can reach within 1 LU for speech (streaming services use -14; -10 missed by 2.8 LU)
MIN_TARGET_LUFS, MAX_TARGET_LUFS = -40.0, -14.0


class Unspeakable(Exception):
    """A text that cannot be spoken faithfully: empty, or with characters left after normalisation."""


@dataclass(frozen=True)
class SynthesisOptions:
    """Everything that decides what audio an item gets."""

    backend: str | None = None  # the engine of voice names written without ENGINE: (the legacy --backend/--voice)
    voices: tuple[str, ...] = ()  # names as `voices` prints them, or "all"; empty: the backend's default voice
    test_voices: tuple[str, ...] = ()  # held for the test split, kept out of every other split
    seed: int = 0  # of the speaker plan
    device: str = "cpu"
    fmt: str = "flac"
    sample_rate: int = 16000
    target_lufs: float = -23.0
    pause_s: float = PAUSE_S
    keep_audio: bool = False  # keep audio entries whose file is there; speak only texts without one

    def check(self) -> None:
        if self.backend is not None:
            VOICE_ENGINES.check(self.backend)
        if self.fmt not in FORMATS:
            raise UsageError(f"--format {self.fmt!r}: choose one of {', '.join(FORMATS)}")
        check_device(self.device)
        if not 8000 <= self.sample_rate <= 48000:
            raise UsageError(f"--sample-rate {self.sample_rate}: expected 8000 to 48000 Hz")
        if self.fmt == "opus" and self.sample_rate not in OPUS_RATES:
            raise UsageError(f"--format opus needs --sample-rate in {', '.join(map(str, OPUS_RATES))}")
        if not MIN_TARGET_LUFS <= self.target_lufs <= MAX_TARGET_LUFS:
            raise UsageError(f"--target-lufs {self.target_lufs:g}: expected {MIN_TARGET_LUFS:g} to {MAX_TARGET_LUFS:g} "
                             "(speech louder than that cannot reach its target without clipping)")

    def plan(self) -> SpeakerPlan:
        """The speaker plan these options describe; a voice that is unknown or not installed is a usage error."""
        voices = resolve_all(self.voices or (engine_default(self.backend or "piper").name,), self.backend)
        test_voices = resolve_all(self.test_voices, self.backend)
        return SpeakerPlan(voices + tuple(v for v in test_voices if v not in voices), test_voices, self.seed)


@dataclass
class ItemResult:
    """What became of one manifest line."""

    line: int
    item: dict[str, Any] | None  # the item with its audio fields; None when it failed
    failures: list[dict[str, Any]] = field(default_factory=list)
    audio_s: float = 0.0
    synthesized: int = 0  # files made by this run
    cached: int = 0  # files found in the cache
    kept: int = 0  # audio entries kept as they were (keep_audio)


# ---------------------------------------------------------------------------------------------------------- cache
class Cache:
    """Content-addressed audio: `ROOT/<key[:2]>/<key>.<ext>` and its metadata `<key>.json`, written after it; and
    speech text: `ROOT/text/<key[:2]>/<key>.txt`, so that a re-run finds its audio without normalising again."""

    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"

    def prepare(self) -> None:
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{self.root}: cannot create cache folder: {exc.strerror}") from None

    def sweep(self) -> int:
        """Delete temps left by killed writers on this host; returns how many."""
        return tempfiles.sweep(self.tmp)

    @staticmethod
    def key(speech: str, engine: VoiceEngine, options: SynthesisOptions) -> str:
        shaping = {
            "text": speech, "provenance": asdict(engine.provenance), "render": RENDER_VERSION,
            "sample_rate": options.sample_rate, "target_lufs": options.target_lufs, "pause_s": options.pause_s,
            "format": options.fmt,
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode("utf-8")).hexdigest()

    def speech_text(self, text: str) -> str:
        """What the voice is asked to say for `text`, normalised once per text and normaliser."""
        made_by = {"text": text, "normaliser": normaliser_name(), "rules": SPEECH_RULES_VERSION}
        key = hashlib.sha256(json.dumps(made_by, sort_keys=True).encode("utf-8")).hexdigest()
        path = self.root / "text" / key[:2] / f"{key}.txt"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
        speech = to_speech_text(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicWriter(path, temp_dir=self.tmp) as out:
            out.write(speech)
        return speech

    def paths(self, key: str, ext: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.{ext}", folder / f"{key}.json"

    def get(self, key: str, ext: str) -> dict[str, Any] | None:
        """The entry's metadata, or None when absent or incomplete."""
        audio, meta = self.paths(key, ext)
        try:
            entry = json.loads(meta.read_text(encoding="utf-8"))
            complete = audio.stat().st_size == entry["bytes"]
        except (OSError, ValueError, KeyError):
            return None
        return entry if complete else None

    def put(self, key: str, ext: str, data: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        audio, meta = self.paths(key, ext)
        audio.parent.mkdir(exist_ok=True)
        with AtomicWriter(audio, temp_dir=self.tmp) as out:
            out.file.write(data)
        with AtomicWriter(meta, temp_dir=self.tmp) as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry


# -------------------------------------------------------------------------------------------------- one process
class Synthesizer:
    """Turns manifest lines into items with audio; one per worker process (it owns that process's engines)."""

    def __init__(self, options: SynthesisOptions, out_dir: Path, cache: Cache):
        self.options = options
        self.out_dir = out_dir
        self.cache = cache
        self.plan = options.plan()
        self._voices = {voice.name: voice for voice in self.plan.voices}
        self._engines: dict[str, VoiceEngine] = {}

    def engine(self, voice_name: str) -> VoiceEngine:
        """The loaded engine of one voice of the plan (built on first use, then kept)."""
        if voice_name not in self._engines:
            voice = self._voices[voice_name]
            self._engines[voice_name] = load_voice_engine(voice.engine, voice.engine_voice, self.options.device)
        return self._engines[voice_name]

    def process(self, line: int, record: dict[str, Any] | None, error: str | None, voice_name: str | None,
                file_suffix: str = "") -> ItemResult:
        """One manifest line, spoken by `voice_name` (the plan's voice for it; None for a line that is an error).
        `file_suffix` names files apart from the first rendering's (`question.attempt-1.flac`: a re-render never
        changes a file that earlier manifests describe)."""
        if error is None:
            error = schemas.first_error("item", record)
        if error is not None or voice_name is None:
            item_id = record.get("id") if isinstance(record, dict) else None
            return ItemResult(line, None, [_failure(line, item_id, "", error or "no voice planned")])
        item = dict(record)
        voice = self._voices[voice_name]
        engine = self.engine(voice_name)
        result = ItemResult(line, item)
        spoken = False
        for audio_field, text_field in AUDIO_TEXT.items():
            name = audio_field.removesuffix("_audio") + file_suffix  # question, answer: the audio file's name
            text = item.get(text_field)
            if text is None:  # an item without an answer: nothing to speak, and no stale audio kept
                item.pop(audio_field, None)
                continue
            if self.options.keep_audio and audio_field in item:
                try:
                    kept = audio_file(self.out_dir, item[audio_field]["path"]).is_file()
                except UnsafePath as exc:
                    result.failures.append(_failure(line, item["id"], audio_field, f"path: {exc}"))
                    continue
                if kept:
                    result.kept += 1
                    continue
            try:
                item[audio_field] = {**self._speak(text, engine, item, name, result),
                                     "voice": voice.name, "engine": voice.engine}
                spoken = True
            except (VoiceEngineError, Unspeakable) as exc:
                result.failures.append(_failure(line, item["id"], text_field, str(exc)))
        if spoken:  # an item whose audio was all kept (keep_audio) keeps the record of whoever made it
            item["tts"] = {**engine.provenance.to_item_field(), "normaliser": normaliser_name()}
        if result.failures:
            result.item = None
        return result

    def _speak(self, text: str, engine: VoiceEngine, item: dict[str, Any], name: str, result: ItemResult) -> dict:
        speech = self.cache.speech_text(text)
        if not speech.strip(" \n.,;:!?\"'()"):
            raise Unspeakable("nothing to speak")
        unspeakable = unspeakable_chars(speech)
        if unspeakable:
            raise Unspeakable(f"unspeakable after normalisation: {describe(unspeakable)}")
        ext = FORMATS[self.options.fmt][2]
        key = Cache.key(speech, engine, self.options)
        entry = self.cache.get(key, ext)
        if entry is None:
            arrays = engine.synthesize(split_sentences(speech, engine.max_chars))
            opts = self.options
            rendered = render(arrays, engine.sample_rate, sample_rate=opts.sample_rate,
                              target_lufs=opts.target_lufs, pause_s=opts.pause_s, fmt=opts.fmt)
            entry = self.cache.put(key, ext, rendered.data, {
                "key": key, "sha256": hashlib.sha256(rendered.data).hexdigest(), "bytes": len(rendered.data),
                "sample_rate": rendered.sample_rate, "channels": 1, "duration_s": rendered.duration_s,
                "loudness_lufs": rendered.loudness_lufs,
            })
            result.synthesized += 1
        else:
            result.cached += 1
        relative = Path(AUDIO_DIR, item["split"], item["id"], f"{name}.{ext}")
        tempfiles.place_file(self.cache.paths(key, ext)[0], self.out_dir / relative)
        result.audio_s += entry["duration_s"]
        return {"path": relative.as_posix(), **{k: entry[k] for k in
                ("sha256", "sample_rate", "channels", "duration_s", "loudness_lufs")},
                "loudness_target_lufs": self.options.target_lufs}  # what validate's loudness check measures against


def _failure(line: int, item_id: Any, field_name: str, reason: str) -> dict[str, Any]:
    return {"line": line, "id": item_id if isinstance(item_id, str) else None, "field": field_name, "reason": reason}
