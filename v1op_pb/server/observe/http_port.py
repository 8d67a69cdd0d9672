"""The HTTP port's requests, observed by a middleware of its aiohttp app: the request id
of every request (the caller's ``X-Request-Id``, or a new one, sent back as that header),
and the access line, metrics and span of every request that no dispatcher observed (a path
no route takes, a wrong method, a body over the limit or malformed, /healthz, /readyz,
/openapi.json). What aiohttp refuses before the app sees it (a malformed request line or
header) is observed through ``refused_request``, which the port's connection guard calls.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import orjson
from aiohttp import web
from google.rpc import code_pb2, status_pb2

from ..._calls import (
    CONNECT,
    GRPC_WEB,
    REQUEST_ID,
    REST,
    CallInfo,
    Dispatcher,
    given_request_id,
    request_id_of,
)
from .calls import Exchange, ObservedDispatcher, Observer, current_exchange

__all__ = ["HTTP", "GatewayObservation", "http_middleware", "refused_request"]

# The protocol of the port's own paths, and of requests that no protocol's route took.
HTTP = "http"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RPC_PATH = re.compile(r"/[A-Za-z_][\w.]*\.[A-Za-z_]\w*/[A-Za-z_]\w*\Z")
_CONNECT_NAMES = {name.lower(): value for name, value in code_pb2.Code.items()}
_TRAILERS = 0x80
# Where an answer has no Status to read, the code of its HTTP status (the reverse of the
# mapping REST gateways make).
_CODE_OF_HTTP = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    409: code_pb2.ABORTED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.UNIMPLEMENTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    431: code_pb2.INVALID_ARGUMENT,
    499: code_pb2.CANCELLED,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}


def http_middleware(
    observer: Observer,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The outermost middleware of an HTTP port's app."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request_id_of(((REQUEST_ID, request.headers.get(REQUEST_ID, "")),))
        exchange = Exchange()
        token = current_exchange.set(exchange)
        given = given_request_id.set(request_id)
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            if not exchange.dispatched:
                call = observer.begin(_info(request, request_id), _route(request), started=started)
                observer.cancelled(call, None)
            raise
        finally:
            given_request_id.reset(given)
            current_exchange.reset(token)
        response.headers["X-Request-Id"] = request_id
        if not exchange.dispatched:
            # Observed once answered, when what it was is known.
            call = observer.begin(_info(request, request_id), _route(request), started=started)
            observer.end(call, _status_of(response))
        return response

    return observe


def _info(request: web.Request, request_id: str) -> CallInfo:
    metadata = tuple((key.lower(), value) for key, value in request.headers.items())
    return CallInfo(
        _protocol(request),
        f"{request.method} {request.path}",
        metadata,
        _peer(request),
        None,
        None,
        request_id,
    )


def _peer(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if not isinstance(peername, tuple) or len(peername) < 2:
        return "unknown"
    host, port = peername[0], peername[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def _protocol(request: web.Request) -> str:
    content_type = request.content_type
    if content_type.startswith("application/grpc-web"):
        return GRPC_WEB
    route = _route(request)
    if (
        _RPC_PATH.match(request.path)
        or content_type in ("application/proto", "application/connect+json")
        or "Connect-Protocol-Version" in request.headers
    ):
        return CONNECT
    if route.endswith("/{path}"):
        return REST
    return HTTP


def _route(request: web.Request) -> str:
    """The route that took the request, as aiohttp names it (``/healthz``, ``/v1/{path}``),
    or ``unmatched``: a label of few values, whatever paths callers send."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return "unmatched" if resource is None else str(resource.canonical)


def _status_of(response: web.StreamResponse) -> status_pb2.Status | None:
    """The Status an answer carries (None: OK): read from its body where the port wrote one
    (REST's Status JSON, Connect's error JSON, gRPC-Web's trailers), else the code of its
    HTTP status."""
    body = getattr(response, "body", None)
    content_type = response.content_type
    if isinstance(body, bytes):
        try:
            if content_type.startswith("application/grpc-web"):
                return _grpc_web_status(body, "text" in content_type)
            if response.status >= 400 and content_type == "application/json":
                return _json_status(body)
        except (ValueError, TypeError, KeyError):
            pass
    if response.status < 400:
        return None
    code = _CODE_OF_HTTP.get(response.status)
    if code is None:
        code = code_pb2.INTERNAL if response.status >= 500 else code_pb2.UNKNOWN
    return status_pb2.Status(code=code, message=f"HTTP {response.status}")


def _json_status(body: bytes) -> status_pb2.Status:
    error = orjson.loads(body)
    code = error["code"]
    if isinstance(code, str):  # Connect's error JSON names its code
        code = _CONNECT_NAMES[code]
    return status_pb2.Status(code=int(code), message=str(error.get("message", "")))


def _grpc_web_status(body: bytes, text: bool) -> status_pb2.Status | None:
    data = base64.b64decode(body) if text else body
    at = 0
    while at + 5 <= len(data):
        flags, length = data[at], int.from_bytes(data[at + 1 : at + 5], "big")
        frame = data[at + 5 : at + 5 + length]
        at += 5 + length
        if flags & _TRAILERS:
            trailers = dict(
                line.split(":", 1) for line in frame.decode("ascii").split("\r\n") if ":" in line
            )
            code = int(trailers["grpc-status"])
            if code == code_pb2.OK:
                return None
            return status_pb2.Status(code=code, message=unquote(trailers.get("grpc-message", "")))
    raise ValueError("no trailers")


def refused_request(observer: Observer, http_status: int, peer: str) -> str:
    """A request aiohttp refused before the app saw it (a malformed request line or header,
    one over the size limits): observed; the request id its answer carries."""
    request_id = request_id_of(())
    info = CallInfo(HTTP, "-", (), peer, None, None, request_id)
    call = observer.begin(info, "malformed")
    code = _CODE_OF_HTTP.get(http_status, code_pb2.INVALID_ARGUMENT)
    observer.end(
        call, status_pb2.Status(code=code, message=f"malformed HTTP request ({http_status})")
    )
    return request_id


class GatewayObservation:
    """``v1op gateway``'s requests and calls observed: what ``run_gateway`` takes as its
    ``observation``."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        return http_middleware(self.observer)

    def dispatcher(self, inner: Dispatcher) -> Dispatcher:
        return ObservedDispatcher(inner, self.observer)

    def refused(self, http_status: int, peer: str) -> str:
        return refused_request(self.observer, http_status, peer)
