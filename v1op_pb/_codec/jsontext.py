"""JSON text to Python values and back, with the checks the proto3 JSON mapping needs.

Text is read by orjson. Where orjson's reading may differ from ``json.loads``'s (duplicate
keys, which both keep the last of; integers beyond 64 bits, which orjson turns into floats),
cheap checks on the text say so (see ``_may_differ``), and such text, and text orjson
refuses, is read again by ``json.loads`` with a hook that marks duplicate keys (so the
converter reports them with their path) and rejects NaN and Infinity. Errors come from that
exact reading, so they are the same whichever parser saw the text first.
"""

from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import Any

import orjson

from .._errors import ConversionError

PURE_PYTHON_VARIABLE = "V1OP_PB_PURE_PYTHON"
"""Set to 1 in the environment, the codec runs in pure Python: the native core is not used."""


def _load_native() -> ModuleType | None:
    try:
        return importlib.import_module("v1op_pb._codec._native")
    except ImportError:  # pragma: no cover - a build without the extension
        return None


_native = _load_native()
"""The native core of the codec (built from native/), or None if it is not built."""
PURE_PYTHON = os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")

MAX_DEPTH = 100
"""How deeply messages may nest, as in json_format: deeper input is a ConversionError."""


def too_deep() -> ConversionError:
    """The error for a message nested more than MAX_DEPTH levels, on input or output."""
    return ConversionError(f"messages nested more than {MAX_DEPTH} levels deep")


class DuplicateKeys(dict[str, Any]):
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
    if isinstance(data, (str, bytes)):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # read again below, for the error json.loads gives (or what orjson refuses)
        else:
            raw = data.encode("utf-8") if isinstance(data, str) else data
            if not _may_differ(raw, value):
                return value
    return exact_loads(data)


_DIGITS_ONLY = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_INT64_DIGITS = b"0" * 19


def _may_differ(data: bytes, value: Any) -> bool:
    """Whether orjson's ``value`` may not be what ``json.loads`` reads from ``data``.

    Two ways it can differ. orjson reads an integer beyond 64 bits as a float, losing
    digits; such an integer has 19 digits or more, so text without a run of 19 digits has
    none. And orjson, like json.loads, keeps the last of duplicate keys, where we must
    refuse them: every member of an object has one colon after its key, and the other colons
    of the text are in strings. orjson writes ``value`` back with the same strings,
    unescaped, so its colon count equals the text's unless a member was dropped (taking its
    colon and those in its strings with it). ``\\u003a`` is the one escape that makes a colon
    in a string without one in the text, so text with it is read the exact way.
    """
    if _INT64_DIGITS in data.translate(_DIGITS_ONLY) or b"\\u003" in data:
        return True
    try:
        return orjson.dumps(value).count(b":") != data.count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return True


def exact_loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse with ``json.loads``: duplicate keys marked, NaN and Infinity refused."""
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
        return orjson.dumps(value).decode()
    if indent == 2:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
