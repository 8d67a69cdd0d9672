"""A JWKS fetched over HTTPS from a real server on 127.0.0.1: fetched when first needed,
kept, refetched on an unknown key id at most once a minute (the clock is injected, nothing
sleeps), and unreachable or malformed sets refuse calls rather than fail them."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from jwt_keys import AUDIENCE, ISSUER, JwksServer, ec_key, ed_key, jwks, rsa_key

from v1op_pb.server.auth import (
    CredentialRefused,
    JwksError,
    JwtVerifier,
    Principal,
    RemoteKeys,
    key_source,
)
from v1op_pb.server.auth.jwks import MAX_AGE_SECONDS, REFETCH_SECONDS

FIRST, SECOND = rsa_key("first"), ec_key("second")
ADA = Principal("users/ada")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def jwks_server(certs):
    server = JwksServer()
    httpd = server.start(str(certs.server_cert), str(certs.server_key))
    yield server
    httpd.shutdown()


@pytest.fixture
def served_jwks(jwks_server):
    """The module's server, reset: serving FIRST's key with 200."""
    jwks_server.body, jwks_server.status, jwks_server.requests = jwks(FIRST), 200, 0
    jwks_server.hold = False
    return jwks_server


@pytest.fixture(scope="module")
def trust(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def remote(url: str, trust: ssl.SSLContext, clock: Clock) -> tuple[RemoteKeys, JwtVerifier]:
    keys = RemoteKeys(url, context=trust, clock=clock)
    return keys, JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


async def outcome(verifier: JwtVerifier, token: str) -> Principal | str:
    try:
        return await verifier.principal_of(token)
    except CredentialRefused as e:
        return e.refusal


def test_fetched_when_first_needed_then_kept(served_jwks, trust):
    clock = Clock()
    keys, verifier = remote(served_jwks.url, trust, clock)
    assert served_jwks.requests == 0  # nothing is fetched before a token needs it

    async def calls() -> None:
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA
        clock.now += REFETCH_SECONDS * 2  # still younger than MAX_AGE_SECONDS
        assert await outcome(verifier, FIRST.mint(sub="services/x")) == Principal("services/x")

    asyncio.run(calls())
    assert served_jwks.requests == 1 == keys.fetches


def test_an_unknown_key_id_refetches_at_most_once_a_minute(served_jwks, trust):
    clock = Clock()
    _, verifier = remote(served_jwks.url, trust, clock)
    rotated = SECOND.mint(sub="users/ada")

    async def calls() -> None:
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA
        # The provider rotates its keys; within the minute, no refetch, however many
        # tokens with the new (or a made-up) key id come.
        served_jwks.body = jwks(FIRST, SECOND)
        clock.now += REFETCH_SECONDS - 1
        for token in (rotated, ed_key("made-up").mint(sub="users/ada"), rotated):
            assert "no " in await outcome(verifier, token)
        assert served_jwks.requests == 1
        clock.now += 1  # a minute after the fetch: the unknown id is looked for again
        assert await outcome(verifier, rotated) == ADA
        assert served_jwks.requests == 2
        # The made-up id stays unknown, and the next look is a minute away again.
        clock.now += REFETCH_SECONDS - 1
        assert "made-up" in await outcome(verifier, ed_key("made-up").mint(sub="users/ada"))
        assert served_jwks.requests == 2

    asyncio.run(calls())


def test_a_set_older_than_its_max_age_is_fetched_again_and_removed_keys_go(served_jwks, trust):
    clock = Clock()
    _, verifier = remote(served_jwks.url, trust, clock)

    async def calls() -> None:
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA
        served_jwks.body = jwks(SECOND)  # FIRST is withdrawn (compromised, retired)
        clock.now += MAX_AGE_SECONDS
        assert "no RS256 key" in await outcome(verifier, FIRST.mint(sub="users/ada"))
        assert await outcome(verifier, SECOND.mint(sub="users/ada")) == ADA

    asyncio.run(calls())
    assert served_jwks.requests == 2


def test_concurrent_calls_share_one_fetch(served_jwks, trust):
    _, verifier = remote(served_jwks.url, trust, Clock())

    async def calls() -> list[Principal | str]:
        tokens = [FIRST.mint(sub="users/ada") for _ in range(5)]
        return await asyncio.gather(*(outcome(verifier, t) for t in tokens))

    assert asyncio.run(calls()) == [ADA] * 5
    assert served_jwks.requests == 1


def test_the_fetch_does_not_block_the_event_loop(served_jwks, trust):
    served_jwks.hold = True
    served_jwks.requested.clear()
    served_jwks.release.clear()
    _, verifier = remote(served_jwks.url, trust, Clock())

    async def calls() -> None:
        call = asyncio.ensure_future(outcome(verifier, FIRST.mint(sub="users/ada")))
        # The loop runs on while the server holds the request: it sees the request
        # arrive and releases it. A blocking fetch would hold the loop until the server
        # gave up waiting.
        arrived = await asyncio.to_thread(served_jwks.requested.wait, 30)
        assert arrived and not call.done()
        served_jwks.release.set()
        assert await call == ADA

    asyncio.run(calls())
    assert served_jwks.released_in_time is True


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"oops", "HTTP 500"),
        (404, b"", "HTTP 404"),
        (200, b"<html>not json</html>", "is not JSON"),
        (200, b'{"keys": "none"}', "is not a JWKS"),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "holds no public signing key"),
    ],
    ids=["500", "404", "html", "keys-not-array", "only-hmac"],
)
def test_a_failing_or_malformed_set_refuses_calls(served_jwks, trust, status, body, reason):
    served_jwks.status, served_jwks.body = status, body
    clock = Clock()
    keys, verifier = remote(served_jwks.url, trust, clock)

    async def calls() -> None:
        refusal = await outcome(verifier, FIRST.mint(sub="users/ada"))
        assert isinstance(refusal, str) and "is not available" in refusal and reason in refusal
        # Refused again without asking the provider, until a minute has passed.
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == refusal
        assert keys.fetches == 1
        served_jwks.status, served_jwks.body = 200, jwks(FIRST)
        clock.now += REFETCH_SECONDS
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA

    asyncio.run(calls())


def test_a_failed_refresh_keeps_the_keys_held(served_jwks, trust, caplog):
    clock = Clock()
    _, verifier = remote(served_jwks.url, trust, clock)

    async def calls() -> None:
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA
        served_jwks.status = 503
        clock.now += MAX_AGE_SECONDS
        assert await outcome(verifier, FIRST.mint(sub="users/ada")) == ADA

    asyncio.run(calls())
    assert served_jwks.requests == 2
    (record,) = [r for r in caplog.records if r.name == "v1op.server.auth"]
    assert "HTTP 503" in record.getMessage() and "keeping the keys" in record.getMessage()


def test_an_unreachable_set_refuses_calls(trust):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    _, verifier = remote(f"https://127.0.0.1:{port}/jwks.json", trust, Clock())
    refusal = asyncio.run(outcome(verifier, FIRST.mint(sub="users/ada")))
    assert isinstance(refusal, str) and "is not available" in refusal
    assert "refused" in refusal.lower()


def test_a_server_certificate_not_trusted_refuses_calls(served_jwks):
    # The system's roots never signed the test CA.
    _, verifier = remote(served_jwks.url, ssl.create_default_context(), Clock())
    refusal = asyncio.run(outcome(verifier, FIRST.mint(sub="users/ada")))
    assert isinstance(refusal, str) and "CERTIFICATE_VERIFY_FAILED" in refusal
    assert served_jwks.requests == 0  # the handshake failed before any request


def test_only_https_urls_and_files(tmp_path):
    with pytest.raises(JwksError, match=r"is not https://"):
        key_source("http://127.0.0.1:1/jwks.json")
    assert isinstance(key_source("https://idp.example/jwks.json"), RemoteKeys)
    with pytest.raises(JwksError, match="cannot read the JWKS"):
        key_source(str(tmp_path / "nope.json"))
