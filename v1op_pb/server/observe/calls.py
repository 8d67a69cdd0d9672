"""What every call becomes, whichever protocol and door it came through: a line in the
access log, counts and a latency in the metrics, and a span. The words, fields and labels
are decided here, once.

``Observer.begin(info)`` when a call starts and ``Observer.end(call, ...)`` when it is
answered: the dispatcher calls them for every call it takes (gRPC, REST, Connect,
gRPC-Web, and the standalone gateway's ``ObservedDispatcher``); the gRPC interceptor and
the HTTP port's middleware for what never reaches it (a request that does not decode, an
unknown method or path, health checks, reflection).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from ..._calls import GRPC, REST, CallError, CallInfo, Dispatcher, MethodSpec
from .logs import ACCESS_LOGGER, iso_time

if TYPE_CHECKING:
    from .metrics import Metrics
    from .tracing import SpanMaker

__all__ = [
    "UNKNOWN_ROUTE",
    "WAIT_METHODS",
    "ObservedCall",
    "ObservedDispatcher",
    "Observer",
    "code_name",
    "mark_dispatched",
]

# Longer than this, a name from a request is cut in the log (it may be anything a caller
# sent, and is refused as a name further on).
MAX_LOGGED_CHARS = 256
# The metrics' route of a gRPC method the server does not have: callers choose those
# names, and each would be series of its own without end.
UNKNOWN_ROUTE = "/unknown/unknown"
# The calls that wait for an operation to finish: v1op_waits_in_progress.
WAIT_METHODS = frozenset({"/google.longrunning.Operations/WaitOperation"})
_CODE_NAMES = {value: name for name, value in code_pb2.Code.items()}


def code_name(code: int) -> str:
    return _CODE_NAMES.get(code, str(code))


class Exchange:
    """An HTTP request in progress, as the port's middleware sees it: whether a dispatcher
    observed it (then the middleware does not)."""

    __slots__ = ("dispatched",)

    def __init__(self) -> None:
        self.dispatched = False


# The HTTP request the current task serves, set by the HTTP port's middleware.
current_exchange: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "v1op_http_exchange", default=None
)


def mark_dispatched() -> None:
    exchange = current_exchange.get()
    if exchange is not None:
        exchange.dispatched = True


class ObservedCall:
    """One call in progress, filled in as it goes: who it turned out to be, why a
    credential was refused."""

    __slots__ = (
        "_labels",
        "method",
        "operation",
        "peer",
        "principal",
        "protocol",
        "refusal",
        "request_id",
        "route",
        "span",
        "started",
    )

    def __init__(self, protocol: str, method: str, route: str, peer: str, request_id: str) -> None:
        self.protocol = protocol
        self.method = method
        self.route = route
        self.peer = peer
        self.request_id = request_id
        self.principal = ""
        self.refusal = ""
        self.operation = ""
        self.span: Any = None
        self._labels: _Labels | None = None
        self.started = time.perf_counter()


class Observer:
    """The access log (the ``v1op.access`` logger, one INFO record a call), the metrics
    (``metrics``: None for none) and the spans (``tracing``: None for none) of a server or a
    gateway."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        tracing: SpanMaker | None = None,
        access_log: bool = True,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self._access = logging.getLogger(ACCESS_LOGGER) if access_log else None
        self._labels: dict[tuple[str, str, str], _Labels] = {}
        self._operation_of: dict[str, Callable[[Message | None, Message | None], str]] = {}
        self._routes: dict[str, str] = {}
        self._prototype: dict[str, Any] | None = None

    # --- the calls every door makes --------------------------------------------------------

    def begin(
        self,
        info: CallInfo,
        route: str | None = None,
        grpc_type: str = "unary",
        started: float | None = None,
    ) -> ObservedCall:
        """A call starts (or started, at ``started``: a time.perf_counter() reading, for
        what is observed once answered): ``route`` (the HTTP port's label) defaults to the
        method's, or for REST to its route's template; ``grpc_type`` is
        go-grpc-prometheus's (unary, client_stream, server_stream, bidi_stream)."""
        if route is None:
            route = self._rest_route(info.method) if info.protocol == REST else info.method
        call = ObservedCall(info.protocol, info.method, route, info.peer, info.request_id)
        if started is not None:
            call.started = started
        if self.metrics is not None:
            labels = self._labels_of(info.protocol, route, grpc_type)
            call._labels = labels
            labels.started.inc()
            if labels.waits is not None:
                labels.waits.inc()
        if self.tracing is not None:
            began = time.time_ns() - int((time.perf_counter() - call.started) * 1e9)
            call.span = self.tracing.start(info.protocol, _cut(info.method), info.metadata, began)
        mark_dispatched()
        return call

    def end(
        self,
        call: ObservedCall,
        status: status_pb2.Status | None,
        request: Message | None = None,
        response: Message | None = None,
    ) -> None:
        """The call was answered: OK with ``response`` when ``status`` is None."""
        elapsed = time.perf_counter() - call.started
        code = code_pb2.OK if status is None else status.code
        if not call.operation and (request is not None or response is not None):
            call.operation = self._operation(call.method, request, response)
        labels = call._labels
        if labels is not None:
            labels.handled(code).inc()
            labels.handling.observe(elapsed)
            if labels.received is not None:
                if request is not None:
                    labels.received.inc()
                if status is None:
                    labels.sent.inc()
            if labels.waits is not None:
                labels.waits.dec()
        name = code_name(code)
        message = "" if status is None else status.message
        if call.span is not None:
            assert self.tracing is not None
            self.tracing.end(
                call.span, code, name, message, call.principal, call.operation, call.request_id
            )
        access = self._access
        if access is not None and access.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {
                "time": iso_time(time.time() - elapsed),
                "protocol": call.protocol,
                "method": _cut(call.method),
                "code": name,
                "duration_ms": round(elapsed * 1000, 3),
                "principal": call.principal or None,
                "peer": call.peer,
                "operation": call.operation or None,
                "request_id": call.request_id,
            }
            if status is not None:
                fields["error"] = _cut(message)
            if call.refusal:
                fields["refusal"] = call.refusal
            access.handle(self._record(fields))

    def _record(self, fields: dict[str, Any]) -> logging.LogRecord:
        """An access record, made from a prototype's attributes: LogRecord's own __init__
        works out a source file, thread and process names, which an access line has no use
        for, at several times the cost of the rest of the line."""
        if self._prototype is None:
            self._prototype = logging.LogRecord(
                ACCESS_LOGGER, logging.INFO, "", 0, "access", (), None
            ).__dict__
        record = logging.LogRecord.__new__(logging.LogRecord)
        attributes = record.__dict__
        attributes.update(self._prototype)
        now = time.time()
        attributes["created"] = now
        attributes["msecs"] = (now - int(now)) * 1000
        attributes["fields"] = fields
        return record

    def cancelled(self, call: ObservedCall, deadline: float | None) -> None:
        """The call's task was cancelled: its caller went away, or its deadline passed."""
        if deadline is not None and time.monotonic() >= deadline:
            status = status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message="Deadline Exceeded")
        else:
            status = status_pb2.Status(code=code_pb2.CANCELLED, message="the caller cancelled")
        self.end(call, status)

    # --- labels and names ------------------------------------------------------------------

    def _labels_of(self, protocol: str, route: str, grpc_type: str) -> _Labels:
        key = (protocol, route, grpc_type)
        labels = self._labels.get(key)
        if labels is None:
            assert self.metrics is not None
            labels = self._labels[key] = _Labels(self.metrics, protocol, route, grpc_type)
        return labels

    def _rest_route(self, method: str) -> str:
        """A REST call's label: its route's template (``GET /v1/{name=operations/*}``),
        read from the method's ``google.api.http`` option."""
        route = self._routes.get(method)
        if route is None:
            route = self._routes[method] = _rest_template(method)
        return route

    def _operation(self, method: str, request: Message | None, response: Message | None) -> str:
        read = self._operation_of.get(method)
        if read is None:
            read = self._operation_of[method] = _operation_reader(request, response)
        return _cut(read(request, response))


