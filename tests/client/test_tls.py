"""The client and the server over TLS and mutual TLS, certificates made at test time; and
the rule that a bearer token never crosses a network in plaintext unless asked to."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from conftest import Served, running
from google.api_core.exceptions import ServiceUnavailable

from v1op_pb._tls import ServerTLS
from v1op_pb.client import OperationClient
from v1op_pb.client._common import channel_settings, is_loopback
from v1op_pb.server.app import create_server

ADA = "users/ada"


@pytest.fixture(scope="module")
def tls_port(served: Served, certs) -> Iterator[int]:
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key))
    build = lambda: create_server(  # noqa: E731
        "127.0.0.1:0", store=served.store, tokens=served.table, tls=tls
    )
    with running(build) as thread:
        yield thread.port


@pytest.fixture(scope="module")
def mtls_port(served: Served, certs) -> Iterator[int]:
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key), str(certs.ca))
    build = lambda: create_server(  # noqa: E731
        "127.0.0.1:0", store=served.store, tokens=served.table, tls=tls
    )
    with running(build) as thread:
        yield thread.port


# A failed handshake is UNAVAILABLE, which reads retry for a few seconds (it may be a
# server restarting); the failure tests call AbortOperation, which is never retried, so
# they see the first failure. The call never reaches the server: the operation stays.


def client(served: Served, port: int, **tls) -> OperationClient:
    return OperationClient(f"127.0.0.1:{port}", token=served.tokens[ADA], timeout=10, **tls)


def test_tls_with_the_right_ca_reads_and_sends_the_token_as_call_credentials(
    served, tls_port, certs, make_operation
):
    created = make_operation(ADA)
    with client(served, tls_port, root_certificates=certs.read("ca")) as tls_client:
        # The server knew who called: the token went over TLS as call credentials.
        assert tls_client.get(created.name) == created


def test_tls_with_grpc_channel_credentials(served, tls_port, certs, make_operation):
    created = make_operation(ADA)
    credentials = grpc.ssl_channel_credentials(certs.read("ca"))
    with client(served, tls_port, credentials=credentials) as tls_client:
        assert tls_client.get(created.name).name == created.name


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"root_certificates": "wrong_ca"}, id="wrong-ca"),
        pytest.param({"tls": True}, id="system-roots"),  # which never signed the test CA
        pytest.param({}, id="plaintext-to-tls"),
    ],
)
def test_a_server_certificate_the_client_does_not_trust_fails(
    served, tls_port, certs, make_operation, settings
):
    created = make_operation(ADA)
    settings = {k: certs.read(v) if isinstance(v, str) else v for k, v in settings.items()}
    with client(served, tls_port, **settings) as untrusting, pytest.raises(ServiceUnavailable):
        untrusting.abort(created.name)  # not retried: see above


def test_mutual_tls_with_a_client_certificate(served, mtls_port, certs, make_operation):
    created = make_operation(ADA)
    with client(
        served,
        mtls_port,
        root_certificates=certs.read("ca"),
        private_key=certs.read("client_key"),
        certificate_chain=certs.read("client_cert"),
    ) as mtls_client:
        assert mtls_client.get(created.name) == created


@pytest.mark.parametrize("which", ["missing", "signed-by-another-ca"])
def test_mutual_tls_refuses_a_missing_or_foreign_client_certificate(
    served, mtls_port, certs, make_operation, which
):
    created = make_operation(ADA)
    extra = {}
    if which != "missing":
        extra = {
            "private_key": certs.read("wrong_client_key"),
            "certificate_chain": certs.read("wrong_client_cert"),
        }
    with (
        client(served, mtls_port, root_certificates=certs.read("ca"), **extra) as refused,
        pytest.raises(ServiceUnavailable),
    ):
        refused.abort(created.name)  # not retried: see above


def test_a_token_in_plaintext_to_a_remote_address_is_refused():
    with pytest.raises(ValueError, match="refusing to send bearer tokens in plaintext"):
        OperationClient("10.0.0.5:50051", token="secret")
    # Said explicitly, it is allowed (no call is made: channels connect lazily).
    OperationClient("10.0.0.5:50051", token="secret", insecure=True).close()
    # Without a token there is nothing to protect.
    OperationClient("10.0.0.5:50051").close()


@pytest.mark.parametrize(
    ("target", "local"),
    [
        ("127.0.0.1:50051", True),
        ("127.5.6.7:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("ipv4:127.0.0.1:50051", True),
        ("dns:///localhost:50051", True),
        ("unix:/tmp/v1op.sock", True),
        ("10.0.0.5:50051", False),
        ("example.com:443", False),
        ("[2001:db8::1]:50051", False),
        ("localhost.example.com:1", False),
    ],
)
def test_loopback_targets(target, local):
    assert is_loopback(target) is local


def test_contradictory_settings_are_refused(certs):
    with pytest.raises(ValueError, match="contradicts"):
        channel_settings("127.0.0.1:1", insecure=True, root_certificates=certs.read("ca"))
    with pytest.raises(ValueError, match="both private_key and certificate_chain"):
        channel_settings("127.0.0.1:1", private_key=certs.read("client_key"))
