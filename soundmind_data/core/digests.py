"""File digests computed once per file version: a stage checks a model's checksum before it trusts it (and forked
workers inherit the result instead of hashing tens of megabytes each), the pipeline hashes a stage's output to check
it and again as the next stage's input, a download is checked against its pin."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file ("md5", "sha256"), memoised by path, size and modification time."""
    stat = path.stat()
    return _digest_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns, algorithm)


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, size: int, mtime_ns: int, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