class _Labels:
    """The metric children of one method (gRPC) or route (HTTP), made once: a child's
    increment is cheap, finding one by its labels is not."""

    __slots__ = (
        "_handled",
        "_metric",
        "_values",
        "handling",
        "received",
        "sent",
        "started",
        "waits",
    )

    def __init__(self, metrics: Metrics, protocol: str, route: str, grpc_type: str) -> None:
        self.waits = metrics.waits if route in WAIT_METHODS else None
        self.received: Any = None
        self.sent: Any = None
        if protocol == GRPC:
            service, _, name = route.lstrip("/").partition("/")
            values: tuple[str, ...] = (grpc_type, service, name)
            self._metric = metrics.grpc_handled
            self.started = metrics.grpc_started.labels(*values)
            self.handling = metrics.grpc_handling.labels(*values)
            if grpc_type == "unary":  # one message each way; streams' are not counted
                self.received = metrics.grpc_received.labels(*values)
                self.sent = metrics.grpc_sent.labels(*values)
        else:
            values = (protocol, route)
            self._metric = metrics.http_handled
            self.started = metrics.http_started.labels(*values)
            self.handling = metrics.http_handling.labels(*values)
        self._values = values
        self._handled: dict[int, Any] = {}

    def handled(self, code: int) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._metric.labels(*self._values, code_name(code))
        return child


