"""verl's RLHFDataset for `soundmind-data export --format verl`: the question audio the export embeds, decoded.

verl expands each `<audio>` placeholder of a message into an audio part holding the next entry of the `audios`
column, and hands that entry to the model's processor unchanged; processors take waveforms, not files. The export
keeps the audio small (FLAC bytes, `{bytes, path}`), so this class decodes each entry to a mono float32 waveform at the
processor's sampling rate before verl builds the messages. Everything else is verl's own.

Use it with verl's custom dataset hook (verl 0.9.1; `pkg://` loads an installed module by name):

    data.custom_cls.path=pkg://soundmind_data.rl.verl_dataset data.custom_cls.name=SoundMindRLHFDataset

Importing this module needs verl installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from verl.utils.dataset.rl_dataset import RLHFDataset

from soundmind_data.rl.reward import load_audio, resampled

DEFAULT_RATE = 16_000  # Whisper-style audio encoders (Qwen2-Audio, Qwen2.5-Omni) hear 16 kHz


class SoundMindRLHFDataset(RLHFDataset):
    """RLHFDataset whose `audios` entries may be encoded audio (`{bytes, path}` or bytes), decoded on access."""

    def _build_messages(self, example: dict, key: str):
        audios = example.get(self.audio_key)
        if audios:
            example[self.audio_key] = [self._waveform(audio) for audio in audios]
        return super()._build_messages(example, key)

    def _waveform(self, audio: Any) -> Any:
        if isinstance(audio, dict) and audio.get("bytes"):
            audio = audio["bytes"]
        if not isinstance(audio, bytes):
            return audio  # already a waveform (or something verl handles itself)
        rate = getattr(getattr(self.processor, "feature_extractor", None), "sampling_rate", None) or DEFAULT_RATE
        samples, source_rate = load_audio(audio)
        return resampled(samples, source_rate, int(rate)).astype(np.float32)
