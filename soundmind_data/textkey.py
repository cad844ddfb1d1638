"""Normalised triplet keys: the identity of an item's content for duplicate, leak and gold matching.

Two items are "the same question" when their premises and conclusion agree after case folding, dropping punctuation
and collapsing whitespace; the key is a 64-bit hash so millions of them fit in a few megabytes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# ASCII fast path (most of the corpus), on bytes because bytes.translate is about twice as fast as str.translate:
# letters are lower-cased, digits kept, every other byte becomes a space.
_ASCII_FOLD = bytes(c | 0x20 if chr(c).isalpha() else c if chr(c).isdigit() else 0x20 if c < 128 else c
                    for c in range(256))


def _normal_bytes(text: str) -> bytes:
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_FOLD).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split()).encode("utf-8")


def normalise_text(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form of a text."""
    return _normal_bytes(text).decode("utf-8")


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
