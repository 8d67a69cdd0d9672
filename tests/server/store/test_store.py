"""The Store engines, SQLite and PostgreSQL: operations kept as their binary proto, with the
lookups the server needs. Every test runs against each engine."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import make_failed, make_running, make_succeeded, make_timestamp
from google.protobuf import struct_pb2

from v1op_pb import Operation, pack
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


@pytest.fixture(params=["sqlite-file", "postgres"])
def database(request, tmp_path) -> str:
    """What ``--db`` says for an empty database that several stores may open."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres").new_database()
    return str(tmp_path / "operations.db")


@pytest.fixture
def opened(database) -> Iterator[Callable[[], Store]]:
    """Opens another store on ``database``; closes every one at the end."""
    stores: list[Store] = []

    def open_one() -> Store:
        stores.append(open_store(database))
        return stores[-1]

    yield open_one
    for one in stores:
        one.close()


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgres"])
def store(request, tmp_path) -> Iterator[Store]:
    # Every engine the server uses: :memory: for tests, a file (WAL mode) or PostgreSQL.
    if request.param == "postgres":
        db = request.getfixturevalue("postgres").new_database()
    elif request.param == "sqlite-file":
        db = str(tmp_path / "operations.db")
    else:
        db = ":memory:"
    store = open_store(db)
    yield store
    store.close()


def make_name(i: int) -> str:
    return f"operations/{i:08d}-0000-4000-8000-000000000000"


def make_op(
    i: int,
    *,
    creator: str = "users/ada",
    done: bool = False,
    seen: bool = False,
    deleted: bool = False,
) -> Operation:
    op = make_succeeded() if done else make_running()
    op.name = make_name(i)
    op.creator = creator
    op.ClearField("seen_by_creator_time")
    if seen:
        op.seen_by_creator_time.CopyFrom(make_timestamp("2026-11-20T10:00:00Z"))
    if deleted:
        op.delete_time.CopyFrom(make_timestamp("2026-11-21T00:00:00Z"))
        op.deleter = "services/evaluator"
    return op


def make_counter(value: int) -> Operation:
    op = make_running()
    op.metadata.CopyFrom(
        pack(struct_pb2.Struct(fields={"count": struct_pb2.Value(number_value=value)}))
    )
    return op


def counter_of(op: Operation) -> int:
    metadata = struct_pb2.Struct()
    op.metadata.Unpack(metadata)
    return int(metadata["count"])


def increment(op: Operation, now: int) -> Operation:
    op.metadata.CopyFrom(make_counter(counter_of(op) + 1).metadata)
    return op


def stamp_updater(op: Operation, now: int) -> Operation:
    op.updater = "services/again"
    return op


def names_of(page: Page) -> list[str]:
    return [op.name for op in page.operations]


# --- insert and get --------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [make_running, make_succeeded, make_failed])
def test_get_returns_what_was_inserted(store, factory):
    op = factory()
    store.insert(op)
    assert store.get(op.name) == op
    assert store.get(op.name).SerializeToString(deterministic=True) == op.SerializeToString(
        deterministic=True
    )


def test_get_returns_a_fresh_message(store):
    # The caller may change what it got; the stored operation must not change with it.
    op = make_running()
    store.insert(op)
    got = store.get(op.name)
    got.done = True
    op.creator = "users/mallory"
    assert store.get(op.name) == make_running()


def test_unknown_fields_survive_the_round_trip(store):
    # A newer writer's fields (here field 99) must reach a newer reader through this server.
    data = make_running().SerializeToString() + b"\x9a\x06\x05hello"
    op = Operation.FromString(data)
    store.insert(op)
    assert store.get(op.name).SerializeToString() == data


def test_get_of_an_unknown_name_is_none(store):
    store.insert(make_op(1))
    assert store.get(make_name(2)) is None


def test_duplicate_insert_fails_and_keeps_the_first(store):
    store.insert(make_op(1, creator="users/ada"))
    with pytest.raises(StoredOperationExists) as caught:
        store.insert(make_op(1, creator="users/bob"))
    assert caught.value.args == (make_name(1),)
    assert store.get(make_name(1)).creator == "users/ada"
    assert store.list(Query()).total_size == 1


