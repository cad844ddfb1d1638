"""Rerender: an item whose audio failed a check is spoken again, by another voice of its split, and judged again, up
to `attempts` times, before curate drops it.

Reads a `validate --out` manifest (each item's `failed_checks`). An item that failed an audio check (a file, signal,
speaking-rate or ASR check; not an annotation check, which new audio cannot mend) is synthesised again with the next
voice its split already has (so a test split held for its own voices stays speaker-disjoint; `voices` names others),
into files of their own (`audio/<split>/<id>/question.attempt-N.flac`: files that earlier manifests describe never
change), and its audio is judged again by the same checks and the same judge as validate. The first attempt that
passes every check stands; after the last, the item keeps its first audio and its failures, for curate to drop.
Every item that needed it carries `rerender`: each attempt's voice and the checks it failed, the first being the
audio validate judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundmind_data.checks import ANNOTATION_CHECKS
from soundmind_data.checks.config import load_config
from soundmind_data.checks.item import ItemChecker, judged_entry
from soundmind_data.core.corpus import voice_of
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import AtomicWriter, count_lines, iter_lines
from soundmind_data.core.stage import MANIFEST, Progress, SILENT, Stage, StageReport, Summary, option
from soundmind_data.text.speech_text import prepare_normaliser
from soundmind_data.tts.audio import FORMATS
from soundmind_data.tts.plan import TEST_SPLIT
from soundmind_data.tts.synthesizer import Cache, SynthesisOptions, Synthesizer
from soundmind_data.tts.voices import engine_problems, resolve_all, split_names


@dataclass(frozen=True)
class RerenderOptions:
    attempts: int = option(2, min=0, help="Most times an item is spoken again before it is left to curate to drop.")
    voices: tuple[str, ...] = option((),
        help="Voices to try besides the ones the item's split already has (soundmind-data voices names), "
             "comma-separated.")
    asr: str = option("whisper", help="The judge: whisper or pocketsphinx, as validate.")
    asr_model: str | None = option(None, help="Another Whisper model, as validate's --asr-model.")
    device: str = option("cpu", help="Where synthesis and the judge run: cpu or cuda.")
    max_per: float | None = option(None,
        help="The judge's PER gate, as validate's: give what the validate run before used.")
    max_wer: float | None = option(None, help="A WER gate besides it, as validate's.")
    config: Path | None = option(None, help="YAML file overriding check thresholds, as validate's.")
    cache: Path | None = option(None,
        help="Audio cache folder (default: the .cache folder beside MANIFEST, as synthesize makes it).")


@dataclass
class RerenderReport(StageReport):
    manifest: str
    out: str
    items: int = 0
    failed: int = 0  # items that came in with failed audio checks
    mended: dict[int, int] = field(default_factory=dict)  # attempts it took -> items that then passed
    still_failing: list[str] = field(default_factory=list)  # ids
    synthesized: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.still_failing

    @property
    def set_aside(self) -> int:
        return len(self.still_failing)

    def summary(self) -> Summary:
        mended = ", ".join(f"{count} after {attempts} attempt{'s' * (attempts > 1)}"
                           for attempts, count in sorted(self.mended.items())) or "none"
        return Summary(err=[f"rerender: {self.items} items, {self.failed} with failed audio: mended {mended}; "
                            f"{len(self.still_failing)} still failing (curate drops them) -> {self.out}; "
                            f"{self.synthesized} files synthesised in {self.wall_s:.1f} s"])

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "out": self.out, "items": self.items, "failed": self.failed,
                "mended": {str(attempts): count for attempts, count in sorted(self.mended.items())},
                "still_failing": self.still_failing, "synthesized": self.synthesized}


def _audio_failures(record: dict[str, Any]) -> list[str]:
    return [check for check in record.get("failed_checks") or [] if check not in ANNOTATION_CHECKS]


def _split_voices(manifest: Path) -> dict[str, list[str]]:
    """The voices each split is spoken by, in order of first use."""
    voices: dict[str, list[str]] = {}
    for line in iter_lines(manifest):
        record = line.record
        if isinstance(record, dict) and isinstance(record.get("question_audio"), dict):
            named = voices.setdefault(str(record.get("split")), [])
            voice = voice_of(record, record["question_audio"])
            if voice not in named:
                named.append(voice)
    return voices


def allowed_extras(split: str, split_voices: dict[str, list[str]], extra: tuple[str, ...]) -> tuple[str, ...]:
    """The extra voices a split may take without crossing the test split's boundary: the test split takes none that
    another split has, and no other split takes one that only the test split has."""
    elsewhere = {voice for name, voices in split_voices.items() if name != TEST_SPLIT for voice in voices}
    test_only = set(split_voices.get(TEST_SPLIT, [])) - elsewhere
    if split == TEST_SPLIT:
        return tuple(voice for voice in extra if voice not in elsewhere)
    return tuple(voice for voice in extra if voice not in test_only)


def next_voices(current: str, split_voices: list[str], extra: tuple[str, ...], attempts: int) -> list[str]:
    """The voices to try, in turn: the split's others after `current`, then `extra`, each once (every engine here
    but hibari is deterministic, so the same voice again would say it the same way); `current` again only when there
    is no other."""
    others = split_voices[split_voices.index(current) + 1:] + split_voices[:split_voices.index(current)] \
        if current in split_voices else list(split_voices)
    pool = [voice for voice in dict.fromkeys(others + list(extra)) if voice != current] or [current]
    return pool[:attempts]


def run(manifest: Path, out: Path, options: RerenderOptions, *, progress: Progress = SILENT) -> RerenderReport:
    """The rerender stage: `out` is the manifest again, failed items spoken anew where another voice passes."""
    from soundmind_data.checks.asr import JUDGES, load_judge

    JUDGES.check(options.asr)
    if not Path(manifest).is_file():
        raise UsageError(f"{manifest}: no such file")
    if Path(out).resolve().parent != Path(manifest).resolve().parent:
        raise UsageError(f"--out {out}: must be in the manifest's folder (audio paths are relative to it)")
    # the same gate as the validate run before it: an attempt must pass what the first audio failed
    config = load_config(options.config)
    if options.max_per is not None:
        config = config.with_bound("max_per", options.asr, options.max_per)
    if options.max_wer is not None:
        config = config.with_bound("max_wer", options.asr, options.max_wer)
    extra_voices = tuple(voice.name for voice in resolve_all(split_names(options.voices)))  # an unknown voice is a usage error now, not a failure per item
    folder = Path(manifest).parent
    started = time.monotonic()
    result = RerenderReport(str(manifest), str(out))
    split_voices = _split_voices(manifest)
    checker = ItemChecker(folder, config, options.asr, options.asr_model, options.device,
                          asr_engine=load_judge(options.asr, options.asr_model, options.device, config.asr_hotwords))
    synthesizers: dict[tuple, Synthesizer] = {}  # per (format, rate, loudness) of the audio being replaced
    cache = Cache(Path(options.cache) if options.cache else folder / ".cache")
    prepare_normaliser()
    progress.start("rerender", total=count_lines(manifest))
    with AtomicWriter(out) as writer:
        for line in iter_lines(manifest):
            if line.error is not None:
                raise DataError(f"{manifest}:{line.number}: {line.error}")
            record = line.record
            result.items += 1
            if _audio_failures(record) and options.attempts and isinstance(record.get("question_audio"), dict):
                result.failed += 1
                record = _rerender(record, line.number, split_voices, extra_voices, options, checker, synthesizers,
                                   cache, result)
                progress.note(f"{manifest}:{line.number}: {record['id']}: "
                              + ("still failing" if _audio_failures(record) else "mended")
                              + f" after {len(record['rerender']['attempts']) - 1} attempt(s)")
            writer.write_record(record)
            progress.advance()
    result.wall_s = time.monotonic() - started
    return result


def _rerender(record: dict[str, Any], line: int, split_voices: dict[str, list[str]], extra_voices: tuple[str, ...],
              options: RerenderOptions,
              checker: ItemChecker, synthesizers: dict[tuple, Synthesizer], cache: Cache,
              result: RerenderReport) -> dict[str, Any]:
    first = record["question_audio"]
    current = voice_of(record, first)
    earlier = (record.get("rerender") or {}).get("attempts") or []  # a rerender run before this one
    attempts = earlier or [{"voice": current, "failed_checks": _audio_failures(record)}]
    split = str(record.get("split"))
    candidates = next_voices(current, split_voices.get(split, []), allowed_extras(split, split_voices, extra_voices),
                             options.attempts)
    for number, voice in enumerate(candidates, start=len(attempts)):  # files an earlier run made keep their names
        try:
            synthesizer = _synthesizer(first, voice, options, cache, checker.manifest_dir, synthesizers)
            spoken = synthesizer.process(line, {key: value for key, value in record.items()
                                                if key not in ("failed_checks", "rerender")}, None, voice,
                                         file_suffix=f".attempt-{number}")
        except UsageError:  # a voice no engine has here (audio made elsewhere, or an engine not installed)
            attempts.append({"voice": voice, "failed_checks": ["synthesis"]})
            continue
        result.synthesized += spoken.synthesized
        if spoken.item is None:  # the voice could not say it: that is this attempt's failure
            attempts.append({"voice": voice, "failed_checks": ["synthesis"]})
            continue
        item = spoken.item
        failed = []
        for checked in checker(item):
            item[checked.result.field] = judged_entry(item[checked.result.field], checked.result)
            failed += checked.result.failed_checks
        attempts.append({"voice": voice, "failed_checks": list(dict.fromkeys(failed))})
        if not failed:
            result.mended[len(attempts) - 1] = result.mended.get(len(attempts) - 1, 0) + 1
            return {**item, "failed_checks": [check for check in record["failed_checks"] if check in ANNOTATION_CHECKS],
                    "rerender": {"attempts": attempts}}
    result.still_failing.append(record["id"])
    return {**record, "rerender": {"attempts": attempts}}


def _synthesizer(audio: dict[str, Any], voice: str, options: RerenderOptions, cache: Cache, folder: Path,
                 synthesizers: dict[tuple, Synthesizer]) -> Synthesizer:
    """An engine that makes files like `audio` (format, rate, loudness target) in `voice`."""
    extension = Path(audio["path"]).suffix.lstrip(".")
    fmt = next((name for name, (_, _, ext) in FORMATS.items() if ext == extension), "flac")
    shape = (voice, fmt, audio["sample_rate"], audio.get("loudness_target_lufs", -23.0))
    if shape not in synthesizers:
        synthesis = SynthesisOptions(voices=(voice,), device=options.device, fmt=fmt, sample_rate=audio["sample_rate"],
                                     target_lufs=shape[3])
        synthesis.check()
        synthesizers[shape] = Synthesizer(synthesis, folder, cache)
        cache.prepare()
    return synthesizers[shape]


def _preflight(options: RerenderOptions) -> list[str]:
    """The judge and the voices named (those of the manifest are known only when it is read) can run here."""
    from soundmind_data.checks.asr import judge_problems

    return (judge_problems(options.asr, options.asr_model, options.device,
                           second_opinion=load_config(options.config).second_opinion)
            + engine_problems(resolve_all(split_names(options.voices)), options.device))


COMMAND_HELP = """Speak again, with another voice of its split, every item whose audio failed a check, and judge it
again, up to --attempts times, before curate drops it.

The new audio goes to files of its own (audio/<split>/<id>/question.attempt-N.flac); every item that needed it
records each attempt's voice and failed checks under `rerender`. Exit code 1 when items still fail.

Example: soundmind-data rerender corpus/validated.jsonl --out corpus/rerendered.jsonl --attempts 2
"""

STAGE = Stage("rerender", run, RerenderOptions, report=True, output=MANIFEST, preflight=_preflight,
              input_help="A `validate --out` manifest (each item's failed_checks).",
              output_help="Manifest to write, in the same folder (audio paths are relative to it).",
              help=COMMAND_HELP)
