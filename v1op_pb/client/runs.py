"""Operations of work in progress on the producer side: ``client.run()`` (sync) and
``AsyncOperationClient.run()`` create an operation on entry, report progress (throttled)
and finalize it on exit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from google.api_core import exceptions
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from .._operation import Operation

__all__ = ["AsyncOperationRun", "OperationRun", "ProgressThrottle"]

_log = logging.getLogger("v1op.client")


class _Producer(Protocol):
    """What a run needs of OperationClient."""

    def create(
        self, operation_metadata: Message | None = None, /, *, on_behalf_of: str = ...
    ) -> Operation: ...
    def update(self, name: str, operation_metadata: Message, /) -> Operation: ...
    def finalize(
        self,
        name: str,
        *,
        response: Message | None = ...,
        error: status_pb2.Status | BaseException | None = ...,
        operation_metadata: Message | None = ...,
    ) -> Operation: ...


class _AsyncProducer(Protocol):
    """What a run needs of AsyncOperationClient."""

    async def create(
        self, operation_metadata: Message | None = None, /, *, on_behalf_of: str = ...
    ) -> Operation: ...
    async def update(self, name: str, operation_metadata: Message, /) -> Operation: ...
    async def finalize(
        self,
        name: str,
        *,
        response: Message | None = ...,
        error: status_pb2.Status | BaseException | None = ...,
        operation_metadata: Message | None = ...,
    ) -> Operation: ...


class RunState:
    """What the sync and the async run share: how the operation starts, its throttle, the
    operation as last heard from the server, and what the end of the block finalizes."""

    def __init__(
        self, metadata: Message | None, on_behalf_of: str, throttle: ProgressThrottle
    ) -> None:
        self._start = (metadata, on_behalf_of)
        self._throttle = throttle
        self.operation = Operation()

    @property
    def name(self) -> str:
        return str(self.operation.name)

    def _exit_outcome(self, error: BaseException | None) -> dict[str, Any] | None:
        """The finalize the end of the block makes: none when the block already finished
        the operation, an empty response when it ended without an outcome, else its error."""
        if self.operation.done:
            return None
        if error is None:
            return {"response": empty_pb2.Empty()}
        return {"error": error}


class ProgressThrottle:
    """At most one UpdateOperation per ``interval`` seconds.

    The first report goes at once; a report within ``interval`` of the last one sent is
    held back, only the newest held. It goes with the next report made after the interval,
    with ``flush()``, or with Finalize (whose request carries the metadata), so the last
    progress is never lost, only late. ``interval`` 0 sends every report.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval < 0:
            raise ValueError(f"progress interval {interval} is negative")
        self.interval = interval
        self._clock = clock
        self._last_sent: float | None = None
        self._held: Message | None = None

    def offer(self, metadata: Message) -> Message | None:
        """The metadata to send now, or None when it is held back."""
        now = self._clock()
        if self._last_sent is not None and now - self._last_sent < self.interval:
            self._held = metadata
            return None
        self._held = None
        self._last_sent = now
        return metadata

    def take_held(self) -> Message | None:
        held, self._held = self._held, None
        if held is not None:
            self._last_sent = self._clock()
        return held


class OperationRun(RunState):
    """One operation of work in progress: ``report`` progress (throttled, see
    ProgressThrottle), then ``succeed`` or ``fail``; the ``with`` block finalizes it."""

    def __init__(
        self,
        client: _Producer,
        metadata: Message | None,
        on_behalf_of: str,
        throttle: ProgressThrottle,
    ) -> None:
        super().__init__(metadata, on_behalf_of, throttle)
        self._client = client

    def report(self, metadata: Message) -> None:
        """Report progress: sent now, or held back and sent later (see ProgressThrottle)."""
        now = self._throttle.offer(metadata)
        if now is not None:
            self.operation = self._client.update(self.name, now)

    def flush(self) -> None:
        """Send the progress report held back by the throttle, if any."""
        held = self._throttle.take_held()
        if held is not None:
            self.operation = self._client.update(self.name, held)

    def succeed(self, response: Message) -> Operation:
        return self._finalize(response=response)

    def fail(self, error: status_pb2.Status | BaseException) -> Operation:
        return self._finalize(error=error)

    def _finalize(self, **outcome: Any) -> Operation:
        metadata = self._throttle.take_held()
        self.operation = self._client.finalize(self.name, operation_metadata=metadata, **outcome)
        return self.operation

    def __enter__(self) -> OperationRun:
        metadata, on_behalf_of = self._start
        self.operation = self._client.create(metadata, on_behalf_of=on_behalf_of)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = self._exit_outcome(error)
        if outcome is None:
            return
        try:
            self._finalize(**outcome)
        except exceptions.GoogleAPICallError:
            if error is None:
                raise
            # The block's own exception is the one the caller needs; the failed finalize
            # goes to the log, and the operation stays running on the server.
            _log.exception("could not finalize %s with the error of its block", self.name)


class AsyncOperationRun(RunState):
    """One operation of work in progress: ``report`` progress (throttled, see
    ProgressThrottle), then ``succeed`` or ``fail``; the ``async with`` block finalizes it."""

    def __init__(
        self,
        client: _AsyncProducer,
        metadata: Message | None,
        on_behalf_of: str,
        throttle: ProgressThrottle,
    ) -> None:
        super().__init__(metadata, on_behalf_of, throttle)
        self._client = client

    async def report(self, metadata: Message) -> None:
        """Report progress: sent now, or held back and sent later (see ProgressThrottle)."""
        now = self._throttle.offer(metadata)
        if now is not None:
            self.operation = await self._client.update(self.name, now)

    async def flush(self) -> None:
        """Send the progress report held back by the throttle, if any."""
        held = self._throttle.take_held()
        if held is not None:
            self.operation = await self._client.update(self.name, held)

    async def succeed(self, response: Message) -> Operation:
        return await self._finalize(response=response)

    async def fail(self, error: status_pb2.Status | BaseException) -> Operation:
        return await self._finalize(error=error)

    async def _finalize(self, **outcome: Any) -> Operation:
        metadata = self._throttle.take_held()
        self.operation = await self._client.finalize(
            self.name, operation_metadata=metadata, **outcome
        )
        return self.operation

    async def __aenter__(self) -> AsyncOperationRun:
        metadata, on_behalf_of = self._start
        self.operation = await self._client.create(metadata, on_behalf_of=on_behalf_of)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = self._exit_outcome(error)
        if outcome is None:
            return
        try:
            await self._finalize(**outcome)
        except exceptions.GoogleAPICallError:
            if error is None:
                raise
            # The block's own exception is the one the caller needs; the failed finalize
            # goes to the log, and the operation stays running on the server.
            _log.exception("could not finalize %s with the error of its block", self.name)
