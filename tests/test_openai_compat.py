"""The OpenAI-compatible backend: an endpoint where no server answers (no connection, or nothing within the timeout)
is told in the same words by the preflight's probe and by a completion request (`openai_compat._unanswered`)."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest
from test_preflight import closed_port_endpoint

from soundmind_data.llm.base import LLMError
from soundmind_data.llm.openai_compat import OpenAICompatBackend, probe

TIMEOUT_S = 0.3


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that takes connections (the kernel's backlog) and never answers a request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize("case", ["refused", "silent"])
def test_the_probe_and_a_completion_say_alike_why_no_server_answered(case, request):
    endpoint = closed_port_endpoint() if case == "refused" else request.getfixturevalue("silent_endpoint")
    expected = {"refused": f"cannot reach the LLM endpoint {endpoint}: [Errno 111] Connection refused; is its server "
                           f"running?",
                "silent": f"the LLM endpoint {endpoint} does not answer within {TIMEOUT_S:g} s"}[case]
    assert probe(endpoint, timeout_s=TIMEOUT_S) == expected
    backend = OpenAICompatBackend(endpoint, "m", timeout_s=TIMEOUT_S, max_retries=0)
    with pytest.raises(LLMError) as caught:
        backend.complete("Is it entailed?", sample_index=0)
    assert str(caught.value) == f"{expected} (gave up after 1 tries)"
