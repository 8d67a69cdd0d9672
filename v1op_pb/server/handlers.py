"""What each method of the services does, whatever protocol asked: OperationService,
OperationProgressService and google.longrunning.Operations, each a translation of a request
message onto OperationManager. A handler takes the request, the authenticated principal and
the call's facts, and returns the response or raises a google-api-core exception; the
dispatcher (``dispatch``) makes that exception the caller's Status."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.api_core.exceptions import InvalidArgument
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from v1op.v1 import operation_service_pb2 as pb

from .._calls import CallInfo
from .._errors import excerpt
from .._operation import Operation
from .auth import Principal
from .manager import Listing, OperationManager
from .store import STATES

__all__ = ["SERVICES", "Handler", "handlers_for", "to_longrunning"]

Handler = Callable[[Any, Principal, CallInfo], Awaitable[Message]]

# The services every protocol serves.
SERVICES = (
    pb.DESCRIPTOR.services_by_name["OperationService"],
    pb.DESCRIPTOR.services_by_name["OperationProgressService"],
    lro.DESCRIPTOR.services_by_name["Operations"],
)
_LRO_FILTER = re.compile(r"\s*done\s*=\s*(true|false)\s*\Z")
# ListOperations' filter: `state = <state>` terms joined by OR (AIP-160's keyword, in
# capitals); a state bare or quoted, in any case.
_OR = re.compile(r"\s+OR\s+")
_STATE_TERM = re.compile(r'state\s*=\s*("?)([A-Za-z_]+)\1\Z')
_DELETED = "deleted"
_FILTER_STATES = (*STATES, _DELETED)
_STATE_LIST = ", ".join(_FILTER_STATES)
# google.protobuf.Duration's range (about 10,000 years).
_MAX_DURATION_SECONDS = 315_576_000_000


def handlers_for(manager: OperationManager) -> dict[str, Handler]:
    """Every method of SERVICES, by full method name."""
    operations = _OperationHandlers(manager)
    longrunning = _LongRunningHandlers(manager)
    table: dict[str, Handler] = {
        "/v1op.v1.OperationService/GetOperation": operations.get,
        "/v1op.v1.OperationService/BatchGetOperations": operations.batch_get,
        "/v1op.v1.OperationService/ListOperations": operations.list,
        "/v1op.v1.OperationService/ListUnseenOperations": operations.list_unseen,
        "/v1op.v1.OperationService/UpdateOperation": operations.update,
        "/v1op.v1.OperationService/FinalizeOperation": operations.finalize,
        "/v1op.v1.OperationService/AbortOperation": operations.abort,
        "/v1op.v1.OperationService/MarkOperationSeenByCreator": operations.mark_seen,
        "/v1op.v1.OperationService/BatchMarkOperationSeenByCreator": operations.batch_mark_seen,
        "/v1op.v1.OperationService/CreateOperation": operations.create,
        "/v1op.v1.OperationProgressService/GetOperationProgressByParent": operations.progress,
        "/google.longrunning.Operations/GetOperation": longrunning.get,
        "/google.longrunning.Operations/ListOperations": longrunning.list,
        "/google.longrunning.Operations/CancelOperation": longrunning.cancel,
        "/google.longrunning.Operations/DeleteOperation": longrunning.delete,
        "/google.longrunning.Operations/WaitOperation": longrunning.wait,
    }
    served = {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    if served != set(table):
        # A method of the protos without a handler, or a handler of no method: a bug here.
        raise RuntimeError(f"handlers and methods differ: {sorted(served ^ set(table))}")
    return table


class _OperationHandlers:
    def __init__(self, manager: OperationManager) -> None:
        self._manager = manager

    async def get(
        self, request: pb.GetOperationRequest, who: Principal, call: CallInfo
    ) -> pb.GetOperationResponse:
        return pb.GetOperationResponse(operation=await self._manager.get(who, request.name))

    async def batch_get(
        self, request: pb.BatchGetOperationsRequest, who: Principal, call: CallInfo
    ) -> pb.BatchGetOperationsResponse:
        operations = await self._manager.batch_get(who, list(request.names))
        return pb.BatchGetOperationsResponse(operations=operations)

    async def list(
        self, request: pb.ListOperationsRequest, who: Principal, call: CallInfo
    ) -> pb.ListOperationsResponse:
        selection = _list_selection(request)
        after = _decode_page_token(request.page_token, selection.scope)
        page = await self._manager.list(
            who,
            request.page_size,
            after=after,
            states=selection.states,
            deleted=selection.deleted,
            newest_first=selection.newest_first,
        )
        return pb.ListOperationsResponse(
            operations=page.operations,
            total_size=page.total_size,
            next_page_token=_next_page_token(page, selection.scope),
        )

    async def list_unseen(
        self, request: pb.ListUnseenOperationsRequest, who: Principal, call: CallInfo
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

    async def update(
        self, request: pb.UpdateOperationRequest, who: Principal, call: CallInfo
    ) -> pb.UpdateOperationResponse:
        operation = await self._manager.update(who, request.operation)
        return pb.UpdateOperationResponse(operation=operation)

    async def finalize(
        self, request: pb.FinalizeOperationRequest, who: Principal, call: CallInfo
    ) -> pb.FinalizeOperationResponse:
        operation = await self._manager.finalize(who, request.operation)
        return pb.FinalizeOperationResponse(operation=operation)

    async def abort(
        self, request: pb.AbortOperationRequest, who: Principal, call: CallInfo
    ) -> pb.AbortOperationResponse:
        return pb.AbortOperationResponse(operation=await self._manager.abort(who, request.name))

    async def mark_seen(
        self, request: pb.MarkOperationSeenByCreatorRequest, who: Principal, call: CallInfo
    ) -> pb.MarkOperationSeenByCreatorResponse:
        operation = await self._manager.mark_seen(who, request.name)
        return pb.MarkOperationSeenByCreatorResponse(operation=operation)

    async def batch_mark_seen(
        self, request: pb.BatchMarkOperationSeenByCreatorRequest, who: Principal, call: CallInfo
    ) -> pb.BatchMarkOperationSeenByCreatorResponse:
        operations = await self._manager.batch_mark_seen(who, list(request.names))
        return pb.BatchMarkOperationSeenByCreatorResponse(operations=operations)

    async def create(
        self, request: pb.CreateOperationRequest, who: Principal, call: CallInfo
    ) -> pb.CreateOperationResponse:
        operation = await self._manager.create(who, request.operation, request.on_behalf_of)
        return pb.CreateOperationResponse(operation=operation)

    async def progress(
        self, request: pb.GetOperationProgressByParentRequest, who: Principal, call: CallInfo
    ) -> pb.GetOperationProgressByParentResponse:
        name, progress, message = await self._manager.progress(who, request.parent)
        return pb.GetOperationProgressByParentResponse(
            operation_progress=pb.OperationProgress(
                name=name, parent=request.parent, progress=progress, message=message
            )
        )


class _LongRunningHandlers:
    """google.longrunning.Operations over the same store, for google-api-core's
    OperationsClient and its operation futures."""

    def __init__(self, manager: OperationManager) -> None:
        self._manager = manager

    async def get(
        self, request: lro.GetOperationRequest, who: Principal, call: CallInfo
    ) -> lro.Operation:
        return to_longrunning(await self._manager.get(who, request.name))

    async def list(
        self, request: lro.ListOperationsRequest, who: Principal, call: CallInfo
    ) -> lro.ListOperationsResponse:
        if request.name not in ("", "operations"):
            raise InvalidArgument(f"list the collection 'operations', not {excerpt(request.name)}")
        done = _parse_filter(request.filter)
        scope = f"longrunning:{request.filter}"
        after = _decode_page_token(request.page_token, scope)
        page = await self._manager.list(who, request.page_size, after=after, done=done)
        return lro.ListOperationsResponse(
            operations=[to_longrunning(op) for op in page.operations],
            next_page_token=_next_page_token(page, scope),
        )

    async def cancel(
        self, request: lro.CancelOperationRequest, who: Principal, call: CallInfo
    ) -> empty_pb2.Empty:
        await self._manager.abort(who, request.name)
        return empty_pb2.Empty()

    async def delete(
        self, request: lro.DeleteOperationRequest, who: Principal, call: CallInfo
    ) -> empty_pb2.Empty:
        await self._manager.delete(who, request.name)
        return empty_pb2.Empty()

    async def wait(
        self, request: lro.WaitOperationRequest, who: Principal, call: CallInfo
    ) -> lro.Operation:
        timeout = None
        if request.HasField("timeout"):
            timeout = _seconds_of(request.timeout, "timeout")
        if call.deadline is not None:
            # Answer before the caller's deadline, with the state as it is then.
            remaining = max(0.0, call.deadline - time.monotonic())
            timeout = remaining * 0.9 if timeout is None else min(timeout, remaining * 0.9)
        return to_longrunning(await self._manager.wait(who, request.name, timeout))


def to_longrunning(operation: Operation) -> lro.Operation:
    """The google.longrunning.Operation view of an Operation (name, metadata, done,
    error or response)."""
    result = lro.Operation(name=operation.name, done=operation.done)
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


@dataclass(frozen=True)
class _ListSelection:
    """What a ListOperationsRequest's filter, order_by and show_deleted ask for."""

    states: frozenset[str] | None
    deleted: bool | None
    newest_first: bool

    @property
    def scope(self) -> str:
        """What a page token of this listing is good for. The plain listing keeps the scope
        its tokens had before the filter existed."""
        if self.states is None and self.deleted is False and not self.newest_first:
            return "list"
        states = ",".join(sorted(self.states)) if self.states is not None else "*"
        order = "desc" if self.newest_first else "asc"
        return f"list:states={states}:deleted={self.deleted}:order={order}"


