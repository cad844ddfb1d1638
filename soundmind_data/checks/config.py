"""The thresholds of every audio and ASR check, in one place, with defaults a Piper corpus passes.

`soundmind-data validate --config checks.yaml` overrides any of them (schemas/checks-config.schema.json lists the
keys); the values used are written into the JSON report so a result can always be traced to its thresholds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundmind_data.core import yamlfile
from soundmind_data.core.errors import UsageError


@dataclass(frozen=True)
class CheckConfig:
    # files
    duration_tolerance: float = 0.01  # decoded vs manifest duration, relative
    # signal
    clip_level: float = 0.999  # a 16-bit full-scale sample decodes to 0.99997
    max_clipped_ratio: float = 0.001  # a loudness-normalised voice has no sample at full scale
    frame_s: float = 0.02
    silence_floor_dbfs: float = -50.0  # speech at -23 LUFS sits 20-40 dB above this; pauses fall below it
    max_silence_ratio: float = 0.5  # clean Piper speech is 10-20% pauses
    max_edge_silence_s: float = 1.0
    loudness_target_lufs: float = -23.0  # EBU R 128; used when the audio object carries no target of its own
    loudness_tolerance_lu: float = 2.0
    # Audio imported from a release (voice "upstream") was mastered to its makers' level, not ours: its loudness is
    # measured and reported against the target, and gated only when this is set.
    gate_imported_loudness: bool = False
    # text <-> audio: Piper's voices speak 170-210 words per minute; half the text missing doubles the rate
    min_speaking_rate_wpm: float = 100.0
    max_speaking_rate_wpm: float = 280.0
    # ASR round trip. The gate is the phoneme error rate (checks/phonemes.py), over the whole file and over the
    # stretch holding the item's own words; calibrated on clean audio of every default-pool voice against planted
    # defects (README "Validation", bench/judge.py).
    max_per: dict[str, float] = field(default_factory=lambda: {"pocketsphinx": 0.35, "whisper": 0.10})
    # An optional word error rate gate besides it (--max-wer). pocketsphinx keeps one for long audio it hears on a
    # sample, which has no PER: 0.15-0.30 on everyday words, 0.3-1.0 on logic.
    max_wer: dict[str, float] = field(default_factory=lambda: {"pocketsphinx": 0.5})
    # The domain's fixed vocabulary, which Whisper otherwise hears as "and tail", "not in tail" (never item text).
    asr_hotwords: tuple[str, ...] = ("entailed", "not-entailed", "premise", "premises", "conclusion")
    # A file the bundled tiny.en fails is heard again by Whisper base (checks/whisper_base.py); the better wins.
    second_opinion: bool = True
    # audio longer than this is transcribed on a bounded sample; None: always whole (Whisper is fast enough)
    asr_full_max_s: dict[str, float | None] = field(default_factory=lambda: {"pocketsphinx": 120.0, "whisper": None})
    asr_window_s: float = 30.0
    asr_seed: int = 0

    def with_bound(self, name: str, backend: str, value: float) -> "CheckConfig":
        """A copy whose `name` bound (max_per or max_wer) for `backend` is `value` (--max-per, --max-wer)."""
        if value < 0:
            raise UsageError(f"--{name.replace('_', '-')} {value}: expected a non-negative number")
        return dataclasses.replace(self, **{name: {**getattr(self, name), backend: value}})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None) -> CheckConfig:
    """The defaults, overridden by the keys of a YAML (or JSON) file when one is given."""
    if path is None:
        return CheckConfig()
    path = Path(path)
    data = yamlfile.load(path)
    data = {} if data is None else data
    yamlfile.check(path, "checks-config", data)
    defaults = CheckConfig()
    if "asr_hotwords" in data:
        data["asr_hotwords"] = tuple(data["asr_hotwords"])
    for per_backend in ("max_per", "max_wer", "asr_full_max_s"):
        if per_backend in data:
            data[per_backend] = {**getattr(defaults, per_backend), **data[per_backend]}
    config = dataclasses.replace(defaults, **data)
    if config.min_speaking_rate_wpm >= config.max_speaking_rate_wpm:
        raise UsageError(f"{path}: min_speaking_rate_wpm must be below max_speaking_rate_wpm")
    return config
