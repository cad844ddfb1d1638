"""The review page's writer: `write_review(sources, out)` writes OUT/index.html with its script and style (the files
of `site/`, copied as they are: no build step, nothing fetched from the network) and the data beside them:
- OUT/data/index.js: one row per item, what the table shows, sorts, filters and searches, and the summary header;
- OUT/data/details-NNNNN.js: the texts, speech texts, transcripts and their differences, CHUNK items a file, loaded
  when an item is opened. So a corpus of 10,000 items opens at once, and the page draws one page of rows at a time.
The data files hold JSON handed to one function call rather than bare JSON: a page opened from the file system may
not fetch() files beside it (Chromium and Firefox refuse file:// requests), but it may load scripts.

Items: every item of the corpus under review (kept, relabelled, to be regenerated), then every item dropped on the
way to it (see collect.py). Durations, loudness, WER, failed checks and transcripts are the item's own, or a
validated manifest's. Audio is linked relative to OUT (opened through `paths.audio_file`: never outside the
manifest's folder) or, with `embed`, copied under OUT/audio/ so the folder can be sent on its own.

Memory holds the index rows (a few hundred bytes an item) and a validated manifest's measurements; the texts are
streamed from the manifests into the detail files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, count
from pathlib import Path
from typing import Any
from urllib.parse import quote

from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import AUDIO_DIR, AUDIO_FIELDS, AUDIO_TEXT, DECISIONS, HEARD_FIELDS, PLOTS_DIR, \
    split_sort_key, voice_of
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import iter_manifest_lines, iter_selected
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.core.paths import UnsafePath, audio_file, check_output_folder
from soundmind_data.core.stage import Progress, SILENT, Summary
from soundmind_data.review.collect import DROPPED, KEPT, Found, checked, dropped_items, read_decisions, \
    read_validated
from soundmind_data.review.sources import SOURCES_FILE, ReviewSources

SITE = Path(__file__).parent / "site"  # index.html, review.js, review.css
PAGE = "index.html"
DATA_DIR = "data"
CHUNK = 250  # items per detail file: a few MB of long spoken answers, loaded in well under a second
_MARKER = ".soundmind-review"  # names a folder this module wrote, which it may replace
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
NO_REASON = "(none)"


@dataclass
class ReviewReport:
    out: Path
    items: int = 0
    decisions: Counter = field(default_factory=Counter)
    audio_linked: int = 0
    audio_missing: int = 0  # named by an item but not found (or outside its manifest's folder)
    embedded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def page(self) -> Path:
        return self.out / PAGE

    def summary(self) -> Summary:
        counts = ", ".join(f"{self.decisions[d]} {d}" for d in DECISIONS if self.decisions[d])
        audio = f"{self.audio_linked} audio files {'copied' if self.embedded else 'linked'}"
        text = Summary(out=[f"review page: {self.page}"],
                       err=[f"review: {self.items} items ({counts or 'none'}); {audio}"
                            + (f", {self.audio_missing} missing" if self.audio_missing else "")])
        text.err += [f"review: {note}" for note in self.notes]
        return text


def write_review(sources: ReviewSources, out: str | Path, *, embed: bool = False,
                 progress: Progress = SILENT) -> ReviewReport:
    """Write the review page of `sources` into the folder `out`, built aside and moved into place whole."""
    out = Path(out).resolve()
    _check_out(out, sources.manifest)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfiles.sweep(out.parent, out.name)
        staging = tempfiles.make_temp_dir(out.parent, out.name)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write there: {exc.strerror}") from None
    try:
        report = _build(sources, staging, out, embed, progress)
        (staging / _MARKER).write_text("written by soundmind-data review; replaced whole on the next run\n")
        staging.chmod(0o755)  # make_temp_dir makes it private; the page is meant to be opened and shared
        _swap_in(staging, out)
    except OSError as exc:  # a file named by the sources gone, a full disk: nothing is left half-written
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{out}: review page not written: {exc.filename or ''}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _check_out(out: Path, manifest: Path) -> None:
    check_output_folder(out, manifest, "--out")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / _MARKER).is_file())):
        raise UsageError(f"{out}: exists and is not a review page written by soundmind-data; refusing to replace "
                         f"it: move it away or write the page elsewhere")


def _swap_in(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / tempfiles.temp_name(out.name)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------- building
def _build(sources: ReviewSources, staging: Path, out: Path, embed: bool, progress: Progress) -> ReviewReport:
    report = ReviewReport(out, embedded=embed)
    decided = read_decisions(sources.decisions)
    measured = read_validated(sources.validated, report.notes) if sources.validated else {}
    writer = _Writer(staging, out, embed, report, sources.manifest.parent)
    progress.start("review", total=None)
    seen: set[str] = set()
    for line in iter_manifest_lines(sources.manifest):
        record = checked(line.record, sources.manifest, line.number)
        seen.add(record["id"])
        writer.add(record, sources.manifest, line.number, decided.pop(record["id"], None), measured)
        progress.advance()
    for found_in, found in dropped_items(sources, seen, decided):
        at = {one.position: one for one in found}
        for position, record in iter_selected(found_in, at):
            one = at[position]
            writer.add(checked(record, found_in, one.line), found_in, one.line, one, measured)
            progress.advance()
    for item_id, decision in decided.items():  # decided, but in no manifest given: what the decision line says
        writer.add({"id": item_id, "split": decision.split}, None, None, decision, measured)
    writer.finish(_summary(sources, staging, writer, report))
    saved = {**sources.to_json(), "inputs_sha256": sources.inputs_sha256()}
    (staging / SOURCES_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    return report


def _measured(own: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
    """An item's audio entry with a validated manifest's measurements over it; what was heard is taken whole from
    the one that heard it, so an older transcript's edits never mark a newer transcript."""
    if "transcript" in validated:
        own = {key: value for key, value in own.items() if key not in HEARD_FIELDS}
    return {**own, **validated}