def _list_selection(request: pb.ListOperationsRequest) -> _ListSelection:
    names = _parse_state_filter(request.filter)
    newest_first = _parse_order_by(request.order_by)
    deleted: bool | None = None if request.show_deleted else False
    states: frozenset[str] | None = names or None
    if names is not None and _DELETED in names:
        if len(names) > 1:
            raise _invalid(
                "filter", "state = deleted stands alone: it cannot be joined with other states"
            )
        if not request.show_deleted:
            raise _invalid("filter", "state = deleted lists deleted operations: set show_deleted")
        deleted, states = True, None
    return _ListSelection(states, deleted, newest_first)


def _parse_state_filter(text: str) -> frozenset[str] | None:
    """The states of ``state = <state> OR ...``; None for an empty filter."""
    if not text.strip():
        return None
    names = set()
    for term in _OR.split(text.strip()):
        match = _STATE_TERM.match(term)
        if match is None:
            raise _invalid(
                "filter",
                f"unsupported filter {excerpt(text)}; use state = <state>, terms joined by OR, "
                f"with a state of {_STATE_LIST}",
            )
        name = match.group(2).lower()
        if name not in _FILTER_STATES:
            raise _invalid(
                "filter", f"unknown state {excerpt(match.group(2))}; the states: {_STATE_LIST}"
            )
        names.add(name)
    return frozenset(names)


def _parse_order_by(text: str) -> bool:
    """Whether ``order_by`` asks for newest first."""
    words = text.split()
    if words in ([], ["create_time"]):
        return False
    if words == ["create_time", "desc"]:
        return True
    raise _invalid(
        "order_by",
        f"unsupported order {excerpt(text)}; use 'create_time' (oldest first, the default) "
        "or 'create_time desc' (newest first)",
    )


def _invalid(field: str, description: str) -> InvalidArgument:
    violation = error_details_pb2.BadRequest(
        field_violations=[{"field": field, "description": description}]
    )
    return InvalidArgument(f"{field}: {description}", details=[violation])


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
