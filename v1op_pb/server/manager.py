"""What the reference server does with Operations, whichever API a call came through.

The gRPC services (OperationService, OperationProgressService, google.longrunning
Operations) translate requests into calls here, and it applies the rules (``rules``: who may
do what, which state changes are allowed, what the server sets) to what it reads and
writes. Errors are google-api-core's exceptions, their details typed messages.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence

from google.api_core.exceptions import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from .._any import unpack
from .._codec import Codec
from .._errors import ConversionError, excerpt
from .._operation import Operation
from .._registry import TypeRegistry
from .auth import Principal
from .rules import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH,
    MAX_PAGE_SIZE,
    check_batch,
    check_creator,
    check_name,
    check_outcome,
    check_read,
    check_running,
    copy_outcome,
    fitting_count,
    not_before,
    page_size_of,
    progress_of,
    require_service,
    resource_info,
    stamp_update,
    timestamp_of,
    violation,
)
from .store import Query, Store, StoredOperationMissing, StoreUnavailable

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "Listing",
    "OperationManager",
    "page_bytes_for",
]

# The part of a list response that its operations may take: gRPC's default message limit
# (4 MiB) less room for the other fields and the framing.
DEFAULT_MAX_PAGE_BYTES = 4 * 1024 * 1024 - 64 * 1024  # page_bytes_for(4 MiB)
_PROGRESS_NAMESPACE = uuid.UUID("5f0b7d0c-3b5e-4f8e-9d61-6a1c2b3d4e5f")


def page_bytes_for(max_message_bytes: int) -> int:
    """What the operations of a list response may take under a message size limit."""
    return max_message_bytes - min(64 * 1024, max_message_bytes // 8)


@dataclasses.dataclass(frozen=True)
class Listing:
    """A page of a list: the store's Page, and whether a next page may follow."""

    operations: list[Operation]
    total_size: int
    cursor: int  # the store cursor after the last operation (Query.after of the next page)
    more: bool


