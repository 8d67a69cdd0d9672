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

from google.protobuf import timestamp_pb2

from ..._operation import Operation

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "Change",
    "Columns",
    "OnChange",
    "Page",
    "Query",
    "Row",
    "SchemaTooNew",
    "Store",
    "StoreUnavailable",
    "StoredOperationExists",
    "StoredOperationMissing",
    "indexed_columns",
    "row_of",
    "state_of",
]

# The layout of the tables every engine writes; a store refuses a database of a later one,
# which a newer server wrote and this one would misread, and migrates one of an earlier one
# at start-up. 2: the columns create_ns, finish_ns, delete_ns and state.
SCHEMA_VERSION = 2

# Where an operation stands, as lists filter on it: an error with code CANCELLED is an
# abort (AbortOperation, google.longrunning's CancelOperation), any other error a failure.
STATES = ("running", "succeeded", "failed", "aborted")
_CANCELLED = 1  # google.rpc.Code.CANCELLED

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


def state_of(operation: Operation) -> str:
    """One of STATES."""
    if not operation.done:
        return "running"
    if operation.HasField("error"):
        return "aborted" if operation.error.code == _CANCELLED else "failed"
    return "succeeded"


def _nanos(timestamp: timestamp_pb2.Timestamp) -> int:
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos


# creator, done, seen, deleted, create_ns, finish_ns, delete_ns, state
Columns = tuple[str, bool, bool, bool, int, int | None, int | None, str]


def indexed_columns(operation: Operation) -> Columns:
    """What every engine stores beside an operation's bytes, for lists and for aging rows
    out: creator, done, seen, deleted, create_ns, finish_ns, delete_ns, state.

    ``finish_ns`` is the operation's update_time while it is done: engines keep the first
    value a row gets (the write that finished it), so later writes (mark seen, delete) do
    not move it."""
    done = operation.done
    deleted = operation.HasField("delete_time")
    finish = None
    if done:
        stamp = (
            operation.update_time if operation.HasField("update_time") else operation.create_time
        )
        finish = _nanos(stamp)
    return (
        operation.creator,
        done,
        operation.HasField("seen_by_creator_time"),
        deleted,
        _nanos(operation.create_time),
        finish,
        _nanos(operation.delete_time) if deleted else None,
        state_of(operation),
    )


# A stored row, as every engine writes it: the name, the bytes, then the indexed columns.
Row = tuple[str, bytes, str, bool, bool, bool, int, int | None, int | None, str]


def row_of(name: str, operation: Operation) -> Row:
    """The row of an operation (its bytes deterministic, so a row compares by its bytes)."""
    return (name, operation.SerializeToString(deterministic=True), *indexed_columns(operation))


@dataclass(frozen=True)
class Query:
    """Which operations a list returns: all fields combine with AND; None means any."""

    creator: str | None = None
    done: bool | None = None
    seen: bool | None = None
    states: frozenset[str] | None = None  # only operations in these STATES
    deleted: bool | None = False  # False: not deleted; True: only deleted; None: either
    newest_first: bool = False  # creation order, newest first (else oldest first)
    # A Page.cursor (0: the first page): only operations stored after it, or before it when
    # newest_first.
    after: int = 0
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
        """Matching operations in creation order (newest first with ``newest_first``)."""

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

    def purge(self, before_ns: int, limit: int) -> Awaitable[int | None]:
        """Delete up to ``limit`` operations that were done (``finish_ns``) or deleted
        (``delete_ns``) before ``before_ns``, in one transaction; how many, or None when
        another process sharing the database is purging now (retention: one at a time)."""

    def count_operations(self) -> Awaitable[dict[str, int]]:
        """How many operations are running, done (and not deleted) and deleted, by those
        three names."""

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
