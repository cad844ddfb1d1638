"""A canned OpenAI-compatible chat-completions server on 127.0.0.1, for tests, benchmarks and offline dry runs.

It answers `POST /v1/chat/completions` with whatever a `reply(prompt, n)` function returns (`n` counts the requests
seen for that prompt, from 1), so a test can script agreement, disagreement, malformed text, HTTP 429/500 or a hang
per prompt, and it counts every request, so a test can prove what a client did (or did not) re-send.

>>> with CannedServer(lambda prompt, n: "Answer: entailed.", latency_s=0.05) as server:
...     backend = OpenAICompatBackend(server.base_url, "canned")
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union


@dataclass
class CannedReply:
    """A scripted HTTP answer: a completion `content`, or an error `status`, or a raw `body` (malformed on purpose)."""

    content: str | None = None
    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Reply = Union[str, CannedReply]


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops connections when a benchmark opens 32 at once


class CannedServer:
    def __init__(self, reply: Callable[[str, int], Reply], *, latency_s: float = 0.0):
        """`latency_s` is added to every answer, as a model's generation time would be."""
        self.reply = reply
        self.latency_s = latency_s
        self.requests: Counter[str] = Counter()  # prompt -> requests received
        self.authorizations: set[str] = set()  # every Authorization header seen
        self._lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def __enter__(self) -> "CannedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _count(self, prompt: str, authorization: str | None) -> int:
        with self._lock:
            self.requests[prompt] += 1
            if authorization:
                self.authorizations.add(authorization)
            return self.requests[prompt]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": {"message": "not found"}}')
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = request["messages"][-1]["content"]
                reply = server.reply(prompt, server._count(prompt, self.headers.get("Authorization")))
                if isinstance(reply, str):
                    reply = CannedReply(content=reply)
                time.sleep(server.latency_s + reply.delay_s)
                body = reply.body
                if body is None and reply.status == 200:
                    body = json.dumps({
                        "id": "canned", "object": "chat.completion", "created": int(time.time()),
                        "model": request.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                                     "finish_reason": "stop"}],
                    }).encode()
                elif body is None:
                    body = json.dumps({"error": {"message": f"canned HTTP {reply.status}"}}).encode()
                self._send(reply.status, body, reply.headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left: expected
                    pass

            def log_message(self, format: str, *args) -> None:  # keep test and bench output clean
                pass

        return Handler
