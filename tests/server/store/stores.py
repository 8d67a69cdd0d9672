"""What the store tests share: the stores they run against (fixtures: SQLite in memory, a
SQLite file in WAL mode, PostgreSQL from tests/postgres_server.py), operations to store,
changes to make, and the way an async test runs (there is no pytest-asyncio: each test runs
its own loop, and the stores it used are closed on that loop before it ends).

The fixtures live here, not in a conftest.py, which would take the name ``conftest`` that
other test modules import from tests/conftest.py; the test modules import them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from factories import make_running, make_succeeded, make_timestamp
from google.protobuf import struct_pb2

from v1op_pb import Operation, pack
from v1op_pb.server.store import Page, SQLiteStore, Store, open_store

# Every store the fixtures open, closed (aclose) on the loop of the test that used it.
OPENED: list[Store] = []


def async_test(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        async def main() -> Any:
            try:
                return await fn(*args, **kwargs)
            finally:
                while OPENED:
                    await OPENED.pop().aclose()

        return asyncio.run(main())

    return wrapper


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


def make_counter(value: int, i: int | None = None) -> Operation:
    op = make_running()
    if i is not None:
        op.name = make_name(i)
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


def finish(op: Operation, now: int) -> Operation:
    op.done = True
    op.response.CopyFrom(make_succeeded().response)
    return op


def names_of(page: Page) -> list[str]:
    return [op.name for op in page.operations]


class Heard:
    """What a store's watch reported, with an event to wait on."""

    def __init__(self) -> None:
        self.reports: list[list[str] | None] = []
        self.event = threading.Event()

    def __call__(self, names) -> None:
        self.reports.append(None if names is None else list(names))
        self.event.set()


@contextlib.asynccontextmanager
async def one_batch(store: Store, gate: str) -> AsyncIterator[None]:
    """The writes the body submits without awaiting them reach the store's writer together,
    so that it takes them as one batch.

    PostgreSQL's writer is a task of this loop: it cannot run before the body awaits. SQLite's
    is a thread: it is held inside a write of its own (to ``gate``, a stored operation it
    leaves as it is) until the body has submitted its writes."""
    if not isinstance(store, SQLiteStore):
        yield
        return
    holding, release = threading.Event(), threading.Event()

    def hold(op: Operation, now: int) -> Operation:
        holding.set()
        release.wait(30)
        return op

    held = store.modify([gate], hold)
    assert await asyncio.to_thread(holding.wait, 30), "the writer never took the gate"
    try:
        yield
    finally:
        release.set()
        await held


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite-file", "postgres"])
def database(request, tmp_path) -> str:
    """What ``--db`` says for an empty database that several stores may open."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres").new_database()
    return str(tmp_path / "operations.db")


@pytest.fixture
def opened(database) -> Iterator[Callable[[], Store]]:
    """Opens another store on ``database``; async_test closes every one."""
    stores: list[Store] = []

    def open_one() -> Store:
        stores.append(open_store(database))
        OPENED.append(stores[-1])
        return stores[-1]

    yield open_one
    for one in stores:
        one.close()  # already closed by async_test, unless the test failed before its loop


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgres"])
def engine(request) -> str:
    return request.param


@pytest.fixture
def db(request, engine, tmp_path) -> str:
    # Every engine the server uses: :memory: for tests, a file (WAL mode) or PostgreSQL.
    if engine == "postgres":
        return request.getfixturevalue("postgres").new_database()
    if engine == "sqlite-file":
        return str(tmp_path / "operations.db")
    return ":memory:"


@pytest.fixture
def store(db) -> Iterator[Store]:
    store = open_store(db)
    OPENED.append(store)
    yield store
    store.close()
