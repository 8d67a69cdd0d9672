"""Every call, whichever protocol and door it came through, is one access line, counted in
the metrics with go-grpc-prometheus' names (parsed from /metrics by prometheus-client's own
parser) and one span: gRPC (dispatched, refused before decoding, an unknown method, health,
reflection), REST, Connect and gRPC-Web, what the HTTP port refuses before any handler, and
the standalone gateway in front of it all."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import struct
import threading
import urllib.error
import urllib.request
from typing import Any

import grpc
import observed
import pytest
from google.longrunning import operations_proto_pb2 as lro
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from observed import sample
from opentelemetry.trace import SpanKind, StatusCode
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation
from v1op_pb.server.observe import code_name

stack = observed.stack
GET = "/v1op.v1.OperationService/GetOperation"
CREATE = "/v1op.v1.OperationService/CreateOperation"
MISSING = "operations/00000000-0000-4000-8000-000000000000"
HEX32 = r"[0-9a-f]{32}"


@pytest.fixture(scope="module")
def channel(stack):
    with grpc.insecure_channel(stack.grpc_target) as made:
        yield made


@pytest.fixture(scope="module")
def ops(channel):
    return pb_grpc.OperationServiceStub(channel)


def create(stack, ops) -> Operation:
    request = pb.CreateOperationRequest(on_behalf_of="users/ada")
    return ops.CreateOperation(request, metadata=stack.auth("services/eval"), timeout=10).operation


def trailing(call: Any) -> dict[str, str]:
    return dict(call.trailing_metadata() or ())


def request(
    stack,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port or stack.http_port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


# --- gRPC --------------------------------------------------------------------------------------


def test_a_grpc_call_is_one_line_with_every_field_and_counted_once(stack, ops):
    op = create(stack, ops)
    before = stack.scrape()
    answer, call = ops.GetOperation.with_call(
        pb.GetOperationRequest(name=op.name),
        metadata=(*stack.auth("users/ada"), ("x-request-id", "req-get-1")),
        timeout=10,
    )
    assert answer.operation == op
    assert trailing(call)["x-request-id"] == "req-get-1"  # given back
    line = stack.lines.wait_for(request_id="req-get-1")
    assert line["protocol"] == "grpc"
    assert line["method"] == GET
    assert line["code"] == "OK"
    assert line["principal"] == "users/ada"
    assert line["operation"] == op.name
    assert line["peer"].startswith("ipv4:127.0.0.1:")
    assert line["duration_ms"] >= 0
    assert "error" not in line and "refusal" not in line
    after = stack.scrape()
    labels = {
        "grpc_type": "unary",
        "grpc_service": "v1op.v1.OperationService",
        "grpc_method": "GetOperation",
    }
    for name in (
        "grpc_server_started_total",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "grpc_server_handling_seconds_count",
    ):
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1, name
    handled = "grpc_server_handled_total"
    assert (
        sample(after, handled, **labels, grpc_code="OK")
        - sample(before, handled, **labels, grpc_code="OK")
        == 1
    )


def test_an_error_carries_its_status_and_a_request_id_is_made_when_none_came(stack, ops):
    before = stack.scrape()
    with pytest.raises(grpc.RpcError) as caught:
        ops.GetOperation(pb.GetOperationRequest(name=MISSING), metadata=stack.auth("users/ada"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    request_id = trailing(caught.value)["x-request-id"]
    assert len(request_id) == 32
    line = stack.lines.wait_for(request_id=request_id)
    assert line["code"] == "NOT_FOUND"
    assert line["error"] == f"operation {MISSING!r} not found"
    assert line["operation"] == MISSING
    labels = {
        "grpc_type": "unary",
        "grpc_service": "v1op.v1.OperationService",
        "grpc_method": "GetOperation",
    }
    handled = ("grpc_server_handled_total",)
    assert (
        sample(stack.scrape(), *handled, **labels, grpc_code="NOT_FOUND")
        - sample(before, *handled, **labels, grpc_code="NOT_FOUND")
        == 1
    )
    # Not sent: the answer was an error.
    assert sample(stack.scrape(), "grpc_server_msg_sent_total", **labels) == sample(
        before, "grpc_server_msg_sent_total", **labels
    )


def test_a_refused_credential_logs_why_and_the_caller_hears_only_unauthenticated(stack, ops):
    token = "not-a-token-anyone-was-given"
    with pytest.raises(grpc.RpcError) as caught:
        ops.GetOperation(
            pb.GetOperationRequest(name=MISSING),
            metadata=(("authorization", f"Bearer {token}"), ("x-request-id", "req-refused")),
        )
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == (
        "unauthenticated: the call carries no credential this server accepts"
    )
    line = stack.lines.wait_for(request_id="req-refused")
    assert line["code"] == "UNAUTHENTICATED"
    assert line["refusal"] == "unknown bearer token"
    assert line["principal"] is None
    assert token not in json.dumps(stack.lines.lines)


def test_request_bytes_that_do_not_decode_are_a_line_too(stack, channel):
    raw = channel.unary_unary(GET, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\xff\xff\xff", metadata=(("x-request-id", "req-undecodable"),))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailing(caught.value)["x-request-id"] == "req-undecodable"
    line = stack.lines.wait_for(request_id="req-undecodable")
    assert (line["method"], line["code"]) == (GET, "INVALID_ARGUMENT")
    assert line["error"].startswith("the request is not a valid v1op.v1.GetOperationRequest")


def test_an_unknown_method_is_a_line_and_counted_under_one_label_for_all(stack, channel):
    labels = {
        "grpc_type": "unary",
        "grpc_service": "unknown",
        "grpc_method": "unknown",
        "grpc_code": "UNIMPLEMENTED",
    }
    before = sample(stack.scrape(), "grpc_server_handled_total", **labels)
    for method in ("/nope.v1.Nothing/Nowhere", "/nope.v1.Other/Elsewhere"):
        unknown = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as caught:
            unknown(b"", metadata=(("x-request-id", f"req-unknown{method}"),), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
        line = stack.lines.wait_for(request_id=f"req-unknown{method}")
        assert (line["method"], line["code"]) == (method, "UNIMPLEMENTED")
    # Callers choose these names: one series for them all, not one each.
    assert sample(stack.scrape(), "grpc_server_handled_total", **labels) - before == 2
    assert not any("nope" in name for name, _ in stack.scrape())
    assert not any("nope" in str(labels) for _, labels in stack.scrape())


def test_health_checks_and_reflection_streams_are_lines_and_counted(stack, channel):
    health = health_pb2_grpc.HealthStub(channel)
    answer, call = health.Check.with_call(
        health_pb2.HealthCheckRequest(), metadata=(("x-request-id", "req-health"),), timeout=10
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert trailing(call)["x-request-id"] == "req-health"
    assert stack.lines.wait_for(request_id="req-health")["method"] == "/grpc.health.v1.Health/Check"

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(
        reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            metadata=(("x-request-id", "req-reflection"),),
            timeout=10,
        )
    )
    assert any(
        s.name == "v1op.v1.OperationService" for s in answers[0].list_services_response.service
    )
    line = stack.lines.wait_for(request_id="req-reflection")
    assert (line["method"], line["code"]) == (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "OK",
    )
    samples = stack.scrape()
    assert (
        sample(
            samples,
            "grpc_server_handled_total",
            grpc_type="bidi_stream",
            grpc_service="grpc.reflection.v1alpha.ServerReflection",
            grpc_method="ServerReflectionInfo",
            grpc_code="OK",
        )
        >= 1
    )
    assert (
        sample(
            samples,
            "grpc_server_handled_total",
            grpc_type="unary",
            grpc_service="grpc.health.v1.Health",
            grpc_method="Check",
            grpc_code="OK",
        )
        >= 1
    )


def test_waits_in_progress(stack, ops, channel):
    op = create(stack, ops)
    waits = channel.unary_unary(
        "/google.longrunning.Operations/WaitOperation",
        request_serializer=lro.WaitOperationRequest.SerializeToString,
        response_deserializer=lro.Operation.FromString,
    )
    request = lro.WaitOperationRequest(name=op.name)
    request.timeout.FromSeconds(50)
    waiting = waits.future(request, metadata=stack.auth("users/ada"), timeout=60)
    assert wait_until(lambda: sample(stack.scrape(), "v1op_waits_in_progress") == 1)
    finished = Operation(name=op.name, done=True)
    finished.response.Pack(pb.GetOperationRequest())
    ops.FinalizeOperation(
        pb.FinalizeOperationRequest(operation=finished), metadata=stack.auth("services/eval")
    )
    assert waiting.result(timeout=30).done
    assert wait_until(lambda: sample(stack.scrape(), "v1op_waits_in_progress") == 0)


def test_commits_are_timed(stack, ops):
    before = sample(stack.scrape(), "v1op_store_commit_seconds_count")
    writes_before = sample(stack.scrape(), "v1op_store_commit_writes_sum")
    create(stack, ops)
    create(stack, ops)
    samples = stack.scrape()
    assert sample(samples, "v1op_store_commit_seconds_count") - before in (1, 2)
    assert sample(samples, "v1op_store_commit_writes_sum") - writes_before == 2


def test_the_operations_gauge_counts_the_store_by_state(stack, ops):
    import asyncio

    from v1op_pb.server.observe import count_operations_forever

    counted = threading.Event()
    metrics = stack.metrics
    assert metrics is not None and stack.store is not None
    set_operations = metrics.set_operations

    def set_and_tell(counts):
        set_operations(counts)
        counted.set()

    metrics.set_operations = set_and_tell  # type: ignore[method-assign]
    try:
        expected = stack.call(stack.store.count_operations())
        assert expected["running"] >= 1

        async def one_count() -> None:
            task = asyncio.ensure_future(count_operations_forever(stack.store, metrics, 3600))
            await asyncio.to_thread(counted.wait, 30)
            task.cancel()

        stack.call(one_count())
    finally:
        metrics.set_operations = set_operations  # type: ignore[method-assign]
    samples = stack.scrape()
    for state, count in expected.items():
        assert sample(samples, "v1op_store_operations", state=state) == count


def wait_until(condition, timeout: float = 30.0) -> bool:
    done = threading.Event()
    timer = threading.Timer(timeout, done.set)
    timer.start()
    try:
        while not done.is_set():
            if condition():
                return True
            done.wait(0.02)
        return condition()
    finally:
        timer.cancel()


# --- the HTTP port -----------------------------------------------------------------------------


def test_rest_connect_and_grpc_web_calls_are_lines_labelled_by_protocol_and_route(stack, ops):
    op = create(stack, ops)
    before = stack.scrape()
    token = stack.auth("users/ada")[0][1]
    status, headers, _ = request(
        stack, "GET", f"/v1/{op.name}", headers={"Authorization": token, "X-Request-Id": "req-rest"}
    )
    assert (status, headers["X-Request-Id"]) == (200, "req-rest")
    status, headers, _ = request(
        stack,
        "POST",
        GET,
        body=json.dumps({"name": op.name}).encode(),
        headers={
            "Authorization": token,
            "Content-Type": "application/json",
            "X-Request-Id": "req-connect",
        },
    )
    assert (status, headers["X-Request-Id"]) == (200, "req-connect")
    message = pb.GetOperationRequest(name=op.name).SerializeToString()
    status, headers, _body = request(
        stack,
        "POST",
        GET,
        body=struct.pack(">BI", 0, len(message)) + message,
        headers={
            "Authorization": token,
            "Content-Type": "application/grpc-web+proto",
            "X-Request-Id": "req-web",
        },
    )
    assert (status, headers["X-Request-Id"]) == (200, "req-web")
    for request_id, protocol in [
        ("req-rest", "rest"),
        ("req-connect", "connect"),
        ("req-web", "grpc-web"),
    ]:
        line = stack.lines.wait_for(request_id=request_id)
        assert (line["protocol"], line["method"], line["code"]) == (protocol, GET, "OK")
        assert stack.lines.count(request_id=request_id) == 1  # the dispatcher's line alone
        assert (line["principal"], line["operation"]) == ("users/ada", op.name)
    after = stack.scrape()
    for protocol, route in [
        ("rest", "GET /v1/{name=operations/*}"),
        ("connect", GET),
        ("grpc-web", GET),
    ]:
        labels = {"protocol": protocol, "route": route}
        for name in ("v1op_http_server_started_total", "v1op_http_server_handling_seconds_count"):
            assert sample(after, name, **labels) - sample(before, name, **labels) == 1
        handled = "v1op_http_server_handled_total"
        assert (
            sample(after, handled, **labels, grpc_code="OK")
            - sample(before, handled, **labels, grpc_code="OK")
            == 1
        )
    # gRPC's own metrics are the gRPC port's alone.
    labels = {
        "grpc_type": "unary",
        "grpc_service": "v1op.v1.OperationService",
        "grpc_method": "GetOperation",
    }
    assert sample(after, "grpc_server_started_total", **labels) == sample(
        before, "grpc_server_started_total", **labels
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "http_status", "code", "route", "protocol"),
    [
        ("GET", "/nowhere", {}, None, 404, "NOT_FOUND", "unmatched", "http"),
        ("DELETE", f"/v1/{MISSING}", {}, None, 405, "UNIMPLEMENTED", "/v1/{path}", "rest"),
        (
            "PATCH",
            f"/v1/{MISSING}:finalize",
            {"Content-Type": "application/json"},
            b"{" * 10,
            400,
            "INVALID_ARGUMENT",
            "/v1/{path}",
            "rest",
        ),
        (
            "POST",
            GET,
            {"Content-Type": "application/json"},
            b" " * (70 * 1024),
            429,
            "RESOURCE_EXHAUSTED",
            GET,
            "connect",
        ),
        (
            "PATCH",
            f"/v1/{MISSING}:finalize",
            {"Content-Type": "application/json"},
            b" " * (70 * 1024),
            413,
            "RESOURCE_EXHAUSTED",
            "/v1/{path}",
            "rest",
        ),
        (
            "POST",
            "/v1op.v1.OperationService/Nothing",
            {"Content-Type": "application/json", "Connect-Protocol-Version": "1"},
            b"{}",
            404,
            "UNIMPLEMENTED",
            "unmatched",
            "connect",
        ),
        (
            "POST",
            GET,
            {"Content-Type": "application/grpc-web+proto"},
            b"\x00\x00",
            200,
            "INVALID_ARGUMENT",
            GET,
            "grpc-web",
        ),
        ("GET", "/healthz", {}, None, 200, "OK", "/healthz", "http"),
        ("GET", "/readyz", {}, None, 200, "OK", "/readyz", "http"),
    ],
)
def test_what_never_reaches_the_dispatcher_is_a_line_too(
    stack, method, path, headers, body, http_status, code, route, protocol
):
    request_id = "req-" + re.sub(r"[^A-Za-z0-9]", "-", f"{method}-{path}-{http_status}")[-100:]
    before = stack.scrape()
    status, answered, _ = request(
        stack, method, path, body=body, headers={**headers, "X-Request-Id": request_id}
    )
    assert status == http_status
    assert answered["X-Request-Id"] == request_id
    line = stack.lines.wait_for(request_id=request_id)
    assert (line["protocol"], line["code"]) == (protocol, code)
    assert line["method"] == f"{method} {path}"
    labels = {"protocol": protocol, "route": route, "grpc_code": code}
    handled = "v1op_http_server_handled_total"
    assert sample(stack.scrape(), handled, **labels) - sample(before, handled, **labels) == 1


def test_a_request_aiohttp_refuses_before_the_app_is_a_line_and_answered_with_its_id(stack):
    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=30) as connection:
        connection.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    request_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"x-request-id:")
    )
    assert json.loads(body)["code"] == 3
    line = stack.lines.wait_for(request_id=request_id)
    assert (line["protocol"], line["method"], line["code"]) == ("http", "-", "INVALID_ARGUMENT")
    assert (
        sample(
            stack.scrape(),
            "v1op_http_server_handled_total",
            protocol="http",
            route="malformed",
            grpc_code="INVALID_ARGUMENT",
        )
        >= 1
    )


# --- the standalone gateway --------------------------------------------------------------------


def test_the_gateway_logs_and_counts_its_calls_and_the_server_knows_them_by_the_same_id(stack, ops):
    op = create(stack, ops)
    token = stack.auth("users/ada")[0][1]
    status, headers, _ = request(
        stack,
        "GET",
        f"/v1/{op.name}",
        headers={"Authorization": token, "X-Request-Id": "req-gw"},
        port=stack.gateway_port,
    )
    assert (status, headers["X-Request-Id"]) == (200, "req-gw")
    # Two lines with its id: the gateway's (REST) and the server's (gRPC, forwarded).
    assert stack.lines.wait_for(request_id="req-gw", protocol="rest")["operation"] == op.name
    server_line = stack.lines.wait_for(request_id="req-gw", protocol="grpc")
    assert (server_line["principal"], server_line["code"]) == ("users/ada", "OK")
    status, headers, _ = request(stack, "GET", "/nowhere", port=stack.gateway_port)
    assert status == 404 and len(headers["X-Request-Id"]) == 32
    samples = stack.scrape(stack.gateway_metrics_port)
    assert (
        sample(
            samples,
            "v1op_http_server_handled_total",
            protocol="rest",
            route="GET /v1/{name=operations/*}",
            grpc_code="OK",
        )
        == 1
    )
    assert (
        sample(
            samples,
            "v1op_http_server_handled_total",
            protocol="http",
            route="unmatched",
            grpc_code="NOT_FOUND",
        )
        == 1
    )


# --- spans --------------------------------------------------------------------------------------


def test_one_span_per_call_with_method_code_principal_and_operation(stack, ops):
    op = create(stack, ops)
    parent_trace = "0af7651916cd43dd8448eb211c80319c"
    ops.GetOperation(
        pb.GetOperationRequest(name=op.name),
        metadata=(
            *stack.auth("users/ada"),
            ("x-request-id", "req-span"),
            ("traceparent", f"00-{parent_trace}-b7ad6b7169203331-01"),
        ),
    )
    with pytest.raises(grpc.RpcError):
        ops.GetOperation(
            pb.GetOperationRequest(name=MISSING),
            metadata=(*stack.auth("users/ada"), ("x-request-id", "req-span-missing")),
        )
    stack.lines.wait_for(request_id="req-span-missing")
    spans = {s.attributes.get("v1op.request_id"): s for s in stack.spans.get_finished_spans()}
    span = spans["req-span"]
    assert span.name == "v1op.v1.OperationService/GetOperation"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == parent_trace  # the caller's trace
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    attributes = dict(span.attributes)
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == "v1op.v1.OperationService"
    assert attributes["rpc.method"] == "GetOperation"
    assert attributes["rpc.grpc.status_code"] == 0
    assert attributes["v1op.principal"] == "users/ada"
    assert attributes["v1op.operation"] == op.name
    assert span.status.status_code is StatusCode.UNSET
    missing = spans["req-span-missing"]
    assert missing.attributes["v1op.code"] == "NOT_FOUND"
    # NOT_FOUND is the caller's doing: the server's span did not fail.
    assert missing.status.status_code is StatusCode.UNSET


def test_a_server_side_code_marks_its_span_failed(stack, channel):
    unknown = channel.unary_unary(
        "/nope.v1.Nothing/Failing", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError):
        unknown(b"", metadata=(("x-request-id", "req-span-failed"),), timeout=10)
    status, _, _ = request(
        stack, "GET", "/nowhere/at/all", headers={"X-Request-Id": "req-span-http"}
    )
    assert status == 404
    stack.lines.wait_for(request_id="req-span-http")
    spans = {s.attributes.get("v1op.request_id"): s for s in stack.spans.get_finished_spans()}
    failed = spans["req-span-failed"]
    assert failed.attributes["v1op.code"] == "UNIMPLEMENTED"
    assert failed.status.status_code is StatusCode.ERROR
    # A request observed once answered still spans the time it took.
    http_span = spans["req-span-http"]
    assert http_span.name == "GET /nowhere/at/all"
    assert http_span.end_time > http_span.start_time


def test_code_names():
    assert [code_name(c) for c in (0, 5, 16, 99)] == ["OK", "NOT_FOUND", "UNAUTHENTICATED", "99"]


def test_grpc_web_text_errors_are_read_from_their_trailers(stack):
    frame = base64.b64encode(b"\x00\x00\x00\x00\x02\xff\xff")
    status, _headers, _body = request(
        stack,
        "POST",
        GET,
        body=frame,
        headers={"Content-Type": "application/grpc-web-text", "X-Request-Id": "req-web-text"},
    )
    assert status == 200
    line = stack.lines.wait_for(request_id="req-web-text")
    assert (line["protocol"], line["code"]) == ("grpc-web", "INVALID_ARGUMENT")


def test_metrics_answer_on_metrics_and_only_http(stack):
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=30) as a:
        assert a.headers["Content-Type"].startswith("text/plain")
        text = a.read().decode()
    assert "# TYPE grpc_server_handling_seconds histogram" in text
    assert "_created" not in text  # go-grpc-prometheus has no such series
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"https://127.0.0.1:{stack.metrics_port}/metrics", timeout=30)
