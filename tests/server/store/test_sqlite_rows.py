"""The SQLite writer's rows: a batch writes its rows in one statement of each kind, and reads
in its transaction only the rows it did not write itself while nobody else committed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from stores import async_test, counter_of, increment, make_counter, make_name

from v1op_pb.server.store import SQLiteStore, StoredOperationMissing
from v1op_pb.server.store.base import row_of
from v1op_pb.server.store.sqlite_rows import WrittenRows, read_rows, write_rows


class Statements:
    """The statements a store's writer connection runs, as SQLite traces them."""

    def __init__(self, store: SQLiteStore) -> None:
        self.seen: list[str] = []
        store._db.set_trace_callback(lambda statement: self.seen.append(statement))

    def taken(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen

    def reads(self) -> int:
        return sum(s.startswith("SELECT name, data") for s in self.taken())


@async_test
async def test_a_batch_writes_its_rows_in_one_statement_of_each_kind(tmp_path: Path):
    store = SQLiteStore(str(tmp_path / "ops.db"))
    try:
        traced = Statements(store)
        await asyncio.gather(*(store.insert(make_counter(0, i)) for i in range(1, 9)))
        await asyncio.gather(*(store.modify([make_name(i)], increment) for i in range(1, 9)))
        statements = traced.taken()
        inserts = [s for s in statements if s.startswith("INSERT")]
        updates = [s for s in statements if s.startswith("UPDATE")]
        commits = [s for s in statements if s == "COMMIT"]
        # As many statements as transactions, however many rows each of them wrote.
        assert len(inserts) + len(updates) == len(commits)
        assert len(commits) < 16
        for i in range(1, 9):
            assert counter_of(await store.get(make_name(i))) == 1
    finally:
        store.close()


@async_test
async def test_the_writer_reads_again_only_what_another_connection_may_have_changed(
    tmp_path: Path,
):
    path = str(tmp_path / "ops.db")
    store, other = SQLiteStore(path), SQLiteStore(path)
    try:
        await store.insert(make_counter(0, 1))
        traced = Statements(store)
        await store.modify([make_name(1)], increment)
        await store.modify([make_name(1)], increment)
        assert traced.reads() == 0  # the rows it wrote: nobody else committed since
        (changed,) = await other.modify([make_name(1)], increment)
        assert counter_of(changed) == 3
        (changed,) = await store.modify([make_name(1)], increment)
        assert counter_of(changed) == 4  # not 3: the other's commit was seen
        assert traced.reads() == 1
    finally:
        store.close()
        other.close()


@async_test
async def test_an_operation_purged_from_a_memory_store_is_not_written_again():
    # :memory: purges on the writer's own connection, whose data_version does not move.
    store = SQLiteStore(":memory:")
    try:
        old = make_counter(0, 1)
        old.done = True
        old.update_time.FromNanoseconds(1_000)
        await store.insert(old)
        await store.modify([old.name], increment)  # the writer now knows its row
        assert await store.purge(before_ns=2**62, limit=10) == 1
        with pytest.raises(StoredOperationMissing):
            await store.modify([old.name], increment)
        assert await store.get(old.name) is None
    finally:
        store.close()


def test_written_rows_keep_the_most_recently_written_up_to_their_capacity(tmp_path: Path):
    path = str(tmp_path / "ops.db")
    SQLiteStore(path).close()  # the table
    db = sqlite3.connect(path, isolation_level=None)
    rows = [row_of(make_name(i), make_counter(i, i)) for i in range(3)]
    write_rows(db, rows, [])
    written = WrittenRows(capacity=2)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    names = [make_name(i) for i in range(3)]
    assert written.read(db, names) == read_rows(db, names)
    written.committed({make_name(0): rows[0][1]})  # 0 is the most recent now: 1 goes
    statements.clear()
    assert written.read(db, names) == read_rows(db, names)
    reads = [s for s in statements if s.startswith("SELECT name, data")]
    assert reads[0].count("'") == 2  # the first read (by the writer) asked for one name
    written.forget()
    statements.clear()
    written.read(db, [make_name(0)])
    assert any(s.startswith("SELECT name, data") for s in statements)
    db.close()
