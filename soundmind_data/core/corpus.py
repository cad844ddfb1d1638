"""The corpus vocabulary: the names every stage, report and card agrees on, each said once.

What an item's fields are is the item schema's business (`schemas/item.schema.json`); this module holds what the
schema cannot say: which audio field speaks which text, how splits are ordered, what ids and split names may look
like as file names (a test checks these patterns against the schema), how a work dir and a Hub-ready folder are laid
out, what the side files beside a stage's manifest are called, and the one split x label counter that audit, diff, add, split, balance, plots and summaries share.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from soundmind_data.core.labels import LABEL_NAMES

# Each audio field of an item and the text field it speaks.
AUDIO_TEXT = {"question_audio": "question_text", "answer_audio": "answer_text"}
AUDIO_FIELDS = tuple(AUDIO_TEXT)
# What `validate --asr` writes on an audio entry about what was heard; written (and replaced) together.
HEARD_FIELDS = ("transcript", "heard_edits", "speech_text", "per", "own_per", "judge")

# What curate decides for each item, in the order reports and the review page list them.
DECISIONS = ("keep", "relabel", "regenerate", "drop")

MAX_ID_LENGTH = 64  # schemas/item.schema.json
ID_PATTERN = re.compile(rf"(?!\.\.?\Z)[A-Za-z0-9._-]{{1,{MAX_ID_LENGTH}}}")  # a folder name, never "." or ".."
SPLIT_PATTERN = re.compile(r"[A-Za-z0-9_]{1,32}")  # what `datasets` accepts as a split name (no "-")

# Common split names first, in the order people expect them; any other split follows alphabetically.
SPLIT_ORDER = ("train", "validation", "dev", "test")

# A pipeline's work dir.
RUN_LOG = "run-log.jsonl"  # one line per stage run or skipped (schemas/run-log.schema.json)
STATE_FILE = "pipeline-state.json"  # what each stage last wrote, for the skip rule
# How run logs, fingerprints and cards write a path inside a pipeline's work dir: they stay true when it is moved.
WORKDIR_VARIABLE = "$WORKDIR"


def in_workdir(text: str, workdir: Path) -> str:
    """`text` with the (absolute) work dir written as $WORKDIR, where it is a whole path or a path's start (so
    `/data/demo-in` stays itself when the work dir is `/data/demo`)."""
    return re.sub(re.escape(str(workdir)) + r"(?=/|\s|['\"]|$)", lambda _: WORKDIR_VARIABLE, text)


def from_workdir(text: str, workdir: Path) -> Path:
    """A path written by `in_workdir`, back in the work dir where it is now."""
    return Path(text.replace(WORKDIR_VARIABLE, str(workdir)))
# What a command sets aside, beside the manifest it writes: `NAME.jsonl` -> `NAME.<what>.jsonl`.
def _beside(manifest: Path, what: str) -> Path:
    return manifest.with_name(f"{manifest.name.removesuffix('.jsonl')}.{what}.jsonl")


def rejects_path(manifest: Path) -> Path:
    """ingest's lines it could not take: `out.jsonl` -> `out.rejects.jsonl`."""
    return _beside(manifest, "rejects")


def decisions_path(manifest: Path) -> Path:
    """curate's decision on every item not plainly kept: `curated.jsonl` -> `curated.decisions.jsonl`."""
    return _beside(manifest, "decisions")


def unresolved_path(manifest: Path) -> Path:
    """reason's items that got no acceptable answer: `out.jsonl` -> `out.unresolved.jsonl`."""
    return _beside(manifest, "unresolved")


def reason_cache_path(manifest: Path) -> Path:
    """reason's completions, kept after the run so that a rerun resumes from them: `out.jsonl` ->
    `out.reason-cache.jsonl`."""
    return _beside(manifest, "reason-cache")


def add_rejects_path(manifest: Path) -> Path:
    """add's rejected items (apart from ingest's own rejects file): `manifest.jsonl` -> `manifest.add-rejects.jsonl`."""
    return _beside(manifest, "add-rejects")


PLOTS_DIR = "plots"  # PNGs drawn from the final manifest; publish shows them on the dataset card
REVIEW_DIR = "review"  # the review page of the final corpus (index.html), which `run` writes
CORPUS_MANIFEST = "manifest.jsonl"  # the manifest a folder with audio holds, beside `audio/`
FAILURES_FILE = "failures.jsonl"  # beside it: the items synthesis set aside, with the reasons
AUDIO_DIR = "audio"  # where a folder with audio keeps it: audio/{split}/{id}/{question,answer}.{ext}
# A Hub-ready folder.
DATA_DIR = "data"  # data/{split}-{i:05d}-of-{n:05d}.parquet
CARD_FILE = "README.md"
# The shape of the Hub's licence ids (cc-by-nc-sa-4.0, other): a card's licence, and a release's that ingest keeps.
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")


