"""Text to speech-ready text: what a voice should say, and in which pieces.

`to_speech_text` rewrites what TTS voices misread or skip: logic symbols ("¬A → B" is read "not A implies B"),
numbers, currency, abbreviations, typographic quotes and dashes, full-width forms, markdown emphasis, headings and
bullets (real SoundMind answers have "**State Organs**:" and "*not*"). It never deletes content it does
not understand: whatever is still unspeakable afterwards (CJK, unknown symbols) stays in the text so that
`speakable.unspeakable_chars` finds it and the synthesis stage reports the item instead of dropping words silently.
The same function builds the reference text for ASR round-trip checks, so audio and reference always agree.

`split_sentences` cuts speech text into chunks no longer than a backend's limit, at sentence boundaries first,
then at clause punctuation, then between words.
"""

from __future__ import annotations

import re
import unicodedata

from soundmind_data.speakable import unspeakable_chars

# Read with spaces around them, so "¬A→B" and "¬ A → B" sound the same.
_SYMBOL_WORDS = {
    "¬": "not", "~": "not",  # "5~10" and "~5" are caught before as "5 to 10" and "about 5"
    "→": "implies", "⇒": "implies", "⊃": "implies", "⟶": "implies", "⟹": "implies",
    "↔": "if and only if", "⇔": "if and only if", "≡": "is equivalent to", "⟷": "if and only if", "⟺": "if and only if",
    "∧": "and", "∨": "or", "⊕": "exclusive or", "&": "and",
    "∃": "there exists", "∄": "there does not exist", "∀": "for all",
    "⊨": "entails", "⊭": "does not entail", "⊢": "proves", "⊬": "does not prove",
    "∴": "therefore", "∵": "because", "⊥": "contradiction", "⊤": "truth",
    "∈": "is in", "∉": "is not in", "⊆": "is a subset of", "⊂": "is a subset of", "∩": "intersect", "∪": "union",
    "∅": "the empty set",
    "=": "equals", "≠": "is not equal to", "<": "is less than", ">": "is greater than",
    "≤": "is at most", "≥": "is at least", "≈": "is approximately",
    "+": "plus", "−": "minus", "×": "times", "÷": "divided by", "±": "plus or minus", "^": "to the power of",
    "°": "degrees", "%": "percent", "‰": "per mille", "‱": "per ten thousand", "§": "section", "¶": "paragraph",
}
# ASCII spellings of the arrows, replaced before single characters so "->" does not become "- is greater than".
_ASCII_ARROWS = [("<->", "↔"), ("<=>", "↔"), ("->", "→"), ("=>", "→"), ("<=", "≤"), (">=", "≥"), ("!=", "≠")]
_TYPOGRAPHY = str.maketrans({
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "「": '"', "」": '"', "『": '"', "』": '"',
    "‘": "'", "’": "'", "‚": "'", "′": "'", "″": '"',
    "—": ", ", "–": ", ", "―": ", ", "‒": ", ", "…": "...", "•": ",", "·": ",",
    "。": ".", "、": ",", "《": '"', "》": '"', "【": "(", "】": ")",  # CJK punctuation NFKC leaves alone
    "\u00a0": " ", "\u2009": " ", "\u200b": "", "\ufeff": "",
})
_SYMBOL_PATTERN = re.compile("|".join(re.escape(s) for s in sorted(_SYMBOL_WORDS, key=len, reverse=True)))

# Abbreviations as they are read; matched case-sensitively at word boundaries.
_ABBREVIATIONS = [
    (r"\be\.g\.", "for example"), (r"\bi\.e\.", "that is"), (r"\betc\.", "et cetera"), (r"\bvs\.?(?=\s)", "versus"),
    (r"\bcf\.", "compare"), (r"\bapprox\.", "approximately"), (r"\bMr\.", "Mister"), (r"\bMrs\.", "Missus"),
    (r"\bMs\.", "Miz"), (r"\bDr\.", "Doctor"), (r"\bProf\.", "Professor"), (r"\bSt\.(?= [A-Z])", "Saint"),
    (r"\bNo\.(?= ?\d)", "number"), (r"\ba\.m\.", "A M"), (r"\bp\.m\.", "P M"), (r"\bU\.S\.(?:A\.)?", "U S"),
    (r"\bU\.K\.", "U K"), (r"\bkm\b", "kilometres"), (r"\bkg\b", "kilograms"),
]
_ABBREVIATION_PATTERNS = [(re.compile(pattern), words) for pattern, words in _ABBREVIATIONS]