class OperationManager:
    """The rules of the reference server, over a Store.

    The store's calls are awaited on the event loop (the store decides what runs where, and
    commits writes in groups). ``wait`` is woken by the writes that finish an operation: this
    process's once they commit, other processes' when the store hears of them
    (``Store.watch``).
    """

    def __init__(
        self,
        store: Store,
        registry: TypeRegistry | None = None,
        *,
        max_wait_seconds: float = 60.0,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._registry = registry
        self._codec = Codec(registry)
        self._clock = clock
        self.max_wait_seconds = max_wait_seconds
        self.max_page_bytes = max_page_bytes
        self._waiters: dict[str, set[asyncio.Future[Operation | None]]] = {}
        self._watching: asyncio.Future[Callable[[], None]] | None = None
        self._released = False
        self._recheck: asyncio.Future[None] | None = None
        self._recheck_wanted = False

    # --- reading ---------------------------------------------------------------------------

    async def get(self, who: Principal, name: str, *, field: str = "name") -> Operation:
        check_name(name, field)
        operation = await self._store.get(name)
        if operation is None:
            raise NotFound(f"operation {excerpt(name)} not found", details=[resource_info(name)])
        check_read(who, operation)
        return operation

    async def batch_get(self, who: Principal, names: Sequence[str]) -> builtins.list[Operation]:
        check_batch(names)
        found = await self._store.get_many(names)
        result = []
        for name in names:
            operation = found.get(name)
            if operation is None:
                raise NotFound(
                    f"operation {excerpt(name)} not found", details=[resource_info(name)]
                )
            check_read(who, operation)
            result.append(operation)
        return result

    async def list(
        self,
        who: Principal,
        page_size: int,
        *,
        after: int = 0,
        done: bool | None = None,
        states: frozenset[str] | None = None,
        deleted: bool | None = False,
        newest_first: bool = False,
    ) -> Listing:
        """One page of what ``who`` may read (a user its own operations, a service every
        one), in creation order (``newest_first``: the newest first), from the store cursor
        ``after``; only ``states`` (of store.STATES) when given; ``deleted`` as
        ``Query.deleted`` (deleted ones appear in lists only: reads by name say NOT_FOUND)."""
        creator = None if who.is_service else who.name
        query = Query(
            creator=creator,
            done=done,
            states=states,
            deleted=deleted,
            newest_first=newest_first,
            after=after,
            limit=page_size_of(page_size),
        )
        return await self._page(query, full=True)

    async def list_unseen(
        self, who: Principal, page_size: int, *, full: bool, after: int = 0
    ) -> Listing:
        """The caller's finished operations that it has not marked seen."""
        query = Query(
            creator=who.name, done=True, seen=False, after=after, limit=page_size_of(page_size)
        )
        return await self._page(query, full=full)

    async def _page(self, query: Query, *, full: bool) -> Listing:
        """A page of at most ``query.limit`` operations that fits ``max_page_bytes``: a page
        that would not is read again, shorter, so that its cursor is that of its last
        operation (at least one operation per page, so a listing always moves on)."""
        while True:
            page = await self._store.list(query)
            if not full:
                for operation in page.operations:
                    operation.ClearField("response")
            fitting = fitting_count(page.operations, self.max_page_bytes)
            if fitting == len(page.operations):
                more = len(page.operations) == query.limit
                return Listing(page.operations, page.total_size, page.cursor, more)
            query = dataclasses.replace(query, limit=fitting)

    async def progress(self, who: Principal, parent: str) -> tuple[str, float, str]:
        """(name, progress, message) read from the operation's metadata."""
        operation = await self.get(who, parent, field="parent")
        progress, message = 0.0, ""
        if operation.HasField("metadata"):
            try:
                metadata = unpack(operation.metadata, self._registry)
            except ConversionError:
                metadata = None  # metadata of a type this server does not know: no progress
            if metadata is not None:
                progress, message = progress_of(metadata)
        name = f"{parent}/progresses/{uuid.uuid5(_PROGRESS_NAMESPACE, parent)}"
        return name, progress, message

    async def wait(self, who: Principal, name: str, timeout: float | None) -> Operation:
        """The operation once it is done, or as it is when ``timeout`` (capped at
        ``max_wait_seconds``) runs out."""
        limit = self.max_wait_seconds if timeout is None else min(timeout, self.max_wait_seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        await self._watch_others(loop)
        while True:
            waiter: asyncio.Future[Operation | None] = loop.create_future()
            # Registered before the read, so a write that finishes it in between still wakes
            # us; a wake-up only says "read again", as other processes' news may be stale.
            self._waiters.setdefault(name, set()).add(waiter)
            try:
                operation = await self.get(who, name)
                remaining = deadline - loop.time()
                if operation.done or remaining <= 0 or self._released:
                    return operation
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), remaining)
            finally:
                waiters = self._waiters.get(name)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[name]

    async def _watch_others(self, loop: asyncio.AbstractEventLoop) -> None:
        """From the first wait on, hear of the finishes of other processes sharing the
        store (other workers, other replicas). Waits start only once the store listens, so
        none misses a finish."""
        if self._watching is None:

            def heard(names: Sequence[str] | None) -> None:  # in a thread of the store's
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                    loop.call_soon_threadsafe(self._heard, names)

            self._watching = asyncio.ensure_future(asyncio.to_thread(self._store.watch, heard))
        await asyncio.shield(self._watching)

    def _heard(self, names: Sequence[str] | None) -> None:
        if names is None:
            # The engine cannot say which: one read of every waited operation tells.
            self._recheck_wanted = True
            if self._recheck is None or self._recheck.done():
                self._recheck = asyncio.ensure_future(self._recheck_waits())
            return
        for name in names:
            self._wake(name, None)

    async def _recheck_waits(self) -> None:
        while self._recheck_wanted:
            self._recheck_wanted = False
            names = list(self._waiters)
            if not names:
                return
            try:
                found = await self._store.get_many(names)
            except StoreUnavailable:
                # The database is away: these waits answer at their timeouts, unless the
                # next change it reports (after it is back) finds them done.
                return
            for name in names:
                operation = found.get(name)
                if operation is None or operation.done or operation.HasField("delete_time"):
                    self._wake(name, operation)

    def _wake(self, name: str, operation: Operation | None) -> None:
        for waiter in self._waiters.get(name, ()):
            if not waiter.done():
                waiter.set_result(operation)

    # --- writing ---------------------------------------------------------------------------

    async def create(
        self, who: Principal, requested: Operation, on_behalf_of: str = ""
    ) -> Operation:
        if not who.is_service:
            raise PermissionDenied("only services create operations")
        creator = who.name
        if on_behalf_of:
            try:
                behalf = Principal(on_behalf_of)
            except ValueError as e:
                raise InvalidArgument(str(e), details=[violation("on_behalf_of", str(e))]) from None
            if not behalf.is_user:
                raise InvalidArgument(
                    "on_behalf_of names a user, users/<id>",
                    details=[violation("on_behalf_of", "must be users/<id>")],
                )
            creator = behalf.name
        operation = Operation()
        if requested.HasField("metadata"):
            operation.metadata.CopyFrom(requested.metadata)
        if requested.WhichOneof("result") and not requested.done:
            raise InvalidArgument(
                "a running operation (done unset) carries no error or response",
                details=[violation("operation.done", "set done with error or response")],
            )
        if requested.done:
            check_outcome(requested)
            copy_outcome(requested, operation)
        operation.name = f"operations/{uuid.uuid4()}"
        operation.create_time.CopyFrom(self._now())
        operation.creator = creator
        self._check_payload(operation)
        await self._store.insert(operation)
        if operation.done:
            self._notify([operation])
        return operation

    async def update(self, who: Principal, requested: Operation) -> Operation:
        require_service(who, "update")
        if requested.done or requested.WhichOneof("result"):
            raise InvalidArgument(
                "UpdateOperation changes only metadata; finish with FinalizeOperation",
                details=[violation("operation.done", "must be unset in UpdateOperation")],
            )
        self._check_payload(requested)

        def change(operation: Operation, now: int) -> Operation:
            check_running(operation)
            if requested.HasField("metadata"):
                operation.metadata.CopyFrom(requested.metadata)
            else:
                operation.ClearField("metadata")
            stamp_update(operation, now, who)
            return operation

        return await self._modify_one(requested.name, change, field="operation.name")

    async def finalize(self, who: Principal, requested: Operation) -> Operation:
        require_service(who, "finalize")
        check_outcome(requested)
        self._check_payload(requested)

        def change(operation: Operation, now: int) -> Operation:
            check_running(operation)
            if requested.HasField("metadata"):
                operation.metadata.CopyFrom(requested.metadata)
            copy_outcome(requested, operation)
            stamp_update(operation, now, who)
            return operation

        return await self._modify_one(requested.name, change, field="operation.name")

    async def abort(self, who: Principal, name: str) -> Operation:
        def change(operation: Operation, now: int) -> Operation:
            check_creator(who, operation, "abort")
            check_running(operation)
            operation.done = True
            operation.error.code = code_pb2.CANCELLED
            operation.error.message = f"aborted by {who.name}"
            stamp_update(operation, now, who)
            return operation

        return await self._modify_one(name, change)

    async def mark_seen(self, who: Principal, name: str) -> Operation:
        """Mark an operation seen by its creator; a time once set never changes."""
        check_name(name)
        (operation,) = await self._modify([name], self._seen_change(who))
        return operation

    async def batch_mark_seen(
        self, who: Principal, names: Sequence[str]
    ) -> builtins.list[Operation]:
        """mark_seen for up to MAX_BATCH operations, all or none."""
        check_batch(names)
        return await self._modify(names, self._seen_change(who))

    def _seen_change(self, who: Principal) -> Callable[[Operation, int], Operation]:
        def change(operation: Operation, now: int) -> Operation:
            check_creator(who, operation, "mark seen")
            if not operation.HasField("seen_by_creator_time"):
                operation.seen_by_creator_time.CopyFrom(not_before(operation, now))
            return operation

        return change

    async def delete(self, who: Principal, name: str) -> Operation:
        def change(operation: Operation, now: int) -> Operation:
            # Deleted ones are refused by _modify's guard; services may delete any.
            if not who.is_service:
                check_creator(who, operation, "delete")
            operation.delete_time.CopyFrom(not_before(operation, now))
            operation.deleter = who.name
            return operation

        return await self._modify_one(name, change)

    # --- helpers ---------------------------------------------------------------------------

    async def _modify_one(
        self, name: str, change: Callable[[Operation, int], Operation], *, field: str = "name"
    ) -> Operation:
        check_name(name, field)
        (operation,) = await self._modify([name], change)
        return operation

    async def _modify(
        self, names: Sequence[str], change: Callable[[Operation, int], Operation]
    ) -> builtins.list[Operation]:
        """Names must have been checked by the caller. ``change`` gets the time the store
        read under its write lock, so times stamped from it follow the order of writes."""

        def guarded(operation: Operation, now: int) -> Operation:
            if operation.HasField("delete_time"):
                raise NotFound(
                    f"operation {excerpt(operation.name)} not found",
                    details=[resource_info(operation.name)],
                )
            return change(operation, now)

        written = asyncio.ensure_future(self._store.modify(names, guarded, clock=self._clock))
        # Waits are woken by the commit, not by this caller: one that is cancelled (its
        # client gone) after the store took its write must still wake them.
        written.add_done_callback(self._wake_written)
        try:
            updated = await asyncio.shield(written)
        except StoredOperationMissing as e:
            name = e.args[0]
            raise NotFound(
                f"operation {excerpt(name)} not found", details=[resource_info(name)]
            ) from None
        return updated

    def _wake_written(self, written: asyncio.Future[builtins.list[Operation]]) -> None:
        if not written.cancelled() and written.exception() is None:
            self._notify(written.result())

    def release_waiters(self) -> None:
        """Answer every pending wait now with the operation as it is, so that shutdown
        does not hold callers until their timeouts (google.longrunning allows early
        returns)."""
        self._released = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _notify(self, operations: Sequence[Operation]) -> None:
        for operation in operations:
            if operation.done or operation.HasField("delete_time"):
                self._wake(operation.name, operation)

    def _check_payload(self, operation: Operation) -> None:
        """Refuse what could not be read back as JSON: Any payloads of unknown types,
        invalid bytes, out-of-range times."""
        try:
            self._codec.encode(operation)
        except ConversionError as e:
            field = "operation" + e.path[1:]
            raise InvalidArgument(
                f"{field}: {e.reason}", details=[violation(field, e.reason)]
            ) from e

    def _now(self) -> timestamp_pb2.Timestamp:
        return timestamp_of(self._clock())
