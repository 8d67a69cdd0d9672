"""The real ``v1op serve``, ``v1op gateway`` and ``v1op get/list/wait`` as subprocesses:
TLS and mutual TLS end to end (handshakes and their failures), HTTPS, and payload types
that neither the CLI nor the gateway was given, learned from the server's reflection."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import any_pb2
from grpc_tools import protoc

from v1op_pb import Operation, TypeRegistry
from v1op_pb.client import OperationClient
from v1op_pb.server.store import SQLiteStore

SCRIPT = Path(sys.executable).parent / "v1op"
PROTO_ROOT = Path(__file__).resolve().parents[1] / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
TOKENS = {"services/eval": "tok-eval", "users/ada": "tok-ada"}
START_TIMEOUT = 30.0
SECRET_URL = "type.googleapis.com/acme.v9.Secret"


def make_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "V1OP_TOKEN"}


@dataclass
class Process:
    process: subprocess.Popen[str]
    ports: dict[str, int]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start(*args: str, ready: dict[str, re.Pattern[str]]) -> Process:
    """Run ``v1op *args`` until it has printed a line matching each of ``ready``."""
    process = subprocess.Popen(
        [str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=make_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    ports: dict[str, int] = {}
    while len(ports) < len(ready):
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = ""
        if not line:
            process.kill()
            process.wait()
            raise AssertionError(f"v1op {args[0]} did not report ready")
        for key, pattern in ready.items():
            match = pattern.search(line)
            if match:
                ports[key] = int(match.group(1))
    return Process(process, ports)


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=make_env(),
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def widget_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("remote") / "widget.pb"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{WKT_INCLUDE}", f"--descriptor_set_out={out}"]
    assert protoc.main([*args, "regtest/v1/widget.proto"]) == 0
    return out


@dataclass
class Stack:
    server: Process
    gateway: Process
    db: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.server.ports['grpc']}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, certs, widget_set) -> Iterator[Stack]:
    """``v1op serve`` with mutual TLS (gRPC and HTTPS) that knows Widget from a descriptor
    set, and a ``v1op gateway`` given no types, toward it over mTLS, serving HTTPS."""
    directory = tmp_path_factory.mktemp("stack")
    tokens = directory / "tokens.txt"
    tokens.write_text("".join(f"{t} {who}\n" for who, t in TOKENS.items()))
    db = directory / "ops.db"
    server = start(
        "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
        "--db", str(db), "--tokens", str(tokens), "--descriptor-set", str(widget_set),
        "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
        "--tls-client-ca", str(certs.ca),
        ready={
            "grpc": re.compile(r"serving gRPC on 127\.0\.0\.1:(\d+)"),
            "http": re.compile(r"serving HTTP on 127\.0\.0\.1:(\d+)"),
        },
    )  # fmt: skip
    try:
        gateway = start(
            "gateway", "--http-addr", "127.0.0.1:0",
            "--grpc-target", f"127.0.0.1:{server.ports['grpc']}",
            "--grpc-tls-ca", str(certs.ca), "--grpc-tls-cert", str(certs.client_cert),
            "--grpc-tls-key", str(certs.client_key),
            "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            ready={"http": re.compile(r"serving HTTPS on 127\.0\.0\.1:(\d+)")},
        )  # fmt: skip
    except BaseException:
        server.stop()
        raise
    yield Stack(server, gateway, db)
    assert gateway.stop() == 0
    assert server.stop() == 0


def tls_args(certs, *, ca: str = "ca", client: bool = True) -> list[str]:
    args = ["--tls-ca", str(getattr(certs, ca))]
    if client:
        args += ["--tls-cert", str(certs.client_cert), "--tls-key", str(certs.client_key)]
    return args


def make_widget_operation(stack: Stack, certs, widget_set) -> Operation:
    registry = TypeRegistry(use_default_pool=False)
    registry.add_descriptor_set(widget_set)
    widget = registry.resolve("regtest.v1.Widget")(name="w-1", color=1)
    with OperationClient(
        stack.addr,
        token=TOKENS["services/eval"],
        root_certificates=certs.read("ca"),
        private_key=certs.read("client_key"),
        certificate_chain=certs.read("client_cert"),
    ) as service:
        return service.create(widget, on_behalf_of="users/ada")


WIDGET_JSON = {
    "@type": "type.googleapis.com/regtest.v1.Widget",
    "name": "w-1",
    "color": "COLOR_RED",
}


# --- the CLI over mutual TLS, and types from reflection ---------------------------------------


def test_get_over_mtls_learns_the_payload_type_from_reflection(stack, certs, widget_set):
    created = make_widget_operation(stack, certs, widget_set)
    done = run_cli(
        "get", "--addr", stack.addr, "--token", "tok-ada", *tls_args(certs), created.name
    )
    assert (done.returncode, done.stderr) == (0, "")
    printed = json.loads(done.stdout)
    assert (printed["name"], printed["metadata"]) == (created.name, WIDGET_JSON)


def test_list_and_wait_learn_it_too(stack, certs, widget_set):
    created = make_widget_operation(stack, certs, widget_set)
    listed = run_cli("list", "--addr", stack.addr, "--token", "tok-ada", *tls_args(certs))
    assert listed.returncode == 0, listed.stderr
    by_name = {op["name"]: op for op in json.loads(listed.stdout)["operations"]}
    assert by_name[created.name]["metadata"] == WIDGET_JSON
    waited = run_cli(
        "wait", "--addr", stack.addr, "--token", "tok-ada", *tls_args(certs),
        "--timeout", "0.1", created.name,
    )  # fmt: skip
    assert waited.returncode == 1  # not done in time, printed all the same
    assert json.loads(waited.stdout)["metadata"] == WIDGET_JSON


@pytest.mark.parametrize(
    ("ca", "client"),
    [
        pytest.param("ca", False, id="missing-client-certificate"),
        pytest.param("wrong_ca", True, id="wrong-ca"),
    ],
)
def test_failed_handshakes_exit_2(stack, certs, ca, client):
    done = run_cli(
        "get", "--addr", stack.addr, "--token", "tok-ada",
        *tls_args(certs, ca=ca, client=client), "operations/x",
    )  # fmt: skip
    assert done.returncode == 2
    # One line, which says why (gRPC's C core would log the failed handshake too).
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("v1op: UNAVAILABLE: ")
    assert done.stdout == ""


def test_plaintext_to_the_tls_server_fails(stack):
    done = run_cli("get", "--addr", stack.addr, "--token", "tok-ada", "operations/x")
    assert done.returncode == 2 and "UNAVAILABLE" in done.stderr


def test_a_payload_type_nobody_knows_is_shown_as_base64(stack, certs):
    # Written to the store directly: the server itself refuses payloads it cannot read.
    operation = Operation(name="operations/secret-1", creator="users/ada")
    operation.metadata.CopyFrom(any_pb2.Any(type_url=SECRET_URL, value=b"\x08\x2a"))
    store = SQLiteStore(str(stack.db))

    async def insert() -> None:  # the store's calls are awaited on an event loop
        await store.insert(operation)

    try:
        asyncio.run(insert())
    finally:
        store.close()
    done = run_cli(
        "get", "--addr", stack.addr, "--token", "tok-ada", *tls_args(certs), operation.name
    )
    assert done.returncode == 0, done.stderr
    assert "payload type 'acme.v9.Secret' is unknown" in done.stderr
    printed = json.loads(done.stdout)
    assert printed["metadata"] == {
        "@type": SECRET_URL,
        "value": base64.b64encode(b"\x08\x2a").decode(),
    }
    assert printed["creator"] == "users/ada"

    # The gateway answers a Status that names the type, not a bare 500.
    reply = https_get(stack.gateway.ports["http"], certs, "/v1/operations%2Fsecret-1")
    assert reply[0] == 500
    assert reply[1]["code"] == 13
    assert "'acme.v9.Secret'" in reply[1]["message"]


def assert_widget(written: dict) -> None:
    # The gateway writes every field, as grpc-gateway does: the unset ones too.
    assert written == {**WIDGET_JSON, "part": None, "madeAt": None, "counts": {}}


# --- HTTPS: the standalone gateway and the one beside the server ------------------------------


def https_get(port: int, certs, path: str, *, client_cert: bool = False) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if client_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": "Bearer tok-ada"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_standalone_gateway_over_mtls_learns_the_type_and_serves_https(
    stack, certs, widget_set
):
    created = make_widget_operation(stack, certs, widget_set)
    status, body = https_get(stack.gateway.ports["http"], certs, f"/v1/{created.name}")
    assert status == 200, body
    assert_widget(body["operation"]["metadata"])


def test_the_gateway_beside_the_server_asks_for_the_same_client_certificate(
    stack, certs, widget_set
):
    created = make_widget_operation(stack, certs, widget_set)
    port = stack.server.ports["http"]
    status, body = https_get(port, certs, f"/v1/{created.name}", client_cert=True)
    assert status == 200, body
    assert_widget(body["operation"]["metadata"])
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, certs, f"/v1/{created.name}")


def test_the_gateway_refuses_to_forward_tokens_in_plaintext_to_a_remote_server():
    done = run_cli("gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "10.0.0.5:50051")
    assert done.returncode == 2
    assert "refusing to send bearer tokens in plaintext to 10.0.0.5:50051" in done.stderr


def test_the_cli_refuses_a_token_in_plaintext_to_a_remote_server():
    done = run_cli("get", "--addr", "10.0.0.5:50051", "--token", "t", "operations/x")
    assert done.returncode == 2
    assert "refusing to send bearer tokens in plaintext" in done.stderr
    assert "--insecure" in done.stderr


def test_output_into_a_closed_pipe_stops_quietly(stack, certs, widget_set):
    created = make_widget_operation(stack, certs, widget_set)
    args = ["get", "--addr", stack.addr, "--token", "tok-ada", *tls_args(certs), created.name]
    process = subprocess.Popen(
        [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=make_env()
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head` does once it has what it wants
    err = process.stderr.read()
    assert process.wait(timeout=60) == 2
    assert err == b""


def test_a_gateway_that_does_not_trust_the_server_answers_503(stack, certs):
    gateway = start(
        "gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", stack.addr,
        "--grpc-tls-ca", str(certs.wrong_ca), "--grpc-tls-cert", str(certs.client_cert),
        "--grpc-tls-key", str(certs.client_key),
        ready={"http": re.compile(r"serving HTTP on 127\.0\.0\.1:(\d+)")},
    )  # fmt: skip
    try:
        connection = http.client.HTTPConnection("127.0.0.1", gateway.ports["http"], timeout=60)
        connection.request("GET", "/v1/operations%2Fx", headers={"Authorization": "Bearer t"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    finally:
        assert gateway.stop() == 0
    assert (response.status, body["code"]) == (503, 14)
