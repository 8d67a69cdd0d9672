"""Group commit: the writes waiting for a store's writer are made in one transaction, in the
order they came; one that fails fails alone, a database error fails them all and makes none,
and a caller that stops waiting does not undo a write the writer took."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator

import pytest
import stores
from stores import (
    async_test,
    counter_of,
    finish,
    increment,
    make_counter,
    make_name,
    make_op,
    one_batch,
    stamp_updater,
)

from v1op_pb import Operation
from v1op_pb.server.store import (
    Query,
    Store,
    StoredOperationExists,
    StoredOperationMissing,
    StoreUnavailable,
)

# The stores' fixtures (see stores: not in a conftest.py).
database, db, engine, opened, store = (
    stores.database,
    stores.db,
    stores.engine,
    stores.opened,
    stores.store,
)

GATE = make_name(999)


class Transactions:
    """Tells which transaction wrote a row: PostgreSQL's xmin of each row after the fact;
    for a SQLite file, the file's change counter as another connection sees it while each
    change runs (it moves with every commit)."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.seen: dict[str, int] = {}
        self._sqlite: sqlite3.Connection | None = None
        if not db.startswith("postgresql:"):
            self._sqlite = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    def recording(self, change: Callable[[Operation, int], Operation]):
        def recorded(op: Operation, now: int) -> Operation:
            if self._sqlite is not None:
                self.seen[op.name] = self._sqlite.execute("PRAGMA data_version").fetchone()[0]
            return change(op, now)

        return recorded

    def of(self, names: list[str]) -> set[object]:
        if self._sqlite is None:
            import psycopg

            with psycopg.connect(self.db, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT xmin::text FROM v1op_operations WHERE name = ANY(%s)", (names,)
                ).fetchall()
            return {xmin for (xmin,) in rows}
        return {self.seen[name] for name in names}

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()


@pytest.fixture
def transactions(engine, db) -> Iterator[Transactions]:
    if engine == "sqlite-memory":
        pytest.skip("nothing outside a :memory: store can see its transactions")
    seen = Transactions(db)
    yield seen
    seen.close()


async def fill(store: Store, count: int) -> list[str]:
    await store.insert(make_counter(0, 999))  # the gate one_batch holds SQLite's writer on
    await asyncio.gather(*(store.insert(make_counter(0, i)) for i in range(count)))
    return [make_name(i) for i in range(count)]


@async_test
async def test_writes_waiting_together_commit_in_one_transaction(store, transactions):
    names = await fill(store, 8)
    async with one_batch(store, GATE):
        written = [store.modify([name], transactions.recording(increment)) for name in names]
    await asyncio.gather(*written)
    assert len(transactions.of(names)) == 1
    # And alone, a write is a transaction of its own.
    await store.modify([names[0]], transactions.recording(increment))
    assert len(transactions.of(names)) == 2


def refuse(op: Operation, now: int) -> Operation:
    op.updater = "services/half-done"  # on its own copy: nobody may see it
    raise ValueError("refused")


@async_test
async def test_a_write_that_fails_fails_alone_and_the_rest_of_its_batch_commits(store):
    names = await fill(store, 3)
    a, b, _ = names
    async with one_batch(store, GATE):
        first = store.modify([a], increment)
        refused = store.modify([a, b], refuse)
        second = store.modify([a], increment)
        missing = store.modify([b, make_name(500)], increment)
        duplicate = store.insert(make_op(2))
        new = store.insert(make_counter(7, 501))
        third = store.modify([b], increment)
        new_changed = store.modify([make_name(501)], increment)
    assert [counter_of(op) for op in await first] == [1]
    with pytest.raises(ValueError, match="refused"):
        await refused
    # The write after the refused one sees the write before it, not the refused change.
    (after,) = await second
    assert counter_of(after) == 2
    assert after.updater == "services/evaluator"
    with pytest.raises(StoredOperationMissing) as caught:
        await missing
    assert caught.value.args == (make_name(500),)
    with pytest.raises(StoredOperationExists):
        await duplicate
    assert await new is None
    assert [counter_of(op) for op in await third] == [1]
    assert [counter_of(op) for op in await new_changed] == [8]
    stored = await store.get_many([*names, make_name(501)])
    assert [counter_of(stored[name]) for name in [*names, make_name(501)]] == [2, 1, 0, 8]
    assert all(op.updater == "services/evaluator" for op in stored.values())
    # The operation inserted in the batch lists after the ones before it.
    listed = [op.name for op in (await store.list(Query())).operations]
    assert listed[-1] == make_name(501)


def poison(op: Operation, now: int) -> Operation:
    op.creator = "users/poison"  # a database trigger refuses this row
    return op


@contextlib.contextmanager
def sqlite_trigger(path: str, action: str) -> Iterator[None]:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON operations "
            f"WHEN NEW.creator = 'users/poison' BEGIN SELECT RAISE({action}, 'injected'); END"
        )
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER refuse")


