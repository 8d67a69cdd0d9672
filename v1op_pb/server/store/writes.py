"""Group commit, the part every engine shares: the writer thread, the writes waiting for it,
and what one batch of them does to the rows it reads.

A store's writer (``Writer``, one thread) takes every pending insert and modify, and hands the
batch to the engine, which locks and reads their rows and passes them here (``apply``): the
writes run in the order they came, each on the rows as the writes before it left them, and
nothing is written to the database until all have run. So a write that fails (its change
raised, its operation is missing, its name is taken) fails alone, its caller gets its own
error, and the others go on; then the engine writes the rows that changed and commits once.
Only after the commit is durable are the callers answered (``settle``), each on its own event
loop; a database error fails every write of the batch with StoreUnavailable, and the rollback
leaves nothing of it.

A thread, not a task on the event loop: a busy loop would resume a task's every round trip to
the database late, and the whole batch with it (a PostgreSQL writer task measured 4-5 ms a
batch, against 0.5 ms for the same statements in a thread). The thread holds the GIL only
between the database's calls.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..._operation import Operation
from .base import Change, StoredOperationExists, StoredOperationMissing, StoreUnavailable

__all__ = [
    "GATHER_SECONDS",
    "MAX_BATCH_NAMES",
    "Applied",
    "Gathering",
    "GroupCommitted",
    "Insert",
    "Modify",
    "Write",
    "Writer",
    "apply",
    "names_of",
    "settle",
    "settle_from_thread",
]

# A batch stops taking writes once it names this many operations (a batch_mark_seen alone
# names up to 1000): a flood makes several transactions, not one without end.
MAX_BATCH_NAMES = 1000
# How long a writer that has a write waits for more before it commits (see Gathering).
GATHER_SECONDS = 0.001


class Insert:
    """A caller's insert, waiting in ``future`` for its answer."""

    __slots__ = ("error", "future", "operation")

    def __init__(self, future: asyncio.Future[Any], operation: Operation) -> None:
        self.future = future
        self.operation = operation
        self.error: BaseException | None = None

    @property
    def names(self) -> tuple[str]:
        return (self.operation.name,)


class Modify:
    """A caller's modify, waiting in ``future`` for its answer."""

    __slots__ = ("change", "clock", "error", "future", "names", "result")

    def __init__(
        self,
        future: asyncio.Future[Any],
        names: Sequence[str],
        change: Change,
        clock: Callable[[], int],
    ) -> None:
        self.future = future
        self.names = names
        self.change = change
        self.clock = clock
        self.error: BaseException | None = None
        self.result: list[Operation] = []


Write = Insert | Modify


class GroupCommitted:
    """The writing face every engine's store shares: ``insert`` and ``modify`` hand their
    write to the store's ``Writer`` and return the future its caller awaits. A store sets
    ``_writer`` and says in ``_closed_error`` how it is named once closed."""

    _writer: Writer

    def _closed_error(self) -> StoreUnavailable:
        raise NotImplementedError

    def insert(self, operation: Operation) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(Insert(future, operation))
        return future

    def modify(
        self, names: Sequence[str], change: Change, *, clock: Callable[[], int] = time.time_ns
    ) -> asyncio.Future[builtins.list[Operation]]:
        future: asyncio.Future[builtins.list[Operation]] = (
            asyncio.get_running_loop().create_future()
        )
        self._submit(Modify(future, names, change, clock))
        return future

    def _submit(self, write: Write) -> None:
        if not self._writer.submit(write):
            raise self._closed_error()


class Gathering:
    """How many writes a writer waits for before it commits a batch.

    A batch takes what is waiting when the writer is free. Under load that is often only
    the writes that came during the last commit, a few, while each commit costs a sync to
    disk (or round trips) whatever its size; so a writer whose last batch had several writes
    waits up to GATHER_SECONDS for as many before it commits: the callers that were answered
    are most likely sending their next writes. A writer whose last batch had one write does
    not wait: a lone caller is answered at once.
    """

    def __init__(self) -> None:
        self.expected = 1

    def wants_more(self, batch: Sequence[Write]) -> bool:
        return len(batch) < self.expected

    def taken(self, batch: Sequence[Write]) -> builtins.list[Write]:
        """The batch to make: without the writes whose callers were cancelled before the
        writer took them (nobody is told of them, so they are not made)."""
        self.expected = len(batch)
        return [write for write in batch if not write.future.done()]


