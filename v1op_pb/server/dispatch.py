"""The one way into the services, for every protocol.

``ServiceDispatcher.call(info, request)`` authenticates the caller, runs the method's handler
(``handlers``) and turns any failure into the one google.rpc.Status the caller gets: a
google-api-core exception keeps its code, message and typed details; an unreachable store is
UNAVAILABLE; anything else is a bug, answered INTERNAL without a word of its internals and
logged here with its traceback. The gRPC servicers (``services``) and the HTTP port's REST,
Connect and gRPC-Web handlers (``v1op_pb.gateway``) all call it, so identity, the rules,
limits and error wording are the same on each. Every call it takes is observed here too
(``observe``: the access log, metrics, spans), with the principal it found and the reason
a credential was refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from google.api_core.exceptions import GoogleAPICallError, ServiceUnavailable
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from .._calls import (
    GRPC,
    MAX_AUTHORIZATION_CHARS,
    CallError,
    CallInfo,
    MethodSpec,
    check_authorization,
    method_specs,
)
from .._errors import excerpt
from .._status import make_status
from .auth import Authenticator, CredentialRefused, TokenTable
from .errors import status_of
from .handlers import SERVICES, Handler, handlers_for
from .manager import OperationManager
from .observe import ObservedCall, Observer
from .store import StoreUnavailable

__all__ = ["ServiceDispatcher", "bounded"]

# A Status rides in gRPC trailers, which clients take up to 8 KiB of by default (with the
# message percent-encoded and the details base64-encoded).
_MAX_STATUS_MESSAGE_CHARS = 1024
_MAX_STATUS_BYTES = 4096
_log = logging.getLogger("v1op.server")


class _Expired(Exception):
    """The call's deadline passed before it was answered."""


class ServiceDispatcher:
    """The services of one OperationManager, called in-process (a ``Dispatcher``)."""

    def __init__(
        self,
        manager: OperationManager,
        identity: Authenticator | TokenTable,
        *,
        ready: Callable[[], Awaitable[object]] | None = None,
        observer: Observer | None = None,
    ) -> None:
        """``ready`` is awaited by ``ready()``: it raises when the store cannot be reached.
        ``observer`` sees every call (by default: the access log on the ``v1op.access``
        logger, no metrics, spans when OpenTelemetry is set up)."""
        self._identity = (
            Authenticator(tokens=identity) if isinstance(identity, TokenTable) else identity
        )
        self._handlers = handlers_for(manager)
        self._methods = method_specs(SERVICES)
        self._ready = ready
        self.observer = observer if observer is not None else Observer()

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return self._methods

    async def call(self, info: CallInfo, request: Message) -> Message:
        observer = self.observer
        call = observer.begin(info)
        try:
            response = await self._call(info, request, call)
        except CallError as e:
            observer.end(call, e.status, request)
            raise
        except asyncio.CancelledError:
            observer.cancelled(call, info.deadline)
            raise
        observer.end(call, None, request, response)
        return response

    async def _call(self, info: CallInfo, request: Message, call: ObservedCall) -> Message:
        handler = self._handlers.get(info.method)
        if handler is None:
            raise CallError.of(code_pb2.UNIMPLEMENTED, f"no method {excerpt(info.method)}")
        try:
            try:
                if info.deadline is not None and info.protocol != GRPC:
                    # gRPC enforces its deadlines itself; the HTTP protocols' are kept here.
                    return await self._run_until(info.deadline, handler, info, request, call)
                return await self._run(handler, info, request, call)
            except StoreUnavailable as e:
                # The database is down or restarting: a retry may succeed. Its reason is
                # for the operator's log, not for callers.
                _log.error("%s", e)
                raise ServiceUnavailable("the operation store is unavailable; retry later") from e
        except CredentialRefused as e:
            call.refusal = e.refusal
            status = bounded(status_of(e))
        except GoogleAPICallError as e:
            status = bounded(status_of(e))
        except CallError:
            raise
        except _Expired:
            status = make_status(code_pb2.DEADLINE_EXCEEDED, "Deadline Exceeded")
        except Exception:
            _log.exception("%s failed", info.method)
            status = make_status(code_pb2.INTERNAL, "internal server error")
        raise CallError(status)

    async def _run_until(
        self,
        deadline: float,
        handler: Handler,
        info: CallInfo,
        request: Message,
        call: ObservedCall,
    ) -> Message:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Expired
        try:
            return await asyncio.wait_for(self._run(handler, info, request, call), remaining)
        except asyncio.TimeoutError:
            if time.monotonic() < deadline:
                raise  # not the deadline: the handler's own, a bug
            raise _Expired from None

    async def _run(
        self, handler: Handler, info: CallInfo, request: Message, call: ObservedCall
    ) -> Message:
        try:
            check_authorization(info.metadata)
        except CallError:
            call.refusal = (
                "the authorization metadata is not printable ASCII of at most "
                f"{MAX_AUTHORIZATION_CHARS} characters"
            )
            raise
        who = await self._identity.authenticate(info.metadata, info.peer_certificate)
        call.principal = who.name
        return await handler(request, who, info)

    async def learn_type(self, full_name: str) -> bool:
        # The HTTP port reads with the server's own registry: what it lacks, nobody knows.
        return False

    async def ready(self) -> bool:
        if self._ready is None:
            return True
        try:
            await self._ready()
        except StoreUnavailable as e:
            _log.error("not ready: %s", e)
            return False
        return True


def bounded(status: status_pb2.Status) -> status_pb2.Status:
    """The status, small enough for gRPC's trailers: a status that quotes a huge input would
    otherwise turn into RESOURCE_EXHAUSTED on the client. Messages quote excerpts, so this
    cuts only what slipped past them."""
    if len(status.message) <= _MAX_STATUS_MESSAGE_CHARS and status.ByteSize() <= _MAX_STATUS_BYTES:
        return status
    message = status.message
    if len(message) > _MAX_STATUS_MESSAGE_CHARS:
        message = message[:_MAX_STATUS_MESSAGE_CHARS] + f"... ({len(message)} characters)"
    cut = status_pb2.Status(code=status.code, message=message)
    for detail in status.details:
        if cut.ByteSize() + detail.ByteSize() + 8 > _MAX_STATUS_BYTES:
            break  # keep the details that fit, in order
        cut.details.append(detail)
    return cut
