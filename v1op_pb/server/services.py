"""The gRPC face of the reference server: OperationService, OperationProgressService and
google.longrunning.Operations as grpc.aio servicers, each method a thin adapter onto the
dispatcher (``dispatch``), which every other protocol calls too."""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError, Message
from grpc_status import rpc_status
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._calls import GRPC, REQUEST_ID, CallError, CallInfo, not_binary_message, request_id_of
from .auth import Authenticator, TokenTable
from .dispatch import ServiceDispatcher
from .manager import OperationManager
from .observe import Observer
from .observe.grpc_port import observed_handler, refused_call, unknown_method_handler

__all__ = [
    "DecodeRequests",
    "LongRunningService",
    "OperationProgressService",
    "OperationService",
    "grpc_call_info",
]

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R", bound=Message)

_OPS = "/v1op.v1.OperationService/"
_PROGRESS = "/v1op.v1.OperationProgressService/"
_LRO = "/google.longrunning.Operations/"


def grpc_call_info(method: str, context: Context, *, certificates: bool = False) -> CallInfo:
    """The facts of a gRPC call. ``certificates``: the server asks for client certificates,
    so look for the caller's."""
    metadata = tuple(
        (key, value) for key, value in context.invocation_metadata() or () if type(value) is str
    )
    remaining = context.time_remaining()
    deadline = None if remaining is None else time.monotonic() + remaining
    certificate = _peer_certificate(context) if certificates else None
    return CallInfo(
        GRPC, method, metadata, context.peer(), certificate, deadline, request_id_of(metadata)
    )


def _peer_certificate(context: Context) -> bytes | None:
    """DER of the verified client certificate, from the TLS auth context (PEM)."""
    pem = list(context.auth_context().get("x509_pem_cert", ()))
    if not pem:
        return None
    return ssl.PEM_cert_to_DER_cert(pem[0].decode("ascii"))


class _Servicer:
    def __init__(
        self,
        manager: OperationManager,
        identity: TokenTable | Authenticator,
        *,
        dispatcher: ServiceDispatcher | None = None,
        certificates: bool = False,
    ) -> None:
        """On ``manager`` with ``identity``; or, with ``dispatcher``, through that one (the
        server's, shared with its HTTP port). ``certificates``: the server asks for client
        certificates (mutual TLS)."""
        self._dispatcher = (
            dispatcher if dispatcher is not None else ServiceDispatcher(manager, identity)
        )
        self._certificates = certificates

    async def _call(self, method: str, request: Message, context: Context, answer: type[R]) -> R:
        info = grpc_call_info(method, context, certificates=self._certificates)
        try:
            response = await self._dispatcher.call(info, request)
        except CallError as e:
            # The rich Status (grpc-status-details-bin), so clients read typed details.
            status = rpc_status.to_status(e.status)
            trailing = (*status.trailing_metadata, (REQUEST_ID, info.request_id))
            await context.abort(status.code, status.details, trailing)
            raise AssertionError("unreachable: abort raises") from e
        context.set_trailing_metadata(((REQUEST_ID, info.request_id),))
        if not isinstance(response, answer):
            raise TypeError(f"{method} answered a {type(response).__name__}")
        return response


class OperationService(_Servicer, pb_grpc.OperationServiceServicer):
    async def GetOperation(
        self, request: pb.GetOperationRequest, context: Context
    ) -> pb.GetOperationResponse:
        return await self._call(_OPS + "GetOperation", request, context, pb.GetOperationResponse)

    async def BatchGetOperations(
        self, request: pb.BatchGetOperationsRequest, context: Context
    ) -> pb.BatchGetOperationsResponse:
        return await self._call(
            _OPS + "BatchGetOperations", request, context, pb.BatchGetOperationsResponse
        )

    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: Context
    ) -> pb.ListOperationsResponse:
        return await self._call(
            _OPS + "ListOperations", request, context, pb.ListOperationsResponse
        )

    async def ListUnseenOperations(
        self, request: pb.ListUnseenOperationsRequest, context: Context
    ) -> pb.ListUnseenOperationsResponse:
        return await self._call(
            _OPS + "ListUnseenOperations", request, context, pb.ListUnseenOperationsResponse
        )

    async def UpdateOperation(
        self, request: pb.UpdateOperationRequest, context: Context
    ) -> pb.UpdateOperationResponse:
        return await self._call(
            _OPS + "UpdateOperation", request, context, pb.UpdateOperationResponse
        )

    async def FinalizeOperation(
        self, request: pb.FinalizeOperationRequest, context: Context
    ) -> pb.FinalizeOperationResponse:
        return await self._call(
            _OPS + "FinalizeOperation", request, context, pb.FinalizeOperationResponse
        )

    async def AbortOperation(
        self, request: pb.AbortOperationRequest, context: Context
    ) -> pb.AbortOperationResponse:
        return await self._call(
            _OPS + "AbortOperation", request, context, pb.AbortOperationResponse
        )

    async def MarkOperationSeenByCreator(
        self, request: pb.MarkOperationSeenByCreatorRequest, context: Context
    ) -> pb.MarkOperationSeenByCreatorResponse:
        return await self._call(
            _OPS + "MarkOperationSeenByCreator",
            request,
            context,
            pb.MarkOperationSeenByCreatorResponse,
        )

    async def BatchMarkOperationSeenByCreator(
        self, request: pb.BatchMarkOperationSeenByCreatorRequest, context: Context
    ) -> pb.BatchMarkOperationSeenByCreatorResponse:
        return await self._call(
            _OPS + "BatchMarkOperationSeenByCreator",
            request,
            context,
            pb.BatchMarkOperationSeenByCreatorResponse,
        )

    async def CreateOperation(
        self, request: pb.CreateOperationRequest, context: Context
    ) -> pb.CreateOperationResponse:
        return await self._call(
            _OPS + "CreateOperation", request, context, pb.CreateOperationResponse
        )


