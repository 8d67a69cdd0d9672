"""The gateway under fuzzing: a real gRPC server and the REST gateway in front of it, on
one event loop in a background thread, and a check of what it answers to any request."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator

from v1op_pb.gateway.app import DOCUMENTED_SERVICES, open_channel, start_gateway
from v1op_pb.server.app import create_server
from v1op_pb.server.auth import Principal, TokenTable
from v1op_pb.server.store import SQLiteStore

__all__ = ["Gateway", "check_request", "gateway_seeds", "split_request"]

TOKENS = {"user-token": "users/ada", "service-token": "services/eval"}
TIMEOUT = 10.0
# Statuses the gateway answers with; 500 (a bug) and anything unexpected is a finding.
EXPECTED = {200, 400, 401, 403, 404, 405, 409, 412, 413, 429, 431, 499, 501, 503, 504}


class _Errors(logging.Handler):
    """Records the server's and the gateway's logged errors: each is a handler failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Gateway:
    def __init__(self) -> None:
        self.errors = _Errors()
        for name in ("v1op.server", "v1op.gateway"):
            logging.getLogger(name).addHandler(self.errors)
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True).start()
        if not ready.wait(TIMEOUT):
            raise RuntimeError("the gateway did not start")

    async def _serve(self, ready: threading.Event) -> None:
        table = TokenTable({token: Principal(who) for token, who in TOKENS.items()})
        server, grpc_port = await create_server(
            "127.0.0.1:0", store=SQLiteStore(":memory:"), tokens=table
        )
        await server.start()
        channel = open_channel(f"127.0.0.1:{grpc_port}", 4 * 1024 * 1024)
        _, self.port = await start_gateway("127.0.0.1:0", channel, DOCUMENTED_SERVICES)
        ready.set()
        await asyncio.Event().wait()


def split_request(data: bytes) -> tuple[bytes, bytes, bytes]:
    """An input as (request line start "METHOD /target", Authorization value, body): the
    first two lines and the rest."""
    head, _, rest = data.partition(b"\n")
    authorization, _, body = rest.partition(b"\n")
    return head, authorization, body


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def check_request(gateway: Gateway, data: bytes) -> None:
    head, authorization, body = split_request(data)
    lines = [head + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    if authorization:
        lines.append(b"Authorization: " + authorization)
    if body:
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: " + str(len(body)).encode())
    raw = _exchange(gateway.port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    status_line, _, rest = raw.partition(b"\r\n")
    # HTTP/1.0 is the answer to a request line whose version aiohttp could not read.
    assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), raw[:200]
    status = int(status_line.split(b" ")[1])
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status in EXPECTED, (status, raw[:500])
    assert b"content-type: application/json" in headers.lower(), raw[:500]
    if b"transfer-encoding: chunked" not in headers.lower():
        answer = json.loads(payload)
        if status >= 400:
            assert set(answer) <= {"code", "message", "details"}, answer
            assert isinstance(answer["code"], int) and answer["code"] != 0, answer
    errors, gateway.errors.records = gateway.errors.records, []
    assert not errors, [record.getMessage() for record in errors]


def gateway_seeds() -> Iterator[tuple[str, bytes]]:
    from .oracles import GOLDEN

    name = "operations/00000000-0000-4000-8000-000000000000"
    finished = (GOLDEN / "valid" / "gateway_succeeded.json").read_bytes()
    failed = (GOLDEN / "valid" / "failed_rpc_details.json").read_bytes()
    running = (GOLDEN / "valid" / "running_typed_metadata.json").read_bytes()
    yield "get", f"GET /v1/{name}\nBearer user-token\n".encode()
    yield "list", b"GET /v1/operations?pageSize=2&pageToken=abc\nBearer user-token\n"
    yield "unseen", b"GET /v1/operations:unseen?view=OPERATION_VIEW_BASIC\nBearer user-token\n"
    yield "batch", f"GET /v1/operations:batchGet?names={name}&names=x\nBearer user-token\n".encode()
    yield (
        "mark",
        f"POST /v1/operations:batchMarkSeenByCreator?names={name}\nBearer user-token\n".encode(),
    )
    yield "abort", f"POST /v1/{name}:abort\nBearer user-token\n".encode()
    yield "progress", f"GET /v1/{name}/progresses:getByParent\nBearer user-token\n".encode()
    yield "update", f"PATCH /v1/{name}\nBearer service-token\n".encode() + running
    yield "finalize", f"PATCH /v1/{name}:finalize\nBearer service-token\n".encode() + finished
    yield "finalize-error", f"PATCH /v1/{name}:finalize\nBearer service-token\n".encode() + failed
