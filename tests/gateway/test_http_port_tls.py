"""End to end, with clients nobody here wrote: a real ``v1op serve`` with mutual TLS on both
its ports, called by ``buf curl`` (Connect and gRPC-Web on the HTTP port, gRPC with
reflection v1 on the gRPC port) and by the documented client over REST.

buf comes from the Makefile (``make test`` installs it into .tools/ first). The HTTP port
speaks HTTP/1.1, where server reflection (a bidirectional stream) cannot go: buf curl reads
the schema from ``v1op descriptor-set`` there.

Also here: the process listens on its two ports and nothing else (the HTTP port calls the
services in-process, with no loopback gRPC port beside), and the client certificate a call
came with is what the identity interface is given, on either port.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import queue
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from certs import Certs, make_certs
from eval_studio_client.api import ApiClient, ApiException, Configuration, OperationServiceApi
from google.api_core.exceptions import Unauthenticated
from google.rpc import code_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, from_dict
from v1op_pb.server.app import create_servers
from v1op_pb.server.auth import Principal
from v1op_pb.server.store import SQLiteStore
from v1op_pb.server.tls import ServerTLS

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".tools" / "node_modules" / ".bin" / "buf"
SCRIPT = Path(sys.executable).parent / "v1op"
TOKENS = {"services/eval": "tok-eval", "users/ada": "tok-ada", "users/bob": "tok-bob"}
READY_TIMEOUT = 60
TIMEOUT = 60
GET = "v1op.v1.OperationService/GetOperation"
CREATE = "v1op.v1.OperationService/CreateOperation"
PROGRESS_URL = "type.googleapis.com/v1op.example.v1.EvaluationProgress"


def buf() -> Path:
    if not BUF.exists():
        pytest.fail(
            f"buf is not installed at {BUF}: `make test` installs it (the Makefile's buf "
            "target, npm @bufbuild/buf); run the tests through make",
            pytrace=False,
        )
    return BUF


@dataclass
class Serving:
    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    certs: Certs
    schema: Path

    def tls_flags(self, *, client: bool = True) -> list[str]:
        flags = ["--cacert", str(self.certs.ca)]
        if client:
            flags += ["--cert", str(self.certs.client_cert), "--key", str(self.certs.client_key)]
        return flags


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _port(lines: queue.Queue[str], what: str, stderr: Path) -> int:
    try:
        line = lines.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        raise AssertionError(f"no ready line; stderr: {stderr.read_text()}") from None
    match = re.fullmatch(rf"v1op: serving {what} on 127\.0\.0\.1:(\d+)\n", line)
    assert match is not None, line
    return int(match.group(1))


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> Iterator[Serving]:
    directory = tmp_path_factory.mktemp("http-port-tls")
    certs = make_certs(directory)
    tokens = directory / "tokens.txt"
    tokens.write_text("".join(f"{t} {who}\n" for who, t in TOKENS.items()), encoding="utf-8")
    schema = directory / "v1op.binpb"
    subprocess.run(
        [
            str(SCRIPT),
            "descriptor-set",
            "--import",
            "v1op.example.v1.evaluation_pb2",
            "-o",
            str(schema),
        ],
        check=True,
        timeout=TIMEOUT,
    )
    stderr = directory / "serve.err"
    env = {k: v for k, v in os.environ.items() if k != "V1OP_TOKEN"}
    with open(stderr, "w", encoding="utf-8") as err:
        process = subprocess.Popen(
            [
                str(SCRIPT),
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--db",
                ":memory:",
                "--tokens",
                str(tokens),
                "--import",
                "v1op.example.v1.evaluation_pb2",
                "--tls-cert",
                str(certs.server_cert),
                "--tls-key",
                str(certs.server_key),
                "--tls-client-ca",
                str(certs.ca),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    try:
        lines = _lines(process)
        grpc_port = _port(lines, "gRPC", stderr)
        http_port = _port(lines, "HTTP", stderr)
        yield Serving(process, grpc_port, http_port, certs, schema)
    finally:
        if process.poll() is None:
            process.terminate()
        assert process.wait(timeout=TIMEOUT) == 0, stderr.read_text()


def buf_curl(
    *args: str, data: dict | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(buf()), "curl", *args]
    if data is not None:
        command += ["-d", json.dumps(data)]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)


def create_over_grpc(serving: Serving) -> str:
    """CreateOperation with buf curl over gRPC, its schema from reflection v1."""
    done = buf_curl(
        "--protocol",
        "grpc",
        "--reflect-protocol",
        "grpc-v1",
        *serving.tls_flags(),
        f"https://127.0.0.1:{serving.grpc_port}/{CREATE}",
        data={
            "operation": {"metadata": {"@type": PROGRESS_URL, "progress": 0.5, "message": "half"}},
            "onBehalfOf": "users/ada",
        },
        token=TOKENS["services/eval"],
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["operation"]["name"])


def grpc_get(serving: Serving, name: str) -> Operation:
    credentials = grpc.ssl_channel_credentials(
        serving.certs.read("ca"),
        serving.certs.read("client_key"),
        serving.certs.read("client_cert"),
    )
    with grpc.secure_channel(f"127.0.0.1:{serving.grpc_port}", credentials) as channel:
        return (
            pb_grpc.OperationServiceStub(channel)
            .GetOperation(
                pb.GetOperationRequest(name=name),
                metadata=(("authorization", f"Bearer {TOKENS['users/ada']}"),),
                timeout=TIMEOUT,
            )
            .operation
        )


# --- buf curl --------------------------------------------------------------------------------


def test_buf_curl_grpc_with_reflection_v1(serving):
    name = create_over_grpc(serving)

    listed = buf_curl(
        "--protocol",
        "grpc",
        "--reflect-protocol",
        "grpc-v1",
        "--list-services",
        *serving.tls_flags(),
        f"https://127.0.0.1:{serving.grpc_port}",
    )

    assert listed.returncode == 0, listed.stderr
    assert "v1op.v1.OperationService" in listed.stdout.split()
    assert grpc_get(serving, name).metadata.type_url == PROGRESS_URL


@pytest.mark.parametrize("protocol", ["connect", "grpcweb"])
def test_buf_curl_on_the_http_port(serving, protocol):
    name = create_over_grpc(serving)

    done = buf_curl(
        "--protocol",
        protocol,
        "--schema",
        str(serving.schema),
        *serving.tls_flags(),
        f"https://127.0.0.1:{serving.http_port}/{GET}",
        data={"name": name},
        token=TOKENS["users/ada"],
    )

    assert done.returncode == 0, done.stderr
    assert from_dict(json.loads(done.stdout)["operation"]) == grpc_get(serving, name)


@pytest.mark.parametrize("protocol", ["connect", "grpcweb", "grpc"])
@pytest.mark.parametrize(
    ("token", "name", "code"),
    [
        (None, "operations/00000000-0000-4000-8000-000000000000", code_pb2.UNAUTHENTICATED),
        ("tok-ada", "operations/00000000-0000-4000-8000-000000000000", code_pb2.NOT_FOUND),
        ("tok-ada", "not-a-name", code_pb2.INVALID_ARGUMENT),
    ],
)
def test_buf_curl_reads_each_protocols_error(serving, protocol, token, name, code):
    port = serving.grpc_port if protocol == "grpc" else serving.http_port
    schema = (
        ["--reflect-protocol", "grpc-v1"]
        if protocol == "grpc"
        else ["--schema", str(serving.schema)]
    )

    done = buf_curl(
        "--protocol",
        protocol,
        *schema,
        *serving.tls_flags(),
        f"https://127.0.0.1:{port}/{GET}",
        data={"name": name},
        token=token,
    )

    # buf curl exits with the RPC's code shifted three bits left.
    assert done.returncode == code << 3, (done.returncode, done.stderr)
    assert f'"code": "{code_pb2.Code.Name(code).lower()}"' in done.stdout + done.stderr


@pytest.mark.parametrize("port", ["grpc", "http"])
def test_a_client_without_a_certificate_is_refused_on_both_ports(serving, port):
    number = serving.grpc_port if port == "grpc" else serving.http_port
    protocol = "grpc" if port == "grpc" else "connect"

    done = buf_curl(
        "--protocol",
        protocol,
        "--schema",
        str(serving.schema),
        *serving.tls_flags(client=False),
        f"https://127.0.0.1:{number}/{GET}",
        data={"name": "operations/x"},
        token=TOKENS["users/ada"],
    )

    # The server ends the TLS handshake, so no call is answered: buf curl reports the broken
    # connection (as UNAVAILABLE or CANCELLED, by when it noticed); had the server answered
    # the call, it would be the call's code (here NOT_FOUND).
    assert done.returncode in (code_pb2.UNAVAILABLE << 3, code_pb2.CANCELLED << 3), done.stderr
    assert not done.stdout


@pytest.mark.parametrize("certificate", ["none", "another CA's"])
def test_the_http_port_refuses_a_client_without_a_good_certificate(serving, certificate):
    context = ssl.create_default_context(cafile=str(serving.certs.ca))
    if certificate != "none":
        context.load_cert_chain(serving.certs.wrong_client_cert, serving.certs.wrong_client_key)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", serving.http_port, context=context, timeout=TIMEOUT
        )
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
        finally:
            connection.close()


# --- the documented client over REST ---------------------------------------------------------


def documented_api(serving: Serving, token: str) -> OperationServiceApi:
    configuration = Configuration(
        host=f"https://127.0.0.1:{serving.http_port}", ssl_ca_cert=str(serving.certs.ca)
    )
    configuration.cert_file = str(serving.certs.client_cert)
    configuration.key_file = str(serving.certs.client_key)
    client = ApiClient(configuration)
    client.set_default_header("Authorization", f"Bearer {token}")
    return OperationServiceApi(client)


def test_the_documented_client_over_https_with_a_client_certificate(serving):
    name = create_over_grpc(serving)

    got = documented_api(serving, TOKENS["users/ada"]).operation_service_get_operation(name)

    held = grpc_get(serving, name)
    assert got.operation.name == held.name
    assert got.operation.creator == held.creator == "users/ada"
    assert got.operation.metadata.to_dict()["@type"] == PROGRESS_URL


def test_the_documented_client_sees_a_status_for_another_users_operation(serving):
    name = create_over_grpc(serving)

    with pytest.raises(ApiException) as raised:
        documented_api(serving, TOKENS["users/bob"]).operation_service_get_operation(name)

    assert raised.value.status == 403
    assert json.loads(raised.value.body)["code"] == code_pb2.PERMISSION_DENIED


# --- the process's ports ---------------------------------------------------------------------


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on, from /proc (its sockets' inodes matched
    against the kernel's tables of listening sockets)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_the_process_listens_on_its_two_ports_and_nothing_else(serving):
    assert listening_ports(serving.process.pid) == {serving.grpc_port, serving.http_port}


# --- the client certificate reaches the identity interface -----------------------------------


class RecordingIdentity:
    """An Authenticator (the interface auth implementations fulfil) that records the
    certificate each call came with and lets every call act as users/ada."""

    def __init__(self) -> None:
        self.certificates: list[bytes | None] = []

    async def authenticate(
        self, metadata: Sequence[tuple[str, str]], peer_certificate: bytes | None
    ) -> Principal:
        self.certificates.append(peer_certificate)
        if not metadata:
            raise Unauthenticated("no metadata")
        return Principal("users/ada")


def test_the_client_certificate_is_given_to_the_identity_on_both_ports(tmp_path):
    certs = make_certs(tmp_path)
    identity = RecordingIdentity()
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key), str(certs.ca))
    expected = ssl.PEM_cert_to_DER_cert(certs.read("client_cert").decode())

    async def run() -> None:
        store = SQLiteStore(":memory:")
        servers = await create_servers(
            "127.0.0.1:0", store=store, auth=identity, tls=tls, http_address="127.0.0.1:0"
        )
        await servers.start()
        try:
            credentials = grpc.ssl_channel_credentials(
                certs.read("ca"), certs.read("client_key"), certs.read("client_cert")
            )
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{servers.grpc_port}", credentials
            ) as channel:
                with pytest.raises(grpc.aio.AioRpcError):  # no such operation
                    await pb_grpc.OperationServiceStub(channel).GetOperation(
                        pb.GetOperationRequest(name="operations/x"),
                        metadata=(("x-any", "1"),),
                        timeout=TIMEOUT,
                    )
            context = ssl.create_default_context(cafile=str(certs.ca))
            context.load_cert_chain(certs.client_cert, certs.client_key)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", servers.http_port, ssl=context
            )
            writer.write(
                b"GET /v1/operations/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
        finally:
            await servers.stop(1.0)
            store.close()

    asyncio.run(run())

    assert identity.certificates == [expected, expected]
