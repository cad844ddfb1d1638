"""Text to speech-ready text: what a voice should say, and in which pieces.

Speech text is made in three layers:

1. **This project's domain layer**, before the normaliser: full-width forms, typographic quotes and dashes, markdown
   marks (real SoundMind answers have "**State Organs**:" and "*not*"), logic symbols ("¬A → B" is read "not A
   implies B"), and the few readings LogiQA text needs that the normaliser gets wrong (superscripts, "No. 5",
   regnal numbers, "555-1234", "10s", "5~10", "death/injury").
2. **`nemo-text-processing`** (NVIDIA's text normaliser for TTS, the `speech` extra): numbers, years, dates, times,
   money, measures, fractions, ordinals, abbreviations. It runs sentence by sentence, as its authors advise; a
   sentence with nothing it would rewrite (the common case in reasoning text) skips it. Its grammars compile once
   per machine into `grammar_cache_dir()`, with a record of each one's size and sha256: a grammar that no longer
   matches it (truncated, damaged) is compiled again, alone. Without the extra, speech text is the domain layer
   alone and numbers are left to the voice's own front end; `normaliser_note()` says so and `normaliser_name()` is
   recorded in each item's `tts` record, so a mixed corpus shows.
3. The domain layer again: symbols the normaliser left ("a = b", "x < y"), spaces.

Nothing is deleted that is not understood: whatever is still unspeakable afterwards (CJK, unknown symbols) stays in
the text, so that `speakable.unspeakable_chars` finds it and synthesis refuses the item instead of dropping words
silently. `unspeakable_in_speech` is that one definition, used by audit, curate and synthesis alike. The same text
is the reference of the ASR round trip, so audio and reference always agree.

`split_sentences` cuts speech text into chunks no longer than a backend's limit, at sentence boundaries first,
then at clause punctuation, then between words, and never after an abbreviation or an initial.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.jsonl import write_json
from soundmind_data.core.usercache import CACHE_ENV, cache_root, file_entry, intact, make_folder, share
from soundmind_data.text.speakable import unspeakable_chars

NORMALISER_PACKAGE = "nemo-text-processing"
SPEECH_RULES_VERSION = 2  # bump when the domain layer changes what a text is read as (cached speech text is keyed by it)

# ------------------------------------------------------------------------------------------------ domain layer
# Read with spaces around them, so "¬A→B" and "¬ A → B" sound the same. Applied before the normaliser, which
# leaves logic alone; "<" and ">" are here too, and "=" between words (`_EQUALS`): it reads "x = 5" as "x equal
# sign five", though "10-5=5" as arithmetic.
_LOGIC_WORDS = {
    "¬": "not", "~": "not",  # "5~10" and "~5" are caught before as "5 to 10" and "about 5"
    "→": "implies", "⇒": "implies", "⊃": "implies", "⟶": "implies", "⟹": "implies",
    "↔": "if and only if", "⇔": "if and only if", "≡": "is equivalent to", "⟷": "if and only if", "⟺": "if and only if",
    "∧": "and", "∨": "or", "⊕": "exclusive or", "&": "and",
    "∃": "there exists", "∄": "there does not exist", "∀": "for all",
    "⊨": "entails", "⊭": "does not entail", "⊢": "proves", "⊬": "does not prove",
    "∴": "therefore", "∵": "because", "⊥": "contradiction", "⊤": "truth",
    "∈": "is in", "∉": "is not in", "⊆": "is a subset of", "⊂": "is a subset of", "∩": "intersect", "∪": "union",
    "∅": "the empty set",
    "≠": "is not equal to", "<": "is less than", ">": "is greater than",
    "≤": "is at most", "≥": "is at least", "≈": "is approximately",
    "−": "minus", "×": "times", "÷": "divided by", "±": "plus or minus", "^": "to the power of",
}
# What the normaliser reads only next to a number; alone, the domain layer reads it afterwards.
_SIGN_WORDS = {"=": "equals", "+": "plus", "%": "percent", "°": "degrees", "‰": "per mille", "‱": "per ten thousand",
               "§": "section", "¶": "paragraph"}
# ASCII spellings of the arrows, replaced before single characters so "->" does not become "- is greater than".
_ASCII_ARROWS = [("<->", "↔"), ("<=>", "↔"), ("->", "→"), ("=>", "→"), ("<=", "≤"), (">=", "≥"), ("!=", "≠")]
_TYPOGRAPHY = str.maketrans({
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "「": '"', "」": '"', "『": '"', "』": '"',
    "‘": "'", "’": "'", "‚": "'", "′": "'", "″": '"',
    "—": ", ", "–": ", ", "―": ", ", "‒": ", ", "…": "...", "•": ",", "·": ",",
    "。": ".", "、": ",", "《": '"', "》": '"', "【": "(", "】": ")",  # CJK punctuation NFKC leaves alone
    "\u00a0": " ", "\u2009": " ", "\u200b": "", "\ufeff": "",
})
_LOGIC_PATTERN = re.compile("|".join(re.escape(s) for s in sorted(_LOGIC_WORDS, key=len, reverse=True)))
_EQUALS = re.compile(r"\s*=\s*")
_SIGN_PATTERN = re.compile("|".join(re.escape(s) for s in _SIGN_WORDS))

# Superscripts, read before NFKC would turn "x²" into "x2".
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹ⁿ", "0123456789n")
_SUPERSCRIPT = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹ⁿ]+")
_POWER_WORDS = {"2": "squared", "3": "cubed"}
_UNIT_BEFORE = re.compile(r"\d ?[A-Za-z]{1,3}$")

_NUMBER_TEXT = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# "555-1234" and "555-123-4567" are telephone numbers, read digit by digit, never as a range or a subtraction.
_PHONE = re.compile(r"(?<![\w.,-])(\d{3}(?:-\d{3})?)-(\d{4})(?![\w-])")
# "1,000-2,000", "5~10", "5 – 10" are ranges, read "A to B"; "2020-01-05" and "10-5=5" are not. A hyphen needs no
# spaces around it ("5 - 3" is a subtraction); "〜" is the wave dash of Chinese and Japanese text, "～" arrives as "~".
_RANGE = re.compile(rf"(?<![\w.,-])({_NUMBER_TEXT})(?:-|\s*[–~〜]\s*)({_NUMBER_TEXT})(?![\w-]|[.,]\d|\s*=)")
_APPROXIMATELY = re.compile(r"~(?=\s*\d)")
# "10s" is a plural ("10s of thousands", "the 10s") or ten seconds; "5s" and "2.5s" are seconds. Decades ("80s",
# "1990s") are the normaliser's.
_TENS = re.compile(r"\b10s(?= of\b)|(?<=\bthe )10s\b")
_SECONDS = re.compile(r"(?<![\w.])(10|\d*[1-9](?:\.\d+)?)s\b")
_TIMES = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)x(?= [A-Za-z])")  # "5x faster"; "2x + 1" is algebra
_WORD_SLASH_WORD = re.compile(r"(?<=[A-Za-z]{2})/(?=[A-Za-z]{2})")  # "death/injury": a choice
_AND_OR = re.compile(r"\band/or\b")
# Regnal numbers: "Henry VIII" is "Henry the 8th", which the normaliser reads as an ordinal; after a word that
# counts ("Chapter IV", "World War II") a Roman numeral is a cardinal. One-letter numerals are too ambiguous
# ("I", "V", "X" are letters in LogiQA text) and are left alone.
_ROMAN = re.compile(r"\b([A-Z][a-z]+) (X{0,3}(?:IX|IV|V?I{0,3}))\b")  # up to XXXIX: "DC", "CD", "MD" are not kings
_COUNTING_WORDS = {"Chapter", "Part", "Volume", "Book", "Act", "Scene", "Section", "Article", "War", "Phase", "Type",
                   "Class", "Level", "Grade", "Step", "Stage", "Title", "Round", "Unit", "Appendix", "Figure", "Table"}
_ROMAN_VALUES = {"X": 10, "V": 5, "I": 1}
# Abbreviations and signs the normaliser leaves as they are written (it reads "Dr.", "Mr.", "e.g.", "vs." itself).
_READINGS = [(re.compile(pattern), words) for pattern, words in [
    (r"\bNo\.(?= ?\d)", "number"), (r"\bno\.(?= ?\d)", "number"), (r"\bProf\.", "Professor"),
    (r"\bapprox\.", "approximately"), (r"¢", " cents"),
]]
# Markdown a voice would read out as "asterisk" or "hash": the marks go, the words stay ("**not**" is read "not").
_MARKDOWN = [
    (re.compile(r"^ {0,3}#{1,6} +", re.MULTILINE), ""),  # heading marks
    (re.compile(r"^[ \t]*[-*+] +", re.MULTILINE), ""),  # bullets
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # emphasis, but not a*b*c
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
]
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]])")
_SPACE_AFTER_BRACKET = re.compile(r"([(\[]) +")
_REPEATED_COMMAS = re.compile(r",(?:\s*,)+")


def _equals(match: re.Match) -> str:
    """ "=" is read "equals", except in arithmetic written without spaces ("10-5=5"), which the normaliser reads."""
    text, start, end = match.string, match.start(), match.end()
    arithmetic = match.group(0) == "=" and text[start - 1:start].isdigit() and text[end:end + 1].isdigit()
    return "=" if arithmetic else " equals "


def _superscript(match: re.Match) -> str:
    power = match.group(0).translate(_SUPERSCRIPT_DIGITS)
    if _UNIT_BEFORE.search(match.string, 0, match.start()):  # "3 m²": a unit, which the normaliser reads whole
        return power
    return f" {_POWER_WORDS.get(power) or 'to the power of ' + power} "


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[char] for char in numeral]
    return sum(-value if value < following else value for value, following in zip(values, values[1:] + [0]))


def _regnal(match: re.Match) -> str:
    word, numeral = match.groups()
    if len(numeral) < 2:
        return match.group(0)
    value = _roman_value(numeral)
    if word in _COUNTING_WORDS:
        return f"{word} {value}"
    suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{word} the {value}{suffix}"


def _before_normaliser(text: str) -> str:
    text = _SUPERSCRIPT.sub(_superscript, text)
    text = unicodedata.normalize("NFKC", text)  # full-width digits, letters and "～" become ASCII
    text = _PHONE.sub(lambda m: ", ".join(" ".join(group) for group in m.group(0).split("-")), text)
    text = _RANGE.sub(r"\1 to \2", text)  # before dashes become commas and "~" becomes "about" or "not"
    text = text.translate(_TYPOGRAPHY).replace("\r\n", "\n").replace("\r", "\n")
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    text = _APPROXIMATELY.sub("about ", text)
    text = _TENS.sub("tens", text)
    text = _SECONDS.sub(r"\1 seconds", text)
    text = _TIMES.sub(r"\1 times", text)
    text = _ROMAN.sub(_regnal, text)
    for pattern, words in _READINGS:
        text = pattern.sub(words, text)
    text = _WORD_SLASH_WORD.sub(" or ", _AND_OR.sub("and or", text))
    for ascii_arrow, symbol in _ASCII_ARROWS:
        text = text.replace(ascii_arrow, symbol)
    text = _EQUALS.sub(_equals, text)
    return _LOGIC_PATTERN.sub(lambda m: f" {_LOGIC_WORDS[m.group(0)]} ", text)


def _after_normaliser(text: str) -> str:
    text = _SIGN_PATTERN.sub(lambda m: f" {_SIGN_WORDS[m.group(0)]} ", text)
    text = _SPACE_AFTER_BRACKET.sub(r"\1", _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text).strip()))
    return _REPEATED_COMMAS.sub(",", text)


# -------------------------------------------------------------------------------------------------- normaliser
def grammar_cache_dir() -> Path:
    """Where the normaliser's compiled grammars live: `$SOUNDMIND_DATA_CACHE`, else the user's cache folder."""
    return cache_root() / f"{NORMALISER_PACKAGE}-{_normaliser_version()}"


@lru_cache(maxsize=1)
def _normaliser_version() -> str | None:
    try:
        found = version(NORMALISER_PACKAGE)
        importlib.import_module("nemo_text_processing")  # installed but broken (pynini missing) counts as absent
    except (PackageNotFoundError, ImportError):
        return None
    return found


def normaliser_name() -> str:
    """What reads numbers and abbreviations in this process's speech text, as recorded in each item's `tts`."""
    found = _normaliser_version()
    return f"{NORMALISER_PACKAGE} {found}" if found else "soundmind-data domain rules only"


def normaliser_note() -> str | None:
    """What a stage shows once per run before it normalises text: that the normaliser is missing (a warning), or
    that its grammars are compiled first (a minute, once per machine); None when neither."""
    if not _normaliser_version():
        return (f"warning: {NORMALISER_PACKAGE} is not installed: numbers, dates and money are left to the voice "
                "(pip install 'soundmind-data[speech]')")
    folder = grammar_cache_dir()
    if _normaliser is None and not _grammars_compiled(folder):
        if _grammar_record(folder):
            return f"compiling again the speech normaliser's grammars in {folder} that do not match their record"
        return f"compiling the speech normaliser's grammars into {folder} (about a minute, once per machine)"
    return None


def _grammar_record(folder: Path) -> dict:
    """What `folder` records of its grammars: file name -> size and sha256 ({} where there is no readable record).
    Only plain grammar file names count: the rebuild copies the grammars it names."""
    try:
        record = json.loads((folder / GRAMMAR_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {name: entry for name, entry in record.items() if Path(name).name == name and name.endswith(".far")}


def _intact_grammars(folder: Path) -> list[str]:
    """The grammars of `folder` that match their record."""
    return [name for name, entry in _grammar_record(folder).items() if intact(folder / name, entry)]


def _grammars_compiled(folder: Path) -> bool:
    record = _grammar_record(folder)
    return len(record) >= _GRAMMAR_FILES and len(_intact_grammars(folder)) == len(record)


def prepare_normaliser() -> None:
    """Compile the normaliser's grammars now if this machine has none (a minute, once), so that worker processes
    started afterwards load them rather than queue on the lock. Loading is left to first use: a fully cached
    synthesis re-run never pays for it."""
    if _normaliser_version() and not _grammars_compiled(grammar_cache_dir()):
        _load_normaliser()


_GRAMMAR_FILES = 3  # the classifier, the verbaliser and the post-processor
GRAMMAR_RECORD = "soundmind-grammars.json"  # written last into the grammar folder: each grammar's size and sha256
_LOAD_LOCK = threading.Lock()
_normaliser = None  # the loaded Normalizer of this process


def _load_normaliser():
    """NeMo's English TTS normaliser; compiling its grammars the first time on this machine (about a minute,
    under a file lock so that parallel workers compile once)."""
    global _normaliser
    with _LOAD_LOCK:
        if _normaliser is None:
            from filelock import FileLock

            # It logs every sentence at INFO and resets its level on each call: a filter keeps warnings only.
            logging.getLogger("NeMo-text-processing").addFilter(lambda record: record.levelno >= logging.WARNING)
            folder = grammar_cache_dir()
            try:
                make_folder(folder)
            except OSError as exc:
                raise UsageError(f"{folder}: cannot create the grammar cache: {exc.strerror} "
                                 f"(set {CACHE_ENV} to a writable folder)") from None
            with FileLock(str(folder / ".lock")):
                _normaliser = _normaliser_from(folder)
    return _normaliser


def _normaliser_from(folder: Path):
    """The normaliser, loading the grammars of `folder`. Those missing or not as recorded (truncated, damaged) are
    compiled aside first, moved in, and recorded last, so that a killed compile never leaves a grammar that looks
    finished; NeMo compiles exactly the grammars missing from its cache folder, so the intact ones are copied aside
    for it to load rather than compile again. A compile that fails, or whose grammars do not read back as recorded,
    is a UsageError (compiling again would fare no better)."""
    from nemo_text_processing.text_normalization.normalize import Normalizer

    if _grammars_compiled(folder):
        return Normalizer(input_case="cased", lang="en", cache_dir=str(folder))
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".compiling-") as scratch:
            for name in _intact_grammars(folder):
                shutil.copyfile(folder / name, Path(scratch) / name)
            normaliser = Normalizer(input_case="cased", lang="en", cache_dir=scratch)
            grammars = sorted(path.name for path in Path(scratch).glob("*.far"))
            for name in grammars:
                share(Path(scratch) / name)  # the cache may be shared by the machine's users
                os.replace(Path(scratch) / name, folder / name)
        write_json(folder / GRAMMAR_RECORD, {name: file_entry(folder / name) for name in grammars})
        share(folder / GRAMMAR_RECORD)
    except OSError as exc:  # a full disk, a read-only or foreign cache: one line, not a traceback
        raise UsageError(f"{folder}: cannot compile the speech normaliser's grammars there: {exc.strerror or exc} "
                         f"(set {CACHE_ENV} to a writable folder)") from None
    if not _grammars_compiled(folder):
        raise UsageError(f"{folder}: the speech normaliser's grammars were just compiled there, but do not match the "
                         f"record written with them (a failing disk, or another program writing there?); set "
                         f"{CACHE_ENV} to another folder")
    return normaliser


@lru_cache(maxsize=1)
def _whitelist() -> frozenset[str]:
    """The written forms NeMo's TTS whitelist rewrites ("vs", "HVAC", "Mr."), as the fast path must know them."""
    import nemo_text_processing.text_normalization.en as english

    path = Path(english.__file__).parent / "data" / "whitelist" / "tts.tsv"
    with open(path, encoding="utf-8") as rows:
        return frozenset(row[0] for row in csv.reader(rows, delimiter="\t") if row)