def test_get_many_reads_more_names_than_one_statement_may_bind(store):
    for i in range(1200):
        store.insert(make_op(i))
    # Duplicates and unknown names are part of what a batch call may send.
    wanted = [make_name(i) for i in range(1200)] + [make_name(5), make_name(5000)]
    found = store.get_many(wanted)
    assert set(found) == {make_name(i) for i in range(1200)}
    assert all(found[name].name == name for name in found)


def test_get_many_of_nothing(store):
    assert store.get_many([]) == {}


# --- list ------------------------------------------------------------------------------------


def make_mixed(store: Store) -> None:
    store.insert(make_op(1, creator="users/ada"))
    store.insert(make_op(2, creator="users/ada", done=True))
    store.insert(make_op(3, creator="users/ada", done=True, seen=True))
    store.insert(make_op(4, creator="users/bob", done=True))
    store.insert(make_op(5, creator="users/ada", done=True, deleted=True))
    store.insert(make_op(6, creator="services/evaluator"))


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
        (Query(include_deleted=True), [1, 2, 3, 4, 5, 6]),
        (Query(creator="users/ada", include_deleted=True, done=True), [2, 3, 5]),
    ],
)
def test_list_filters_combine_with_and(store, query, expected):
    make_mixed(store)
    page = store.list(query)
    assert names_of(page) == [make_name(i) for i in expected]
    assert page.total_size == len(expected)


def test_list_is_in_creation_order_not_name_order(store):
    for i in [5, 3, 9, 1]:
        store.insert(make_op(i))
    assert names_of(store.list(Query())) == [make_name(i) for i in [5, 3, 9, 1]]


def test_list_pages_with_limit_and_cursor(store):
    make_mixed(store)
    query = Query(creator="users/ada")
    first = store.list(Query(creator="users/ada", limit=2))
    assert names_of(first) == [make_name(1), make_name(2)]
    # total_size counts every match, whatever the page.
    assert first.total_size == 3
    second = store.list(Query(creator="users/ada", limit=2, after=first.cursor))
    assert names_of(second) == [make_name(3)]
    assert second.total_size == 3
    last = store.list(Query(creator="users/ada", limit=2, after=second.cursor))
    assert last.operations == []
    assert last.total_size == 3
    assert last.cursor == 0
    assert names_of(store.list(query)) == names_of(first) + names_of(second)


def test_list_limit_zero_means_no_limit(store):
    for i in range(30):
        store.insert(make_op(i))
    page = store.list(Query(limit=0))
    assert len(page.operations) == 30
    assert page.cursor > 0


def test_list_of_an_empty_store(store):
    assert store.list(Query()) == Page([], 0, 0)


def test_list_columns_follow_modify(store):
    # done, seen, deleted and creator are columns beside the proto; modify must keep them
    # in step with the proto, or the filters would answer from stale columns.
    store.insert(make_op(1))

    def finish(op: Operation, now: int) -> Operation:
        op.done = True
        op.response.CopyFrom(make_succeeded().response)
        return op

    store.modify([make_name(1)], finish)
    assert names_of(store.list(Query(done=True, seen=False))) == [make_name(1)]

    def see(op: Operation, now: int) -> Operation:
        op.seen_by_creator_time.CopyFrom(make_timestamp("2026-11-22T00:00:00Z"))
        return op

    store.modify([make_name(1)], see)
    assert names_of(store.list(Query(done=True, seen=True))) == [make_name(1)]

    def delete(op: Operation, now: int) -> Operation:
        op.delete_time.CopyFrom(make_timestamp("2026-11-23T00:00:00Z"))
        return op

    store.modify([make_name(1)], delete)
    assert store.list(Query()).total_size == 0
    assert names_of(store.list(Query(include_deleted=True))) == [make_name(1)]


# --- modify ----------------------------------------------------------------------------------


def test_modify_replaces_and_returns_the_new_operations(store):
    for i in range(3):
        store.insert(make_op(i))

    def rename_updater(op: Operation, now: int) -> Operation:
        op.updater = "services/other"
        return op

    updated = store.modify([make_name(2), make_name(0)], rename_updater)
    assert [op.name for op in updated] == [make_name(2), make_name(0)]
    assert all(op.updater == "services/other" for op in updated)
    assert store.get(make_name(0)).updater == "services/other"
    assert store.get(make_name(1)).updater == "services/evaluator"
    assert store.get(make_name(2)) == updated[0]


