"""Identity end to end: a real ``v1op serve`` over mutual TLS, configured from V1OP_*
variables, taking token-file tokens, JWTs checked against a JWKS it fetches over HTTPS, and
SPIFFE client certificates; the rules apply unchanged whatever the source, and every bad
credential is UNAUTHENTICATED with one message, never INTERNAL or UNKNOWN."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import running
from google.api_core.exceptions import PermissionDenied, Unauthenticated
from jwt_keys import AUDIENCE, ISSUER, JwksServer, ec_key, ed_key, good_claims, hand_signed, jwks
from jwt_keys import rsa_key as make_rsa_key
from spiffe_certs import TRUST_DOMAIN, SpiffeCerts, make_spiffe_certs
from v1op.example.v1 import evaluation_pb2

from v1op_pb._tls import ServerTLS
from v1op_pb.client import OperationClient
from v1op_pb.server.app import create_server
from v1op_pb.server.auth import (
    UNAUTHENTICATED_MESSAGE,
    Authenticator,
    JwtVerifier,
    RemoteKeys,
    SpiffeIds,
)
from v1op_pb.server.store import SQLiteStore

SCRIPT = Path(sys.executable).parent / "v1op"
READY = re.compile(r"v1op: serving gRPC on 127\.0\.0\.1:(\d+)\n\Z")
RSA, EC, ED = make_rsa_key("rsa-e2e"), ec_key("ec-e2e"), ed_key("ed-e2e")
TOKEN_FILE_TOKEN = "tok-ada-from-the-file"


@pytest.fixture(scope="module")
def spiffe_certs(tmp_path_factory) -> SpiffeCerts:
    return make_spiffe_certs(tmp_path_factory.mktemp("spiffe"))


class Serve:
    def __init__(self, process: subprocess.Popen[str], port: int, stderr: Path) -> None:
        self.process, self.port, self.stderr_path = process, port, stderr

    def stderr(self) -> str:
        return self.stderr_path.read_text()


def launch(directory: Path, argv: list[str], env: dict[str, str]) -> Serve:
    stderr_path = directory / "serve.err"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [str(SCRIPT), *argv], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        line = ""
    match = READY.match(line)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"no ready line ({line!r}): {stderr_path.read_text()}")
    return Serve(process, int(match.group(1)), stderr_path)


@pytest.fixture(scope="module")
def jwks_server(certs):
    server = JwksServer(body=jwks(RSA, EC, ED))
    httpd = server.start(str(certs.server_cert), str(certs.server_key))
    yield server
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs, spiffe_certs, jwks_server):
    directory = tmp_path_factory.mktemp("serve-auth")
    tokens = directory / "tokens.txt"
    tokens.write_text(f"{TOKEN_FILE_TOKEN} users/ada\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("V1OP_")}
    env.update(
        # Identity and mutual TLS from the environment, as a deployment would set them.
        V1OP_TOKENS=str(tokens),
        V1OP_JWKS=jwks_server.url,
        V1OP_JWT_ISSUER=ISSUER,
        V1OP_JWT_AUDIENCE=AUDIENCE,
        V1OP_TRUST_DOMAIN=TRUST_DOMAIN,
        V1OP_TLS_CLIENT_CA=str(spiffe_certs.ca),
        V1OP_IMPORT="v1op.example.v1.evaluation_pb2",
        # The JWKS server's certificate is the test CA's: trusted as a private CA is.
        SSL_CERT_FILE=str(certs.ca),
    )
    argv = ["serve", "--grpc-addr", "127.0.0.1:0", "--db", ":memory:"]
    argv += ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    served = launch(directory, argv, env)
    yield served
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0


def connect(port: int, certs, spiffe_certs, cert: str = "no_san", token: str | None = None):
    """A client over mutual TLS (every client needs a certificate of the CA), presenting
    ``cert``'s certificate and, if given, a bearer token."""
    return OperationClient(
        f"127.0.0.1:{port}",
        token=token,
        root_certificates=certs.read("ca"),
        certificate_chain=spiffe_certs.cert(cert).read_bytes(),
        private_key=spiffe_certs.key(cert).read_bytes(),
        timeout=20,
    )


def progress() -> evaluation_pb2.EvaluationProgress:
    return evaluation_pb2.EvaluationProgress(progress=0.5)


