"""Triplet keys: what counts as the same question for duplicates, leakage and gold matching."""

from __future__ import annotations

import pytest

from soundmind_data.text.textkey import _normal_bytes, spoken_words, text_key


@pytest.mark.parametrize("a, b", [
    ("Tom is a cat.", "tom IS a cat"),
    ("Hello, world!", "hello   world"),
    ("x>5", "X > 5."),
    ("“Quoted” — text…", "quoted text"),
    ("A → B", "a→b"),
    ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),  # NFKC folds compatibility forms
])
def test_case_punctuation_and_spacing_do_not_make_a_new_question(a, b):
    assert text_key(a) == text_key(b)


@pytest.mark.parametrize("a, b", [
    ("x > 5", "x < 5"),
    ("A → B", "A ∨ B"),
    ("¬B holds", "B holds"),
    ("a = b", "a b"),
    ("50% of cats", "50 of cats"),
    ("cost $5", "cost €5"),
    ("and/or", "and or"),
])
def test_symbols_are_not_punctuation(a, b):
    assert text_key(a) != text_key(b)


def test_fields_are_kept_apart():
    assert text_key("a b", "c") != text_key("a", "b c")


def test_ascii_fast_path_agrees_with_the_unicode_path():
    ascii_text = "If x>=5 then (y+1)/2 ~ z_w; it's 50% & `more`^2 | [done]!"
    # The trailing "é" sends the text down the Unicode path; it must only add its own word.
    assert _normal_bytes(ascii_text + " é") == _normal_bytes(ascii_text) + " é".encode("utf-8")


def test_spoken_words_drop_every_sign():
    assert spoken_words("If x>5, then ¬B → C: it's 50%!") == ["if", "x", "5", "then", "b", "c", "it", "s", "50"]
