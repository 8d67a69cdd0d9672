"""Status bodies for what aiohttp refuses before any handler runs.

A malformed request line or header, or one over the size limits, never reaches the
application: aiohttp's connection handler answers it itself, in plain text. aiohttp has no
public hook for that answer, so the HTTP port's connections go through ``GuardedProtocol``,
which sits between asyncio and aiohttp's protocol (an ordinary asyncio protocol, made by
aiohttp's public protocol factory, ``web.Server``) and replaces any error answer that is not
JSON with a google.rpc.Status JSON body of the same HTTP status. Every error the
application itself writes is JSON (a Status, or Connect's error JSON), and gRPC-Web answers
are 200, so only aiohttp's own answers are replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from google.rpc import code_pb2

__all__ = ["GuardedProtocol", "OnRefusal", "guarded", "status_answer"]

_REASONS = {400: "Bad Request", 413: "Payload Too Large", 431: "Request Header Fields Too Large"}


# Told of each request aiohttp refused (its HTTP status, the peer as gRPC names it): the
# request id to answer with (the access log's), or None.
OnRefusal = Callable[[int, str], "str | None"]


def status_answer(
    version: bytes, http_status: int, limits: str, request_id: str | None = None
) -> bytes:
    """A whole HTTP answer with a Status JSON body, closing the connection."""
    if http_status == 504:
        code, message = code_pb2.DEADLINE_EXCEEDED, "gateway timeout"
    elif http_status >= 500:
        code, message = code_pb2.INTERNAL, "internal server error"
    else:
        code, message = code_pb2.INVALID_ARGUMENT, f"malformed HTTP request ({limits})"
    body = orjson.dumps({"code": code, "message": message, "details": []})
    reason = _REASONS.get(http_status, "Error")
    head = (
        f"{version.decode('ascii')} {http_status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        + (f"X-Request-Id: {request_id}\r\n" if request_id else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with its own error answers made Status
    JSON."""

    def __init__(
        self, inner: asyncio.Protocol, limits: str, on_refusal: OnRefusal | None = None
    ) -> None:
        self._inner = inner
        self._limits = limits
        self._on_refusal = on_refusal

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._inner.connection_made(_GuardedTransport(transport, self._limits, self._on_refusal))

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _GuardedTransport(asyncio.Transport):
    """The connection's transport, seen by aiohttp: answers pass through, except an error
    answer that is not JSON, which is replaced (its body, however it is written, is
    dropped)."""

    def __init__(
        self, transport: asyncio.Transport, limits: str, on_refusal: OnRefusal | None = None
    ) -> None:
        super().__init__()
        self._transport = transport
        self._limits = limits
        self._on_refusal = on_refusal
        self._drop = 0  # bytes of a replaced answer's body still to come
        self._body = 0  # bytes of a passed answer's body still to come (not a head)

    def write(self, data: Any) -> None:
        if self._drop:
            taken = min(self._drop, len(data))
            self._drop -= taken
            data = bytes(data)[taken:]
        elif self._body:
            taken = min(self._body, len(data))
            self._body -= taken
            if taken == len(data):
                self._transport.write(data)
                return
            self._transport.write(bytes(data)[:taken])
            data = bytes(data)[taken:]
        if bytes(data[:5]) == b"HTTP/":
            data = self._checked(bytes(data))
        if data:
            self._transport.write(data)

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        self.write(b"".join(bytes(chunk) for chunk in list_of_data))

    def _checked(self, data: bytes) -> bytes:
        """An answer's head (and what follows it in this write): passed on, or replaced
        when it is an error answer that is not JSON."""
        end = data.find(b"\r\n\r\n")
        if end == -1:
            return data
        head = data[:end].lower()
        status_line, _, headers = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        length = 0
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip() == b"content-length" and value.strip().isdigit():
                length = int(value)
        body_here = len(data) - end - 4
        if (
            len(parts) < 2
            or not parts[1].isdigit()
            or int(parts[1]) < 400
            or b"content-type: application/json" in headers
        ):
            # A body of known length follows: none of it is a head, whatever it holds.
            self._body = max(0, length - body_here)
            return data
        self._drop = max(0, length - body_here)
        version = data[: data.index(b" ")]
        http_status = int(parts[1])
        request_id = None
        if self._on_refusal is not None:
            request_id = self._on_refusal(http_status, self._peer())
        return status_answer(version, http_status, self._limits, request_id)

    def _peer(self) -> str:
        peername = self._transport.get_extra_info("peername")
        if not isinstance(peername, tuple) or len(peername) < 2:
            return "unknown"
        host, port = peername[0], peername[1]
        return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"

    # Everything else is the real transport's.
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


def guarded(
    factory: Callable[[], asyncio.Protocol], limits: str, on_refusal: OnRefusal | None = None
) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for ``loop.create_server`` wrapping ``factory``'s protocols;
    ``on_refusal`` is told of each request aiohttp refused."""
    return lambda: GuardedProtocol(factory(), limits, on_refusal)
