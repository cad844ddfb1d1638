"""Worker pools that stop at once: what Ctrl-C and SIGTERM need from the synthesis and validation worker pools."""

from __future__ import annotations

import signal
from concurrent.futures import ProcessPoolExecutor


def worker_signals() -> None:
    """A pool worker's signal handling, set first thing in its initializer.

    Ctrl-C goes to the whole process group; it is the parent's to handle, and it stops the workers itself. SIGTERM
    must kill a worker on the spot: a forked worker inherits the CLI's handler, which turns SIGTERM into a
    KeyboardInterrupt that the pool would report as the item's result before starting the next item.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_now(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued items and terminate the workers, abandoning the items in progress.

    `shutdown(wait=False)` alone lets every running item finish before the interpreter can exit, which for a long
    answer means minutes after Ctrl-C. Workers write their outputs atomically, so an abandoned item leaves nothing
    that looks finished, and the next run redoes it.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
