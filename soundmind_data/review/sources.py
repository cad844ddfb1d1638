"""What a review page is made from (`ReviewSources`), and its record beside the page (SOURCES_FILE, sources.json):
saved with paths relative to the corpus folder so that a moved work dir keeps its review, with a digest of every file
it names so that a page is rewritten only when one changed, and read back (`review WORKDIR`) refusing any path that
leads out of the corpus folder."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from soundmind_data.core import schemas
from soundmind_data.core.corpus import CARD_FILE, CORPUS_MANIFEST, REVIEW_DIR, STATE_FILE
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError

SOURCES_FILE = "sources.json"  # what the page was made from, so that it can be made again (`review WORKDIR`)


@dataclass(frozen=True)
class StageStep:
    """One stage of a pipeline as the review reads it: the manifest it read, the one it wrote, the file listing
    what it set aside (with the reasons), if any."""

    name: str
    read: Path
    wrote: Path
    set_aside: Path | None = None


@dataclass
class ReviewSources:
    """What a review page is made from."""

    manifest: Path  # the corpus under review
    stages: list[StageStep] = field(default_factory=list)  # a pipeline's stages, in order: where items were dropped
    decisions: list[Path] = field(default_factory=list)  # curate decisions files
    validated: Path | None = None  # a `validate --out` manifest: measurements and transcripts by id
    card: Path | None = None  # the corpus card (README.md), for its licence
    plots: list[Path] | None = None  # PNGs to show; None draws the corpus plots from the manifest
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The sources, paths relative to the corpus folder where inside it (a moved work dir keeps its review)."""
        root = self.manifest.parent.resolve()

        def name(path: Path | None) -> str | None:
            return None if path is None else os.path.relpath(path, root) if Path(path).resolve().is_relative_to(root) \
                else str(path)

        return {"manifest": name(self.manifest), "title": self.title, "card": name(self.card),
                "plots": None if self.plots is None else [name(path) for path in self.plots],
                "decisions": [name(path) for path in self.decisions], "validated": name(self.validated),
                "stages": [{"name": s.name, "read": name(s.read), "wrote": name(s.wrote), "set_aside": name(s.set_aside)}
                           for s in self.stages]}

    def inputs_sha256(self) -> str:
        """A digest of the sources and of every file they name: the same digest, the same page."""
        digest = hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode())
        named = [self.manifest, self.card, self.validated, *self.decisions, *(self.plots or []),
                 *(path for step in self.stages for path in (step.read, step.wrote, step.set_aside))]
        for path in named:
            if path is not None and Path(path).is_file():
                digest.update(f"\0{path}\0{file_digest(Path(path), 'sha256')}".encode())
        return digest.hexdigest()

    @classmethod
    def from_json(cls, data: Any, root: Path) -> "ReviewSources":
        """Sources saved by `to_json` for a corpus now in `root`. ValueError for data of another shape (naming the
        field: the file may have been edited by hand) and for a path that is absolute or leads out of `root` (the
        file travels with a work dir, and must not make the review read elsewhere)."""
        problem = schemas.first_error("review-sources", data)
        if problem:
            raise ValueError(problem)
        folder = Path(os.path.realpath(root))

        def path(text: str | None) -> Path | None:
            if text is None:
                return None
            if os.path.isabs(text) or not Path(os.path.realpath(folder / text)).is_relative_to(folder):
                raise ValueError(f"{text!r} is not a path inside {root}")
            return root / text

        return cls(path(data["manifest"]), title=data.get("title"), card=path(data.get("card")),
                   plots=None if data.get("plots") is None else [path(p) for p in data["plots"]],
                   decisions=[path(p) for p in data.get("decisions", [])], validated=path(data.get("validated")),
                   stages=[StageStep(s["name"], path(s["read"]), path(s["wrote"]), path(s.get("set_aside")))
                           for s in data.get("stages", [])])


def sources_of_page(page: Path, corpus: Path) -> ReviewSources:
    """What the review page in the folder `page` was made from (its SOURCES_FILE), with paths in `corpus`."""
    try:
        return ReviewSources.from_json(json.loads((page / SOURCES_FILE).read_text(encoding="utf-8")), corpus)
    except FileNotFoundError:
        raise UsageError(f"{corpus}: no review page of a finished run in {page}: run the pipeline to the end (it "
                         f"writes one), or review a manifest") from None
    except OSError as exc:
        raise UsageError(f"{page / SOURCES_FILE}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # not JSON, not UTF-8, not of the schema's shape, a path out of the work dir
        raise UsageError(f"{page / SOURCES_FILE}: not what soundmind-data review writes: {exc}") from None


def saved_inputs_sha256(page: Path) -> str | None:
    """The inputs digest the page in `page` was made from, if it has one."""
    try:
        return json.loads((page / SOURCES_FILE).read_text(encoding="utf-8")).get("inputs_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def review_sources_of(path: Path, *, decisions: Iterable[Path] = (), validated: Path | None = None) -> ReviewSources:
    """The sources for a pipeline's work dir (what its last finished run's page was made from, with `decisions`
    and `validated` in place of its own when given), a manifest file, or a folder holding one (`manifest.jsonl`)."""
    decisions = list(decisions)
    if path.is_dir() and (path / STATE_FILE).is_file():
        sources = sources_of_page(path.resolve() / REVIEW_DIR, path.resolve())
        sources.decisions, sources.validated = decisions, validated
    else:
        manifest = path / CORPUS_MANIFEST if path.is_dir() else path
        if not manifest.is_file():
            raise UsageError(f"{path}: no manifest there (a JSONL file, or a folder holding {CORPUS_MANIFEST} "
                             f"or a pipeline's work dir)")
        card = manifest.parent / CARD_FILE
        sources = ReviewSources(manifest, decisions=decisions, validated=validated,
                                card=card if card.is_file() else None)
    for named in [*decisions, *([validated] if validated else [])]:
        if not named.is_file():
            raise UsageError(f"{named}: no such file")
    return sources
