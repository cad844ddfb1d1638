"""`validate --audio` per voice: real tone files spoken (so the manifest says) by several voices, one of them bad; the
report, the summary table and the voices plot must single it out. The ASR figures per voice are checked on real
speech in test_validate_audio.py."""

from __future__ import annotations

import json
import re

import pytest
from factories import item, write_jsonl, write_tone
from PIL import Image

from soundmind_data.checks.manifest import validate_manifest
from soundmind_data.core import schemas
from soundmind_data.report.plots import voice_figures

QUESTION = "Tom is a cat, so Tom is an animal."  # 9 words; the default answer has 11
ANSWER_WORDS = 11


def voiced(folder, item_id: str, voice: str | None, seconds: tuple[float, float], **record) -> dict:
    """An item whose question and answer are tones of these lengths, spoken by `voice` (None: a manifest from before
    audio entries named their voice)."""
    spoken = item(item_id, question_text=QUESTION, **record)
    for kind, length in zip(("question", "answer"), seconds):
        audio = write_tone(folder / "audio" / f"{item_id}-{kind}.flac", length)
        named = {"voice": voice, "engine": voice.split(":")[0]} if voice else {}
        spoken[f"{kind}_audio"] = {**audio, "path": f"audio/{item_id}-{kind}.flac", **named}
    return spoken


@pytest.fixture
def corpus(tmp_path):
    """Two items of piper:joe that pass, one of kokoro:jf_alpha whose files do not match their sha256, one of a
    manifest written before voices were recorded (its `tts` names the voice) and one that says nothing at all."""
    bad = voiced(tmp_path, "k1", "kokoro:jf_alpha", (2.0, 3.0))
    for kind in ("question", "answer"):
        bad[f"{kind}_audio"]["sha256"] = "0" * 64
    old = voiced(tmp_path, "old", None, (3.0, 4.0), tts={"backend": "piper", "voice": "en_US-joe-medium"})
    items = [voiced(tmp_path, "p1", "piper:joe", (3.0, 4.0)), voiced(tmp_path, "p2", "piper:joe", (3.0, 4.0)), bad,
             old, voiced(tmp_path, "none", None, (3.0, 4.0))]
    return write_jsonl(tmp_path / "items.jsonl", items)


def table(stdout: str, first_header: str) -> tuple[list[str], dict[str, list[str]]]:
    """The summary table whose first column is `first_header`: its headers, and its rows by their first cell."""
    lines = stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.split()[:1] == [first_header])
    rows = {}
    for line in lines[start + 2:]:  # past the header and its rule
        if not line.strip():
            break
        first, *cells = line.split()
        rows[first] = cells
    return re.split(r"\s{2,}", lines[start]), rows


def test_the_report_breaks_the_audio_down_per_voice(corpus, tmp_path, run_cli):
    proc = run_cli("validate", corpus, "--audio", "--json", tmp_path / "report.json", "--plots", tmp_path / "plots",
                   check_rc=1)
    report = json.loads((tmp_path / "report.json").read_text())
    assert schemas.first_error("validate-report", report) is None
    voices = report["voices"]
    assert list(voices) == ["kokoro:jf_alpha", "piper:en_US-joe-medium", "piper:joe", "unknown"]
    assert {voice: (figures["files"], figures["failed_files"], figures["mean_duration_s"])
            for voice, figures in voices.items()} == {
        "kokoro:jf_alpha": (2, 2, 2.5), "piper:en_US-joe-medium": (2, 0, 3.5), "piper:joe": (4, 0, 3.5),
        "unknown": (2, 0, 3.5)}
    assert voices["piper:joe"]["seconds"] == 14.0
    loudness = {figures["mean_loudness_lufs"] for figures in voices.values()}
    assert len(loudness) == 1 and -26 < loudness.pop() < -20  # the same tone throughout
    assert "mean_wer" not in voices["piper:joe"]  # no ASR ran
    assert (report["audio"]["files"], report["audio"]["failed_files"]) == (10, 2)
    assert {failure["id"] for failure in report["failures"]} == {"k1"}

    headers, rows = table(proc.stdout, "voice")
    assert headers == ["voice", "files", "failed", "mean s", "mean LUFS"]  # no WER columns without ASR
    assert {voice: cells[:3] for voice, cells in rows.items()} == {
        "kokoro:jf_alpha": ["2", "2", "2.5"], "piper:en_US-joe-medium": ["2", "0", "3.5"],
        "piper:joe": ["4", "0", "3.5"], "unknown": ["2", "0", "3.5"]}
    for voice, cells in rows.items():
        assert float(cells[3]) == pytest.approx(voices[voice]["mean_loudness_lufs"], abs=0.051)

    with Image.open(tmp_path / "plots" / "voices.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] == 1200 and image.size[1] > 200
    assert str(tmp_path / "plots" / "voices.png") in report["plots"]


def test_the_voices_plot_is_drawn_from_each_files_duration_and_spoken_words(corpus):
    """validate's plot counts the words of the speech text the checks measured the speaking rate against."""
    report = validate_manifest(corpus, audio=True, workers=2)
    figures = {voice.voice: voice for voice in voice_figures(report.distributions)}
    joe = figures["piper:joe"]
    assert joe.files == 4
    assert joe.duration_s["question"].tolist() == [3.0, 3.0] and joe.duration_s["answer"].tolist() == [4.0, 4.0]
    assert joe.words_per_s["question"] == pytest.approx([9 / 3.0] * 2)
    assert joe.words_per_s["answer"] == pytest.approx([ANSWER_WORDS / 4.0] * 2)
    assert figures["kokoro:jf_alpha"].words_per_s["question"] == pytest.approx([9 / 2.0])
    assert sorted(figures) == ["kokoro:jf_alpha", "piper:en_US-joe-medium", "piper:joe", "unknown"]


def test_one_voice_gets_no_table_and_no_voices_plot(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [voiced(tmp_path, "p1", "piper:joe", (3.0, 4.0))])
    proc = run_cli("validate", manifest, "--audio", "--json", tmp_path / "report.json", "--plots", tmp_path / "plots",
                   check_rc=0)
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["voices"]) == ["piper:joe"] and report["voices"]["piper:joe"]["files"] == 2
    assert not any(line.split()[:1] == ["voice"] for line in proc.stdout.splitlines())
    assert sorted(path.name for path in (tmp_path / "plots").iterdir()) == ["durations.png", "loudness.png"]
