"""REST on the HTTP port against hostile input (issue 11): every answer is a
google.rpc.Status JSON body with a precise HTTP status, including what aiohttp refuses before
any handler runs; batch calls carry the documented 1000 names.

One server with its HTTP port (in-process), on one event loop in a background thread.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import make_progress, make_token_table, running_with_http
from hypothesis import given, settings
from test_fuzz_properties import REGRESSIONS, mutated
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from fuzz.gateway import check_request, gateway_seeds
from v1op_pb import Operation, pack
from v1op_pb.gateway import MAX_HEADER_BYTES, MAX_REQUEST_LINE_BYTES
from v1op_pb.server.store import SQLiteStore

TIMEOUT = 10.0


@dataclass
class Stack:
    grpc_port: int
    http_port: int
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    table, tokens = make_token_table()
    store = SQLiteStore(":memory:")
    with running_with_http(store, table) as (thread, http_port):
        yield Stack(thread.port, http_port, tokens)
    store.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def status_json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        status = json.loads(self.body)
        assert set(status) <= {"code", "message", "details"}, status
        assert isinstance(status["code"], int) and isinstance(status["message"], str)
        return status


def exchange(port: int, request: bytes) -> Answer:
    """Send raw bytes as an HTTP/1.1 request and read the whole answer (the request says
    Connection: close, or the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return Answer(status, headers, body)


def dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)


def request(
    method: str,
    target: bytes | str,
    *,
    headers: dict[str, bytes | str] | None = None,
    body: bytes = b"",
) -> bytes:
    target = target.encode() if isinstance(target, str) else target
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for key, value in (headers or {}).items():
        lines.append(key.encode() + b": " + (value.encode() if isinstance(value, str) else value))
    if body:
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def bearer(stack: Stack, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.tokens[who]}"}


def create(stack: Stack, n: int) -> list[str]:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        stub = pb_grpc.OperationServiceStub(channel)
        auth = (("authorization", f"Bearer {stack.tokens['services/eval']}"),)
        return [
            stub.CreateOperation(
                pb.CreateOperationRequest(
                    operation=Operation(metadata=pack(make_progress())), on_behalf_of="users/ada"
                ),
                metadata=auth,
                timeout=TIMEOUT,
            ).operation.name
            for _ in range(n)
        ]


# --- request bodies and headers that used to get a 500 ----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"\\ud800": 1}',  # a lone surrogate as a key
        b'{"metadata": {"@type": "type.googleapis.com/google.protobuf.Struct", '
        b'"value": {"\\udfff": 1}}}',
        # ... and as a map key of an error detail
        b'{"done": true, "error": {"code": 3, "details": [{"@type": '
        b'"type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"\\ud800": "v"}}]}}',
        b'{"' + b"k" * 100_000 + b'": 1}',
    ],
)
def test_bad_keys_in_a_body_are_400_with_a_status(stack, body):
    # No token at all: the body is read and refused before anyone is asked who is calling.
    answer = exchange(stack.http_port, request("PATCH", "/v1/operations/x:finalize", body=body))
    assert answer.status == 400, answer
    status = answer.status_json()
    assert status["code"] == 3
    assert len(status["message"]) < 1000


@pytest.mark.parametrize(
    "value",
    [
        "Bearer t\u00e9st".encode(),  # UTF-8, not ASCII
        b"Bearer t\xe9st",  # Latin-1
        b"Bearer\ttoken",
        b"Bearer " + b"t" * 5000,
    ],
)
def test_an_authorization_header_that_is_not_printable_ascii_is_401(stack, value):
    answer = exchange(
        stack.http_port, request("GET", "/v1/operations", headers={"Authorization": value})
    )
    assert answer.status == 401, answer
    assert answer.status_json()["code"] == 16


# --- what aiohttp itself refuses, and the documented 1000 names -------------------------------


