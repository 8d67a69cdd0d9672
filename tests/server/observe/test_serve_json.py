"""``v1op serve --log-format json`` as an operator runs it: TLS, the HTTP port, /metrics, a
token file and JWTs, PostgreSQL with a password in its URL, retention of 2 s. Every stderr
line from start-up to shutdown is JSON (the gRPC C core's own lines too, which a plaintext
caller on the TLS port would bring about), each call one access line, a refused credential
logged with its reason, and no secret anywhere."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from processes import json_lines, launch, write_tokens
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation

sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
from jwt_keys import AUDIENCE, ISSUER, jwks, rsa_key

PASSWORD = "pw-that-must-never-show-7f3a"
TOKENS = {"svc-secret-token-91c2": "services/eval", "ada-secret-token-5d0e": "users/ada"}
KEY = rsa_key("key-1")
# Expired beyond the 60 s leeway.
EXPIRED_JWT = KEY.mint(sub="users/ada", exp=1_000_000_000)


@pytest.fixture(scope="module")
def served(tmp_path_factory, certs, postgres):
    directory = tmp_path_factory.mktemp("serve-json")
    (directory / "jwks.json").write_bytes(jwks(KEY))
    database = postgres.new_database()
    user_and_host = database.split("://", 1)[1]
    url = f"postgresql://{user_and_host.replace('@', f':{PASSWORD}@', 1)}"
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--db",
            url,
            "--tokens",
            str(write_tokens(directory, TOKENS)),
            "--jwks",
            str(directory / "jwks.json"),
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
            "--tls-cert",
            str(certs.server_cert),
            "--tls-key",
            str(certs.server_key),
            "--import",
            "v1op.example.v1.evaluation_pb2",
            "--retention",
            "2s",
            "--log-format",
            "json",
        ],
        expect=("gRPC", "HTTP", "metrics"),
    )
    process.database = database  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture(scope="module")
def ops(served, certs):
    credentials = grpc.ssl_channel_credentials(certs.read("ca"))
    with grpc.secure_channel(f"127.0.0.1:{served.ports['gRPC']}", credentials) as channel:
        yield pb_grpc.OperationServiceStub(channel)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


SERVICE = auth("svc-secret-token-91c2")
ADA = auth("ada-secret-token-5d0e")


def create(ops) -> Operation:
    request = pb.CreateOperationRequest(on_behalf_of="users/ada")
    return ops.CreateOperation(request, metadata=SERVICE, timeout=30).operation


def access_line(served, request_id: str) -> dict:
    return json.loads(served.wait_for_stderr(f'"request_id":"{request_id}"'))


def test_a_call_is_one_json_access_line(served, ops):
    op = create(ops)
    ops.GetOperation(
        pb.GetOperationRequest(name=op.name), metadata=(*ADA, ("x-request-id", "j-1")), timeout=30
    )
    line = access_line(served, "j-1")
    assert line["logger"] == "v1op.access" and line["level"] == "info"
    assert line["time"].endswith("Z")
    assert {k: line[k] for k in ("protocol", "method", "code", "principal", "operation")} == {
        "protocol": "grpc",
        "method": "/v1op.v1.OperationService/GetOperation",
        "code": "OK",
        "principal": "users/ada",
        "operation": op.name,
    }
    assert isinstance(line["duration_ms"], float)
    assert line["peer"].startswith("ipv4:127.0.0.1:")


def test_refused_credentials_log_why_and_callers_hear_unauthenticated(served, ops):
    for request_id, metadata, why in [
        ("j-unknown", auth("no-such-token"), "unknown bearer token"),
        (
            "j-expired",
            auth(EXPIRED_JWT),
            "JWT (RS256, key id 'key-1') refused: Signature has expired",
        ),
        ("j-none", (), "no authorization metadata"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            ops.GetOperation(
                pb.GetOperationRequest(name="operations/x"),
                metadata=(*metadata, ("x-request-id", request_id)),
                timeout=30,
            )
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.details() == (
            "unauthenticated: the call carries no credential this server accepts"
        )
        line = access_line(served, request_id)
        assert (line["code"], line["refusal"], line["principal"]) == ("UNAUTHENTICATED", why, None)


def test_the_http_port_gives_back_the_callers_request_id(served, certs):
    context = ssl.create_default_context(cafile=str(certs.ca))
    request = urllib.request.Request(
        f"https://127.0.0.1:{served.ports['HTTP']}/v1/operations/missing",
        headers={"Authorization": "Bearer ada-secret-token-5d0e", "X-Request-Id": "j-http"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, context=context, timeout=30)
    assert caught.value.code == 404
    assert caught.value.headers["X-Request-Id"] == "j-http"
    line = access_line(served, "j-http")
    assert (line["protocol"], line["code"]) == ("rest", "NOT_FOUND")


def test_a_plaintext_caller_on_the_tls_port_adds_no_line_of_the_c_core(served):
    with grpc.insecure_channel(f"127.0.0.1:{served.ports['gRPC']}") as channel:
        stub = pb_grpc.OperationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetOperation(pb.GetOperationRequest(name="operations/x"), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    # Checked with every other line at shutdown: the C core wrote nothing of its own.


def test_a_database_that_drops_connections_is_logged_without_the_password(served, ops):
    import psycopg

    with psycopg.connect(served.database, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    codes = set()
    for _ in range(3):
        try:
            ops.GetOperation(
                pb.GetOperationRequest(name=create(ops).name), metadata=ADA, timeout=30
            )
            codes.add("OK")
        except grpc.RpcError as e:
            codes.add(e.code().name)
    assert codes <= {"OK", "UNAVAILABLE"}


def test_retention_purges_what_is_done_and_the_name_answers_not_found(served, ops):
    running = create(ops)
    done = create(ops)
    finished = Operation(name=done.name, done=True)
    finished.response.Pack(pb.GetOperationRequest())
    ops.FinalizeOperation(
        pb.FinalizeOperationRequest(operation=finished), metadata=SERVICE, timeout=30
    )
    served.wait_for_stderr("retention: purged")
    with pytest.raises(grpc.RpcError) as caught:
        ops.GetOperation(pb.GetOperationRequest(name=done.name), metadata=ADA, timeout=30)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    still = ops.GetOperation(pb.GetOperationRequest(name=running.name), metadata=ADA, timeout=30)
    assert still.operation.name == running.name
    samples = served.scrape()
    assert samples[("v1op_retention_purged_total", ())] >= 1


def test_last_every_stderr_line_is_json_from_start_up_to_shutdown_and_holds_no_secret(served):
    assert served.stop() == 0
    text = served.stderr()
    lines = json_lines(text)
    messages = [line["message"] for line in lines]
    assert messages[0].startswith("retention: purging operations done or deleted")
    assert "stopping: draining in-flight calls" in messages
    assert any(line.get("refusal") for line in lines)
    assert any("PostgreSQL database" in m for m in messages)  # the dropped connections
    for secret in (PASSWORD, EXPIRED_JWT, *TOKENS):
        assert secret not in text