class _Writer:
    """Turns items into index rows (kept in memory) and detail records (written CHUNK at a time)."""

    def __init__(self, staging: Path, out: Path, embed: bool, report: ReviewReport, corpus: Path):
        self.staging, self.out, self.embed, self.report = staging, out, embed, report
        self.corpus = corpus.resolve()  # the folder of the manifest under review
        self._copies: dict[Path, Path] = {}  # with `embed`: audio file -> its copy's path in OUT
        self.rows: list[dict[str, Any]] = []
        self.details: list[dict[str, Any]] = []
        self.chunks = 0
        (staging / DATA_DIR).mkdir()

    def add(self, record: dict[str, Any], manifest: Path | None, line: int | None, found: Found | None,
            measured: dict[str, dict[str, Any]]) -> None:
        item_id = str(record.get("id"))
        extra = measured.get(item_id, {})
        curation = record.get("curation") or {}
        decision = found.decision if found else curation.get("decision", KEPT)
        reasons = found.reasons if found else list(curation.get("reasons") or [])
        audio = {key.removesuffix("_audio"): _measured(record.get(key) or {}, extra.get(key, {})) for key in AUDIO_FIELDS}
        label = record.get("label")
        self.rows.append({
            "id": item_id, "split": str(record.get("split", "")),
            "label": LABEL_NAMES[label] if label in (0, 1) else "",
            "decision": decision, "reasons": reasons, "dropped_by": found.dropped_by if found and decision == DROPPED else "",
            # who speaks the item: one voice, or question's then answer's where they differ; none without audio
            "voices": list(dict.fromkeys(voice_of(record, record[key]) for key in AUDIO_FIELDS if record.get(key))),
            "question_s": audio["question"].get("duration_s"), "answer_s": audio["answer"].get("duration_s"),
            "question_lufs": audio["question"].get("loudness_lufs"), "answer_lufs": audio["answer"].get("loudness_lufs"),
            "question_wer": audio["question"].get("wer"), "answer_wer": audio["answer"].get("wer"),
            "failed_checks": list(extra.get("failed_checks") or record.get("failed_checks") or []),
            "search": " ".join(str(record.get(key) or "") for key in
                               ("major_premise", "minor_premise", "conclusion")).lower(),
        })
        old_label = curation.get("old_label")
        self.details.append({
            "source": f"{self._shown(manifest)}:{line}" if manifest else "",
            "note": found.note if found else "",
            "old_label": LABEL_NAMES[old_label] if old_label in (0, 1) else "",
            "rerender": _attempts_note(record.get("rerender")),
            **{name: self._spoken(record, AUDIO_TEXT[f"{name}_audio"], audio[name], manifest)
               for name in ("question", "answer")},
        })
        self.report.items += 1
        self.report.decisions[decision] += 1
        if len(self.details) == CHUNK:
            self._flush()

    def _spoken(self, record: dict[str, Any], text_field: str, audio: dict[str, Any],
                manifest: Path | None) -> dict[str, Any]:
        """One text of an item and how it was heard: the text, the speech text, the audio link, the transcript."""
        text = record.get(text_field)
        transcript, edits = audio.get("transcript"), audio.get("heard_edits")
        speech = audio.get("speech_text")
        duration, sample = audio.get("duration_s"), audio.get("wer_sample_s")
        diff = _differences(transcript, edits) if isinstance(transcript, str) and isinstance(edits, list) else None
        return {
            "text": text if isinstance(text, str) else None,
            # shown where the words differ, not where normalisation only joined lines
            "speech_text": speech if isinstance(speech, str) and speech.split() != str(text).split() else None,
            "audio": self._audio(audio, manifest) if audio.get("path") and manifest else None,
            "transcript": transcript if isinstance(transcript, str) and diff is None else None,
            "diff": diff,  # the transcript, marked where it differs from what was said
            "sampled": bool(duration and sample is not None and sample < 0.95 * duration),
        }

    def _shown(self, path: Path) -> str:
        """A manifest's path as the page names it: relative to the corpus folder when inside it."""
        return os.path.relpath(path, self.corpus) if path.resolve().is_relative_to(self.corpus) else str(path)

    def _audio(self, audio: dict[str, Any], manifest: Path) -> str | None:
        """The link the page plays the file by, relative to the page; None for a file missing or out of bounds."""
        try:
            path = audio_file(manifest.parent, str(audio["path"]))
        except UnsafePath:
            path = None
        if path is None or not path.is_file():
            self.report.audio_missing += 1
            return None
        self.report.audio_linked += 1
        if not self.embed:
            return quote(os.path.relpath(path, self.out))
        relative = self._copies.get(path)
        if relative is None:
            relative = self._copies[path] = self._free_name(
                Path(os.path.relpath(path, os.path.realpath(manifest.parent))).parts)
            target = self.staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            # A new file under a temp name, renamed into place: the copy never opens an existing name, which may be
            # a hard link to a corpus file, and writes through it.
            temp = target.with_name(tempfiles.temp_name(target.name))
            try:
                os.link(path, temp)  # cheap and as good as a copy: audio files are replaced, never edited
            except OSError:  # another file system, or one without hard links
                shutil.copyfile(path, temp)
            os.replace(temp, target)
        return quote(relative.as_posix())

    def _free_name(self, inside: tuple[str, ...]) -> Path:
        """The name under OUT for the audio file at `inside` (its path in the manifest's folder) that no other
        embedded file has: OUT/audio/ mirrors the corpus's audio/; a name taken (`x.flac` and `audio/x.flac` want
        the same one) is set aside in the first numbered folder, OUT/audio/N/..., where the whole path is free."""
        names = chain([Path(AUDIO_DIR, *(inside[1:] if inside[0] == AUDIO_DIR else inside))],
                      (Path(AUDIO_DIR, str(n), *inside) for n in count(1)))
        return next(name for name in names if self._free(self.staging / name))

    def _free(self, target: Path) -> bool:
        """Whether a file can be made at `target` in the staging folder: nothing there, nor a file where one of
        its folders would be."""
        folders = [folder for folder in target.parents if folder.is_relative_to(self.staging)]
        return not os.path.lexists(target) and all(folder.is_dir() or not os.path.lexists(folder) for folder in folders)

    def _flush(self) -> None:
        _write_data(self.staging / DATA_DIR / f"details-{self.chunks:05d}.js", "details", self.details,
                    chunk=self.chunks)
        self.chunks += 1
        self.details = []

    def finish(self, summary: dict[str, Any]) -> None:
        if self.details:
            self._flush()
        _write_data(self.staging / DATA_DIR / "index.js", "index",
                    {"summary": summary, "chunk_size": CHUNK, "rows": self.rows})
        for name in ("index.html", "review.js", "review.css"):
            shutil.copyfile(SITE / name, self.staging / name)


