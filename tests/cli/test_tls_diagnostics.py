"""TLS mistakes diagnosed in one line each: at start-up of ``v1op serve`` and ``v1op
gateway`` (a key that is not the certificate's, a file that holds no certificate or key
that parses, a CA file without a certificate), and on the client side (a plaintext call to
a TLS port, a server certificate the client does not trust). Certificates by openssl."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from certs import OPENSSL
from conftest import running

from v1op_pb._tls import ServerTLS
from v1op_pb.cli import main
from v1op_pb.server.app import create_server

SCRIPT = Path(sys.executable).parent / "v1op"
BROKEN_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def bad(tmp_path_factory, certs):
    """Files that look like PEM but will not do."""
    directory = tmp_path_factory.mktemp("bad-pem")
    files = {
        "broken.pem": BROKEN_PEM,
        "key-only.pem": certs.server_key.read_text(),
        "words.txt": "just words\n",
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    encrypted = directory / "encrypted.key"
    command = [OPENSSL, "pkey", "-in", certs.server_key, "-out", encrypted, "-aes256"]
    subprocess.run([*command, "-passout", "pass:secret"], check=True, capture_output=True)
    return directory


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("V1OP_")}


def serve_args(cert, key, *more) -> list[str]:
    server = ["serve", "--grpc-addr", "127.0.0.1:0", "--db", ":memory:"]
    server += ["--dev-anonymous", "users/ada"]
    return [*server, "--tls-cert", str(cert), "--tls-key", str(key), *map(str, more)]


def gateway_args(cert, key, *more) -> list[str]:
    gateway = ["gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "127.0.0.1:1"]
    return [*gateway, "--tls-cert", str(cert), "--tls-key", str(key), *map(str, more)]


def one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("v1op: "), err
    return err.strip()


@pytest.mark.parametrize("args", [serve_args, gateway_args], ids=["serve", "gateway"])
def test_a_key_of_another_certificate(capsys, certs, args):
    line = one_error_line(capsys, args(certs.server_cert, certs.client_key))
    assert line == (
        f"v1op: the TLS key '{certs.client_key}' is not the key of the TLS certificate "
        f"'{certs.server_cert}'"
    )


@pytest.mark.parametrize("args", [serve_args, gateway_args], ids=["serve", "gateway"])
@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("broken.pem", None, "the TLS certificate '{cert}' holds no PEM certificate that parses"),
        ("key-only.pem", None, "the TLS certificate '{cert}' holds no PEM certificate that"),
        ("words.txt", None, "the TLS certificate '{cert}' is not PEM"),
        ("missing.pem", None, "cannot read the TLS certificate '{cert}': No such file"),
        (None, "broken.pem", "the TLS key '{key}' holds no PEM private key that parses"),
        (None, "server-cert", "the TLS key '{key}' holds no PEM private key that parses"),
        (None, "encrypted.key", "the TLS key '{key}' is encrypted; give it unencrypted"),
        (None, "missing.key", "cannot read the TLS key '{key}': No such file"),
    ],
)
def test_unreadable_or_invalid_pem(capsys, certs, bad, args, cert, key, message):
    cert = certs.server_cert if cert is None else bad / cert
    key = {None: certs.server_key, "server-cert": certs.server_cert}.get(key, bad / str(key))
    line = one_error_line(capsys, args(cert, key))
    assert line.startswith("v1op: " + message.format(cert=cert, key=key))


@pytest.mark.parametrize(
    ("option", "what"),
    [("--tls-client-ca", "client CA"), ("--grpc-tls-ca", "--grpc-tls-ca")],
)
@pytest.mark.parametrize("ca", ["key-only.pem", "broken.pem"])
def test_a_ca_file_without_a_certificate(capsys, certs, bad, option, what, ca):
    args = gateway_args if option == "--grpc-tls-ca" else serve_args
    line = one_error_line(capsys, args(certs.server_cert, certs.server_key, option, bad / ca))
    assert line == f"v1op: the {what} '{bad / ca}' holds no PEM certificate that parses"


def test_the_gateway_client_certificate_toward_its_server_is_checked(capsys, certs):
    argv = gateway_args(certs.server_cert, certs.server_key)
    argv += ["--grpc-tls-cert", str(certs.client_cert), "--grpc-tls-key", str(certs.server_key)]
    assert one_error_line(capsys, argv) == (
        f"v1op: the --grpc-tls-key '{certs.server_key}' is not the key of the --grpc-tls-cert "
        f"'{certs.client_cert}'"
    )


def test_a_mismatched_key_is_one_line_without_grpc_core_lines(certs):
    # As the operator sees it: a real process, whose stderr gRPC's C core could write to.
    done = subprocess.run(
        [str(SCRIPT), *serve_args(certs.server_cert, certs.client_key)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"v1op: the TLS key '{certs.client_key}' is not the key of the TLS certificate "
        f"'{certs.server_cert}'\n"
    )


# --- the client side -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_port(served, certs):
    tls = ServerTLS.load(str(certs.server_cert), str(certs.server_key))
    build = lambda: create_server(  # noqa: E731
        "127.0.0.1:0", store=served.store, tokens=served.table, tls=tls
    )
    with running(build) as thread:
        yield thread.port


def get(port: int, token: str, *more: str) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT), "get", "--addr", f"127.0.0.1:{port}", "--token", token]
    return subprocess.run(
        [*command, *more, "operations/any"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )


def test_a_plaintext_call_to_a_tls_port_says_to_pass_tls_ca(served, tls_port):
    done = get(tls_port, served.tokens["users/ada"])
    assert done.returncode == 2
    assert done.stderr == (
        f"v1op: UNAVAILABLE: the server at 127.0.0.1:{tls_port} speaks TLS and this call was "
        "plaintext: give --tls-ca the CA that signed its certificate (root_certificates= in "
        "Python)\n"
    )


def test_an_untrusted_server_certificate_says_so(served, tls_port, certs):
    done = get(tls_port, served.tokens["users/ada"], "--tls-ca", str(certs.wrong_ca))
    assert done.returncode == 2
    assert done.stderr == (
        f"v1op: UNAVAILABLE: the server at 127.0.0.1:{tls_port} presented a certificate that "
        "the CA given (--tls-ca) does not trust (unable to get local issuer certificate): "
        "give --tls-ca the CA that signed its certificate (root_certificates= in Python)\n"
    )


def test_a_tls_ca_file_without_a_certificate_is_refused_before_any_call(capsys, certs):
    argv = ["get", "--addr", "127.0.0.1:1", "--tls-ca", str(certs.server_key), "operations/x"]
    assert one_error_line(capsys, argv) == (
        f"v1op: the --tls-ca '{certs.server_key}' holds no PEM certificate that parses"
    )
