"""Which characters a TTS voice would drop or misread if they reached it unnormalised, and which written markup
has no place in a text meant to be spoken.

Audit, curate and synthesis apply `unspeakable_chars` after speech normalisation (`speech_text`): what is left is
text a voice could not speak faithfully, which is reported or refused, never silently dropped. The reason
stage also refuses answers with `markup` (markdown, LaTeX, tags, programming symbols): it writes new answers for
speech and can simply ask the model again.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# "|" has no reading a voice could guess ("or"? "given"? "divides"? "absolute value"?): it is reported, not read.
_UNREADABLE_ASCII = "|"
_ASCII_UNSPEAKABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f" + re.escape(_UNREADABLE_ASCII) + "]")
# Non-ASCII punctuation a voice takes as a pause or intonation and that carries no words, so it is left alone; other
# symbols (So), currency signs (Sc) and punctuation (Po) such as "✓", "★", "†", "€", "§" would be dropped or misread.
_SPOKEN_PUNCTUATION = "¡¿…•·"
_SCRIPT_PREFIXES = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH", "BOPOMOFO")


@lru_cache(maxsize=4096)
def char_problem(char: str) -> str | None:
    """Why `char` is unspeakable ("control", "logic symbol", "CJK", "symbol"), or None when a voice reads it fine."""
    if char in "\t\n\r":
        return None
    category = unicodedata.category(char)
    if category in ("Cc", "Co", "Cs", "Cn"):
        return "control"
    if category == "Sm" and not char.isascii():
        return "logic symbol"
    if "\u2190" <= char <= "\u21ff":  # arrows: some are So, not Sm
        return "logic symbol"
    if ord(char) >= 0x2E80 and unicodedata.name(char, "").startswith(_SCRIPT_PREFIXES):
        return "CJK"
    if char in _UNREADABLE_ASCII or (
            category in ("So", "Sc", "Po") and not char.isascii() and char not in _SPOKEN_PUNCTUATION):
        return "symbol"
    return None


def unspeakable_chars(text: str) -> str:
    """The distinct unspeakable characters of `text`, in order of first appearance ("" when all is speakable)."""
    if text.isascii():  # the common case, kept fast: only control characters and "|" can be wrong in ASCII
        if not _ASCII_UNSPEAKABLE.search(text):
            return ""
        return "".join(dict.fromkeys(_ASCII_UNSPEAKABLE.findall(text)))
    seen: dict[str, None] = {}
    for char in text:
        if char not in seen and char_problem(char):
            seen[char] = None
    return "".join(seen)


def describe(chars: str) -> str:
    """Unspeakable characters as a message names them: "'是' (CJK, U+662F), '✓' (symbol, U+2713)"."""
    return ", ".join(f"{char!r} ({char_problem(char)}, U+{ord(char):04X})" for char in chars)


_MARKUP = [  # (pattern, what it is), most telling first
    (re.compile(r"</?[A-Za-z][\w-]*>"), "a tag"),
    (re.compile(r"\$[^$\n]+\$|\\[A-Za-z]+"), "LaTeX"),
    (re.compile(r"\*\*|__|`|^ {0,3}#{1,6} |^\s*[-*+] ", re.MULTILINE), "markdown"),
    (re.compile(r"[*_#$\\{}^|@\[\]]"), "a symbol with no spoken form"),
]


def markup(text: str) -> str | None:
    """What written markup `text` holds ("markdown: '**'"), or None when it is plain prose a voice can read."""
    for pattern, kind in _MARKUP:
        found = pattern.search(text)
        if found:
            return f"{kind}: {found.group(0).strip()!r}"
    return None
