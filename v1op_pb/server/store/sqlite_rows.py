"""How the SQLite writer reads and writes a batch's rows in a few statements.

The writer thread shares the GIL with the event loop, and Python's sqlite3 lets the GIL go
around every step of a statement: under load each step makes the writer wait for the loop
to give the GIL back, and that is most of how long a commit takes. Batches of 8 updates
(16 clients) that read their rows a step each and wrote them a statement each held the write
lock 2.7 ms on average, where their SQL and fsync alone take 0.3 ms; as below, 1.6 ms. So a
batch writes all its changed rows in one UPDATE and its new rows in one INSERT, and reads,
in the write transaction, only the rows this writer did not write itself: ``WrittenRows``
remembers what it wrote for as long as no other connection has committed (``PRAGMA
data_version`` says so, under the write lock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from .base import Row

__all__ = ["CHUNK", "WRITTEN_ROWS", "WrittenRows", "read_rows", "write_rows"]

# How many rows a writer remembers, the most recently written kept: an operation's
# successive updates (its progress) are what repeats.
WRITTEN_ROWS = 4096
# SQLite limits bound parameters per statement (32,766): at ten a row, this stays under it.
CHUNK = 500

_COLUMNS = "name, data, creator, done, seen, deleted, create_ns, finish_ns, delete_ns, state"
_ROW = "(" + ",".join("?" * 10) + ")"
# finish_ns keeps the time of the write that finished the operation.
_SET_FROM_VALUES = (
    "data = v.column2, creator = v.column3, done = v.column4, seen = v.column5, "
    "deleted = v.column6, create_ns = v.column7, "
    "finish_ns = COALESCE(operations.finish_ns, v.column8), delete_ns = v.column9, "
    "state = v.column10"
)


def read_rows(db: sqlite3.Connection, names: Sequence[str]) -> dict[str, bytes]:
    """The stored bytes of each named operation that is stored."""
    found: dict[str, bytes] = {}
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(
            db.execute(f"SELECT name, data FROM operations WHERE name IN ({marks})", chunk)
        )
    return found


def write_rows(db: sqlite3.Connection, inserted: Sequence[Row], changed: Sequence[Row]) -> None:
    """Insert the new rows and update the changed ones, a statement for each CHUNK."""
    for start in range(0, len(inserted), CHUNK):
        chunk = inserted[start : start + CHUNK]
        db.execute(
            f"INSERT INTO operations ({_COLUMNS}) VALUES {','.join([_ROW] * len(chunk))}",
            [value for row in chunk for value in row],
        )
    for start in range(0, len(changed), CHUNK):
        chunk = changed[start : start + CHUNK]
        db.execute(
            f"UPDATE operations SET {_SET_FROM_VALUES} "
            f"FROM (VALUES {','.join([_ROW] * len(chunk))}) AS v "
            "WHERE operations.name = v.column1",
            [value for row in chunk for value in row],
        )


class WrittenRows:
    """The rows one connection has read or written inside its write transactions, while no
    other connection has committed. Used by one thread at a time (the writer's)."""

    def __init__(self, capacity: int = WRITTEN_ROWS) -> None:
        self._capacity = capacity
        self._rows: dict[str, bytes] = {}
        self._version: int | None = None

    def read(self, db: sqlite3.Connection, names: Sequence[str]) -> dict[str, bytes]:
        """The stored bytes of the named operations, inside a write transaction of ``db``:
        from memory if no other connection has committed since they were written, else
        read."""
        # data_version moves with every commit of another connection, not with this one's.
        ((version,),) = db.execute("PRAGMA data_version").fetchall()
        if version != self._version:
            self._rows.clear()
            self._version = version
        found: dict[str, bytes] = {}
        missing = []
        for name in names:
            data = self._rows.get(name)
            if data is None:
                missing.append(name)
            else:
                found[name] = data
        if missing:
            read = read_rows(db, missing)
            self._remember(read)
            found.update(read)
        return found

    def committed(self, rows: Mapping[str, bytes]) -> None:
        """What this connection's commit wrote: the stored bytes by name."""
        self._remember(rows)

    def forget(self) -> None:
        """After a failed commit, or a change this connection made outside the writer: what
        is stored is no longer known."""
        self._rows.clear()
        self._version = None

    def _remember(self, rows: Mapping[str, bytes]) -> None:
        remembered = self._rows
        for name, data in rows.items():
            remembered.pop(name, None)  # to the end: the most recent go last
            remembered[name] = data
        while len(remembered) > self._capacity:
            del remembered[next(iter(remembered))]
