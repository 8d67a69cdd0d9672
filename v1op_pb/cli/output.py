"""How the client commands print: JSON (one message), NDJSON (one operation a line), a
table for people, and the progress bar ``v1op wait`` draws on a terminal."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from typing import TextIO

from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from .._operation import Operation

__all__ = ["OUTPUTS", "ProgressBar", "operation_state", "operations_table", "table"]

OUTPUTS = ("json", "table", "name")
_BAR_WIDTH = 30
_FALLBACK_COLUMNS = 80


def operation_state(operation: Operation) -> str:
    """running, succeeded, failed (with its code's name), or deleted."""
    if operation.HasField("delete_time"):
        return "deleted"
    if not operation.done:
        return "running"
    if operation.WhichOneof("result") == "error":
        code = operation.error.code
        name = code_pb2.Code.Name(code) if code in code_pb2.Code.values() else str(code)
        return f"failed ({name})"
    return "succeeded"


def _time(stamp: timestamp_pb2.Timestamp, present: bool) -> str:
    if not present:
        return "-"
    moment = stamp.ToDatetime(tzinfo=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, the last one left as it is."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def operations_table(operations: Sequence[Operation], *, header: bool = True) -> str:
    rows = [
        [
            op.name,
            operation_state(op),
            op.creator or "-",
            _time(op.create_time, op.HasField("create_time")),
            _time(op.update_time, op.HasField("update_time")),
        ]
        for op in operations
    ]
    text = table(["NAME", "STATE", "CREATOR", "CREATED", "UPDATED"], rows)
    return text if header else text.split("\n", 1)[1]


class ProgressBar:
    """One line on a terminal, redrawn in place: the percent the server computes from the
    operation's metadata, a bar, and its progress message."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._drawn = False

    def update(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        line = f"{fraction:4.0%} [{bar}] {message}".rstrip()
        try:
            width = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError):
            width = 0
        width = width or _FALLBACK_COLUMNS  # a terminal that does not say (0 columns)
        # \r and clear-to-end-of-line: the next draw replaces this one.
        self._stream.write("\r" + line[: max(width - 1, 1)] + "\x1b[K")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """End the line, so what is printed next starts on its own."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
