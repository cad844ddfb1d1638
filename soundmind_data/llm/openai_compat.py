"""Any OpenAI-compatible chat-completions endpoint: vLLM, SGLang, llama.cpp's server, or a hosted provider.

Plain `urllib` keeps the backend dependency-free; each call is one blocking request, and the reason stage runs many
of them at once from a thread pool. Transient failures (HTTP 429 and 5xx, timeouts, dropped connections) are retried
with exponential backoff and jitter, honouring the server's Retry-After; anything else fails the request at once.
The API key is sent in a header; it and any password in the endpoint URL are redacted from everything the server
sends back and from every error message, since a server or proxy may echo the request it got.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from soundmind_data.core.errors import UsageError
from soundmind_data.core.redact import redact, url_passwords
from soundmind_data.llm.base import LLMError, LLMSettings

PROBE_TIMEOUT_S = 3.0  # a server that is up lists its models in milliseconds, however busy its GPUs are
RETRY_AFTER_CAP_S = 60.0  # longer Retry-After hints are cut short, so one stuck item cannot stall a worker for hours
BACKOFF_CAP_S = 30.0


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAICompatBackend:
    name = "openai"

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        timeout_s: float = 300.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
    ):
        """`endpoint` is the OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (the path /chat/completions is added).

        `timeout_s` bounds each wait for the server (connecting, or silence while reading); `max_retries` is how many
        times one completion is re-sent after transient failures; `backoff_s` is the first wait, doubled each time.
        """
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self._secrets = (api_key, *url_passwords(endpoint))
        self._shown_url = self._redact(self.url)  # the URL as messages show it
        self._shown_endpoint = self._redact(endpoint)  # the endpoint, as the preflight's probe names it
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._retry_lock = threading.Lock()
        self.retries = 0

    @classmethod
    def open(cls, settings: LLMSettings) -> OpenAICompatBackend:
        """The backend for `settings`, with the key in OPENAI_API_KEY (never on a command line)."""
        return cls(_checked_endpoint(settings), settings.model, api_key=os.environ.get("OPENAI_API_KEY"),
                   temperature=settings.temperature, max_tokens=settings.max_tokens, timeout_s=settings.timeout_s,
                   max_retries=settings.max_retries)

    @staticmethod
    def problems(settings: LLMSettings) -> list[str]:
        """An endpoint that does not answer one GET (`probe`)."""
        problem = probe(_checked_endpoint(settings), api_key=os.environ.get("OPENAI_API_KEY"))
        return [problem] if problem else []

    def complete(self, prompt: str, *, sample_index: int) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "n": 1,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        data = json.dumps(body).encode("utf-8")
        attempt = 0
        while True:
            try:
                return self._post(data)
            except _Transient as exc:
                if attempt == self.max_retries:
                    raise LLMError(f"{exc} (gave up after {self.max_retries + 1} tries)") from None
                wait = self._delay(attempt, exc.retry_after)
            attempt += 1
            with self._retry_lock:
                self.retries += 1
            time.sleep(wait)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP_S)
        # Jitter (50 to 100 % of the delay): threads retrying after one outage must not hit the server in lockstep.
        return min(self.backoff_s * 2**attempt, BACKOFF_CAP_S) * (0.5 + random.random() / 2)

    def _post(self, data: bytes) -> str:
        request = urllib.request.Request(self.url, data=data, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = self._error_detail(exc)
            if status == 429 or status >= 500:
                raise _Transient(f"HTTP {status}{detail}", _retry_after(exc.headers.get("Retry-After"))) from None
            hint = " (check OPENAI_API_KEY)" if status in (401, 403) else ""
            raise LLMError(f"HTTP {status}{detail}{hint}") from None
        # No answer in time, no connection, or one reset, closed mid-response or not speaking HTTP (its text is the
        # server's, so it is redacted too).
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(_unanswered(exc, self._shown_endpoint, self.timeout_s, self._secrets)
                             or f"connection to {self._shown_url} failed: {self._redact(repr(exc))}") from None
        except ValueError as exc:  # a URL urllib cannot use (bad port, stray characters); its text quotes the URL
            raise LLMError(f"bad endpoint URL {self._shown_url}: {self._redact(exc)}") from None
        return self._completion_text(raw)

    def _redact(self, text: object) -> str:
        """`text` safe to show: without the key or the endpoint's password, wherever the server or urllib put them."""
        return redact(text, self._secrets)

    def _completion_text(self, raw: bytes) -> str:
        """The message text of a chat-completions response; a body that is not one is a failed request."""
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            body = self._redact(raw.decode("utf-8", errors="replace"))
            raise LLMError(f"malformed response (not a chat completion): {body[:120]!r}") from None
        if content is not None and not isinstance(content, str):
            raise LLMError(f"malformed response: message content is {type(content).__name__}, expected a string")
        # A null content (e.g. everything went to a reasoning field) decides nothing. The text is redacted too: it is
        # cached and may become an item's answer, and an echoing proxy can put the key anywhere in a reply.
        return self._redact(content or "")

    def _error_detail(self, exc: urllib.error.HTTPError) -> str:
        """The server's own error message, shortened: what a user needs to fix a bad model name or request."""
        try:
            payload = json.loads(exc.read() or b"null")
            message = payload["error"]["message"] if isinstance(payload.get("error"), dict) else payload.get("error")
        except (ValueError, AttributeError, KeyError, TypeError, OSError):
            message = None
        return f": {self._redact(message)[:200]}" if message else ""

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""


