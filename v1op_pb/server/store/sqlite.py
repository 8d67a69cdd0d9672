"""The SQLite engine of the Store: one file (or ``:memory:``), WAL, synchronous writes.

Several processes on one machine may share the file (``v1op serve --workers``): BEGIN
IMMEDIATE keeps their writes apart, and each learns of the others' commits by reading the
file's change counter (``PRAGMA data_version``, a read of the WAL index in shared memory,
not of the table) every WATCH_SECONDS while it has waits: a finish in one process wakes the
waits of another within that bound plus one read.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

from ..._operation import Operation
from .base import (
    SCHEMA_VERSION,
    OnChange,
    Page,
    Query,
    SchemaTooNew,
    StoredOperationExists,
    StoredOperationMissing,
    StoreUnavailable,
)

__all__ = ["WATCH_SECONDS", "SQLiteStore"]

WATCH_SECONDS = 0.05
# How long a write waits for another process's write lock before the call is UNAVAILABLE.
BUSY_SECONDS = 10.0


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

    def __init__(self, path: str, *, busy_seconds: float = BUSY_SECONDS) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._watchers: list[OnChange] = []
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        try:
            # One connection, used from one thread at a time (the lock keeps it so even when
            # a caller shares the store between threads).
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_seconds
            )
            with self._lock:
                if path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._create_schema()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {e}") from e

    def _create_schema(self) -> None:
        # The version lives in the file header (user_version); files from before it was
        # kept say 0 and have the version 1 layout.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"SQLite database {self.path} has schema version {version}; this server "
                    f"knows up to {SCHEMA_VERSION}: run a newer v1op"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def insert(self, operation: Operation) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO operations (name, creator, done, seen, deleted, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (operation.name, *_columns(operation)),
                )
            except sqlite3.IntegrityError as e:
                raise StoredOperationExists(operation.name) from e
            except sqlite3.OperationalError as e:
                raise StoreUnavailable(f"SQLite database {self.path}: {e}") from e

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
        self,
        names: Sequence[str],
        change: Callable[[Operation, int], Operation],
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> builtins.list[Operation]:
        updated = []
        with self._lock:
            # IMMEDIATE takes the write lock before the reads, so two processes sharing the
            # file cannot both read the old state and both write.
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:  # another process held the lock too long
                raise StoreUnavailable(f"SQLite database {self.path}: {e}") from e
            try:
                # Read under the write lock: writes commit in the order of their times.
                now = clock()
                for name in names:
                    row = self._db.execute(
                        "SELECT data FROM operations WHERE name = ?", (name,)
                    ).fetchone()
                    if row is None:
                        raise StoredOperationMissing(name)
                    new = change(Operation.FromString(row[0]), now)
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

    def watch(self, on_change: OnChange) -> Callable[[], None]:
        if self.path == ":memory:":
            return lambda: None  # no other process can open it
        with self._lock:
            self._watchers.append(on_change)
            if self._watch_thread is None:
                self._watch_thread = threading.Thread(
                    target=self._watch, name="v1op-sqlite-watch", daemon=True
                )
                self._watch_thread.start()

        def stop() -> None:
            with self._lock:
                if on_change in self._watchers:
                    self._watchers.remove(on_change)

        return stop

    def _watch(self) -> None:
        # Its own connection: data_version changes when any other connection commits.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            ((seen,),) = db.execute("PRAGMA data_version").fetchall()
            while not self._watch_stop.wait(WATCH_SECONDS):
                ((version,),) = db.execute("PRAGMA data_version").fetchall()
                if version == seen:
                    continue
                seen = version
                with self._lock:
                    watchers = list(self._watchers)
                for on_change in watchers:
                    on_change(None)
        finally:
            db.close()

    def close(self) -> None:
        self._watch_stop.set()
        if self._watch_thread is not None:
            self._watch_thread.join()
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
