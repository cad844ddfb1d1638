"""Add: a contributor's new items join an existing manifest without disturbing a single published item.

Steps, each done by the stage or engine that owns it:

1. the new files are read by the ingest importers (SoundMind annotations, LogiQA 2.0 NLI) or, for `fmt="items"`,
   checked line by line against the item schema; bad lines are rejected with file, line and reason;
2. one streaming pass over MANIFEST rejects every new item whose id already exists there, or whose normalised
   triplet (`textkey.triplet_key`) equals an existing item's or an earlier new item's; the reason names the id it
   duplicates and says whether the duplicate is exact or only equal after normalising case, punctuation and spacing;
3. the accepted items are appended under a placeholder split and `splitting.split_manifest(keep_existing=True)` places
   them, by default in the splits and proportions MANIFEST already has; existing lines are copied byte for byte;
4. only the new items are synthesised (`tts.driver.synthesize_manifest` on a manifest of just them), with the
   voices (a voice heard only in the test split stays held for it), format, sample rate and loudness target the
   existing audio was made with, the speaker plan balancing the new items; their files land
   under MANIFEST's folder like every other item's, and existing audio is never opened for writing;
5. MANIFEST is replaced atomically; rejects go to `<manifest>.add-rejects.jsonl` beside it.

MANIFEST is only streamed: add keeps a few fields per new item, and the split stage a few bytes per item.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_DIR, AUDIO_FIELDS, UNKNOWN_VOICE, LabelCounts, add_rejects_path, voice_of
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, iter_lines, iter_manifest_lines, iter_records
from soundmind_data.core.stage import REPORT_HELP, SILENT, Command, Progress, StageReport, Summary, argument, option
from soundmind_data.engines import importers
from soundmind_data.engines.answers import answer_disagreement
from soundmind_data.engines.splitting import parse_ratios, split_manifest
from soundmind_data.report.table import before_after_table, id_sample
from soundmind_data.text.textkey import triplet_key
from soundmind_data.tts.audio import FORMATS as AUDIO_FORMATS
from soundmind_data.tts.driver import synthesize_manifest
from soundmind_data.tts.plan import TEST_SPLIT
from soundmind_data.tts.synthesizer import SynthesisOptions
from soundmind_data.tts.voices import split_names

FORMATS = (*importers.FORMATS, "items")
PLACEHOLDER_SPLIT = "new"  # the split new items wait in until the split stage places them
GENERATED_FIELDS = (*AUDIO_FIELDS, "tts")  # made by add itself: a contributor's paths mean nothing here


@dataclass
class NewItem:
    """What add keeps of one new item: enough to find its duplicates and to point back at its source line."""

    id: str
    file: str
    line: int
    key: int  # normalised triplet
    exact: bytes  # digest of the triplet as written, to tell an exact duplicate from a normalised one
    answer_problem: str | None  # why its answer fails `validate --strict` (the audit's rule), if it has one


@dataclass
class Corpus:
    """What one pass over MANIFEST tells add."""

    items: int = 0
    counts: LabelCounts = field(default_factory=LabelCounts)  # splits in file order
    id_taken: set[str] = field(default_factory=set)  # the new ids that MANIFEST already has
    key_owner: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # new triplet -> 1st existing (id, exact)
    audio: dict[str, Any] | None = None  # question_audio of the first item with audio
    voices: dict[str, set[str]] = field(default_factory=dict)  # voice name -> the splits it speaks, by first use


@dataclass
class AddReport(StageReport):
    manifest: str
    sources: list[str]
    fmt: str
    ratios: dict[str, float] = field(default_factory=dict)
    ratios_from: str = "manifest"  # "manifest" (the proportions found there) or "option"
    seed: int = 0
    rejects_file: str = ""
    before: LabelCounts = field(default_factory=LabelCounts)
    after: LabelCounts = field(default_factory=LabelCounts)
    added: list[dict[str, Any]] = field(default_factory=list)  # {"id", "split", "label"} in file order
    rejected: list[dict[str, Any]] = field(default_factory=list)  # reject lines, plus duplicate_of where one is known
    synthesis: dict[str, Any] | None = None  # voices, files synthesised / from cache; None when skipped
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def added_counts(self) -> LabelCounts:
        counts = LabelCounts()
        for entry in self.added:
            counts.add(entry["split"], entry["label"])
        return counts

    def summary(self) -> Summary:
        text = Summary(out=[f"{reject['file']}:{reject['line']}: {reject['reason']}" for reject in self.rejected])
        if self.rejected:
            text.out.append("")
        added = self.added_counts()
        text.out.append(before_after_table(self.before, self.after, {
            "added not-entailed": {name: added[name][0] for name in self.after},
            "added entailed": {name: added[name][1] for name in self.after},
        }))
        text.err += [f"warning: {warning}" for warning in self.warnings]
        ratios = ", ".join(f"{name}={ratio:.3g}" for name, ratio in self.ratios.items())
        line = (f"add: {len(self.added)} added -> {self.manifest} (splits {ratios}, "
                f"{'from the manifest' if self.ratios_from == 'manifest' else 'from --ratios'})"
                if self.added else f"add: nothing added, {self.manifest} unchanged")
        line += f"; {len(self.rejected)} rejected -> {self.rejects_file}"
        if self.synthesis:
            line += (f"; {self.synthesis['synthesized']} audio files synthesised, {self.synthesis['cached']} "
                     f"from cache ({', '.join(self.synthesis['voices'])})")
        text.err.append(line)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": "add", "manifest": self.manifest, "sources": self.sources, "format": self.fmt,
            "ratios": self.ratios, "ratios_from": self.ratios_from, "seed": self.seed,
            "rejects_file": self.rejects_file, "before": self.before.to_json(), "after": self.after.to_json(),
            "added": self.added,
            "rejected": self.rejected, "synthesis": self.synthesis, "warnings": self.warnings,
        }



def _exact_digest(item: dict[str, Any]) -> bytes:
    triplet = "\x1f".join((item["major_premise"], item["minor_premise"], item["conclusion"]))
    return hashlib.blake2b(triplet.encode("utf-8"), digest_size=8).digest()


def _lines(path: Path) -> Iterator[bytes]:
    """Each non-blank line of a JSONL file, raw and newline-ended: lines add leaves alone are copied as they are."""
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.isspace():
                yield raw if raw.endswith(b"\n") else raw + b"\n"


# ------------------------------------------------------------------------------------------------ 1. read new items
def _read_items_format(sources: list[Path], out: Path,
                       progress: Progress) -> tuple[list[tuple[str, int]], list[dict]]:
    """Items already in our manifest format: schema-checked line by line, audio fields dropped (add makes them).

    Returns the source (file, line) of each item written to `out`, and the rejected lines.
    """
    for path in sources:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    where, rejects = [], []
    with AtomicWriter(out) as writer:
        for path in sources:
            empty = True
            for line in iter_lines(path):
                empty = False
                progress.advance()
                problem = line.error or schemas.first_error("item", line.record)
                if problem:
                    raw_id = line.record.get("id") if line.record else None
                    rejects.append({"file": line.file, "line": line.number, "reason": problem,
                                    "id": raw_id if isinstance(raw_id, str) else None})
                    continue
                writer.write_record({name: value for name, value in line.record.items() if name not in GENERATED_FIELDS})
                where.append((line.file, line.number))
            if empty:
                rejects.append({"file": str(path), "line": 0, "reason": "empty file: no JSON lines", "id": None})
    return where, rejects


def read_new_items(sources: list[Path], fmt: str, out: Path,
                   progress: Progress) -> tuple[list[NewItem], list[dict]]:
    """Write the readable new items to `out`; return what add keeps of each, and the rejected lines."""
    if fmt in importers.FORMATS:
        result = importers.ingest(sources, fmt=fmt, split=PLACEHOLDER_SPLIT, out=out, progress=progress)
        rejects = [{"id": None, **reject} for reject in iter_records(result.rejects)]
        where = None  # ingest records the source file and line in each item
    else:
        where, rejects = _read_items_format(sources, out, progress)
    new = []
    for index, item in enumerate(iter_records(out)):
        file, line = where[index] if where is not None else (item["source"]["file"], item["source"]["line"])
        new.append(NewItem(item["id"], file, line, triplet_key(item), _exact_digest(item), answer_disagreement(item)))
    return new, rejects


# ------------------------------------------------------------------------------------------- 2. find duplicates
def scan_corpus(manifest: Path, new: list[NewItem], progress: Progress) -> Corpus:
    """One streaming pass over MANIFEST: split x label counts, which new ids and triplets it already has, and the
    synthesis settings of its audio."""
    new_ids = {item.id for item in new}
    new_keys = {item.key for item in new}
    corpus = Corpus()
    for line in iter_manifest_lines(manifest):
        progress.advance()
        record = line.record
        try:
            item_id = record["id"]
            key = triplet_key(record)
            corpus.counts.add(record["split"], record["label"])
        except (KeyError, TypeError, AttributeError):  # a missing field, one that is not text, a bad label
            raise DataError(f"{line.file}:{line.number}: {schemas.first_error('item', record)}") from None
        corpus.items += 1
        if item_id in new_ids:
            corpus.id_taken.add(item_id)
        if key in new_keys and key not in corpus.key_owner:
            corpus.key_owner[key] = (item_id, _exact_digest(record))
        audio = record.get("question_audio")
        voice = voice_of(record, audio) if isinstance(audio, dict) else UNKNOWN_VOICE
        if voice != UNKNOWN_VOICE:
            corpus.voices.setdefault(voice, set()).add(record["split"])
        if corpus.audio is None and isinstance(record.get("question_audio"), dict):
            corpus.audio = record["question_audio"]
    return corpus


def _duplicate_kind(exact: bool) -> str:
    return "exact duplicate" if exact else "normalised duplicate"


def find_duplicates(new: list[NewItem], corpus: Corpus, manifest: Path) -> dict[int, dict[str, Any]]:
    """{index of a new item: its reject line with `duplicate_of`}, checking each against MANIFEST and earlier ones."""
    accepted_ids: dict[str, NewItem] = {}
    accepted_keys: dict[int, NewItem] = {}
    same_text = " (same premises and conclusion up to case, punctuation and spacing)"
    duplicates = {}
    for index, item in enumerate(new):
        if item.id in corpus.id_taken:
            duplicate_of, reason = item.id, f"id: {item.id!r} already exists in {manifest}"
        elif item.id in accepted_ids:  # only `items` sources get here: ingest rejects repeated ids itself
            other = accepted_ids[item.id]
            duplicate_of, reason = item.id, f"id: {item.id!r} is also the id of new item at {other.file}:{other.line}"
        elif item.key in corpus.key_owner:
            duplicate_of, exact = corpus.key_owner[item.key]
            reason = f"triplet: {_duplicate_kind(exact == item.exact)} of existing item {duplicate_of!r}"
            reason += "" if exact == item.exact else same_text
        elif item.key in accepted_keys:
            other = accepted_keys[item.key]
            duplicate_of = other.id
            reason = f"triplet: {_duplicate_kind(other.exact == item.exact)} of new item {other.id!r} " \
                     f"({other.file}:{other.line})" + ("" if other.exact == item.exact else same_text)
        else:
            accepted_ids[item.id] = accepted_keys[item.key] = item
            continue
        duplicates[index] = {"file": item.file, "line": item.line, "id": item.id, "reason": reason,
                             "duplicate_of": duplicate_of}
    return duplicates


def answer_rejects(new: list[NewItem]) -> dict[int, dict[str, Any]]:
    """{index of a new item: its reject line} for answers whose final verdict is missing or contradicts the label:
    a contributed answer is checked as `validate --strict` would check it once published."""
    return {index: {"file": item.file, "line": item.line, "id": item.id,
                    "reason": f"answer_text: {item.answer_problem}"}
            for index, item in enumerate(new) if item.answer_problem}


# -------------------------------------------------------------------------------------------------- 3. placement
def default_ratios(corpus: Corpus) -> dict[str, float]:
    """The splits MANIFEST has, in the proportions it has them: new items spread like the existing ones."""
    if not corpus.items:
        raise UsageError("the manifest has no items to take split ratios from: give --ratios")
    return {name: corpus.counts.total(name) / corpus.items for name in corpus.counts}


def _placeholder_split(taken: Iterable[str]) -> str:
    """A split name that is neither in MANIFEST nor in the ratios, so the split stage places every new item."""
    taken = set(taken)
    name, number = PLACEHOLDER_SPLIT, 1
    while name in taken:
        number += 1
        name = f"{PLACEHOLDER_SPLIT}_{number}"
    return name


# ------------------------------------------------------------------------------------------------- 4. synthesis
def corpus_synthesis_options(corpus: Corpus, backend: str | None, voices: tuple[str, ...],
                             device: str) -> SynthesisOptions:
    """Synthesis settings that match the existing audio: its voices (those heard only in the test split stay held
    for it), file format, sample rate and loudness target, unless `backend` / `voices` say otherwise."""
    defaults = SynthesisOptions()
    test_voices: tuple[str, ...] = ()
    if not backend and not voices:
        voices = tuple(corpus.voices)
        held = tuple(voice for voice, splits in corpus.voices.items() if splits == {TEST_SPLIT})
        test_voices = held if len(held) < len(voices) else ()
    audio = corpus.audio or {}
    extension = Path(audio.get("path", "")).suffix.lstrip(".")
    fmt = next((name for name, (_, _, ext) in AUDIO_FORMATS.items() if ext == extension), defaults.fmt)
    return SynthesisOptions(backend=backend, voices=voices, test_voices=test_voices, device=device, fmt=fmt,
                            sample_rate=audio.get("sample_rate", defaults.sample_rate),
                            target_lufs=audio.get("loudness_target_lufs", defaults.target_lufs))


def synthesize_new(to_speak: Path, manifest: Path, staging: Path, options: SynthesisOptions, *, workers: int,
                   cache_dir: Path | None, progress: Progress):
    """Synthesise the items of `to_speak` (only the new ones) so that their files land under MANIFEST's folder.

    The synthesize stage writes its manifest.jsonl and failures.jsonl into its OUT folder and the audio under
    OUT/audio; OUT is a staging folder whose `audio` is a link to MANIFEST's, so the files land beside the existing
    ones while the stage's own manifest never overwrites a file of the corpus.
    """
    audio_root = manifest.parent / AUDIO_DIR
    audio_root.mkdir(parents=True, exist_ok=True)
    out = staging / "synthesized"
    out.mkdir()
    (out / AUDIO_DIR).symlink_to(audio_root.resolve(), target_is_directory=True)
    return synthesize_manifest(to_speak, out, options, workers=workers,
                               cache_dir=cache_dir or manifest.parent / ".cache", progress=progress)


# ------------------------------------------------------------------------------------------------------- stage
def add_items(
    sources: Iterable[str | Path],
    *,
    to: str | Path,
    fmt: str = "soundmind",
    ratios: dict[str, float] | None = None,
    seed: int = 0,
    synthesize: bool | None = None,
    backend: str | None = None,
    voices: tuple[str, ...] = (),
    device: str = "cpu",
    workers: int = 1,
    cache_dir: str | Path | None = None,
    progress: Progress = SILENT,
) -> AddReport:
    """Add the items of `sources` to the manifest `to`, in place; see the module docstring.

    `ratios` default to the splits and proportions `to` has; `synthesize` defaults to whether its items have audio.
    `progress` advances once per line read and once per item synthesised.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    manifest = Path(to)
    if not manifest.is_file():
        raise UsageError(f"{manifest}: no such file")
    sources = [Path(source) for source in sources]
    if not sources:
        raise UsageError("no NEW_ITEMS file given")
    report = AddReport(manifest=str(manifest), sources=[str(s) for s in sources], fmt=fmt, seed=seed,
                       rejects_file=str(add_rejects_path(manifest)))
    staging = Path(tempfile.mkdtemp(prefix=".add-", dir=manifest.parent))  # same filesystem: links and renames work
    try:
        _add(report, manifest, sources, staging, ratios=ratios, synthesize=synthesize, backend=backend,
             voices=voices, device=device, workers=workers, cache_dir=Path(cache_dir) if cache_dir else None,
             progress=progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # removes the audio link, never what it points to
    with AtomicWriter(add_rejects_path(manifest)) as rejects:
        for reject in report.rejected:
            rejects.write_record({name: reject[name] for name in ("file", "line", "reason", "id")})
    return report


class _Counted(Progress):
    """The synthesis driver's progress as add shows it: one more item on add's own bar. The driver's notes and
    figures name the temporary manifest of the new items; add reports their failures in its own terms."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def advance(self, count: int = 1) -> None:
        self.progress.advance(count)


def _add(report: AddReport, manifest: Path, sources: list[Path], staging: Path, *, ratios, synthesize, backend,
         voices, device, workers, cache_dir, progress) -> None:
    new, report.rejected = read_new_items(sources, report.fmt, staging / "new.jsonl", progress)
    corpus = scan_corpus(manifest, new, progress)
    report.before = corpus.counts
    report.after = corpus.counts.copy()
    report.ratios_from = "option" if ratios else "manifest"
    report.ratios = ratios or default_ratios(corpus)
    unnamed = [name for name in corpus.counts if name not in report.ratios]
    if unnamed:
        raise UsageError(f"--ratios must name every split of {manifest} (existing items never move): "
                         f"missing {', '.join(unnamed)}")
    duplicates = {**find_duplicates(new, corpus, manifest), **answer_rejects(new)}
    report.rejected += duplicates.values()
    if len(duplicates) == len(new):
        return  # nothing to add: MANIFEST stays as it is

    placeholder = _placeholder_split([*corpus.counts, *report.ratios])
    merged = staging / "merged.jsonl"
    with AtomicWriter(merged) as out:
        for raw in _lines(manifest):
            out.file.write(raw)
        for index, item in enumerate(iter_records(staging / "new.jsonl")):
            if index not in duplicates:
                out.write_record({**item, "split": placeholder})
    placed = staging / "placed.jsonl"
    split_report = split_manifest(merged, out=placed, ratios=report.ratios, seed=report.seed, keep_existing=True,
                                  progress=progress)
    report.warnings = split_report.warnings
    if split_report.moved_ids:
        raise DataError(f"{manifest}: {len(split_report.moved_ids)} existing items share a triplet with items of "
                        f"another split (a leak), and placing new items would move them: "
                        f"{id_sample(split_report.moved_ids)}; fix the leaks first (soundmind-data split "
                        f"--keep-existing), then add")

    new_records = (orjson.loads(raw) for raw in islice(_lines(placed), corpus.items, None))  # after the existing
    wants_audio = synthesize if synthesize is not None else corpus.audio is not None
    if wants_audio:
        options = corpus_synthesis_options(corpus, backend, voices, device)
        to_speak = staging / "to-speak.jsonl"
        with AtomicWriter(to_speak) as out:
            for item in new_records:
                out.write_record(item)
        summary = synthesize_new(to_speak, manifest, staging, options, workers=workers, cache_dir=cache_dir,
                                 progress=_Counted(progress))
        report.synthesis = {"voices": [voice.name for voice in options.plan().voices],
                            "test_voices": [voice.name for voice in options.plan().test_voices], "format": options.fmt,
                            "sample_rate": options.sample_rate, "target_lufs": options.target_lufs,
                            "synthesized": summary.synthesized, "cached": summary.cached,
                            "audio_s": round(summary.audio_s, 3), "failed": summary.failed}
        source_of = {item.id: item for item in new}
        spoken = [(item["id"], item["split"]) for item in iter_records(to_speak)]  # failures name their line here
        for failure in iter_records(summary.failures_file):
            item_id, split = spoken[failure["line"] - 1]
            item = source_of[item_id]
            report.rejected.append({"file": item.file, "line": item.line, "id": item.id,
                                    "reason": f"synthesis: {failure['field'] or '(item)'}: {failure['reason']}"})
            # the audio of the item's other text may have been made: nothing will reference it
            shutil.rmtree(manifest.parent / AUDIO_DIR / split / item_id, ignore_errors=True)
        new_records = iter_records(summary.manifest)  # the items that got their audio, in order
    elif corpus.audio is not None:
        report.warnings.append("the new items get no audio (--no-synthesize) while the existing items have some")

    with AtomicWriter(manifest) as out:
        for raw in islice(_lines(placed), corpus.items):  # the existing items, as they were
            out.file.write(raw)
        for item in new_records:
            out.write_record(item)
            report.added.append({"id": item["id"], "split": item["split"], "label": item["label"]})
            report.after.add(item["split"], item["label"])


@dataclass(frozen=True)
class AddOptions:
    new_items: tuple[Path, ...] = argument(help="JSONL files of new items, read in the order given.")
    to: Path = option(help="Item manifest to add them to; updated in place, atomically.")
    format: str = option("soundmind", short="-f",
        help="soundmind (annotation lines: id, user_content, answer, label), logiqa2-nli, or items (our manifest "
             "format).")
    ratios: str | None = option(None,
        help="Splits and fractions for placing new items (default: the splits of --to, in the proportions it has "
             "them). Must name every split of --to.")
    seed: int = option(0, help="Seed of the split placement.")
    synthesize: bool | None = option(None, flag="--synthesize/--no-synthesize",
        help="Speak the new items (default: when the items of --to have audio).")
    backend: str | None = option(None, short="-b",
        help="Read --voice names as this engine's (piper, hibari, kokoro, flite, espeak, coqui).")
    voice: tuple[str, ...] = option((), short="-v",
        help="Voice(s) by the names `soundmind-data voices` prints, repeatable or comma-separated (default: the "
             "voices of the existing audio, a voice heard only in the test split held for it; a Piper model of your "
             "own must be given again by its path).")
    device: str = option("cpu", help="cpu or cuda.")
    workers: int = option(1, short="-w", help="Synthesis worker processes.")
    cache: Path | None = option(None,
        help="Audio cache folder (default: the .cache folder beside --to, as synthesize makes it).")
    report: Path | None = option(None, flag="--json", help=REPORT_HELP)


def run(options: AddOptions, *, progress: Progress = SILENT) -> AddReport:
    """The `add` command: `add_items` with the command's options."""
    progress.start("add", unit="line")
    return add_items(options.new_items, to=options.to, fmt=options.format,
                     ratios=parse_ratios(options.ratios) if options.ratios else None, seed=options.seed,
                     synthesize=options.synthesize, backend=options.backend, voices=split_names(options.voice),
                     device=options.device, workers=options.workers, cache_dir=options.cache,
                     progress=progress)


COMMAND_HELP = """Add a contributor's new items to a manifest: check them, reject duplicates, place them in splits
without moving any existing item, and synthesise their audio only.

A new item is rejected when its line is bad, its id is already taken, or its premises and conclusion equal an
existing or earlier new item's (exactly, or after normalising case, punctuation and spacing); the reason names
the item it duplicates. Rejects go to MANIFEST.add-rejects.jsonl. New audio matches the existing audio's
backend, voices, format, sample rate and loudness. Exit code 1 if anything was rejected, 2 for usage errors.

Example: soundmind-data add my-items.jsonl --to corpus/manifest.jsonl --json add.json
"""

COMMAND = Command("add", run, AddOptions, help=COMMAND_HELP,
                  side_files=lambda options: {"the rejects file": add_rejects_path(options.to)})
