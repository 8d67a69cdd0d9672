"""The HTTP port: REST, Connect, gRPC-Web, the OpenAPI document and health, on aiohttp.

Every call goes to one ``Dispatcher``: in ``v1op serve --http-addr`` the server's own
services in the same process (``v1op_pb.server.dispatch``), in ``v1op gateway`` a gRPC
channel to a remote server (``remote``). The REST, Connect and gRPC-Web handlers are written
once against it, so each protocol gets the same identity, rules, limits and error wording.

Routes are aiohttp's: ``/<Service>/<Method>`` for Connect and gRPC-Web, a catch-all under
each REST prefix (``/v1/...``, which the REST handler matches against the google.api.http
templates itself), ``/openapi.json``, ``/healthz``, ``/readyz`` and the web page under
``/ui/`` (``webpage``); more can be added to ``app.router``. What no route takes, and any
failure, is answered in the shape of the caller's protocol, never with aiohttp's text or HTML
pages.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from aiohttp import web
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import code_pb2, status_pb2
from v1op.v1 import operation_service_pb2

from .._calls import CallError, Dispatcher, MethodSpec
from .._errors import excerpt
from .._registry import TypeRegistry
from .._status import make_status
from .common import http_status_of
from .connect import ConnectHandler, connect_error_response
from .cors import cors_middleware
from .grpcweb import GrpcWebHandler, grpc_web_error_response, is_grpc_web
from .guard import OnRefusal, guarded
from .http_rules import routes_of
from .openapi import openapi_document
from .remote import ChannelDispatcher, open_channel
from .rest import RestHandler, no_route, status_response
from .webpage import add_web_page

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DOCUMENTED_SERVICES",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "RPC_SERVICES",
    "HttpPort",
    "Observation",
    "create_http_app",
    "http_status_of",
    "open_http_port",
    "run_gateway",
]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# aiohttp's defaults (8 KiB) stop a batchGet at about 146 names; these let a request line
# carry the documented 1000 names of any length the server takes, and headers a long token.
MAX_REQUEST_LINE_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
_LIMITS = f"a request line takes up to {MAX_REQUEST_LINE_BYTES} bytes, a header {MAX_HEADER_BYTES}"

# The services of the documented REST API. google.longrunning.Operations has HTTP rules of
# its own, which would overlap the documented paths: it is served over Connect, gRPC-Web
# and gRPC, not REST.
DOCUMENTED_SERVICES = (
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationService"],
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationProgressService"],
)
# Every service the gRPC port serves, for Connect and gRPC-Web.
RPC_SERVICES = (*DOCUMENTED_SERVICES, lro.DESCRIPTOR.services_by_name["Operations"])
_log = logging.getLogger("v1op.gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class Observation(Protocol):
    """What the server's observation (``v1op_pb.server.observe``) hooks into a standalone
    gateway: a middleware around every request, the dispatcher's calls, and the requests
    aiohttp refuses before the app sees them."""

    def middleware(self) -> Middleware: ...

    def dispatcher(self, inner: Dispatcher) -> Dispatcher: ...

    def refused(self, http_status: int, peer: str) -> str | None: ...


def create_http_app(
    dispatcher: Dispatcher,
    *,
    registry: TypeRegistry | None = None,
    rest_services: Iterable[ServiceDescriptor] = DOCUMENTED_SERVICES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cors_origins: Iterable[str] = (),
    middlewares: Iterable[Middleware] = (),
) -> web.Application:
    """The HTTP port's application: REST for ``rest_services``, Connect and gRPC-Web for
    every method of ``dispatcher``, reading payload types with ``registry``;
    ``middlewares`` go around everything else (the server's observation)."""
    registry = registry if registry is not None else TypeRegistry()
    rest_services = tuple(rest_services)
    rest = RestHandler(dispatcher, routes_of(*rest_services), registry, max_body_bytes)
    connect = ConnectHandler(dispatcher, registry, max_body_bytes)
    grpc_web = GrpcWebHandler(dispatcher, max_body_bytes)
    origins = tuple(cors_origins)
    chain: list[Any] = [_answer_in_shape]
    if origins:
        chain.insert(0, cors_middleware(origins))
    chain[:0] = middlewares
    # aiohttp's own body limit would answer 413 in text; the handlers read within theirs.
    app = web.Application(client_max_size=max_body_bytes + 1, middlewares=chain)
    for name, spec in dispatcher.methods.items():
        app.router.add_route("*", name, _rpc_handler(spec, connect, grpc_web))
    for prefix in sorted(rest.prefixes):
        app.router.add_route("*", f"/{prefix}/{{path:.*}}", rest.handle)
    document = openapi_document(rest_services)
    app.router.add_get("/openapi.json", _openapi_handler(document))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz_handler(dispatcher))
    add_web_page(app)
    return app


def _rpc_handler(spec: MethodSpec, connect: ConnectHandler, grpc_web: GrpcWebHandler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if is_grpc_web(request.content_type):
            return await grpc_web.handle(request, spec)
        return await connect.handle(request, spec)

    return handle


def _openapi_handler(document: bytes) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=document, content_type="application/json")

    return handle


async def _healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "SERVING"})


def _readyz_handler(dispatcher: Dispatcher) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if await dispatcher.ready():
            return web.json_response({"status": "SERVING"})
        status = make_status(
            code_pb2.UNAVAILABLE,
            "not ready: the operation store (v1op gateway: its gRPC server) cannot be reached",
        )
        return status_response(503, status)

    return handle


