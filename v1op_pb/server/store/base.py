"""Where the reference server keeps Operations: the interface every engine implements.

The interface is synchronous and small, so engines sit side by side (``sqlite``,
``postgres``); the server calls it from worker threads. Several processes, on one machine or
many, may share one database: every engine keeps their writes apart and tells each of them
when another finishes an operation (``watch``).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..._operation import Operation

__all__ = [
    "SCHEMA_VERSION",
    "OnChange",
    "Page",
    "Query",
    "SchemaTooNew",
    "Store",
    "StoreUnavailable",
    "StoredOperationExists",
    "StoredOperationMissing",
]

# The layout of the tables every engine writes; a store refuses a database of a later one,
# which a newer server wrote and this one would misread.
SCHEMA_VERSION = 1

# Told, from a thread of the store's, of operations that another process finished or
# deleted: their names, or None when the engine cannot say which (every wait re-reads).
OnChange = Callable[[Sequence[str] | None], None]


class StoredOperationMissing(KeyError):
    """No operation of that name is stored."""


class StoredOperationExists(KeyError):
    """An operation of that name is already stored."""


class StoreUnavailable(OSError):
    """The database cannot be reached, opened or used; the message says which and why."""


class SchemaTooNew(StoreUnavailable):
    """The database was laid out by a newer server than this one."""


@dataclass(frozen=True)
class Query:
    """Which operations a list returns: all fields combine with AND; None means any."""

    creator: str | None = None
    done: bool | None = None
    seen: bool | None = None
    include_deleted: bool = False
    after: int = 0  # a Page.cursor: only operations stored after it
    limit: int = 0  # 0: no limit


@dataclass(frozen=True)
class Page:
    operations: list[Operation]
    total_size: int  # matching operations, irrespective of ``after`` and ``limit``
    cursor: int  # where the next page starts (Query.after); 0 when this page is empty


class Store(Protocol):
    def insert(self, operation: Operation) -> None:
        """Store a new operation; StoredOperationExists when its name is not new."""

    def get(self, name: str) -> Operation | None: ...

    def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        """The stored operations among ``names``, by name."""

    def list(self, query: Query) -> Page:
        """Matching operations in creation order."""

    def modify(
        self,
        names: Sequence[str],
        change: Callable[[Operation, int], Operation],
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> builtins.list[Operation]:
        """Atomically replace each named operation by ``change(current, now)``, all or none:
        an exception from ``change`` leaves every one as it was. StoredOperationMissing when
        one is not stored.

        ``now`` is ``clock()`` (nanoseconds since the epoch), read once per call while the
        store holds the lock that orders writes to these operations, and the same for every
        name of the call: a time stamped from it can never be older than one a write that
        committed before this one stamped (clock permitting)."""

    def watch(self, on_change: OnChange) -> Callable[[], None]:
        """Call ``on_change`` when other processes sharing the database finish or delete
        operations; returns what stops it. A store nothing else can share never calls it."""

    def close(self) -> None: ...