def test_every_source_names_a_principal_and_the_rules_hold(
    server, certs, spiffe_certs, jwks_server
):
    # services/eval by its SPIFFE certificate alone starts an operation for users/ada.
    with connect(server.port, certs, spiffe_certs, cert="eval") as evaluator:
        created = evaluator.create(progress(), on_behalf_of="users/ada")
    assert created.creator == "users/ada"
    # users/ada reads it by a JWT of each algorithm, by the token file, by her certificate.
    for key in (RSA, EC, ED):
        jwt_token = key.mint(sub="users/ada")
        with connect(server.port, certs, spiffe_certs, token=jwt_token) as ada:
            assert ada.get(created.name).name == created.name
    assert jwks_server.requests == 1  # fetched once, then kept
    with connect(server.port, certs, spiffe_certs, token=TOKEN_FILE_TOKEN) as ada:
        assert ada.get(created.name).name == created.name
    with connect(server.port, certs, spiffe_certs, cert="ada") as ada:
        assert ada.get(created.name).name == created.name
        # A user may not start operations, whatever proved who she is.
        with pytest.raises(PermissionDenied):
            ada.create(progress(), on_behalf_of="users/ada")
    # users/bob, by a JWT, may not read Ada's operation; a bearer token beats the
    # certificate beside it (eval's, which could read it).
    bob = ED.mint(sub="users/bob")
    with (
        connect(server.port, certs, spiffe_certs, cert="eval", token=bob) as client,
        pytest.raises(PermissionDenied),
    ):
        client.get(created.name)


NOW = int(time.time())
BAD_TOKENS = {
    "expired": lambda: RSA.mint(sub="users/ada", exp=NOW - 3600),
    "not-yet-valid": lambda: EC.mint(sub="users/ada", nbf=NOW + 3600),
    "forged": lambda: make_rsa_key(RSA.kid).mint(sub="users/ada"),
    "alg-none": lambda: hand_signed({"alg": "none", "kid": RSA.kid}, good_claims(), None),
    "hs256-key-confusion": lambda: hand_signed(
        {"alg": "HS256", "kid": RSA.kid}, good_claims(), RSA.public_pem()
    ),
    "wrong-issuer": lambda: ED.mint(sub="users/ada", iss="https://elsewhere.test"),
    "wrong-audience": lambda: ED.mint(sub="users/ada", aud="someone-else"),
    "principal-not-users-or-services": lambda: ED.mint(sub="groups/admins"),
    "unknown-kid": lambda: ed_key("unknown").mint(sub="users/ada"),
    "malformed": lambda: "eyJ.not.a-jwt",
    "unknown-opaque": lambda: "tok-nobody",
}


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_bad_token_is_unauthenticated_even_beside_a_good_certificate(
    server, certs, spiffe_certs, make_token
):
    with (
        connect(server.port, certs, spiffe_certs, cert="eval", token=make_token()) as client,
        pytest.raises(Unauthenticated) as caught,
    ):
        client.list()
    assert caught.value.message == UNAUTHENTICATED_MESSAGE


@pytest.mark.parametrize("cert", ["foreign", "no_san", "two_uris", "nested", "dns_only"])
def test_a_certificate_that_names_no_principal_is_unauthenticated(
    server, certs, spiffe_certs, cert
):
    with (
        connect(server.port, certs, spiffe_certs, cert=cert) as client,
        pytest.raises(Unauthenticated) as caught,
    ):
        client.list()
    assert caught.value.message == UNAUTHENTICATED_MESSAGE


def test_refusals_leave_no_traceback_and_no_token_in_the_log(server):
    log = server.stderr()
    assert "Traceback" not in log and "internal server error" not in log
    assert TOKEN_FILE_TOKEN not in log


# --- a JWKS that cannot be had: an in-process server, mutual TLS -----------------------------


@pytest.fixture(scope="module")
def unreachable_jwks_port(certs, spiffe_certs):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{closed.getsockname()[1]}/jwks.json"
    auth = Authenticator(
        jwt=JwtVerifier(RemoteKeys(url), issuer=ISSUER, audience=AUDIENCE),
        spiffe=SpiffeIds(TRUST_DOMAIN),
    )
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key), str(spiffe_certs.ca))
    store = SQLiteStore(":memory:")
    build = lambda: create_server("127.0.0.1:0", store=store, auth=auth, tls=tls)  # noqa: E731
    with running(build) as thread:
        yield thread.port
    store.close()


def test_an_unreachable_jwks_is_unauthenticated_and_certificates_still_work(
    unreachable_jwks_port, certs, spiffe_certs
):
    token = RSA.mint(sub="users/ada")
    with (
        connect(unreachable_jwks_port, certs, spiffe_certs, token=token) as client,
        pytest.raises(Unauthenticated, match=re.escape(UNAUTHENTICATED_MESSAGE)),
    ):
        client.list()
    with connect(unreachable_jwks_port, certs, spiffe_certs, cert="ada") as ada:
        assert list(ada.list().operations) == []