def _write_data(path: Path, kind: str, data: Any, **extra: Any) -> None:
    payload = json.dumps({"kind": kind, **extra, "data": data}, ensure_ascii=False, separators=(",", ":"))
    path.write_text(f"soundmindReview.receive({payload});\n", encoding="utf-8")


def _attempts_note(rerender: Any) -> str:
    """How many times the rerender stage had the item spoken, and what each voice failed."""
    attempts = rerender.get("attempts") if isinstance(rerender, dict) else None
    if not isinstance(attempts, list) or len(attempts) < 2:
        return ""
    said = [f"{attempt.get('voice')} " + (f"failed {', '.join(attempt.get('failed_checks') or [])}"
                                          if attempt.get("failed_checks") else "passed") for attempt in attempts]
    return f"spoken {len(attempts)} times: " + "; ".join(said)


def _differences(transcript: str, edits: list) -> list[list[str]]:
    """The transcript as the page marks it, from validate's edits: [equal | substitute | delete | insert, words of
    the text, words heard] in order (an equal stretch's words are given once, as heard)."""
    heard, chunks, at = transcript.split(), [], 0
    for start, end, said in edits:
        if start > at:
            chunks.append(["equal", "", " ".join(heard[at:start])])
        kind = "insert" if not said else "delete" if start == end else "substitute"
        chunks.append([kind, said, " ".join(heard[start:end])])
        at = end
    if at < len(heard):
        chunks.append(["equal", "", " ".join(heard[at:])])
    return chunks


