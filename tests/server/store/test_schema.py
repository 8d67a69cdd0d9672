"""Schema 2: the columns lists filter on (state, deleted) and order by (newest first), the
times retention reads (create_ns, finish_ns, delete_ns), and the migration of a schema-1
database, made by the schema-1 code (tests/data/schema1/make.py), on both engines."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import stores
from factories import make_failed, make_running, make_succeeded
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2
from postgres_server import find_binary
from stores import async_test, make_name, make_op, names_of

from v1op_pb import Operation, make_status
from v1op_pb.server.store import SCHEMA_VERSION, STATES, Query, Store, open_store, state_of

SCHEMA1 = Path(__file__).resolve().parents[2] / "data" / "schema1"

database, db, engine, opened, store = (
    stores.database,
    stores.db,
    stores.engine,
    stores.opened,
    stores.store,
)


def aborted() -> Operation:
    op = make_running()
    op.done = True
    op.error.CopyFrom(make_status(code_pb2.CANCELLED, "aborted"))
    return op


@pytest.mark.parametrize(
    ("make", "state"),
    [
        (make_running, "running"),
        (make_succeeded, "succeeded"),
        (make_failed, "failed"),
        (aborted, "aborted"),
    ],
)
def test_state_of_each_stage(make, state):
    assert state_of(make()) == state
    assert state in STATES


async def make_states(store: Store) -> None:
    # 1 running, 2 succeeded, 3 failed, 4 aborted, 5 succeeded+deleted, 6 running (bob)
    for i, make in enumerate([make_running, make_succeeded, make_failed, aborted], 1):
        op = make()
        op.name = make_name(i)
        await store.insert(op)
    await store.insert(make_op(5, done=True, deleted=True))
    await store.insert(make_op(6, creator="users/bob"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (Query(states=frozenset({"running"})), [1, 6]),
        (Query(states=frozenset({"failed", "aborted"})), [3, 4]),
        (Query(states=frozenset({"succeeded"})), [2]),
        (Query(states=frozenset({"succeeded"}), deleted=None), [2, 5]),
        (Query(states=frozenset()), []),
        (Query(deleted=True), [5]),
        (Query(deleted=None), [1, 2, 3, 4, 5, 6]),
        (Query(creator="users/ada", states=frozenset({"running"})), [1]),
        (Query(newest_first=True), [6, 4, 3, 2, 1]),
        (Query(newest_first=True, states=frozenset({"running", "failed"})), [6, 3, 1]),
    ],
)
@async_test
async def test_lists_by_state_deleted_and_newest_first(store, query, expected):
    await make_states(store)
    page = await store.list(query)
    assert names_of(page) == [make_name(i) for i in expected]
    assert page.total_size == len(expected)


@pytest.mark.parametrize("newest_first", [False, True])
@async_test
async def test_pages_follow_each_other_in_both_orders(store, newest_first):
    for i in range(1, 8):
        await store.insert(make_op(i))
    seen: list[str] = []
    after = 0
    while True:
        page = await store.list(Query(newest_first=newest_first, after=after, limit=3))
        assert page.total_size == 7
        if not page.operations:
            break
        seen += names_of(page)
        after = page.cursor
    order = range(7, 0, -1) if newest_first else range(1, 8)
    assert seen == [make_name(i) for i in order]


# --- the times, as stored --------------------------------------------------------------------


def nanos(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def stored_times(database: str, name: str) -> tuple[int, int | None, int | None, str]:
    """create_ns, finish_ns, delete_ns and state of a row, read from the database itself."""
    statement = "SELECT create_ns, finish_ns, delete_ns, state FROM {} WHERE name = {}"
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database) as conn:
            row = conn.execute(statement.format("v1op_operations", "%s"), (name,)).fetchone()
    else:
        with sqlite3.connect(database) as conn:
            row = conn.execute(statement.format("operations", "?"), (name,)).fetchone()
    assert row is not None
    return tuple(row)  # type: ignore[return-value]


def at(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=7)


@async_test
async def test_finish_time_is_the_write_that_finished_and_stays(database, opened):
    store = opened()
    op = make_running()
    op.name = make_name(1)
    await store.insert(op)
    created = nanos(op.create_time)
    assert stored_times(database, op.name) == (created, None, None, "running")

    def finish(current: Operation, now: int) -> Operation:
        current.done = True
        current.response.CopyFrom(make_succeeded().response)
        current.update_time.CopyFrom(at(1_800_000_000))
        return current

    def mark_seen_and_delete(current: Operation, now: int) -> Operation:
        current.update_time.CopyFrom(at(1_800_000_500))  # a later write moves update_time
        current.seen_by_creator_time.CopyFrom(at(1_800_000_400))
        current.delete_time.CopyFrom(at(1_800_000_500))
        return current

    await store.modify([op.name], finish)
    finished = nanos(at(1_800_000_000))
    assert stored_times(database, op.name) == (created, finished, None, "succeeded")
    await store.modify([op.name], mark_seen_and_delete)
    deleted = nanos(at(1_800_000_500))
    assert stored_times(database, op.name) == (created, finished, deleted, "succeeded")


# --- migration from schema 1 -----------------------------------------------------------------


def schema1_operations() -> list[Operation]:
    """What tests/data/schema1/make.py stored, read back from the SQLite file as schema 1
    left it (its bytes are the operations, whatever the columns)."""
    with sqlite3.connect(SCHEMA1 / "operations.db") as conn:
        rows = conn.execute("SELECT data FROM operations ORDER BY seq").fetchall()
    return [Operation.FromString(data) for (data,) in rows]


def schema1_database(engine: str, tmp_path: Path, postgres_url: str | None) -> str:
    if engine == "postgres":
        assert postgres_url is not None
        psql = find_binary("psql")
        assert psql, "psql comes with PostgreSQL's client"
        subprocess.run(
            [
                psql,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                postgres_url,
                "-f",
                str(SCHEMA1 / "postgres.sql"),
            ],
            check=True,
            capture_output=True,
        )
        return postgres_url
    copy = tmp_path / "schema1.db"
    shutil.copyfile(SCHEMA1 / "operations.db", copy)
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    return str(copy)


@pytest.fixture(params=["sqlite-file", "postgres"])
def schema1(request, tmp_path) -> str:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    return schema1_database(request.param, tmp_path, url)


@async_test
async def test_a_schema1_database_migrates_with_nothing_lost(schema1):
    before = schema1_operations()
    assert [state_of(op) for op in before] == [
        "running",
        "succeeded",
        "failed",
        "aborted",
        "succeeded",
        "failed",
        "running",
    ]
    store = open_store(schema1)
    stores.OPENED.append(store)
    by_name = {op.name: op for op in before}
    assert await store.get_many(list(by_name)) == by_name
    everything = await store.list(Query(deleted=None))
    assert everything.operations == before
    assert names_of(await store.list(Query(states=frozenset({"failed", "aborted"})))) == [
        "operations/schema1-2",
        "operations/schema1-3",
    ]
    assert names_of(await store.list(Query(deleted=True))) == [
        "operations/schema1-5",
        "operations/schema1-6",
    ]
    assert names_of(await store.list(Query(creator="users/bob", newest_first=True))) == [
        "operations/schema1-3",
        "operations/schema1-1",
    ]
    for op in before:
        finish = nanos(op.update_time) if op.done else None
        delete = nanos(op.delete_time) if op.HasField("delete_time") else None
        assert stored_times(schema1, op.name) == (
            nanos(op.create_time),
            finish,
            delete,
            state_of(op),
        )
    # New writes go on where schema 1 left off.
    new = make_running()
    new.name = "operations/after-migration"
    await store.insert(new)
    assert names_of(await store.list(Query(newest_first=True, limit=1))) == [new.name]


@async_test
async def test_a_migrated_database_opens_again_as_schema_2(schema1):
    first = open_store(schema1)
    await first.aclose()
    again = open_store(schema1)
    stores.OPENED.append(again)
    assert len((await again.list(Query(deleted=None))).operations) == 7
    if schema1.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(schema1) as conn:
            (version,) = conn.execute("SELECT max(version) FROM v1op_schema").fetchone()
    else:
        with sqlite3.connect(schema1) as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
    assert version == SCHEMA_VERSION == 2
