"""Speech normalisation and sentence chunking: what a voice is asked to say."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmind_data.speakable import unspeakable_chars
from soundmind_data.speech_text import number_words, split_sentences, to_speech_text


def test_logic_symbols_are_read_as_words():
    assert to_speech_text("¬A → B") == "not A implies B"
    assert to_speech_text("(A ∧ B) ∨ C") == "(A and B) or C"
    assert to_speech_text("A ↔ B") == "A if and only if B"
    assert to_speech_text("∃x ∀y R") == "there exists x for all y R"
    assert to_speech_text("Γ ⊨ φ") == "Γ entails φ"
    assert to_speech_text("A->B, A<->C") == "A implies B, A if and only if C"
    assert to_speech_text("Rain — or snow.") == "Rain, or snow."
    assert to_speech_text("~A, ~5 km") == "not A, about five kilometres"


def test_every_symbol_of_the_premises_becomes_speakable():
    premise = "If ¬(P ∧ Q) → (R ∨ S), and ∀x (Px ↔ Qx), ∃y ⊨ T — then “so” ≥ 3 ≠ 4."
    assert unspeakable_chars(premise) != ""
    assert unspeakable_chars(to_speech_text(premise)) == ""


def test_numbers_currency_abbreviations_and_quotes():
    text = "In 1998, 3,500 people (e.g. 45%) paid $12.5 vs. ¥30 on the 21st at 7 p.m.; Dr. Li said “no”."
    assert to_speech_text(text) == (
        "In nineteen ninety-eight, three thousand five hundred people (for example forty-five percent) paid "
        "twelve point five dollars versus thirty yuan on the twenty-first at seven P M; Doctor Li said \"no\".")
    assert to_speech_text("2005 and 2023 and 1905 and 007") == "two thousand five and twenty twenty-three and " \
                                                             "nineteen oh five and zero zero seven"
    assert number_words(1_000_001) == "one million one"
    assert to_speech_text("ＡＢ１２") == "AB twelve"  # full-width forms


@pytest.mark.parametrize("text, speech", [
    ("1. **State Organs**: they decide", "one. State Organs: they decide"),
    ("which option is *not* an offensive", "which option is not an offensive"),
    ("# Heading\n- bullet one\n* bullet two", "Heading\nbullet one\nbullet two"),
    ("use `code` here", "use code here"),
    ("a*b*c", "a*b*c"),  # not emphasis: left for the voice, and for the unspeakable check
])
def test_markdown_marks_go_and_their_words_stay(text, speech):
    assert to_speech_text(text) == speech


@pytest.mark.parametrize("text, speech", [
    ("-5 degrees", "minus five degrees"),
    ("x = -5 or (-0.5)", "x equals minus five or (minus zero point five)"),
    ("−5 − 2", "minus five minus two"),  # U+2212, the minus sign
    ("COVID-19 and A-5", "COVID-nineteen and A-five"),  # a hyphen after a word is no minus sign
    ("from 1990-2000.", "from nineteen ninety to two thousand."),
    ("5~10 people", "five to ten people"),
    ("5～10 people", "five to ten people"),  # full width, as in translated LogiQA text
    ("1990 – 2000", "nineteen ninety to two thousand"),
    ("1,000-2,000", "one thousand to two thousand"),
    ("10-5=5", "ten-five equals five"),  # a subtraction, not a range
    ("$1.2 million and £3 billion", "one point two million dollars and three billion pounds"),
    ("the 1990s and the ’80s", "the nineteen nineties and the eighties"),
    ("80s, 1900s, 2000s, 1960's", "eighties, nineteen hundreds, two thousands, nineteen sixties"),
    ("x^2", "x to the power of two"),
    ("5‰ or 3‱", "five per mille or three per ten thousand"),
    ("§ 3", "section three"),
])
def test_numbers_and_signs_keep_their_meaning(text, speech):
    assert to_speech_text(text) == speech
    assert unspeakable_chars(speech) == ""


@pytest.mark.parametrize("text, unspeakable", [
    ("a | b", "|"),  # no safe reading: reported, never guessed
    ("P(A|B) ≈ ✓", "|✓"),
    ("done ✓, best ★, see note †", "✓★†"),
    ("costs 5 ₹", "₹"),
    ("¿Qué? ¡Sí! Wait… a • b", ""),  # punctuation a voice takes as pauses or intonation
])
def test_symbols_without_a_reading_stay_and_are_reported(text, unspeakable):
    assert unspeakable_chars(to_speech_text(text)) == unspeakable


def test_cjk_is_kept_and_reported_never_dropped():
    speech = to_speech_text("Tom 是 a cat 。")
    assert "是" in speech
    assert unspeakable_chars(speech) == "是"


def test_lines_are_kept_and_blank_lines_dropped():
    assert to_speech_text("First  line.\r\n\r\n  Second\tline.") == "First line.\nSecond line."


def test_sentences_are_chunks_and_long_ones_are_cut_at_clauses_then_words():
    text = "Short one. This sentence is longer, with a clause; and another! Is it?\nNew paragraph"
    assert split_sentences(text, 200) == ["Short one.", "This sentence is longer, with a clause; and another!",
                                          "Is it?", "New paragraph"]
    assert split_sentences(text, 25) == ["Short one.", "This sentence is longer,", "with a clause;",
                                         "and another!", "Is it?", "New paragraph"]
    assert split_sentences("abcdefghij", 4) == ["abcd", "efgh", "ij"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=30), min_size=1, max_size=60),
       st.lists(st.sampled_from([" ", ". ", ", ", "; ", "! ", "\n"]), min_size=60, max_size=60),
       st.integers(min_value=30, max_value=300))
def test_chunks_fit_the_limit_and_lose_no_word(words, separators, max_chars):
    text = "".join(word + separator for word, separator in zip(words, separators))
    chunks = split_sentences(text, max_chars)
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)
    assert re.findall(r"\w+", " ".join(chunks)) == re.findall(r"\w+", text)
