"""gRPC-Web (github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md), unary:
``POST /<Service>/<Method>`` with ``application/grpc-web`` (``+proto``) or
``application/grpc-web-text`` (base64) bodies.

The request is one length-prefixed message (gzip with ``grpc-encoding: gzip``); the answer
is HTTP 200 with the response message, then the trailers (``grpc-status``,
``grpc-message``, ``grpc-status-details-bin``) in a final frame of their own, as the
protocol has it. ``grpc-timeout`` becomes the call's deadline.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
import urllib.parse

from aiohttp import web
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from .._calls import GRPC_WEB, CallError, Dispatcher, MethodSpec, not_binary_message, over_limit
from .._errors import excerpt
from .common import call_info, gunzip, read_body

__all__ = ["GrpcWebHandler", "grpc_web_error_response", "is_grpc_web"]

_PREFIX = "application/grpc-web"
_BINARY = ("application/grpc-web", "application/grpc-web+proto")
_TEXT = ("application/grpc-web-text", "application/grpc-web-text+proto")
_HEADER = struct.Struct(">BI")  # flags, length
_COMPRESSED = 0x01
_TRAILERS = 0x80
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])\Z")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# What grpc-message may hold unescaped (the gRPC spec: printable ASCII but '%').
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def is_grpc_web(content_type: str) -> bool:
    return content_type.startswith(_PREFIX)


def grpc_web_error_response(status: status_pb2.Status, text: bool = False) -> web.Response:
    """An answer that is only the trailers: the Status, in the final (only) frame."""
    body = _trailer_frame(status)
    return _answer(body, text)


def _answer(body: bytes, text: bool) -> web.Response:
    if text:
        return web.Response(
            body=base64.b64encode(body), content_type="application/grpc-web-text+proto"
        )
    return web.Response(body=body, content_type="application/grpc-web+proto")


def _trailer_frame(status: status_pb2.Status) -> bytes:
    lines = [f"grpc-status:{status.code}\r\n"]
    if status.message:
        message = urllib.parse.quote(status.message, safe=_MESSAGE_SAFE)
        lines.append(f"grpc-message:{message}\r\n")
    if status.details:
        details = base64.b64encode(status.SerializeToString()).rstrip(b"=").decode("ascii")
        lines.append(f"grpc-status-details-bin:{details}\r\n")
    block = "".join(lines).encode("ascii")
    return _HEADER.pack(_TRAILERS, len(block)) + block


_OK_TRAILERS = _trailer_frame(status_pb2.Status(code=code_pb2.OK))


class GrpcWebHandler:
    """gRPC-Web unary calls of the dispatcher's methods."""

    def __init__(self, dispatcher: Dispatcher, max_message_bytes: int) -> None:
        self._dispatcher = dispatcher
        self._max_message_bytes = max_message_bytes

    async def handle(self, request: web.Request, spec: MethodSpec) -> web.Response:
        content_type = request.content_type
        text = content_type in _TEXT
        try:
            if request.method != "POST":
                raise CallError.of(
                    code_pb2.UNIMPLEMENTED, f"gRPC-Web calls are POST, not {request.method}"
                )
            if not text and content_type not in _BINARY:
                raise CallError.of(
                    code_pb2.UNIMPLEMENTED,
                    f"content type {excerpt(content_type)} is not served; use "
                    "application/grpc-web+proto or application/grpc-web-text+proto",
                )
            deadline = _deadline(request.headers.get("grpc-timeout"))
            message = await self._read_message(request, spec, text)
            response = await self._dispatcher.call(
                call_info(request, GRPC_WEB, spec.name, deadline), message
            )
        except CallError as e:
            return grpc_web_error_response(e.status, text)
        payload = response.SerializeToString()
        return _answer(_HEADER.pack(0, len(payload)) + payload + _OK_TRAILERS, text)

    async def _read_message(self, request: web.Request, spec: MethodSpec, text: bool) -> Message:
        limit = self._max_message_bytes + _HEADER.size
        if text:
            # base64 takes 4 characters for every 3 bytes.
            raw = await read_body(request, -(-limit // 3) * 4)
            data = _unbase64(raw)
        else:
            data = await read_body(request, limit)
        if len(data) < _HEADER.size:
            raise _malformed("the request is not one length-prefixed message")
        flags, length = _HEADER.unpack_from(data)
        if length > self._max_message_bytes:
            raise over_limit(length, self._max_message_bytes)
        if flags & ~_COMPRESSED or len(data) != _HEADER.size + length:
            raise _malformed("the request is not one length-prefixed message")
        payload = data[_HEADER.size :]
        if flags & _COMPRESSED:
            encoding = request.headers.get("grpc-encoding", "identity")
            if encoding != "gzip":
                raise CallError.of(
                    code_pb2.UNIMPLEMENTED,
                    f"grpc-encoding {excerpt(encoding)} is not served; use gzip or identity",
                )
            payload = gunzip(payload, self._max_message_bytes)
        try:
            return spec.request_class.FromString(payload)
        except DecodeError as e:
            raise not_binary_message(spec.request_class.DESCRIPTOR.full_name) from e


def _malformed(message: str) -> CallError:
    return CallError.of(code_pb2.INVALID_ARGUMENT, message)


def _unbase64(raw: bytes) -> bytes:
    """grpc-web-text: base64, possibly several padded chunks one after another."""
    chunks, start = [], 0
    try:
        while start < len(raw):
            end = raw.find(b"=", start)
            if end == -1:
                end = len(raw)
            else:
                while end < len(raw) and raw[end : end + 1] == b"=":
                    end += 1
            chunks.append(base64.b64decode(raw[start:end], validate=True))
            start = end
    except (binascii.Error, ValueError) as e:
        raise _malformed("the grpc-web-text body is not base64") from e
    return b"".join(chunks)


def _deadline(value: str | None) -> float | None:
    """The deadline of a grpc-timeout header: 1 to 8 digits and a unit (H M S m u n)."""
    if value is None:
        return None
    match = _TIMEOUT.match(value)
    if match is None:
        raise _malformed(f"grpc-timeout {excerpt(value)} is not 1 to 8 digits and a unit")
    return time.monotonic() + int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