class OperationProgressService(_Servicer, pb_grpc.OperationProgressServiceServicer):
    async def GetOperationProgressByParent(
        self, request: pb.GetOperationProgressByParentRequest, context: Context
    ) -> pb.GetOperationProgressByParentResponse:
        return await self._call(
            _PROGRESS + "GetOperationProgressByParent",
            request,
            context,
            pb.GetOperationProgressByParentResponse,
        )


class LongRunningService(_Servicer, operations_pb2_grpc.OperationsServicer):
    """google.longrunning.Operations over the same store, for google-api-core's
    OperationsClient and its operation futures."""

    async def GetOperation(
        self, request: lro.GetOperationRequest, context: Context
    ) -> lro.Operation:
        return await self._call(_LRO + "GetOperation", request, context, lro.Operation)

    async def ListOperations(
        self, request: lro.ListOperationsRequest, context: Context
    ) -> lro.ListOperationsResponse:
        return await self._call(
            _LRO + "ListOperations", request, context, lro.ListOperationsResponse
        )

    async def CancelOperation(
        self, request: lro.CancelOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._call(_LRO + "CancelOperation", request, context, empty_pb2.Empty)

    async def DeleteOperation(
        self, request: lro.DeleteOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._call(_LRO + "DeleteOperation", request, context, empty_pb2.Empty)

    async def WaitOperation(
        self, request: lro.WaitOperationRequest, context: Context
    ) -> lro.Operation:
        return await self._call(_LRO + "WaitOperation", request, context, lro.Operation)


class DecodeRequests(grpc.aio.ServerInterceptor):
    """Read each unary request in the handler, not in gRPC: bytes that are not a valid
    request message (corrupt wire format, bad UTF-8 in a string) are INVALID_ARGUMENT, with
    the wording every protocol uses, where gRPC would answer UNKNOWN with the Python
    exception in the message.

    With an ``observer``, it observes what the dispatcher does not see: such refusals,
    methods the server does not have, and every method but the ``dispatched`` ones (health
    checking, reflection)."""

    def __init__(
        self, observer: Observer | None = None, dispatched: frozenset[str] = frozenset()
    ) -> None:
        # One wrapped handler per method, made on its first call: the services' handlers
        # never change while the server runs.
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._observer = observer
        self._dispatched = dispatched

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        observer = self._observer
        if observer is not None:
            if handler is None:
                return unknown_method_handler(observer, method, grpc_call_info)
            if method not in self._dispatched:
                wrapped = self._wrapped[method] = observed_handler(
                    observer, method, handler, grpc_call_info
                )
                return wrapped
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        # grpc.aio calls the behaviour with its aio context and awaits what it returns; the
        # stubs describe the synchronous API's.
        behaviour: Callable[[Any, Context], Awaitable[Any]] = handler.unary_unary  # type: ignore[assignment]
        owner = getattr(decode, "__self__", None)
        what = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")
        refusal = not_binary_message(what)

        async def unary_unary(raw: bytes, context: Context) -> Any:
            try:
                request = decode(raw)
            except DecodeError:
                trailing: tuple[tuple[str, str], ...] = ()
                if observer is not None:
                    info = grpc_call_info(method, context)
                    trailing = refused_call(observer, info, refusal.status)
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, refusal.status.message, trailing
                )
            return await behaviour(request, context)

        wrapped = grpc.unary_unary_rpc_method_handler(
            unary_unary, response_serializer=handler.response_serializer
        )
        self._wrapped[method] = wrapped
        return wrapped
