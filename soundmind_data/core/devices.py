"""Whether `--device cuda` can run here, asked before any stage starts.

The driver is asked through NVML (libnvidia-ml, which every NVIDIA driver installs) rather than through torch,
CTranslate2 or onnxruntime: each of those initialises CUDA in the asking process, and a process that has done so
cannot hand CUDA on to the worker processes it forks later (synthesis forks its workers after the pipeline's checks);
NVML does not. It also answers the same whichever engine is installed (the pinned torch is a CPU build, so torch would
say no to a machine whose onnxruntime-gpu runs fine).
"""

from __future__ import annotations

import ctypes
import os

from soundmind_data.core.errors import UsageError

DEVICES = ("cpu", "cuda")  # where synthesis and the ASR judge run


def check_device(device: str) -> None:
    """A UsageError naming `--device` unless it is one of DEVICES (whether cuda can run here is `cuda_problem`)."""
    if device not in DEVICES:
        raise UsageError(f"--device {device!r}: choose {' or '.join(DEVICES)}")


def cuda_problem() -> str | None:
    """None when the driver sees a GPU this process may use, else why not (one line)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"no GPU is visible (CUDA_VISIBLE_DEVICES={visible!r})"
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return "no NVIDIA driver on this machine (libnvidia-ml.so.1 not found)"
    if nvml.nvmlInit_v2() != 0:
        return "the NVIDIA driver does not answer (nvmlInit failed)"
    try:
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or count.value == 0:
            return "the NVIDIA driver sees no GPU"
    finally:
        nvml.nvmlShutdown()
    return None
