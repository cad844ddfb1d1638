import os
import shutil
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


def find_chromium() -> str | None:
    """Debian's chromium (what `make test` installs where missing), or another Chromium on PATH."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.fixture(scope="module")
def chromium():
    """A real headless Chromium driven by Playwright (its own browsers are never downloaded: the system's runs).
    Per module, not per session: Playwright keeps an asyncio loop running in the process while the browser is up,
    and the tests that call asyncio.run() themselves (OpenRLHF's executor) must not share a worker with it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: pip install -e '.[dev]'")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no chromium on PATH: `make test` installs Debian's chromium package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium):
    """Open a local HTML file in a new page; the page's `problems` lists its console errors and uncaught exceptions
    (a file it could not load shows as a console error too)."""
    contexts = []

    def open_(path: Path):
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
        page.on("pageerror", lambda error: page.problems.append(f"uncaught: {error}"))
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_load_state("load")
        return page

    yield open_
    for context in contexts:
        context.close()
