"""The PostgreSQL engine of the Store, for servers in several processes or on several machines.

Every process keeps a pool of connections (psycopg 3, psycopg_pool). A modify locks its rows
(SELECT ... FOR UPDATE, in name order so that two batches cannot deadlock) and writes them in
the same transaction, so of two replicas racing to change one operation the second reads
what the first committed. A modify that finishes or deletes an operation sends NOTIFY in
that transaction; PostgreSQL delivers it on commit to every process that LISTENs, which
wakes its waits: no polling.
"""

from __future__ import annotations

import builtins
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

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

__all__ = ["CHANNEL", "PostgresStore"]

CHANNEL = "v1op_finished"
CONNECT_TIMEOUT_SECONDS = 10
POOL_SIZE = 8
# NOTIFY payloads must stay under 8000 bytes; names are joined by newlines up to this.
_NOTIFY_BYTES = 7000
# Any fixed number: start-ups take this transaction-scoped lock so that two of them never
# create the tables at once.
_SCHEMA_LOCK = 0x7631_6F70
_INSERT_LOCK = 0x7631_6F71

_SCHEMA = """
CREATE TABLE v1op_schema (version integer NOT NULL);
CREATE TABLE v1op_operations (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    creator text NOT NULL,
    done boolean NOT NULL,
    seen boolean NOT NULL,
    deleted boolean NOT NULL,
    data bytea NOT NULL
);
CREATE INDEX v1op_operations_by_creator
    ON v1op_operations (creator, deleted, done, seen, seq);
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL"
    params.pop("password", None)
    return make_conninfo("", **params) or "(libpq's defaults)"


class PostgresStore:
    """Operations as their binary proto in ``v1op_operations``, beside indexed columns.

    ``url`` is a libpq URL (``postgresql://USER@HOST:PORT/DBNAME``); libpq reads the other
    parameters and the ``PG*`` variables as it always does.
    """

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._where = redacted(url)
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                _create_schema(conn, self._where)
        except psycopg.Error as e:
            reason = _why(e)
            raise StoreUnavailable(f"cannot use PostgreSQL database {self._where}: {reason}") from e
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            # A call waits this long for a connection while the database is unreachable,
            # then fails with StoreUnavailable (UNAVAILABLE to the caller).
            timeout=CONNECT_TIMEOUT_SECONDS,
            name="v1op",
            open=True,
        )
        self._watch_lock = threading.Lock()
        self._watchers: list[OnChange] = []
        self._listener: _Listener | None = None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; StoreUnavailable when the database cannot be reached or the
        connection broke (the caller may retry), the store's own errors as they are."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as e:
            raise StoreUnavailable(f"PostgreSQL database {self._where}: {_why(e)}") from e

    # --- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> Operation | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT data FROM v1op_operations WHERE name = %s", (name,)
            ).fetchone()
        return Operation.FromString(row[0]) if row else None

    def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        if not names:
            return {}
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT name, data FROM v1op_operations WHERE name = ANY(%s)",
                (list(dict.fromkeys(names)),),
            ).fetchall()
        return {name: Operation.FromString(data) for name, data in rows}

    def list(self, query: Query) -> Page:
        where: list[sql.Composable] = [sql.SQL("TRUE")]
        params: list[Any] = []
        for column, value in (("creator", query.creator), ("done", query.done)):
            if value is not None:
                where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if query.seen is not None:
            where.append(sql.SQL("seen = %s"))
            params.append(query.seen)
        if not query.include_deleted:
            where.append(sql.SQL("NOT deleted"))
        condition = sql.SQL(" AND ").join(where)
        with self._connection() as conn, conn.transaction():
            # One snapshot for the count and the page, as SQLite's single connection gives.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM v1op_operations WHERE {}").format(condition), params
            ).fetchone()
            rows = conn.execute(
                sql.SQL(
                    "SELECT seq, data FROM v1op_operations WHERE {} AND seq > %s "
                    "ORDER BY seq LIMIT %s"
                ).format(condition),
                [*params, query.after, query.limit if query.limit > 0 else None],
            ).fetchall()
        total = count[0] if count else 0
        cursor = rows[-1][0] if rows else 0
        return Page([Operation.FromString(data) for _, data in rows], total, cursor)

    # --- writing ---------------------------------------------------------------------------

    def insert(self, operation: Operation) -> None:
        try:
            with self._connection() as conn:
                # Inserts commit one at a time, so ``seq`` grows in commit order: otherwise a
                # list could page past a seq whose insert had not committed yet, and a
                # later page (after that cursor) would never show it.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSERT_LOCK,))
                conn.execute(
                    "INSERT INTO v1op_operations (name, creator, done, seen, deleted, data) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (operation.name, *_columns(operation)),
                )
        except psycopg.errors.UniqueViolation as e:
            raise StoredOperationExists(operation.name) from e

    def modify(
        self,
        names: Sequence[str],
        change: Callable[[Operation, int], Operation],
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> builtins.list[Operation]:
        # builtins.list: within the class, ``list`` is the method above.
        updated: builtins.list[Operation] = []
        finished: builtins.list[str] = []
        with self._connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT name, data FROM v1op_operations WHERE name = ANY(%s) "
                "ORDER BY name FOR UPDATE",
                (sorted(set(names)),),
            ).fetchall()
            current = {name: Operation.FromString(data) for name, data in rows}
            # Read with the rows locked: writes to an operation commit in the order of their
            # times.
            now = clock()
            for name in names:
                if name not in current:
                    raise StoredOperationMissing(name)
                old = current[name]
                new = change(Operation.FromString(old.SerializeToString()), now)
                conn.execute(
                    "UPDATE v1op_operations SET creator = %s, done = %s, seen = %s, "
                    "deleted = %s, data = %s WHERE name = %s",
                    (*_columns(new), name),
                )
                if (new.done and not old.done) or (
                    new.HasField("delete_time") and not old.HasField("delete_time")
                ):
                    finished.append(name)
                current[name] = new
                updated.append(new)
            for payload in _payloads(finished):
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        return updated

    # --- waking ----------------------------------------------------------------------------

    def watch(self, on_change: OnChange) -> Callable[[], None]:
        with self._watch_lock:
            self._watchers.append(on_change)
            if self._listener is None:
                self._listener = _Listener(self.url, self._tell)

        def stop() -> None:
            with self._watch_lock:
                if on_change in self._watchers:
                    self._watchers.remove(on_change)

        return stop

    def _tell(self, names: Sequence[str] | None) -> None:
        with self._watch_lock:
            watchers = list(self._watchers)
        for on_change in watchers:
            on_change(names)

    def close(self) -> None:
        with self._watch_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._pool.close()


class _Listener:
    """A connection of its own that LISTENs, and a thread that hands on what arrives.

    When the connection breaks it reconnects and reports None (some finishes may have gone
    unheard), so waits re-read rather than miss a wake-up.
    """

    def __init__(self, url: str, tell: Callable[[Sequence[str] | None], None]) -> None:
        self._url = url
        self._tell = tell
        self._stopping = threading.Event()
        # A channel only this listener hears: stop() sends on it to end the wait at once.
        self._stop_channel = f"v1op_stop_{secrets.token_hex(8)}"
        self._thread = threading.Thread(target=self._run, name="v1op-pg-listen", daemon=True)
        self._listening = threading.Event()
        self._thread.start()
        # A wait that starts right after this must not miss a finish: LISTEN first.
        self._listening.wait(CONNECT_TIMEOUT_SECONDS)

    def _run(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    if not first:
                        self._tell(None)
                    first = False
                    for notify in conn.notifies():
                        if notify.channel == self._stop_channel:
                            return
                        self._tell(notify.payload.split("\n"))
            except psycopg.Error:
                self._listening.set()
                # Reconnect after a pause: the database may be restarting.
                self._stopping.wait(1.0)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._stop_channel)))
            self._listening.set()
            yield conn
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(self._stop_channel)))
        self._thread.join(CONNECT_TIMEOUT_SECONDS)


def _create_schema(conn: psycopg.Connection[Any], where: str) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        exists = conn.execute("SELECT to_regclass('v1op_schema') IS NOT NULL").fetchone()
        if exists and exists[0]:
            row = conn.execute("SELECT max(version) FROM v1op_schema").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"PostgreSQL database {where} has schema version {version}; this server "
                    f"knows up to {SCHEMA_VERSION}: run a newer v1op"
                )
            if version == SCHEMA_VERSION:
                return
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(sql.SQL(statement.strip()))
        conn.execute("INSERT INTO v1op_schema (version) VALUES (%s)", (SCHEMA_VERSION,))


def _why(error: psycopg.Error) -> str:
    """libpq's reason, on one line."""
    text = str(error).strip() or type(error).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _payloads(names: Sequence[str]) -> Iterator[str]:
    batch: list[str] = []
    size = 0
    for name in names:
        if batch and size + len(name) + 1 > _NOTIFY_BYTES:
            yield "\n".join(batch)
            batch, size = [], 0
        batch.append(name)
        size += len(name.encode()) + 1
    if batch:
        yield "\n".join(batch)


def _columns(operation: Operation) -> tuple[str, bool, bool, bool, bytes]:
    return (
        operation.creator,
        operation.done,
        operation.HasField("seen_by_creator_time"),
        operation.HasField("delete_time"),
        operation.SerializeToString(deterministic=True),
    )
