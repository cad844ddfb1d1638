"""Many voices: the catalog and `voices`, the speaker plan's balance and speaker-disjoint test split on a few hundred
items without audio, and real audio from each engine (hibari, Kokoro with a style mix, flite) decoded and measured,
then heard by the Whisper judge."""

import json
import random
import shutil
from collections import Counter, defaultdict

import numpy as np
import pyloudnorm
import pytest
import soundfile

from factories import item, read_jsonl, write_jsonl
from soundmind_data.core.errors import UsageError
from soundmind_data.tts import kokoro
from soundmind_data.tts.driver import synthesize_manifest
from soundmind_data.tts.plan import SpeakerPlan
from soundmind_data.tts.synthesizer import SynthesisOptions
from soundmind_data.tts.voices import CATALOG, default_pool, resolve, resolve_all

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")
QUESTION = "Tom is a cat, and all cats are animals. Is Tom an animal?"
ANSWER = "Tom is a cat, every cat is an animal, so Tom is an animal. Answer: entailed."


def short_item(item_id: str, **fields) -> dict:
    return item(item_id, question_text=QUESTION, answer=ANSWER, **fields)


# ------------------------------------------------------------------------------------------------ the catalog
def test_voices_lists_seven_installed_voices_of_two_engines_and_json_for_scripts(run_cli):
    table = run_cli("voices", check_rc=0).stdout
    rows = table.splitlines()[2:-1]
    assert [row.split("  ")[0].removesuffix(" *") for row in rows] == [voice.name for voice in CATALOG]
    listed = json.loads(run_cli("voices", "--json", check_rc=0).stdout)
    assert all({"name", "engine", "installed"} <= set(voice) for voice in listed)
    installed = [voice for voice in listed if voice["installed"]]
    assert len(installed) >= 7 and len({voice["engine"] for voice in installed}) >= 2
    pool = [voice for voice in listed if voice["default_pool"]]
    assert pool and all(voice["installed"] for voice in pool)  # make installs every voice of the default pool
    assert not any(voice["engine"] in ("flite", "espeak") for voice in pool)
    missing = [voice for voice in listed if not voice["installed"]]
    assert all(voice["install"] in table for voice in missing)  # the exact install line where it is missing


def test_names_resolve_to_catalog_voices_and_unknown_names_are_usage_errors():
    assert resolve("joe").name == resolve("piper:en_US-joe-medium").name == "piper:joe"
    assert resolve("heart", None).name == "hibari:heart"
    assert resolve("en-gb", "espeak").name == "espeak:en-gb"  # an engine's voice the catalog does not list
    assert resolve("kokoro:jf_alpha+jm_kumo@0.5").name == "kokoro:jf_alpha+jm_kumo@0.5"  # a mix, as given
    assert [voice.name for voice in resolve_all(("all", "piper:joe"))] == [voice.name for voice in default_pool()]
    with pytest.raises(UsageError, match="not a voice the toolkit knows"):
        resolve("nobody")
    assert kokoro.parse_mix("jf_alpha+jm_kumo@0.3") == pytest.approx({"jf_alpha": 0.7, "jm_kumo": 0.3})
    for bad in ("jf_alpha+jf_alpha", "jf_alpha@0.4+jm_kumo@0.4", "nobody", "jf_alpha+jm_kumo@1.5"):
        with pytest.raises(UsageError):
            kokoro.parse_mix(bad)


# --------------------------------------------------------------------------------------- the plan, no audio
def _items(count: int, seed: int = 1) -> list[tuple[int, str, str, int]]:
    rng = random.Random(seed)
    splits = ["train"] * 8 + ["dev", "test"]
    return [(line, f"item-{line:04d}", rng.choice(splits), rng.randrange(2)) for line in range(1, count + 1)]


def _voices(*names: str):
    return tuple(resolve(name) for name in names)