class Writer:
    """The thread that makes a store's writes: batches of what is waiting (see Gathering),
    each made by ``commit`` (which returns the failure of the whole batch, or None), then
    answered. ``submit`` takes writes from any thread and event loop."""

    def __init__(
        self, name: str, commit: Callable[[builtins.list[Write]], BaseException | None]
    ) -> None:
        self._commit = commit
        # Told of each batch (from the writer thread): how long its commit took, how many
        # writes it held, whether it failed. For the metrics.
        self.on_commit: Callable[[float, int, bool], None] | None = None
        self._pending: queue.SimpleQueue[Write | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> bool:
        """Whether the writer took the write (not once it is closed)."""
        with self._lock:
            if self._closed:
                return False
            self._pending.put(write)
        return True

    def close(self) -> None:
        """Make and answer every write taken so far, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending.put(None)
        self._thread.join()

    def _run(self) -> None:
        gathering = Gathering()
        stopping = False
        while not stopping:
            first = self._pending.get()
            if first is None:
                return
            batch, names = [first], len(first.names)
            deadline = time.monotonic() + GATHER_SECONDS
            while names < MAX_BATCH_NAMES:
                try:
                    if gathering.wants_more(batch):
                        write = self._pending.get(timeout=max(0.0, deadline - time.monotonic()))
                    else:
                        write = self._pending.get_nowait()
                except queue.Empty:
                    break
                if write is None:
                    stopping = True
                    break
                batch.append(write)
                names += len(write.names)
            batch = gathering.taken(batch)
            if batch:
                started = time.perf_counter()
                try:
                    failure = self._commit(batch)
                except Exception as e:  # a bug: every caller of the batch gets it (INTERNAL)
                    failure = e
                told = self.on_commit
                if told is not None:  # before the callers hear: what they did is counted
                    told(time.perf_counter() - started, len(batch), failure is not None)
                settle_from_thread(batch, failure)


@dataclass
class Applied:
    """What a batch changed, for the engine to write: rows as the last write left them."""

    inserted: dict[str, Operation] = field(default_factory=dict)  # in the order of inserts
    changed: dict[str, Operation] = field(default_factory=dict)  # rows that were stored
    finished: builtins.list[str] = field(default_factory=list)  # became done or deleted


def names_of(batch: Iterable[Write]) -> builtins.list[str]:
    """Every operation a batch reads, sorted (the order engines lock rows in)."""
    return sorted({name for write in batch for name in write.names})


def apply(batch: Sequence[Write], stored: Mapping[str, bytes]) -> Applied:
    """Run the batch's writes in order on ``stored`` (each named row's bytes, read under the
    write lock; absent: not stored), recording each write's outcome in it."""
    applied = Applied()
    current: dict[str, Operation] = {}

    def row(name: str) -> Operation | None:
        operation = current.get(name)
        if operation is None:
            data = stored.get(name)
            if data is None:
                return None
            operation = current[name] = Operation.FromString(data)
        return operation

    def copy(name: str) -> Operation | None:
        """The row as a message of its own: a change may alter it, and may raise halfway;
        nor may it touch what earlier writes of the batch left for their callers."""
        operation = current.get(name)
        if operation is not None:
            return Operation.FromString(operation.SerializeToString())
        data = stored.get(name)
        return None if data is None else Operation.FromString(data)

    for write in batch:
        if isinstance(write, Insert):
            name = write.operation.name
            if row(name) is not None:
                write.error = StoredOperationExists(name)
            else:
                current[name] = applied.inserted[name] = write.operation
            continue
        try:
            # Read under the write lock: writes commit in the order of their times.
            now = write.clock()
            staged: dict[str, Operation] = {}
            result = []
            for name in write.names:
                if name in staged:
                    before: Operation | None = Operation.FromString(
                        staged[name].SerializeToString()
                    )
                else:
                    before = copy(name)
                if before is None:
                    raise StoredOperationMissing(name)
                new = write.change(before, now)
                staged[name] = new
                result.append(new)
        except Exception as e:
            write.error = e
            continue
        write.result = result
        for name, new in staged.items():
            old = row(name)
            assert old is not None  # staged names are stored
            if _finishes(old, new):
                applied.finished.append(name)
            current[name] = new
            if name in applied.inserted:
                applied.inserted[name] = new
            else:
                applied.changed[name] = new
    return applied


def _finishes(old: Operation, new: Operation) -> bool:
    return (new.done and not old.done) or (
        new.HasField("delete_time") and not old.HasField("delete_time")
    )


def settle(batch: Iterable[Write], failure: BaseException | None = None) -> None:
    """Answer the callers of a batch, on the loop this runs on: each with its own outcome,
    or all with ``failure`` (StoreUnavailable: a database error; anything else is a bug)."""
    for write in batch:
        future = write.future
        if future.done():  # the caller was cancelled; the write stands if it committed
            continue
        if failure is not None:
            future.set_exception(_own(failure))
        elif write.error is not None:
            future.set_exception(write.error)
        elif isinstance(write, Modify):
            future.set_result(write.result)
        else:
            future.set_result(None)


def _own(failure: BaseException) -> BaseException:
    """A StoreUnavailable of its own for each caller, as each raises it in its own task."""
    if not isinstance(failure, StoreUnavailable):
        return failure
    error = StoreUnavailable(*failure.args)
    error.__cause__ = failure.__cause__
    return error


def settle_from_thread(batch: Sequence[Write], failure: BaseException | None = None) -> None:
    """``settle`` for a writer thread: on each caller's loop, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Write]] = {}
    for write in batch:
        by_loop.setdefault(write.future.get_loop(), []).append(write)
    for loop, writes in by_loop.items():
        # A loop that has closed has nobody awaiting these answers any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, writes, failure)
