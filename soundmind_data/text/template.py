"""The SoundMind question template: render a triplet into the spoken user prompt, and parse one back.

Rendering reproduces the published SoundMind `user_content` byte for byte from the LogiQA 2.0 NLI triplet: each
field is stripped of surrounding whitespace and of one trailing full stop (the template adds its own `".`), while
question marks and inner spacing are kept as the source has them.
"""

from __future__ import annotations

import re

_HEAD = (
    "Let's figure out the logical connection between these premises and the conclusion. You have two choices, "
    "'entailed' means the conclusion must be true based on the given premises, or 'not-entailed' means the "
    "conclusion can't be true based on the premises.\n\nHere's the setup:\n"
)
_TAIL = "\n\nYour task is to decide is the conclusion 'entailed' or 'not-entailed' based on these premises"
_BODY = 'Major premise is "{major}".\nMinor premise is "{minor}".\nConclusion is "{conclusion}".'

_PARSE = re.compile(
    re.escape(_HEAD)
    + r'Major premise is "(?P<major>.*)"\.\nMinor premise is "(?P<minor>.*)"\.\nConclusion is "(?P<conclusion>.*)"\.'
    + re.escape(_TAIL)
    + r"\Z",
    re.DOTALL,
)


def clean_field(text: str) -> str:
    """A premise or conclusion as the template quotes it: trimmed, without one trailing full stop."""
    text = text.strip()
    return text[:-1] if text.endswith(".") else text


def join_major_premise(parts: list[str]) -> str:
    """LogiQA 2.0 NLI sometimes splits the major premise into sentences; rejoin them as one text.

    The parts are sentences whose full stops were cut off, so they are joined with ". "; empty parts are dropped and an
    empty list gives an empty premise.
    """
    return ". ".join(p for p in (clean_field(part) for part in parts) if p)


def render_question(major: str, minor: str, conclusion: str) -> str:
    return render_with_fields(major, minor, conclusion)[0]


def render_with_fields(major: str, minor: str, conclusion: str) -> tuple[str, tuple[str, str, str]]:
    """The rendered question and the (major, minor, conclusion) exactly as it quotes them."""
    fields = (clean_field(major), clean_field(minor), clean_field(conclusion))
    return render_clean(*fields), fields


def render_clean(major: str, minor: str, conclusion: str) -> str:
    """The question for fields already as the template quotes them (`clean_field`)."""
    return _HEAD + _BODY.format(major=major, minor=minor, conclusion=conclusion) + _TAIL


def parse_question(user_content: str) -> tuple[str, str, str] | None:
    """The (major, minor, conclusion) quoted in a SoundMind `user_content`, or None if it does not follow the template."""
    match = _PARSE.match(user_content)
    if not match:
        return None
    return match.group("major"), match.group("minor"), match.group("conclusion")
