"""The card of a corpus with imported audio: where each audio file came from (the release's own recordings, voice
"upstream", or speech synthesised here), and its licence when the release declares one (`source.license`) that
differs from its text's: the stricter, said plainly, unless `publish --license` chooses. Real cards, rendered by
publish (or from a real build), read back as YAML header and Markdown."""

from __future__ import annotations

import pytest
from factories import item, write_jsonl, write_tone

from soundmind_data.hub.card import read_card_metadata, render_card
from soundmind_data.hub.folder.build import build_folder

PIPER = "piper:en_US-joe-medium"
STRICTER = ("The release `soundmind` declares MIT; its text comes from LogiQA 2.0 (CC BY-NC-SA 4.0); this card uses "
            "CC BY-NC-SA 4.0, the stricter.")


def imported_manifest(root, *, license_id: str | None = "mit", resynthesised: bool = True):
    """Four SoundMind items imported from the Hub release with their recordings (voice and engine "upstream");
    with `resynthesised`, the last one's answer was spoken again here by a Piper voice."""
    records = []
    for n in range(4):
        split = "train" if n < 3 else "test"
        source = {"dataset": "soundmind", "format": "soundmind-hub", "file": f"dataset/{split}/metadata.jsonl",
                  "line": n + 1, **({"license": license_id} if license_id else {})}
        record = item(f"{n + 1:04d}", split=split, label=n % 2, major=f"Every member {n} pays the fee", source=source)
        for key, name in (("question_audio", "question"), ("answer_audio", f"answer_{n % 2}")):
            audio = write_tone(root / "audio" / f"{n + 1:04d}-{name}.flac", seconds=0.5 + 0.1 * n)
            record[key] = {**audio, "path": f"audio/{audio['path']}", "voice": "upstream", "engine": "upstream"}
        records.append(record)
    if resynthesised:
        records[-1]["answer_audio"].update(voice=PIPER, engine="piper")
        records[-1]["tts"] = {"backend": "piper", "voice": "en_US-joe-medium", "license": "CC0-1.0",
                              "toolkit_version": "0.1.0"}
    return write_jsonl(root / "manifest.jsonl", records)


def section(card: str, title: str) -> str:
    start = card.index(f"## {title}\n")
    end = card.find("\n## ", start + 1)
    return card[start:end if end != -1 else None]


@pytest.fixture
def hf_env(tmp_path):
    home = tmp_path / "hf-home"
    home.mkdir()
    return {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "ds-cache")}


def _card(tmp_path, manifest) -> tuple[str, dict]:
    """The card publish writes for `manifest`, rendered from a real build of it, and its YAML header."""
    build = build_folder(manifest, tmp_path / "hub")
    card = render_card(build, [], repo_id="me/imported", command="soundmind-data publish manifest.jsonl")
    return card, read_card_metadata(card)


def test_the_card_tells_imported_recordings_from_synthesised_speech_and_takes_the_stricter_licence(tmp_path):
    card, header = _card(tmp_path, imported_manifest(tmp_path / "corpus"))
    assert header["license"] == "cc-by-nc-sa-4.0"
    assert "synthetic" in header["tags"]  # one answer was synthesised here

    provenance = section(card, "Provenance")
    assert "7 of 8 audio files are the recordings of the release the items come from, imported as they are" \
        in provenance
    assert "| origin | voice | question audio | answer audio |\n|---|---|---|---|\n" \
           "| recorded by the release, imported as it is | upstream | 4 | 3 |\n" \
           f"| synthesised by soundmind-data | {PIPER} | 0 | 1 |" in provenance
    voices = section(card, "Voices")
    assert "| upstream | upstream | the corpus's (CC BY-NC-SA 4.0) | 3 | 1 |" in voices and "unknown" not in voices

    licence = section(card, "Licence")
    assert STRICTER in licence
    assert "This corpus is a derived work and is distributed under the same licence" in licence
    assert "The recordings imported from the release are published as the release made them" in licence
    assert "The synthetic voices keep their own licences" in licence
    assert "(speech synthesised with toolkit version 0.1.0)" in section(card, "How it was built")


def test_publish_license_overrides_and_the_card_says_it_was_chosen(tmp_path, run_cli, hf_env):
    manifest = imported_manifest(tmp_path / "corpus")
    run_cli("publish", manifest, "--local-dir", tmp_path / "hub", "--license", "MIT", env=hf_env, check_rc=0)
    card = (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
    assert read_card_metadata(card)["license"] == "mit"
    licence = section(card, "Licence")
    assert ("The release `soundmind` declares MIT; its text comes from LogiQA 2.0 (CC BY-NC-SA 4.0); this card uses "
            "MIT, as its publisher chose (`--license mit`).") in licence
    assert "distributed under the same licence" not in licence  # not true of a card the publisher licensed
    assert "| upstream | upstream | the corpus's (MIT) |" in card
    assert "--license MIT" in section(card, "How it was built")  # the command as the publisher typed it


def test_a_bad_license_is_a_usage_error_before_anything_is_built(tmp_path, run_cli, hf_env):
    manifest = imported_manifest(tmp_path / "corpus")
    proc = run_cli("publish", manifest, "--local-dir", tmp_path / "hub", "--license", "my licence!", env=hf_env,
                   check_rc=2)
    assert proc.stderr.strip().splitlines() == [
        "error: --license 'my licence!': expected a Hub licence id such as cc0-1.0, mit, apache-2.0, cc-by-4.0, "
        "cc-by-sa-4.0, cc-by-nc-4.0, cc-by-nc-sa-4.0 or other"]
    assert not (tmp_path / "hub").exists()


def test_a_hand_edited_source_licence_never_reaches_the_card(tmp_path, run_cli, hf_env):
    """A manifest's `source.license` must have the shape of a Hub licence id: Markdown in it is a one-line error."""
    manifest = imported_manifest(tmp_path / "corpus", license_id="mit\n# injected")
    proc = run_cli("publish", manifest, "--local-dir", tmp_path / "hub", env=hf_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{manifest}:1: " in proc.stderr and "source.license" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "hub" / "README.md").exists()


def test_a_corpus_of_recordings_only_says_nothing_was_synthesised(tmp_path):
    card, header = _card(tmp_path, imported_manifest(tmp_path / "corpus", resynthesised=False))
    assert "synthetic" not in header["tags"] and header["license"] == "cc-by-nc-sa-4.0"
    assert "All 8 audio files are the recordings of the release" in section(card, "Provenance")
    assert "synthesised by soundmind-data |" not in card and "The synthetic voices" not in card
    assert "(no speech synthesised: the audio is the release's own recordings)" in card
    assert STRICTER in section(card, "Licence")


def test_a_release_licence_the_card_cannot_rank_makes_it_other_and_says_why(tmp_path):
    card, header = _card(tmp_path, imported_manifest(tmp_path / "corpus", license_id="openrail"))
    assert header["license"] == "other"
    assert ("The release `soundmind` declares openrail; its text comes from LogiQA 2.0 (CC BY-NC-SA 4.0); this card "
            "uses `other`, since the toolkit cannot tell which of CC BY-NC-SA 4.0 and openrail is the stricter: check "
            "each before reuse, or choose with `publish --license`.") in section(card, "Licence")


def test_a_corpus_whose_sources_declare_nothing_keeps_the_texts_licence(tmp_path):
    card, header = _card(tmp_path, imported_manifest(tmp_path / "corpus", license_id=None))
    licence = section(card, "Licence")
    assert header["license"] == "cc-by-nc-sa-4.0" and "declares" not in licence and "stricter" not in licence
