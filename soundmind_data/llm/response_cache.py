"""The response cache: every completion appended to a JSONL file as it arrives, so that a run killed at any moment
resumes by sending only the requests that never finished. Keyed by everything that shapes a completion."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import orjson

from soundmind_data.core.jsonl import dumps
from soundmind_data.llm.base import LLMBackend


class ResponseCache:
    """Append-only JSONL of completions, one fsync'ed line per completion, indexed by key → (offset, length).

    Only the index lives in memory (about 100 bytes a completion); texts are read back from the file when needed.
    A line torn by a kill is skipped on reading, and a newline is added before appending after it.
    """

    def __init__(self, path: Path):
        self.path = path
        self._index: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._append = open(path, "ab")
        self._read_fd = os.open(path, os.O_RDONLY)
        offset = 0
        with open(path, "rb") as existing:
            for raw in existing:
                key = _cache_key_of(raw)
                if key:
                    self._index[key] = (offset, len(raw))
                offset += len(raw)
        if offset and not raw.endswith(b"\n"):
            self._append.write(b"\n")

    @staticmethod
    def key(backend: LLMBackend, prompt: str, sample_index: int) -> str:
        """Everything that shapes a completion: a change to any of it asks the model again."""
        material = json.dumps([backend.model, backend.temperature, backend.max_tokens, sample_index, prompt],
                              ensure_ascii=False)
        return hashlib.blake2b(material.encode("utf-8"), digest_size=16).hexdigest()

    def get(self, key: str) -> str | None:
        where = self._index.get(key)
        if where is None:
            return None
        return orjson.loads(os.pread(self._read_fd, where[1], where[0]))["text"]

    def put(self, key: str, text: str, *, model: str, sample_index: int) -> None:
        line = dumps({"key": key, "model": model, "sample": sample_index, "text": text})
        with self._lock:
            offset = self._append.tell()
            self._append.write(line)
            self._append.flush()
            os.fsync(self._append.fileno())
            self._index[key] = (offset, len(line))

    def close(self) -> None:
        self._append.close()
        os.close(self._read_fd)


def _cache_key_of(raw: bytes) -> str | None:
    """The key of a cache line, or None for a torn or foreign line (it is simply not a cached completion)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(record, dict) and isinstance(record.get("key"), str) and isinstance(record.get("text"), str):
        return record["key"]
    return None
