"""The Connect protocol (connectrpc.com/docs/protocol), unary: ``POST /<Service>/<Method>``
with an ``application/json`` or ``application/proto`` body, and ``GET`` with the message
in the query for the methods marked ``idempotency_level = NO_SIDE_EFFECTS``.

Request bodies may be gzip (``Content-Encoding``); responses are gzip when the client
accepts it and the body is worth it. ``Connect-Timeout-Ms`` becomes the call's deadline.
Errors are Connect's error JSON, ``{"code": "not_found", "message": ..., "details": [...]}``
with the HTTP status of Connect's code table.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import time

import orjson
from aiohttp import web
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from .._calls import CONNECT, CallError, Dispatcher, MethodSpec, not_binary_message
from .._codec import Codec
from .._errors import ConversionError, excerpt
from .._registry import TypeRegistry
from .common import call_info, gunzip, read_body, with_types

__all__ = ["ConnectHandler", "connect_error_response"]

_JSON = "application/json"
_PROTO = "application/proto"
_CODECS = {"application/json": "json", "application/proto": "proto"}
# Connect's code names, and the HTTP status of each (its spec's table).
_CODES: dict[int, tuple[str, int]] = {
    code_pb2.CANCELLED: ("canceled", 499),
    code_pb2.UNKNOWN: ("unknown", 500),
    code_pb2.INVALID_ARGUMENT: ("invalid_argument", 400),
    code_pb2.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    code_pb2.NOT_FOUND: ("not_found", 404),
    code_pb2.ALREADY_EXISTS: ("already_exists", 409),
    code_pb2.PERMISSION_DENIED: ("permission_denied", 403),
    code_pb2.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    code_pb2.FAILED_PRECONDITION: ("failed_precondition", 400),
    code_pb2.ABORTED: ("aborted", 409),
    code_pb2.OUT_OF_RANGE: ("out_of_range", 400),
    code_pb2.UNIMPLEMENTED: ("unimplemented", 501),
    code_pb2.INTERNAL: ("internal", 500),
    code_pb2.UNAVAILABLE: ("unavailable", 503),
    code_pb2.DATA_LOSS: ("data_loss", 500),
    code_pb2.UNAUTHENTICATED: ("unauthenticated", 401),
}
# Compressing a small body costs more CPU (on both ends) than the bytes it saves take to
# send: an operation of a few KiB is sent as it is.
_GZIP_ABOVE_BYTES = 8 * 1024
_MAX_TIMEOUT_DIGITS = 10


def connect_error_response(
    status: status_pb2.Status, http_status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """Connect's error JSON for ``status``, with the HTTP status of Connect's table (or
    ``http_status``: 405 and 415 are answers about HTTP, not codes)."""
    name, table_status = _CODES.get(status.code, ("unknown", 500))
    error: dict[str, object] = {"code": name}
    if status.message:
        error["message"] = status.message
    if status.details:
        error["details"] = [
            {
                "type": detail.type_url.rpartition("/")[2],
                "value": base64.b64encode(detail.value).rstrip(b"=").decode("ascii"),
            }
            for detail in status.details
        ]
    return web.Response(
        status=http_status or table_status,
        body=orjson.dumps(error),
        content_type=_JSON,
        headers=headers,
    )


def _error(code: int, message: str) -> CallError:
    return CallError.of(code, message)


class ConnectHandler:
    """Connect unary calls of the dispatcher's methods."""

    def __init__(self, dispatcher: Dispatcher, registry: TypeRegistry, max_body_bytes: int):
        self._dispatcher = dispatcher
        self._max_body_bytes = max_body_bytes
        # protojson's defaults, as Connect's own servers write: unpopulated fields left out.
        self._codec = Codec(registry)

    async def handle(self, request: web.Request, spec: MethodSpec) -> web.Response:
        if request.method == "POST":
            codec = _CODECS.get(request.content_type)
            if codec is None:
                return connect_error_response(
                    _status(
                        code_pb2.UNIMPLEMENTED,
                        f"content type {excerpt(request.content_type)} is not served; "
                        f"use {_JSON} or {_PROTO}",
                    ),
                    415,
                    {"Accept-Post": f"{_JSON}, {_PROTO}"},
                )
        elif request.method == "GET" and spec.no_side_effects:
            codec = request.query.get("encoding", "")
            if codec not in ("json", "proto"):
                return connect_error_response(
                    _status(
                        code_pb2.INVALID_ARGUMENT,
                        f"encoding={excerpt(codec)}: a GET request says encoding=json or "
                        "encoding=proto",
                    )
                )
        else:
            allowed = "GET, POST" if spec.no_side_effects else "POST"
            return connect_error_response(
                _status(
                    code_pb2.UNIMPLEMENTED,
                    f"{request.method} is not served for {spec.name}; use {allowed}",
                ),
                405,
                {"Allow": allowed},
            )
        try:
            return await self._call(request, spec, codec)
        except CallError as e:
            return connect_error_response(e.status)

    async def _call(self, request: web.Request, spec: MethodSpec, codec: str) -> web.Response:
        headers = request.headers
        version = headers.get("Connect-Protocol-Version")
        if version is not None and version != "1":
            raise _error(
                code_pb2.INVALID_ARGUMENT,
                f"Connect-Protocol-Version {excerpt(version)} is not served; use 1",
            )
        deadline = _deadline(headers.get("Connect-Timeout-Ms"))
        if request.method == "GET":
            data = self._query_message(request)
        else:
            data = await read_body(request, self._max_body_bytes)
            data = self._inflate(data, headers.get("Content-Encoding", "identity"))
        message = await self._decode(data, spec, codec)
        response = await self._dispatcher.call(
            call_info(request, CONNECT, spec.name, deadline), message
        )
        if codec == "json":
            body = await self._encode_json(response)
            content_type = _JSON
        else:
            body = response.SerializeToString()
            content_type = _PROTO
        answer_headers = None
        if len(body) > _GZIP_ABOVE_BYTES and "gzip" in headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=6)
            answer_headers = {"Content-Encoding": "gzip"}
        return web.Response(body=body, content_type=content_type, headers=answer_headers)

    def _query_message(self, request: web.Request) -> bytes:
        query = request.query
        text = query.get("message", "")
        if query.get("base64") == "1":
            try:
                data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError) as e:
                raise _error(code_pb2.INVALID_ARGUMENT, "message= is not base64url") from e
        else:
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError as e:
                raise _error(code_pb2.INVALID_ARGUMENT, "message= is not UTF-8") from e
        if len(data) > self._max_body_bytes:
            raise _error(
                code_pb2.RESOURCE_EXHAUSTED,
                f"the request of {len(data)} bytes is over the limit of {self._max_body_bytes} "
                "bytes",
            )
        return self._inflate(data, query.get("compression", "identity"))

    def _inflate(self, data: bytes, encoding: str) -> bytes:
        if encoding == "gzip":
            return gunzip(data, self._max_body_bytes)
        if encoding != "identity":
            raise _error(
                code_pb2.UNIMPLEMENTED,
                f"compression {excerpt(encoding)} is not served; use gzip or identity",
            )
        return data

    async def _decode(self, data: bytes, spec: MethodSpec, codec: str) -> Message:
        if codec == "proto":
            try:
                return spec.request_class.FromString(data)
            except DecodeError as e:
                raise not_binary_message(spec.request_class.DESCRIPTOR.full_name) from e
        try:
            return await with_types(
                self._dispatcher, lambda: self._codec.decode_text(data or b"{}", spec.request_class)
            )
        except ConversionError as e:
            raise _error(code_pb2.INVALID_ARGUMENT, f"invalid request: {e}") from e

    async def _encode_json(self, response: Message) -> bytes:
        try:
            return await with_types(self._dispatcher, lambda: self._codec.encode_text(response))
        except ConversionError as e:
            raise _error(code_pb2.INTERNAL, f"the response cannot be written as JSON: {e}") from e


def _status(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)


def _deadline(value: str | None) -> float | None:
    """The deadline of a Connect-Timeout-Ms header (at most 10 digits, as the spec has it)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and 0 < len(value) <= _MAX_TIMEOUT_DIGITS):
        raise _error(
            code_pb2.INVALID_ARGUMENT,
            f"Connect-Timeout-Ms {excerpt(value)} is not a number of milliseconds "
            f"(1 to {_MAX_TIMEOUT_DIGITS} digits)",
        )
    return time.monotonic() + int(value) / 1000
