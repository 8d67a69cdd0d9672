"""A REST gateway serving the ``google.api.http`` mapping of the proto, in front of gRPC.

Routes come from the service descriptors at start-up (``_http_rules``); each request becomes
the RPC's request message (path variables, query parameters, body), goes over a gRPC channel
(to this process's own server, or a remote one) with the caller's ``Authorization``, and the
response comes back as the binding's JSON. Every error is a google.rpc.Status JSON body with
the HTTP status a gRPC-to-REST gateway maps its code to; never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import ssl
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import grpc
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from google.api_core.exceptions import exception_class_for_grpc_status
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from v1op.v1 import operation_service_pb2

from .._codec import Codec, dumps, loads
from .._codec.descriptors import is_repeated
from .._errors import ConversionError, excerpt
from .._registry import TypeRegistry, unknown_type_of
from .._status import make_status
from .http_rules import Route, routes_of
from .reflection import learn_type

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DOCUMENTED_SERVICES",
    "create_gateway_app",
    "run_gateway",
    "start_gateway",
]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
CALL_TIMEOUT_SECONDS = 60.0
# aiohttp's defaults (8 KiB) stop a batchGet at about 146 names; these let a request line
# carry the documented 1000 names of any length the server takes, and headers a long token.
MAX_REQUEST_LINE_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# A bearer token is printable ASCII; anything longer than this is not one we gave out, and
# would only be refused by gRPC's metadata limit further on.
MAX_AUTHORIZATION_CHARS = 4096

# The services of the documented REST API. google.longrunning.Operations has HTTP rules of
# its own, which would overlap the documented paths; it stays gRPC-only.
DOCUMENTED_SERVICES = (
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationService"],
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationProgressService"],
)
_JSON = "application/json"
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_ENUM_NUMBER = re.compile(r"-?[0-9]{1,20}\Z")
_log = logging.getLogger("v1op.gateway")
T = TypeVar("T")
# A payload can hold Anys of other unknown types: learn one per round, this many at most.
_MAX_LEARNED_PER_CALL = 16


class _Reject(Exception):
    """End the request with this HTTP status and Status body."""

    def __init__(
        self, http_status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = make_status(code, message)
        self.headers = headers or {}


def create_gateway_app(
    channel: grpc.aio.Channel,
    services: Iterable[ServiceDescriptor],
    *,
    registry: TypeRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """An aiohttp application serving the HTTP rules of ``services`` over ``channel``."""
    gateway = _Gateway(channel, routes_of(*services), registry, max_body_bytes)
    # aiohttp's own body limit would answer 413 with a text body; ours answers with a Status.
    # Every request goes to the gateway, which routes by the HTTP rules itself: aiohttp's
    # router would answer what it does not match (a path with a newline, say) in text.
    app = web.Application(client_max_size=max_body_bytes + 1, middlewares=[gateway.dispatch])
    return app


def open_channel(
    target: str, max_message_bytes: int, credentials: grpc.ChannelCredentials | None = None
) -> grpc.aio.Channel:
    """The gateway's channel to its gRPC server, taking messages as large as its bodies:
    over TLS with ``credentials``, else plaintext. Callers' tokens go on each call as
    their ``Authorization``, not on the channel."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