@web.middleware
async def _answer_in_shape(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What no route takes, and any failure, answered in the shape of the caller's
    protocol; a failure's traceback goes to the log only."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status == 405:
            code, text = code_pb2.UNIMPLEMENTED, f"method {request.method} is not allowed here"
            status = make_status(code, text)
        elif e.status == 404 and _rpc_shaped(request):
            # As gRPC says of a method it does not have.
            status = make_status(code_pb2.UNIMPLEMENTED, f"no method {excerpt(request.path)}")
        elif e.status == 404:
            status = no_route(request.path)
        else:
            status = make_status(code_pb2.INVALID_ARGUMENT, e.reason)
        allow = e.headers.get("Allow")
        return _error_response(request, status, e.status, {"Allow": allow} if allow else None)
    except CallError as e:
        return _error_response(request, e.status, http_status_of(e.status.code), None)
    except Exception:
        _log.exception("HTTP port error on %s %s", request.method, request.raw_path)
        return _error_response(
            request, make_status(code_pb2.INTERNAL, "internal server error"), 500, None
        )


def _rpc_shaped(request: web.Request) -> bool:
    content_type = request.content_type
    return (
        is_grpc_web(content_type)
        or content_type == "application/proto"
        or "Connect-Protocol-Version" in request.headers
    )


def _error_response(
    request: web.Request,
    status: status_pb2.Status,
    http_status: int,
    headers: dict[str, str] | None,
) -> web.StreamResponse:
    """The error answer in the shape of the request's protocol: gRPC-Web trailers, Connect's
    error JSON, or a Status JSON body."""
    content_type = request.content_type
    if is_grpc_web(content_type):
        return grpc_web_error_response(status, "text" in content_type)
    if _rpc_shaped(request):
        return connect_error_response(status, http_status, headers)
    return status_response(http_status, status, headers)


@dataclass
class HttpPort:
    """A listening HTTP port; ``await close()`` stops it (in-flight requests finish)."""

    port: int
    _runner: web.AppRunner
    _server: asyncio.Server

    async def start(self) -> None:
        await self._server.start_serving()

    async def close(self) -> None:
        self._server.close()  # no new connections
        await self._runner.cleanup()  # in-flight requests finish, idle connections close
        await self._server.wait_closed()


async def open_http_port(
    address: str,
    app: web.Application,
    *,
    ssl_context: ssl.SSLContext | None = None,
    drain_seconds: float = 10.0,
    on_refusal: OnRefusal | None = None,
) -> HttpPort:
    """``app`` bound to ``address`` (port 0 picks one), HTTPS with ``ssl_context``; not yet
    taking connections: ``await port.start()``. ``close()`` lets requests in flight finish
    for up to ``drain_seconds``. ``on_refusal`` is told of every request aiohttp refuses
    before the app sees it."""
    host, _, port = address.rpartition(":")
    # access_log=None: a line per request would cost more than the request itself.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADER_BYTES,
        # The handlers inflate gzip bodies themselves, within the message limit.
        auto_decompress=False,
        shutdown_timeout=drain_seconds,
    )
    await runner.setup()
    factory = runner.server
    assert factory is not None  # set by setup()
    if ssl_context is not None:
        # aiohttp speaks HTTP/1.1: say so, so that HTTP/2 clients do not try h2.
        ssl_context.set_alpn_protocols(["http/1.1"])
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            guarded(factory, _LIMITS, on_refusal),
            host.strip("[]") or None,
            int(port),
            ssl=ssl_context,
            reuse_address=True,
            start_serving=False,
        )
    except OSError:
        await runner.cleanup()
        raise
    bound = server.sockets[0].getsockname()[1]
    return HttpPort(bound, runner, server)


async def run_gateway(
    http_address: str,
    grpc_target: str,
    *,
    registry: TypeRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    credentials: grpc.ChannelCredentials | None = None,
    ssl_context: ssl.SSLContext | None = None,
    cors_origins: Iterable[str] = (),
    observation: Observation | None = None,
) -> None:
    """Serve the HTTP port alone in front of a remote gRPC server until SIGTERM or SIGINT:
    toward it over TLS with ``credentials``, to its callers HTTPS with ``ssl_context``;
    ``observation`` sees its requests and calls."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = registry if registry is not None else TypeRegistry()
    channel = open_channel(grpc_target, max_body_bytes, credentials)
    try:
        dispatcher: Dispatcher = ChannelDispatcher(channel, RPC_SERVICES, registry)
        middlewares: list[Middleware] = []
        if observation is not None:
            dispatcher = observation.dispatcher(dispatcher)
            middlewares.append(observation.middleware())
        app = create_http_app(
            dispatcher,
            registry=registry,
            max_body_bytes=max_body_bytes,
            cors_origins=cors_origins,
            middlewares=middlewares,
        )
        port = await open_http_port(
            http_address,
            app,
            ssl_context=ssl_context,
            on_refusal=None if observation is None else observation.refused,
        )
        await port.start()
        for handler in logging.getLogger().handlers:
            handler.flush()  # what came before the ready line is written when it comes
        host = http_address.rsplit(":", 1)[0]
        scheme = "HTTP" if ssl_context is None else "HTTPS"
        print(f"v1op: serving {scheme} on {host}:{port.port} for gRPC {grpc_target}", flush=True)
        await stop.wait()
        _log.info("stopping: draining in-flight requests")
        await port.close()
    finally:
        await channel.close()
