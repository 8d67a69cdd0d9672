"""The gRPC face of the reference server: OperationService, OperationProgressService and
google.longrunning.Operations, each a thin translation onto OperationManager."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc
from google.api_core.exceptions import GoogleAPICallError, InvalidArgument, ServiceUnavailable
from google.longrunning import operations_pb2_grpc, operations_proto_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._errors import excerpt
from .._operation import Operation
from .auth import Authenticator, Principal
from .errors import status_of
from .manager import Listing, OperationManager
from .store import StoreUnavailable

__all__ = ["DecodeRequests", "LongRunningService", "OperationProgressService", "OperationService"]

Service = TypeVar("Service", bound="_Service")
Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]

_LRO_FILTER = re.compile(r"\s*done\s*=\s*(true|false)\s*\Z")
# google.protobuf.Duration's range (about 10,000 years).
_MAX_DURATION_SECONDS = 315_576_000_000
# A Status rides in the trailers, which clients take up to 8 KiB of by default (with the
# message percent-encoded and the details base64-encoded).
_MAX_STATUS_MESSAGE_CHARS = 1024
_MAX_STATUS_BYTES = 4096
_log = logging.getLogger("v1op.server")


def rpc(
    handler: Callable[[Service, Request, Principal, Context], Awaitable[Response]],
) -> Callable[[Service, Request, Context], Coroutine[Any, Any, Response]]:
    """Authenticate the call, run the handler, and end it with the rich Status of a
    google-api-core exception (``grpc-status-details-bin``, so clients read typed details).

    This is the one place where a handler's failure becomes the caller's answer: any other
    exception is a bug of the server, answered INTERNAL with no word of its internals, and
    logged here with its traceback."""

    @functools.wraps(handler)
    async def call(self: Service, request: Request, context: Context) -> Response:
        try:
            try:
                who = await self._auth.authenticate(*_credentials_of(context))
                return await handler(self, request, who, context)
            except StoreUnavailable as e:
                # The database is down or restarting: a retry may succeed. Its reason is
                # for the operator's log, not for callers.
                print(f"v1op: {e}", file=sys.stderr, flush=True)
                raise ServiceUnavailable("the operation store is unavailable; retry later") from e
        except GoogleAPICallError as e:
            status = rpc_status.to_status(_bounded(status_of(e)))
        except grpc.aio.AbortError:
            raise  # a handler that ended the call itself
        except Exception:
            _log.exception("%s failed", handler.__qualname__)
            status = rpc_status.to_status(
                status_pb2.Status(code=code_pb2.INTERNAL, message="internal server error")
            )
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("unreachable: abort raises")

    return call


class DecodeRequests(grpc.aio.ServerInterceptor):
    """Read each unary request in the handler, not in gRPC: bytes that are not a valid
    request message (corrupt wire format, bad UTF-8 in a string) are INVALID_ARGUMENT, where
    gRPC would answer UNKNOWN with the Python exception in the message."""

    def __init__(self) -> None:
        # One wrapped handler per method, made on its first call: the services' handlers
        # never change while the server runs.
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

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
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        # grpc.aio calls the behaviour with its aio context and awaits what it returns; the
        # stubs describe the synchronous API's.
        behaviour: Callable[[Any, Context], Awaitable[Any]] = handler.unary_unary  # type: ignore[assignment]
        owner = getattr(decode, "__self__", None)
        what = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

        async def unary_unary(raw: bytes, context: Context) -> Any:
            try:
                request = decode(raw)
            except DecodeError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the request is not a valid {what} in binary form",
                )
            return await behaviour(request, context)

        wrapped = grpc.unary_unary_rpc_method_handler(
            unary_unary, response_serializer=handler.response_serializer
        )
        self._wrapped[method] = wrapped
        return wrapped


def _bounded(status: status_pb2.Status) -> status_pb2.Status:
    """The status, small enough for gRPC's trailers: a status that quotes a huge input would
    otherwise turn into RESOURCE_EXHAUSTED on the client. Messages quote excerpts, so this
    cuts only what slipped past them."""
    if len(status.message) <= _MAX_STATUS_MESSAGE_CHARS and status.ByteSize() <= _MAX_STATUS_BYTES:
        return status
    message = status.message
    if len(message) > _MAX_STATUS_MESSAGE_CHARS:
        message = message[:_MAX_STATUS_MESSAGE_CHARS] + f"... ({len(message)} characters)"
    bounded = status_pb2.Status(code=status.code, message=message)
    for detail in status.details:
        if bounded.ByteSize() + detail.ByteSize() + 8 > _MAX_STATUS_BYTES:
            break  # keep the details that fit, in order
        bounded.details.append(detail)
    return bounded


def _credentials_of(context: Context) -> tuple[list[tuple[str, str]], bytes | None]:
    """What the Authenticator reads of a gRPC call: its text metadata, and the DER of the
    client certificate that mutual TLS verified."""
    metadata = [(k, v) for k, v in context.invocation_metadata() or () if isinstance(v, str)]
    pem = list(context.auth_context().get("x509_pem_cert", ()))
    der = ssl.PEM_cert_to_DER_cert(pem[0].decode("ascii")) if pem else None
    return metadata, der


class _Service:
    def __init__(self, manager: OperationManager, auth: Authenticator) -> None:
        self._manager = manager
        self._auth = auth


class OperationService(_Service, pb_grpc.OperationServiceServicer):
    @rpc
    async def GetOperation(
        self, request: pb.GetOperationRequest, who: Principal, context: Context
    ) -> pb.GetOperationResponse:
        return pb.GetOperationResponse(operation=await self._manager.get(who, request.name))

    @rpc
    async def BatchGetOperations(
        self, request: pb.BatchGetOperationsRequest, who: Principal, context: Context
    ) -> pb.BatchGetOperationsResponse:
        operations = await self._manager.batch_get(who, list(request.names))
        return pb.BatchGetOperationsResponse(operations=operations)

    @rpc
    async def ListOperations(
        self, request: pb.ListOperationsRequest, who: Principal, context: Context
    ) -> pb.ListOperationsResponse:
        after = _decode_page_token(request.page_token, "list")
        page = await self._manager.list(who, request.page_size, after=after)
        return pb.ListOperationsResponse(
            operations=page.operations,
            total_size=page.total_size,
            next_page_token=_next_page_token(page, "list"),
        )

    @rpc
    async def ListUnseenOperations(
        self, request: pb.ListUnseenOperationsRequest, who: Principal, context: Context
    ) -> pb.ListUnseenOperationsResponse:
        full = request.view != pb.OPERATION_VIEW_BASIC
        # A token is good for the view it was given out for.
        scope = "unseen:full" if full else "unseen:basic"
        after = _decode_page_token(request.page_token, scope)
        page = await self._manager.list_unseen(who, request.page_size, full=full, after=after)
        return pb.ListUnseenOperationsResponse(
            operations=page.operations,
            total_size=page.total_size,
            next_page_token=_next_page_token(page, scope),
        )

    @rpc
    async def UpdateOperation(
        self, request: pb.UpdateOperationRequest, who: Principal, context: Context
    ) -> pb.UpdateOperationResponse:
        operation = await self._manager.update(who, request.operation)
        return pb.UpdateOperationResponse(operation=operation)

    @rpc
    async def FinalizeOperation(
        self, request: pb.FinalizeOperationRequest, who: Principal, context: Context
    ) -> pb.FinalizeOperationResponse:
        operation = await self._manager.finalize(who, request.operation)
        return pb.FinalizeOperationResponse(operation=operation)

    @rpc
    async def AbortOperation(
        self, request: pb.AbortOperationRequest, who: Principal, context: Context
    ) -> pb.AbortOperationResponse:
        return pb.AbortOperationResponse(operation=await self._manager.abort(who, request.name))

    @rpc
    async def MarkOperationSeenByCreator(
        self, request: pb.MarkOperationSeenByCreatorRequest, who: Principal, context: Context
    ) -> pb.MarkOperationSeenByCreatorResponse:
        operation = await self._manager.mark_seen(who, request.name)
        return pb.MarkOperationSeenByCreatorResponse(operation=operation)

    @rpc
    async def BatchMarkOperationSeenByCreator(
        self, request: pb.BatchMarkOperationSeenByCreatorRequest, who: Principal, context: Context
    ) -> pb.BatchMarkOperationSeenByCreatorResponse:
        operations = await self._manager.batch_mark_seen(who, list(request.names))
        return pb.BatchMarkOperationSeenByCreatorResponse(operations=operations)

    @rpc
    async def CreateOperation(
        self, request: pb.CreateOperationRequest, who: Principal, context: Context
    ) -> pb.CreateOperationResponse:
        operation = await self._manager.create(who, request.operation, request.on_behalf_of)
        return pb.CreateOperationResponse(operation=operation)


class OperationProgressService(_Service, pb_grpc.OperationProgressServiceServicer):
    @rpc
    async def GetOperationProgressByParent(
        self, request: pb.GetOperationProgressByParentRequest, who: Principal, context: Context
    ) -> pb.GetOperationProgressByParentResponse:
        name, progress, message = await self._manager.progress(who, request.parent)
        return pb.GetOperationProgressByParentResponse(
            operation_progress=pb.OperationProgress(
                name=name, parent=request.parent, progress=progress, message=message
            )
        )


class LongRunningService(_Service, operations_pb2_grpc.OperationsServicer):
    """google.longrunning.Operations over the same store, for google-api-core's
    OperationsClient and its operation futures."""

    @rpc
    async def GetOperation(
        self, request: operations_proto_pb2.GetOperationRequest, who: Principal, context: Context
    ) -> operations_proto_pb2.Operation:
        return to_longrunning(await self._manager.get(who, request.name))

    @rpc
    async def ListOperations(
        self, request: operations_proto_pb2.ListOperationsRequest, who: Principal, context: Context
    ) -> operations_proto_pb2.ListOperationsResponse:
        if request.name not in ("", "operations"):
            raise InvalidArgument(f"list the collection 'operations', not {excerpt(request.name)}")
        done = _parse_filter(request.filter)
        scope = f"longrunning:{request.filter}"
        after = _decode_page_token(request.page_token, scope)
        page = await self._manager.list(who, request.page_size, after=after, done=done)
        return operations_proto_pb2.ListOperationsResponse(
            operations=[to_longrunning(op) for op in page.operations],
            next_page_token=_next_page_token(page, scope),
        )

    @rpc
    async def CancelOperation(
        self, request: operations_proto_pb2.CancelOperationRequest, who: Principal, context: Context
    ) -> empty_pb2.Empty:
        await self._manager.abort(who, request.name)
        return empty_pb2.Empty()

    @rpc
    async def DeleteOperation(
        self, request: operations_proto_pb2.DeleteOperationRequest, who: Principal, context: Context
    ) -> empty_pb2.Empty:
        await self._manager.delete(who, request.name)
        return empty_pb2.Empty()

    @rpc
    async def WaitOperation(
        self, request: operations_proto_pb2.WaitOperationRequest, who: Principal, context: Context
    ) -> operations_proto_pb2.Operation:
        timeout = None
        if request.HasField("timeout"):
            timeout = _seconds_of(request.timeout, "timeout")
        remaining = context.time_remaining()
        if remaining is not None:
            # Answer before the caller's deadline, with the state as it is then.
            timeout = remaining * 0.9 if timeout is None else min(timeout, remaining * 0.9)
        return to_longrunning(await self._manager.wait(who, request.name, timeout))


def to_longrunning(operation: Operation) -> operations_proto_pb2.Operation:
    """The google.longrunning.Operation view of an Operation (name, metadata, done,
    error or response)."""
    result = operations_proto_pb2.Operation(name=operation.name, done=operation.done)
    if operation.HasField("metadata"):
        result.metadata.CopyFrom(operation.metadata)
    outcome = operation.WhichOneof("result")
    if outcome == "error":
        result.error.CopyFrom(operation.error)
    elif outcome == "response":
        result.response.CopyFrom(operation.response)
    return result


def _parse_filter(text: str) -> bool | None:
    if not text.strip():
        return None
    match = _LRO_FILTER.match(text)
    if match is None:
        raise InvalidArgument(
            f"unsupported filter {excerpt(text)}; use 'done=true' or 'done=false'"
        )
    return match.group(1) == "true"


def _seconds_of(duration: Any, field: str) -> float:
    """A request's Duration in seconds, refused unless it is a valid, non-negative
    google.protobuf.Duration (whose range keeps every later sum finite)."""
    seconds, nanos = duration.seconds, duration.nanos
    valid = (
        0 <= seconds <= _MAX_DURATION_SECONDS
        and 0 <= nanos < 1_000_000_000
        and not (seconds == _MAX_DURATION_SECONDS and nanos)
    )
    if not valid:
        raise InvalidArgument(
            f"{field}: a duration from 0 to {_MAX_DURATION_SECONDS}s, not {seconds}s {nanos}ns"
        )
    return float(seconds + nanos / 1e9)


# Page tokens are the store's cursor and what the token is good for (which list, with which
# filter), so that a token cannot be carried over to another listing.
_MAX_CURSOR = 2**63 - 1  # the stores' cursors are signed 64-bit row numbers


def _next_page_token(page: Listing, scope: str) -> str:
    if not page.more:
        return ""
    raw = json.dumps({"after": page.cursor, "scope": scope}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_page_token(token: str, scope: str) -> int:
    """The store cursor of a page token this server gave out for ``scope``; every value a
    forged token could hold is checked here, where it enters."""
    if not token:
        return 0
    refused = InvalidArgument("page_token is not one this server gave out")
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, RecursionError) as e:
        raise refused from e
    if not isinstance(data, dict) or set(data) != {"after", "scope"}:
        raise refused
    after = data["after"]
    if type(after) is not int or not 0 <= after <= _MAX_CURSOR:
        raise refused
    if data["scope"] != scope:
        raise InvalidArgument("page_token was given out for another filter or another listing")
    return after
