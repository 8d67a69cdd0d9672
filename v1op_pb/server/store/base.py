"""Where the reference server keeps Operations: the interface every engine implements.

The interface is asynchronous, for an asyncio event loop: an engine reads on the loop when a
read is short and cannot wait (SQLite's write-ahead log), or through asyncio's own I/O
(PostgreSQL), and hands long reads to threads. Writes are group-committed: each engine has one
writer that takes every write waiting for it, applies them in order in one transaction and
answers their callers once that transaction is durable (``writes``). Several processes, on one
machine or many, may share one database: every engine keeps their writes apart and tells each
of them when another finishes an operation (``watch``).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..._operation import Operation

__all__ = [
    "SCHEMA_VERSION",
    "Change",
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

# What a modify does to one operation: given a copy of it as stored and the time of the write
# (nanoseconds since the epoch), the operation to store instead.
Change = Callable[[Operation, int], Operation]


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
    """Every method but ``watch`` and ``close`` is awaited on an event loop. Each read returns
    fresh messages, which the caller may change. StoreUnavailable when the database cannot be
    used (worth a retry)."""

    def insert(self, operation: Operation) -> Awaitable[None]:
        """Store a new operation; StoredOperationExists when its name is not new. Done once
        the operation is durable."""

    def get(self, name: str) -> Awaitable[Operation | None]: ...

    def get_many(self, names: Sequence[str]) -> Awaitable[dict[str, Operation]]:
        """The stored operations among ``names``, by name."""

    def list(self, query: Query) -> Awaitable[Page]:
        """Matching operations in creation order."""

    def modify(
        self, names: Sequence[str], change: Change, *, clock: Callable[[], int] = time.time_ns
    ) -> Awaitable[builtins.list[Operation]]:
        """Atomically replace each named operation by ``change(current, now)``, all or none:
        an exception from ``change`` leaves every one as it was, and is what the awaiting
        caller gets. StoredOperationMissing when one is not stored. Done once the write is
        durable; a write the store has begun is made even if the caller stops awaiting it.

        ``change`` runs under the lock that orders writes to these operations (in a thread of
        the store's or on the loop: it must not block), after every write committed before
        it and before every write committed after it. ``now`` is ``clock()``, read once per
        call under that lock and the same for every name of the call: a time stamped from it
        can never be older than one a write that committed before this one stamped (clock
        permitting)."""

    def watch(self, on_change: OnChange) -> Callable[[], None]:
        """Call ``on_change`` when other processes sharing the database finish or delete
        operations; returns what stops it. A store nothing else can share never calls it.
        May block (it may connect): call it from a thread."""

    async def aclose(self) -> None:
        """Close, on the event loop the store was used on: the writes it has taken are
        made and answered first; later ones fail with StoreUnavailable."""

    def close(self) -> None:
        """Close from any thread: as ``aclose``, waiting for it where it can. Called on the
        store's own running loop it can only start that, for the loop to finish."""