_NUMBER_TEXT = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# A hyphen starts a negative number only where a number can start (text or line start, after a space, "(", "=", ...):
# "COVID-19", "A-5" and "1990-2000" keep theirs.
_NEGATIVE = re.compile(r"(?<![^\s(\[{=<>,;:/])-(?=\d)")
# "1990-2000", "5~10", "5 – 10" are ranges, read "A to B"; "2020-01-05" and "10-5=5" are not. A hyphen needs no spaces
# around it ("5 - 3" is a subtraction); "〜" is the wave dash of Chinese and Japanese text, "～" arrives as "~" (NFKC).
_RANGE = re.compile(rf"(?<![\w.,-])({_NUMBER_TEXT})(?:-|\s*[–~〜]\s*)({_NUMBER_TEXT})(?![\w-]|[.,]\d|\s*=)")
_APPROXIMATELY = re.compile(r"~(?=\s*\d)")
# Decades: "1990s", "1990's", "'80s", "80s"; read "nineteen nineties", "eighties" (years 1100 to 2099, as _read_number).
_DECADE = re.compile(r"(?<![\w.'])'?([1-9]0|1[1-9]\d0|20\d0)'?s\b")
_CURRENCY = {"$": "dollars", "¥": "yuan", "€": "euros", "£": "pounds"}
# The scale word belongs before the currency: "$1.2 million" is "one point two million dollars".
_MONEY = re.compile(r"([$¥€£])\s?(\d[\d,]*(?:\.\d+)?)((?: (?:thousand|million|billion|trillion))?)\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")  # "AB12" is read "AB twelve"
_NUMBER = re.compile(_NUMBER_TEXT)
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

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                    "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """English words for a non-negative integer: 1998 -> "one thousand nine hundred ninety-eight"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            if n // value >= 1000:  # beyond our scales: read digit by digit rather than guess
                return " ".join(_ONES[int(d)] for d in str(n))
            rest = n % value
            return number_words(n // value) + " " + name + (" " + number_words(rest) if rest else "")
    raise AssertionError("unreachable")


def _year_words(n: int) -> str:
    """Years are read in pairs: 1998 -> "nineteen ninety-eight", 2005 -> "two thousand five"."""
    if 2000 <= n <= 2009:
        return number_words(n)
    high, low = divmod(n, 100)
    return number_words(high) + (" hundred" if low == 0
                                 else " oh " + _ONES[low] if low < 10 else " " + number_words(low))


def _ordinal_words(n: int) -> str:
    """21 -> "twenty-first": only the last word changes."""
    head, last = re.match(r"(.*?)([a-z]+)$", number_words(n)).groups()
    if last in _ORDINAL_ENDINGS:
        return head + _ORDINAL_ENDINGS[last]
    return head + (last[:-1] + "ieth" if last.endswith("y") else last + "th")


def _decade_words(digits: str) -> str:
    """The plural of the decade's last word: "80" -> "eighties", "1900" -> "nineteen hundreds"."""
    n = int(digits)
    words = _year_words(n) if n >= 1000 else number_words(n)
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _read_number(digits: str) -> str:
    """A number as spoken; a standalone 4-digit number from 1100 to 2099 is read as a year."""
    whole, _, fraction = digits.replace(",", "").partition(".")
    if len(whole) > 1 and whole.startswith("0"):  # codes such as 007: digit by digit
        spoken = " ".join(_ONES[int(d)] for d in whole)
    elif not fraction and "," not in digits and len(whole) == 4 and 1100 <= int(whole) <= 2099:
        spoken = _year_words(int(whole))
    else:
        spoken = number_words(int(whole))
    if fraction:
        spoken += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return spoken


def to_speech_text(text: str) -> str:
    """The words a voice should say for `text`; unspeakable characters it cannot rewrite are kept, not dropped.

    >>> to_speech_text("¬A → B")
    'not A implies B'
    """
    text = unicodedata.normalize("NFKC", text)  # full-width digits, letters and "～" become ASCII
    text = _NEGATIVE.sub("minus ", text)
    text = _RANGE.sub(r"\1 to \2", text)  # before dashes become commas and "~" becomes "about" or "not"
    text = text.translate(_TYPOGRAPHY).replace("\r\n", "\n").replace("\r", "\n")
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    text = _APPROXIMATELY.sub("about ", text)
    text = _DECADE.sub(lambda m: _decade_words(m.group(1)), text)  # before "1990s" is split as "1990 s"
    for ascii_arrow, symbol in _ASCII_ARROWS:
        text = text.replace(ascii_arrow, symbol)
    text = _ORDINAL.sub(lambda m: _ordinal_words(int(m.group(1))), text)
    text = _LETTER_DIGIT.sub(" ", text)
    for pattern, words in _ABBREVIATION_PATTERNS:
        text = pattern.sub(words, text)
    text = _MONEY.sub(lambda m: f"{m.group(2)}{m.group(3)} {_CURRENCY[m.group(1)]}", text)
    text = _NUMBER.sub(lambda m: _read_number(m.group(0)), text)
    text = _SYMBOL_PATTERN.sub(lambda m: f" {_SYMBOL_WORDS[m.group(0)]} ", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = "\n".join(line for line in lines if line)
    text = _SPACE_AFTER_BRACKET.sub(r"\1", _SPACE_BEFORE_PUNCT.sub(r"\1", text))
    text = _REPEATED_COMMAS.sub(",", text)
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Cut speech text into chunks of at most `max_chars` characters, each a sentence where one fits.

    A sentence longer than the limit is cut at clause punctuation, then between words; a single word longer than
    the limit is cut hard (it would be misread anyway, but no character is lost).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if sentence:
            chunks.extend(_fit(sentence, max_chars))
    return chunks


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


def unspeakable_in_speech(text: str) -> str:
    """The characters of `text` that speech normalisation cannot turn into words ("" when a voice can say it all):
    what audit and curate call unspeakable. Text that is already speakable is not normalised (the common case)."""
    return unspeakable_chars(text) and unspeakable_chars(to_speech_text(text))