def _checked_endpoint(settings: LLMSettings) -> str:
    """The endpoint `settings` name (from OPENAI_BASE_URL when none is given), once the settings only this backend
    uses are checked, each bad one a UsageError naming its option."""
    endpoint = settings.endpoint or os.environ.get("OPENAI_BASE_URL")
    if not endpoint:
        raise UsageError("--endpoint is required with --backend openai (or set OPENAI_BASE_URL)")
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint {redact(endpoint)!r}: expected an http:// or https:// base URL, "
                         "e.g. http://127.0.0.1:8000/v1")
    if settings.timeout_s <= 0:
        raise UsageError(f"--timeout {settings.timeout_s:g}: must be more than 0")
    if settings.max_retries < 0:
        raise UsageError(f"--retries {settings.max_retries}: must be 0 or more")
    return endpoint


def probe(endpoint: str, *, api_key: str | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a server answers at `endpoint`, else why not, in one line without the key or the URL's password.

    One GET of `endpoint/models` (the OpenAI list of models), never retried: the stage's retries are for a server
    that is up but busy or briefly failing, and a server nobody answers at (connection refused, no such host, no
    answer within `timeout_s`) would only make them a slow way to say so. Any HTTP answer will do (a server that has
    no /models still serves completions) but 401 and 403: a key it refuses fails every request."""
    secrets = (api_key, *url_passwords(endpoint))
    url = endpoint.rstrip("/") + "/models"
    shown = redact(endpoint, secrets)
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s):
            return None
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"the LLM endpoint {shown} answers HTTP {exc.code} (check OPENAI_API_KEY)" if exc.code in (401, 403) \
            else None
    except (ValueError, http.client.InvalidURL) as exc:  # a URL urllib cannot use (a bad port, a user:password@)
        return f"bad LLM endpoint URL {shown}: {redact(exc, secrets)}"  # its text quotes the URL
    except (OSError, http.client.HTTPException) as exc:  # None: something answered, if not well (the stage retries)
        return _unanswered(exc, shown, timeout_s, secrets)


def _unanswered(exc: OSError | http.client.HTTPException, shown: str, timeout_s: float,
                secrets: tuple[str | None, ...]) -> str | None:
    """Why no server answered a request to the LLM endpoint `shown`, in one line without `secrets`: nothing within
    `timeout_s` (connecting or reading), or no connection at all (refused, no such host, TLS). None when a connection
    was made and then broke down (reset, closed mid-response, not HTTP): a server is there."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc  # urllib wraps a failed connect
    if isinstance(reason, TimeoutError):
        return f"the LLM endpoint {shown} does not answer within {timeout_s:g} s"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the LLM endpoint {shown}: {redact(reason, secrets)}; is its server running?"
    return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # the HTTP-date form is rare from API servers; fall back to our own backoff
        return None


BACKEND = OpenAICompatBackend
