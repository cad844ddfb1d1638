"""The validation engine: every check of `validate` over a whole manifest, in manifest order.

Every line is checked against `schemas/item.schema.json` and for a unique id (and, with `strict`, for an answer whose
final verdict agrees with the label). With `audio`, each `question_audio` / `answer_audio` of a schema-valid item
goes through the file, signal and speaking-rate checks of `checks/audio.py`; with `asr`, through an ASR round trip
(`checks/asr.py`) too. Audio work runs in `workers` processes, a bounded number of items in flight, results taken
in manifest order, so memory does not grow with the corpus and `out` is written in the input's order. Failures and
figures go into a ValidateReport (checks/report.py).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

from soundmind_data.checks.audio import FAIL, PASS, SKIP
from soundmind_data.checks.config import CheckConfig
from soundmind_data.checks.item import CheckedFile, ItemChecker, judged_entry
from soundmind_data.checks.report import ValidateReport
from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_TEXT, voice_of
from soundmind_data.core.errors import UsageError
from soundmind_data.core.jsonl import AtomicWriter, Line, iter_lines
from soundmind_data.core.procpool import stop_now, worker_signals
from soundmind_data.core.stage import Progress, SILENT
from soundmind_data.report.plots import Distributions
from soundmind_data.text.speech_text import prepare_normaliser
from soundmind_data.text.textkey import id_digest

_IN_FLIGHT_PER_WORKER = 4  # items queued per worker: enough to keep it busy, few enough to bound memory


_worker_checker: ItemChecker | None = None


def _init_worker(*checker_args) -> None:
    global _worker_checker
    worker_signals()
    _worker_checker = ItemChecker(*checker_args)


def _check_in_worker(item: dict[str, Any]) -> list[CheckedFile]:
    return _worker_checker(item)


@contextmanager
def _checker_pool(workers: int, checker_args: tuple, asr_engine: Any, device: str) -> Iterator[Callable[[dict], Future]]:
    """A `submit(item) -> Future` running ItemChecker in `workers` processes (in this process when workers is 1,
    with the ASR engine already loaded here)."""
    if workers == 1:
        checker = ItemChecker(*checker_args, asr_engine=asr_engine)

        def submit(item: dict) -> Future:
            future: Future = Future()
            future.set_result(checker(item))
            return future

        yield submit
        return
    # CUDA does not survive a fork: workers of a GPU judge start afresh (each loads its own copy of the model).
    context = multiprocessing.get_context("spawn") if device == "cuda" else None
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=checker_args)
    try:
        yield lambda item: pool.submit(_check_in_worker, item)
    except BaseException:
        stop_now(pool)
        raise
    pool.shutdown()


def validate_manifest(
    path: str | Path,
    *,
    audio: bool = False,
    asr: str | None = None,
    asr_model: str | None = None,
    asr_device: str = "cpu",
    config: CheckConfig | None = None,
    strict: bool = False,
    workers: int = 1,
    out: str | Path | None = None,
    progress: Progress = SILENT,
) -> ValidateReport:
    """Check a manifest; `asr` implies `audio`. With `out`, write the manifest again with each audio's WER.
    `progress` advances once per item, in manifest order, with the audio heard and the items failed so far."""
    path = Path(path)
    audio = audio or asr is not None
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected 1 or more")
    if out is not None:
        _check_out_path(path, Path(out))
    asr_engine = None
    if asr is not None:  # a bad --asr or --asr-model is a usage error now, not a failure on the first audio file
        from soundmind_data.checks.asr import load_judge

        asr_engine = load_judge(asr, asr_model, asr_device, (config or CheckConfig()).asr_hotwords)
        if asr == "whisper" and asr_model is None and (config or CheckConfig()).second_opinion:
            from soundmind_data.checks.whisper_base import bundled_whisper_base

            bundled_whisper_base()  # joined and checked now: a missing package is a usage error before any work
    if audio:  # compile the speech normaliser's grammars here, once, before workers need them
        prepare_normaliser()
    report = ValidateReport(manifest=str(path), out=str(out) if out else None, config=(config or CheckConfig()) if audio else None,
                            asr_backend=asr, asr_model=asr_model, asr_device=asr_device)
    seen_ids: dict[bytes, int] = {}
    pending: deque[tuple[Line, bool, Future | None]] = deque()  # (line, schema-valid, its audio results)
    checker_args = (path.parent, report.config, asr, asr_model, asr_device)
    with (AtomicWriter(out) if out else nullcontext()) as writer, _checker_pool(workers, checker_args, asr_engine, asr_device) as submit:
        for line in iter_lines(path):
            report.items += 1
            checkable = _annotation_checks(line, report, seen_ids, strict)
            pending.append((line, checkable, submit(line.record) if audio and checkable else None))
            while pending and (len(pending) > workers * _IN_FLIGHT_PER_WORKER or _done(pending[0][2])):
                _finish(*pending.popleft(), report, writer, progress)
        while pending:
            _finish(*pending.popleft(), report, writer, progress)
    return report


def _check_out_path(manifest: Path, out: Path) -> None:
    """Audio paths are relative to the manifest's folder, so the rewritten manifest must live in the same one."""
    if out.resolve().parent != manifest.resolve().parent:
        raise UsageError(f"--out {out}: must be in the folder of {manifest} (audio paths are relative to it)")
    if out.resolve() == manifest.resolve():
        raise UsageError(f"--out {out}: must differ from the manifest being validated")


