"""The HTTP port's protocols beside REST: Connect and gRPC-Web on every service, CORS,
health, the OpenAPI document, reflection v1, and one place deciding identity, rules and
error wording for gRPC, REST, Connect and gRPC-Web alike.

Two servers for the module, each with its HTTP port in the same process (create_servers), on
one event loop in a background thread: one granting a browser origin CORS, with a 64 KiB
message limit, and one without CORS. Requests are plain HTTP (http.client), so that every
byte on the wire is the test's; gRPC calls are the reference.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import queue
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import eval_studio_client
import grpc
import pytest
from conftest import (
    ObservedStore,
    ServerThread,
    make_progress,
    make_result,
    make_token_table,
    running,
    running_with_http,
)
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection_pb2
from openapi_spec_validator import validate
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, from_dict, pack, to_dict
from v1op_pb.gateway import DOCUMENTED_SERVICES, openapi
from v1op_pb.server.app import create_servers
from v1op_pb.server.store import SQLiteStore

LIMIT = 64 * 1024
ORIGIN = "https://app.example.com"
TIMEOUT = 10
GET = "/v1op.v1.OperationService/GetOperation"
ABORT = "/v1op.v1.OperationService/AbortOperation"
LIST = "/v1op.v1.OperationService/ListOperations"
CREATE = "/v1op.v1.OperationService/CreateOperation"
LRO_WAIT = "/google.longrunning.Operations/WaitOperation"
MISSING = "operations/00000000-0000-4000-8000-000000000000"
SWAGGER = Path(eval_studio_client.__file__).parent / "gen/openapiv2/eval_studio.swagger.json"
CONNECT_HTTP_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "failed_precondition": 400,
    "resource_exhausted": 429,
    "deadline_exceeded": 504,
    "unimplemented": 501,
}


@dataclass
class Ports:
    grpc: int
    http: int
    plain_http: int  # the server without CORS
    tokens: dict[str, str]

    def bearer(self, principal: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[principal]}"}

    def metadata(self, principal: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[principal]}"),)


@pytest.fixture(scope="module")
def ports() -> Iterator[Ports]:
    table, tokens = make_token_table()
    store = SQLiteStore(":memory:")
    found: dict[str, int] = {}

    async def build():
        servers = await create_servers(
            "127.0.0.1:0",
            store=store,
            tokens=table,
            http_address="127.0.0.1:0",
            max_message_bytes=LIMIT,
            cors_origins=[ORIGIN],
        )
        found["http"] = servers.http_port
        return servers, servers.grpc_port

    with running(build) as thread, running_with_http(store, table) as (_, plain_port):
        yield Ports(thread.port, found["http"], plain_port, tokens)
    store.close()


@pytest.fixture(scope="module")
def channel(ports: Ports) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{ports.grpc}") as ch:
        yield ch


@pytest.fixture(scope="module")
def ops(channel: grpc.Channel) -> pb_grpc.OperationServiceStub:
    return pb_grpc.OperationServiceStub(channel)


def create(ports: Ports, ops, *, metadata=None, response=None, owner="users/ada") -> Operation:
    requested = Operation(metadata=pack(metadata if metadata is not None else make_progress()))
    if response is not None:
        requested.done = True
        requested.response.CopyFrom(pack(response))
    request = pb.CreateOperationRequest(operation=requested, on_behalf_of=owner)
    return ops.CreateOperation(
        request, metadata=ports.metadata("services/eval"), timeout=TIMEOUT
    ).operation


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()


def send(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def connect(
    ports: Ports,
    path: str,
    message: dict,
    principal: str | None = "users/ada",
    headers: dict | None = None,
) -> Reply:
    all_headers = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
    if principal is not None:
        all_headers.update(ports.bearer(principal))
    all_headers.update(headers or {})
    return send(ports.http, "POST", path, json.dumps(message).encode(), all_headers)


def connect_error(reply: Reply, code: str) -> dict:
    """Connect's error JSON, with the HTTP status of Connect's code table."""
    assert reply.content_type == "application/json", reply
    error = reply.json()
    assert error["code"] == code, error
    assert reply.status == CONNECT_HTTP_STATUS[code], (reply.status, error)
    assert set(error) <= {"code", "message", "details"}
    return error


def frame(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


def frames(body: bytes) -> list[tuple[int, bytes]]:
    found = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        found.append((flags, body[5 : 5 + length]))
        body = body[5 + length :]
    return found


def grpc_web(
    ports: Ports,
    path: str,
    body: bytes,
    principal: str | None = "users/ada",
    content_type: str = "application/grpc-web+proto",
    headers: dict | None = None,
) -> tuple[Reply, bytes | None, dict[str, str]]:
    """A gRPC-Web call: the reply, its message (None when it has none) and its trailers."""
    all_headers = {"Content-Type": content_type, "X-Grpc-Web": "1"}
    if principal is not None:
        all_headers.update(ports.bearer(principal))
    all_headers.update(headers or {})
    reply = send(ports.http, "POST", path, body, all_headers)
    assert reply.status == 200, reply
    payload = base64.b64decode(reply.body) if "text" in content_type else reply.body
    parts = frames(payload)
    *data, (last_flags, last) = parts
    assert last_flags == 0x80, parts  # the trailers are the final frame
    trailers = {}
    for line in last.decode("ascii").split("\r\n"):
        if line:
            key, _, value = line.partition(":")
            trailers[key] = value
    assert len(data) <= 1
    return reply, data[0][1] if data else None, trailers


def trailer_status(trailers: dict[str, str]) -> status_pb2.Status:
    details = trailers.get("grpc-status-details-bin")
    if details:
        status = status_pb2.Status.FromString(base64.b64decode(details + "=" * (-len(details) % 4)))
        assert status.code == int(trailers["grpc-status"])
        return status
    return status_pb2.Status(
        code=int(trailers["grpc-status"]),
        message=urllib.parse.unquote(trailers.get("grpc-message", "")),
    )


# --- Connect ---------------------------------------------------------------------------------


def test_connect_json_get_operation_is_what_grpc_holds(ports, ops):
    created = create(ports, ops)

    reply = connect(ports, GET, {"name": created.name})

    assert reply.status == 200, reply
    assert reply.content_type == "application/json"
    assert from_dict(reply.json()["operation"]) == created


def test_connect_proto_get_operation(ports, ops):
    created = create(ports, ops)
    headers = {"Content-Type": "application/proto", **ports.bearer("users/ada")}

    body = pb.GetOperationRequest(name=created.name).SerializeToString()
    reply = send(ports.http, "POST", GET, body, headers)

    assert reply.status == 200, reply
    assert reply.content_type == "application/proto"
    assert pb.GetOperationResponse.FromString(reply.body).operation == created


@pytest.mark.parametrize("encoding", ["json", "proto"])
def test_connect_get_for_a_read_method(ports, ops, encoding):
    created = create(ports, ops)
    if encoding == "json":
        message = urllib.parse.quote(json.dumps({"name": created.name}))
        query = f"encoding=json&message={message}"
    else:
        raw = pb.GetOperationRequest(name=created.name).SerializeToString()
        message = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        query = f"encoding=proto&base64=1&message={message}&connect=v1"

    reply = send(ports.http, "GET", f"{GET}?{query}", headers=ports.bearer("users/ada"))

    assert reply.status == 200, reply
    if encoding == "json":
        assert from_dict(reply.json()["operation"]) == created
    else:
        assert pb.GetOperationResponse.FromString(reply.body).operation == created


def test_connect_get_of_a_method_with_side_effects_is_405(ports, ops):
    created = create(ports, ops)
    message = urllib.parse.quote(json.dumps({"name": created.name}))

    reply = send(
        ports.http,
        "GET",
        f"{ABORT}?encoding=json&message={message}",
        None,
        ports.bearer("users/ada"),
    )

    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"
    assert reply.json()["code"] == "unimplemented"
    held = ops.GetOperation(
        pb.GetOperationRequest(name=created.name), metadata=ports.metadata("users/ada")
    ).operation
    assert not held.done


def test_connect_create_then_read_over_grpc(ports, ops):
    body = {
        "operation": {"metadata": to_dict(Operation(metadata=pack(make_progress())))["metadata"]},
        "onBehalfOf": "users/ada",
    }

    reply = connect(ports, CREATE, body, principal="services/eval")

    assert reply.status == 200, reply
    name = reply.json()["operation"]["name"]
    held = ops.GetOperation(pb.GetOperationRequest(name=name), metadata=ports.metadata("users/ada"))
    assert held.operation.creator == "users/ada"


def test_connect_serves_google_longrunning_too(ports, ops):
    created = create(ports, ops)

    reply = connect(ports, "/google.longrunning.Operations/GetOperation", {"name": created.name})

    assert reply.status == 200, reply
    assert reply.json()["name"] == created.name
    assert reply.json()["metadata"]["@type"].endswith("EvaluationProgress")


@pytest.mark.parametrize(
    ("principal", "message", "code"),
    [
        (None, {"name": MISSING}, "unauthenticated"),
        ("users/ada", {"name": MISSING}, "not_found"),
        ("users/ada", {"name": "not-an-operation"}, "invalid_argument"),
        ("users/ada", {"bogus": 1}, "invalid_argument"),
        ("users/ada", {"name": 5}, "invalid_argument"),
    ],
)
def test_connect_errors_are_connect_error_json(ports, principal, message, code):
    reply = connect(ports, GET, message, principal=principal)

    error = connect_error(reply, code)
    assert error["message"]


def test_connect_error_details_are_typed(ports):
    error = connect_error(connect(ports, GET, {"name": MISSING}), "not_found")

    (detail,) = error["details"]
    assert detail["type"] == "google.rpc.ResourceInfo"
    value = detail["value"]
    info = error_details_pb2.ResourceInfo.FromString(
        base64.b64decode(value + "=" * (-len(value) % 4))
    )
    assert info.resource_name == MISSING


def test_connect_permission_denied_and_failed_precondition(ports, ops):
    created = create(ports, ops, response=make_result())

    denied = connect(ports, GET, {"name": created.name}, principal="users/bob")
    finished = connect(ports, ABORT, {"name": created.name})

    connect_error(denied, "permission_denied")
    connect_error(finished, "failed_precondition")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Connect-Protocol-Version": "2"}, "invalid_argument"),
        ({"Connect-Timeout-Ms": "soon"}, "invalid_argument"),
        ({"Connect-Timeout-Ms": "12345678901"}, "invalid_argument"),
        ({"Connect-Timeout-Ms": "0"}, "deadline_exceeded"),
        ({"Content-Encoding": "br"}, "unimplemented"),
        ({"Content-Encoding": "gzip"}, "invalid_argument"),  # the body is not gzip
    ],
)
def test_connect_headers_are_checked(ports, headers, code):
    reply = connect(ports, GET, {"name": MISSING}, headers=headers)

    connect_error(reply, code)


def test_connect_timeout_bounds_a_wait(ports, ops):
    created = create(ports, ops)  # running: the wait can only end by its deadline

    reply = connect(ports, LRO_WAIT, {"name": created.name}, headers={"Connect-Timeout-Ms": "300"})

    # Answered before the deadline, with the operation as it is: still running.
    assert reply.status == 200, reply
    assert reply.json()["name"] == created.name
    assert "done" not in reply.json()


def test_connect_gzip_request_and_response(ports, ops):
    user = "users/spare-00"
    big = struct_pb2.Struct(fields={"padding": struct_pb2.Value(string_value="x" * 10_000)})
    created = create(ports, ops, metadata=big, owner=user)
    body = gzip.compress(json.dumps({"pageSize": 5}).encode())
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Accept-Encoding": "gzip",
        **ports.bearer(user),
    }

    reply = send(ports.http, "POST", LIST, body, headers)

    assert reply.status == 200, reply
    assert reply.headers["Content-Encoding"] == "gzip"
    listed = json.loads(gzip.decompress(reply.body))
    assert [op["name"] for op in listed["operations"]] == [created.name]


def test_connect_gzip_past_the_limit_is_refused_before_it_is_inflated_whole(ports):
    bomb = gzip.compress(b'{"name": "' + b"x" * (50 * LIMIT) + b'"}')
    assert len(bomb) < LIMIT
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

    reply = send(ports.http, "POST", GET, bomb, {**headers, **ports.bearer("users/ada")})

    assert str(LIMIT) in connect_error(reply, "resource_exhausted")["message"]


def test_connect_body_over_the_limit_is_refused_before_it_is_read(ports):
    # Content-Length says too much; none of the body is sent, the answer comes anyway.
    connection = http.client.HTTPConnection("127.0.0.1", ports.http, timeout=TIMEOUT)
    try:
        connection.putrequest("POST", GET)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(LIMIT + 1))
        connection.endheaders()
        response = connection.getresponse()
        reply = Reply(response.status, response.headers, response.read())
    finally:
        connection.close()

    connect_error(reply, "resource_exhausted")


def test_connect_unknown_content_type_is_415(ports):
    reply = send(ports.http, "POST", GET, b"name=x", {"Content-Type": "text/plain"})

    assert reply.status == 415
    assert reply.headers["Accept-Post"] == "application/json, application/proto"
    assert reply.json()["code"] == "unimplemented"


def test_connect_unknown_method_is_404_unimplemented(ports):
    reply = connect(ports, "/v1op.v1.OperationService/Nope", {})

    assert reply.status == 404
    assert reply.json()["code"] == "unimplemented"


def test_connect_binary_that_is_not_the_request_message(ports):
    headers = {"Content-Type": "application/proto", **ports.bearer("users/ada")}

    reply = send(ports.http, "POST", GET, b"\xff\xff\xff", headers)

    error = connect_error(reply, "invalid_argument")
    assert error["message"] == (
        "the request is not a valid v1op.v1.GetOperationRequest in binary form"
    )


# --- gRPC-Web --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text"],
)
def test_grpc_web_get_operation(ports, ops, content_type):
    created = create(ports, ops)
    body = frame(pb.GetOperationRequest(name=created.name).SerializeToString())
    if "text" in content_type:
        body = base64.b64encode(body)

    reply, message, trailers = grpc_web(ports, GET, body, content_type=content_type)

    assert reply.content_type.startswith(
        "application/grpc-web-text" if "text" in content_type else "application/grpc-web"
    )
    assert trailers["grpc-status"] == "0"
    assert pb.GetOperationResponse.FromString(message).operation == created


def test_grpc_web_error_is_a_trailers_frame_with_the_rich_status(ports):
    body = frame(pb.GetOperationRequest(name=MISSING).SerializeToString())

    _, message, trailers = grpc_web(ports, GET, body)

    assert message is None
    status = trailer_status(trailers)
    assert status.code == code_pb2.NOT_FOUND
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info) and info.resource_name == MISSING
    assert urllib.parse.unquote(trailers["grpc-message"]) == status.message


def test_grpc_web_gzip_message(ports, ops):
    created = create(ports, ops)
    request = gzip.compress(pb.GetOperationRequest(name=created.name).SerializeToString())

    _, message, trailers = grpc_web(
        ports, GET, frame(request, flags=1), headers={"grpc-encoding": "gzip"}
    )

    assert trailers["grpc-status"] == "0"
    assert pb.GetOperationResponse.FromString(message).operation == created


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"\x00\x00", {}, code_pb2.INVALID_ARGUMENT),  # not a whole frame header
        (frame(b"x")[:-1], {}, code_pb2.INVALID_ARGUMENT),  # shorter than it says
        (frame(b"\xff\xff"), {}, code_pb2.INVALID_ARGUMENT),  # not the request message
        (frame(b"", flags=1), {}, code_pb2.UNIMPLEMENTED),  # compressed, no grpc-encoding
        (struct.pack(">BI", 0, LIMIT + 1), {}, code_pb2.RESOURCE_EXHAUSTED),
        (frame(b""), {"grpc-timeout": "soon"}, code_pb2.INVALID_ARGUMENT),
        (frame(b""), {"grpc-timeout": "0n"}, code_pb2.DEADLINE_EXCEEDED),
    ],
    ids=["short", "truncated", "not-a-message", "no-encoding", "over-limit", "bad-timeout", "late"],
)
def test_grpc_web_bad_requests_get_a_grpc_status(ports, body, headers, code):
    _, message, trailers = grpc_web(ports, GET, body, headers=headers)

    assert message is None
    assert int(trailers["grpc-status"]) == code, trailers


def test_grpc_web_body_over_the_limit_is_refused_before_it_is_read(ports):
    connection = http.client.HTTPConnection("127.0.0.1", ports.http, timeout=TIMEOUT)
    try:
        connection.putrequest("POST", GET)
        connection.putheader("Content-Type", "application/grpc-web+proto")
        connection.putheader("Content-Length", str(LIMIT + 100))
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    ((flags, trailers),) = frames(body)
    assert flags == 0x80
    assert trailers.startswith(f"grpc-status:{code_pb2.RESOURCE_EXHAUSTED}\r\n".encode())


def test_grpc_web_unknown_method_is_unimplemented(ports):
    _, _, trailers = grpc_web(ports, "/v1op.v1.OperationService/Nope", frame(b""))

    assert int(trailers["grpc-status"]) == code_pb2.UNIMPLEMENTED


# --- one place decides: the same answer on every protocol ------------------------------------


def every_protocol(ports: Ports, channel: grpc.Channel, name: str, principal: str | None):
    """(code, message) of GetOperation(name) as ``principal`` over gRPC, REST, Connect and
    gRPC-Web."""
    metadata = () if principal is None else ports.metadata(principal)
    try:
        pb_grpc.OperationServiceStub(channel).GetOperation(
            pb.GetOperationRequest(name=name), metadata=metadata, timeout=TIMEOUT
        )
        grpc_answer = (0, "")
    except grpc.RpcError as e:
        grpc_answer = (e.code().value[0], e.details())
    rest = send(
        ports.http,
        "GET",
        f"/v1/{name}",
        headers={} if principal is None else ports.bearer(principal),
    ).json()
    connected = connect(ports, GET, {"name": name}, principal=principal).json()
    _, _, trailers = grpc_web(
        ports, GET, frame(pb.GetOperationRequest(name=name).SerializeToString()), principal
    )
    web_status = trailer_status(trailers)
    connect_code = code_pb2.Code.Value(connected["code"].upper())
    return {
        "grpc": grpc_answer,
        "rest": (rest["code"], rest["message"]),
        "connect": (connect_code, connected["message"]),
        "grpc-web": (web_status.code, web_status.message),
    }


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no token", code_pb2.UNAUTHENTICATED),
        ("unknown token", code_pb2.UNAUTHENTICATED),
        ("another user's", code_pb2.PERMISSION_DENIED),
        ("missing", code_pb2.NOT_FOUND),
    ],
)
def test_identity_rules_and_wording_are_the_same_on_every_protocol(ports, ops, channel, case, code):
    created = create(ports, ops)
    principal, name = {
        "no token": (None, created.name),
        "unknown token": ("unknown", created.name),
        "another user's": ("users/bob", created.name),
        "missing": ("users/ada", MISSING),
    }[case]
    if principal == "unknown":
        ports.tokens.setdefault("unknown", "no-such-token")

    answers = every_protocol(ports, channel, name, principal)

    assert len(set(answers.values())) == 1, answers
    assert answers["grpc"][0] == code


# --- CORS ------------------------------------------------------------------------------------


def test_a_preflight_from_the_granted_origin(ports):
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,connect-protocol-version,authorization",
    }

    reply = send(ports.http, "OPTIONS", GET, headers=headers)

    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip().lower() for h in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert {
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "authorization",
        "x-grpc-web",
        "grpc-timeout",
    } <= allowed
    assert "PATCH" in reply.headers["Access-Control-Allow-Methods"]


def test_answers_to_the_granted_origin_expose_the_status_headers(ports, ops):
    created = create(ports, ops)

    reply = send(
        ports.http,
        "GET",
        f"/v1/{created.name}",
        headers={"Origin": ORIGIN, **ports.bearer("users/ada")},
    )

    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in reply.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed


def test_another_origin_gets_no_grant(ports):
    headers = {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}

    preflight = send(ports.http, "OPTIONS", GET, headers=headers)
    plain = send(ports.http, "GET", "/healthz", headers={"Origin": "https://evil.example.com"})

    assert preflight.status == 403
    assert preflight.json()["code"] == code_pb2.PERMISSION_DENIED
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_without_cors_origins_there_are_no_cors_headers(ports):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

    preflight = send(ports.plain_http, "OPTIONS", GET, headers=headers)
    plain = send(ports.plain_http, "GET", "/healthz", headers={"Origin": ORIGIN})

    assert preflight.status >= 400
    for reply in (preflight, plain):
        assert not [h for h in reply.headers if h.lower().startswith("access-control-")]


# --- health, OpenAPI, reflection -------------------------------------------------------------


def test_healthz_and_readyz(ports):
    for path in ("/healthz", "/readyz"):
        reply = send(ports.http, "GET", path)
        assert reply.status == 200
        assert reply.json() == {"status": "SERVING"}


def test_openapi_json_is_served_and_is_the_cli_document(ports):
    reply = send(ports.http, "GET", "/openapi.json")

    assert reply.status == 200
    assert reply.json() == openapi(DOCUMENTED_SERVICES)


def test_reflection_v1_lists_and_describes(channel):
    # grpc.reflection.v1's messages are v1alpha's, field for field.
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        ),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="v1op.v1.OperationService"),
    ]

    listed, v1_file, service_file = list(call(iter(requests), timeout=TIMEOUT))

    names = {s.name for s in listed.list_services_response.service}
    assert {
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "v1op.v1.OperationService",
        "google.longrunning.Operations",
    } <= names
    assert v1_file.file_descriptor_response.file_descriptor_proto
    assert service_file.file_descriptor_response.file_descriptor_proto


# --- the OpenAPI document ----------------------------------------------------------------------


def documented_operations() -> dict[str, tuple[str, str]]:
    with open(SWAGGER, encoding="utf-8") as f:
        document = json.load(f)
    found = {}
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if {"OperationService", "OperationProgressService"} & set(spec.get("tags", ())):
                found[spec["operationId"]] = (method, _shape(path))
    return found


def _shape(path: str) -> str:
    """A path with its variables' names left out: the documented document numbers them
    (``{name_7}``) to keep them apart across its many services."""
    import re

    return re.sub(r"\{[^}]*\}", "{}", path)


def test_openapi_operations_match_the_documented_api():
    ours = {}
    for path, methods in openapi(DOCUMENTED_SERVICES)["paths"].items():
        for method, spec in methods.items():
            ours[spec["operationId"]] = (method, _shape(path))

    assert ours == documented_operations()


def test_openapi_document_is_valid_swagger_2():
    validate(openapi(DOCUMENTED_SERVICES))


def test_openapi_has_proto3_json_types_comments_and_read_only_fields():
    document = openapi(DOCUMENTED_SERVICES)
    definitions = document["definitions"]
    operation = definitions["v1Operation"]["properties"]

    assert operation["createTime"] == {
        "type": "string",
        "format": "date-time",
        "description": "Output only. Timestamp when the Operation was created.",
        "readOnly": True,
    }
    assert operation["metadata"]["$ref"] == "#/definitions/protobufAny"
    assert operation["error"]["$ref"] == "#/definitions/rpcStatus"
    assert "readOnly" not in operation["done"]
    assert definitions["protobufAny"]["properties"]["@type"]["type"] == "string"
    assert definitions["v1ListOperationsResponse"]["properties"]["totalSize"] == {
        "type": "integer",
        "format": "int32",
        "description": "The total number of Operations that match the request, irrespective "
        "of pagination.",
    }
    get = document["paths"]["/v1/{name}"]["get"]
    assert get["summary"] == "Gets an Operation by name."
    (name,) = get["parameters"]
    assert (name["in"], name["pattern"], name["required"]) == ("path", "operations/[^/]+", True)
    unseen = document["paths"]["/v1/operations:unseen"]["get"]["parameters"]
    view = next(p for p in unseen if p["name"] == "view")
    assert view["enum"] == [
        "OPERATION_VIEW_UNSPECIFIED",
        "OPERATION_VIEW_BASIC",
        "OPERATION_VIEW_FULL",
    ]
    patch = document["paths"]["/v1/{operation.name}"]["patch"]["parameters"]
    body = next(p for p in patch if p["in"] == "body")
    # The body is the operation less its name, which the path gives.
    assert "name" not in body["schema"]["properties"]
    assert "metadata" in body["schema"]["properties"]


# --- the commands ----------------------------------------------------------------------------

SCRIPT = Path(sys.executable).parent / "v1op"


def test_v1op_openapi_prints_the_document_the_port_serves():
    done = subprocess.run([str(SCRIPT), "openapi"], capture_output=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == openapi(DOCUMENTED_SERVICES)


def test_cors_origins_need_the_http_port():
    done = subprocess.run(
        [
            str(SCRIPT),
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--dev-anonymous",
            "users/ada",
            "--cors-origin",
            ORIGIN,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr == "v1op: --cors-origin is for the HTTP port: give --http-addr too\n"


def test_a_wait_in_flight_on_the_http_port_answers_when_the_server_stops():
    table, tokens = make_token_table()
    store = ObservedStore(SQLiteStore(":memory:"))
    found: dict[str, int] = {}

    async def build():
        servers = await create_servers(
            "127.0.0.1:0", store=store, tokens=table, http_address="127.0.0.1:0"
        )
        found["http"] = servers.http_port
        return servers, servers.grpc_port

    thread = ServerThread(build).start()
    ports = Ports(thread.port, found["http"], found["http"], tokens)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{ports.grpc}") as channel:
            created = create(ports, pb_grpc.OperationServiceStub(channel))
        read = store.watch_reads(created.name)
        answers: queue.Queue[Reply] = queue.Queue()
        waiting = threading.Thread(
            target=lambda: answers.put(connect(ports, LRO_WAIT, {"name": created.name})),
            daemon=True,
        )
        waiting.start()
        # The wait registers itself before it reads the operation: once read, it waits.
        assert read.wait(TIMEOUT)
    finally:
        thread.stop()  # drains: the wait answers with the operation as it is

    reply = answers.get(timeout=TIMEOUT)
    assert reply.status == 200, reply
    assert reply.json()["name"] == created.name
    assert "done" not in reply.json()
    store.close()


def test_a_busy_http_address_is_one_line_and_exit_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        done = subprocess.run(
            [
                str(SCRIPT),
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                address,
                "--db",
                ":memory:",
                "--tokens",
                "/dev/null",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 2
    assert done.stderr.startswith(f"v1op: cannot listen on {address}: "), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_readyz_says_when_the_store_cannot_be_reached(postgres):
    import psycopg

    from v1op_pb.server.store import open_store

    url = postgres.new_database()
    store = open_store(url)
    table, _ = make_token_table()
    found: dict[str, int] = {}

    class ClosingTheStore:
        """The servers, and on stop the store too, on the loop its read pool lives on."""

        def __init__(self, servers) -> None:
            self.servers = servers

        async def start(self) -> None:
            await self.servers.start()

        async def stop(self, grace: float) -> None:
            await self.servers.stop(grace)
            await store.aclose()

    async def build():
        servers = await create_servers(
            "127.0.0.1:0", store=store, tokens=table, http_address="127.0.0.1:0"
        )
        found["http"] = servers.http_port
        return ClosingTheStore(servers), servers.grpc_port

    with running(build):
        ready = send(found["http"], "GET", "/readyz")
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        gone = send(found["http"], "GET", "/readyz")
        alive = send(found["http"], "GET", "/healthz")

    assert (ready.status, ready.json()) == (200, {"status": "SERVING"})
    assert gone.status == 503
    assert gone.json()["code"] == code_pb2.UNAVAILABLE
    assert alive.status == 200
