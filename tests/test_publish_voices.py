"""publish with the speaker plan's voices: the `voice` column of the published rows and the card's Voices table,
both read back from the files written; manifests from before audio entries named their voice still publish."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from factories import item, write_jsonl, write_tone
from soundmind_data.stages.publish import PublishOptions
from soundmind_data.stages.publish import run as publish

# What synthesize records for each voice: the engine on every audio entry, and the item's `tts` record
TTS = {
    "piper:joe": {"backend": "piper", "voice": "en_US-joe-medium", "license": "CC0-1.0"},
    "kokoro:jm_kumo": {"backend": "kokoro", "voice": "jm_kumo", "license": "Apache-2.0"},
    "kokoro:jf_alpha+jm_kumo@0.5": {"backend": "kokoro", "voice": "jf_alpha+jm_kumo@0.5", "license": "Apache-2.0"},
    # a Piper model of the builder's own, named by its path: Piper's record names the model's stem, no licence
    "piper:/home/someone/voices/my-voice.onnx": {"backend": "piper", "voice": "my-voice", "license": None},
}


def spoken_item(root: Path, number: int, split: str, voice: str | None, answer_voice: str | None = None) -> dict:
    """An item with question and answer audio, as synthesize writes it with `voice` (None: as it wrote it before audio
    entries named their voice, its `tts` record that of Piper's default voice)."""
    record = item(f"{split}-{number}", split=split, label=number % 2, major=f"Every member {number} pays the fee")
    for kind, speaker in (("question", voice), ("answer", answer_voice or voice)):
        audio = write_tone(root / f"{record['id']}-{kind}.flac", seconds=0.2 + 0.05 * number)
        if speaker is not None:
            audio |= {"voice": speaker, "engine": TTS[speaker]["backend"]}
        record[f"{kind}_audio"] = audio
    record["tts"] = {**TTS[voice or "piper:joe"], "model_md5": "0" * 32, "toolkit_version": "0.1.0"}
    return record


def published(manifest: Path, folder: Path) -> tuple[dict[str, str], str]:
    """Publish `manifest` into `folder` (the pre-push check must pass); the `voice` column by id, and the card."""
    report = publish(manifest, folder, PublishOptions())
    assert report.ok, report.check.problems
    voices = {}
    for shard in sorted((folder / "data").glob("*.parquet")):
        table = pq.read_table(shard, columns=["id", "voice"])
        voices |= dict(zip(table["id"].to_pylist(), table["voice"].to_pylist()))
    return voices, (folder / "README.md").read_text(encoding="utf-8")


def voices_table(card: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header of the card's Voices table and its rows by voice (the cells after the voice)."""
    section = card[card.index("## Voices"):card.index("## Licence")]
    header, _rule, *rows = [line[2:-2].split(" | ") for line in section.splitlines() if line.startswith("|")]
    return header, {row[0]: row[1:] for row in rows}


def test_voice_column_and_card_table_count_each_voice_per_split(tmp_path):
    root = tmp_path / "corpus"
    items = [  # written out of split order: the card's columns follow the corpus's order, not the manifest's
        spoken_item(root, 0, "test", "kokoro:jf_alpha+jm_kumo@0.5"),
        spoken_item(root, 1, "test", "kokoro:jf_alpha+jm_kumo@0.5"),
        spoken_item(root, 2, "test", "piper:joe"),
        spoken_item(root, 3, "train", "piper:joe"),
        spoken_item(root, 4, "train", "kokoro:jm_kumo"),
        spoken_item(root, 5, "train", "piper:joe"),
        spoken_item(root, 6, "train", "kokoro:jm_kumo"),
        spoken_item(root, 7, "train", "piper:joe", answer_voice="kokoro:jm_kumo"),  # the row names the question's
        spoken_item(root, 8, "dev", "piper:/home/someone/voices/my-voice.onnx"),
    ]
    voices, card = published(write_jsonl(root / "manifest.jsonl", items), tmp_path / "hub")

    assert voices == {
        "test-0": "kokoro:jf_alpha+jm_kumo@0.5", "test-1": "kokoro:jf_alpha+jm_kumo@0.5", "test-2": "piper:joe",
        "train-3": "piper:joe", "train-4": "kokoro:jm_kumo", "train-5": "piper:joe", "train-6": "kokoro:jm_kumo",
        "train-7": "piper:joe",
        "dev-8": "piper:my-voice.onnx",  # the builder's folders are not published
    }
    header, rows = voices_table(card)
    assert header == ["voice", "engine", "voice licence", "train", "dev", "test"]
    assert rows == {  # licences from the voice catalog, else from the item's tts record
        "piper:joe": ["piper", "CC0-1.0", "3", "0", "1"],
        "kokoro:jm_kumo": ["kokoro", "Apache-2.0 (Kokoro-82M v1.0)", "2", "0", "0"],
        "kokoro:jf_alpha+jm_kumo@0.5": ["kokoro", "Apache-2.0", "0", "0", "2"],
        "piper:my-voice.onnx": ["piper", "unknown", "0", "1", "0"],
    }
    assert next(iter(rows)) == "piper:joe"  # the most-heard voice first
    assert "/home/someone" not in card


def test_a_manifest_whose_audio_names_no_voice_still_publishes(tmp_path):
    root = tmp_path / "corpus"
    old = [spoken_item(root, number, "train", None) for number in range(3)]
    del old[2]["tts"]  # no record of what spoke it at all
    added = spoken_item(root, 3, "train", "piper:joe")  # an item added to the old corpus since
    voices, card = published(write_jsonl(root / "manifest.jsonl", [*old, added]), tmp_path / "hub")

    assert voices == {"train-0": "piper:en_US-joe-medium", "train-1": "piper:en_US-joe-medium",
                      "train-2": "unknown", "train-3": "piper:joe"}
    header, rows = voices_table(card)
    assert header == ["voice", "engine", "voice licence", "train"]
    assert rows == {"piper:en_US-joe-medium": ["piper", "CC0-1.0", "2"], "piper:joe": ["piper", "CC0-1.0", "1"],
                    "unknown": ["unknown", "unknown", "1"]}
