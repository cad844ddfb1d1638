"""The judge hears sounds, not spellings: the phoneme error rate against the issue's measured pairs, the item's own
words (another item's question fails), Whisper's domain hotwords on real audio, and the second opinion deciding."""


import jiwer
import numpy as np
import pytest
import soundfile

from factories import item, write_jsonl
from soundmind_data.checks import asr, whisper_asr
from soundmind_data.checks import item as item_checks
from soundmind_data.checks.config import CheckConfig, load_config
from soundmind_data.checks.phonemes import aligned_span, own_span, phoneme_error_rate
from soundmind_data.text.speech_text import to_speech_text
from soundmind_data.text.template import render_question
from soundmind_data.tts.audio import resample
from soundmind_data.tts.base import load_voice_engine

GATE = CheckConfig().max_per["whisper"]
SAID = "Tom is a violinist in the orchestra, and every violinist there practises daily, so Tom does. Answer: entailed."
MISHEARD = "Tom is a violinist in the orchestra, and every violinist their practice is daily, so Tom does. Answer: and tailed."
CHANGED = "Tom is a cellist in the band, and every violinist there practises daily, so Tom does. Answer: entailed."
AVIARY = ("All birds in the aviary are fed at noon", "The parrot lives in the aviary", "The parrot is fed at noon")
ORCHESTRA = ("Every violinist in the orchestra practises daily", "Tom is a violinist in the orchestra",
             "Tom practises daily")


def words(text: str) -> list[str]:
    return asr.wer_words(to_speech_text(text))


def test_phoneme_error_rate_passes_spellings_and_fails_changed_content():
    said, misheard, changed = words(SAID), words(MISHEARD), words(CHANGED)
    assert jiwer.wer(" ".join(said), " ".join(misheard)) > 0.25  # WER fails the clean clip...
    assert phoneme_error_rate(said, misheard) < 0.06 < GATE  # ...PER hears that it says the text
    assert phoneme_error_rate(said, changed) > GATE  # three content words changed fail


def test_another_items_question_fails_on_the_items_own_words():
    ours, theirs = words(render_question(*AVIARY)), words(render_question(*ORCHESTRA))
    own = asr.own_words([to_speech_text(field) for field in AVIARY])
    assert own and not own & asr.template_words()
    start, end = own_span(ours, own)
    assert ours[start:end][:3] == ["all", "birds", "in"] and ours[end - 1] == "noon"
    heard_start, heard_end = aligned_span(ours, theirs, start, end)
    own_per = phoneme_error_rate(ours[start:end], theirs[heard_start:heard_end])
    assert own_per > 3 * phoneme_error_rate(ours, theirs) and own_per > GATE
    assert aligned_span(ours, ours, start, end) == (start, end)  # the audio of its own text: the same stretch


@pytest.fixture(scope="module")
def piper_clip():
    text = "You have two choices, entailed or not-entailed, based on the premises. Answer: entailed."
    engine = load_voice_engine("piper", None, "cpu")
    audio = resample(np.concatenate(engine.synthesize([text])), engine.sample_rate, asr.ASR_RATE)
    return text, audio


def test_hotwords_make_whisper_hear_the_domains_words(piper_clip):
    text, audio = piper_clip
    windows = [(0.0, len(audio) / asr.ASR_RATE)]
    plain = whisper_asr.WhisperASR(None, "cpu").transcribe(audio, windows)[0].lower()
    hinted = whisper_asr.WhisperASR(None, "cpu", CheckConfig().asr_hotwords).transcribe(audio, windows)[0].lower()
    assert "and tailed" in plain and "and tailed" not in hinted and hinted.count("entailed") == 3


class Heard:
    """An ASR engine that hears a fixed text, with the attributes round_trip reads."""

    name, max_window_s = "whisper", whisper_asr.WHISPER_WINDOW_S

    def __init__(self, text: str):
        self.text = text

    def transcribe(self, audio, windows):
        return [self.text] + [""] * (len(windows) - 1)


