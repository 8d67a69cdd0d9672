"""The real ``v1op serve`` command in a subprocess, and ``v1op get/list/wait`` against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.rpc import code_pb2
from serving import Serving, launch
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, make_status, pack

SCRIPT = Path(sys.executable).parent / "v1op"
EXAMPLE_TYPES = ["--import", "v1op.example.v1.evaluation_pb2"]
TOKENS = {"services/eval": "tok-eval", "users/ada": "tok-ada", "users/bob": "tok-bob"}
UNKNOWN_NAME = "operations/00000000-0000-4000-8000-000000000000"


def make_env() -> dict[str, str]:
    # V1OP_TOKEN would stand in for a missing --token; the tests say which token they use.
    return {k: v for k, v in os.environ.items() if k != "V1OP_TOKEN"}


def make_tokens_file(directory: Path) -> Path:
    path = directory / "tokens.txt"
    lines = ["# token principal", *(f"{token} {who}" for who, token in TOKENS.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_serve(directory: Path, *args: str) -> Serving:
    """Run ``v1op serve`` with exactly ``args`` and wait for its ready line."""
    return launch(directory, [str(SCRIPT), "serve", "--grpc-addr", "127.0.0.1:0", *args])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else make_env(),
    )


def auth(principal: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[principal]}"),)


def make_operation(addr: str, owner: str = "users/ada", *, response=None, error=None) -> Operation:
    requested = Operation(metadata=pack(evaluation_pb2.EvaluationProgress(progress=0.5)))
    if response is not None:
        requested.done = True
        requested.response.CopyFrom(pack(response))
    elif error is not None:
        requested.done = True
        requested.error.CopyFrom(error)
    with grpc.insecure_channel(addr) as channel:
        request = pb.CreateOperationRequest(operation=requested, on_behalf_of=owner)
        response_ = pb_grpc.OperationServiceStub(channel).CreateOperation(
            request, metadata=auth("services/eval"), timeout=10
        )
    return response_.operation


def list_all(addr: str) -> list[Operation]:
    with grpc.insecure_channel(addr) as channel:
        response = pb_grpc.OperationServiceStub(channel).ListOperations(
            pb.ListOperationsRequest(), metadata=auth("services/eval"), timeout=10
        )
    return list(response.operations)


def make_result(evaluation: str) -> evaluation_pb2.EvaluationResult:
    return evaluation_pb2.EvaluationResult(
        evaluation=evaluation, verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED
    )


def make_wait(name: str, seconds: int) -> lro.WaitOperationRequest:
    request = lro.WaitOperationRequest(name=name)
    request.timeout.FromSeconds(seconds)
    return request


# --- serve: drain and restart ------------------------------------------------------------------


def test_sigterm_drains_in_flight_calls_and_a_restart_keeps_every_operation(tmp_path):
    db, tokens = str(tmp_path / "ops.db"), str(make_tokens_file(tmp_path))
    args = ["--db", db, "--tokens", tokens, *EXAMPLE_TYPES]
    first = start_serve(tmp_path, *args)
    try:
        running_op = make_operation(first.addr)
        created = [
            running_op,
            make_operation(first.addr, response=make_result("evaluations/kept")),
            make_operation(first.addr, "users/bob", error=make_status(code_pb2.INTERNAL, "x")),
        ]
        with grpc.insecure_channel(first.addr) as channel:
            wait = operations_pb2_grpc.OperationsStub(channel).WaitOperation
            short = wait.future(make_wait(running_op.name, 2), metadata=auth("users/ada"))
            # Longer than the server's 10 s drain: it must still end with a clean status.
            long = wait.future(make_wait(running_op.name, 50), metadata=auth("users/ada"))
            # A later call on the same connection answered: both waits reached the server.
            pb_grpc.OperationServiceStub(channel).GetOperation(
                pb.GetOperationRequest(name=running_op.name), metadata=auth("users/ada")
            )
            assert not (short.done() or long.done())
            first.process.send_signal(signal.SIGTERM)
            # The drain lets the short wait run out its 2 s and answer.
            waited = short.result(timeout=20)
            assert (waited.name, waited.done) == (running_op.name, False)
            try:
                assert not long.result(timeout=20).done  # released early: also fine
            except grpc.RpcError as e:
                assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert first.process.wait(timeout=20) == 0
        assert "draining in-flight calls" in first.stderr()
    finally:
        first.stop()

    second = start_serve(tmp_path, *args)
    try:
        assert list_all(second.addr) == created
    finally:
        assert second.stop() == 0


def test_sigterm_right_after_the_ready_line_still_drains_and_exits_0(tmp_path):
    # A supervisor may stop the server the moment it reports ready; the ready line is the
    # promise that SIGTERM is handled. The race is narrow, so try several times.
    codes = []
    for _ in range(10):
        server = start_serve(tmp_path, "--db", ":memory:", "--dev-anonymous", "users/ada")
        server.process.send_signal(signal.SIGTERM)
        codes.append(server.process.wait(timeout=20))
        if codes[-1] != 0:
            break
    assert set(codes) == {0}, f"exit codes {codes}; -15 means killed by SIGTERM, undrained"


# --- the client commands ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory) -> Iterator[Serving]:
    directory = tmp_path_factory.mktemp("serve")
    tokens = str(make_tokens_file(directory))
    server = start_serve(
        directory, "--db", str(directory / "ops.db"), "--tokens", tokens, *EXAMPLE_TYPES
    )
    yield server
    assert server.stop() == 0


def cli(server: Serving, command: str, *args: str, token: str | None = "tok-ada"):
    token_args = ["--token", token] if token else []
    return run_cli(command, "--addr", server.addr, *token_args, *EXAMPLE_TYPES, *args)


def test_get_prints_the_operation_as_json(cli_server):
    created = make_operation(cli_server.addr, response=make_result("evaluations/cli"))
    done = cli(cli_server, "get", created.name)
    assert (done.returncode, done.stderr) == (0, "")
    printed = json.loads(done.stdout)
    assert printed["name"] == created.name
    assert printed["creator"] == "users/ada"
    assert printed["done"] is True
    assert printed["response"] == {
        "@type": "type.googleapis.com/v1op.example.v1.EvaluationResult",
        "evaluation": "evaluations/cli",
        "verdict": "VERDICT_PASSED",
    }


def test_get_without_the_payload_types_learns_them_from_reflection(cli_server):
    # The CLI was not given EvaluationProgress; the server was (--import), and says what it
    # is through its reflection service.
    created = make_operation(cli_server.addr)
    done = run_cli("get", "--addr", cli_server.addr, "--token", "tok-ada", created.name)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["metadata"] == {
        "@type": "type.googleapis.com/v1op.example.v1.EvaluationProgress",
        "progress": 0.5,
    }


def test_get_of_an_unknown_operation_exits_2(cli_server):
    done = cli(cli_server, "get", UNKNOWN_NAME)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "NOT_FOUND" in done.stderr and UNKNOWN_NAME in done.stderr


def test_get_with_an_unknown_token_exits_2(cli_server):
    done = cli(cli_server, "get", UNKNOWN_NAME, token="no-such-token")
    assert done.returncode == 2
    assert "UNAUTHENTICATED" in done.stderr


def test_the_token_may_come_from_the_environment(cli_server):
    created = make_operation(cli_server.addr, "users/bob")
    env = {**make_env(), "V1OP_TOKEN": "tok-bob"}
    done = run_cli("get", "--addr", cli_server.addr, *EXAMPLE_TYPES, created.name, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["creator"] == "users/bob"


def test_list_prints_a_list_response(cli_server):
    created = make_operation(cli_server.addr, "users/bob")
    done = cli(cli_server, "list", token="tok-bob")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert created.name in [op["name"] for op in printed["operations"]]
    assert {op["creator"] for op in printed["operations"]} == {"users/bob"}
    assert printed["totalSize"] == len(printed["operations"])


def test_wait_on_a_finished_operation_exits_0(cli_server):
    created = make_operation(cli_server.addr, error=make_status(code_pb2.INTERNAL, "failed"))
    done = cli(cli_server, "wait", created.name, "--timeout", "10")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["done"] is True
    assert printed["error"] == {"code": code_pb2.INTERNAL, "message": "failed"}


def test_wait_timeout_on_a_running_operation_exits_1(cli_server):
    created = make_operation(cli_server.addr)
    done = cli(cli_server, "wait", created.name, "--timeout", "0.5")
    assert done.returncode == 1
    printed = json.loads(done.stdout)  # the operation as it is, still printed
    assert printed["name"] == created.name and "done" not in printed
    assert f"{created.name} is not done after 0.5s" in done.stderr


def test_wait_returns_once_finalized(cli_server):
    created = make_operation(cli_server.addr)
    command = [str(SCRIPT), "wait", "--addr", cli_server.addr, "--token", "tok-ada"]
    # No sync with the child is needed: whether the finish lands before or during its wait,
    # it must print the finished operation.
    waiting = subprocess.Popen(
        [*command, *EXAMPLE_TYPES, created.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=make_env(),
    )
    finished = Operation(name=created.name, done=True, response=pack(make_result("e-late")))
    with grpc.insecure_channel(cli_server.addr) as channel:
        pb_grpc.OperationServiceStub(channel).FinalizeOperation(
            pb.FinalizeOperationRequest(operation=finished), metadata=auth("services/eval")
        )
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert json.loads(out)["done"] is True


# --- serve: its options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --tokens FILE, --jwks, or --trust-domain (or, for development only,"),
        (["--tokens", "/nonexistent/tokens.txt"], "No such file or directory"),
        (["--dev-anonymous", "ada"], "is not users/<id> or services/<id>"),
    ],
)
def test_serve_refuses_to_start_without_a_way_to_authenticate(tmp_path, args, message):
    done = run_cli("serve", "--grpc-addr", "127.0.0.1:0", "--db", str(tmp_path / "x.db"), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_dev_anonymous_alone_serves_token_less_calls(tmp_path):
    server = start_serve(tmp_path, "--db", ":memory:", "--dev-anonymous", "users/ada")
    try:
        assert "WARNING: calls without a token act as users/ada" in server.stderr()
        listed = run_cli("list", "--addr", server.addr)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {}  # an empty ListOperationsResponse
        # A token is still checked: the anonymous principal stands in only for no token.
        refused = run_cli("list", "--addr", server.addr, "--token", "tok-ada")
        assert refused.returncode == 2 and "UNAUTHENTICATED" in refused.stderr
    finally:
        assert server.stop() == 0


def test_dev_anonymous_calls_act_as_that_principal(tmp_path):
    tokens = str(make_tokens_file(tmp_path))
    server = start_serve(
        tmp_path,
        "--db",
        ":memory:",
        "--tokens",
        tokens,
        "--dev-anonymous",
        "users/ada",
        *EXAMPLE_TYPES,
    )
    try:
        adas = make_operation(server.addr, "users/ada")
        bobs = make_operation(server.addr, "users/bob")
        got = run_cli("get", "--addr", server.addr, *EXAMPLE_TYPES, adas.name)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["name"] == adas.name
        denied = run_cli("get", "--addr", server.addr, bobs.name)
        assert denied.returncode == 2
        assert "PERMISSION_DENIED: users/ada may not read" in denied.stderr
        # With a token, the token's principal acts.
        as_bob = run_cli(
            "get", "--addr", server.addr, "--token", "tok-bob", *EXAMPLE_TYPES, bobs.name
        )
        assert as_bob.returncode == 0, as_bob.stderr
    finally:
        assert server.stop() == 0


def test_the_public_modules_export_the_server_and_the_client():
    # In a child process: importing v1op_pb.server here would leave a `server` attribute on
    # the package for test_public_api to trip over.
    check = (
        "import v1op_pb.client.sync as c, v1op_pb.client.aio as a, v1op_pb.server.app as s\n"
        "import v1op_pb.client, v1op_pb.server\n"
        "assert v1op_pb.server.create_server is s.create_server\n"
        "assert v1op_pb.server.serve is s.serve\n"
        "assert v1op_pb.client.OperationClient is c.OperationClient\n"
        "assert v1op_pb.client.AsyncOperationClient is a.AsyncOperationClient\n"
        "for m in (v1op_pb.client, v1op_pb.server):\n"
        "    assert all(hasattr(m, n) for n in m.__all__), m\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, env=make_env()
    )
    assert done.returncode == 0, done.stderr