@pytest.mark.parametrize("voices, held", [
    (("piper:joe", "hibari:heart", "kokoro:jf_alpha"), ()),
    (("piper:joe", "hibari:heart", "kokoro:jf_alpha", "kokoro:jm_kumo", "flite:slt"), ("kokoro:jm_kumo",)),
    (("piper:joe", "hibari:heart", "kokoro:jf_alpha", "kokoro:jm_kumo"), ("kokoro:jm_kumo", "flite:awb")),
])
def test_the_plan_balances_every_split_and_label_and_keeps_test_voices_to_the_test_split(voices, held):
    plan = SpeakerPlan(_voices(*voices, *[name for name in held if name not in voices]), _voices(*held), seed=3)
    items = _items(400)
    assigned = plan.assign(items)
    assert set(assigned) == {line for line, *_ in items}
    by_group: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for line, _, split, label in items:
        by_group[(split, label)][assigned[line].name] += 1
    for (split, _), counts in by_group.items():
        pool = [voice.name for voice in plan.pool(split)]
        assert set(counts) <= set(pool)
        per_voice = [counts.get(name, 0) for name in pool]
        assert max(per_voice) - min(per_voice) <= 1, (split, counts)
        if held:
            assert (set(counts) <= set(held)) == (split == "test")
            assert split == "test" or not set(counts) & set(held)
    # deterministic from id, group and seed: the lines' order does not matter, the seed does
    shuffled = items[:]
    random.Random(9).shuffle(shuffled)
    assert {line: voice.name for line, voice in plan.assign(shuffled).items()} == \
        {line: voice.name for line, voice in assigned.items()}
    other = SpeakerPlan(plan.voices, plan.test_voices, seed=4).assign(items)
    assert any(other[line].name != assigned[line].name for line in assigned)


def test_an_item_more_or_less_moves_at_most_a_couple_of_others():
    """A corpus curated again or grown by `add` keeps almost every voice, so the cache keeps almost every file."""
    plan = SpeakerPlan(_voices("piper:joe", "hibari:heart", "kokoro:jf_alpha"), seed=0)
    items = [(line, f"item-{line:04d}", "train", 1) for line in range(1, 61)]
    before = {key: voice.name for key, voice in plan.assign(items).items()}
    for changed in (items + [(61, "newcomer", "train", 1)], items[:30] + items[31:]):
        after = {key: voice.name for key, voice in plan.assign(changed).items()}
        moved = [key for key in after if key in before and after[key] != before[key]]
        assert len(moved) <= 2, moved


def test_a_plan_with_every_voice_held_for_test_is_a_usage_error():
    with pytest.raises(UsageError, match="every voice is held"):
        SpeakerPlan(_voices("piper:joe"), _voices("piper:joe"))
    with pytest.raises(UsageError, match="under another name"):  # one speaker cannot be on both sides
        SpeakerPlan(_voices("kokoro:jf_alpha", "piper:joe", "kokoro:jf_alpha@1"), _voices("kokoro:jf_alpha@1"))
    with pytest.raises(UsageError, match="under another name"):
        SpeakerPlan(_voices("kokoro:jm_kumo@0.5+jf_alpha", "piper:joe", "kokoro:jf_alpha+jm_kumo@0.5"),
                    _voices("kokoro:jf_alpha+jm_kumo@0.5"))


# --------------------------------------------------------------------------------------------- real audio
def _measure(path) -> tuple[int, float, float]:
    audio, rate = soundfile.read(path, dtype="float64")
    return rate, len(audio) / rate, pyloudnorm.Meter(rate).integrated_loudness(audio)


@needs_flite
def test_each_engine_speaks_at_the_corpus_rate_and_loudness_and_records_its_voice(tmp_path):
    voices = ("hibari:heart", "kokoro:jf_alpha+jm_kumo@0.5", "flite:awb", "piper:joe")
    items = [short_item(f"v{n}", label=1) for n in range(4)]  # one group: one item per voice
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    summary = synthesize_manifest(manifest, tmp_path / "out", SynthesisOptions(voices=voices))
    assert (summary.written, summary.failed) == (4, 0)
    records = read_jsonl(summary.manifest)
    engines = {"hibari:heart": "hibari", "kokoro:jf_alpha+jm_kumo@0.5": "kokoro", "flite:awb": "flite",
               "piper:joe": "piper"}
    assert sorted(r["question_audio"]["voice"] for r in records) == sorted(voices)  # 4 items, 4 voices: one each
    for record in records:
        for field in ("question_audio", "answer_audio"):
            audio = record[field]
            assert audio["engine"] == engines[audio["voice"]] == record["tts"]["backend"]
            rate, seconds, loudness = _measure(tmp_path / "out" / audio["path"])
            assert rate == audio["sample_rate"] == 16000
            assert seconds == pytest.approx(audio["duration_s"], abs=0.01) and seconds > 2.0
            assert loudness == pytest.approx(-23.0, abs=0.5)
    kokoro_record = next(r for r in records if r["tts"]["backend"] == "kokoro")
    assert kokoro_record["tts"]["voice"] == "jf_alpha+jm_kumo@0.5"
    # the same plan again: nothing changes, nothing is synthesised
    before = {p: p.read_bytes() for p in (tmp_path / "out" / "audio").rglob("*.flac")}
    again = synthesize_manifest(manifest, tmp_path / "out", SynthesisOptions(voices=voices))
    assert (again.synthesized, again.cached) == (0, 8)
    assert {p: p.read_bytes() for p in (tmp_path / "out" / "audio").rglob("*.flac")} == before


