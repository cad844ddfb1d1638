"""Speech normalisation and sentence chunking: what a voice is asked to say."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmind_data.text.speakable import unspeakable_chars
from soundmind_data.text.speech_text import split_sentences, to_speech_text


def test_logic_symbols_are_read_as_words():
    assert to_speech_text("¬A → B") == "not A implies B"
    assert to_speech_text("(A ∧ B) ∨ C") == "(A and B) or C"
    assert to_speech_text("A ↔ B") == "A if and only if B"
    assert to_speech_text("∃x ∀y R") == "there exists x for all y R"
    assert to_speech_text("Γ ⊨ φ") == "gamma entails phi"
    assert to_speech_text("A->B, A<->C") == "A implies B, A if and only if C"
    assert to_speech_text("Rain — or snow.") == "Rain, or snow."
    assert to_speech_text("~A, ~5 km") == "not A, about five kilometers"


def test_every_symbol_of_the_premises_becomes_speakable():
    premise = "If ¬(P ∧ Q) → (R ∨ S), and ∀x (Px ↔ Qx), ∃y ⊨ T — then “so” ≥ 3 ≠ 4."
    assert unspeakable_chars(premise) != ""
    assert unspeakable_chars(to_speech_text(premise)) == ""


# What LogiQA text is full of, read by nemo-text-processing and the domain layer around it (issue 14's list first).
@pytest.mark.parametrize("text, speech", [
    ("2020-01-05", "january fifth twenty twenty"),
    ("at 12:30 today", "at twelve thirty today"),
    ("3/4 of them", "three quarters of them"),
    ("x² and y³ and zⁿ", "x squared and y cubed and z to the power of n"),
    ("£3.50", "three pounds fifty pence"),
    ("€5bn", "five billion euros"),
    ("call 555-1234 now", "call five five five, one two three four now"),
    ("call 555-123-4567", "call five five five, one two three, four five six seven"),
    ("10s of thousands in the 10s, wait 10s or 2.5s", "tens of thousands in the tens, wait ten seconds or two point "
                                                      "five seconds"),
    ("a 45% rise and 3.5 % fall", "a forty five percent rise and three point five percent fall"),
    ("from 1990-2000, 1,000-2,000 and 5~10 people", "from nineteen ninety to two thousand, one thousand to two "
                                                    "thousand and five to ten people"),
    ("In 1998, 1998 people and 2005 and 007", "In nineteen ninety eight, nineteen ninety eight people and two "
                                              "thousand five and zero zero seven"),
    ("3,500 people and 1,000,000 more", "three thousand five hundred people and one million more"),
    ("the 1990s and the ’80s", "the nineteen nineties and the eighties"),
    ("5 km, 30 kg and ~5 km", "five kilometers, thirty kilograms and about five kilometers"),
    ("-5°C and 77 °F", "minus five degrees Celsius and seventy seven degrees Fahrenheit"),
    ("Henry VIII and Louis XIV's wife", "Henry the eighth and Louis the fourteenth's wife"),
    ("World War II and Chapter IV, but Washington DC", "World War two and Chapter four, but Washington DC"),
    ("e.g. cats, i.e. dogs, Dr. Li and Prof. Wang", "for example cats, that is dogs, doctor Li and Professor Wang"),
    ("No. 5 and no. 7", "number five and number seven"),
    ("$1.2 million and ¥30 and 50¢", "one point two million dollars and thirty yen and fifty cents"),
    ("the 3rd and the 21st", "the third and the twenty first"),
    ("x = 5, 10-5=5 and a < b", "x equals five, ten minus five equals five and a is less than b"),
    ("death/injury and and/or", "death or injury and and or"),
    ("5x faster, AT&T", "five times faster, AT and T"),
    ("ＡＢ１２", "AB twelve"),  # full-width forms
])
def test_numbers_dates_money_and_abbreviations_read_as_words(text, speech):
    assert to_speech_text(text) == speech
    assert unspeakable_chars(speech) == ""


@pytest.mark.parametrize("text, speech", [
    ("1. **State Organs**: they decide", "one. State Organs: they decide"),
    ("which option is *not* an offensive", "which option is not an offensive"),
    ("# Heading\n- bullet one\n* bullet two", "Heading\nbullet one\nbullet two"),
    ("use `code` here", "use code here"),
    ("a*b*c", "a asterisk b asterisk c"),  # not emphasis: a product, read by the normaliser
])
def test_markdown_marks_go_and_their_words_stay(text, speech):
    assert to_speech_text(text) == speech


@pytest.mark.parametrize("text, speech", [
    ("x = -5 or (-0.5)", "x equals minus five or (minus zero point five)"),
    ("−5 − 2", "minus five minus two"),  # U+2212, the minus sign
    ("COVID-19 and A-5", "COVID-nineteen and A-five"),  # a hyphen after a word is no minus sign
    ("5～10 people", "five to ten people"),  # full width, as in translated LogiQA text
    ("1990 – 2000", "nineteen ninety to two thousand"),
    ("x^2", "x to the power of two"),
    ("5‰ or 3‱", "five per mille or three per ten thousand"),
    ("§ 3", "section three"),
    ("a + b = c", "a plus b equals c"),
])
def test_signs_keep_their_meaning(text, speech):
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


def test_chunks_never_end_after_an_abbreviation_but_do_after_a_variable():
    text = "Dr. Li met Prof. Wang, e.g. at No. 5 Main St. on a Monday. Then she left. vs. nothing"
    assert split_sentences(text, 400) == [
        "Dr. Li met Prof. Wang, e.g. at No. 5 Main St. on a Monday.", "Then she left. vs. nothing"]
    assert split_sentences("If P then Q. Not Q. Therefore not P.", 400) == ["If P then Q.", "Not Q.", "Therefore not P."]


@pytest.mark.parametrize("text, speech", [
    ("f(x) = 2x + 1, 5x faster", "f(x) equals two x plus one, five times faster"),  # algebra is not "times"
    ("3 m² and x²", "three square meters and x squared"),  # a unit's power is the normaliser's
    ("St Louis is big.", "Saint Louis is big."),  # not a plain sentence, though it looks like one
])
def test_the_domain_layer_leaves_the_normaliser_what_it_reads_right(text, speech):
    assert to_speech_text(text) == speech


def test_plain_sentences_skip_the_normaliser_only_where_it_would_change_nothing():
    from soundmind_data.text import speech_text

    normaliser = speech_text._load_normaliser()
    sentences = [
        "Okay, let's tackle this problem step by step.", "So the conclusion is not entailed.",
        "If the premises hold, then (by modus tollens) the claim fails!", "Is it a well-known fact?",
        "The minor premise says: some students are not athletes.", "Answer: not-entailed",
        "She met him vs the others.", "The HVAC failed.", "Hon Smith spoke.", "I think I am right.",
    ]
    for sentence in sentences:
        if not speech_text._needs_normaliser(sentence):
            assert normaliser.normalize(sentence, punct_post_process=True).split() == sentence.split(), sentence
    assert speech_text._needs_normaliser("She met him vs the others.")  # "vs" is in the normaliser's whitelist
    assert speech_text._needs_normaliser("The HVAC failed.")
    assert not speech_text._needs_normaliser("So the conclusion is not entailed.")


def test_the_speech_text_command_previews_lines_and_flags_the_unspeakable():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "soundmind_data", "speech-text"], capture_output=True, text=True,
                          input="If R → W and ¬W, then ¬R.\nPaid £3.50 on 2020-01-05\nTom 是 a cat\n")
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["If R implies W and not W, then not R.",
                                        "Paid three pounds fifty pence on january fifth twenty twenty",
                                        "Tom 是 a cat"]
    assert done.stderr.strip().splitlines()[-1] == "<stdin>:3: unspeakable after normalisation: '是' (CJK, U+662F)"
    done = subprocess.run([sys.executable, "-m", "soundmind_data", "speech-text", "x² is 10%"],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "x squared is ten percent\n")


def test_without_the_normaliser_the_domain_layer_alone_reads_and_says_so(tmp_path):
    """nemo-text-processing made unimportable: logic still reads, numbers stay for the voice, the stage warns once
    and each item's tts record names what read it."""
    import json
    import subprocess
    import sys

    manifest = tmp_path / "items.jsonl"
    items = [{"id": f"nonemo-{n}", "split": "dev", "label": 1, "question_text": f"If R → W and ¬W, is {n} < 10%?",
              "major_premise": "R → W", "minor_premise": "¬W", "conclusion": "¬R",
              "source": {"dataset": "contrib", "file": "t.txt", "line": n}} for n in (3, 4)]
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    script = ("import sys; sys.modules['nemo_text_processing'] = None\n"
              "from soundmind_data.text.speech_text import to_speech_text\n"
              "print(to_speech_text('¬W → R: 45% of 2020-01-05'))\n"
              "from soundmind_data.cli import main; sys.argv = ['soundmind-data', 'synthesize', sys.argv[1], "
              "'--out', sys.argv[2]]; main()\n")
    done = subprocess.run([sys.executable, "-c", script, str(manifest), str(tmp_path / "spoken")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "not W implies R: 45 percent of 2020-01-05"
    assert done.stderr.count("nemo-text-processing is not installed") == 1
    written = [json.loads(line) for line in (tmp_path / "spoken" / "manifest.jsonl").read_text().splitlines()]
    assert [item["tts"]["normaliser"] for item in written] == ["soundmind-data domain rules only"] * 2


def _grammar_cache_copy(tmp_path):
    """A copy of this machine's compiled grammars (compiled here first where they are not, once per machine) in a
    cache of the test's own: (the cache root, the copied grammar folder)."""
    import shutil

    from soundmind_data.text import speech_text

    speech_text.prepare_normaliser()
    source = speech_text.grammar_cache_dir()
    copy = tmp_path / "cache" / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".lock", ".compiling-*"))
    return tmp_path / "cache", copy