def _rest_template(method: str) -> str:
    from google.api import annotations_pb2, http_pb2
    from google.protobuf import descriptor_pb2, descriptor_pool

    try:
        descriptor = descriptor_pool.Default().FindMethodByName(
            method.lstrip("/").replace("/", ".")
        )
    except KeyError:
        return method
    # As options of their own class: the pool's may be of a class the extension is not of.
    options = descriptor_pb2.MethodOptions.FromString(descriptor.GetOptions().SerializeToString())
    # googleapis-common-protos' stubs type the extension as a plain FieldDescriptor.
    if not options.HasExtension(annotations_pb2.http):  # type: ignore[arg-type]
        return method
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]  # type: ignore[index]
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        return method
    if pattern == "custom":
        return f"{rule.custom.kind} {rule.custom.path}"
    return f"{pattern.upper()} {getattr(rule, pattern)}"


def _operation_reader(
    request: Message | None, response: Message | None
) -> Callable[[Message | None, Message | None], str]:
    """How to find the one operation a method is about, from its request's ``name``,
    ``operation.name`` or ``parent``, else its response's ``operation.name`` or ``name``
    (CreateOperation's, the google.longrunning Operation's); lists and batches name
    none."""
    readers: list[Callable[[Message | None, Message | None], str]] = []
    for side, message in ((0, request), (1, response)):
        if message is None:
            continue
        fields = message.DESCRIPTOR.fields_by_name
        for field in ("name", "parent"):
            if field in fields and fields[field].type == fields[field].TYPE_STRING:
                readers.append(_read_field(side, field))
                break
        else:
            operation = fields.get("operation")
            if (
                operation is not None
                and operation.message_type is not None
                and ("name" in operation.message_type.fields_by_name)
            ):
                readers.append(_read_operation_name(side))

    def read(request: Message | None, response: Message | None) -> str:
        for reader in readers:
            found = reader(request, response)
            if found:
                return found
        return ""

    return read


def _read_field(side: int, field: str) -> Callable[[Message | None, Message | None], str]:
    def read(request: Message | None, response: Message | None) -> str:
        message = request if side == 0 else response
        return "" if message is None else str(getattr(message, field))

    return read


def _read_operation_name(side: int) -> Callable[[Message | None, Message | None], str]:
    def read(request: Message | None, response: Message | None) -> str:
        message = request if side == 0 else response
        return "" if message is None else str(message.operation.name)  # type: ignore[attr-defined]

    return read


def _cut(text: str) -> str:
    if len(text) <= MAX_LOGGED_CHARS:
        return text
    return f"{text[:MAX_LOGGED_CHARS]}... ({len(text)} characters)"


class ObservedDispatcher:
    """Another dispatcher (``v1op gateway``'s, over gRPC) whose calls are observed."""

    def __init__(self, inner: Dispatcher, observer: Observer) -> None:
        self._inner = inner
        self._observer = observer

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return self._inner.methods

    async def call(self, info: CallInfo, request: Message) -> Message:
        observer = self._observer
        call = observer.begin(info)
        try:
            response = await self._inner.call(info, request)
        except CallError as e:
            observer.end(call, e.status, request)
            raise
        except asyncio.CancelledError:
            observer.cancelled(call, info.deadline)
            raise
        except BaseException:
            observer.end(call, status_pb2.Status(code=code_pb2.INTERNAL), request)
            raise
        observer.end(call, None, request, response)
        return response

    async def learn_type(self, full_name: str) -> bool:
        return await self._inner.learn_type(full_name)

    async def ready(self) -> bool:
        return await self._inner.ready()
