"""Ingest: LogiQA 2.0 NLI and SoundMind annotation files become one item manifest.

Every good line becomes an item with provenance (source file, line, gold label where the source has one); every bad
line goes to a rejects file with its line number and reason. One bad line never costs the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from soundmind_data.corpus import ID_PATTERN, SPLIT_PATTERN
from soundmind_data.errors import UsageError
from soundmind_data.jsonl import AtomicWriter, iter_lines
from soundmind_data.stage import SILENT, Progress, Stage, StageReport, Summary
from soundmind_data.labels import parse_label
from soundmind_data.textkey import DigestSet, id_digest
from soundmind_data.template import clean_field, join_major_premise, parse_question, render_clean

FORMATS = ("logiqa2-nli", "soundmind")


class Reject(Exception):
    """A source line that cannot become an item; the message is the reason written to the rejects file."""


@dataclass
class IngestResult(StageReport):
    manifest: Path
    rejects: Path
    items: int = 0
    rejected: int = 0
    per_label: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})

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
        return Summary(err=[f"ingest: {self.items} items ({self.per_label[0]} not-entailed, {self.per_label[1]} "
                            f"entailed) -> {self.manifest}; {self.rejected} rejected -> {self.rejects}"])


def rejects_path(manifest: Path) -> Path:
    """`out.jsonl` → `out.rejects.jsonl`, beside the manifest."""
    return manifest.with_name(f"{manifest.name.removesuffix('.jsonl')}.rejects.jsonl")


def _string(record: dict, name: str) -> str:
    if name not in record:
        raise Reject(f"{name}: missing")
    value = record[name]
    if not isinstance(value, str):
        raise Reject(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _label(record: dict, expected: type) -> int:
    if "label" not in record:
        raise Reject("label: missing")
    if not isinstance(record["label"], expected) or isinstance(record["label"], bool):
        raise Reject(f"label: expected {'a word' if expected is str else '0 or 1'}, got {record['label']!r}")
    try:
        return parse_label(record["label"])
    except ValueError as exc:
        raise Reject(f"label: {exc}") from None


def _major_premise(record: dict) -> str:
    if "major_premise" not in record:
        raise Reject("major_premise: missing")
    value = record["major_premise"]
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return join_major_premise(value)
    raise Reject("major_premise: expected a string or a list of strings")


def _safe_id(value: object) -> str:
    if not isinstance(value, str):
        raise Reject(f"id: expected a string, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value):
        raise Reject(f"id: unsafe id {value[:80]!r} (allowed: A-Z a-z 0-9 . _ -, 1 to 64 characters)")
    return value


def _file_id_prefix(path: Path) -> str:
    """A safe, readable id prefix from a source file name: `dev.txt` → `dev`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name.split(".")[0]).strip("-.") or "src"
    return stem[:40]


def logiqa_fields(record: dict) -> tuple[int, str, str, str]:
    """The label and the (major, minor, conclusion) of a LogiQA 2.0 NLI line, as the question template quotes them:
    what an item of it holds, and what a gold file is matched by."""
    label = _label(record, str)
    major = clean_field(_major_premise(record))
    minor = clean_field(_string(record, "minor_premise"))
    conclusion = clean_field(_string(record, "conclusion"))
    if not conclusion:  # judged after the template's trimming, which makes "." empty too
        raise Reject("conclusion: empty")
    return label, major, minor, conclusion


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


