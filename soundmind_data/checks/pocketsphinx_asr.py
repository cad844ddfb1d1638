"""The pocketsphinx judge: offline CPU ASR whose US English model ships in the wheel; it hears logic poorly."""

from __future__ import annotations

import importlib.util

import numpy as np

from soundmind_data.checks.asr import ASR_RATE, Judge, Windows
from soundmind_data.core.errors import UsageError


class PocketsphinxASR(Judge):
    name = "pocketsphinx"
    max_window_s = None

    def __init__(self, model: str | None, device: str, hotwords: tuple[str, ...] = ()) -> None:
        """`model` and `device` are None and "cpu" (`problems` refuses others: its model is the wheel's and it
        runs on the CPU only); it takes no `hotwords`."""
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise UsageError("--asr pocketsphinx needs pocketsphinx: pip install 'soundmind-data[asr]'") from None
        self._decoder = Decoder()  # the US English model bundled with the wheel

    @staticmethod
    def problems(model: str | None, device: str, second_opinion: bool) -> list[str]:
        problems = ["--asr-model is for --asr whisper; pocketsphinx uses the model in its wheel"] if model else []
        if device != "cpu":
            problems.append("--asr pocketsphinx runs on the CPU only")
        if importlib.util.find_spec("pocketsphinx") is None:
            problems.append("--asr pocketsphinx needs pocketsphinx: pip install 'soundmind-data[asr]'")
        return problems

    def transcribe(self, audio: np.ndarray, windows: Windows) -> list[str]:
        return [self._decode(audio[int(start * ASR_RATE):int(end * ASR_RATE)]) for start, end in windows]

    def _decode(self, audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis else ""


BACKEND = PocketsphinxASR
