"""The HTTP port under fuzzing: a real server with its HTTP port (REST, Connect, gRPC-Web,
calling the services in-process), on one event loop in a background thread, and a check of
what it answers to any request, in the shape of the request's protocol."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator

from v1op.v1 import operation_service_pb2 as pb

from v1op_pb.server.app import create_servers
from v1op_pb.server.auth import Principal, TokenTable
from v1op_pb.server.store import SQLiteStore

__all__ = ["Gateway", "check_request", "gateway_seeds", "split_request"]

TOKENS = {"user-token": "users/ada", "service-token": "services/eval"}
TIMEOUT = 10.0
# Statuses the HTTP port answers with; 500 (a bug) and anything unexpected is a finding.
EXPECTED = {200, 400, 401, 403, 404, 405, 409, 412, 413, 415, 429, 431, 499, 501, 503, 504}
GRPC_WEB = "application/grpc-web"


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
        servers = await create_servers(
            "127.0.0.1:0",
            store=SQLiteStore(":memory:"),
            tokens=table,
            http_address="127.0.0.1:0",
        )
        await servers.start()
        assert servers.http_port is not None
        self.port = servers.http_port
        ready.set()
        await asyncio.Event().wait()


def split_request(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """An input as (request line start "METHOD /target", content type, Authorization
    value, body): the first line is "METHOD /target [CONTENT-TYPE]", the second the
    Authorization, the rest the body."""
    head, _, rest = data.partition(b"\n")
    authorization, _, body = rest.partition(b"\n")
    method, _, after = head.partition(b" ")
    target, _, content_type = after.partition(b" ")
    line = method + b" " + target if after else head
    return line, content_type, authorization, body


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def check_request(gateway: Gateway, data: bytes) -> None:
    line, content_type, authorization, body = split_request(data)
    lines = [line + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    if authorization:
        lines.append(b"Authorization: " + authorization)
    if body:
        lines.append(b"Content-Type: " + (content_type or b"application/json"))
        lines.append(b"Content-Length: " + str(len(body)).encode())
    elif content_type:
        lines.append(b"Content-Type: " + content_type)
    raw = _exchange(gateway.port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    status_line, _, rest = raw.partition(b"\r\n")
    # HTTP/1.0 is the answer to a request line whose version aiohttp could not read.
    assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), raw[:200]
    status = int(status_line.split(b" ")[1])
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status in EXPECTED, (status, raw[:500])
    answer_type = _header(headers, b"content-type")
    if answer_type.startswith(b"application/grpc-web"):
        assert status == 200, raw[:500]
        _check_grpc_web(payload, b"text" in answer_type)
    else:
        assert answer_type == b"application/json", raw[:500]
        if b"transfer-encoding: chunked" not in headers.lower():
            answer = json.loads(payload)
            if status >= 400:
                _check_error_json(answer)
    errors, gateway.errors.records = gateway.errors.records, []
    assert not errors, [record.getMessage() for record in errors]


def _header(headers: bytes, name: bytes) -> bytes:
    for line in headers.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().split(b";")[0].lower()
    return b""


def _check_error_json(answer: object) -> None:
    """A google.rpc.Status (REST) or Connect's error JSON: a code, never OK."""
    assert isinstance(answer, dict), answer
    code = answer.get("code")
    if isinstance(code, str):  # Connect
        assert set(answer) <= {"code", "message", "details"}, answer
        assert code and code != "ok", answer
    else:
        assert set(answer) <= {"code", "message", "details"}, answer
        assert isinstance(code, int) and code != 0, answer
        assert isinstance(answer["message"], str), answer


def _check_grpc_web(payload: bytes, text: bool) -> None:
    """Length-prefixed frames, the last of them the trailers with a grpc-status."""
    data = base64.b64decode(payload) if text else payload
    trailers = None
    while data:
        assert len(data) >= 5, data
        flags, length = struct.unpack(">BI", data[:5])
        frame, data = data[5 : 5 + length], data[5 + length :]
        assert len(frame) == length
        if flags & 0x80:
            trailers = frame
    assert trailers is not None and trailers.startswith(b"grpc-status:"), payload[:200]


def _frame(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def gateway_seeds() -> Iterator[tuple[str, bytes]]:
    from .oracles import GOLDEN

    name = "operations/00000000-0000-4000-8000-000000000000"
    finished = (GOLDEN / "valid" / "gateway_succeeded.json").read_bytes()
    failed = (GOLDEN / "valid" / "failed_rpc_details.json").read_bytes()
    running = (GOLDEN / "valid" / "running_typed_metadata.json").read_bytes()
    # REST
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
    # Connect
    get = "/v1op.v1.OperationService/GetOperation"
    create = "/v1op.v1.OperationService/CreateOperation"
    yield (
        "connect-json",
        f"POST {get} application/json\nBearer user-token\n".encode()
        + json.dumps({"name": name}).encode(),
    )
    yield (
        "connect-proto",
        f"POST {get} application/proto\nBearer user-token\n".encode()
        + pb.GetOperationRequest(name=name).SerializeToString(),
    )
    yield (
        "connect-get",
        f'GET {get}?encoding=json&message={{"name":"{name}"}}\nBearer user-token\n'.encode(),
    )
    yield (
        "connect-create",
        f"POST {create} application/json\nBearer service-token\n".encode()
        + b'{"operation": '
        + running
        + b', "onBehalfOf": "users/ada"}',
    )
    yield (
        "connect-lro-wait",
        b"POST /google.longrunning.Operations/WaitOperation application/json\n"
        b"Bearer user-token\n" + json.dumps({"name": name, "timeout": "0.01s"}).encode(),
    )
    # gRPC-Web
    request = pb.GetOperationRequest(name=name).SerializeToString()
    yield (
        "grpc-web",
        f"POST {get} {GRPC_WEB}+proto\nBearer user-token\n".encode() + _frame(request),
    )
    yield (
        "grpc-web-text",
        f"POST {get} {GRPC_WEB}-text\nBearer user-token\n".encode()
        + base64.b64encode(_frame(request)),
    )
