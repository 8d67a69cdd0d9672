"""The asyncio client of the reference server, on grpc.aio: the methods of the synchronous
client, awaited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.api_core import exceptions
from google.longrunning import operations_pb2_grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._operation import Operation
from .._registry import TypeRegistry
from . import _common, diagnostics
from ._common import DEFAULT_PROGRESS_INTERVAL, ProgressThrottle, RunState

__all__ = ["AsyncOperationClient", "AsyncOperationRun"]

T = TypeVar("T")
_log = logging.getLogger("v1op.client")


class AsyncOperationClient:
    """Reads, waits for, starts, reports on and ends Operations on a server that speaks
    OperationService.

    ``token`` goes out as ``authorization: Bearer <token>``: as call credentials over TLS
    (``root_certificates``, ``private_key`` with ``certificate_chain`` for mutual TLS,
    ``tls=True`` for the system roots, or grpc ``credentials``); over plaintext only to a
    loopback address unless ``insecure=True``. A failed call raises google-api-core's
    exception of its code (NotFound, PermissionDenied, ...), details typed. Reads are retried
    on UNAVAILABLE within ``timeout``.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        channel: grpc.aio.Channel | None = None,
        registry: TypeRegistry | None = None,
        timeout: float = 30.0,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        insecure: bool = False,
    ) -> None:
        settings = _common.channel_settings(
            target,
            token=token,
            tls=tls,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
            credentials=credentials,
            # A given channel is the caller's choice: the token goes on it as metadata.
            insecure=insecure or channel is not None,
        )
        self._own_channel = channel is None
        # Says why a connection fails (e.g. plaintext to a TLS port) better than gRPC does.
        self._probe = diagnostics.Probe.of(
            target, channel, credentials, tls, root_certificates, certificate_chain
        )
        if channel is None:
            if settings.credentials is None:
                channel = grpc.aio.insecure_channel(target, options=settings.options)
            else:
                channel = grpc.aio.secure_channel(target, settings.credentials, settings.options)
        self.channel: grpc.aio.Channel = channel
        self._metadata = settings.metadata
        self._operations = pb_grpc.OperationServiceStub(channel)
        self._longrunning = operations_pb2_grpc.OperationsStub(channel)
        self.registry = registry
        self.timeout = timeout

    # --- reading -----------------------------------------------------------------------

    async def get(self, name: str) -> Operation:
        request = pb.GetOperationRequest(name=name)
        return (await self._call(self._operations.GetOperation, request)).operation

    async def list(self, page_size: int = 0, page_token: str = "") -> pb.ListOperationsResponse:
        """One page (the server's default size for 0); pass its ``next_page_token`` back as
        ``page_token`` for the next, until it is empty."""
        request = pb.ListOperationsRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._operations.ListOperations, request)

    async def list_unseen(
        self,
        page_size: int = 0,
        view: pb.OperationView.ValueType = pb.OPERATION_VIEW_FULL,
        page_token: str = "",
    ) -> pb.ListUnseenOperationsResponse:
        request = pb.ListUnseenOperationsRequest(
            page_size=page_size, view=view, page_token=page_token
        )
        return await self._call(self._operations.ListUnseenOperations, request)

    async def mark_seen(self, name: str) -> Operation:
        request = pb.MarkOperationSeenByCreatorRequest(name=name)
        return (await self._call(self._operations.MarkOperationSeenByCreator, request)).operation

    async def abort(self, name: str) -> Operation:
        request = pb.AbortOperationRequest(name=name)
        return (await self._call(self._operations.AbortOperation, request)).operation

    async def wait(self, name: str, timeout: float | None = None) -> Operation:
        """The operation once done, or as it is when ``timeout`` seconds have passed.

        Uses google.longrunning's WaitOperation, which the server answers when the
        operation finishes; against a server without it, polls GetOperation with backoff.
        """
        pacing = _common.Pacing(timeout)
        try:
            while True:
                seconds = pacing.wait_slice()
                request = _common.wait_request(seconds)
                request.name = name
                await self._call(self._longrunning.WaitOperation, request, timeout=seconds + 10)
                # Read it back through OperationService: the longrunning view lacks our fields.
                operation = await self.get(name)
                if operation.done or pacing.expired():
                    return operation
        except exceptions.MethodNotImplemented:
            pass
        while True:
            operation = await self.get(name)
            if operation.done or pacing.expired():
                return operation
            await asyncio.sleep(pacing.next_pause())

    async def result(self, name: str, timeout: float | None = None) -> Message:
        """The unpacked response of the finished operation.

        Raises the api-core exception built from the operation's error (code kept, details
        typed), or DeadlineExceeded when it is not finished within ``timeout`` seconds.
        """
        return _common.result_of(await self.wait(name, timeout), timeout, self.registry)

    # --- the producer side -------------------------------------------------------------

    async def create(self, metadata: Message | None = None, *, on_behalf_of: str = "") -> Operation:
        """Start an operation (services only) with ``metadata`` (any message, packed), on
        behalf of the user ``on_behalf_of`` (``users/<id>``), who becomes its creator."""
        request = _common.create_request(metadata, on_behalf_of)
        return (await self._call(self._operations.CreateOperation, request)).operation

    async def update(self, name: str, metadata: Message) -> Operation:
        """Replace the metadata of a running operation (its progress), at once."""
        request = _common.update_request(name, metadata)
        return (await self._call(self._operations.UpdateOperation, request)).operation

    async def finalize(
        self,
        name: str,
        *,
        response: Message | None = None,
        error: status_pb2.Status | BaseException | None = None,
        metadata: Message | None = None,
    ) -> Operation:
        """Finish an operation with ``response`` (any message) or ``error`` (a Status, or an
        exception turned into one: see status_from_exception), and optionally the last
        ``metadata``."""
        request = _common.finalize_request(name, response=response, error=error, metadata=metadata)
        return (await self._call(self._operations.FinalizeOperation, request)).operation

    def run(
        self,
        metadata: Message | None = None,
        *,
        on_behalf_of: str = "",
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> AsyncOperationRun:
        """An async context manager that creates an operation on entry and finalizes it on exit:
        with the response given to ``succeed``, an error Status when the block raises (the
        exception still propagates), or an empty response when the block ends without
        either."""
        return AsyncOperationRun(self, metadata, on_behalf_of, ProgressThrottle(progress_interval))

    # --- the channel ---------------------------------------------------------------------

    async def close(self) -> None:
        if self._own_channel:
            await self.channel.close()

    async def __aenter__(self) -> AsyncOperationClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(
        self, method: Callable[..., Awaitable[T]], request: Message, *, timeout: float | None = None
    ) -> T:
        try:
            return await method(
                request,
                metadata=self._metadata,
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            error = _common.error_from_rpc(e, self.registry)
            raise await diagnostics.explain_async(error, self._probe) from e


class AsyncOperationRun(RunState):
    """One operation of work in progress: ``report`` progress (throttled, see
    ProgressThrottle), then ``succeed`` or ``fail``; the ``async with`` block finalizes it."""

    def __init__(
        self,
        client: AsyncOperationClient,
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
        self.operation = await self._client.finalize(self.name, metadata=metadata, **outcome)
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