def from_soundmind(record: dict, *, split: str, file: str, line: int, id_prefix: str) -> dict[str, Any]:
    if "id" not in record:
        raise Reject("id: missing")
    item_id = _safe_id(record["id"])
    user_content = _string(record, "user_content")
    if "answer" not in record:
        raise Reject("answer: missing")
    answer = record["answer"]
    if answer is not None and not isinstance(answer, str):
        raise Reject(f"answer: expected a string, got {type(answer).__name__}")
    label = _label(record, int)
    triplet = parse_question(user_content)
    if triplet is None:
        raise Reject("user_content: does not follow the SoundMind question template")
    major, minor, conclusion = triplet
    if not conclusion.strip():
        raise Reject("user_content: empty conclusion")
    return {
        "id": item_id,
        "split": split,
        "major_premise": major,
        "minor_premise": minor,
        "conclusion": conclusion,
        "label": label,
        "question_text": user_content,
        "answer_text": answer if answer and answer.strip() else None,
        "source": {"dataset": "soundmind", "file": file, "line": line},
    }


CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {"logiqa2-nli": from_logiqa, "soundmind": from_soundmind}


def iter_source(path: Path, fmt: str, split: str) -> Iterator[tuple[dict | None, dict | None]]:
    """Yield (item, None) for good lines and (None, reject) for bad ones, in file order."""
    convert = CONVERTERS[fmt]
    prefix = _file_id_prefix(path)
    empty = True
    for line in iter_lines(path):
        empty = False
        if line.error:
            yield None, {"file": line.file, "line": line.number, "reason": line.error}
            continue
        try:
            yield convert(line.record, split=split, file=line.file, line=line.number, id_prefix=prefix), None
        except Reject as exc:
            raw_id = line.record.get("id") if isinstance(line.record.get("id"), str) else None
            yield None, {"file": line.file, "line": line.number, "reason": str(exc), "id": raw_id}
    if empty:
        yield None, {"file": str(path), "line": 0, "reason": "empty file: no JSON lines"}


def ingest(
    sources: Iterable[str | Path],
    *,
    fmt: str,
    split: str,
    out: str | Path,
    limit: int | None = None,
    on_line: Callable[[], None] | None = None,
) -> IngestResult:
    """Convert `sources` (in order) into the item manifest `out`; bad lines go to `out.rejects.jsonl`.

    Both files are written atomically. `limit` keeps only the first N items of each source (trial runs).
    `on_line` is called once per source line (for a progress bar).
    """
    if fmt not in CONVERTERS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not SPLIT_PATTERN.fullmatch(split):
        raise UsageError(f"--split {split!r}: use 1 to 32 of A-Z a-z 0-9 _")
    paths = [Path(s) for s in sources]
    if not paths:
        raise UsageError("no SOURCE file given")
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
    out = Path(out)
    result = IngestResult(manifest=out, rejects=rejects_path(out))
    for target in (out, result.rejects):
        if any(target.resolve() == path.resolve() for path in paths):
            raise UsageError(f"{target}: is also a SOURCE; write the manifest to another file")
    seen_ids = DigestSet()
    with AtomicWriter(out) as manifest, AtomicWriter(result.rejects) as rejects:
        for path in paths:
            kept_here = 0
            for item, reject in iter_source(path, fmt, split):
                if limit is not None and kept_here >= limit:
                    break
                if on_line:
                    on_line()
                if item is not None:
                    if not seen_ids.add(id_digest(item["id"])):
                        reject = {"file": item["source"]["file"], "line": item["source"]["line"],
                                  "reason": f"id: duplicate id {item['id']!r}", "id": item["id"]}
                    else:
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


@dataclass(frozen=True)
class IngestOptions:
    sources: tuple[Path, ...]
    format: str
    split: str
    limit: int | None = field(default=None, metadata={"min": 1})


def run(manifest: None, out: Path, options: IngestOptions, *, report: None = None,
        progress: Progress = SILENT) -> IngestResult:
    """The ingest stage: `options.sources` into the manifest `out`."""
    progress.start("ingest", unit="line")
    return ingest(options.sources, fmt=options.format, split=options.split, out=out, limit=options.limit,
                  on_line=progress.advance)


STAGE = Stage("ingest", run, IngestOptions, reads_manifest=False, positional="sources",
              side_files=lambda out: {"the rejects file": rejects_path(out)})
