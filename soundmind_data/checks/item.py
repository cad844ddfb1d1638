"""The audio checks of one item: every audio file's file and signal checks, and the ASR judge's round trip.

Shared by the validate stage (every item, in worker processes) and the rerender stage (an item spoken again after it
failed). The judge scores the phoneme error rate of what it heard against the speech text, over the whole file and
over the stretch holding the item's own words (`asr.own_words`); a file the bundled tiny.en fails is heard again by
Whisper base, and the better of the two hearings stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from soundmind_data.checks.asr import RoundTrip, own_words
from soundmind_data.checks.audio import Decoded, FileResult, check_audio
from soundmind_data.checks.config import CheckConfig
from soundmind_data.core.corpus import AUDIO_TEXT, HEARD_FIELDS
from soundmind_data.text.speech_text import to_speech_text
from soundmind_data.text.textkey import spoken_words

SECOND_JUDGE = "whisper-base"  # how a file judged by the second opinion says so


class CheckedFile(NamedTuple):
    """One audio file's checks, and the words its speech text has (None: no text), which the worker counted anyway
    and the per-voice speaking-rate plot needs (the main process would have to normalise the text again)."""

    result: FileResult
    words: int | None


class ItemChecker:
    """The audio (and ASR) checks of one item's audio files. Each worker process owns one: it holds the ASR engine,
    loaded on first use."""

    def __init__(self, manifest_dir: Path, config: CheckConfig, asr: str | None, asr_model: str | None,
                 asr_device: str, asr_engine: Any = None):
        self.manifest_dir = manifest_dir
        self.config = config
        self.asr_name = asr
        self.asr_model = asr_model
        self.asr_device = asr_device
        self._asr = asr_engine  # loaded on first use when not given
        self._second = None  # Whisper base, loaded the first time tiny.en fails a file

    def __call__(self, item: dict[str, Any]) -> list[CheckedFile]:
        results = []
        for audio_field, text_field in AUDIO_TEXT.items():
            if audio_field not in item:
                continue
            text = item.get(text_field)
            speech = to_speech_text(text) if text else ""  # what the voice was asked to say
            words = spoken_words(speech) if speech else None  # counted for the speaking rate
            result, decoded = check_audio(item[audio_field], audio_field, self.manifest_dir, words, self.config)
            if self.asr_name:
                if decoded is None or not words:
                    result.skip("asr_per")
                else:
                    own = own_words([to_speech_text(item[name]) for name in ("major_premise", "minor_premise",
                                                                             "conclusion") if item.get(name)])
                    self._round_trip(result, decoded, speech, f"{item['id']}:{audio_field}", own)
                    result.speech_text = speech if speech != text else None
            results.append(CheckedFile(result, len(words) if words else None))
        return results

    def _round_trip(self, result: FileResult, decoded: Decoded, speech: str, seed_key: str,
                    own: frozenset[str]) -> None:
        """Judge by the phoneme error rate (and the WER where a bound is set); a file the bundled tiny.en fails is
        heard again by Whisper base, and the better of the two results stands."""
        from soundmind_data.checks.asr import load_judge, round_trip

        if self._asr is None:
            self._asr = load_judge(self.asr_name, self.asr_model, self.asr_device, self.config.asr_hotwords)
        trip = round_trip(self._asr, decoded.mono, decoded.sample_rate, speech, self.config, seed_key, own)
        judge = self.asr_name
        problems_first = self._problems(trip)
        if problems_first and self._second_opinion_applies():
            if self._second is None:
                from soundmind_data.checks.whisper_asr import WhisperASR
                from soundmind_data.checks.whisper_base import bundled_whisper_base

                self._second = WhisperASR(str(bundled_whisper_base()), self.asr_device, self.config.asr_hotwords)
            result.second_opinion = True
            again = round_trip(self._second, decoded.mono, decoded.sample_rate, speech, self.config, seed_key, own)
            if len(self._problems(again)) < len(problems_first) or (
                    len(self._problems(again)) == len(problems_first) and (again.per or 0) < (trip.per or 0)):
                trip, judge = again, SECOND_JUDGE  # the better of the two hearings stands
        result.wer, result.wer_sample_s, result.wer_sampled = round(trip.wer, 4), round(trip.sample_s, 2), not trip.whole
        result.per = None if trip.per is None else round(trip.per, 4)
        result.own_per = None if trip.own_per is None else round(trip.own_per, 4)
        result.transcript, result.heard_edits, result.judge = trip.transcript, trip.edits, judge
        heard = trip.transcript if len(trip.transcript) <= 80 else trip.transcript[:77] + "..."
        problems = self._problems(trip)
        checks = ["asr_per"] if trip.per is not None else []
        if trip.per is None or self.config.max_wer.get(self.asr_name) is not None:
            checks.append("asr_wer")
        for check in checks:
            found = [why for name, why in problems if name == check]
            result.check(check, not found, f"{'; '.join(found)} ({judge}); heard: \"{heard}\"",
                         check.removeprefix("asr_"))

    def _problems(self, trip: RoundTrip) -> list[tuple[str, str]]:
        """(check, why) for each bound `trip` is over: PER of the whole file and of the item's own words (the gate),
        WER where a bound is set or where no PER could be measured (long audio heard on a sample)."""
        found = []
        max_per = self.config.max_per.get(self.asr_name)
        if trip.per is not None and max_per is not None:
            if trip.per > max_per:
                found.append(("asr_per", f"PER {trip.per:.2f} above {max_per:g}"))
            if trip.own_per is not None and trip.own_per > max_per:
                found.append(("asr_per", f"PER {trip.own_per:.2f} on the item's own words above {max_per:g}"))
            found += [("asr_per", flip) for flip in trip.meaning]
        max_wer = self.config.max_wer.get(self.asr_name)
        if max_wer is None and trip.per is None:
            max_wer = max_per
        if max_wer is not None and trip.wer > max_wer:
            where = "" if trip.whole else f" on a {trip.sample_s:.0f} s sample"
            found.append(("asr_wer", f"WER {trip.wer:.2f}{where} above {max_wer:g}"))
        return found

    def _second_opinion_applies(self) -> bool:
        return self.config.second_opinion and self.asr_name == "whisper" and self.asr_model is None


def judged_entry(audio: dict[str, Any], result: FileResult) -> dict[str, Any]:
    """An audio entry with what the judge measured and heard written on it (replacing an earlier judgement), for
    curate to read and a reviewer to see beside the text (`review`); as it was when no ASR ran."""
    if result.wer is None:
        return audio
    heard = {"transcript": result.transcript,
             **({"heard_edits": result.heard_edits} if result.heard_edits is not None else {}),
             **({"speech_text": result.speech_text} if result.speech_text else {})}
    judged = {key: value for key, value in (("per", result.per), ("own_per", result.own_per), ("judge", result.judge))
              if value is not None}
    stale = {key: value for key, value in audio.items() if key not in HEARD_FIELDS}
    return {**stale, "wer": result.wer, "wer_sample_s": result.wer_sample_s, **judged, **heard}
