"""The importers: LogiQA 2.0 NLI and SoundMind annotation files, or a SoundMind release with its audio, become one item
manifest (`ingest`). The ingest stage runs them, and `add` reads a contributor's annotation files with them.

Every good line becomes an item with provenance (source file, line, gold label where the source has one); every bad
line goes to a rejects file with its line number and reason. One bad line never costs the others. Source files are
JSON Lines, or one indented JSON object (a SoundMind `annotation.json`).

A SoundMind release as the Hub has it (`engines.soundmind_layout`: `<split>/metadata.jsonl` and a folder per item) brings its
audio: each item's files become audio entries (path, sha256, sample rate, channels, duration, voice and engine
"upstream"), so that validate judges them as they are, and `source` keeps the release's split and id (and the
licence its card declares, when that is a Hub licence id). The corpus folder is the output manifest's folder, and no
manifest may point outside it: a release inside it is referenced in place; any other's files are hard-linked (copied
across file systems) into `<manifest stem>.audio/<split>/<release id>/`, named as in the release's layout, and their
sha256 is taken from the file placed there. A file placed there is never replaced, since other manifests of the
corpus may describe it: an identical one is reused, and different audio takes a name of its own
(`question.<sha256[:8]>.wav`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import AUDIO_FIELDS, ID_PATTERN, LICENSE_ID, MAX_ID_LENGTH, SPLIT_PATTERN, \
    UPSTREAM_VOICE, rejects_path
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter, iter_source_lines
from soundmind_data.core.stage import SILENT, Progress, StageReport, Summary
from soundmind_data.engines.source_records import Reject, label_field, logiqa_fields, string_field
from soundmind_data.engines import soundmind_layout as layout
from soundmind_data.text.template import parse_question, render_clean
from soundmind_data.text.textkey import DigestSet, id_digest

FORMATS = ("logiqa2-nli", "soundmind")  # annotation files, which `add` reads new items from too
HUB_FORMAT = layout.FORMAT  # a release with its audio: ingest only (add makes its own audio)


@dataclass
class IngestReport(StageReport):
    manifest: Path
    rejects: Path
    items: int = 0
    rejected: int = 0
    per_label: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})
    audio_in_place: int = 0  # a release's files referenced where they are (inside the corpus folder)
    audio_placed: int = 0  # a release's files linked or copied into `audio_folder`
    audio_folder: Path | None = None
    notes: list[str] = field(default_factory=list)  # what was ignored of the releases' cards, and why

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def set_aside(self) -> int:
        return self.rejected

    @property
    def set_aside_file(self) -> Path:
        return self.rejects

    def summary(self) -> Summary:
        lines = [f"ingest: {self.items} items ({self.per_label[0]} not-entailed, {self.per_label[1]} "
                 f"entailed) -> {self.manifest}; {self.rejected} rejected -> {self.rejects}"]
        if self.audio_in_place or self.audio_placed:
            lines.append(f"ingest: audio files: {self.audio_in_place} referenced in place, {self.audio_placed} "
                         f"linked or copied into {self.audio_folder}")
        lines += [f"ingest: {note}" for note in self.notes]
        return Summary(err=lines)



def audio_folder(manifest: Path) -> Path:
    """`out.jsonl` → `out.audio`, beside the manifest: where a release's audio from outside the corpus folder goes."""
    return manifest.with_name(f"{manifest.name.removesuffix('.jsonl')}.audio")


