"""The Store engines, SQLite and PostgreSQL: operations kept as their binary proto, with the
lookups the server needs. Every test runs against each engine."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3

import pytest
import stores
from factories import make_failed, make_running, make_succeeded, make_timestamp
from stores import (
    Heard,
    async_test,
    counter_of,
    finish,
    increment,
    make_counter,
    make_name,
    make_op,
    names_of,
    stamp_updater,
)

from v1op_pb import Operation
from v1op_pb.server.store import (
    SCHEMA_VERSION,
    Page,
    Query,
    SchemaTooNew,
    SQLiteStore,
    Store,
    StoredOperationExists,
    StoredOperationMissing,
    StoreUnavailable,
    open_store,
)

# The stores' fixtures (see stores: not in a conftest.py).
database, db, engine, opened, store = (
    stores.database,
    stores.db,
    stores.engine,
    stores.opened,
    stores.store,
)

# --- insert and get --------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [make_running, make_succeeded, make_failed])
@async_test
async def test_get_returns_what_was_inserted(store, factory):
    op = factory()
    await store.insert(op)
    assert await store.get(op.name) == op
    got = await store.get(op.name)
    assert got.SerializeToString(deterministic=True) == op.SerializeToString(deterministic=True)


@async_test
async def test_get_returns_a_fresh_message(store):
    # The caller may change what it got; the stored operation must not change with it.
    op = make_running()
    await store.insert(op)
    got = await store.get(op.name)
    got.done = True
    op.creator = "users/mallory"
    assert await store.get(op.name) == make_running()


@async_test
async def test_unknown_fields_survive_the_round_trip(store):
    # A newer writer's fields (here field 99) must reach a newer reader through this server.
    data = make_running().SerializeToString() + b"\x9a\x06\x05hello"
    op = Operation.FromString(data)
    await store.insert(op)
    assert (await store.get(op.name)).SerializeToString() == data


@async_test
async def test_get_of_an_unknown_name_is_none(store):
    await store.insert(make_op(1))
    assert await store.get(make_name(2)) is None


@async_test
async def test_duplicate_insert_fails_and_keeps_the_first(store):
    await store.insert(make_op(1, creator="users/ada"))
    with pytest.raises(StoredOperationExists) as caught:
        await store.insert(make_op(1, creator="users/bob"))
    assert caught.value.args == (make_name(1),)
    assert (await store.get(make_name(1))).creator == "users/ada"
    assert (await store.list(Query())).total_size == 1


@async_test
async def test_get_many_reads_more_names_than_one_statement_may_bind(store):
    await asyncio.gather(*(store.insert(make_op(i)) for i in range(1200)))
    # Duplicates and unknown names are part of what a batch call may send.
    wanted = [make_name(i) for i in range(1200)] + [make_name(5), make_name(5000)]
    found = await store.get_many(wanted)
    assert set(found) == {make_name(i) for i in range(1200)}
    assert all(found[name].name == name for name in found)


@async_test
async def test_get_many_of_nothing(store):
    assert await store.get_many([]) == {}


@async_test
async def test_names_postgres_text_cannot_hold_are_simply_not_stored(store):
    # A name may carry NUL (operations/[^/]+ allows it); PostgreSQL's text cannot: such a
    # name is not found, by every engine, and does not fail the writes batched with it.
    await store.insert(make_op(1))
    odd = "operations/a\x00b"
    assert await store.get(odd) is None
    assert await store.get_many([odd, make_name(1)]) == {make_name(1): make_op(1)}
    missing = store.modify([odd], stamp_updater)
    changed = store.modify([make_name(1)], stamp_updater)
    with pytest.raises(StoredOperationMissing):
        await missing
    assert (await changed)[0].updater == "services/again"


# --- list ------------------------------------------------------------------------------------


async def make_mixed(store: Store) -> None:
    await store.insert(make_op(1, creator="users/ada"))
    await store.insert(make_op(2, creator="users/ada", done=True))
    await store.insert(make_op(3, creator="users/ada", done=True, seen=True))
    await store.insert(make_op(4, creator="users/bob", done=True))
    await store.insert(make_op(5, creator="users/ada", done=True, deleted=True))
    await store.insert(make_op(6, creator="services/evaluator"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (Query(), [1, 2, 3, 4, 6]),
        (Query(creator="users/ada"), [1, 2, 3]),
        (Query(creator="users/bob"), [4]),
        (Query(creator="users/nobody"), []),
        (Query(done=True), [2, 3, 4]),
        (Query(done=False), [1, 6]),
        (Query(seen=True), [3]),
        (Query(seen=False), [1, 2, 4, 6]),
        (Query(creator="users/ada", done=True, seen=False), [2]),
        (Query(deleted=None), [1, 2, 3, 4, 5, 6]),
        (Query(creator="users/ada", deleted=None, done=True), [2, 3, 5]),
    ],
)
@async_test
async def test_list_filters_combine_with_and(store, query, expected):
    await make_mixed(store)
    page = await store.list(query)
    assert names_of(page) == [make_name(i) for i in expected]
    assert page.total_size == len(expected)


@async_test
async def test_list_is_in_creation_order_not_name_order(store):
    for i in [5, 3, 9, 1]:
        await store.insert(make_op(i))
    assert names_of(await store.list(Query())) == [make_name(i) for i in [5, 3, 9, 1]]


@async_test
async def test_inserts_batched_together_list_in_the_order_they_were_made(store):
    # Inserts taken as one batch get their sequence numbers in the order they came.
    order = [7, 2, 9, 4, 1, 8]
    await asyncio.gather(*(store.insert(make_op(i)) for i in order))
    assert names_of(await store.list(Query())) == [make_name(i) for i in order]


@async_test
async def test_list_pages_with_limit_and_cursor(store):
    await make_mixed(store)
    query = Query(creator="users/ada")
    first = await store.list(Query(creator="users/ada", limit=2))
    assert names_of(first) == [make_name(1), make_name(2)]
    # total_size counts every match, whatever the page.
    assert first.total_size == 3
    second = await store.list(Query(creator="users/ada", limit=2, after=first.cursor))
    assert names_of(second) == [make_name(3)]
    assert second.total_size == 3
    last = await store.list(Query(creator="users/ada", limit=2, after=second.cursor))
    assert last.operations == []
    assert last.total_size == 3
    assert last.cursor == 0
    assert names_of(await store.list(query)) == names_of(first) + names_of(second)


@async_test
async def test_list_limit_zero_means_no_limit(store):
    for i in range(30):
        await store.insert(make_op(i))
    page = await store.list(Query(limit=0))
    assert len(page.operations) == 30
    assert page.cursor > 0


@async_test
async def test_list_of_an_empty_store(store):
    assert await store.list(Query()) == Page([], 0, 0)


@async_test
async def test_list_columns_follow_modify(store):
    # done, seen, deleted and creator are columns beside the proto; modify must keep them
    # in step with the proto, or the filters would answer from stale columns.
    await store.insert(make_op(1))
    await store.modify([make_name(1)], finish)
    assert names_of(await store.list(Query(done=True, seen=False))) == [make_name(1)]

    def see(op: Operation, now: int) -> Operation:
        op.seen_by_creator_time.CopyFrom(make_timestamp("2026-11-22T00:00:00Z"))
        return op

    await store.modify([make_name(1)], see)
    assert names_of(await store.list(Query(done=True, seen=True))) == [make_name(1)]

    def delete(op: Operation, now: int) -> Operation:
        op.delete_time.CopyFrom(make_timestamp("2026-11-23T00:00:00Z"))
        return op

    await store.modify([make_name(1)], delete)
    assert (await store.list(Query())).total_size == 0
    assert names_of(await store.list(Query(deleted=None))) == [make_name(1)]


# --- modify ----------------------------------------------------------------------------------


@async_test
async def test_modify_replaces_and_returns_the_new_operations(store):
    for i in range(3):
        await store.insert(make_op(i))

    def rename_updater(op: Operation, now: int) -> Operation:
        op.updater = "services/other"
        return op

    updated = await store.modify([make_name(2), make_name(0)], rename_updater)
    assert [op.name for op in updated] == [make_name(2), make_name(0)]
    assert all(op.updater == "services/other" for op in updated)
    assert (await store.get(make_name(0))).updater == "services/other"
    assert (await store.get(make_name(1))).updater == "services/evaluator"
    assert await store.get(make_name(2)) == updated[0]


@async_test
async def test_modify_is_all_or_none_when_change_raises(store):
    for i in range(3):
        await store.insert(make_op(i))
    before = [await store.get(make_name(i)) for i in range(3)]
    calls = []

    def change(op: Operation, now: int) -> Operation:
        calls.append(op.name)
        if len(calls) == 2:
            raise RuntimeError("refused")
        op.updater = "services/changed"
        return op

    with pytest.raises(RuntimeError, match=re.escape("refused")):
        await store.modify([make_name(i) for i in range(3)], change)
    assert calls == [make_name(0), make_name(1)]
    # The first one was changed before the second refused: none of it may be stored.
    assert [await store.get(make_name(i)) for i in range(3)] == before


@async_test
async def test_modify_of_a_missing_name_raises_and_changes_nothing(store):
    await store.insert(make_op(1))
    before = await store.get(make_name(1))

    def change(op: Operation, now: int) -> Operation:
        op.updater = "services/changed"
        return op

    with pytest.raises(StoredOperationMissing) as caught:
        await store.modify([make_name(1), make_name(2)], change)
    assert caught.value.args == (make_name(2),)
    assert isinstance(caught.value, KeyError)
    assert await store.get(make_name(1)) == before


@async_test
async def test_the_store_works_after_a_refused_modify(store):
    await store.insert(make_op(1))

    def fail(op: Operation, now: int) -> Operation:
        raise ValueError("no")

    with pytest.raises(ValueError, match=re.escape("no")):
        await store.modify([make_name(1)], fail)
    await store.insert(make_op(2))
    await store.modify([make_name(1)], stamp_updater)
    assert (await store.list(Query())).total_size == 2


@async_test
async def test_modify_of_a_name_given_twice_sees_its_own_first_write(store):
    await store.insert(make_counter(0))
    name = make_running().name
    updated = await store.modify([name, name], increment)
    assert [counter_of(op) for op in updated] == [1, 2]
    assert counter_of(await store.get(name)) == 2


@async_test
async def test_concurrent_modifies_lose_no_update(store):
    # Many writes of one operation at once: each must see the one before it.
    await store.insert(make_counter(0))
    name = make_running().name
    results = await asyncio.gather(*(store.modify([name], increment) for _ in range(200)))
    assert sorted(counter_of(op) for (op,) in results) == list(range(1, 201))
    assert counter_of(await store.get(name)) == 200


@async_test
async def test_two_stores_on_one_database_lose_no_update(opened):
    # Two processes sharing the database: each batch must lock what it reads.
    first, second = opened(), opened()
    await first.insert(make_counter(0))
    name = make_running().name

    async def bump(store: Store) -> None:
        for _ in range(10):
            await asyncio.gather(*(store.modify([name], increment) for _ in range(10)))

    await asyncio.gather(bump(first), bump(second))
    assert counter_of(await first.get(name)) == 200
    assert counter_of(await second.get(name)) == 200


@async_test
async def test_batches_locking_the_same_operations_in_any_order_all_commit(opened):
    # Two stores writing the same operations in opposite orders: locks taken in the given
    # order would deadlock (PostgreSQL would then abort one of the transactions).
    first, second = opened(), opened()
    for i in range(20):
        await first.insert(make_counter(0, i))
    names = [make_name(i) for i in range(20)]

    async def bump(store: Store, order: list[str]) -> None:
        for _ in range(5):
            await asyncio.gather(
                store.modify(order, increment), store.modify(order[::2], increment)
            )

    await asyncio.gather(bump(first, names), bump(second, names[::-1]))
    # Each store: 5 times every name, and 5 times half of them (the even ones from the
    # first, the odd ones from the second, whose list is reversed).
    counts = [counter_of(op) for op in (await first.get_many(names)).values()]
    assert counts == [15] * 20


# --- watching other stores -------------------------------------------------------------------


@async_test
async def test_a_finish_in_one_store_is_heard_by_another(opened, database):
    writer, watcher = opened(), opened()
    await writer.insert(make_op(1))
    heard = Heard()
    stop = await asyncio.to_thread(watcher.watch, heard)
    heard.reports.clear()  # SQLite's watch reports once when it starts: nothing is missed
    heard.event.clear()
    await writer.modify([make_name(1)], finish)
    assert await asyncio.to_thread(heard.event.wait, 10)
    # PostgreSQL says which operation; SQLite only that the database changed.
    expected = [make_name(1)] if database.startswith("postgresql:") else None
    assert heard.reports[0] == expected
    stop()


@async_test
async def test_a_change_that_finishes_nothing_is_not_announced_by_postgres(postgres):
    database = postgres.new_database()
    writer, watcher = open_store(database), open_store(database)
    try:
        await writer.insert(make_op(1))
        await writer.insert(make_op(2))
        heard = Heard()
        await asyncio.to_thread(watcher.watch, heard)
        await writer.modify([make_name(1)], stamp_updater)  # still running: no wake-up
        await writer.modify([make_name(2)], finish)
        assert await asyncio.to_thread(heard.event.wait, 10)
        assert heard.reports == [[make_name(2)]]
    finally:
        await writer.aclose()
        await watcher.aclose()


def test_memory_stores_never_report():
    store = SQLiteStore(":memory:")
    heard = Heard()
    store.watch(heard)()
    store.close()
    assert heard.reports == []


# --- restart ---------------------------------------------------------------------------------


@async_test
async def test_reopening_keeps_every_operation(opened):
    store = opened()
    await make_mixed(store)
    await store.modify([make_name(1)], stamp_updater)
    expected = {op.name: op for op in (await store.list(Query(deleted=None))).operations}
    await store.aclose()

    reopened = opened()
    page = await reopened.list(Query(deleted=None))
    assert {op.name: op for op in page.operations} == expected
    assert (await reopened.get(make_name(1))).updater == "services/again"
    # The columns survive too, so filtered lists still answer right.
    unseen = await reopened.list(Query(creator="users/ada", done=True, seen=False))
    assert names_of(unseen) == [make_name(2)]
    # New operations keep coming after the old ones in creation order.
    await reopened.insert(make_op(0))
    assert names_of(await reopened.list(Query()))[-1] == make_name(0)


@async_test
async def test_a_closed_store_refuses_calls(store):
    await store.insert(make_op(1))
    await store.aclose()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.modify([make_name(1)], stamp_updater)
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.insert(make_op(2))
    with pytest.raises(StoreUnavailable):
        await store.get(make_name(1))


@async_test
async def test_a_database_of_a_newer_schema_is_refused(opened, database):
    await opened().insert(make_op(1))
    if database.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("UPDATE v1op_schema SET version = %s", (SCHEMA_VERSION + 1,))
    else:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}; this server"):
        opened()


def test_an_unreachable_postgres_is_one_clear_error():
    # Port 1 on loopback: nothing listens there.
    with pytest.raises(StoreUnavailable, match=r"cannot use PostgreSQL database .*refused"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")


def test_the_password_stays_out_of_the_message():
    with pytest.raises(StoreUnavailable) as caught:
        open_store("postgresql://nobody:s3cret-pw@127.0.0.1:1/none")
    assert "s3cret-pw" not in str(caught.value)


def test_an_unopenable_sqlite_file_is_one_clear_error(tmp_path):
    with pytest.raises(StoreUnavailable, match=r"cannot open SQLite database .*unable to open"):
        open_store(str(tmp_path / "no-such-dir" / "ops.db"))


@async_test
async def test_a_write_lock_held_too_long_by_another_process_is_store_unavailable(tmp_path):
    path = str(tmp_path / "locked.db")
    store = SQLiteStore(path, busy_seconds=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.insert(make_op(1))
        other.execute("BEGIN IMMEDIATE")  # another process, in the middle of a write
        with pytest.raises(StoreUnavailable, match="database is locked"):
            await store.modify([make_name(1)], stamp_updater)
        with pytest.raises(StoreUnavailable, match="database is locked"):
            await store.insert(make_op(2))
        # Readers of a WAL database do not wait for writers.
        assert await store.get(make_name(1)) == make_op(1)
        other.execute("ROLLBACK")
        await store.modify([make_name(1)], stamp_updater)
        assert (await store.get(make_name(1))).updater == "services/again"
    finally:
        other.close()
        await store.aclose()


def test_memory_stores_are_separate():
    async def check() -> None:
        first, second = SQLiteStore(":memory:"), SQLiteStore(":memory:")
        await first.insert(make_op(1))
        assert await second.get(make_name(1)) is None
        await first.aclose()
        await second.aclose()

    asyncio.run(check())


# --- the time of a write ---------------------------------------------------------------------


@async_test
async def test_modify_reads_the_clock_once_per_call_and_gives_every_name_that_time(store):
    for i in range(3):
        await store.insert(make_op(i))
    ticks = iter(range(100, 200))
    seen: list[tuple[str, int]] = []

    def record(op: Operation, now: int) -> Operation:
        seen.append((op.name, now))
        return op

    await store.modify([make_name(i) for i in range(3)], record, clock=lambda: next(ticks))
    assert seen == [(make_name(i), 100) for i in range(3)]
    await store.modify([make_name(1)], record, clock=lambda: next(ticks))
    assert seen[-1] == (make_name(1), 101)


@async_test
async def test_modify_reads_the_clock_under_the_lock_that_orders_writes(store):
    # Times handed to ``change`` follow commit order: a clock read before the lock could
    # give a later commit an earlier time (update_time going backwards).
    await store.insert(make_counter(0))
    name = make_running().name
    ticks = iter(range(1, 10_000))
    committed: list[int] = []

    def change(op: Operation, now: int) -> Operation:
        committed.append(now)  # runs under the store's lock, so in commit order
        return increment(op, now)

    await asyncio.gather(
        *(store.modify([name], change, clock=lambda: next(ticks)) for _ in range(200))
    )
    assert committed == sorted(committed)
    assert counter_of(await store.get(name)) == 200
