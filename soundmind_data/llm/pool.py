"""Threads that send a backend's requests concurrently."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable


class DaemonPool:
    """A fixed pool of daemon worker threads. Unlike ThreadPoolExecutor's, they do not keep a Ctrl-C'ed process alive
    until every request in flight has finished or timed out; those requests are simply sent again by the next run."""

    def __init__(self, workers: int):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = workers
        for number in range(workers):
            threading.Thread(target=self._work, name=f"llm-{number}", daemon=True).start()

    def submit(self, function: Callable, *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, function, args))
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, function, args = task
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Let the workers end once the tasks already queued are done (they return at once when the run is stopping)."""
        for _ in range(self._workers):
            self._tasks.put(None)
