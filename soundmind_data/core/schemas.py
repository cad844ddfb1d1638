"""The JSON Schemas in `schemas/`: loading them and turning validation errors into file:line: field: message."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

_PACKAGED = Path(__file__).parent.parent / "schemas"  # where a wheel puts them
_SOURCE_TREE = Path(__file__).parent.parent.parent / "schemas"  # a checkout or editable install


def schema_dir() -> Path:
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A validator for `schemas/<name>.schema.json` (the schema itself is checked once, here)."""
    schema = json.loads((schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def field_path(error: ValidationError) -> str:
    """The JSON path of the offending field, as `source.line` or `(root)`; for a missing property, that property."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path = f"{path}.{missing}" if path else missing
    return path or "(root)"


def errors(name: str, record: object) -> list[ValidationError]:
    """All validation errors of `record`, in document order."""
    return sorted(validator(name).iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))


def first_error(name: str, record: object) -> str | None:
    """The most relevant error as "field: message", or None when `record` is valid."""
    error = best_match(validator(name).iter_errors(record))
    if error is None:
        return None
    return f"{field_path(error)}: {error.message}"
