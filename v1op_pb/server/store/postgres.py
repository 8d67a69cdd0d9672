"""The PostgreSQL engine of the Store, for servers in several processes or on several machines.

Every process keeps a pool of asynchronous connections (psycopg 3's AsyncConnectionPool) on
its event loop for reads: they wait for the database as the loop waits for any socket, with no
thread. Writes are group-committed (see ``writes``): one writer thread, on a connection of its
own, takes every write waiting for it and makes them in one transaction. It locks the batch's
rows (SELECT ... FOR UPDATE, in name order so that two batches cannot deadlock) before any
change runs, so of two replicas racing to change one operation the second reads what the
first committed. A batch that finishes or deletes operations sends NOTIFY in its transaction;
PostgreSQL delivers it on commit to every process that LISTENs, which wakes its waits: no
polling.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from ..._operation import Operation
from .base import (
    OnChange,
    Page,
    Query,
    StoreUnavailable,
    row_of,
)
from .postgres_schema import create_schema
from .queries import page_order, where_of
from .writes import GroupCommitted, Insert, Write, Writer, apply, names_of, settle_from_thread

__all__ = ["CHANNEL", "PostgresStore"]

CHANNEL = "v1op_finished"
CONNECT_TIMEOUT_SECONDS = 10
# The pause before a listening connection that broke (or could not be made) is made again.
RELISTEN_SECONDS = 1.0
POOL_SIZE = 8
# How long close(), from another thread than the store's loop, waits for it to close.
CLOSE_TIMEOUT_SECONDS = 30
# NOTIFY payloads must stay under 8000 bytes; names are joined by newlines up to this.
_NOTIFY_BYTES = 7000
# Advisory locks, fixed numbers beside the schema's (postgres_schema): batches that insert
# take this one, so that seq grows in commit order (see _make).
_INSERT_LOCK = 0x7631_6F71
# Held by the replica purging a batch (retention): the others skip their pass meanwhile.
_RETENTION_LOCK = 0x7631_6F72
_log = logging.getLogger("v1op.store")

# Rows a writer holds are skipped, not waited for: they go in a later batch.
_PURGE = """
DELETE FROM v1op_operations WHERE seq IN (
    SELECT seq FROM v1op_operations
    WHERE finish_ns < %(before)s OR delete_ns < %(before)s
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
"""
_COUNT = "SELECT deleted, done, count(*) FROM v1op_operations GROUP BY deleted, done"
_GET = "SELECT data FROM v1op_operations WHERE name = %s"
_GET_MANY = "SELECT name, data FROM v1op_operations WHERE name = ANY(%s)"
_LOCK_ROWS = "SELECT name, data FROM v1op_operations WHERE name = ANY(%s) ORDER BY name FOR UPDATE"
# A batch's rows go in one statement of each kind, as one array a column: one round trip,
# and one wait for the GIL after it, whatever the batch's size.
_ROWS = (
    "unnest(%s::text[], %s::bytea[], %s::text[], %s::boolean[], %s::boolean[], "
    "%s::boolean[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) WITH ORDINALITY "
    "AS v(name, data, creator, done, seen, deleted, create_ns, finish_ns, delete_ns, state, "
    "position)"
)
_INSERT = (
    "INSERT INTO v1op_operations (name, data, creator, done, seen, deleted, create_ns, "
    "finish_ns, delete_ns, state) SELECT name, data, creator, done, seen, deleted, create_ns, "
    f"finish_ns, delete_ns, state FROM {_ROWS} ORDER BY position"
)
# finish_ns keeps the time of the write that finished the operation.
_UPDATE = (
    "UPDATE v1op_operations AS o SET data = v.data, creator = v.creator, done = v.done, "
    "seen = v.seen, deleted = v.deleted, create_ns = v.create_ns, "
    "finish_ns = COALESCE(o.finish_ns, v.finish_ns), delete_ns = v.delete_ns, state = v.state "
    f"FROM {_ROWS} WHERE o.name = v.name"
)
# PostgreSQL's text cannot hold NUL: no stored name has one (reads of such a name find
# nothing), and no write may bring one.
_NUL = "\x00"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL"
    params.pop("password", None)
    return make_conninfo("", **params) or "(libpq's defaults)"


class PostgresStore(GroupCommitted):
    """Operations as their binary proto in ``v1op_operations``, beside indexed columns.

    ``url`` is a libpq URL (``postgresql://USER@HOST:PORT/DBNAME``); libpq reads the other
    parameters and the ``PG*`` variables as it always does. The store serves the event loop
    it is first used on: its pool and its writer live there.
    """

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._where = redacted(url)
        self._pool_size = pool_size
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                create_schema(conn, self._where)
        except psycopg.Error as e:
            reason = _why(e)
            raise StoreUnavailable(f"cannot use PostgreSQL database {self._where}: {reason}") from e
        # Made on the loop of the first read (an asyncio pool belongs to one loop).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._pool_opened = False
        self._closed = False
        # The writer's own connection, in a pool of one: a connection that breaks is
        # replaced, and a batch waits up to the timeout for it while the database is away.
        self._write_pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=1,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "autocommit": True},
            timeout=CONNECT_TIMEOUT_SECONDS,
            name="v1op-writer",
            open=True,
        )
        self._changes_ran = False  # in the batch the writer is making
        self._writer = Writer("v1op-pg-writer", self._commit)
        self._closing: asyncio.Task[None] | None = None
        self._watch_lock = threading.Lock()
        self._watchers: list[OnChange] = []
        self._listener: _Listener | None = None

    def _bind(self) -> AsyncConnectionPool[Any]:
        """The pool of readers, made on the running loop at the first read."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise RuntimeError("a PostgresStore serves the one event loop it was first used on")
            self._check_open()
            self._loop = loop
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                # Reads are single statements: no BEGIN, no ROLLBACK when returned.
                kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "autocommit": True},
                # A call waits this long for a connection while the database is unreachable,
                # then fails with StoreUnavailable (UNAVAILABLE to the caller).
                timeout=CONNECT_TIMEOUT_SECONDS,
                name="v1op",
                open=False,
            )
        assert self._pool is not None
        return self._pool

    async def _ready(self) -> AsyncConnectionPool[Any]:
        pool = self._bind()
        if not self._pool_opened:
            await pool.open()  # starts its workers; the connections come in the background
            self._pool_opened = True
        return pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; StoreUnavailable when the database cannot be reached or the
        connection broke (the caller may retry), the store's own errors as they are."""
        self._check_open()
        try:
            pool = await self._ready()
            async with pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, PoolClosed) as e:
            raise StoreUnavailable(f"PostgreSQL database {self._where}: {_why(e)}") from e

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"PostgreSQL database {self._where}: the store is closed")

    # --- reading ---------------------------------------------------------------------------

    async def get(self, name: str) -> Operation | None:
        if _NUL in name:
            return None
        async with self._connection() as conn:
            cursor = await conn.execute(_GET, (name,), binary=True)
            row = await cursor.fetchone()
        return Operation.FromString(row[0]) if row else None

    async def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        wanted = [name for name in dict.fromkeys(names) if _NUL not in name]
        if not wanted:
            return {}
        async with self._connection() as conn:
            cursor = await conn.execute(_GET_MANY, (wanted,), binary=True)
            rows = await cursor.fetchall()
        return {name: Operation.FromString(data) for name, data in rows}

    async def list(self, query: Query) -> Page:
        condition, params = where_of(query, "%s")
        order, cursor_params = page_order(query, "%s")
        async with self._connection() as conn, conn.transaction():
            # One snapshot for the count and the page, as SQLite's read transaction gives.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor = await conn.execute(
                f"SELECT count(*) FROM v1op_operations WHERE {condition}",
                params,
            )
            count = await cursor.fetchone()
            cursor = await conn.execute(
                f"SELECT seq, data FROM v1op_operations WHERE {condition} AND {order} LIMIT %s",
                [*params, *cursor_params, query.limit if query.limit > 0 else None],
                binary=True,
            )
            rows = await cursor.fetchall()
        total = count[0] if count else 0
        cursor_at = rows[-1][0] if rows else 0
        return Page([Operation.FromString(data) for _, data in rows], total, cursor_at)

    # --- writing ---------------------------------------------------------------------------

    def _closed_error(self) -> StoreUnavailable:
        return StoreUnavailable(f"PostgreSQL database {self._where}: the store is closed")

    def _commit(self, batch: builtins.list[Write]) -> BaseException | None:
        """One batch, in the writer thread: its failure, or None once it is committed."""
        batch = _storable(batch)
        if not batch:
            return None
        try:
            try:
                self._make(batch)
            except psycopg.OperationalError as e:
                if self._changes_ran or isinstance(e, (PoolTimeout, PoolClosed)):
                    raise
                # The connection broke while idle (the database restarted, or dropped it),
                # or the batch could not start: nothing of it ran yet, so it runs once more,
                # on a new connection if that one is gone.
                self._make(batch)
        except psycopg.Error as e:  # PoolTimeout and PoolClosed too
            # A database error anywhere in the batch (a constraint, a trigger, the commit, a
            # connection that broke): the transaction is rolled back, and none of its writes
            # is made.
            return self._unavailable(e)
        return None

    def _unavailable(self, error: psycopg.Error) -> StoreUnavailable:
        failure = StoreUnavailable(f"PostgreSQL database {self._where}: {_why(error)}")
        failure.__cause__ = error
        return failure

    def _make(self, batch: builtins.list[Write]) -> None:
        """One transaction for the batch (in the writer thread)."""
        self._changes_ran = False
        with self._write_pool.connection() as conn, conn.transaction():
            if any(isinstance(write, Insert) for write in batch):
                # Inserts commit one batch at a time, so ``seq`` grows in commit order:
                # otherwise a list could page past a seq whose insert had not committed yet,
                # and a later page (after that cursor) would never show it. Taken before the
                # rows, so that no other insert of these names is under way.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSERT_LOCK,))
            cursor = conn.cursor(binary=True)
            names = [name for name in names_of(batch) if _NUL not in name]
            cursor.execute(_LOCK_ROWS, (names,))
            rows = dict(cursor.fetchall())
            self._changes_ran = True
            applied = apply(batch, rows)
            if applied.inserted:
                cursor.execute(_INSERT, _columns_of(applied.inserted))
            if applied.changed:
                cursor.execute(_UPDATE, _columns_of(applied.changed))
            for payload in _payloads(applied.finished):
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

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
            try:
                on_change(names)
            except Exception:  # one watcher's bug must not stop the others' wake-ups
                _log.exception("a watcher of PostgreSQL database %s failed", self._where)

    # --- observing and ageing ----------------------------------------------------------------

    def observe_commits(self, on_commit: Callable[[float, int, bool], None]) -> None:
        """Tell ``on_commit`` (from the writer thread) of each batch: seconds, writes,
        failed."""
        self._writer.on_commit = on_commit

    async def count_operations(self) -> dict[str, int]:
        """How many operations are running, done (not deleted) and deleted."""
        async with self._connection() as conn:
            cursor = await conn.execute(_COUNT)
            rows = await cursor.fetchall()
        counts = {"running": 0, "done": 0, "deleted": 0}
        for deleted, done, count in rows:
            counts["deleted" if deleted else "done" if done else "running"] += count
        return counts

    async def purge(self, before_ns: int, limit: int) -> int | None:
        """Delete up to ``limit`` operations done or deleted before ``before_ns`` (ns since
        the epoch) in one transaction; how many, or None when another replica is purging
        (it holds the retention lock), so this one leaves it to that one."""
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_RETENTION_LOCK,))
            locked = await cursor.fetchone()
            if not locked or not locked[0]:
                return None
            cursor = await conn.execute(_PURGE, {"before": before_ns, "limit": limit})
            return cursor.rowcount

    # --- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        self._closed = True
        # Makes and answers every write taken so far: off the loop, which answers them.
        await asyncio.to_thread(self._close_writer)
        if self._pool is not None:
            await self._pool.close()
        await asyncio.to_thread(self._stop_listener)

    def close(self) -> None:
        self._closed = True
        self._close_writer()
        self._stop_listener()
        loop = self._loop
        if self._pool is None or loop is None or loop.is_closed():
            return  # no reads were made, or their loop is gone (and with it the pool's tasks)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # Called from a coroutine on the store's own loop, which this cannot wait for:
            # the loop finishes closing the pool (``await aclose()`` there waits for it).
            if self._closing is None:
                self._closing = loop.create_task(self._pool.close())
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(self._pool.close(), loop).result(CLOSE_TIMEOUT_SECONDS)
        else:
            loop.run_until_complete(self._pool.close())

    def _close_writer(self) -> None:
        self._writer.close()
        self._write_pool.close()

    def _stop_listener(self) -> None:
        with self._watch_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()