def test_a_truncated_grammar_is_compiled_again_readable_by_all(tmp_path, run_cli):
    """One grammar of a cached folder cut short: speech-text compiles it again (that one alone: seconds) and reads
    as before, the grammar is whole again, and what it wrote there is readable by every user even under a private
    umask (a shared cache)."""
    import os
    import stat

    from soundmind_data.core.usercache import CACHE_ENV

    cache, grammars = _grammar_cache_copy(tmp_path)
    damaged = grammars / "en_tn_True_deterministic_verbalizer.far"
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[:len(whole) // 2])
    done = run_cli("speech-text", "It cost $3.50.", env={CACHE_ENV: str(cache)}, preexec_fn=lambda: os.umask(0o077))
    assert (done.returncode, done.stdout) == (0, "It cost three dollars fifty cents.\n"), done.stderr
    assert "Traceback" not in done.stderr
    assert damaged.read_bytes() == whole
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in grammars.iterdir() if path.name != ".lock"} == \
        {path.name: 0o644 for path in grammars.iterdir() if path.name != ".lock"}
    again = run_cli("speech-text", "It cost $3.50.", env={CACHE_ENV: str(cache)})
    assert (again.returncode, again.stderr) == (0, "")  # loaded as it is: nothing compiled, nothing said


def test_grammars_that_do_not_read_back_as_compiled_are_a_one_line_error(tmp_path, monkeypatch):
    """A compile that leaves no whole grammar behind (a failing disk) is not compiled again at every use: it is a
    UsageError of one line naming the folder."""
    from nemo_text_processing.text_normalization import normalize

    from soundmind_data.text import speech_text
    from soundmind_data.core.errors import UsageError
    from soundmind_data.core.usercache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(speech_text, "_normaliser", None)
    monkeypatch.setattr(normalize, "Normalizer", lambda **options: object())  # writes no grammar
    with pytest.raises(UsageError) as raised:
        speech_text._load_normaliser()
    message = str(raised.value)
    assert message.startswith(f"{speech_text.grammar_cache_dir()}: the speech normaliser's grammars were just "
                              "compiled there, but do not match") and "\n" not in message