def test_a_file_tiny_fails_is_heard_again_and_the_better_judge_decides(tmp_path, monkeypatch):
    record = item("x", answer=None)
    samples = 0.1 * np.sin(np.arange(16000 * 3) / 5).astype(np.float32)
    soundfile.write(tmp_path / "q.flac", samples, 16000)
    monkeypatch.setattr("soundmind_data.checks.whisper_base.bundled_whisper_base", lambda: tmp_path)
    monkeypatch.setattr(whisper_asr, "WhisperASR", lambda model, device, hotwords: Heard(to_speech_text(record["question_text"])))
    checker = item_checks.ItemChecker(tmp_path, CheckConfig(), "whisper", None, "cpu", asr_engine=Heard("nothing alike"))
    audio = {"path": "q.flac", "sha256": "0" * 64, "sample_rate": 16000, "duration_s": 3.0}
    [(result, _)] = checker({**record, "question_audio": audio})
    assert result.second_opinion and result.judge == item_checks.SECOND_JUDGE
    assert result.per == 0.0 and result.status["asr_per"] == "pass"
    # the second judge hearing no better: the first result stands, and fails
    monkeypatch.setattr(whisper_asr, "WhisperASR", lambda model, device, hotwords: Heard(""))  # hears nothing at all
    checker = item_checks.ItemChecker(tmp_path, CheckConfig(), "whisper", None, "cpu", asr_engine=Heard("nothing alike"))
    [(result, _)] = checker({**record, "question_audio": audio})
    assert result.judge == "whisper" and result.status["asr_per"] == "fail"
    assert "PER" in result.failures[-1][2] and "(whisper)" in result.failures[-1][2]


def test_max_per_is_an_option_and_a_config_key(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a")])
    proc = run_cli("validate", manifest, "--max-per", "0.2", check_rc=2)
    assert proc.stderr.strip() == "error: --max-per needs --asr"
    (tmp_path / "checks.yaml").write_text("max_per: {whisper: 0.2}\nasr_hotwords: []\nsecond_opinion: false\n")
    config = load_config(tmp_path / "checks.yaml")
    assert (config.max_per["whisper"], config.max_per["pocketsphinx"], config.asr_hotwords, config.second_opinion) \
        == (0.2, CheckConfig().max_per["pocketsphinx"], (), False)


def test_a_flipped_verdict_or_a_lost_negation_fails_however_few_phonemes_it_costs(tmp_path):
    said = words("Maria did not attend the review session, so she did not pass. Answer: entailed.")
    assert asr.meaning_flips(said, said) == ()
    flipped = words("Maria did attend the review session, so she did not pass. Answer: not-entailed.")
    flips = asr.meaning_flips(said, flipped)
    assert any("verdict 'not entailed' where the text says 'entailed'" in flip for flip in flips)
    assert asr.meaning_flips(said, words("Maria did attend the review session, so she did not pass. Answer: entailed.")) \
        == ("heard 1 negation(s) where the text has 2",)
    # through the judge: the file fails asr_per with the reason
    record = item("x", answer="Maria did not attend, so she did not pass. Answer: entailed.")
    samples = 0.1 * np.sin(np.arange(16000 * 3) / 5).astype(np.float32)
    soundfile.write(tmp_path / "a.flac", samples, 16000)
    config = CheckConfig(second_opinion=False)
    heard = Heard(to_speech_text("Maria did attend, so she did not pass. Answer: entailed."))
    checker = item_checks.ItemChecker(tmp_path, config, "whisper", None, "cpu", asr_engine=heard)
    audio = {"path": "a.flac", "sha256": "0" * 64, "sample_rate": 16000, "duration_s": 3.0}
    [(result, _)] = checker({**record, "answer_audio": audio})  # (no question audio: only the answer is judged)
    assert result.status["asr_per"] == "fail" and "negation" in result.failures[-1][2]