# A sentence of plain words: letters, spaces and pause punctuation, a full stop only at its end. The normaliser
# returns such a sentence unchanged unless a word is in its whitelist or is in capitals (abbreviations, numerals).
_PLAIN = re.compile(r"[A-Za-z ,;:!?'\"()\-]*[.!?]?")
_CAPITALS = re.compile(r"\b[A-Z]{2,}\b")
_WORD = re.compile(r"[A-Za-z]+")


# Written forms other grammars of the normaliser than its whitelist read ("St Louis" is "Saint Louis").
_ABBREVIATED = frozenset({"St", "Dr", "Mr", "Mrs", "Ms", "Mt", "Jr", "Sr", "Ft", "Ave", "Rd", "Blvd"})


def _needs_normaliser(sentence: str) -> bool:
    if not _PLAIN.fullmatch(sentence) or _CAPITALS.search(sentence):
        return True
    whitelist = _whitelist()
    return any(word in whitelist or word in _ABBREVIATED for word in _WORD.findall(sentence))


def _normalise_line(normaliser, line: str) -> str:
    sentences = normaliser.split_text_into_sentences(line, additional_split_symbols=";|:")
    return " ".join(_normalise_sentence(normaliser, sentence) for sentence in sentences)


def _normalise_sentence(normaliser, sentence: str) -> str:
    if not _needs_normaliser(sentence):
        return sentence
    # "|" has no safe reading ("or", "given", "divides"?) and the normaliser would guess "vertical bar": the pieces
    # around it are read and the bar is kept, for the unspeakable check to report.
    return " | ".join(normaliser.normalize(piece, punct_post_process=True) if piece.strip() else piece
                      for piece in sentence.split("|"))


