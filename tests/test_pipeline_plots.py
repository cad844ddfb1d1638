"""The plots a pipeline draws into its work dir: label balance always, durations when the manifest has audio, voices
when more than one voice speaks it."""

import numpy as np
from PIL import Image

from factories import item, text_pipeline, write_jsonl
from soundmind_data.core.labels import LABEL_NAMES
from soundmind_data.report.plots import distributions_of, voice_figures, write_corpus_plots

# matplotlib's first two colours: the not-entailed and entailed bars / histograms
LABEL_COLOURS = {LABEL_NAMES[0]: (0x1F, 0x77, 0xB4), LABEL_NAMES[1]: (0xFF, 0x7F, 0x0E)}


def _decoded(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _has_colour(pixels: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool((np.abs(pixels.astype(int) - colour).sum(axis=-1) < 10).any())


def test_run_draws_label_balance_and_keeps_it_when_every_stage_is_skipped(tmp_path, run_cli):
    work = tmp_path / "work"
    run_cli("run", text_pipeline(tmp_path), "--workdir", work, check_rc=0)
    balance = work / "plots" / "label-balance.png"
    pixels = _decoded(balance)
    assert pixels.shape == (360, 640, 3)  # 6.4 x 3.6 inches at 100 dpi
    assert all(_has_colour(pixels, colour) for colour in LABEL_COLOURS.values())  # a bar per label was drawn
    assert not (work / "plots" / "durations.png").exists()  # text only: no audio to plot
    drawn = balance.stat()

    run_cli("run", text_pipeline(tmp_path), "--workdir", work, check_rc=0)  # every stage skipped
    kept = balance.stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (drawn.st_ino, drawn.st_mtime_ns)  # not rewritten (atomic writes
    # replace the file, so a redraw would show as a new inode)

    run_cli("run", text_pipeline(tmp_path, "upsample"), "--workdir", work, check_rc=0)  # balance runs again: redrawn
    assert balance.stat().st_ino != drawn.st_ino
    _decoded(balance)

    balance.unlink()  # all skipped but the plot is missing: drawn again
    run_cli("run", text_pipeline(tmp_path, "upsample"), "--workdir", work, check_rc=0)
    assert _decoded(balance).shape == (360, 640, 3)


def _audio(seconds: float, **extra) -> dict:
    """An audio field as synthesis writes it; the plots read only the duration (and voice), so no file is needed."""
    return {"path": "audio/none.flac", "sha256": "0" * 64, "sample_rate": 22050, "channels": 1, "duration_s": seconds,
            **extra}


def test_durations_plot_has_a_row_per_split_and_is_removed_when_audio_is_gone(tmp_path):
    records = []
    for n in range(12):
        split = ("train", "dev", "test")[n % 3]
        record = item(f"i{n}", split=split, label=n % 2, conclusion=f"Claim {n}",
                      question_audio=_audio(2.0 + 0.3 * n), answer_audio=_audio(5.0 + 0.5 * n))
        records.append(record)
    records.append(item("i0-repeat", split="train", label=0, repeat_of="i0", question_audio=_audio(99.0)))
    manifest = write_jsonl(tmp_path / "manifest.jsonl", records)
    plots = tmp_path / "plots"

    written = write_corpus_plots(manifest, plots)
    assert sorted(p.name for p in written) == ["durations.png", "label-balance.png"]
    durations = _decoded(plots / "durations.png")
    assert durations.shape == (3 * 320, 1000, 3)  # 3 splits x (question, answer), 5 x 3.2 inches a panel at 100 dpi
    assert all(_has_colour(durations, colour) for colour in LABEL_COLOURS.values())

    text_only = write_jsonl(tmp_path / "text.jsonl", [item(f"t{n}", label=n % 2) for n in range(4)])
    assert [p.name for p in write_corpus_plots(text_only, plots)] == ["label-balance.png"]
    assert not (plots / "durations.png").exists()  # no stale plot of another corpus


def test_voices_plot_shows_each_voices_durations_and_speaking_rate(tmp_path):
    """Words per second are the words of the spoken text: the speech text validate recorded where it differs from
    the written one, else the written text. Audio from before entries named their voice counts under its item's
    `tts` voice, or "unknown"; an upsampled repeat is not counted twice."""
    joe, kumo = {"voice": "piper:joe", "engine": "piper"}, {"voice": "kokoro:jm_kumo", "engine": "kokoro"}
    answer = "Tom is an animal.\n\nAnswer: entailed."  # 6 words
    records = [
        item("a", question_text="Tom is a cat.", answer=answer, question_audio=_audio(2.0, **joe),
             answer_audio=_audio(4.0, **joe)),
        item("b", question_text="Rule 2 says x ≥ 5.", answer=None,  # 5 words written, 8 spoken
             question_audio=_audio(4.0, speech_text="Rule two says x is at least five.", **kumo)),
        item("c", question_text="Tom is a cat.", answer=None, question_audio=_audio(2.0, **kumo)),
        item("old", question_text="Tom is a cat.", answer=None, question_audio=_audio(1.0),
             tts={"backend": "piper", "voice": "en_US-joe-medium"}),
        item("lost", question_text="Tom is a cat.", answer=None, question_audio=_audio(8.0)),
        item("a-repeat", repeat_of="a", question_audio=_audio(99.0, **joe)),
    ]
    manifest = write_jsonl(tmp_path / "manifest.jsonl", records)

    figures = {voice.voice: voice for voice in voice_figures(distributions_of(manifest)[1])}
    assert list(figures) == ["kokoro:jm_kumo", "piper:en_US-joe-medium", "piper:joe", "unknown"]
    assert {voice: figure.files for voice, figure in figures.items()} == {
        "kokoro:jm_kumo": 2, "piper:en_US-joe-medium": 1, "piper:joe": 2, "unknown": 1}
    assert figures["piper:joe"].duration_s["question"].tolist() == [2.0]
    assert figures["piper:joe"].duration_s["answer"].tolist() == [4.0]
    assert figures["piper:joe"].words_per_s["question"].tolist() == [4 / 2.0]
    assert figures["piper:joe"].words_per_s["answer"].tolist() == [6 / 4.0]
    assert figures["kokoro:jm_kumo"].duration_s["question"].tolist() == [4.0, 2.0]
    assert figures["kokoro:jm_kumo"].words_per_s["question"].tolist() == [8 / 4.0, 4 / 2.0]
    assert figures["kokoro:jm_kumo"].words_per_s["answer"].size == 0
    assert figures["unknown"].words_per_s["question"].tolist() == [4 / 8.0]

    plots = tmp_path / "plots"
    assert sorted(p.name for p in write_corpus_plots(manifest, plots)) == ["durations.png", "label-balance.png",
                                                                            "voices.png"]
    with Image.open(plots / "voices.png") as image:
        image.verify()  # a whole, valid PNG
    pixels = _decoded(plots / "voices.png")
    assert pixels.shape == (300, 1200, 3)  # 12 x (1.2 + 0.45 a voice) inches at 100 dpi
    assert all(_has_colour(pixels, colour) for colour in LABEL_COLOURS.values())  # question and answer files drawn

    one_voice = write_jsonl(tmp_path / "one.jsonl", records[:1])
    assert "voices.png" not in [p.name for p in write_corpus_plots(one_voice, plots)]
    assert not (plots / "voices.png").exists()  # no stale plot of another corpus
