"""Retention: what a pass purges and what it keeps, on each engine (a SQLite file, and
PostgreSQL); batches; one process at a time; and that the schema's indexes serve it."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
import stores
from factories import make_timestamp
from stores import async_test, make_name, make_op

from v1op_pb import Operation
from v1op_pb.server.store import Retention, StoreUnavailable, duration_text, parse_duration

# The stores' fixtures (see stores: not in a conftest.py).
database, opened = stores.database, stores.opened

DAY_NS = 86_400 * 1_000_000_000
# "Now", as the retention's clock says, and a retention of one day: rows finished or
# deleted before NOW - DAY go, later ones stay.
NOW_NS = 1_800_000_000 * 1_000_000_000
KEEP_SECONDS = 86_400.0
OLD = "2026-12-01T00:00:00Z"  # NOW_NS is 2027-01-15: more than a day before
RECENT = "2027-01-14T12:00:00Z"  # half a day before NOW_NS


def stamped(i: int, *, done: bool, finished: str | None = None, deleted: str | None = None):
    op = make_op(i, done=done)
    op.create_time.CopyFrom(make_timestamp("2026-11-01T00:00:00Z"))
    op.update_time.CopyFrom(make_timestamp(finished or "2026-11-01T00:00:00Z"))
    if deleted is not None:
        op.delete_time.CopyFrom(make_timestamp(deleted))
        op.deleter = "users/ada"
    return op


def retention(store, **kwargs) -> Retention:
    return Retention(store, KEEP_SECONDS, clock=lambda: NOW_NS, **kwargs)


@async_test
async def test_a_pass_purges_what_was_done_or_deleted_long_enough_ago_and_keeps_the_rest(opened):
    store = opened()
    purged_now = {
        "done long ago": stamped(1, done=True, finished=OLD),
        "deleted long ago, running": stamped(2, done=False, deleted=OLD),
        "done and deleted long ago": stamped(3, done=True, finished=OLD, deleted=OLD),
        "done long ago, deleted lately": stamped(4, done=True, finished=OLD, deleted=RECENT),
    }
    kept = {
        "running, made long ago": stamped(5, done=False),
        "done lately": stamped(6, done=True, finished=RECENT),
        "deleted lately, running": stamped(7, done=False, deleted=RECENT),
    }
    for op in (*purged_now.values(), *kept.values()):
        await store.insert(op)
    assert await retention(store).purge_once() == len(purged_now)
    for what, op in purged_now.items():
        assert await store.get(op.name) is None, what
    for what, op in kept.items():
        assert await store.get(op.name) == op, what
    # Nothing more to purge: a second pass finds nothing.
    assert await retention(store).purge_once() == 0


@async_test
async def test_finish_time_is_the_finishing_write_and_later_writes_do_not_move_it(opened):
    store = opened()
    op = stamped(1, done=False)
    await store.insert(op)

    def finish_long_ago(current: Operation, now: int) -> Operation:
        current.done = True
        current.update_time.CopyFrom(make_timestamp(OLD))
        return current

    def mark_seen_lately(current: Operation, now: int) -> Operation:
        current.seen_by_creator_time.CopyFrom(make_timestamp(RECENT))
        current.update_time.CopyFrom(make_timestamp(RECENT))
        return current

    await store.modify([op.name], finish_long_ago)
    await store.modify([op.name], mark_seen_lately)
    assert await retention(store).purge_once() == 1
    assert await store.get(op.name) is None


@async_test
async def test_a_pass_goes_batch_by_batch_until_a_short_one(opened):
    store = opened()
    for i in range(12):
        await store.insert(stamped(i, done=True, finished=OLD))
    await store.insert(stamped(100, done=True, finished=RECENT))
    batches: list[int] = []
    assert await retention(store, batch=5, on_purged=batches.append).purge_once() == 12
    assert batches == [5, 5, 2]
    assert await store.get(make_name(100)) is not None


@async_test
async def test_counts_by_state(opened):
    store = opened()
    await store.insert(stamped(1, done=False))
    await store.insert(stamped(2, done=False))
    await store.insert(stamped(3, done=True, finished=RECENT))
    await store.insert(stamped(4, done=True, finished=RECENT, deleted=RECENT))
    await store.insert(stamped(5, done=False, deleted=RECENT))
    assert await store.count_operations() == {"running": 2, "done": 1, "deleted": 2}


@async_test
async def test_postgres_purges_one_replica_at_a_time(postgres):
    import psycopg

    from v1op_pb.server.store.postgres import _RETENTION_LOCK, PostgresStore

    url = postgres.new_database()
    store = PostgresStore(url)
    stores.OPENED.append(store)
    await store.insert(stamped(1, done=True, finished=OLD))
    # Another replica in the middle of a batch: it holds the lock.
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_RETENTION_LOCK,))
        assert await store.purge(NOW_NS - 1, 10) is None  # left to the one purging
        assert await retention(store).purge_once() == 0
        assert await store.get(make_name(1)) is not None
        other.execute("SELECT pg_advisory_unlock(%s)", (_RETENTION_LOCK,))
    assert await retention(store).purge_once() == 1


@async_test
async def test_sqlite_purges_under_the_files_write_lock(tmp_path):
    from v1op_pb.server.store import SQLiteStore

    path = str(tmp_path / "operations.db")
    store = SQLiteStore(path, busy_seconds=0.05)
    stores.OPENED.append(store)
    await store.insert(stamped(1, done=True, finished=OLD))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing (or purging)
        with pytest.raises(StoreUnavailable, match="locked"):
            await retention(store).purge_once()
        other.execute("COMMIT")
    finally:
        other.close()
    assert await retention(store).purge_once() == 1


def test_sqlite_finds_the_rows_to_purge_by_index(tmp_path):
    from v1op_pb.server.store import SQLiteStore
    from v1op_pb.server.store.sqlite import _PURGE

    path = str(tmp_path / "operations.db")
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        plan = " ".join(
            row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {_PURGE}", (0, 0, 10)).fetchall()
        )
    assert "INDEX operations_by_finish (finish_ns<?)" in plan
    assert "INDEX operations_by_delete (delete_ns<?)" in plan
    assert "SCAN" not in plan  # no pass reads the whole table


@async_test
async def test_a_pass_that_cannot_reach_the_database_is_told_and_the_next_tries_again(tmp_path):
    from v1op_pb.server.store import SQLiteStore

    path = str(tmp_path / "operations.db")
    store = SQLiteStore(path, busy_seconds=0.05)
    stores.OPENED.append(store)
    await store.insert(stamped(1, done=True, finished=OLD))
    failed, purged = asyncio.Event(), asyncio.Event()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    running = asyncio.ensure_future(
        Retention(
            store,
            KEEP_SECONDS,
            clock=lambda: NOW_NS,
            interval=0.01,
            on_failure=failed.set,
            on_purged=lambda count: purged.set(),
        ).run()
    )
    try:
        await asyncio.wait_for(failed.wait(), 30)
        other.execute("COMMIT")
        await asyncio.wait_for(purged.wait(), 30)
    finally:
        other.close()
        running.cancel()
    assert await store.get(make_name(1)) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2s", 2), ("1w", 604800)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(duration_text(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "0s", "-1d", "1.5h", "3x", "1d2h", "ten days"])
def test_a_bad_duration_is_one_line(text):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--retention {text!r}: give a duration")
