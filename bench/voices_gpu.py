"""Kokoro on CPU and on CUDA: the same items synthesised by `synthesize --voices kokoro:jf_alpha` with --device cpu and
--device cuda, the speed ratio, and whether the audio matches within tolerance.

The CPU half runs everywhere; the CUDA half needs a GPU and onnxruntime-gpu (`pip install 'soundmind-data[gpu]'`),
and where either is missing the script says so plainly and stops after the CPU half. "Matches" compares each pair
of files decoded: the same duration within 2 %, and a log-mel spectrogram distance below 1.5 dB on average (CUDA's
kernels do not round like the CPU's, so samples are not bit-identical). Each device's cache is its own folder, so
nothing is shared between the halves.

Usage: python bench/voices_gpu.py [--items 50] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from synth import bench_manifest  # noqa: E402

VOICE = "kokoro:jf_alpha"
DURATION_TOLERANCE = 0.02
SPECTRAL_TOLERANCE_DB = 1.5


def synthesize(manifest: Path, out: Path, device: str, workers: int) -> tuple[float, str, int]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "soundmind_data", "synthesize", str(manifest), "--out", str(out),
                           "--voices", VOICE, "--device", device, "--workers", str(workers)],
                          cwd=ROOT, capture_output=True, text=True)
    return time.monotonic() - started, done.stderr.strip(), done.returncode


def log_mel(path: Path) -> np.ndarray:
    import soundfile
    from scipy.signal import stft

    audio, rate = soundfile.read(path, dtype="float32")
    _, _, spectrum = stft(audio, rate, nperseg=400, noverlap=240)
    return 10 * np.log10(np.abs(spectrum) ** 2 + 1e-10)


def compare(cpu_dir: Path, gpu_dir: Path) -> tuple[int, int, float]:
    """(files compared, files that match, mean spectral distance in dB)."""
    cpu = {r["id"]: r for r in map(json.loads, (cpu_dir / "manifest.jsonl").open())}
    matched, distances = 0, []
    pairs = [(record[f]["path"], cpu[record["id"]][f]) for record in map(json.loads, (gpu_dir / "manifest.jsonl").open())
             for f in ("question_audio", "answer_audio") if record.get(f)]
    for gpu_path, cpu_audio in pairs:
        a, b = log_mel(cpu_dir / cpu_audio["path"]), log_mel(gpu_dir / gpu_path)
        frames = min(a.shape[1], b.shape[1])
        distance = float(np.mean(np.abs(a[:, :frames] - b[:, :frames])))
        distances.append(distance)
        same_length = abs(a.shape[1] - b.shape[1]) <= DURATION_TOLERANCE * max(a.shape[1], 1)
        matched += same_length and distance <= SPECTRAL_TOLERANCE_DB
    return len(pairs), matched, float(np.mean(distances)) if distances else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50, help="Items with distinct questions (default 50).")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes on each device (default 1).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-voices-gpu-") as tmp:
        folder = Path(tmp)
        manifest = bench_manifest(None, args.items, folder)
        cpu_wall, message, rc = synthesize(manifest, folder / "cpu", "cpu", args.workers)
        if rc != 0:
            sys.exit(f"the CPU run failed: {message}")
        audio_s = sum(r[f]["duration_s"] for r in map(json.loads, (folder / "cpu" / "manifest.jsonl").open())
                      for f in ("question_audio", "answer_audio") if r.get(f))
        print(f"cpu:  {audio_s:.1f} s of audio in {cpu_wall:.1f} s ({audio_s / cpu_wall:.2f} audio s / s), "
              f"{args.workers} worker(s)")
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            print("cuda: no GPU run: onnxruntime has no CUDA provider here (no GPU, or onnxruntime-gpu missing: "
                  "pip install 'soundmind-data[gpu]'); only the CPU half ran")
            return
        gpu_wall, message, rc = synthesize(manifest, folder / "cuda", "cuda", args.workers)
        if rc != 0:
            print(f"cuda: the CUDA run failed: {message}")
            return
        files, matched, distance = compare(folder / "cpu", folder / "cuda")
        print(f"cuda: {audio_s:.1f} s of audio in {gpu_wall:.1f} s ({audio_s / gpu_wall:.2f} audio s / s): "
              f"{cpu_wall / gpu_wall:.2f}x the CPU")
        print(f"match: {matched}/{files} files within tolerance (duration within {DURATION_TOLERANCE:.0%}, "
              f"mean log-spectral distance {distance:.2f} dB, limit {SPECTRAL_TOLERANCE_DB} dB)")


if __name__ == "__main__":
    main()
