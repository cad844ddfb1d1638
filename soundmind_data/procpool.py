"""Stopping a process pool at once: what Ctrl-C and SIGTERM need from the synthesis and validation worker pools."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor


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
