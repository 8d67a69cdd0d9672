"""SQLiteStore: operations kept as their binary proto, with the lookups the server needs."""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import make_failed, make_running, make_succeeded, make_timestamp
from google.protobuf import struct_pb2

from v1op_pb import Operation, pack
from v1op_pb.server.store import Page, Query, SQLiteStore, StoredOperationMissing


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    # Both engines the server uses: :memory: for tests, a file in production (WAL mode).
    path = ":memory:" if request.param == "memory" else str(tmp_path / "operations.db")
    store = SQLiteStore(path)
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


def increment(op: Operation) -> Operation:
    op.metadata.CopyFrom(make_counter(counter_of(op) + 1).metadata)
    return op


def stamp_updater(op: Operation) -> Operation:
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
    with pytest.raises(sqlite3.IntegrityError, match=re.escape("UNIQUE")):
        store.insert(make_op(1, creator="users/bob"))
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


def make_mixed(store: SQLiteStore) -> None:
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

    def finish(op: Operation) -> Operation:
        op.done = True
        op.response.CopyFrom(make_succeeded().response)
        return op

    store.modify([make_name(1)], finish)
    assert names_of(store.list(Query(done=True, seen=False))) == [make_name(1)]

    def see(op: Operation) -> Operation:
        op.seen_by_creator_time.CopyFrom(make_timestamp("2026-11-22T00:00:00Z"))
        return op

    store.modify([make_name(1)], see)
    assert names_of(store.list(Query(done=True, seen=True))) == [make_name(1)]

    def delete(op: Operation) -> Operation:
        op.delete_time.CopyFrom(make_timestamp("2026-11-23T00:00:00Z"))
        return op

    store.modify([make_name(1)], delete)
    assert store.list(Query()).total_size == 0
    assert names_of(store.list(Query(include_deleted=True))) == [make_name(1)]


# --- modify ----------------------------------------------------------------------------------


def test_modify_replaces_and_returns_the_new_operations(store):
    for i in range(3):
        store.insert(make_op(i))

    def rename_updater(op: Operation) -> Operation:
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

    def change(op: Operation) -> Operation:
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

    def change(op: Operation) -> Operation:
        op.updater = "services/changed"
        return op

    with pytest.raises(StoredOperationMissing) as caught:
        store.modify([make_name(1), make_name(2)], change)
    assert caught.value.args == (make_name(2),)
    assert isinstance(caught.value, KeyError)
    assert store.get(make_name(1)) == before


def test_the_store_works_after_a_rolled_back_modify(store):
    store.insert(make_op(1))

    def fail(op: Operation) -> Operation:
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


def test_two_stores_on_one_file_lose_no_update(tmp_path):
    # Two processes sharing the file: BEGIN IMMEDIATE must keep their writes apart.
    path = str(tmp_path / "shared.db")
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.insert(make_counter(0))
    name = make_running().name
    start = threading.Barrier(2)

    def bump(store: SQLiteStore) -> None:
        start.wait()
        for _ in range(100):
            store.modify([name], increment)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(bump, [first, second]))
    assert counter_of(first.get(name)) == 200
    assert counter_of(second.get(name)) == 200
    first.close()
    second.close()


# --- restart ---------------------------------------------------------------------------------


def test_reopening_a_file_keeps_every_operation(tmp_path):
    path = str(tmp_path / "operations.db")
    store = SQLiteStore(path)
    make_mixed(store)
    store.modify([make_name(1)], stamp_updater)
    expected = {op.name: op for op in store.list(Query(include_deleted=True)).operations}
    store.close()

    reopened = SQLiteStore(path)
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
    reopened.close()


def test_memory_stores_are_separate():
    first, second = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    first.insert(make_op(1))
    assert second.get(make_name(1)) is None