POSTGRES_FAULTS = {
    # The UPDATE of the poisoned row fails: the batch's transaction is aborted.
    "statement": (
        "BEGIN RAISE EXCEPTION 'injected'; END",
        "CREATE TRIGGER refuse BEFORE UPDATE ON v1op_operations FOR EACH ROW "
        "WHEN (NEW.creator = 'users/poison') EXECUTE FUNCTION v1op_refuse()",
    ),
    # A deferred constraint trigger runs at COMMIT: the commit itself fails.
    "commit": (
        "BEGIN RAISE EXCEPTION 'injected at commit'; END",
        "CREATE CONSTRAINT TRIGGER refuse AFTER UPDATE ON v1op_operations "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "WHEN (NEW.creator = 'users/poison') EXECUTE FUNCTION v1op_refuse()",
    ),
    # The database ends the writer's connection in the middle of the batch.
    "connection": (
        "BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END",
        "CREATE TRIGGER refuse BEFORE UPDATE ON v1op_operations FOR EACH ROW "
        "WHEN (NEW.creator = 'users/poison') EXECUTE FUNCTION v1op_refuse()",
    ),
}


@contextlib.contextmanager
def postgres_trigger(url: str, fault: str) -> Iterator[None]:
    import psycopg

    body, trigger = POSTGRES_FAULTS[fault]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION v1op_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$"
        )
        conn.execute(trigger)
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER refuse ON v1op_operations")
            conn.execute("DROP FUNCTION v1op_refuse()")


FAULTS = [
    pytest.param("sqlite-file", "ABORT", id="sqlite-statement"),
    pytest.param("sqlite-file", "ROLLBACK", id="sqlite-rollback"),
    *(pytest.param("postgres", fault, id=f"postgres-{fault}") for fault in POSTGRES_FAULTS),
]


@pytest.mark.parametrize(("engine", "fault"), FAULTS)
@async_test
async def test_a_database_error_fails_every_write_of_its_batch_and_makes_none(
    store, db, engine, fault
):
    names = await fill(store, 3)
    a, b, c = names
    before = await store.get_many(names)
    trigger = postgres_trigger(db, fault) if engine == "postgres" else sqlite_trigger(db, fault)
    with trigger:
        async with one_batch(store, GATE):
            writes = [
                store.modify([a], increment),
                store.modify([b], poison),
                store.modify([c, a], increment),
                store.insert(make_op(600)),
            ]
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    # Nothing of the batch is stored, not even the writes before the poisoned one.
    assert await store.get_many([*names, make_name(600)]) == before
    # The store goes on: the same writes, without the poison, commit.
    written = await asyncio.gather(store.modify([c, a], increment), store.insert(make_op(600)))
    assert [counter_of(op) for op in written[0]] == [1, 1]
    assert await store.get(make_name(600)) == make_op(600)


@async_test
async def test_a_caller_cancelled_after_its_write_was_taken_still_has_it_made(store):
    names = await fill(store, 2)
    loop = asyncio.get_running_loop()
    caller: asyncio.Task[list[Operation]] | None = None

    def finish_and_be_cancelled(op: Operation, now: int) -> Operation:
        # The caller's client goes away while the writer is making its write.
        assert caller is not None
        loop.call_soon_threadsafe(caller.cancel)
        return finish(op, now)

    async def call() -> list[Operation]:
        return await store.modify([names[0]], finish_and_be_cancelled)

    async with one_batch(store, GATE):
        caller = asyncio.ensure_future(call())
        await asyncio.sleep(0)  # the caller submits its write
        beside = store.modify([names[1]], stamp_updater)
    with pytest.raises(asyncio.CancelledError):
        await caller
    # Its batch's other write answers once the batch has committed.
    assert (await beside)[0].updater == "services/again"
    assert (await store.get(names[0])).done


@async_test
async def test_a_caller_cancelled_before_the_writer_took_its_write_has_none_made(store):
    names = await fill(store, 2)
    async with one_batch(store, GATE):
        dropped = store.modify([names[0]], finish)
        kept = store.modify([names[1]], finish)
        dropped.cancel()
    assert (await kept)[0].done
    assert not (await store.get(names[0])).done


@async_test
async def test_a_batch_larger_than_the_cap_is_made_in_several_transactions(store):
    # 1500 single-name writes at once: every one is made, each exactly once.
    await store.insert(make_counter(0, 1))
    results = await asyncio.gather(*(store.modify([make_name(1)], increment) for _ in range(1500)))
    assert sorted(counter_of(op) for (op,) in results) == list(range(1, 1501))
    assert counter_of(await store.get(make_name(1))) == 1500


@async_test
async def test_a_change_runs_on_what_every_earlier_commit_left(opened):
    # Two stores (two processes) writing one operation: each change sees its row under the
    # write lock, so no increment is lost whatever the batches.
    first, second = opened(), opened()
    await first.insert(make_counter(0, 1))

    async def burst(store: Store) -> None:
        for _ in range(5):
            await asyncio.gather(*(store.modify([make_name(1)], increment) for _ in range(20)))

    await asyncio.gather(burst(first), burst(second))
    assert counter_of(await second.get(make_name(1))) == 200


@async_test
async def test_a_writer_connection_dropped_while_idle_fails_no_write(postgres):
    # The database ends the writer's connection between two batches (a restart, an
    # administrator): the next batch finds it broken before any change ran, and is made on a
    # new connection rather than failing its callers.
    import psycopg

    from v1op_pb.server.store import open_store

    database = postgres.new_database()
    store = open_store(database)
    try:
        await store.insert(make_counter(0, 1))
        with psycopg.connect(database, autocommit=True) as admin:
            others = "datname = current_database() AND pid <> pg_backend_pid()"
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}")
        (changed,) = await store.modify([make_name(1)], increment)
        assert counter_of(changed) == 1
        await store.insert(make_op(2))
        assert counter_of(await store.get(make_name(1))) == 1
    finally:
        await store.aclose()