# -------------------------------------------------------------------------------------------------------- summary
def _summary(sources: ReviewSources, staging: Path, writer: _Writer, report: ReviewReport) -> dict[str, Any]:
    """The header: split x label counts (in the corpus, dropped), decisions x reasons, licence, plots."""
    splits: dict[str, Counter] = {}
    by_reason: dict[str, Counter] = {}
    for row in writer.rows:
        column = "dropped" if row["decision"] == DROPPED else row["label"]
        splits.setdefault(row["split"], Counter())[column] += 1
        for reason in row["reasons"] or [NO_REASON]:
            by_reason.setdefault(reason, Counter())[row["decision"]] += 1
    licence, licence_text, title = _card(sources.card, report)
    return {
        "title": sources.title or title or sources.manifest.parent.name or "corpus",
        "manifest": os.path.relpath(sources.manifest.resolve(), writer.out),
        "licence": licence, "licence_text": licence_text,
        "split_label": {"columns": [*LABEL_NAMES, "dropped"],
                        "rows": [[split, *(splits[split][c] for c in (*LABEL_NAMES, "dropped"))]
                                 for split in sorted(splits, key=split_sort_key)]},
        "decision_reason": {"columns": list(DECISIONS),
                            "rows": [[reason, *(counts[d] for d in DECISIONS)]
                                     for reason, counts in sorted(by_reason.items(), key=lambda kv: -sum(kv[1].values()))]},
        "plots": _plots(sources, staging, report),
    }


def _card(card: Path | None, report: ReviewReport) -> tuple[str, str, str]:
    """(licence id, the card's licence paragraph, pretty name) of a dataset card; blanks without one."""
    if card is None or not card.is_file():
        return "", "", ""
    from huggingface_hub import DatasetCard

    try:
        loaded = DatasetCard.load(card)
    except Exception as exc:  # a card hand-edited into bad YAML still leaves a page worth reading
        report.notes.append(f"{card}: cannot read the card ({type(exc).__name__}); no licence shown")
        return "", "", ""
    paragraphs = loaded.text.split("\n\n")
    heading = next((i for i, p in enumerate(paragraphs) if p.strip().lower() in ("## licence", "## license")), None)
    text = paragraphs[heading + 1].strip() if heading is not None and heading + 1 < len(paragraphs) else ""
    text = _MARKDOWN_LINK.sub(r"\1", text)  # the page shows it as text: "[LogiQA 2.0](https://...)" reads badly
    return str(loaded.data.license or ""), text, str(loaded.data.pretty_name or "")


def _plots(sources: ReviewSources, staging: Path, report: ReviewReport) -> list[str]:
    folder = staging / PLOTS_DIR
    folder.mkdir()
    if sources.plots is None:
        from soundmind_data.report.plots import write_corpus_plots

        try:
            return [f"{PLOTS_DIR}/{path.name}" for path in write_corpus_plots(sources.manifest, folder)]
        except ImportError:  # matplotlib, imported when the first figure is drawn
            report.notes.append("no plots: pip install 'soundmind-data[plots]'")
            return []
    for path in sources.plots:
        shutil.copyfile(path, folder / path.name)
    return [f"{PLOTS_DIR}/{path.name}" for path in sources.plots]

