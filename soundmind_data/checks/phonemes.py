"""Does the audio say the text? Compared as sounds, not spellings: the phoneme error rate (PER) of what the ASR
heard against the speech text, both sides phonemised by espeak-ng (through Piper's own binding, which the project
already installs), the error rate counted by jiwer over phonemes.

"practises" heard as "practice is", "there" as "their", "entailed" as "and tailed" cost word errors but almost no
phoneme errors, while "violinist in the orchestra" heard as "cellist in the band" costs many. Stress and length marks
and punctuation are dropped: they carry no content and the ASR's spelling decides them.

Judging what is the item's own: three quarters of a SoundMind question are its template, so the audio of another
item's question scores a low error rate against this one's text. `own_span` finds the stretch of the reference that
holds the item's own words (`asr.own_words`: its premises' and conclusion's words the template does not have), and
`aligned_span` the words heard there, so the gate can hold on that stretch too.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


VOICE = "en-us"
_DROPPED = frozenset("ˈˌːˑ‿͡")  # stress, length, linking and tie marks


@lru_cache(maxsize=1)
def _phonemizer():
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()


@lru_cache(maxsize=65536)
def _word_phonemes(word: str) -> tuple[str, ...]:
    """A word's phonemes, one symbol (code point) each; memoised, since a corpus repeats its words."""
    return tuple(symbol for sentence in _phonemizer().phonemize(VOICE, word) for symbol in sentence
                 if symbol not in _DROPPED and symbol.strip() and not unicodedata.category(symbol).startswith("P"))


def phonemes(words: list[str]) -> list[str]:
    """The phonemes of normalised words (`asr.wer_words`), word by word, so that the two sides of a comparison are
    phonemised alike whatever their sentences."""
    return [symbol for word in words for symbol in _word_phonemes(word)]


def phoneme_errors(said: list[str], heard: list[str]) -> tuple[int, int]:
    """(phoneme edits, phonemes said) of `heard` against `said` (both normalised words)."""
    reference, hypothesis = phonemes(said), phonemes(heard)
    if not reference or not hypothesis:
        return len(hypothesis) if not reference else len(reference), len(reference)
    import jiwer  # the asr extra, imported where used (see asr.judge_problems)

    output = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return output.substitutions + output.deletions + output.insertions, len(reference)


def phoneme_error_rate(said: list[str], heard: list[str]) -> float:
    """PER of `heard` against `said`; nothing said scores 0 when nothing is heard, else 1."""
    errors, count = phoneme_errors(said, heard)
    return errors / count if count else float(bool(errors))


def own_span(said: list[str], own: frozenset[str]) -> tuple[int, int] | None:
    """[start, end) of `said` from its first to its last own word; None when it has none."""
    positions = [index for index, word in enumerate(said) if word in own]
    return (positions[0], positions[-1] + 1) if positions else None


def aligned_span(said: list[str], heard: list[str], start: int, end: int) -> tuple[int, int]:
    """[start, end) of the words of `heard` that the word alignment puts against `said[start:end]` (words heard in
    between included)."""
    if not said or not heard:
        return 0, 0
    found: list[int] = []
    import jiwer  # the asr extra, imported where used (see asr.judge_problems)

    for chunk in jiwer.process_words(" ".join(said), " ".join(heard)).alignments[0]:
        if chunk.type == "insert":  # words heard at one place of `said`
            if start < chunk.ref_start_idx < end:
                found += [chunk.hyp_start_idx, chunk.hyp_end_idx]
        elif chunk.type != "delete":  # equal and substitute chunks pair words one to one
            low, high = max(start, chunk.ref_start_idx), min(end, chunk.ref_end_idx)
            if low < high:
                found += [chunk.hyp_start_idx + low - chunk.ref_start_idx, chunk.hyp_start_idx + high - chunk.ref_start_idx]
    return (min(found), max(found)) if found else (0, 0)