class _Listener:
    """A connection of its own that LISTENs, and a thread that hands on what arrives.

    When the connection breaks, or cannot be made, it reconnects and reports None (some
    finishes may have gone unheard), so waits re-read rather than miss a wake-up: that goes
    for the first connection too when it came only after failed attempts, since waits
    registered meanwhile (watch() returns after a failed first attempt) heard nothing.
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
        # Set once a connection failed, or could not be made: finishes went unheard until
        # the next connection listens, which then has every wait re-read.
        missed = False
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    if missed:
                        _log.info("listening for other processes' finishes again")
                        self._tell(None)
                    missed = False
                    for notify in conn.notifies():
                        if notify.channel == self._stop_channel:
                            return
                        self._tell(notify.payload.split("\n"))
            except psycopg.Error as e:
                if not missed:  # once an outage
                    _log.warning(
                        "cannot listen for other processes' finishes (%s); trying again every %s s",
                        _why(e),
                        RELISTEN_SECONDS,
                    )
                missed = True
                self._listening.set()
                # Reconnect after a pause: the database may be restarting.
                self._stopping.wait(RELISTEN_SECONDS)

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


def _storable(batch: builtins.list[Write]) -> builtins.list[Write]:
    """The writes PostgreSQL can hold; the others fail alone, at once."""
    kept: builtins.list[Write] = []
    for write in batch:
        if isinstance(write, Insert) and (
            _NUL in write.operation.name or _NUL in write.operation.creator
        ):
            write.error = ValueError("PostgreSQL text cannot hold NUL characters")
            settle_from_thread([write])
        else:
            kept.append(write)
    return kept


def _columns_of(operations: Mapping[str, Operation]) -> list[list[Any]]:
    """The parameters of _INSERT and _UPDATE: a list a column, the name, the bytes, then the
    indexed columns."""
    rows = [row_of(name, op) for name, op in operations.items()]
    return [list(column) for column in zip(*rows, strict=True)]
