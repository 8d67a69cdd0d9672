"""The two faults of issue 19, each brought about for real: a database that cannot be reached
while a store starts watching for other processes' finishes.

- PostgreSQL: the first LISTEN connection fails (the database takes no new connections);
  a wait registered meanwhile must hear of a finish made meanwhile by another replica once
  the listener connects, not at its timeout.
- SQLite: the watch thread's connection fails (the file is not at its path); the thread
  must live on, have every wait re-read once it connects, and go on waking waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import stores
from stores import Heard, async_test, finish, make_op

from v1op_pb.server.auth import Principal
from v1op_pb.server.manager import OperationManager
from v1op_pb.server.store import SQLiteStore

ADA = Principal("users/ada")
# Longer than any wake-up takes (the listener reconnects within a second): a wait that
# nothing woke answers at this timeout, not done, and the test fails.
WAIT_SECONDS = 30.0


class Logged(logging.Handler):
    """An event set by the first record of a logger whose message holds ``text``."""

    def __init__(self, logger: str, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()
        self._logger = logging.getLogger(logger)

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()

    def __enter__(self) -> Logged:
        self._logger.addHandler(self)
        self._old_level = self._logger.level
        self._logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)


@contextmanager
def connections_refused(url: str) -> Iterator[None]:
    """The database takes no new connections (even a superuser's); those open stay open."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS false")
        try:
            yield
        finally:
            admin.execute(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true")


@async_test
async def test_postgres_a_wait_registered_while_listen_fails_hears_a_finish_made_meanwhile(
    postgres,
):
    from v1op_pb.server.store.postgres import PostgresStore

    url = postgres.new_database()
    here, there = PostgresStore(url), PostgresStore(url)
    stores.OPENED.extend([here, there])
    op = make_op(1)
    await there.insert(op)  # the other replica's writer is connected, and stays so
    assert await here.get(op.name) == op  # this one's pool has a connection, and keeps it
    read = _reads_of(here)
    manager = OperationManager(here, max_wait_seconds=WAIT_SECONDS)
    with Logged("v1op.store", "cannot listen") as refused:
        async with _refusing(url):
            waiting = asyncio.ensure_future(manager.wait(ADA, op.name, WAIT_SECONDS))
            # The listener's first connection failed: the wait went on without it, and
            # read the operation running.
            assert await asyncio.to_thread(refused.event.wait, WAIT_SECONDS)
            await asyncio.wait_for(read.wait(), WAIT_SECONDS)
            # The other replica finishes the operation; its NOTIFY reaches nobody here.
            await there.modify([op.name], finish)
        # The database takes connections again: the listener's first one must have the
        # wait re-read.
        waited = await waiting
    assert waited.done, "the wait was not woken: it answered at its timeout"


class _refusing:
    def __init__(self, url: str) -> None:
        self._context = connections_refused(url)

    async def __aenter__(self) -> None:
        await asyncio.to_thread(self._context.__enter__)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._context.__exit__, None, None, None)


def _reads_of(store) -> asyncio.Event:
    """An event set once a read by name of ``store`` has answered (a wait registers, then
    reads: after that read, a finish must wake it)."""
    read = asyncio.Event()
    get = store.get

    async def get_and_tell(name: str):
        found = await get(name)
        read.set()
        return found

    store.get = get_and_tell
    return read


@async_test
async def test_sqlite_the_watch_thread_lives_through_a_failure_and_has_every_wait_re_read(
    tmp_path,
):
    path = str(tmp_path / "operations.db")
    here, there = SQLiteStore(path), SQLiteStore(path)
    stores.OPENED.extend([here, there])
    await there.insert(make_op(1))
    heard = Heard()
    with Logged("v1op.store", "cannot see other processes' writes") as failed:
        # The file is not at its path when the watch thread connects: a directory is.
        os.rename(path, path + ".away")
        os.mkdir(path)
        try:
            stop = here.watch(heard)
            assert await asyncio.to_thread(failed.event.wait, WAIT_SECONDS)
        finally:
            os.rmdir(path)
            os.rename(path + ".away", path)
    try:
        # The thread connects at its next tick, and has every wait re-read.
        assert await asyncio.to_thread(heard.event.wait, WAIT_SECONDS)
        assert heard.reports == [None]
        # And it goes on hearing other processes' writes.
        heard.event.clear()
        await there.modify([make_op(1).name], finish)
        assert await asyncio.to_thread(heard.event.wait, WAIT_SECONDS)
        assert heard.reports[-1] is None
        assert here._watch_thread is not None and here._watch_thread.is_alive()
    finally:
        stop()


@async_test
async def test_sqlite_a_watcher_that_raises_does_not_stop_the_others(tmp_path):
    path = str(tmp_path / "operations.db")
    here, there = SQLiteStore(path), SQLiteStore(path)
    stores.OPENED.extend([here, there])

    def broken(names: object) -> None:
        raise RuntimeError("a watcher's bug")

    heard = Heard()
    stops = [here.watch(broken), here.watch(heard)]
    try:
        for i in range(2):
            heard.event.clear()
            await there.insert(make_op(10 + i))
            assert await asyncio.to_thread(heard.event.wait, WAIT_SECONDS)
        assert here._watch_thread is not None and here._watch_thread.is_alive()
    finally:
        for stop in stops:
            stop()