@needs_flite
def test_changing_one_items_voice_re_renders_that_item_alone(tmp_path):
    items = [short_item("a", label=1), short_item("b", label=1)]
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    first = synthesize_manifest(manifest, tmp_path / "out", SynthesisOptions(voices=("flite:slt", "flite:rms")))
    voices = {r["id"]: r["question_audio"]["voice"] for r in read_jsonl(first.manifest)}
    assert sorted(voices.values()) == ["flite:rms", "flite:slt"]
    # rms gives way to awb: the item rms spoke is spoken again, the other comes from the cache untouched
    second = synthesize_manifest(manifest, tmp_path / "out", SynthesisOptions(voices=("flite:slt", "flite:awb")))
    assert (second.synthesized, second.cached) == (2, 2)
    after = {r["id"]: r["question_audio"]["voice"] for r in read_jsonl(second.manifest)}
    changed = [item_id for item_id in voices if voices[item_id] != after[item_id]]
    assert len(changed) == 1 and after[changed[0]] == "flite:awb"


def test_hibari_is_deterministic():
    from soundmind_data.tts.base import load_voice_engine

    engine = load_voice_engine("hibari", None, "cpu")
    first, second = engine.synthesize([QUESTION]), engine.synthesize([QUESTION])
    assert np.array_equal(first[0], second[0]) and first[0].size > 24000


def test_kokoro_packs_sentences_into_calls_and_a_damaged_model_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDMIND_DATA_CACHE", str(tmp_path / "cache"))
    path = kokoro.model_path()
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as a killed copy or a full disk leaves it
    assert kokoro.model_path() == path and path.stat().st_size > 90_000_000
    engine = kokoro.KokoroEngine("jm_kumo", "cpu")
    sentences = ["Tom is a cat.", "All cats are animals.", "So Tom is an animal."]
    tokens = [t for sentence in sentences for t in engine.tokens(sentence)]
    assert kokoro.pack(tokens) == [tokens[0] + [16] + tokens[1] + [16] + tokens[2]]  # 16: the space token
    assert len(kokoro.pack(tokens, limit=max(map(len, tokens)) + 1)) == 3
    [audio] = engine.synthesize(sentences)
    assert 2.0 < audio.size / kokoro.SAMPLE_RATE < 8.0 and np.abs(audio).max() > 0.05


def test_kokoro_on_cuda_without_onnxruntime_gpu_is_one_usage_error_that_touches_nothing(tmp_path, run_cli):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("a")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text("previous run\n")
    proc = run_cli("synthesize", manifest, "--out", out, "--voices", "kokoro:jm_kumo", "--device", "cuda", check_rc=2)
    assert proc.stderr.strip() == ("error: --device cuda with kokoro needs onnxruntime-gpu "
                                   "(pip install 'soundmind-data[gpu]')")
    assert (out / "manifest.jsonl").read_text() == "previous run\n" and sorted(p.name for p in out.iterdir()) == \
        ["manifest.jsonl"]


def test_unknown_voice_and_voice_with_voices_are_usage_errors(tmp_path, run_cli):
    manifest = write_jsonl(tmp_path / "items.jsonl", [short_item("a")])
    proc = run_cli("synthesize", manifest, "--out", tmp_path / "out", "--voices", "nobody", check_rc=2)
    assert proc.stderr.startswith("error: voice 'nobody' is not a voice the toolkit knows")
    proc = run_cli("synthesize", manifest, "--out", tmp_path / "out", "--voices", "joe", "--voice", "x", check_rc=2)
    assert "--voices and --voice" in proc.stderr and "Traceback" not in proc.stderr


def test_every_default_pool_voice_passes_the_whisper_judge(tmp_path, run_cli):
    """Clean audio of every voice in the default pool passes validate --asr whisper (its WER gate)."""
    pool = [voice.name for voice in default_pool()]
    items = [item(f"p{n}", label=1) for n in range(len(pool))]  # the SoundMind question template, a real answer
    manifest = write_jsonl(tmp_path / "items.jsonl", items)
    run_cli("synthesize", manifest, "--out", tmp_path / "out", "--voices", "all", "--workers", "2", check_rc=0)
    spoken = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert sorted(r["question_audio"]["voice"] for r in spoken) == sorted(pool)  # one item per voice
    proc = run_cli("validate", tmp_path / "out" / "manifest.jsonl", "--asr", "whisper", "--workers", "2",
                   "--out", tmp_path / "out" / "validated.jsonl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for record in read_jsonl(tmp_path / "out" / "validated.jsonl"):
        assert record["failed_checks"] == [] and record["question_audio"]["wer"] <= 0.3, record["id"]