def test_modify_is_all_or_none_when_change_raises(store):
    for i in range(3):
        store.insert(make_op(i))
    before = [store.get(make_name(i)) for i in range(3)]
    calls = []

    def change(op: Operation, now: int) -> Operation:
        calls.append(op.name)
        if len(calls) == 2:
            raise RuntimeError("refused")
        op.updater = "services/changed"
        return op

    with pytest.raises(RuntimeError, match=re.escape("refused")):
        store.modify([make_name(i) for i in range(3)], change)
    assert calls == [make_name(0), make_name(1)]
    # The first one was written inside the transaction; the rollback must undo it.
    assert [store.get(make_name(i)) for i in range(3)] == before


def test_modify_of_a_missing_name_raises_and_changes_nothing(store):
    store.insert(make_op(1))
    before = store.get(make_name(1))

    def change(op: Operation, now: int) -> Operation:
        op.updater = "services/changed"
        return op

    with pytest.raises(StoredOperationMissing) as caught:
        store.modify([make_name(1), make_name(2)], change)
    assert caught.value.args == (make_name(2),)
    assert isinstance(caught.value, KeyError)
    assert store.get(make_name(1)) == before


def test_the_store_works_after_a_rolled_back_modify(store):
    store.insert(make_op(1))

    def fail(op: Operation, now: int) -> Operation:
        raise ValueError("no")

    with pytest.raises(ValueError, match=re.escape("no")):
        store.modify([make_name(1)], fail)
    store.insert(make_op(2))
    store.modify([make_name(1)], stamp_updater)
    assert store.list(Query()).total_size == 2


def test_modify_of_a_name_given_twice_sees_its_own_first_write(store):
    store.insert(make_counter(0))
    name = make_running().name
    updated = store.modify([name, name], increment)
    assert [counter_of(op) for op in updated] == [1, 2]
    assert counter_of(store.get(name)) == 2


def test_modify_from_many_threads_loses_no_update(store):
    # The server runs store calls in worker threads; read-modify-write must be atomic.
    store.insert(make_counter(0))
    name = make_running().name
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.modify([name], increment), range(200)))
    assert counter_of(store.get(name)) == 200


def test_two_stores_on_one_database_lose_no_update(opened):
    # Two processes sharing the database: each modify must lock what it reads.
    first, second = opened(), opened()
    first.insert(make_counter(0))
    name = make_running().name
    start = threading.Barrier(2)

    def bump(store: Store) -> None:
        start.wait()
        for _ in range(100):
            store.modify([name], increment)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(bump, [first, second]))
    assert counter_of(first.get(name)) == 200
    assert counter_of(second.get(name)) == 200


def test_batches_locking_the_same_operations_in_any_order_all_commit(opened):
    # Two batches naming the same operations in opposite orders: locks taken in the given
    # order would deadlock (PostgreSQL would then abort one of them).
    first, second = opened(), opened()
    for i in range(20):
        first.insert(make_named_counter(i))
    names = [make_name(i) for i in range(20)]
    start = threading.Barrier(2)

    def bump(job: tuple[Store, list[str]]) -> None:
        store, order = job
        start.wait()
        for _ in range(20):
            store.modify(order, increment)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(bump, [(first, names), (second, names[::-1])]))
    assert [counter_of(op) for op in first.get_many(names).values()] == [40] * 20


def make_named_counter(i: int) -> Operation:
    op = make_counter(0)
    op.name = make_name(i)
    return op


# --- watching other stores -------------------------------------------------------------------


class Heard:
    """What a store's watch reported, with an event to wait on."""

    def __init__(self) -> None:
        self.reports: list[list[str] | None] = []
        self.event = threading.Event()

    def __call__(self, names) -> None:
        self.reports.append(None if names is None else list(names))
        self.event.set()


def finish(op: Operation, now: int) -> Operation:
    op.done = True
    op.response.CopyFrom(make_succeeded().response)
    return op