@pytest.mark.parametrize("verb", ["batchGet", "batchMarkSeenByCreator"])
def test_a_batch_of_1000_names_fits_the_request_line(stack, verb):
    names = create(stack, 1000)
    query = "&".join(f"names={name}" for name in names)
    method = "GET" if verb == "batchGet" else "POST"
    answer = exchange(
        stack.http_port,
        request(method, f"/v1/operations:{verb}?{query}", headers=bearer(stack, "users/ada")),
    )
    assert answer.status == 200, answer.body[:500]
    assert [op["name"] for op in json.loads(answer.body)["operations"]] == names


def test_a_request_line_over_the_limit_is_a_status_400(stack):
    target = "/v1/operations:batchGet?" + "n" * (MAX_REQUEST_LINE_BYTES + 10)
    answer = exchange(stack.http_port, request("GET", target))
    assert answer.status == 400
    assert answer.status_json()["code"] == 3


def test_a_header_over_the_limit_is_a_status_answer(stack):
    headers = {"X-Big": "v" * (MAX_HEADER_BYTES + 10)}
    answer = exchange(stack.http_port, request("GET", "/v1/operations", headers=headers))
    assert answer.status in (400, 431)
    assert answer.status_json()["code"] == 3


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/operations HTTP/9.9\r\n\r\n",
        b"GET /v1/operations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/operations HTTP/1.1\r\nBad Header\r\n\r\n",
    ],
)
def test_malformed_http_is_a_status_400(stack, raw):
    answer = exchange(stack.http_port, raw)
    assert answer.status == 400, answer
    assert answer.status_json()["code"] == 3


@pytest.mark.parametrize(
    "target, status",
    [
        ("/v1/operations/a%0Ab", 404),  # a newline in the name: no such operation
        ("/v1/%0A", 404),  # no route
        ("/%0A%0D", 404),
        ("/v1/operations/%ED%A0%80", 404),  # a lone surrogate, percent-encoded
    ],
)
def test_odd_characters_in_the_path_get_a_status(stack, target, status):
    answer = exchange(
        stack.http_port, request("GET", target, headers=bearer(stack, "services/eval"))
    )
    assert answer.status == status, answer
    assert answer.status_json()["code"] == 5


def test_an_enum_query_value_in_other_digits_is_400(stack):
    # "²" is a digit to str.isdigit() but not to int().
    answer = exchange(
        stack.http_port,
        request("GET", "/v1/operations:unseen?view=%C2%B2", headers=bearer(stack, "users/ada")),
    )
    assert answer.status == 400, answer
    assert answer.status_json()["code"] == 3


# --- the bounded half of the gateway's fuzz target ---------------------------------------------


@pytest.fixture(scope="module")
def fuzzed_gateway():
    from fuzz.gateway import Gateway

    return Gateway()  # its own server and store: what it is sent cannot disturb the others


GATEWAY_SEEDS = [data for _, data in gateway_seeds()]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(data=mutated(GATEWAY_SEEDS))
def test_mutated_requests_get_a_status_answer_and_no_handler_error(fuzzed_gateway, data):
    check_request(fuzzed_gateway, data)


def test_what_the_gateway_fuzzer_found_stays_fixed(fuzzed_gateway):
    for path in sorted((REGRESSIONS / "gateway").iterdir()):
        check_request(fuzzed_gateway, path.read_bytes())


def test_a_malformed_request_after_good_ones_on_one_connection_is_a_status_400(stack):
    # The Status answer replaces aiohttp's own however many answers came before it on the
    # connection: the answers before it pass untouched.
    good = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=TIMEOUT) as sock:
        answers = []
        for _ in range(2):
            sock.sendall(good)
            data = b""
            while not data.endswith(b"}"):
                data += sock.recv(65536)
            answers.append(data)
        sock.sendall(b"GARBAGE\r\n\r\n")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk

    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        assert answer.endswith(b'{"status": "SERVING"}'), answer
    head, _, body = rest.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == b"400", rest
    assert json.loads(body)["code"] == 3