async def start_gateway(
    address: str,
    channel: grpc.aio.Channel,
    services: Iterable[ServiceDescriptor],
    *,
    registry: TypeRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve the gateway on ``address`` (port 0 picks one), HTTPS with ``ssl_context``;
    returns the running runner (``await runner.cleanup()`` stops it) and the bound port."""
    host, _, port = address.rpartition(":")
    app = create_gateway_app(channel, services, registry=registry, max_body_bytes=max_body_bytes)
    # access_log=None: a line per request would cost more than the request itself.
    runner = _StatusRunner(
        app,
        access_log=None,
        handle_signals=False,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADER_BYTES,
    )
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or None, int(port), ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, bound


async def run_gateway(
    http_address: str,
    grpc_target: str,
    *,
    registry: TypeRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    credentials: grpc.ChannelCredentials | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve the gateway alone in front of a remote gRPC server until SIGTERM or SIGINT:
    toward it over TLS with ``credentials``, to its callers HTTPS with ``ssl_context``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    channel = open_channel(grpc_target, max_body_bytes, credentials)
    try:
        runner, port = await start_gateway(
            http_address,
            channel,
            DOCUMENTED_SERVICES,
            registry=registry,
            max_body_bytes=max_body_bytes,
            ssl_context=ssl_context,
        )
        host = http_address.rsplit(":", 1)[0]
        scheme = "HTTP" if ssl_context is None else "HTTPS"
        print(f"v1op: serving {scheme} on {host}:{port} for gRPC {grpc_target}", flush=True)
        await stop.wait()
        await runner.cleanup()
    finally:
        await channel.close()


class _StatusRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what it refuses before the application sees
    it (a malformed request line, headers over the limits, a handler timeout) with a Status
    JSON body instead of aiohttp's text."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own handling logs, and refuses when a response is under way.
        super().handle_error(request, status, exc, message)
        if status >= 500:
            code, text = (
                (code_pb2.DEADLINE_EXCEEDED, "gateway timeout")
                if status == 504
                else (code_pb2.INTERNAL, "internal gateway error")
            )
        elif isinstance(exc, LineTooLong):
            code, text = (
                code_pb2.INVALID_ARGUMENT,
                (
                    f"request line or header over the limit of {MAX_REQUEST_LINE_BYTES} bytes "
                    f"(line) or {MAX_HEADER_BYTES} bytes (header)"
                ),
            )
        else:
            code, text = code_pb2.INVALID_ARGUMENT, "malformed HTTP request"
        body = dumps(Codec().encode(make_status(code, text)))
        response = web.Response(status=status, body=body.encode("utf-8"), content_type=_JSON)
        response.force_close()
        return response


class _StatusServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _StatusRequestHandler(self, loop=self._loop, **self._kwargs)


class _StatusRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors with a Status body."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same handler, request factory and options; only the connection handler differs.
        return _StatusServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


class _Gateway:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        routes: list[Route],
        registry: TypeRegistry | None,
        max_body_bytes: int,
    ) -> None:
        # Routes with a custom verb first: "/v1/operations/x:finalize" also matches the
        # plain "/v1/{operation.name=operations/*}" template.
        self._routes = sorted(routes, key=lambda r: r.template.verb is None)
        # Payload types the gateway was not given are learned from the server's reflection
        # and kept here.
        registry = registry if registry is not None else TypeRegistry()
        self._registry = registry
        self._channel = channel
        self._max_body_bytes = max_body_bytes
        # A hung gRPC server must not hang HTTP callers: DEADLINE_EXCEEDED answers 504.
        self._timeout = CALL_TIMEOUT_SECONDS
        self._reader = Codec(registry)
        self._writer = Codec(registry, emit_unpopulated=True)
        self._calls = {}
        for route in routes:
            request_class = message_factory.GetMessageClass(route.method.input_type)
            response_class = message_factory.GetMessageClass(route.method.output_type)
            self._calls[route.grpc_path] = (
                request_class,
                channel.unary_unary(
                    route.grpc_path,
                    request_serializer=request_class.SerializeToString,
                    response_deserializer=response_class.FromString,
                ),
            )

    @web.middleware
    async def dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        return await self.handle(request)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except _Reject as e:
            return self._status_response(e.http_status, e.status, e.headers)
        except Exception:
            # The client gets a Status, the server log gets the traceback.
            _log.exception("gateway error on %s %s", request.method, request.raw_path)
            status = make_status(code_pb2.INTERNAL, "internal gateway error")
            return self._status_response(500, status)

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path = request.raw_path.split("?", 1)[0]
        path = urllib.parse.unquote(raw_path)
        route, variables = self._route(request.method, path)
        request_class, call = self._calls[route.grpc_path]
        js = await self._request_json(request, route)
        for field_path, value in variables.items():
            _put(js, field_path.split("."), value)
        try:
            message = await self._with_types(lambda: self._reader.decode(js, request_class))
        except ConversionError as e:
            raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"invalid request: {e}") from e
        metadata = []
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            _check_authorization(authorization)
            metadata.append(("authorization", authorization))
        try:
            response = await call(message, metadata=metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as e:
            status = _status_of(e)
            return self._status_response(http_status_of(status.code), status)
        if route.response_body:
            response = getattr(response, route.response_body)
        try:
            # the core writes the JSON text straight from the wire form (encode_text)
            body = await self._with_types(lambda: self._writer.encode_text(response))
        except ConversionError as e:
            name = unknown_type_of(e)
            if name is None:
                raise
            raise _Reject(
                500,
                code_pb2.INTERNAL,
                f"the gateway cannot write payload type {name!r}: it was not given the type "
                "(--import, --descriptor-set) and the server's reflection does not know it",
            ) from e
        return web.Response(body=body, content_type=_JSON)

    async def _with_types(self, convert: Callable[[], T]) -> T:
        """``convert()``, learning each payload type it fails on for being unknown from the
        server's reflection and trying again."""
        tried: set[str] = set()
        while True:
            try:
                return convert()
            except ConversionError as e:
                name = unknown_type_of(e)
                if name is None or name in tried or len(tried) >= _MAX_LEARNED_PER_CALL:
                    raise
                tried.add(name)
                if not await learn_type(self._channel, self._registry, name):
                    raise

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self._routes:
            variables = route.template.match(path)
            if variables is None:
                continue
            if route.http_method == method:
                return route, variables
            allowed.append(route.http_method)
        if allowed:
            raise _Reject(
                405,
                code_pb2.UNIMPLEMENTED,
                f"method {method} is not allowed for {excerpt(path)}; "
                f"allowed: {', '.join(sorted(set(allowed)))}",
                {"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise _Reject(404, code_pb2.NOT_FOUND, f"no route for {excerpt(path)}")

    async def _request_json(self, request: web.Request, route: Route) -> dict[str, Any]:
        body = await self._read_body(request)
        if route.body:
            if not body.strip():
                content: Any = {}
            else:
                _check_content_type(request)
                try:
                    content = loads(body)
                except ConversionError as e:
                    raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"request body: {e}") from e
            if route.body == "*":
                if not isinstance(content, dict):
                    raise _Reject(
                        400, code_pb2.INVALID_ARGUMENT, "request body: expected a JSON object"
                    )
                if request.query:
                    raise _Reject(
                        400,
                        code_pb2.INVALID_ARGUMENT,
                        "query parameters are not allowed where the body is the whole request",
                    )
                return dict(content)
            js: dict[str, Any] = {route.body: content}
        else:
            if body.strip() not in (b"", b"{}"):
                raise _Reject(
                    400,
                    code_pb2.INVALID_ARGUMENT,
                    f"{request.method} {route.template.template} takes no request body",
                )
            js = {}
        self._query_into(js, request, route.method.input_type, route.body)
        return js

    async def _read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self._max_body_bytes:
            raise _Reject(
                413,
                code_pb2.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes is over the limit of {self._max_body_bytes}",
            )
        # read(n) returns what has arrived, not n bytes: read to the end, counting, so a
        # chunked body is neither cut short nor let past the cap.
        chunks, size = [], 0
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _Reject(
                    413,
                    code_pb2.RESOURCE_EXHAUSTED,
                    f"request body is over the limit of {self._max_body_bytes} bytes",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _query_into(
        self, js: dict[str, Any], request: web.Request, message: Descriptor, body_field: str
    ) -> None:
        for key in request.query:
            values = request.query.getall(key)
            names = key.split(".")
            field = _leaf_field(message, names)
            if field is None:
                raise _Reject(
                    400, code_pb2.INVALID_ARGUMENT, f"query parameter {excerpt(key)} names no field"
                )
            # Compare fields, not spellings: "operation" and its JSON name are one field.
            if (
                body_field
                and (first := _leaf_field(message, names[:1])) is not None
                and first.name == body_field
            ):
                raise _Reject(
                    400,
                    code_pb2.INVALID_ARGUMENT,
                    f"query parameter {excerpt(key)} names a field of the request body",
                )
            if is_repeated(field):
                value: Any = [_query_value(field, v, key) for v in values]
            elif len(values) > 1:
                raise _Reject(
                    400, code_pb2.INVALID_ARGUMENT, f"query parameter {excerpt(key)} is given twice"
                )
            else:
                value = _query_value(field, values[0], key)
            _put(js, names, value)

    def _status_response(
        self, http_status: int, status: status_pb2.Status, headers: dict[str, str] | None = None
    ) -> web.Response:
        try:
            body = dumps(self._writer.encode(status))
        except ConversionError:
            # Details of types this gateway does not know: keep code and message.
            body = dumps(self._writer.encode(make_status(status.code, status.message)))
        except Exception:
            # Never a 500 for an error answer: keep its code, with a message that is sure to
            # encode (the original is logged).
            _log.exception("cannot write the Status of an error")
            body = dumps(self._writer.encode(make_status(status.code, "error")))
        return web.Response(
            status=http_status, body=body.encode("utf-8"), content_type=_JSON, headers=headers
        )


def _check_authorization(value: str) -> None:
    """gRPC metadata takes printable ASCII; no token this server knows is anything else."""
    if len(value) > MAX_AUTHORIZATION_CHARS or not all(" " <= c <= "~" for c in value):
        raise _Reject(
            401,
            code_pb2.UNAUTHENTICATED,
            "the Authorization header is not 'Bearer <token>' in printable ASCII",
            {"WWW-Authenticate": "Bearer"},
        )


def _check_content_type(request: web.Request) -> None:
    if request.content_type != _JSON:
        raise _Reject(
            400,
            code_pb2.INVALID_ARGUMENT,
            f"request body must be {_JSON}, not {request.content_type or 'unspecified'}",
        )


def _leaf_field(message: Descriptor, names: list[str]) -> FieldDescriptor | None:
    field = None
    current: Descriptor | None = message
    for i, name in enumerate(names):
        if current is None:
            return None
        field = current.fields_by_name.get(name) or _by_json_name(current, name)
        if field is None:
            return None
        if i < len(names) - 1:
            current = field.message_type
    return field


def _by_json_name(message: Descriptor, name: str) -> FieldDescriptor | None:
    for field in message.fields:
        if field.json_name == name:
            return field
    return None


_NOT_FROM_A_QUERY = ("google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue")


def _query_value(field: FieldDescriptor, text: str, key: str) -> Any:
    """The JSON value the codec takes for a query parameter's text."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text in ("true", "false"):
            return text == "true"
        raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"{key}: expected true or false")
    if field.type == FieldDescriptor.TYPE_ENUM and _ENUM_NUMBER.match(text):
        return int(text)  # enums by number, as well as by name (the codec checks the range)
    message_type = field.message_type
    if (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and message_type is not None
        and message_type.full_name in _NOT_FROM_A_QUERY
    ):
        raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"{key}: cannot be set from a query")
    return text


def _put(js: dict[str, Any], names: list[str], value: Any) -> None:
    """Set a dotted field path in a JSON object, creating objects on the way (a null on
    the way means "not set"); anything else on the way is a request error, never replaced."""
    for depth, name in enumerate(names[:-1]):
        child = js.get(name)
        if child is None:
            child = js[name] = {}
        elif not isinstance(child, dict):
            where = ".".join(names[: depth + 1])
            raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"request: {where} must be a JSON object")
        js = child
    js[names[-1]] = value


def http_status_of(code: int) -> int:
    """The HTTP status for a gRPC code: google-api-core's mapping (500 for a code outside
    it)."""
    grpc_code = _GRPC_CODES.get(code)
    if grpc_code is None:
        return 500
    if grpc_code is grpc.StatusCode.OK:
        return 200
    http_code: int | None = exception_class_for_grpc_status(grpc_code).code
    return 500 if http_code is None else int(http_code)


def _status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    code = error.code().value[0]
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):  # -bin: bytes
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                break
            if status.code == code:
                return status
    return make_status(code, error.details() or "")
