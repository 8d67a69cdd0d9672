"""``v1op serve``'s identity options at start-up: combinations that cannot work and files
that cannot be used are one line and exit status 2; the token file alone needs neither
PyJWT nor cryptography (the auth extra), and JWT without them names the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from v1op_pb.cli import main

BASE = ["serve", "--grpc-addr", "127.0.0.1:0", "--db", ":memory:"]
JWT = ["--jwt-issuer", "https://issuer.test", "--jwt-audience", "v1op"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("V1OP_"):
            monkeypatch.delenv(name)


def error_line(capsys, argv: list[str]) -> str:
    assert main([*BASE, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("v1op: "), err
    return err[len("v1op: ") :].strip()


def test_some_identity_is_required(capsys):
    assert error_line(capsys, []) == (
        "give --tokens FILE, --jwks, or --trust-domain (or, for development only, --dev-anonymous)"
    )


def test_a_trust_domain_needs_mutual_tls(capsys, certs):
    assert error_line(capsys, ["--trust-domain", "example.org"]).startswith(
        "--trust-domain needs --tls-client-ca"
    )
    tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    assert error_line(capsys, [*tls, "--trust-domain", "example.org"]).startswith(
        "--trust-domain needs --tls-client-ca"
    )
    mtls = [*tls, "--tls-client-ca", str(certs.ca)]
    assert "trust domain 'Example.ORG': lowercase" in error_line(
        capsys, [*mtls, "--trust-domain", "Example.ORG"]
    )


def test_jwks_needs_issuer_and_audience_and_they_need_jwks(capsys, tmp_path):
    assert error_line(capsys, ["--jwks", str(tmp_path / "k.json")]) == (
        "--jwks needs --jwt-issuer and --jwt-audience"
    )
    assert error_line(capsys, ["--tokens", "t", *JWT]) == (
        "--jwt-issuer and --jwt-audience go with --jwks"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the JWKS '{path}': No such file or directory"),
        ("{", "the JWKS '{path}' is not JSON"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "the JWKS '{path}' holds no public"),
    ],
    ids=["missing", "not-json", "only-hmac"],
)
def test_a_jwks_file_that_cannot_be_used(capsys, tmp_path, content, message):
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    assert error_line(capsys, ["--jwks", str(path), *JWT]).startswith(message.format(path=path))


def test_a_jwks_url_must_be_https(capsys):
    assert error_line(capsys, ["--jwks", "http://idp.test/jwks.json", *JWT]) == (
        "the JWKS URL 'http://idp.test/jwks.json' is not https://"
    )


# A real interpreter in which some modules cannot be imported, as without the extra.
WITHOUT = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Missing(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    {then}
    """
)


def run_without(blocked: set[str], then: str) -> subprocess.CompletedProcess[str]:
    code = WITHOUT.format(blocked=sorted(blocked), then=then)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_token_file_alone_needs_neither_pyjwt_nor_cryptography():
    then = textwrap.dedent(
        """
        import asyncio
        from v1op_pb.server import Authenticator, Principal, TokenTable, create_server
        from v1op_pb.server.store import SQLiteStore
        auth = Authenticator(tokens=TokenTable({"t": Principal("users/ada")}))
        async def start():
            server, port = await create_server(
                "127.0.0.1:0", store=SQLiteStore(":memory:"), auth=auth
            )
            await server.start()
            await server.stop(None)
        asyncio.run(start())
        print(asyncio.run(auth.authenticate([("authorization", "Bearer t")], None)).name)
        """
    )
    done = run_without({"jwt", "cryptography"}, then)
    assert (done.returncode, done.stdout.strip()) == (0, "users/ada"), done.stderr


@pytest.mark.parametrize("blocked", ["jwt", "cryptography"])
def test_jwt_without_the_auth_extra_names_it(tmp_path, blocked):
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    argv = [*BASE, "--jwks", str(path), *JWT]
    done = run_without({blocked}, f"from v1op_pb.cli import main; sys.exit(main({argv!r}))")
    assert done.returncode == 2, done.stderr
    assert "pip install 'v1op-pb[auth]'" in done.stderr and "Traceback" not in done.stderr
