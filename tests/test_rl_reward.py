"""The SoundMind-RL reward: each component on a table of tricky responses, the answer parser's invariances, the
energy VAD on decoded audio, the weighted total, and the verl / TRL / OpenRLHF adapters."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmind_data.core.labels import parse_final_answer
from soundmind_data.rl import compute_score, reward_func, trl_reward
from soundmind_data.rl.adapters import (MIN_PROMPT_TAIL, prompt_tail_length, response_after_prompt,
                                        strip_trailing_special_tokens)
from soundmind_data.rl.reward import (GroundTruth, RewardWeights, answer_reward, audio_format_reward, audio_length_reward, decision,
                                      format_reward, in_format, score, speech_seconds, text_length_reward)

T = "<think>The major premise gives a rule; the minor premise places the case under it.</think>\n"
E, N, U = "entailed", "not entailed", "undecidable"

# (response, label, format, answer, decision)
TRICKY = [
    (T + "Answer: entailed", 1, 1, 1, E),
    (T + "Answer: not entailed", 0, 1, 1, N),
    (T + "Answer: not-entailed", 0, 1, 1, N),
    (T + "Answer: Not Entailed.", 0, 1, 1, N),
    (T + "**Answer: not entailed**", 0, 1, 1, N),
    (T + "Answer: **not entailed**", 0, 1, 1, N),
    (T + "**Answer:** Not-Entailed.", 0, 1, 1, N),
    (T + "ANSWER: ENTAILED", 1, 1, 1, E),
    (T + "answer: entailed.", 1, 1, 1, E),
    (T + "Final Answer: not entailed", 0, 1, 1, N),
    (T + "Answer: notentailed", 0, 1, 1, N),
    (T + "Answer: not_entailed", 0, 1, 1, N),
    (T + "Answer: 'not-entailed'", 0, 1, 1, N),
    # negations must never read as entailed
    (T + "Answer: not entailed", 1, 1, 0, N),
    (T + "Answer: not-entailed", 1, 1, 0, N),
    (T + "Answer: Not Entailed.", 1, 1, 0, N),
    (T + "Answer: **not entailed**", 1, 1, 0, N),
    (T + "Answer: entailed", 0, 1, 0, E),
    # missing or broken tags
    ("Answer: entailed", 1, 0, 1, E),
    ("<think>reasoning\nAnswer: entailed", 1, 0, 1, E),
    ("reasoning</think>\nAnswer: entailed", 1, 0, 1, E),
    (T + T + "Answer: entailed", 1, 0, 1, E),
    ("<think></think>\nAnswer: entailed", 1, 0, 1, E),
    ("<think>   </think>Answer: entailed", 1, 0, 1, E),
    ("Preamble. " + T + "Answer: entailed", 1, 0, 1, E),
    (T + "Answer: entailed</think>", 1, 0, 1, E),
    ("  \n<think>r</think> Answer: entailed  \n", 1, 1, 1, E),
    # two "Answer:" lines: the last one decides
    (T + "Answer: entailed\nAnswer: not entailed", 0, 1, 1, N),
    (T + "Answer: not entailed\nAnswer: entailed", 0, 1, 0, E),
    ("<think>Answer: not entailed?</think>\nAnswer: entailed", 1, 1, 1, E),
    (T + "Answer: entailed\nAnswer: maybe", 1, 0, 0, U),
    # text after the verdict, or a verdict that is not one of the two words
    (T + "Answer: entailed\n\nActually, I am not sure.", 1, 0, 1, E),
    (T + "Answer: entailed, I think", 1, 0, 1, E),
    (T + "Answer: Entailed!!", 1, 0, 1, E),
    (T + "Answer: entailed..", 1, 0, 1, E),
    (T + "Answer: entailment", 1, 0, 1, E),
    # undecidable: never guessed
    ("", 1, 0, 0, U),
    (None, 0, 0, 0, U),
    (T, 1, 0, 0, U),
    (T + "Answer: maybe", 1, 0, 0, U),
    (T + "Answer: It is not entailed", 0, 0, 0, U),
    (T + "The conclusion is not entailed.", 0, 0, 0, U),
    (T + "The answer is not entailed.", 0, 0, 0, U),
    (T + "Answer: non-entailed", 0, 0, 0, U),
    # very long output
    ("<think>" + "word " * 20000 + "</think>\nAnswer: entailed", 1, 1, 1, E),
    ("<think>r</think>" + "Answer: entailed " * 500 + "Answer: not entailed", 0, 1, 1, N),
    # unicode
    (T + "Answer: not\u2011entailed", 0, 1, 1, N),  # non-breaking hyphen
    (T + "Answer: not\u2013entailed", 1, 1, 0, N),  # en dash
    (T + "Answer\uff1anot entailed", 0, 1, 1, N),  # full-width colon
    (T + "Answer: not\u00a0entailed", 0, 1, 1, N),  # no-break space
    (T + "Answer: not\u200bentailed", 0, 1, 1, N),  # zero-width space
    ("<think>Ünïcödé 推理 🤔</think>\nAnswer: entailed", 1, 1, 1, E),
    ("<think>İzmir: İ lengthens when lowered</think>\nAnswer: not entailed", 0, 1, 1, N),
    (T + "Answer: ｅｎｔａｉｌｅｄ", 1, 0, 0, U),  # full-width letters: not a verdict the parser guesses at
    (T + "Answer: “not entailed”", 0, 1, 1, N),
]


def test_the_table_is_large_enough():
    assert len(TRICKY) >= 40


@pytest.mark.parametrize("response, label, expected_format, expected_answer, expected_decision", TRICKY)
def test_tricky_responses(response, label, expected_format, expected_answer, expected_decision):
    assert format_reward(response) == expected_format
    assert answer_reward(response, label) == expected_answer
    assert decision(response) == expected_decision
    result = score(response, label)
    assert (result.format, result.answer, result.decision) == (expected_format, expected_answer, expected_decision)
    assert result.total == pytest.approx(1.0 * expected_format + 2.0 * expected_answer)


@pytest.mark.parametrize("label", [0, "not-entailed", "not entailed", "Not Entailed"])
def test_answer_accepts_every_label_spelling(label):
    assert answer_reward(T + "Answer: not entailed", label) == 1.0
    assert answer_reward(T + "Answer: entailed", label) == 0.0


@pytest.mark.parametrize("response, reference, expected", [
    ("one two three four five", 10, 0.5),
    (" ".join(["w"] * 10), 10, 1.0),
    (" ".join(["w"] * 25), 10, 1.0),
    ("", 10, 0.0),
    (None, 10, 0.0),
    ("  spaced\n\tout  words ", 6, 0.5),
])
def test_text_length(response, reference, expected):
    assert text_length_reward(response, reference) == pytest.approx(expected)


def test_text_length_needs_a_positive_reference():
    with pytest.raises(ValueError):
        text_length_reward("words", 0)


# ------------------------------------------------------------------------------------------- parser invariances
VERDICTS = {"entailed": 1, "Entailed.": 1, "**entailed**": 1, "not entailed": 0, "not-entailed": 0,
            "Not Entailed.": 0, "**not entailed**": 0, "NOT-ENTAILED": 0}
WHITESPACE = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=6)


def _has_answer_mark(text: str) -> bool:
    return any("answer" in form for form in (text.lower(), text.upper().lower(), text.casefold()))


@settings(max_examples=300, deadline=None)
@given(reasoning=st.text(max_size=80).filter(lambda t: not _has_answer_mark(t)),
       verdict=st.sampled_from(sorted(VERDICTS)), flips=st.lists(st.booleans(), min_size=1, max_size=200),
       before=WHITESPACE, after=WHITESPACE)
def test_parser_is_invariant_to_case_and_surrounding_whitespace(reasoning, verdict, flips, before, after):
    response = f"{reasoning}\nAnswer: {verdict}"
    expected = VERDICTS[verdict]
    assert parse_final_answer(response) == expected
    recased = "".join(c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(response))
    if not _has_answer_mark(reasoning.upper() + reasoning.lower()):
        assert parse_final_answer(recased) == expected
    assert parse_final_answer(before + response + after) == expected
    assert parse_final_answer(response.upper()) == expected
    assert parse_final_answer(response.lower()) == expected


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=120).filter(lambda t: not _has_answer_mark(t)))
def test_parser_never_guesses_without_an_answer_line(text):
    assert parse_final_answer(text) is None


# --------------------------------------------------------------------------------------------------------- audio
RATE = 16_000


def _speech_like(seconds: float, level_db: float, rng: np.random.Generator) -> np.ndarray:
    """Noise shaped by a 4 Hz syllable-rate envelope that never drops below half: loud throughout, like voiced speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.75 + 0.25 * np.sin(2 * np.pi * 4 * t)
    noise = rng.standard_normal(t.size)
    return (10 ** (level_db / 20) * np.sqrt(2) * envelope * noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def _write(path, samples, rate=RATE):
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


@pytest.fixture
def speech_wav(tmp_path):
    """0.5 s of hiss at -70 dBFS, 1.2 s of speech-like sound at -20 dBFS, 0.8 s of hiss: 1.2 s of speech."""
    rng = np.random.default_rng(0)
    hiss = lambda s: (10 ** (-70 / 20) * rng.standard_normal(int(s * RATE))).astype(np.float32)  # noqa: E731
    return _write(tmp_path / "speech.wav", np.concatenate([hiss(0.5), _speech_like(1.2, -20, rng), hiss(0.8)]))


def test_vad_measures_the_speech_in_a_decoded_file(speech_wav):
    samples, rate = soundfile.read(str(speech_wav), dtype="float32")
    assert rate == RATE and len(samples) == int(2.5 * RATE)
    assert speech_seconds(samples, rate) == pytest.approx(1.2, abs=0.06)


def test_vad_ignores_hiss_and_background_under_speech():
    rng = np.random.default_rng(1)
    assert speech_seconds(10 ** (-60 / 20) * rng.standard_normal(RATE), RATE) == 0.0
    loud = _speech_like(1.0, -10, rng)
    background = 10 ** (-50 / 20) * rng.standard_normal(RATE)  # 40 dB under the speech: not speech
    assert speech_seconds(np.concatenate([background, loud]), RATE) == pytest.approx(1.0, abs=0.06)


def test_audio_length_reward(speech_wav):
    assert audio_length_reward(speech_wav, 2.4) == pytest.approx(0.5, abs=0.03)
    assert audio_length_reward(speech_wav, 1.0) == 1.0
    samples, rate = soundfile.read(str(speech_wav), dtype="float32")
    assert audio_length_reward((samples, rate), 2.4) == pytest.approx(0.5, abs=0.03)


def test_audio_format_reward(speech_wav, tmp_path):
    samples, rate = soundfile.read(str(speech_wav), dtype="float32")
    assert audio_format_reward(speech_wav) == 1.0
    assert audio_format_reward((np.stack([samples, samples], axis=1), rate)) == 1.0  # stereo is mixed down
    assert audio_format_reward(None) == 0.0
    assert audio_format_reward((np.zeros(RATE, dtype=np.float32), RATE)) == 0.0  # silence
    assert audio_format_reward((np.array([], dtype=np.float32), RATE)) == 0.0
    assert audio_format_reward((np.where(np.arange(samples.size) == 5, np.nan, samples), rate)) == 0.0
    assert audio_format_reward((samples, 4000)) == 0.0  # not a speech sample rate
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF but not really a wave file")
    assert audio_format_reward(broken) == 0.0
    assert audio_format_reward(tmp_path / "missing.wav") == 0.0


# --------------------------------------------------------------------------------------------------------- total
def test_total_is_the_weighted_sum_of_applicable_components(speech_wav):
    response = T + "Answer: not entailed"  # 17 whitespace-separated words
    truth = {"label": 0, "reference_tokens": 34, "reference_seconds": 2.4}
    text_only = score(response, truth)
    assert (text_only.audio_format, text_only.audio_length) == (None, None)
    assert text_only.total == pytest.approx(1.0 + 2.0 + 1.0 * 0.5)
    spoken = score(response, truth, audio=speech_wav)
    assert spoken.audio_format == 1.0 and spoken.audio_length == pytest.approx(0.5, abs=0.03)
    assert spoken.total == pytest.approx(3.5 + 0.5 + 0.75 * spoken.audio_length)
    silent = score(response, truth, audio_expected=True)  # the model should have spoken and did not
    assert (silent.audio_format, silent.audio_length, silent.total) == (0.0, 0.0, pytest.approx(3.5))
    weighted = score(response, truth, weights=RewardWeights.from_mapping({"answer": 5, "text_length": 0}))
    assert weighted.total == pytest.approx(1.0 + 5.0)


def test_unknown_weight_is_refused():
    with pytest.raises(ValueError, match="answr"):
        RewardWeights.from_mapping({"answr": 2})


# ------------------------------------------------------------------------------------------------------ adapters
def test_adapter_signatures_match_the_frameworks():
    assert list(inspect.signature(compute_score).parameters)[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    assert [name for name, parameter in inspect.signature(reward_func).parameters.items()
            if parameter.default is inspect.Parameter.empty] == ["queries", "prompts", "labels"]
    assert "completions" in inspect.signature(trl_reward).parameters
    for adapter in (compute_score, trl_reward, reward_func):  # optional, so the frameworks' own calls still bind
        assert inspect.signature(adapter).parameters["weights"].default is None


def test_verl_compute_score(speech_wav):
    response = T + "Answer: **Not-Entailed.**"
    assert compute_score("soundmind", response, "not-entailed") == {"score": 3.0, "format": 1.0, "answer": 1.0}
    assert compute_score("soundmind", response, 1)["score"] == 1.0
    truth = json.dumps({"label": "not entailed", "reference_tokens": 32})  # the response has 16 words
    result = compute_score("soundmind", response, truth, {"response_audio": str(speech_wav), "reference_seconds": 1.2})
    assert set(result) == {"score", "format", "answer", "text_length", "audio_format", "audio_length"}
    assert result["text_length"] == pytest.approx(0.5) and result["audio_length"] == 1.0
    exported = {"id": "x", "label": 0, "answer_text": " ".join(["word"] * 64)}  # extra_info as `export --format verl` writes it
    assert compute_score("soundmind-data/alr", response, "not-entailed", exported) == {
        "score": pytest.approx(3.25), "format": 1.0, "answer": 1.0, "text_length": 0.25}


def test_trl_reward_reads_plain_and_chat_completions():
    completions = [T + "Answer: entailed", [{"role": "assistant", "content": T + "Answer: not entailed"}], "nothing"]
    assert trl_reward(prompts=["q"] * 3, completions=completions, ground_truth=[1, 1, 0]) == [3.0, 1.0, 0.0]
    assert trl_reward(prompts=["q"], completions=[T + "Answer: entailed"], label=["entailed"]) == [3.0]
    with pytest.raises(ValueError, match="ground_truth"):
        trl_reward(prompts=["q"], completions=["x"])


def test_openrlhf_reward_func_scores_the_response_after_the_prompt():
    prompt = "Is it entailed? Answer: entailed or not entailed.\n"  # the prompt's own "Answer:" must not count
    queries = [prompt + T + "Answer: not entailed", prompt + "no idea"]
    result = reward_func(queries, [prompt, prompt], ["not-entailed", "not-entailed"])
    assert result["rewards"].tolist() == [3.0, 0.0]
    assert result["scores"].tolist() == [1.0, 0.0]
    assert result["extra_logs"]["answer"].tolist() == [1.0, 0.0]


def test_adapters_take_reward_weights():
    response = T + "Answer: not entailed"
    weights = {"answer": 5.0, "format": 0}
    assert compute_score("soundmind", response, 0, weights=weights) == {"score": 5.0, "format": 1.0, "answer": 1.0}
    assert compute_score("soundmind", response, 0, None, weights=weights, reward_router_address=None)["score"] == 5.0
    totals = trl_reward(prompts=["q", "q"], completions=[response, "no"], ground_truth=[0, 0], weights=weights)
    assert totals == [5.0, 0.0]
    result = reward_func([response, "no"], ["", ""], [0, 0], weights=weights)
    assert result["rewards"].tolist() == [5.0, 0.0] and result["scores"].tolist() == [1.0, 0.0]
    assert reward_func([response], [""], [0], weights={"format": 0, "answer": 0})["scores"].tolist() == [0.0]


@pytest.mark.parametrize("weights, message", [
    ({"answr": 2}, "unknown reward weight.*answr"),
    ({"answer": -1}, "reward weight answer: expected a non-negative number, got -1"),
    ({"answer": "2"}, "reward weight answer: expected a non-negative number, got '2'"),
    ({"format": True}, "reward weight format: expected a non-negative number, got True"),
    ({"format": float("nan")}, "reward weight format: expected a non-negative number, got nan"),
    ([("answer", 2)], "expected a mapping of component -> weight, got list"),
])
def test_adapters_refuse_bad_weights(weights, message):
    for call in (lambda: compute_score("soundmind", T + "Answer: entailed", 1, weights=weights),
                 lambda: trl_reward(prompts=["q"], completions=["x"], ground_truth=[1], weights=weights),
                 lambda: reward_func(["x"], [""], [1], weights=weights)):
        with pytest.raises(ValueError, match=message):
            call()


def test_adapters_read_the_reference_answer_audio_duration(speech_wav):
    """Our verl export writes the reference answer audio's seconds as extra_info.answer_duration_s."""
    response = T + "Answer: not entailed"
    extra = {"id": "x", "label": 0, "answer_text": None, "answer_duration_s": 2.4, "response_audio": str(speech_wav)}
    result = compute_score("soundmind-data/alr", response, "not-entailed", extra)
    assert result["audio_format"] == 1.0 and result["audio_length"] == pytest.approx(0.5, abs=0.03)  # 1.2 s of 2.4
    assert result["score"] == pytest.approx(1.0 + 2.0 + 0.5 + 0.75 * result["audio_length"])
    explicit = compute_score("soundmind-data/alr", response, json.dumps({"label": 0, "reference_seconds": 1.2}), extra)
    assert explicit["audio_length"] == 1.0  # the ground truth's own reference wins over extra_info's
    no_answer_audio = compute_score("soundmind-data/alr", response, 0, {**extra, "answer_duration_s": None})
    assert "audio_length" not in no_answer_audio and no_answer_audio["audio_format"] == 1.0
    totals = trl_reward(prompts=["q"], completions=[response], ground_truth=[0], response_audio=[str(speech_wav)],
                        extra_info=[{"answer_duration_s": 2.4, "answer_text": " ".join(["w"] * 34)}])
    assert totals == [pytest.approx(1.0 + 2.0 + 1.0 * 0.5 + 0.5 + 0.75 * result["audio_length"])]


# -------------------------------------------------------------------------- OpenRLHF: what its query string carries
@pytest.mark.parametrize("ending", ["<|im_end|>", "<|im_end|>\n<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>",
                                    "<end_of_turn>\n<eos>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<eos>", " \n"])
def test_strip_trailing_special_tokens(ending):
    assert strip_trailing_special_tokens(T + "Answer: entailed" + ending) == T + "Answer: entailed"


@pytest.mark.parametrize("text", [T + "Answer: entailed<|im_end|> and more", T + "Answer: entailed <| not a marker |>",
                                  T + "Answer: entailed</think>", "<|im_end|>x"])
def test_strip_leaves_markers_that_do_not_end_the_text(text):
    assert strip_trailing_special_tokens(text) == text


PROMPT = ("<|im_start|>system\nYou reason.<|im_end|>\n<|im_start|>user\nAll cats purr. Tom 🐈 is a cat. Think inside "
          "<think> </think> tags, then write 'Answer: entailed' or 'Answer: not-entailed'.<|im_end|>\n"
          "<|im_start|>assistant\n")


@pytest.mark.parametrize("cut", [0, 1, 40, 60, len(PROMPT) - 22])
def test_response_after_a_left_truncated_prompt(cut):
    response = T + "Answer: entailed"
    assert response_after_prompt(PROMPT[cut:] + response, PROMPT) == response
    assert response_after_prompt(PROMPT[cut:] + "blah blah", PROMPT) == "blah blah"


def test_response_after_a_prompt_cut_inside_a_multibyte_character():
    cut = PROMPT.index("🐈") + 1  # the rest of the emoji's bytes decode to one or more U+FFFD
    for garbage in ("\ufffd", "\ufffd\ufffd\ufffd"):
        assert response_after_prompt(garbage + PROMPT[cut:] + "blah", PROMPT) == "blah"


def test_response_after_a_decode_that_tidied_the_prompt():
    """A tokenizer whose decode tidies spaces ("cat ." -> "cat.") gives no exact tail: the assistant opener is found."""
    prompt = PROMPT.replace("a cat.", "a cat .")
    query = PROMPT[20:] + T + "Answer: entailed"  # cut from the left, and " ." decoded as "."
    assert prompt_tail_length(prompt, query) == 0  # no exact tail
    assert response_after_prompt(query, prompt) == T + "Answer: entailed"


def test_response_is_not_found_when_the_prompt_is_not_at_the_query_start():
    assert response_after_prompt(PROMPT[:-30] + "Answer: not-entailed", PROMPT) is None  # no tail of the prompt
    assert response_after_prompt("assistant\nblah", PROMPT) is None  # a tail under MIN_PROMPT_TAIL: a coincidence?
    assert prompt_tail_length(PROMPT, PROMPT[-MIN_PROMPT_TAIL:] + "x") == MIN_PROMPT_TAIL
    repeated = "abcdefghijklmnop" * 4  # the longest suffix wins where the tail repeats
    assert prompt_tail_length(repeated, repeated[5:] + "response") == len(repeated) - 5


def test_openrlhf_reward_func_scores_an_unfound_response_as_empty(caplog):
    """Scoring the whole query would score the prompt: its instruction ends with "Answer: not-entailed"."""
    result = reward_func([PROMPT[40:-30] + "<|im_end|>"], [PROMPT], ["not-entailed"])
    assert result["rewards"].tolist() == [0.0]
    assert "not at the start of the query" in caplog.text


def test_openrlhf_reward_func_strips_the_end_markers_and_reads_export_labels():
    query = PROMPT[50:] + T + "Answer: not-entailed<|im_end|>"
    extra_info = {"split": "train", "index": 0, "id": "x", "label": 0, "question_text": "q",
                  "answer_text": " ".join(["w"] * 32), "answer_audio": None, "answer_duration_s": None}
    result = reward_func([query] * 3, [PROMPT] * 3,
                         [{"style": "rule", "ground_truth": "not-entailed"}, extra_info, json.dumps(extra_info)])
    assert result["rewards"].tolist() == [3.0, 3.5, 3.5]  # the response has 16 words
    assert result["extra_logs"]["text_length"].tolist() == [0.0, 0.5, 0.5]


def test_ground_truth_reads_our_export_columns():
    assert GroundTruth.parse({"style": "rule", "ground_truth": "entailed"}) == GroundTruth(1)
    assert GroundTruth.parse({"style": "rule", "ground_truth": json.dumps({"label": 0, "reference_tokens": 7})}) == \
        GroundTruth(0, 7)
    extra_info = {"label": 1, "answer_text": "three words here", "answer_duration_s": 2.5, "question_text": "q"}
    assert GroundTruth.parse(extra_info) == GroundTruth(1, 3, 2.5)
    assert GroundTruth.parse({"label": 1, "reference_tokens": 9, "answer_text": "two words"}).reference_tokens == 9
    with pytest.raises(ValueError, match="neither 'label' nor 'ground_truth'"):
        GroundTruth.parse({"style": "rule"})


def test_trl_reward_reads_verl_columns():
    completions = [[{"role": "assistant", "content": T + "Answer: not entailed"}]]
    assert trl_reward(prompts=[[{"role": "user", "content": "q"}]], completions=completions,
                      reward_model=[{"style": "rule", "ground_truth": "not-entailed"}],
                      extra_info=[{"label": 0, "answer_text": " ".join(["w"] * 34)}]) == [3.5]


@pytest.mark.parametrize("extra", [{"answer_text": "   "}, {"reference_tokens": -3}, {"reference_tokens": 0},
                                   {"answer_duration_s": float("nan")}, {"answer_duration_s": -1.0},
                                   {"answer_duration_s": float("inf")}])
def test_an_odd_reference_is_no_reference(extra):
    """One odd row must not fail a framework's whole batch, nor earn full length credit against NaN."""
    truth = GroundTruth.parse(1).completed(extra)
    assert truth.reference_tokens is None and truth.reference_seconds is None
    assert score(T + "Answer: entailed", truth).text_length is None


@pytest.mark.parametrize("answer, label, reasoning, final", [
    # the corpus's layout: reasoning, then the verdict on its last line, no think tags
    ("Let me read the premises.\nThe rule covers the case.\n\nAnswer: entailed.", 1,
     "Let me read the premises.\nThe rule covers the case.", "Answer: entailed."),
    ("<think>Nothing forces it.</think>\nAnswer: **Not-Entailed**", 0, "Nothing forces it.", "Answer: **Not-Entailed**"),
    # no verdict line of its own, or one that contradicts the label: the label's verdict is written after the tags
    ("The rule covers the case. Answer: entailed", 1, "The rule covers the case. Answer: entailed", "Answer: entailed"),
    ("Reasoning.\nAnswer: entailed", 0, "Reasoning.\nAnswer: entailed", "Answer: not entailed"),
])
def test_a_reference_answer_laid_out_as_the_format_reward_wants(answer, label, reasoning, final):
    laid_out = in_format(answer, label)
    assert laid_out == f"<think> {reasoning} </think> {final}"
    assert format_reward(laid_out) == 1.0 and answer_reward(laid_out, label) == 1.0
