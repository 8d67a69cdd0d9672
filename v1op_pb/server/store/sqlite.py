"""The SQLite engine of the Store: one file (or ``:memory:``), WAL, synchronous writes."""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Callable, Sequence

from ..._operation import Operation
from .base import Page, Query, StoredOperationMissing

__all__ = ["SQLiteStore"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    creator TEXT NOT NULL,
    done INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_creator
    ON operations (creator, deleted, done, seen, seq);
"""


class SQLiteStore:
    """Operations as their binary proto, with indexed columns for the lookups lists need.

    ``path`` is a file, or ``:memory:`` for tests. Writes are transactions, so a crash or a
    restart keeps every operation that a call reported as written.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        # One connection, used from one thread at a time (the lock keeps it so even when a
        # caller shares the store between threads).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def insert(self, operation: Operation) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO operations (name, creator, done, seen, deleted, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (operation.name, *_columns(operation)),
            )

    def get(self, name: str) -> Operation | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM operations WHERE name = ?", (name,)).fetchone()
        return Operation.FromString(row[0]) if row else None

    def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, Operation] = {}
        with self._lock:
            # SQLite limits bound parameters per statement; 500 stays well under it.
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT name, data FROM operations WHERE name IN ({marks})", chunk
                ).fetchall()
                found.update((name, Operation.FromString(data)) for name, data in rows)
        return found

    def list(self, query: Query) -> Page:
        where = ["1 = 1"]
        params: builtins.list[str | int] = []
        if query.creator is not None:
            where.append("creator = ?")
            params.append(query.creator)
        if query.done is not None:
            where.append("done = ?")
            params.append(int(query.done))
        if query.seen is not None:
            where.append("seen = ?")
            params.append(int(query.seen))
        if not query.include_deleted:
            where.append("deleted = 0")
        condition = " AND ".join(where)
        limit = query.limit if query.limit > 0 else -1
        with self._lock:
            (total,) = self._db.execute(
                f"SELECT COUNT(*) FROM operations WHERE {condition}", params
            ).fetchone()
            rows = self._db.execute(
                f"SELECT seq, data FROM operations WHERE {condition} AND seq > ? "
                "ORDER BY seq LIMIT ?",
                [*params, query.after, limit],
            ).fetchall()
        cursor = rows[-1][0] if rows else 0
        return Page([Operation.FromString(data) for _, data in rows], total, cursor)

    def modify(
        self, names: Sequence[str], change: Callable[[Operation], Operation]
    ) -> builtins.list[Operation]:
        updated = []
        with self._lock:
            # IMMEDIATE takes the write lock before the reads, so two processes sharing the
            # file cannot both read the old state and both write.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for name in names:
                    row = self._db.execute(
                        "SELECT data FROM operations WHERE name = ?", (name,)
                    ).fetchone()
                    if row is None:
                        raise StoredOperationMissing(name)
                    new = change(Operation.FromString(row[0]))
                    self._db.execute(
                        "UPDATE operations SET creator = ?, done = ?, seen = ?, deleted = ?, "
                        "data = ? WHERE name = ?",
                        (*_columns(new), name),
                    )
                    updated.append(new)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return updated

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _columns(operation: Operation) -> tuple[str, int, int, int, bytes]:
    return (
        operation.creator,
        int(operation.done),
        int(operation.HasField("seen_by_creator_time")),
        int(operation.HasField("delete_time")),
        operation.SerializeToString(deterministic=True),
    )