def test_a_finish_in_one_store_is_heard_by_another(opened, database):
    writer, watcher = opened(), opened()
    writer.insert(make_op(1))
    heard = Heard()
    stop = watcher.watch(heard)
    writer.modify([make_name(1)], finish)
    assert heard.event.wait(10)
    # PostgreSQL says which operation; SQLite only that the database changed.
    expected = [make_name(1)] if database.startswith("postgresql:") else None
    assert heard.reports[0] == expected
    stop()


def test_a_change_that_finishes_nothing_is_not_announced_by_postgres(request):
    database = request.getfixturevalue("postgres").new_database()
    writer, watcher = open_store(database), open_store(database)
    try:
        writer.insert(make_op(1))
        writer.insert(make_op(2))
        heard = Heard()
        watcher.watch(heard)
        writer.modify([make_name(1)], stamp_updater)  # still running: no wake-up
        writer.modify([make_name(2)], finish)
        assert heard.event.wait(10)
        assert heard.reports == [[make_name(2)]]
    finally:
        writer.close()
        watcher.close()


def test_memory_stores_never_report():
    store = SQLiteStore(":memory:")
    heard = Heard()
    store.watch(heard)()
    store.close()
    assert heard.reports == []


# --- restart ---------------------------------------------------------------------------------


def test_reopening_keeps_every_operation(opened):
    store = opened()
    make_mixed(store)
    store.modify([make_name(1)], stamp_updater)
    expected = {op.name: op for op in store.list(Query(include_deleted=True)).operations}
    store.close()

    reopened = opened()
    page = reopened.list(Query(include_deleted=True))
    assert {op.name: op for op in page.operations} == expected
    assert reopened.get(make_name(1)).updater == "services/again"
    # The columns survive too, so filtered lists still answer right.
    assert names_of(reopened.list(Query(creator="users/ada", done=True, seen=False))) == [
        make_name(2)
    ]
    # New operations keep coming after the old ones in creation order.
    reopened.insert(make_op(0))
    assert names_of(reopened.list(Query()))[-1] == make_name(0)


def test_a_database_of_a_newer_schema_is_refused(opened, database):
    opened().insert(make_op(1))
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


def test_a_write_lock_held_too_long_by_another_process_is_store_unavailable(tmp_path):
    path = str(tmp_path / "locked.db")
    store = SQLiteStore(path, busy_seconds=0.05)
    store.insert(make_op(1))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process, in the middle of a write
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.modify([make_name(1)], stamp_updater)
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.insert(make_op(2))
        other.execute("ROLLBACK")
        store.modify([make_name(1)], stamp_updater)
        assert store.get(make_name(1)).updater == "services/again"
    finally:
        other.close()
        store.close()


def test_memory_stores_are_separate():
    first, second = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    first.insert(make_op(1))
    assert second.get(make_name(1)) is None


# --- the time of a write ---------------------------------------------------------------------


def test_modify_reads_the_clock_once_per_call_and_gives_every_name_that_time(store):
    for i in range(3):
        store.insert(make_op(i))
    ticks = iter(range(100, 200))
    seen: list[tuple[str, int]] = []

    def record(op: Operation, now: int) -> Operation:
        seen.append((op.name, now))
        return op

    store.modify([make_name(i) for i in range(3)], record, clock=lambda: next(ticks))
    assert seen == [(make_name(i), 100) for i in range(3)]
    store.modify([make_name(1)], record, clock=lambda: next(ticks))
    assert seen[-1] == (make_name(1), 101)


def test_modify_reads_the_clock_under_the_lock_that_orders_writes(store):
    # Times handed to ``change`` follow commit order: a clock read before the lock could
    # give a later commit an earlier time (update_time going backwards).
    store.insert(make_counter(0))
    name = make_running().name
    ticks = iter(range(1, 10_000))
    ticks_lock = threading.Lock()
    committed: list[int] = []

    def clock() -> int:
        with ticks_lock:
            return next(ticks)

    def change(op: Operation, now: int) -> Operation:
        committed.append(now)  # runs under the store's lock, so in commit order
        return increment(op, now)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.modify([name], change, clock=clock), range(200)))
    assert committed == sorted(committed)
    assert counter_of(store.get(name)) == 200
