"""Connection failures said in words a person can act on, against real servers (TLS,
mutual TLS, plaintext) with certificates made by openssl: the probe's findings, and the
clients (sync and asyncio) raising them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from conftest import Served, running
from google.api_core.exceptions import ServiceUnavailable

from v1op_pb._tls import ServerTLS
from v1op_pb.client import AsyncOperationClient, OperationClient
from v1op_pb.client.diagnostics import Probe, explain
from v1op_pb.server.app import create_server

ADA = "users/ada"


def serve(served: Served, tls: ServerTLS | None) -> Iterator[int]:
    build = lambda: create_server(  # noqa: E731
        "127.0.0.1:0", store=served.store, tokens=served.table, tls=tls
    )
    with running(build) as thread:
        yield thread.port


@pytest.fixture(scope="module")
def tls_port(served, certs):
    yield from serve(served, ServerTLS.load(str(certs.server_cert), str(certs.server_key)))


@pytest.fixture(scope="module")
def mtls_port(served, certs):
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key), str(certs.ca))
    yield from serve(served, tls)


def at(port: int) -> str:
    return f"127.0.0.1:{port}"


# --- what the probe finds --------------------------------------------------------------------


def test_plaintext_to_a_tls_port(tls_port, mtls_port):
    for port in (tls_port, mtls_port):
        finding = Probe(at(port), tls=False).diagnose()
        assert finding == (
            f"the server at {at(port)} speaks TLS and this call was plaintext: give --tls-ca "
            "the CA that signed its certificate (root_certificates= in Python)"
        )


def test_a_server_certificate_the_roots_do_not_trust(tls_port, certs):
    finding = Probe(at(tls_port), tls=True, root_certificates=certs.read("wrong_ca")).diagnose()
    assert finding is not None
    assert finding.startswith(
        f"the server at {at(tls_port)} presented a certificate that the CA given (--tls-ca) "
        "does not trust (unable to get local issuer certificate)"
    )
    system = Probe(at(tls_port), tls=True).diagnose()
    assert system is not None and "the system's root certificates do not trust" in system


def test_a_certificate_for_another_name(tls_port, certs):
    # The test server's certificate names 127.0.0.1 and localhost, not ::1's other spelling.
    probe = Probe(f"[::ffff:127.0.0.1]:{tls_port}", tls=True, root_certificates=certs.read("ca"))
    finding = probe.diagnose()
    assert finding is not None and "presented a certificate for another name" in finding


def test_tls_to_a_plaintext_port(served):
    assert Probe(served.target, tls=True).diagnose() == (
        f"the server at {served.target} does not speak TLS: connect without --tls-ca or --tls "
        "(plaintext), or to its TLS port"
    )


def test_no_client_certificate_for_a_mutual_tls_server(mtls_port, certs):
    finding = Probe(at(mtls_port), tls=True, root_certificates=certs.read("ca")).diagnose()
    assert finding is not None and "asks for a client certificate" in finding
    assert "--tls-cert and --tls-key" in finding


def test_nothing_is_found_where_nothing_is_wrong(served, tls_port, mtls_port, certs):
    ca = certs.read("ca")
    assert Probe(served.target, tls=False).diagnose() is None
    assert Probe(at(tls_port), tls=True, root_certificates=ca).diagnose() is None
    with_cert = Probe(at(mtls_port), tls=True, root_certificates=ca, client_certificate=True)
    assert with_cert.diagnose() is None


def test_nothing_is_found_where_nothing_listens_or_the_target_is_not_dialled():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert Probe(at(port), tls=False).diagnose() is None
    assert Probe("unix:/tmp/nowhere.sock", tls=False).diagnose() is None
    assert Probe("xds:///service", tls=True).diagnose() is None


def test_a_channel_or_credentials_of_the_caller_are_not_probed():
    assert Probe.of("127.0.0.1:1", channel=object()) is None
    assert Probe.of("127.0.0.1:1", credentials=object()) is None
    assert Probe.of("127.0.0.1:1", root_certificates=b"x") == Probe(
        "127.0.0.1:1", tls=True, root_certificates=b"x"
    )


def test_explain_keeps_other_errors_and_unexplained_ones(served):
    error = ServiceUnavailable("the operation store is unavailable; retry later")
    assert explain(error, Probe(served.target, tls=False)) is error
    assert explain(error, None) is error


# --- the clients raise what the probe found ----------------------------------------------------


def test_the_sync_client_says_the_server_speaks_tls(served, tls_port, make_operation):
    created = make_operation(ADA)
    with (
        OperationClient(at(tls_port), token=served.tokens[ADA], timeout=10) as client,
        pytest.raises(ServiceUnavailable, match="speaks TLS and this call was plaintext") as e,
    ):
        client.abort(created.name)  # not retried, so the first failure is the answer
    (original,) = e.value.errors
    assert "Socket closed" in original.message  # gRPC's words, kept


def test_the_sync_client_says_the_certificate_is_not_trusted(served, tls_port, certs):
    with (
        OperationClient(
            at(tls_port), token=served.tokens[ADA], root_certificates=certs.read("wrong_ca")
        ) as client,
        pytest.raises(ServiceUnavailable, match="does not trust"),
    ):
        client.abort("operations/any")


def test_the_asyncio_client_says_the_server_speaks_tls(served, tls_port):
    async def call() -> None:
        async with AsyncOperationClient(at(tls_port), token=served.tokens[ADA]) as client:
            await client.abort("operations/any")

    with pytest.raises(ServiceUnavailable, match="speaks TLS and this call was plaintext"):
        asyncio.run(call())
