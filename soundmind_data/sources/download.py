"""The bounded, resumable HTTP download of one file of the table, checked before it is placed: `fetch_file`.

A download goes to a temp file in the output folder (`partials`) and is renamed into place only once complete and
checked, so a file in the folder is always a whole one. A download cut off (a dropped connection, Ctrl-C, a killed
process) leaves its temp behind; the next attempt, in this run or a later one, takes it over and asks only for the
rest (an HTTP Range request), provided it is still the same file upstream: the resume carries the validator (ETag or
Last-Modified) of the response the first part came from, kept in a temp beside the partial, and the total length
must not have changed; otherwise the file is downloaded again from the start. A complete file is not downloaded
again.

Bounds: a file may take `time_limit_s` (retries included; `--time-limit`, default 30 minutes) and have its size in
the table, or else its source's `max_size` (256 MiB, far above any real file of these sources). A file past either
fails; nothing of it is recorded. A slow one keeps what arrived for the next run, an oversized one is removed.

A file must have the sha256 the table pins, or else the one the lock file recorded (`catalog`), or it is removed and
fails. A user name and password in a URL (HF_ENDPOINT's) are sent as HTTP Basic auth and shown as *** wherever a URL
is shown or recorded. With HF_HUB_OFFLINE set, a Hub file already there is checked and one missing is an error.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Any

from soundmind_data import __version__
from soundmind_data.core.digests import file_digest
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.redact import redact
from soundmind_data.core.stage import Progress
from soundmind_data.sources.catalog import LOCK_NAME, README_HINT, Source, SourceFile
from soundmind_data.sources.partials import discard, read_state, state_path, take_over, write_state
from soundmind_data.sources.report import FetchedFile

BLOCK = 1 << 16
TIME_LIMIT_S = 1800.0  # seconds one file may take, retries included (--time-limit)


class _Interrupted(Exception):
    """The transfer stopped before the whole file arrived; what arrived is kept for the next attempt."""


class _Unreachable(Exception):
    """No connection to the host at all."""


class _TooBig(Exception):
    """The server announced, or sent, more bytes than the file may have."""


def offline_error(source: Source, folder: Path) -> DataError:
    """What a fetch that must download from the Hub says when HF_HUB_OFFLINE is set."""
    return DataError(f"{source.name}: HF_HUB_OFFLINE is set, so nothing is downloaded from the Hub: unset it, or "
                     f"download the files by hand into {folder} ({README_HINT})")


def _problem(file: SourceFile, size: int, sha256: str, expected: str | None) -> str | None:
    """Why a file of this size and digest is not the one wanted (None when it is)."""
    if file.size is not None and size != file.size:
        return f"{size} bytes, expected {file.size}"
    if expected is not None and sha256 != expected:
        return f"sha256 {sha256}, expected {expected}"
    return None


def fetch_file(source: Source, file: SourceFile, folder: Path, url: str, recorded: str | None, *, retries: int,
               retry_wait_s: float, read_timeout_s: float, time_limit_s: float, offline: bool,
               progress: Progress) -> FetchedFile:
    target = folder / file.name  # the name may hold folders: the Hub's layout (dataset/train/metadata.jsonl)
    expected = file.sha256 or recorded
    pin = "pinned" if file.sha256 else "recorded" if recorded else "first use"
    shown = redact(url)  # the URL as messages and the report show it: an HF_ENDPOINT's password is sent, never shown
    result = FetchedFile(source.name, file.name, target, shown, "present", pin=pin)
    if os.path.lexists(target):
        if not target.is_file():  # a folder, a FIFO, a device, a dangling link: never read it or rename over it
            raise UsageError(f"{target}: exists and is not a regular file; refusing to replace it")
        result.size, result.sha256 = target.stat().st_size, file_digest(target, "sha256")
        if problem := _problem(file, result.size, result.sha256, expected):
            result.status = "failed"
            result.error = f"already there, but {problem} ({pin}); delete it to download it again"
        return result
    if offline:
        raise offline_error(source, folder)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{target.parent}: cannot create it: {exc.strerror}") from None
    partial = take_over(target.parent, target.name)
    result.resumed_from = partial.stat().st_size
    if result.resumed_from:
        progress.note(f"{source.name}/{file.name}: resuming an interrupted download at byte {result.resumed_from:,}")
    limit = file.size if file.size is not None else source.max_size
    with _Deadline(time_limit_s) as deadline:
        attempt = 0
        while True:
            try:
                _download(url, partial, f"{source.name}/{file.name}", limit=limit, deadline=deadline,
                          read_timeout_s=read_timeout_s, progress=progress)
                break
            except (_Unreachable, _Interrupted) as exc:
                if deadline.expired:  # the deadline cut the connection: what arrived is still good to resume
                    result.status = "failed"
                    result.error = (f"{shown}: not complete after {time_limit_s:g} s (--time-limit); the "
                                    f"{partial.stat().st_size:,} bytes received are kept: run the same command "
                                    f"again to resume")
                    return result
                if isinstance(exc, _Unreachable):
                    if not partial.stat().st_size:
                        discard(partial)  # nothing to resume
                    host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
                    raise DataError(f"cannot reach {host}: {exc}; download the files by hand into {folder} "
                                    f"({README_HINT})") from None
                attempt += 1
                if attempt > retries:
                    raise DataError(f"{shown}: {exc} ({retries} resumed attempts failed too); the "
                                    f"{partial.stat().st_size:,} bytes received are kept: run the same command again "
                                    f"to resume, or download the files by hand into {folder} ({README_HINT})") from None
                progress.note(f"{source.name}/{file.name}: {exc}; resuming at byte {partial.stat().st_size:,} "
                              f"(attempt {attempt + 1} of {retries + 1})")
                time.sleep(min(retry_wait_s * attempt, deadline.left()))
            except _TooBig as exc:
                discard(partial)
                result.status, result.error = "failed", f"{shown}: {exc}; the download was removed"
                return result
            except urllib.error.HTTPError as exc:
                discard(partial)
                result.status, result.error = "failed", f"{shown}: HTTP {exc.code} {exc.reason}"
                return result

    result.size = partial.stat().st_size
    result.sha256 = file_digest(partial, "sha256")
    if problem := _problem(file, result.size, result.sha256, expected):
        discard(partial)
        result.status = "failed"
        result.error = (f"downloaded from {shown}, but {problem} ({pin}); the download was removed" +
                        ("; if upstream changed on purpose, delete its entry in "
                         f"{folder / LOCK_NAME} to accept the new file" if pin == "recorded" else ""))
        return result
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    state_path(partial).unlink(missing_ok=True)
    result.status = "downloaded"
    return result


# ---------------------------------------------------------------------------------------------------- the transfer
class _Deadline:
    """The time one file may take, retries included. The socket timeout bounds each wait for the server, not a
    transfer: a server sending a byte now and then, in the headers or in the body, would hold the fetch forever.
    When the time is up, every connection opened for the file is shut down, so whatever waits on one returns at
    once, and `expired` tells that apart from a dropped connection. (Connecting is bounded by the socket timeout.)"""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._twins: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for twin in self._twins:
                twin.close()
            self._twins.clear()

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies and redirects as usual) whose connections this deadline shuts down."""
        return urllib.request.build_opener(_HTTPHandler(self), _HTTPSHandler(self))

    def connection(self, base: type[http.client.HTTPConnection]) -> Any:
        """A factory of `base` connections that open their socket through `_connect`."""
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            connection = base(*args, **kwargs)
            connection._create_connection = self._connect  # type: ignore[attr-defined]  # http.client's socket hook
            return connection
        return make

    def _connect(self, *args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(*args, **kwargs)
        # A twin (dup) of the socket reaches the same connection even once TLS has wrapped, and detached, `sock`.
        twin = sock.dup()
        with self._lock:
            self._twins.append(twin)
            if self.expired:
                _shut(twin)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for twin in self._twins:
                _shut(twin)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already, at either end
        pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(http.client.HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(http.client.HTTPSConnection), req)


def _request(url: str, headers: dict[str, str]) -> urllib.request.Request:
    """A GET of `url`. A user name and password in it (an HF_ENDPOINT with credentials) go as HTTP Basic auth, as the
    Hub's own client sends them (urllib would take them for part of the host name), and, like urllib's Basic auth
    handler does, not along redirects: the Hub sends downloads on to a CDN."""
    parts = urllib.parse.urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=host)), headers=headers)
    if userinfo:
        pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    return request


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download(url: str, partial: Path, desc: str, *, limit: int, deadline: _Deadline, read_timeout_s: float,
              progress: Progress) -> None:
    """Append the rest of the file at `url` to `partial`, or write all of it again where a resume is not safe.

    A resume asks for the rest only if the file is still the one the partial began with: the Range request carries
    that response's validator (If-Range), a server that finds the file changed sends all of it (200), and the total
    length must be the one recorded then. A partial with no validator recorded is downloaded again from the start: a
    bare Range request could join the head of one version to the tail of another. More than `limit` bytes, announced
    or sent, raise _TooBig.
    """
    offset = partial.stat().st_size
    state = read_state(partial) if offset else None
    headers = {"User-Agent": f"soundmind-data/{__version__}", "Accept-Encoding": "identity"}
    if state:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = state["validator"]
    try:
        response = deadline.opener().open(_request(url, headers), timeout=read_timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and state:  # nothing left to send: the earlier attempt got it all, or too much
            match = re.fullmatch(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset and state["size"] in (None, offset):
                return
            partial.write_bytes(b"")
            raise _Interrupted("the server refused to resume; starting again") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise
    except urllib.error.URLError as exc:  # no connection: name resolution, refused, connect timeout, TLS
        reason = exc.reason
        raise _Unreachable(getattr(reason, "strerror", None) or str(reason)) from None
    except (HTTPException, OSError) as exc:  # connected, then dropped before the response came
        raise _Interrupted(f"connection lost ({exc or type(exc).__name__})") from None

    with response:
        total: int | None
        if state and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                partial.write_bytes(b"")
                raise _Interrupted("the server resumed at the wrong place; starting again")
            total = int(match.group(3)) if match.group(3) != "*" else None
            if None not in (total, state["size"]) and total != state["size"]:
                partial.write_bytes(b"")
                raise _Interrupted(f"the file is now {total:,} bytes, not {state['size']:,}: it changed upstream; "
                                   f"starting again")
            mode = "ab"
        else:  # 200: the whole file (the first request, a file changed upstream, a server that does not resume)
            if state:
                progress.note(f"{desc}: the server sends the whole file again (it changed upstream, or the server "
                              f"does not resume); starting again")
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if total is not None and total > limit:
            raise _TooBig(f"the server announces {total:,} bytes, more than the {limit:,} bytes this file may have")
        progress.start(desc, unit="byte", total=total)
        if offset:
            progress.advance(offset)
        received = offset
        with open(partial, mode) as handle:
            if mode == "wb":  # once the partial is empty: a state never describes the bytes of another version
                write_state(partial, response.headers, total)
            try:
                while block := response.read(BLOCK):
                    if received + len(block) > limit:
                        raise _TooBig(f"the server sent more than the {limit:,} bytes this file may have")
                    handle.write(block)
                    received += len(block)
                    progress.advance(len(block))
            except (HTTPException, OSError) as exc:
                handle.flush()
                raise _Interrupted(f"connection lost after {received:,} bytes ({exc or type(exc).__name__})") from None
        if deadline.expired:  # cut off by the deadline, which a body without a length would not show otherwise
            raise _Interrupted(f"time limit reached after {received:,} bytes")
        if total is not None and received < total:
            raise _Interrupted(f"connection closed after {received:,} of {total:,} bytes")
