"""The stores every store test runs against: SQLite in memory, a SQLite file (WAL) and
PostgreSQL (a throwaway server, see tests/postgres_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from stores import OPENED

from v1op_pb.server.store import Store, open_store


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