UNKNOWN_VOICE = "unknown"  # who speaks audio made before audio entries named their voice, where tts does not say
# The voice (and engine) of audio imported from a release as it was recorded (`ingest --format soundmind-hub`), not
# synthesised here: validate reports its loudness rather than gating it, and the card tells it apart by origin.
UPSTREAM_VOICE = "upstream"


def imported_audio(audio: dict[str, Any]) -> bool:
    """Whether an audio entry is a release's own recording (its voice or engine is "upstream")."""
    return UPSTREAM_VOICE in (audio.get("voice"), audio.get("engine"))


def voice_of(item: dict[str, Any], audio: dict[str, Any]) -> str:
    """Who speaks an audio entry of `item`: the entry's `voice`. Audio made before entries named their voice is
    attributed to the item's `tts` record (BACKEND:VOICE), else to "unknown", so older manifests still count."""
    voice = audio.get("voice")
    if isinstance(voice, str) and voice:
        return voice
    tts = item.get("tts")
    if isinstance(tts, dict) and isinstance(tts.get("backend"), str) and isinstance(tts.get("voice"), str):
        return f"{tts['backend']}:{tts['voice']}"
    return UNKNOWN_VOICE


def split_sort_key(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


_NAME_RULES = (("id", ID_PATTERN, f"A-Z a-z 0-9 . _ -, 1 to {MAX_ID_LENGTH} characters, not . or .."),
               ("split", SPLIT_PATTERN, "A-Z a-z 0-9 _, 1 to 32 characters"))


def unsafe_name(item: dict[str, Any]) -> str | None:
    """"field: problem" when the item's id or split (both strings) is not a safe name, else None: for stages that read
    a few fields of each line rather than checking it against the schema, since later stages make files of both."""
    for name, pattern, allowed in _NAME_RULES:
        if not pattern.fullmatch(item[name]):
            return f"{name}: unsafe {name} {item[name][:80]!r} (allowed: {allowed})"
    return None


class LabelCounts:
    """Items per split and label. Splits keep the order they were first seen in; `sorted()` gives SPLIT_ORDER.

    Reports write it as `{split: {"0": not-entailed, "1": entailed}}` (JSON object keys are strings)."""

    def __init__(self, counts: dict[str, Iterable[int]] | None = None):
        self._counts: dict[str, list[int]] = {split: list(c) for split, c in (counts or {}).items()}

    def add(self, split: str, label: int, count: int = 1) -> None:
        """Count `count` items; a label other than 0 or 1 is a KeyError (readers turn it into a DataError)."""
        if label not in (0, 1) or isinstance(label, bool):
            raise KeyError(label)
        self._counts.setdefault(split, [0] * len(LABEL_NAMES))[label] += count

    def ensure(self, split: str) -> None:
        """List `split` even with no items (a split a stage emptied is still a row of its table)."""
        self._counts.setdefault(split, [0] * len(LABEL_NAMES))

    def __getitem__(self, split: str) -> list[int]:
        return self._counts.get(split, [0] * len(LABEL_NAMES))

    def __contains__(self, split: object) -> bool:
        return split in self._counts

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelCounts) and self._counts == other._counts

    def items(self) -> Iterator[tuple[str, list[int]]]:
        return iter(self._counts.items())

    def total(self, split: str | None = None) -> int:
        return sum(self[split]) if split is not None else sum(sum(c) for c in self._counts.values())

    def sorted(self) -> "LabelCounts":
        return LabelCounts({split: self._counts[split] for split in sorted(self._counts, key=split_sort_key)})

    def copy(self) -> "LabelCounts":
        return LabelCounts(self._counts)

    def rows(self) -> list[tuple[Any, ...]]:
        """(split, not-entailed, entailed, items) per split, for tables."""
        return [(split, *counts, sum(counts)) for split, counts in self._counts.items()]

    def by_label(self, split: str) -> dict[str, int]:
        """`{"0": not-entailed, "1": entailed}` of one split, as reports write it."""
        return {str(label): n for label, n in enumerate(self[split])}

    def to_json(self) -> dict[str, dict[str, int]]:
        return {split: self.by_label(split) for split in self._counts}

    @classmethod
    def from_json(cls, data: dict[str, dict[str, int]]) -> "LabelCounts":
        return cls({split: [by_label.get(str(label), 0) for label in range(len(LABEL_NAMES))]
                    for split, by_label in data.items()})