def _safe_id(value: object) -> str:
    if not isinstance(value, str):
        raise Reject(f"id: expected a string, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value):
        raise Reject(f"id: unsafe id {value[:80]!r} (allowed: A-Z a-z 0-9 . _ -, 1 to {MAX_ID_LENGTH} characters)")
    return value


def _file_id_prefix(path: Path) -> str:
    """A safe, readable id prefix from a source file name: `dev.txt` → `dev`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name.split(".")[0]).strip("-.") or "src"
    return stem[:40]


def from_logiqa(record: dict, *, split: str, file: str, line: int, id_prefix: str) -> dict[str, Any]:
    label, major, minor, conclusion = logiqa_fields(record)
    question = render_clean(major, minor, conclusion)
    return {
        "id": f"{id_prefix}-{line:06d}",
        "split": split,
        "major_premise": major,
        "minor_premise": minor,
        "conclusion": conclusion,
        "label": label,
        "question_text": question,
        "answer_text": None,
        "source": {"dataset": "logiqa2-nli", "file": file, "line": line, "gold_label": label},
    }


def _optional_string(record: dict, name: str) -> str | None:
    """A field that must be there, as a string or null; an empty string is null ("no answer", for the audit)."""
    if name not in record:
        raise Reject(f"{name}: missing")
    value = record[name]
    if value is not None and not isinstance(value, str):
        raise Reject(f"{name}: expected a string, got {type(value).__name__}")
    return value if value and value.strip() else None


def _soundmind_item(item_id: str, split: str, question: str, question_field: str, answer: str | None,
                    label: int, source: dict[str, Any]) -> dict[str, Any]:
    """An item of a SoundMind question (the template's text, kept byte for byte), the triplet parsed back out."""
    triplet = parse_question(question)
    if triplet is None:
        raise Reject(f"{question_field}: does not follow the SoundMind question template")
    major, minor, conclusion = triplet
    if not conclusion.strip():
        raise Reject(f"{question_field}: empty conclusion")
    return {
        "id": item_id,
        "split": split,
        "major_premise": major,
        "minor_premise": minor,
        "conclusion": conclusion,
        "label": label,
        "question_text": question,
        "answer_text": answer,
        "source": source,
    }


def from_soundmind(record: dict, *, split: str, file: str, line: int, id_prefix: str) -> dict[str, Any]:
    if "id" not in record:
        raise Reject("id: missing")
    item_id = _safe_id(record["id"])
    user_content = string_field(record, "user_content")
    answer = _optional_string(record, "answer")
    label = label_field(record, int)
    return _soundmind_item(item_id, split, user_content, "user_content", answer, label,
                           {"dataset": "soundmind", "file": file, "line": line})


def from_soundmind_hub(record: dict, *, split: str, release_split: str | None, file: str, line: int, folder: Path,
                       license_id: str | None) -> dict[str, Any]:
    """An item of a release's metadata line (`folder`: its split folder, `release_split` its name there). Its audio
    fields hold the release's files (checked to lie in the split folder, never opened): `ReleaseAudio` makes them
    audio entries once the item's id is known to be new, so that a duplicate's files are never placed."""
    if layout.ID not in record:
        raise Reject(f"{layout.ID}: missing")
    hub_id = _safe_id(record[layout.ID])
    item_id = layout.corpus_id(split, hub_id)
    if not ID_PATTERN.fullmatch(item_id):
        raise Reject(f"{layout.ID}: {hub_id!r} with its split makes the id {item_id!r}, longer than {MAX_ID_LENGTH} "
                     "characters")
    question = string_field(record, layout.QUESTION_TEXT)
    answer = _optional_string(record, layout.ANSWER_TEXT)
    label = label_field(record, int)
    source = {"dataset": "soundmind", "file": file, "line": line, **layout.source(release_split, hub_id)}
    if license_id is not None:
        source["license"] = license_id
    item = _soundmind_item(item_id, split, question, layout.QUESTION_TEXT, answer, label, source)
    if layout.QUESTION_FILE not in record:
        raise Reject(f"{layout.QUESTION_FILE}: missing")
    try:
        item["question_audio"] = layout.release_file(folder, record[layout.QUESTION_FILE], layout.QUESTION_FILE)
        if record.get(layout.ANSWER_FILE) is not None:
            if answer is None:
                raise Reject(f"{layout.ANSWER_FILE}: names the answer's audio, but {layout.ANSWER_TEXT} is empty")
            item["answer_audio"] = layout.release_file(folder, record[layout.ANSWER_FILE], layout.ANSWER_FILE)
    except layout.BadLine as exc:
        raise Reject(str(exc)) from None
    return item


CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {"logiqa2-nli": from_logiqa, "soundmind": from_soundmind}


class ReleaseAudio:
    """Turns the release files `from_soundmind_hub` names into audio entries of a manifest written to `out`.

    A file inside the corpus folder (`out`'s) is referenced where it is; any other is hard-linked into
    `audio_folder(out)`, or copied where a link cannot be made (another file system), through a temp renamed into
    place, so that nothing later writes through the link into the release. A file already there is never replaced
    (another manifest of the corpus may describe it): one with the same bytes is reused, and other audio is placed
    under a name of its own. The sha256 is that of the file the entry names; sample rate, channels and duration are
    read from its header (validate --audio decodes it whole)."""

    def __init__(self, out: Path, result: IngestReport):
        self.root = out.parent
        self.corpus = Path(os.path.realpath(self.root))
        self.folder = Path(audio_folder(out).name)
        self.result = result
        result.audio_folder = audio_folder(out)

    def attach(self, item: dict[str, Any]) -> None:
        """Every file of the item is checked before any is placed: a rejected item leaves nothing behind."""
        files = {key: item[key] for key in AUDIO_FIELDS if isinstance(item.get(key), Path)}
        infos = {key: self._info(key, file) for key, file in files.items()}
        for key, file in files.items():
            item[key] = self._entry(item, key, file, infos[key])

    @staticmethod
    def _info(key: str, file: Path):
        import soundfile

        field_name = layout.QUESTION_FILE if key == "question_audio" else layout.ANSWER_FILE
        try:
            info = soundfile.info(str(file))
        except RuntimeError as exc:  # soundfile.LibsndfileError and its parents
            raise Reject(f"{field_name}: {file.name} does not decode as audio ({exc})") from None
        if info.frames <= 0 or info.samplerate <= 0:
            raise Reject(f"{field_name}: {file.name} holds no audio")
        return info

    def _entry(self, item: dict[str, Any], key: str, file: Path, info) -> dict[str, Any]:
        if file.is_relative_to(self.corpus):
            relative, digest = file.relative_to(self.corpus), file_digest(file, "sha256")
            self.result.audio_in_place += 1
        else:
            names = layout.file_names(item["source"]["id"], item["label"], file.suffix[1:] or "wav", answered=True)
            name = names[0 if key == "question_audio" else 1]
            relative, digest = self._place(file, self.folder / item["split"] / name)
            self.result.audio_placed += 1
        return {"path": relative.as_posix(), "sha256": digest, "sample_rate": info.samplerate,
                "channels": info.channels, "duration_s": info.frames / info.samplerate,
                "voice": UPSTREAM_VOICE, "engine": UPSTREAM_VOICE}

    def _place(self, file: Path, wanted: Path) -> tuple[Path, str]:
        """Where `file` is placed, relative to the corpus folder (`wanted`, or `<stem>.<sha256[:8]><suffix>` beside it
        where `wanted` holds other audio), and the sha256 of the file placed there."""

        digest = file_digest(file, "sha256")
        other = wanted.with_name(f"{wanted.stem}.{digest[:8]}{wanted.suffix}")
        for relative in (wanted, other):
            placed = self.root / relative
            if not Path(os.path.realpath(placed)).is_relative_to(self.corpus):  # a symlinked folder there
                raise UsageError(f"{placed}: leads outside the folder of {self.result.manifest} (a symlink?); "
                                 f"the audio must lie in the corpus folder")
            if placed.exists():
                if os.path.samefile(placed, file) or file_digest(placed, "sha256") == digest:
                    return relative, digest
                continue
            try:
                tempfiles.place_file(file, placed)
            except OSError as exc:  # the source was just read: this is the corpus folder refusing the file
                raise UsageError(f"{placed}: cannot write: {exc.strerror}") from None
            # a copy's own digest: the entry describes the file placed, should the release's change meanwhile
            return relative, digest if os.path.samefile(placed, file) else file_digest(placed, "sha256")
        raise UsageError(f"{self.root / wanted.parent}: holds other audio as both {wanted.name} and {other.name}, "
                         f"where {file} would go: remove that folder, or write the manifest to another folder")


def iter_source(path: Path, convert: Callable[..., dict[str, Any]], **context: Any
                ) -> Iterator[tuple[dict | None, dict | None]]:
    """Yield (item, None) for good lines and (None, reject) for bad ones, in file order; `convert` makes an item of
    a line, given its split, file, line number and `context`."""
    empty = True
    for line in iter_source_lines(path):
        empty = False
        if line.error:
            yield None, {"file": line.file, "line": line.number, "reason": line.error}
            continue
        try:
            yield convert(line.record, file=line.file, line=line.number, **context), None
        except Reject as exc:
            raw_id = line.record.get("id") if isinstance(line.record.get("id"), str) else None
            yield None, {"file": line.file, "line": line.number, "reason": str(exc), "id": raw_id}
    if empty:
        yield None, {"file": str(path), "line": 0, "reason": "empty file: no JSON lines"}


def _plan(paths: list[Path], fmt: str, split: str | None, notes: list[str]
          ) -> list[tuple[Path, Callable[..., dict], dict[str, Any]]]:
    """What to read, in order: (file, its converter, the converter's context), usage errors found before anything
    is read; what of the releases' cards is ignored goes to `notes` (once per card: splits given one by one share
    theirs)."""
    if fmt not in (*FORMATS, HUB_FORMAT):
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join((*FORMATS, HUB_FORMAT))}")
    if split is not None and not SPLIT_PATTERN.fullmatch(split):
        raise UsageError(f"--split {split!r}: use 1 to 32 of A-Z a-z 0-9 _")
    if not paths:
        raise UsageError("no SOURCE file given")
    if fmt == HUB_FORMAT:
        plan = []
        for path in paths:
            release = layout.release_sources(path, split)
            license_id, ignored = _release_license(release)
            notes += [note for note in ignored if note not in notes]
            plan += [(one.metadata, from_soundmind_hub, {"split": one.split, "release_split": one.release_split,
                                                         "folder": one.metadata.parent, "license_id": license_id})
                     for one in release.splits]
        return plan
    if split is None:
        raise UsageError(f"--split: required with --format {fmt} (the split every item gets)")
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if path.is_dir():
            raise UsageError(f"{path}: is a directory, expected a JSONL file")
    if fmt == "logiqa2-nli":  # their ids are `<file name>-<line>`: two files of one name would collide line by line
        named: dict[str, Path] = {}
        for path in paths:
            if (other := named.setdefault(_file_id_prefix(path), path)) is not path:
                raise UsageError(f"{other} and {path} would both give ids {_file_id_prefix(path)}-NNNNNN "
                                 "(LogiQA ids come from the file name): rename one")
    return [(path, CONVERTERS[fmt], {"split": split, "id_prefix": _file_id_prefix(path)}) for path in paths]


def _release_license(release: layout.Release) -> tuple[str | None, list[str]]:
    """The licence a release's card declares when it is a Hub licence id (what our card may then name), else None:
    the release's card is text of theirs, not ours to copy into our card's Markdown; and what of its cards was
    ignored, and why."""

    if release.license is None or LICENSE_ID.fullmatch(release.license):
        return release.license, release.notes
    return None, [*release.notes, f"{release.card}: the release's card declares licence {release.license[:80]!r}, "
                                  "which is not a Hub licence id: ignored"]


def ingest(
    sources: Iterable[str | Path],
    *,
    fmt: str,
    split: str | None = None,
    out: str | Path,
    limit: int | None = None,
    progress: Progress = SILENT,
) -> IngestReport:
    """Convert `sources` (in order) into the item manifest `out`; bad lines go to `out.rejects.jsonl`.

    Both files are written atomically. `split` is every item's split; a release (`soundmind-hub`) gives each item the
    split of its folder unless `split` names one split's. `limit` keeps only the first N items of each source file
    (trial runs). `progress` advances once per source line.
    """
    out = Path(out)
    result = IngestReport(manifest=out, rejects=rejects_path(out))
    plan = _plan([Path(s) for s in sources], fmt, split, result.notes)
    for target in (out, result.rejects):
        if any(target.resolve() == path.resolve() for path, _, _ in plan):
            raise UsageError(f"{target}: is also a SOURCE; write the manifest to another file")
    release = ReleaseAudio(out, result) if fmt == HUB_FORMAT else None
    seen_ids = DigestSet()
    with AtomicWriter(out) as manifest, AtomicWriter(result.rejects) as rejects:
        for path, convert, context in plan:
            kept_here = 0
            for item, reject in iter_source(path, convert, **context):
                if limit is not None and kept_here >= limit:
                    break
                progress.advance()
                if item is not None:
                    reject = _keep(item, seen_ids, release)
                    if reject is None:
                        manifest.write_record(item)
                        kept_here += 1
                        result.items += 1
                        result.per_label[item["label"]] += 1
                        continue
                if reject.get("id") is None:
                    reject.pop("id", None)
                rejects.write_record(reject)
                result.rejected += 1
    return result


def _keep(item: dict[str, Any], seen_ids: DigestSet, release: ReleaseAudio | None) -> dict[str, Any] | None:
    """None when `item` is kept (a release's audio attached), else the reject line saying why not."""
    source = item["source"]
    try:
        if not seen_ids.add(id_digest(item["id"])):
            raise Reject(f"id: duplicate id {item['id']!r}")
        if release is not None:
            release.attach(item)
    except Reject as exc:
        return {"file": source["file"], "line": source["line"], "reason": str(exc), "id": source.get("id", item["id"])}
    return None