@lru_cache(maxsize=4096)
def to_speech_text(text: str) -> str:
    """The words a voice should say for `text`; unspeakable characters it cannot rewrite are kept, not dropped.

    >>> to_speech_text("¬A → B")
    'not A implies B'
    """
    normaliser = _load_normaliser() if _normaliser_version() else None
    lines = []
    for line in _before_normaliser(text).split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line and normaliser is not None:
            line = _normalise_line(normaliser, line)
        line = _after_normaliser(line)
        if line:
            lines.append(line)
    return "\n".join(lines)


def unspeakable_in_speech(text: str) -> str:
    """The characters of `text` that speech normalisation cannot turn into words ("" when a voice can say it all):
    what audit, curate and synthesis call unspeakable. Text that is already speakable is not normalised (the
    common case)."""
    return unspeakable_chars(text) and unspeakable_chars(to_speech_text(text))


# ----------------------------------------------------------------------------------------------------- chunking
# A sentence ends at ".", "!" or "?" (and any closing quote or bracket) before a space and a word that can start a
# sentence, or at a line break; not after an abbreviation ("Dr. Li", "No. 5", "e.g. Li"). A single capital before a
# full stop is a sentence's last word in logic text ("If P then Q. Not Q."), not an initial.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[^a-z0-9\s])|\n+")
_NO_BREAK_AFTER = re.compile(r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|St|No|Jr|Sr|vs|approx)|\b\w\.\w)\.$")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Cut speech text into chunks of at most `max_chars` characters, each a sentence where one fits.

    A sentence longer than the limit is cut at clause punctuation, then between words; a single word longer than
    the limit is cut hard (it would be misread anyway, but no character is lost).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunks: list[str] = []
    for sentence in _sentences(text):
        chunks.extend(_fit(sentence, max_chars))
    return chunks


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if "\n" in end.group(0) or not _NO_BREAK_AFTER.search(text[start:end.start()].rstrip("\"')]")):
            sentences.append(text[start:end.start()])
            start = end.end()
    sentences.append(text[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    for separator in (_CLAUSE_END, re.compile(r"\s+")):
        parts = separator.split(sentence)
        if len(parts) > 1:
            return _pack(parts, max_chars)
    return [sentence[i:i + max_chars] for i in range(0, len(sentence), max_chars)]


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Greedily join consecutive parts with spaces while they fit; parts still too long are cut further."""
    chunks: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            chunks.append(current)
        if len(part) <= max_chars:
            current = part
        else:
            chunks.extend(_fit(part, max_chars))
            current = ""
    if current:
        chunks.append(current)
    return chunks


@dataclass(frozen=True)
class SpeechPreview:
    """One line as a voice will say it (`soundmind-data speech-text`): `where` names the line (TEXT, <stdin>:3),
    `unspeakable` the characters left without a reading (synthesize would refuse the item)."""

    where: str
    speech: str
    unspeakable: str


def speech_previews(text: str | None, stream: BinaryIO) -> Iterator[SpeechPreview]:
    """What the voice will say for `text`, or for each line of the binary `stream` when `text` is None. A line
    that is not UTF-8 text is a DataError naming it; an argument that is not (bytes arrive as lone surrogates) a
    UsageError."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError("TEXT: not UTF-8 text") from None
        lines: Iterable[tuple[str, str]] = [("TEXT", text)]
    else:
        lines = _utf8_lines(stream, "<stdin>")
    return (SpeechPreview(where, speech, unspeakable_chars(speech))
            for where, speech in ((where, to_speech_text(line)) for where, line in lines))


def _utf8_lines(stream: BinaryIO, name: str) -> Iterator[tuple[str, str]]:
    # Bytes decoded here, line by line: a text stream would hand on undecodable bytes as surrogates (or raise
    # mid-iteration), and the normaliser crashes on them; a stream that is not UTF-8 is not worth reading on.
    for number, raw in enumerate(stream, start=1):
        try:
            yield f"{name}:{number}", raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as bad:
            raise DataError(f"{name}:{number}: not UTF-8 text (byte {bad.start + 1} of the line)") from None
