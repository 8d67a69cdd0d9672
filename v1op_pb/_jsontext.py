"""JSON text to Python values and back, with the checks the proto3 JSON mapping needs.

``json.loads`` keeps the last of duplicate keys and reads NaN and Infinity, which are not
JSON; here duplicate keys are marked so the converter reports them with their path, and the
non-JSON constants are rejected.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import ConversionError

MAX_DEPTH = 100
"""How deeply messages may nest, as in json_format: deeper input is a ConversionError."""


class DuplicateKeys(dict):
    """An object in which a key appeared more than once; ``duplicate`` is the first such."""

    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        marked = DuplicateKeys(result)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.duplicate = key
                break
            seen.add(key)
        return marked
    return result


def _reject_constant(name: str) -> Any:
    raise ConversionError(f'{name} is not JSON; a number field takes it as the string "{name}"')


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text (str, or UTF-8 bytes) into Python values."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConversionError(f"input is not UTF-8: invalid byte at offset {e.start}") from e
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError(f"expected JSON text as str or bytes, got {type(data).__name__}")
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ConversionError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise ConversionError(f"JSON nested more than {MAX_DEPTH} levels deep") from e
    except ValueError as e:  # e.g. an integer literal longer than Python's digit limit
        if isinstance(e, ConversionError):
            raise
        raise ConversionError(f"not valid JSON: {e}") from e


def dumps(value: Any, indent: int | None = None) -> str:
    """Compact JSON (or indented), non-ASCII kept as is."""
    if indent is None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
