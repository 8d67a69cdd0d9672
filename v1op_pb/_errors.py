"""The one error type of every conversion."""

from __future__ import annotations

import re

__all__ = ["ConversionError", "excerpt"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# How much of an input an error message quotes: enough to recognise it, little enough that
# an error about a huge input stays small (gRPC trailers hold a few KiB).
EXCERPT_CHARS = 64


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)``, bounded: a string or bytes longer than ``limit`` is cut, with its
    length said. repr escapes what is not printable (control characters, lone surrogates), so
    the result is always printable text that encodes as UTF-8."""
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        # repr of a huge int is slow, and refused past sys.get_int_max_str_digits().
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (str, bytes)) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value)} {unit})"
    text = repr(value)
    if len(text) > 4 * limit:
        return f"{text[: 4 * limit]}... ({len(text)} characters)"
    return text


def _escape_key(key: str) -> str:
    out = []
    for char in key:
        if char in '\\"':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:  # control characters, lone surrogates, ...: never raw in a message
            code = ord(char)
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _segment(key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"[{key}]"
    if not isinstance(key, str):  # a key of from_dict input that no JSON text could have
        return f"[{excerpt(key)}]"
    shown, rest = key[:EXCERPT_CHARS], len(key) - EXCERPT_CHARS
    cut = f"...({len(key)} characters)" if rest > 0 else ""
    if not cut and _IDENTIFIER.match(key):
        return f".{key}"
    # Keys that are not identifiers (map keys, Struct keys) use the bracket form of a JSON
    # path, so that the path stays unambiguous.
    return f'["{_escape_key(shown)}"{cut}]'


def format_path(segments: list[str | int]) -> str:
    return "$" + "".join(_segment(s) for s in segments)


class ConversionError(ValueError):
    """A value could not be converted.

    ``path`` is a JSON path such as ``$.error.details[1].reason`` naming where in the input
    the problem is; ``reason`` says what was expected. Raised by every conversion, and always
    with the original exception as ``__cause__`` when one exists.
    """

    def __init__(self, reason: str, segments: list[str | int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Innermost first while the error propagates outward; see prepend().
        self._reversed_segments: list[str | int] = list(reversed(segments or []))

    def prepend(self, segment: str | int) -> ConversionError:
        """Record one more enclosing path segment; converters call it while unwinding.

        Building the path on the way out costs nothing on the success path, where no path
        is ever formatted.
        """
        self._reversed_segments.append(segment)
        return self

    @property
    def segments(self) -> list[str | int]:
        return list(reversed(self._reversed_segments))

    @property
    def path(self) -> str:
        return format_path(self.segments)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    # Keep the path across pickling (multiprocessing, logging).
    def __reduce__(self) -> tuple[type[ConversionError], tuple[str, list[str | int]]]:
        return (ConversionError, (self.reason, self.segments))
