"""SPIFFE IDs of client certificates made with openssl: exactly one URI SAN,
spiffe://<trust domain>/users/<id> or /services/<id>; anything else is refused."""

from __future__ import annotations

import asyncio

import pytest
from spiffe_certs import TRUST_DOMAIN, SpiffeCerts, make_spiffe_certs

from v1op_pb.server.auth import (
    UNAUTHENTICATED_MESSAGE,
    Authenticator,
    CredentialRefused,
    Principal,
    SpiffeIds,
    TokenTable,
)

IDS = SpiffeIds(TRUST_DOMAIN)


@pytest.fixture(scope="module")
def spiffe_certs(tmp_path_factory) -> SpiffeCerts:
    return make_spiffe_certs(tmp_path_factory.mktemp("spiffe"))


@pytest.mark.parametrize(("name", "principal"), [("ada", "users/ada"), ("eval", "services/eval")])
def test_a_spiffe_id_of_the_trust_domain_is_its_principal(spiffe_certs, name, principal):
    assert IDS.principal_of(spiffe_certs.der(name)) == Principal(principal)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("foreign", "is not of the trust domain 'example.org'"),
        ("no_san", "has no subject alternative name"),
        ("dns_only", "has 0 URI SANs; a SPIFFE ID is exactly one"),
        ("two_uris", "has 2 URI SANs; a SPIFFE ID is exactly one"),
        ("nested", "names neither users/<id> nor services/<id>"),
        ("groups", "names neither users/<id> nor services/<id>"),
        ("bad_id", "names neither users/<id> nor services/<id>"),
        ("https", "is not spiffe://"),
        ("port", "is not a SPIFFE ID"),
        ("upper", "is not a SPIFFE ID"),
        ("query", "is not a SPIFFE ID"),
    ],
)
def test_other_certificates_are_refused_with_their_reason(spiffe_certs, name, reason):
    with pytest.raises(CredentialRefused) as caught:
        IDS.principal_of(spiffe_certs.der(name))
    assert reason in caught.value.refusal
    assert caught.value.message == UNAUTHENTICATED_MESSAGE


def test_bytes_that_are_no_certificate_are_refused():
    with pytest.raises(CredentialRefused, match="unauthenticated") as caught:
        IDS.principal_of(b"\x30\x03\x02\x01\x00")
    assert "does not parse" in caught.value.refusal


@pytest.mark.parametrize("domain", ["", "Example.org", "example.org/x", "spiffe://example.org"])
def test_a_trust_domain_is_lowercase_letters_digits_dots_dashes(domain):
    with pytest.raises(ValueError, match="trust domain"):
        SpiffeIds(domain)


def authenticate(auth: Authenticator, metadata, der) -> Principal | str:
    try:
        return asyncio.run(auth.authenticate(metadata, der))
    except CredentialRefused as e:
        return e.refusal


def test_the_certificate_counts_only_for_calls_without_a_bearer_token(spiffe_certs):
    auth = Authenticator(tokens=TokenTable({"t-bob": Principal("users/bob")}), spiffe=IDS)
    ada = spiffe_certs.der("ada")
    assert authenticate(auth, [], ada) == Principal("users/ada")
    assert authenticate(auth, [("authorization", "Bearer t-bob")], ada) == Principal("users/bob")
    # A bad token is refused, not replaced by the certificate.
    assert authenticate(auth, [("authorization", "Bearer nope")], ada) == "unknown bearer token"
    assert authenticate(auth, [], None) == "no authorization metadata and no client certificate"


def test_a_refused_certificate_is_not_replaced_by_the_anonymous_principal(spiffe_certs):
    auth = Authenticator(spiffe=IDS, anonymous=Principal("users/dev"))
    assert "trust domain" in authenticate(auth, [], spiffe_certs.der("foreign"))
    assert authenticate(auth, [], None) == Principal("users/dev")
