"""Secrets out of messages and files: a server's error text may echo the API key it was sent, and an endpoint URL may
carry a password (`http://user:PASSWORD@host/v1`) or a token as its user name (`https://TOKEN@host`); none of them
may reach stderr, a log, a report or a card."""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote

MASK = "***"

# The password of a URL's user info, with or without the scheme: `user:PASSWORD@host`. It stops at the `@` and holds
# no space, quote or path character, so a match never reaches across words ("http://" cannot start one).
_URL_PASSWORD = re.compile(r":([^\s/?#@'\"]*)@")
# User info without a password, right after the scheme: `https://TOKEN@host` (a token often travels that way).
_URL_USER = re.compile(r"(?<=://)[^\s/?#@:'\"]+@")


def url_passwords(url: str) -> list[str]:
    """The password in `url`'s user info, as written and percent-decoded (urllib's own errors show the decoded host),
    for `redact`: once the URL is taken apart, an error may show the password with no `user:` and `@` around it."""
    passwords = [password for password in _URL_PASSWORD.findall(url) if password]
    return passwords + [unquote(password) for password in passwords]


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """`str(text)` with each of `secrets` (an API key, a password; empty ones are skipped) and the password of any URL
    in it (its user name, when it has no password) replaced by ***. Apply it before shortening a text: a cut can
    leave the start of a secret behind."""
    text = str(text)
    # Longest first: a key may contain a shorter secret, and masking that first would leave the rest of the key.
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_USER.sub(f"{MASK}@", _URL_PASSWORD.sub(f":{MASK}@", text))
