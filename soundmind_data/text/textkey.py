"""Normalised triplet keys: the identity of an item's content for duplicate, leak and gold matching.

Two items are "the same question" when their premises and conclusion agree after case folding, dropping punctuation
and collapsing whitespace; the key is a 64-bit hash so millions of them fit in a few megabytes. Symbols are not
punctuation: "x > 5" and "x < 5", "A → B" and "A ∨ B", "¬B" and "B" are different questions, so every symbol
(Unicode category S: < = > + ¬ → ∧ ∨ ↔ ∃ ∀ $ € °) and the signs % / & stay, each as a word of its own so that
spacing around them does not matter ("x>5" is "x > 5").
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_KEPT_PUNCTUATION = "%‰/&"  # Unicode calls these punctuation, but "50%" is not "50" and "and/or" is not "and or"


def _kept_sign(char: str) -> bool:
    return unicodedata.category(char)[0] == "S" or char in _KEPT_PUNCTUATION


# ASCII fast path (most of the corpus), on bytes because bytes.translate is about twice as fast as str.translate:
# letters are lower-cased, digits and signs kept, every other byte becomes a space; signs are then spaced apart.
_ASCII_FOLD = bytes(c | 0x20 if chr(c).isalpha() else c if chr(c).isdigit() or _kept_sign(chr(c)) else 0x20
                    if c < 128 else c for c in range(256))
_ASCII_SIGN = re.compile(rb"([" + re.escape(bytes(c for c in range(128) if _kept_sign(chr(c)))) + rb"])")
_WORD_ONLY_FOLD = bytes(c | 0x20 if chr(c).isalpha() else c if chr(c).isdigit() else 0x20 if c < 128 else c
                        for c in range(256))
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _normal_bytes(text: str) -> bytes:
    """The case-, punctuation- and whitespace-insensitive form of a text, in UTF-8 (signs kept, see above)."""
    if text.isascii():
        folded = text.encode("ascii").translate(_ASCII_FOLD)
        if _ASCII_SIGN.search(folded):
            folded = _ASCII_SIGN.sub(rb" \1 ", folded)
        return b" ".join(folded.split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = "".join(char if char.isalnum() else f" {char} " if _kept_sign(char) else " " for char in folded)
    return " ".join(spaced.split()).encode("utf-8")


def spoken_words(text: str) -> list[str]:
    """The words of a text as speech recognisers write them: case-folded, with every non-word character dropped."""
    if text.isascii():
        return text.encode("ascii").translate(_WORD_ONLY_FOLD).decode("ascii").split()
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()


def text_key(*fields: str) -> int:
    """A 64-bit key of the normalised fields (a separator keeps ("a b", "c") apart from ("a", "b c"))."""
    joined = b"\x1f".join([_normal_bytes(f) for f in fields])
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "big", signed=True)


def triplet_key(item: dict) -> int:
    return text_key(item["major_premise"], item["minor_premise"], item["conclusion"])


def id_digest(item_id: str) -> bytes:
    """8 bytes standing for an id, so uniqueness checks cost a few bytes per item whatever the ids' length."""
    return hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()


class DigestSet:
    """A set of 64-bit digests at about 8 bytes each, so checking a million ids for uniqueness stays small.

    New digests gather in a small Python set that is merged, when full, into one sorted numpy array; a lookup is a
    set probe plus a binary search.
    """

    def __init__(self, batch: int = 1 << 16):
        self._batch = batch
        self._recent: set[int] = set()
        self._merged = np.empty(0, dtype=np.int64)

    def add(self, digest: bytes) -> bool:
        """Add `digest`; False when it was already there."""
        value = int.from_bytes(digest, "big", signed=True)
        if value in self._recent:
            return False
        merged = self._merged
        if merged.size:
            at = merged.searchsorted(value)
            if at < merged.size and merged[at] == value:
                return False
        self._recent.add(value)
        if len(self._recent) >= self._batch:
            # concatenate + in-place sort: np.union1d would need several times the array's size in temporaries
            merged = np.concatenate((merged, np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))))
            merged.sort()
            self._merged = merged
            self._recent.clear()
        return True
