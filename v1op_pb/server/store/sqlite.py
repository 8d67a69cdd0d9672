"""The SQLite engine of the Store: one file (or ``:memory:``), WAL, synchronous writes.

Reads by name run on the caller's event loop, each on a connection of its thread's own: in
WAL mode a reader never waits for the writer, and a primary-key read takes microseconds, less
than handing it to a thread would. Such a read never waits for a lock either: in the moments a
WAL reader would (while another process recovers the log after a crash) it is
StoreUnavailable, worth a retry, rather than a stalled loop. Lists and batch reads, which may
read many rows, run in threads, where they wait for locks as writes do.

Writes go to one writer thread, which takes every write waiting for it and commits them in one
transaction (group commit, see ``writes``): one fsync for all of them, and each caller is
answered only once its write is on disk (``synchronous=FULL``). Its SQL and the changes run in
that thread, which holds the GIL only between the database's calls.

Several processes on one machine may share the file (``v1op serve --workers``): BEGIN
IMMEDIATE keeps their writes apart, and each learns of the others' commits by reading the
file's change counter (``PRAGMA data_version``, a read of the WAL index in shared memory, not
of the table) every WATCH_SECONDS while it has waits: a finish in one process wakes the waits
of another within that bound plus one read.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence

from ..._operation import Operation
from .base import (
    SCHEMA_VERSION,
    OnChange,
    Page,
    Query,
    SchemaTooNew,
    StoreUnavailable,
    indexed_columns,
    row_of,
)
from .queries import page_order, where_of
from .sqlite_rows import WrittenRows, read_rows, write_rows
from .writes import GroupCommitted, Write, Writer, apply, names_of

__all__ = ["WATCH_SECONDS", "SQLiteStore"]

WATCH_SECONDS = 0.05
# How long a write waits for another process's write lock before the call is UNAVAILABLE.
BUSY_SECONDS = 10.0
_log = logging.getLogger("v1op.store")
# Retention's batch: the rows one purge transaction deletes (in the finish or the delete
# order), under the file's write lock, which it holds that briefly.
_PURGE = (
    "DELETE FROM operations WHERE seq IN ("
    "SELECT seq FROM operations WHERE finish_ns < ? "
    "UNION SELECT seq FROM operations WHERE delete_ns < ? LIMIT ?)"
)
_COUNT = "SELECT deleted, done, count(*) FROM operations GROUP BY deleted, done"

_TABLE = """
CREATE TABLE operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    creator TEXT NOT NULL,
    done INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    data BLOB NOT NULL,
    create_ns INTEGER NOT NULL DEFAULT 0,
    finish_ns INTEGER,
    delete_ns INTEGER,
    state TEXT NOT NULL DEFAULT 'running'
)
"""
# Schema 2's columns, as schema 1's table gains them (see _migrate).
_NEW_COLUMNS = (
    "create_ns INTEGER NOT NULL DEFAULT 0",
    "finish_ns INTEGER",
    "delete_ns INTEGER",
    "state TEXT NOT NULL DEFAULT 'running'",
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS operations_by_creator "
    "ON operations (creator, deleted, done, seen, seq)",
    "CREATE INDEX IF NOT EXISTS operations_by_creator_state "
    "ON operations (creator, deleted, state, seq)",
    "CREATE INDEX IF NOT EXISTS operations_by_state ON operations (deleted, state, seq)",
    "CREATE INDEX IF NOT EXISTS operations_by_finish ON operations (finish_ns) "
    "WHERE finish_ns IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS operations_by_delete ON operations (delete_ns) "
    "WHERE delete_ns IS NOT NULL",
)
_GET = "SELECT data FROM operations WHERE name = ?"


class SQLiteStore(GroupCommitted):
    """Operations as their binary proto, with indexed columns for the lookups lists need.

    ``path`` is a file, or ``:memory:`` for tests. Writes are transactions, so a crash or a
    restart keeps every operation that a call reported as written.
    """

    def __init__(self, path: str, *, busy_seconds: float = BUSY_SECONDS) -> None:
        self.path = path
        self._busy_seconds = busy_seconds
        self._memory = path == ":memory:"
        # Guards what threads share: the list of connections, the watchers, closing.
        self._state = threading.Lock()
        self._closed = False
        self._readers: list[sqlite3.Connection] = []
        # Each thread's reader: one that never waits for a lock (reads on a loop) and one
        # that waits as long as writes do (reads in threads).
        self._quick = threading.local()
        self._patient = threading.local()
        self._watchers: list[OnChange] = []
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        try:
            # The writer's connection. A :memory: database exists only in it, so there it
            # serves reads too, under ``_memory_lock``.
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_seconds
            )
            if not self._memory:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._create_schema()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {e}") from e
        self._memory_lock = threading.Lock()
        self._written = WrittenRows()
        self._writer = Writer("v1op-sqlite-writer", self._commit)

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
            exists = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operations'"
            ).fetchone()
            if not exists:
                self._db.execute(_TABLE)
            elif version < 2:
                self._migrate()
            for statement in _INDEXES:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        """Schema 1 to 2, in the start-up transaction: the new columns, filled in from each
        stored operation."""
        for column in _NEW_COLUMNS:
            self._db.execute(f"ALTER TABLE operations ADD COLUMN {column}")
        rows = self._db.execute("SELECT seq, data FROM operations").fetchall()
        self._db.executemany(
            "UPDATE operations SET create_ns = ?, finish_ns = ?, delete_ns = ?, state = ? "
            "WHERE seq = ?",
            [(*indexed_columns(Operation.FromString(data))[4:], seq) for seq, data in rows],
        )

    # --- reading ---------------------------------------------------------------------------

    async def get(self, name: str) -> Operation | None:
        db = None if self._memory else getattr(self._quick, "db", None)
        if db is None:  # the first read of this thread, or :memory:'s one connection
            with self._reading(self._quick, 0.0) as db:
                row = db.execute(_GET, (name,)).fetchone()
        else:  # the hot path, without the context manager's generator
            try:
                row = db.execute(_GET, (name,)).fetchone()
            except sqlite3.Error as e:
                raise StoreUnavailable(f"SQLite database {self.path}: {e}") from e
        return Operation.FromString(row[0]) if row else None

    async def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        if not names:
            return {}
        return await asyncio.to_thread(self._get_many, list(dict.fromkeys(names)))

    def _get_many(self, wanted: builtins.list[str]) -> dict[str, Operation]:
        with self._reading(self._patient, self._busy_seconds) as db, _snapshot(db):
            rows = read_rows(db, wanted)
        return {name: Operation.FromString(data) for name, data in rows.items()}

    async def list(self, query: Query) -> Page:
        return await asyncio.to_thread(self._list, query)

    def _list(self, query: Query) -> Page:
        condition, params = where_of(query, "?")
        order, cursor_params = page_order(query, "?")
        limit = query.limit if query.limit > 0 else -1
        with self._reading(self._patient, self._busy_seconds) as db, _snapshot(db):
            # One snapshot for the count and the page.
            (total,) = db.execute(
                f"SELECT COUNT(*) FROM operations WHERE {condition}", params
            ).fetchone()
            rows = db.execute(
                f"SELECT seq, data FROM operations WHERE {condition} AND {order} LIMIT ?",
                [*params, *cursor_params, limit],
            ).fetchall()
        cursor = rows[-1][0] if rows else 0
        return Page([Operation.FromString(data) for _, data in rows], total, cursor)

    @contextlib.contextmanager
    def _reading(self, local: threading.local, wait: float) -> Iterator[sqlite3.Connection]:
        """This thread's reader (waiting up to ``wait`` seconds for a lock), or the one
        connection of a :memory: database."""
        try:
            if self._memory:
                with self._memory_lock:
                    self._check_open()
                    yield self._db
                return
            db = getattr(local, "db", None)
            if db is None:
                db = local.db = self._connect_reader(wait)
            yield db
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite database {self.path}: {e}") from e

    def _connect_reader(self, wait: float) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=wait)
        with self._state:
            if self._closed:
                db.close()
                raise StoreUnavailable(f"SQLite database {self.path}: the store is closed")
            self._readers.append(db)
        return db

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"SQLite database {self.path}: the store is closed")

    # --- writing ---------------------------------------------------------------------------

    def _closed_error(self) -> StoreUnavailable:
        return StoreUnavailable(f"SQLite database {self.path}: the store is closed")

    def _commit(self, batch: builtins.list[Write]) -> BaseException | None:
        """One batch, in the writer thread: its failure, or None once it is on disk."""
        lock = self._memory_lock if self._memory else contextlib.nullcontext()
        with lock:
            db = self._db
            try:
                # IMMEDIATE takes the write lock before the reads, so two processes sharing
                # the file cannot both read the old state and both write.
                db.execute("BEGIN IMMEDIATE")
                try:
                    applied = apply(batch, self._written.read(db, names_of(batch)))
                    inserted = [row_of(name, op) for name, op in applied.inserted.items()]
                    changed = [row_of(name, op) for name, op in applied.changed.items()]
                    write_rows(db, inserted, changed)
                    db.execute("COMMIT")
                    self._written.committed({row[0]: row[1] for row in (*inserted, *changed)})
                except BaseException:
                    self._written.forget()
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                failure = StoreUnavailable(f"SQLite database {self.path}: {e}")
                failure.__cause__ = e
                return failure
        return None

    # --- waking ----------------------------------------------------------------------------

    def watch(self, on_change: OnChange) -> Callable[[], None]:
        if self._memory:
            return lambda: None  # no other process can open it
        with self._state:
            self._watchers.append(on_change)
            start = self._watch_thread is None
            if start:
                self._watch_thread = threading.Thread(
                    target=self._watch, name="v1op-sqlite-watch", daemon=True
                )
        if start:
            assert self._watch_thread is not None
            self._watch_thread.start()

        def stop() -> None:
            with self._state:
                if on_change in self._watchers:
                    self._watchers.remove(on_change)

        return stop

    def _watch(self) -> None:
        # Its own connection: data_version changes when any other connection commits. A
        # connection that fails (or cannot be made) is replaced at the next tick, and as what
        # changed meanwhile is unknown, every wait re-reads once one works again.
        db: sqlite3.Connection | None = None
        seen = -1
        failing = False
        try:
            while not self._watch_stop.wait(WATCH_SECONDS):
                try:
                    if db is None:
                        db = self._connect_watcher()
                    ((version,),) = db.execute("PRAGMA data_version").fetchall()
                except sqlite3.Error as e:
                    if db is not None:
                        db.close()
                    db, version = None, -1
                    if not failing:
                        _log.warning(
                            "SQLite database %s: cannot see other processes' writes (%s); "
                            "trying again every %s s",
                            self.path,
                            e,
                            WATCH_SECONDS,
                        )
                    failing = True
                else:
                    if failing:
                        _log.info(
                            "SQLite database %s: seeing other processes' writes again", self.path
                        )
                    failing = False
                if version == seen:
                    continue
                seen = version
                self._tell_watchers()
        finally:
            if db is not None:
                db.close()

    def _connect_watcher(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _tell_watchers(self) -> None:
        with self._state:
            watchers = list(self._watchers)
        for on_change in watchers:
            try:
                on_change(None)
            except Exception:  # one watcher's bug must not stop the others' wake-ups
                _log.exception("a watcher of SQLite database %s failed", self.path)

    # --- observing and ageing ----------------------------------------------------------------

    def observe_commits(self, on_commit: Callable[[float, int, bool], None]) -> None:
        """Tell ``on_commit`` (from the writer thread) of each batch: seconds, writes,
        failed."""
        self._writer.on_commit = on_commit

    async def count_operations(self) -> dict[str, int]:
        """How many operations are running, done (not deleted) and deleted."""
        return await asyncio.to_thread(self._count)

    def _count(self) -> dict[str, int]:
        with self._reading(self._patient, self._busy_seconds) as db:
            rows = db.execute(_COUNT).fetchall()
        return _counts(rows)

    async def purge(self, before_ns: int, limit: int) -> int | None:
        """Delete up to ``limit`` operations done or deleted before ``before_ns`` (ns since
        the epoch), in one transaction under the file's write lock, which keeps purges of
        several processes one at a time; how many it deleted."""
        return await asyncio.to_thread(self._purge, before_ns, limit)

    def _purge(self, before_ns: int, limit: int) -> int:
        with self._reading(self._patient, self._busy_seconds) as db:
            if db is self._db:  # :memory:'s one connection: its data_version stays put
                self._written.forget()
            db.execute("BEGIN IMMEDIATE")
            try:
                deleted = db.execute(_PURGE, (before_ns, before_ns, limit)).rowcount
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return int(deleted)

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
        self._writer.close()
        self._watch_stop.set()
        if self._watch_thread is not None:
            self._watch_thread.join()
        with self._state:
            readers, self._readers = self._readers, []
        for db in readers:
            db.close()
        with self._memory_lock:
            self._db.close()

    async def aclose(self) -> None:
        # The writer may be committing a batch: wait for it off the loop.
        await asyncio.to_thread(self.close)


@contextlib.contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """One read transaction, so that several statements see the same commits."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def _counts(rows: Sequence[tuple[int, int, int]]) -> dict[str, int]:
    counts = {"running": 0, "done": 0, "deleted": 0}
    for deleted, done, count in rows:
        state = "deleted" if deleted else "done" if done else "running"
        counts[state] += count
    return counts
