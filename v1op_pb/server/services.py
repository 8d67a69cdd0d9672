"""The gRPC face of the reference server: OperationService, OperationProgressService and
google.longrunning.Operations, each a thin translation onto OperationManager."""

from __future__ import annotations

import base64
import functools
import json
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc
from google.api_core.exceptions import GoogleAPICallError, InvalidArgument, ServiceUnavailable
from google.longrunning import operations_pb2_grpc, operations_proto_pb2
from google.protobuf import empty_pb2
from grpc_status import rpc_status
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._operation import Operation
from .errors import status_of
from .identity import Principal, TokenTable
from .manager import OperationManager
from .store import StoreUnavailable

__all__ = ["LongRunningService", "OperationProgressService", "OperationService"]

Service = TypeVar("Service", bound="_Service")
Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]

_LRO_PAGE_SIZE = 100
_LRO_FILTER = re.compile(r"\s*done\s*=\s*(true|false)\s*\Z")


def rpc(
    handler: Callable[[Service, Request, Principal, Context], Awaitable[Response]],
) -> Callable[[Service, Request, Context], Coroutine[Any, Any, Response]]:
    """Authenticate the call, run the handler, and end it with the rich Status of a
    google-api-core exception (``grpc-status-details-bin``, so clients read typed details)."""

    @functools.wraps(handler)
    async def call(self: Service, request: Request, context: Context) -> Response:
        try:
            try:
                who = self._tokens.authenticate(context.invocation_metadata())
                return await handler(self, request, who, context)
            except StoreUnavailable as e:
                # The database is down or restarting: a retry may succeed. Its reason is
                # for the operator's log, not for callers.
                print(f"v1op: {e}", file=sys.stderr, flush=True)
                raise ServiceUnavailable("the operation store is unavailable; retry later") from e
        except GoogleAPICallError as e:
            status = rpc_status.to_status(status_of(e))
            await context.abort(status.code, status.details, status.trailing_metadata)
            raise AssertionError("unreachable: abort raises") from e

    return call


class _Service:
    def __init__(self, manager: OperationManager, tokens: TokenTable) -> None:
        self._manager = manager
        self._tokens = tokens


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
        page = await self._manager.list(who, request.page_size)
        return pb.ListOperationsResponse(operations=page.operations, total_size=page.total_size)

    @rpc
    async def ListUnseenOperations(
        self, request: pb.ListUnseenOperationsRequest, who: Principal, context: Context
    ) -> pb.ListUnseenOperationsResponse:
        full = request.view != pb.OPERATION_VIEW_BASIC
        page = await self._manager.list_unseen(who, request.page_size, full=full)
        return pb.ListUnseenOperationsResponse(
            operations=page.operations, total_size=page.total_size
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
            raise InvalidArgument(f"list the collection 'operations', not {request.name!r}")
        done = _parse_filter(request.filter)
        after = _decode_page_token(request.page_token, request.filter)
        page_size = request.page_size or _LRO_PAGE_SIZE
        page = await self._manager.list(who, page_size, after=after, done=done)
        response = operations_proto_pb2.ListOperationsResponse(
            operations=[to_longrunning(op) for op in page.operations]
        )
        if len(page.operations) == page_size:
            response.next_page_token = _encode_page_token(page.cursor, request.filter)
        return response

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
            timeout = request.timeout.ToTimedelta().total_seconds()
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
        raise InvalidArgument(f"unsupported filter {text!r}; use 'done=true' or 'done=false'")
    return match.group(1) == "true"


def _encode_page_token(cursor: int, filter_text: str) -> str:
    raw = json.dumps({"after": cursor, "filter": filter_text}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_page_token(token: str, filter_text: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        after, token_filter = int(data["after"]), data["filter"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError) as e:
        raise InvalidArgument("page_token is not one this server gave out") from e
    if token_filter != filter_text:
        raise InvalidArgument("page_token was given out for another filter")
    return after
