"""``v1op serve`` and ``v1op gateway`` with the default text log, and what either format does
at the edges: the access line's text, start-up failures in one line (a bad --retention, a
database out of reach, a bad OTEL_TRACES_EXPORTER), spans to OTEL_TRACES_EXPORTER=console,
a stderr that nobody reads, and the standalone gateway's own lines and metrics."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

import grpc
import pytest
from processes import SCRIPT, environment, json_lines, launch, write_tokens
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

TOKENS = {"svc-token-text": "services/eval", "ada-token-text": "users/ada"}
SERVICE = (("authorization", "Bearer svc-token-text"),)
ADA = (("authorization", "Bearer ada-token-text"),)
ACCESS = re.compile(
    r"v1op: access time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z protocol=(?P<protocol>\S+) "
    r"method=(?P<method>\S+) code=(?P<code>\S+) duration_ms=[0-9.]+ principal=(?P<principal>\S+) "
    r"peer=ipv4:127\.0\.0\.1:\d+ operation=(?P<operation>\S+) request_id=(?P<request_id>\S+)"
    r"(?P<rest>.*)\Z"
)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return tmp_path_factory.mktemp("serve-text")


@pytest.fixture(scope="module")
def served(directory):
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            str(directory / "ops.db"),
            "--tokens",
            str(write_tokens(directory, TOKENS)),
            "--dev-anonymous",
            "users/anon",
        ],
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def ops(served):
    with grpc.insecure_channel(f"127.0.0.1:{served.ports['gRPC']}") as channel:
        yield pb_grpc.OperationServiceStub(channel)


def create(ops) -> str:
    request = pb.CreateOperationRequest(on_behalf_of="users/ada")
    return ops.CreateOperation(request, metadata=SERVICE, timeout=30).operation.name


def test_text_access_lines_are_key_value_pairs(served, ops):
    name = create(ops)
    ops.GetOperation(
        pb.GetOperationRequest(name=name), metadata=(*ADA, ("x-request-id", "t-1")), timeout=30
    )
    with pytest.raises(grpc.RpcError):
        ops.GetOperation(
            pb.GetOperationRequest(name="operations/none"),
            metadata=(*ADA, ("x-request-id", "t-2")),
            timeout=30,
        )
    ok = ACCESS.match(served.wait_for_stderr("request_id=t-1"))
    assert ok is not None
    assert ok.groupdict() == {
        "protocol": "grpc",
        "method": "/v1op.v1.OperationService/GetOperation",
        "code": "OK",
        "principal": "users/ada",
        "operation": name,
        "request_id": "t-1",
        "rest": "",
    }
    failed = ACCESS.match(served.wait_for_stderr("request_id=t-2"))
    assert failed is not None and failed["code"] == "NOT_FOUND"
    # A value with spaces or quotes is quoted as JSON.
    assert failed["rest"] == " error=\"operation 'operations/none' not found\""


def test_text_start_up_and_shutdown_lines_read_as_before(served):
    assert served.stderr_lines()[0] == (
        "v1op: WARNING: calls without a token act as users/anon (development only)"
    )
    assert served.stop() == 0
    assert served.stderr_lines()[-1] == "v1op: stopping: draining in-flight calls"
    # Nothing but the server's own lines: the gRPC C core said nothing.
    assert all(line.startswith("v1op: ") for line in served.stderr_lines())


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(**env),
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        (["--retention", "3x"], {}, "--retention '3x': give a duration above zero"),
        (["--retention", "0s"], {}, "--retention '0s': give a duration above zero"),
        ([], {"V1OP_RETENTION": "forever"}, "--retention 'forever': give a duration"),
        ([], {"OTEL_TRACES_EXPORTER": "bogus"}, "OTEL_TRACES_EXPORTER names 'bogus'"),
        (["--metrics-addr", "127.0.0.1"], {}, "address '127.0.0.1' has no port"),
    ],
)
def test_a_bad_start_up_value_is_one_line_and_exit_status_2(
    directory, log_format, extra, env, expected
):
    done = run(
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--tokens",
            str(write_tokens(directory, TOKENS)),
            "--log-format",
            log_format,
            *extra,
        ],
        **env,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    if log_format == "json":
        (line,) = json_lines(lines[0])
        assert line["level"] == "error" and expected in line["message"]
    else:
        assert lines[0].startswith("v1op: ") and expected in lines[0]


def test_an_unreachable_database_is_one_json_line_without_its_password():
    done = run(
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--dev-anonymous",
            "users/ada",
            "--db",
            "postgresql://someone:hunter2-secret@127.0.0.1:1/nowhere",
            "--log-format",
            "json",
        ],
    )
    assert done.returncode == 2
    lines = json_lines(done.stderr)
    assert "cannot use PostgreSQL database" in lines[-1]["message"]
    assert "hunter2-secret" not in done.stderr


def test_spans_go_where_otel_traces_exporter_says(directory):
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--tokens",
            str(write_tokens(directory, TOKENS)),
        ],
        env=environment(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="v1op-under-test"),
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{process.ports['gRPC']}") as channel:
            ops = pb_grpc.OperationServiceStub(channel)
            name = create(ops)
    finally:
        assert process.stop() == 0
    output = "".join(process.stdout_rest)
    spans, decoder, at = [], json.JSONDecoder(), 0
    while (at := output.find("{", at)) != -1:
        span, at = decoder.raw_decode(output, at)
        spans.append(span)
    (span,) = [s for s in spans if s["name"] == "v1op.v1.OperationService/CreateOperation"]
    assert span["kind"] == "SpanKind.SERVER"
    assert span["attributes"]["v1op.principal"] == "services/eval"
    assert span["attributes"]["v1op.operation"] == name
    assert span["resource"]["attributes"]["service.name"] == "v1op-under-test"


def test_a_stderr_nobody_reads_does_not_hold_up_calls(directory):
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--tokens",
            str(write_tokens(directory, TOKENS)),
            "--log-format",
            "json",
        ],
        stderr=subprocess.PIPE,  # type: ignore[arg-type]
    )
    calls = 1500  # lines of about 400 bytes: several times what the pipe holds
    try:
        with grpc.insecure_channel(f"127.0.0.1:{process.ports['gRPC']}") as channel:
            ops = pb_grpc.OperationServiceStub(channel)
            name = create(ops)
            for _ in range(calls):
                ops.GetOperation(pb.GetOperationRequest(name=name), metadata=ADA, timeout=30)
    finally:
        process.process.send_signal(15)
        _, stderr = process.process.communicate(timeout=60)
    lines = json_lines(stderr)
    assert sum(line.get("method", "").endswith("GetOperation") for line in lines) == calls


def test_the_gateway_logs_its_requests_and_serves_its_metrics(served_for_gateway, directory):
    server, grpc_port = served_for_gateway
    gateway = launch(
        directory,
        [
            "gateway",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-target",
            f"127.0.0.1:{grpc_port}",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        expect=("metrics", "HTTP"),
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{gateway.ports['HTTP']}/v1/operations/none",
            headers={"Authorization": "Bearer ada-token-text", "X-Request-Id": "t-gw"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 404
        line = json.loads(gateway.wait_for_stderr('"request_id":"t-gw"'))
        assert (line["protocol"], line["code"], line["principal"]) == ("rest", "NOT_FOUND", None)
        # The server behind it knows the call by the same id, and by its principal.
        server_line = ACCESS.match(server.wait_for_stderr("request_id=t-gw"))
        assert server_line is not None
        assert (server_line["protocol"], server_line["principal"]) == ("grpc", "users/ada")
        samples = gateway.scrape()
        key = (
            "v1op_http_server_handled_total",
            (
                ("grpc_code", "NOT_FOUND"),
                ("protocol", "rest"),
                ("route", "GET /v1/{name=operations/*}"),
            ),
        )
        assert samples[key] == 1
    finally:
        assert gateway.stop() == 0
    lines = json_lines(gateway.stderr())
    assert lines[-1]["message"] == "stopping: draining in-flight requests"


@pytest.fixture(scope="module")
def served_for_gateway(directory):
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--tokens",
            str(write_tokens(directory, TOKENS)),
        ],
    )
    yield process, process.ports["gRPC"]
    process.stop()
