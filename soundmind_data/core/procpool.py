"""Worker pools that stop at once, and never outlive their parent: what Ctrl-C, SIGTERM and kill -9 need from the
synthesis, validation and curation worker pools."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

OWNER_POLL_S = 0.5  # how often a worker that the kernel does not watch for us looks for its owner
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_signals() -> None:
    """A pool worker's signal handling, set first thing in its initializer (it runs in the worker, so it holds for
    forked and spawned workers alike).

    Ctrl-C goes to the whole process group; it is the parent's to handle, and it stops the workers itself. SIGTERM
    must kill a worker on the spot: a forked worker inherits the CLI's handler, which turns SIGTERM into a
    KeyboardInterrupt that the pool would report as the item's result before starting the next item. And the worker
    dies with the process that made its pool (see `_die_with_parent`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()


def _die_with_parent() -> None:
    """End this worker when the process that made its pool (the owner) dies, kill -9 included.

    Nothing else would: a worker holds both ends of the pool's pipes, so with the owner gone it waits for its next
    task forever. Where the owner is this worker's parent (fork and spawn pools) Linux's kernel kills the worker
    (PR_SET_PDEATHSIG). Otherwise a thread watches the owner: on systems without prctl; in a pool of Python 3.14's
    default start method on Linux, forkserver, whose workers are children of a fork server that outlives the owner
    (its workers keep it alive); and where the owner died before this worker got here.
    """
    owner = multiprocessing.parent_process().pid  # recorded before the fork: right even if the owner is gone now
    parent = os.getppid()
    # The second look at the parent covers an owner that died just before the kernel was asked.
    if parent == owner and _parent_death_signal() and os.getppid() == owner:
        return
    threading.Thread(target=_watch_owner, args=(owner, parent), name="watch-owner", daemon=True).start()


def _parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies. The kernel sends it when the *thread* that started
    the process ends, so a pool must be started by a thread that lives as long as the pool (ours: the main thread).
    False on systems without prctl."""
    if sys.platform != "linux":
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0


def _watch_owner(owner: int, parent: int) -> None:
    # A process's parent changes only when the parent dies; the owner's pid disappears once its own parent has
    # collected its exit status.
    while os.getppid() == parent and _exists(owner):
        time.sleep(OWNER_POLL_S)
    os._exit(1)  # not sys.exit: exit handlers would wait on the pool's queues, which no one reads any more


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or its pid reused by another user's process
        return False
    return True


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
