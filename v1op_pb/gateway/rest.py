"""REST: the ``google.api.http`` mapping of the services, as the documented API has it.

Each request becomes the RPC's request message (path variables, query parameters, body),
goes to the dispatcher, and the response comes back as the binding's JSON in grpc-gateway's
default style (every field present). Every error is a google.rpc.Status JSON body with the
HTTP status a gRPC-to-REST gateway maps its code to; never a stack trace.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.rpc import code_pb2, status_pb2

from .._calls import REST, CallError, Dispatcher
from .._codec import Codec, dumps, loads
from .._codec.descriptors import is_repeated
from .._errors import ConversionError, excerpt
from .._registry import TypeRegistry, unknown_type_of
from .._status import make_status
from .common import call_info, gunzip, http_status_of, read_body, with_types
from .http_rules import Route

__all__ = ["RestHandler", "no_route", "status_response"]

_JSON = "application/json"
_ENUM_NUMBER = re.compile(r"-?[0-9]{1,20}\Z")
_NOT_FROM_A_QUERY = ("google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue")
_log = logging.getLogger("v1op.gateway")
_STATUS_WRITER = Codec(emit_unpopulated=True)


class _Reject(Exception):
    """End the request with this HTTP status and Status body."""

    def __init__(
        self, http_status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = make_status(code, message)
        self.headers = headers or {}


def no_route(path: str) -> status_pb2.Status:
    return make_status(code_pb2.NOT_FOUND, f"no route for {excerpt(path)}")


def status_response(
    http_status: int,
    status: status_pb2.Status,
    headers: dict[str, str] | None = None,
    writer: Codec = _STATUS_WRITER,
) -> web.Response:
    """A google.rpc.Status JSON body: never a 500 for an error answer of its own."""
    try:
        body = dumps(writer.encode(status))
    except ConversionError:
        # Details of types this server does not know: keep code and message.
        body = dumps(writer.encode(make_status(status.code, status.message)))
    except Exception:
        # Keep the code, with a message sure to encode (the original is logged).
        _log.exception("cannot write the Status of an error")
        body = dumps(writer.encode(make_status(status.code, "error")))
    if status.code == code_pb2.UNAUTHENTICATED:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return web.Response(
        status=http_status, body=body.encode("utf-8"), content_type=_JSON, headers=headers
    )


class RestHandler:
    """The REST routes of some services, answered through ``dispatcher``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        routes: Iterable[Route],
        registry: TypeRegistry,
        max_body_bytes: int,
    ) -> None:
        # Routes with a custom verb first: "/v1/operations/x:finalize" also matches the
        # plain "/v1/{operation.name=operations/*}" template.
        self._routes = sorted(routes, key=lambda r: r.template.verb is None)
        self._dispatcher = dispatcher
        self._max_body_bytes = max_body_bytes
        self._reader = Codec(registry)
        self._writer = Codec(registry, emit_unpopulated=True)
        self._classes = {name: spec.request_class for name, spec in dispatcher.methods.items()}
        missing = {r.grpc_path for r in self._routes} - set(self._classes)
        if missing:
            raise ValueError(f"REST routes of methods the dispatcher lacks: {sorted(missing)}")

    @property
    def prefixes(self) -> set[str]:
        """The first path segment of every route: the HTTP app sends those paths here."""
        return {r.template.template.split("/")[1] for r in self._routes}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except _Reject as e:
            return status_response(e.http_status, e.status, e.headers, self._writer)
        except CallError as e:
            return status_response(http_status_of(e.status.code), e.status, None, self._writer)

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path = request.raw_path.split("?", 1)[0]
        path = urllib.parse.unquote(raw_path)
        route, variables = self._route(request.method, path)
        request_class = self._classes[route.grpc_path]
        js = await self._request_json(request, route)
        for field_path, value in variables.items():
            _put(js, field_path.split("."), value)
        try:
            message = await with_types(
                self._dispatcher, lambda: self._reader.decode(js, request_class)
            )
        except ConversionError as e:
            raise _Reject(400, code_pb2.INVALID_ARGUMENT, f"invalid request: {e}") from e
        response = await self._dispatcher.call(call_info(request, REST, route.grpc_path), message)
        if route.response_body:
            response = getattr(response, route.response_body)
        try:
            # the core writes the JSON text straight from the wire form (encode_text)
            body = await with_types(self._dispatcher, lambda: self._writer.encode_text(response))
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
        raise _Reject(404, code_pb2.NOT_FOUND, no_route(path).message)

    async def _request_json(self, request: web.Request, route: Route) -> dict[str, Any]:
        try:
            body = await read_body(request, self._max_body_bytes)
            encoding = request.headers.get("Content-Encoding", "identity")
            if encoding == "gzip":
                body = gunzip(body, self._max_body_bytes)
            elif encoding != "identity":
                raise _Reject(
                    415,
                    code_pb2.UNIMPLEMENTED,
                    f"Content-Encoding {excerpt(encoding)} is not served; use gzip or identity",
                )
        except CallError as e:
            http_status = 413 if e.status.code == code_pb2.RESOURCE_EXHAUSTED else 400
            raise _Reject(http_status, e.status.code, e.status.message) from e
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
