"""The asyncio client of the reference server, on grpc.aio: the methods of the synchronous
client, awaited; its pagers work with ``async for``."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, overload

import grpc
from google.api_core import exceptions, retry_async
from google.longrunning import operations_pb2_grpc, operations_proto_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._operation import Operation
from .._registry import TypeRegistry
from . import _calls, _common, diagnostics
from ._calls import DEFAULT, CallOptions, OptionalTimeout
from ._calls import OptionalAsyncRetry as OptionalRetry
from ._common import DEFAULT_PROGRESS_INTERVAL
from .pagers import AsyncListOperationsPager
from .reflection import TypeLearner, with_learned_types_async
from .runs import AsyncOperationRun, ProgressThrottle

__all__ = ["AsyncOperationClient"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)
_log = logging.getLogger("v1op.client")

ListPager = AsyncListOperationsPager[pb.ListOperationsRequest, pb.ListOperationsResponse]
ListUnseenPager = AsyncListOperationsPager[
    pb.ListUnseenOperationsRequest, pb.ListUnseenOperationsResponse
]


class AsyncOperationClient:
    """Reads, waits for, starts, reports on and ends Operations on a server that speaks
    OperationService.

    ``token`` goes out as ``authorization: Bearer <token>``: as call credentials over TLS
    (``root_certificates``, ``private_key`` with ``certificate_chain`` for mutual TLS,
    ``tls=True`` for the system roots, or grpc ``credentials``); over plaintext only to a
    loopback address unless ``insecure=True``. A failed call raises google-api-core's
    exception of its code (NotFound, PermissionDenied, ...), details typed. Reads are retried
    on UNAVAILABLE within ``timeout``.

    Every method takes ``retry=`` (a google-api-core ``AsyncRetry`` wrapping the call), ``timeout=``
    (seconds, None for no deadline; the client's ``timeout`` by default) and ``metadata=``
    (more gRPC metadata pairs), as api-core's generated clients do.

    Payload types the client does not know are learned from the server's reflection, as
    grpcurl does, into ``registry`` (a registry of the client's own unless one is given);
    ``learn_types=False`` turns that off.
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
        learn_types: bool = True,
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
        self._progress = pb_grpc.OperationProgressServiceStub(channel)
        self._longrunning = operations_pb2_grpc.OperationsStub(channel)
        self.registry: TypeRegistry = registry if registry is not None else TypeRegistry()
        self.learner: TypeLearner | None = TypeLearner(self.registry) if learn_types else None
        self.timeout = timeout

    # --- reading -----------------------------------------------------------------------

    async def get(
        self,
        name: str,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        request = pb.GetOperationRequest(name=name)
        options = self._options(retry, timeout, metadata)
        return (await self._call(self._operations.GetOperation, request, options)).operation

    async def batch_get(
        self,
        names: Sequence[str],
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> builtins.list[Operation]:
        """The operations named (up to 1000), in the order given."""
        request = pb.BatchGetOperationsRequest(names=names)
        options = self._options(retry, timeout, metadata)
        response = await self._call(self._operations.BatchGetOperations, request, options)
        return list(response.operations)

    async def list(
        self,
        page_size: int = 0,
        page_token: str = "",
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> ListPager:
        """The operations the caller may read, as a pager: iterate it for every operation
        across the pages (each next page is asked for when needed), ``.pages`` for the
        responses; ``.next_page_token`` and the other fields are the current page's.
        ``page_size`` 0 is the server's default page size."""
        request = pb.ListOperationsRequest(page_size=page_size, page_token=page_token)
        options = self._options(retry, timeout, metadata)

        async def fetch(request: pb.ListOperationsRequest) -> pb.ListOperationsResponse:
            return await self._call(self._operations.ListOperations, request, options)

        return AsyncListOperationsPager(fetch, request, await fetch(request))

    async def list_unseen(
        self,
        page_size: int = 0,
        view: pb.OperationView.ValueType = pb.OPERATION_VIEW_FULL,
        page_token: str = "",
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> ListUnseenPager:
        """The caller's finished operations it has not marked seen, as a pager (see
        ``list``)."""
        request = pb.ListUnseenOperationsRequest(
            page_size=page_size, view=view, page_token=page_token
        )
        options = self._options(retry, timeout, metadata)

        async def fetch(
            request: pb.ListUnseenOperationsRequest,
        ) -> pb.ListUnseenOperationsResponse:
            return await self._call(self._operations.ListUnseenOperations, request, options)

        return AsyncListOperationsPager(fetch, request, await fetch(request))

    async def progress(
        self,
        name: str,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> pb.OperationProgress:
        """The progress (0 to 1) and message the server reads from the operation's
        metadata."""
        request = pb.GetOperationProgressByParentRequest(parent=name)
        options = self._options(retry, timeout, metadata)
        method = self._progress.GetOperationProgressByParent
        return (await self._call(method, request, options)).operation_progress

    async def mark_seen(
        self,
        name: str,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        request = pb.MarkOperationSeenByCreatorRequest(name=name)
        options = self._options(retry, timeout, metadata)
        return (
            await self._call(self._operations.MarkOperationSeenByCreator, request, options)
        ).operation

    async def batch_mark_seen(
        self,
        names: Sequence[str],
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> builtins.list[Operation]:
        request = pb.BatchMarkOperationSeenByCreatorRequest(names=names)
        options = self._options(retry, timeout, metadata)
        method = self._operations.BatchMarkOperationSeenByCreator
        return list((await self._call(method, request, options)).operations)

    async def abort(
        self,
        name: str,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        request = pb.AbortOperationRequest(name=name)
        options = self._options(retry, timeout, metadata)
        return (await self._call(self._operations.AbortOperation, request, options)).operation

    async def delete(
        self,
        name: str,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Delete the operation (google.longrunning's DeleteOperation): readers get
        NOT_FOUND from then on."""
        request = operations_proto_pb2.DeleteOperationRequest(name=name)
        await self._call(
            self._longrunning.DeleteOperation, request, self._options(retry, timeout, metadata)
        )

    async def wait(
        self,
        name: str,
        timeout: float | None = None,
        *,
        retry: OptionalRetry = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        """The operation once done, or as it is when ``timeout`` seconds have passed.

        Uses google.longrunning's WaitOperation, which the server answers when the
        operation finishes; against a server without it, polls GetOperation with backoff.
        ``retry`` and ``metadata`` apply to each of those calls.
        """
        pacing = _common.Pacing(timeout)
        try:
            while True:
                seconds = pacing.wait_slice()
                request = _common.wait_request(seconds)
                request.name = name
                options = self._options(retry, seconds + 10, metadata)
                await self._call(self._longrunning.WaitOperation, request, options)
                # Read it back through OperationService: the longrunning view lacks our fields.
                operation = await self.get(name, retry=retry, metadata=metadata)
                if operation.done or pacing.expired():
                    return operation
        except exceptions.MethodNotImplemented:
            pass
        while True:
            operation = await self.get(name, retry=retry, metadata=metadata)
            if operation.done or pacing.expired():
                return operation
            await asyncio.sleep(pacing.next_pause())

    @overload
    async def result(
        self,
        name: str,
        timeout: float | None = ...,
        *,
        retry: OptionalRetry = ...,
        metadata: Sequence[tuple[str, str]] = ...,
    ) -> Message: ...
    @overload
    async def result(
        self,
        name: str,
        timeout: float | None = ...,
        *,
        message_type: type[M],
        retry: OptionalRetry = ...,
        metadata: Sequence[tuple[str, str]] = ...,
    ) -> M: ...
    async def result(
        self,
        name: str,
        timeout: float | None = None,
        *,
        message_type: type[Message] | None = None,
        retry: OptionalRetry = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Message:
        """The unpacked response of the finished operation: a ``message_type`` when given
        (ConversionError if it holds another type), else of the type its URL names, learned
        from the server's reflection when unknown here.

        Raises the api-core exception built from the operation's error (code kept, details
        typed), or DeadlineExceeded when it is not finished within ``timeout`` seconds.
        """
        operation = await self.wait(name, timeout, retry=retry, metadata=metadata)
        if operation.WhichOneof("result") == "error":
            for type_name in _calls.unknown_detail_types(operation.error, self.registry):
                await self._learn(type_name)
        return await self.with_learned_types(
            lambda: _calls.result_of(operation, timeout, self.registry, message_type)
        )

    async def with_learned_types(self, convert: Callable[[], T]) -> T:
        """``convert()``, learning from the server's reflection each payload type it fails
        on for being unknown to ``registry``, and trying again (as the client's own
        conversions do): ``client.with_learned_types(lambda: v1op_pb.to_json(op,
        registry=client.registry))``. Without learning, just ``convert()``."""
        if self.learner is None:
            return convert()
        return await with_learned_types_async(convert, self.channel, self.learner, self._metadata)

    async def _learn(self, type_name: str) -> bool:
        return self.learner is not None and await self.learner.learn_async(
            self.channel, type_name, self._metadata
        )

    # --- the producer side -------------------------------------------------------------

    async def create(
        self,
        operation_metadata: Message | None = None,
        /,
        *,
        on_behalf_of: str = "",
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        """Start an operation (services only) with ``operation_metadata`` (any message,
        packed), on behalf of the user ``on_behalf_of`` (``users/<id>``), who becomes its
        creator. Never retried by default: a retry after a lost answer creates a second
        operation."""
        request = _common.create_request(operation_metadata, on_behalf_of)
        options = self._options(retry, timeout, metadata)
        return (await self._call(self._operations.CreateOperation, request, options)).operation

    async def update(
        self,
        name: str,
        operation_metadata: Message,
        /,
        *,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        """Replace the metadata of a running operation (its progress), at once."""
        request = _common.update_request(name, operation_metadata)
        options = self._options(retry, timeout, metadata)
        return (await self._call(self._operations.UpdateOperation, request, options)).operation

    async def finalize(
        self,
        name: str,
        *,
        response: Message | None = None,
        error: status_pb2.Status | BaseException | None = None,
        operation_metadata: Message | None = None,
        retry: OptionalRetry = DEFAULT,
        timeout: OptionalTimeout = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Operation:
        """Finish an operation with ``response`` (any message) or ``error`` (a Status, or an
        exception turned into one: see status_from_exception), and optionally the last
        ``operation_metadata``."""
        request = _common.finalize_request(
            name, response=response, error=error, metadata=operation_metadata
        )
        options = self._options(retry, timeout, metadata)
        return (await self._call(self._operations.FinalizeOperation, request, options)).operation

    def run(
        self,
        operation_metadata: Message | None = None,
        /,
        *,
        on_behalf_of: str = "",
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> AsyncOperationRun:
        """An async context manager that creates an operation on entry and finalizes it on exit:
        with the response given to ``succeed``, an error Status when the block raises (the
        exception still propagates), or an empty response when the block ends without
        either."""
        throttle = ProgressThrottle(progress_interval)
        return AsyncOperationRun(self, operation_metadata, on_behalf_of, throttle)

    # --- the channel ---------------------------------------------------------------------

    async def close(self) -> None:
        if self._own_channel:
            await self.channel.close()

    async def __aenter__(self) -> AsyncOperationClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _options(
        self, retry: OptionalRetry, timeout: OptionalTimeout, metadata: Sequence[tuple[str, str]]
    ) -> CallOptions:
        return _calls.call_options(
            default_timeout=self.timeout,
            client_metadata=self._metadata,
            retry=retry,
            timeout=timeout,
            metadata=metadata,
        )

    async def _call(
        self, method: Callable[..., Awaitable[T]], request: Message, options: CallOptions
    ) -> T:
        async def once() -> T:
            try:
                return await method(request, metadata=options.metadata, timeout=options.timeout)
            except grpc.RpcError as e:
                error = _common.error_from_rpc(e, self.registry)
                raise await diagnostics.explain_async(error, self._probe) from e

        if isinstance(options.retry, retry_async.AsyncRetry):
            return await options.retry(once)()
        return await once()
