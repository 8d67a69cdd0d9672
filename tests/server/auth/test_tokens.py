"""Principals, the token file, and the Authenticator reading bearer tokens of it."""

from __future__ import annotations

import asyncio
import re

import pytest
from google.api_core.exceptions import Unauthenticated

from v1op_pb.server.auth import (
    UNAUTHENTICATED_MESSAGE,
    Authenticator,
    CredentialRefused,
    Principal,
    TokenTable,
)

ADA = Principal("users/ada")
EVALUATOR = Principal("services/evaluator")


def make_table() -> TokenTable:
    return TokenTable({"t-ada": ADA, "t-eval": EVALUATOR})


def authenticate(metadata, *, anonymous=None, peer_certificate=None):
    auth = Authenticator(tokens=make_table(), anonymous=anonymous)
    return asyncio.run(auth.authenticate(metadata, peer_certificate))


def refusal_of(metadata, **kwargs) -> str:
    with pytest.raises(CredentialRefused) as caught:
        authenticate(metadata, **kwargs)
    # Whatever the reason, the caller hears the one message.
    assert caught.value.message == UNAUTHENTICATED_MESSAGE
    return caught.value.refusal


def make_token_file(tmp_path, text: str):
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    return path


# --- Principal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["users/ada", "services/evaluator", "users/a.b@example.com", "users/0", "users/x_y-z"]
)
def test_principal_accepts_users_and_services(name):
    assert Principal(name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "users/",
        "services/",
        "users",
        "groups/ada",
        "Users/ada",
        "users/ada/extra",
        "users/ada bob",
        "users/-ada",
        "users/.ada",
        # A trailing newline must not slip past the end-of-string anchor.
        "users/ada\n",
        " users/ada",
    ],
)
def test_principal_rejects_anything_else(name):
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        Principal(name)


def test_principal_kind():
    assert ADA.is_user and not ADA.is_service
    assert EVALUATOR.is_service and not EVALUATOR.is_user


def test_principals_compare_by_name():
    assert Principal("users/ada") == ADA
    assert len({Principal("users/ada"), ADA, EVALUATOR}) == 2


# --- TokenTable.load -------------------------------------------------------------------------


def test_load_skips_comments_and_blank_lines(tmp_path):
    path = make_token_file(
        tmp_path,
        "# tokens of the development setup\n"
        "\n"
        "   \n"
        "t-ada users/ada   # Ada's laptop\n"
        "\tt-eval\tservices/evaluator\n"
        "# t-old users/old\n",
    )
    table = TokenTable.load(path)
    assert table.lookup("t-ada") == ADA
    assert table.lookup("t-eval") == EVALUATOR
    assert table.lookup("t-old") is None
    assert len(table) == 2


def test_load_accepts_a_string_path(tmp_path):
    path = make_token_file(tmp_path, "t-ada users/ada\n")
    assert TokenTable.load(str(path)).lookup("t-ada") == ADA


def test_load_of_an_empty_file_knows_no_token(tmp_path):
    table = TokenTable.load(make_token_file(tmp_path, ""))
    assert table.lookup("t-ada") is None
    auth = Authenticator(tokens=table)
    with pytest.raises(Unauthenticated):
        asyncio.run(auth.authenticate([("authorization", "Bearer t-ada")], None))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("t-ada", "expected 'TOKEN PRINCIPAL'"),
        ("t-ada users/ada extra", "expected 'TOKEN PRINCIPAL'"),
        ("t-ada groups/admins", "principal 'groups/admins' is not users/<id> or services/<id>"),
    ],
)
def test_load_names_file_and_line_of_a_malformed_line(tmp_path, line, reason):
    path = make_token_file(tmp_path, f"# header\n\nt-eval services/evaluator\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:4: {reason}")):
        TokenTable.load(path)


def test_load_names_the_line_of_a_duplicate_token(tmp_path):
    # Two principals for one token would make authentication depend on line order.
    path = make_token_file(
        tmp_path, "t-ada users/ada\nt-eval services/evaluator\nt-ada users/bob\n"
    )
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: token given twice")):
        TokenTable.load(path)


# --- authenticate ----------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [[], [("x-request-id", "r-1")]])
def test_missing_authorization_is_unauthenticated(metadata):
    assert refusal_of(metadata) == "no authorization metadata"


@pytest.mark.parametrize("metadata", [[], [("x-request-id", "r-1")]])
def test_missing_authorization_is_the_anonymous_principal_when_set(metadata):
    assert authenticate(metadata, anonymous=ADA) == ADA


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme):
    assert authenticate([("authorization", f"{scheme} t-eval")]) == EVALUATOR


def test_the_token_is_found_among_other_metadata():
    metadata = [("x-request-id", "r-1"), ("authorization", "Bearer t-ada"), ("user-agent", "x")]
    assert authenticate(metadata) == ADA


def test_surrounding_spaces_of_the_token_are_ignored():
    assert authenticate([("authorization", "Bearer   t-ada  ")]) == ADA


def test_unknown_token_is_unauthenticated():
    assert refusal_of([("authorization", "Bearer t-mallory")]) == "unknown bearer token"


def test_a_token_is_matched_whole():
    # A prefix or an extension of a known token is a different token.
    for token in ["t-ad", "t-ada2", "T-ADA"]:
        assert refusal_of([("authorization", f"Bearer {token}")]) == "unknown bearer token"


def test_a_bad_token_is_refused_even_with_an_anonymous_principal():
    # anonymous stands in only for a call without a token, never for a wrong one.
    assert refusal_of([("authorization", "Bearer t-mallory")], anonymous=ADA) == (
        "unknown bearer token"
    )


def test_two_authorization_headers_are_refused_even_if_one_is_good():
    metadata = [("authorization", "Bearer t-ada"), ("authorization", "Bearer t-eval")]
    assert refusal_of(metadata) == "2 authorization headers in one call"


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "t-ada", "Bearer", "Bearer ", "Bearer    ", "Token t-ada", ""]
)
def test_other_schemes_and_empty_tokens_are_unauthenticated(header):
    reason = refusal_of([("authorization", header)], anonymous=ADA)
    assert reason == "the authorization metadata is not 'Bearer <token>'"


def test_a_refusal_never_holds_the_token():
    for token in ["t-mallory", "a.b.c"]:
        with pytest.raises(CredentialRefused) as caught:
            authenticate([("authorization", f"Bearer {token}")])
        assert token not in str(caught.value) and token not in caught.value.refusal


def test_a_client_certificate_is_no_identity_without_a_trust_domain():
    # Only --trust-domain makes certificates principals; here the call has no credential.
    assert refusal_of([], peer_certificate=b"0") == "no authorization metadata"
    assert authenticate([], peer_certificate=b"0", anonymous=ADA) == ADA


def test_unauthenticated_is_http_401_and_grpc_unauthenticated():
    with pytest.raises(Unauthenticated) as caught:
        authenticate([])
    assert caught.value.code == 401
    assert caught.value.grpc_status_code.name == "UNAUTHENTICATED"
