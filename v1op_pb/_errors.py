"""The one error type of every conversion."""

from __future__ import annotations

import re

__all__ = ["ConversionError"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _segment(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if _IDENTIFIER.match(key):
        return f".{key}"
    # Keys that are not identifiers (map keys, Struct keys) use the bracket form of a JSON
    # path, so that the path stays unambiguous.
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{escaped}"]'


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
