import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and so
# would every process a test starts: the Ctrl-C tests would wait forever on a child that cannot be interrupted. The
# default handler here is reset to the default action in those children (exec keeps only an ignored signal ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def run_cli():
    """Run `python -m soundmind_data ARGS` as a real process; returns the CompletedProcess (text mode)."""

    def run(*args: object, check_rc: int | None = None, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
        proc = subprocess.run([sys.executable, "-m", "soundmind_data", *map(str, args)], capture_output=True,
                              text=True, cwd=kwargs.pop("cwd", ROOT), env=env, **kwargs)
        if check_rc is not None:
            assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    return run


@pytest.fixture
def one_torch_thread():
    """Two test workers share two cores; one torch thread each keeps them from fighting (and results bit-stable).
    Modules that train use it for every test: `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