def _done(future: Future | None) -> bool:
    return future is None or future.done()


def _annotation_checks(line: Line, report: ValidateReport, seen_ids: dict[bytes, int], strict: bool) -> bool:
    """The checks of one line that need no audio; True when the item is sound enough for its audio to be checked."""
    if line.error:
        report.tally("json", FAIL)
        report.fail(line.number, None, "json", "(line)", line.error)
        return False
    report.tally("json", PASS)
    record = line.record
    item_id = record.get("id") if isinstance(record.get("id"), str) else None
    errors = schemas.errors("item", record)
    report.tally("schema", FAIL if errors else PASS)
    for error in errors:
        report.fail(line.number, item_id, "schema", schemas.field_path(error), error.message)
    if item_id is not None:
        digest = id_digest(item_id)
        if digest in seen_ids:
            report.tally("unique_id", FAIL)
            report.fail(line.number, item_id, "unique_id", "id", f"duplicate id {item_id!r} (first on line {seen_ids[digest]})")
        else:
            report.tally("unique_id", PASS)
            seen_ids[digest] = line.number
    if errors:
        return False
    if strict:
        _answer_label_check(line.number, record, report)
    if report.config:
        _audio_present_check(line.number, record, report)
    return True


def _answer_label_check(line: int, item: dict[str, Any], report: ValidateReport) -> None:
    from soundmind_data.engines.answers import answer_disagreement  # the audit's rule, so both commands agree

    if not item.get("answer_text"):  # an item without an answer has nothing to disagree with
        report.tally("answer_label", SKIP)
    elif message := answer_disagreement(item):
        report.tally("answer_label", FAIL)
        report.fail(line, item["id"], "answer_label", "answer_text", message)
    else:
        report.tally("answer_label", PASS)


def _audio_present_check(line: int, item: dict[str, Any], report: ValidateReport) -> None:
    """Question audio is always needed; answer audio when the item has an answer."""
    for audio_field, text_field in AUDIO_TEXT.items():
        text = item.get(text_field)
        if audio_field in item:
            report.tally("audio_present", PASS)
        elif text and text.strip():
            report.tally("audio_present", FAIL)
            report.fail(line, item["id"], "audio_present", audio_field, f"missing: the item has a {text_field} to speak")


def _finish(line: Line, checkable: bool, future: Future | None, report: ValidateReport,
            writer: AtomicWriter | None, progress: Progress) -> None:
    """Fold one item's audio results into the report and the output manifest, in manifest order."""
    record = line.record
    checked = {file.result.field: file for file in future.result()} if future else {}
    for result, _words in checked.values():
        report.add_file(line.number, record["id"], result, voice_of(record, record[result.field]))
        record[result.field] = judged_entry(record[result.field], result)
    if checkable:
        _add_distributions(record, checked, report.distributions)
    failed_checks = report.failed_checks(line.number)
    if writer is not None and record is not None:
        writer.write_record({**record, "failed_checks": failed_checks})  # what curate drops the item for
    progress.status(audio=f"{report.audio.seconds / 3600:.2f}h", failed=len(report.failed_lines))
    progress.advance()


def _add_distributions(item: dict[str, Any], checked: dict[str, CheckedFile], data: Distributions) -> None:
    """Each audio file's duration, loudness and WER for the plots: measured where checked, else the manifest's."""
    for audio_field in AUDIO_TEXT:
        audio = item.get(audio_field)
        if audio is None:
            continue
        result, words = checked.get(audio_field, (None, None))
        loudness = result.loudness_lufs if result and result.loudness_lufs is not None else audio.get("loudness_lufs")
        wer = result.wer if result and result.wer is not None else audio.get("wer")
        data.add(item["split"], item["label"], audio_field.split("_")[0], audio["duration_s"], loudness, wer,
                 voice=voice_of(item, audio), words=words)
