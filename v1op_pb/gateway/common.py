"""What the HTTP port's protocols share: a call's facts from an aiohttp request, request
bodies read within the message limit, and the HTTP status of a gRPC code."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import TypeVar

import grpc
from aiohttp import web
from google.api_core.exceptions import exception_class_for_grpc_status
from google.rpc import code_pb2

from .._calls import (
    CallError,
    CallInfo,
    Dispatcher,
    given_request_id,
    over_limit,
    request_id_of,
)
from .._errors import ConversionError
from .._registry import unknown_type_of

__all__ = ["call_info", "gunzip", "http_status_of", "peer_of", "read_body", "with_types"]

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_CHUNK = 64 * 1024
# A payload can hold Anys of other unknown types: learn one per round, this many at most.
_MAX_LEARNED_PER_CALL = 16
T = TypeVar("T")


async def with_types(dispatcher: Dispatcher, convert: Callable[[], T]) -> T:
    """``convert()`` (a JSON reading or writing), learning each payload type it fails on
    for being unknown from the server (the standalone gateway's, by reflection) and trying
    again."""
    tried: set[str] = set()
    while True:
        try:
            return convert()
        except ConversionError as e:
            name = unknown_type_of(e)
            if name is None or name in tried or len(tried) >= _MAX_LEARNED_PER_CALL:
                raise
            tried.add(name)
            if not await dispatcher.learn_type(name):
                raise


def call_info(
    request: web.Request, protocol: str, method: str, deadline: float | None = None
) -> CallInfo:
    """The facts of a call made over HTTP: every request header is metadata; its request
    id the one the port's middleware gave the request, if one did."""
    metadata = tuple((key.lower(), value) for key, value in request.headers.items())
    transport = request.transport
    certificate = None
    if transport is not None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            certificate = ssl_object.getpeercert(binary_form=True)
    request_id = given_request_id.get() or request_id_of(metadata)
    return CallInfo(protocol, method, metadata, peer_of(request), certificate, deadline, request_id)


def peer_of(request: web.Request) -> str:
    """The peer as gRPC names it: ``ipv4:127.0.0.1:53124``, ``ipv6:[::1]:53124``."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if not isinstance(peername, tuple) or len(peername) < 2:
        return "unknown"
    host, port = peername[0], peername[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, refused (RESOURCE_EXHAUSTED) as soon as it is known to be
    over ``limit``: at once when Content-Length says so, else when that much has come."""
    length = request.content_length
    if length is not None and length > limit:
        raise over_limit(length, limit)
    # read(n) returns what has arrived, not n bytes: read to the end, counting, so a chunked
    # body is neither cut short nor let past the limit.
    chunks, size = [], 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise over_limit(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(data: bytes, limit: int) -> bytes:
    """A gzip body inflated, refused past ``limit`` bytes before it is inflated whole."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit:
            raise over_limit(None, limit)
        if not inflater.eof or inflater.unused_data:
            raise CallError.of(code_pb2.INVALID_ARGUMENT, "the body is not one whole gzip stream")
    except (zlib.error, gzip.BadGzipFile) as e:
        raise CallError.of(code_pb2.INVALID_ARGUMENT, "the body is not valid gzip") from e
    return out


def http_status_of(code: int) -> int:
    """The HTTP status for a gRPC code as REST gateways map it: google-api-core's mapping
    (500 for a code outside it)."""
    grpc_code = _GRPC_CODES.get(code)
    if grpc_code is None:
        return 500
    if grpc_code is grpc.StatusCode.OK:
        return 200
    http_code: int | None = exception_class_for_grpc_status(grpc_code).code
    return 500 if http_code is None else int(http_code)
