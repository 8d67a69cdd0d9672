"""JWT bearer tokens checked against a JWKS file: real RSA, EC P-256 and Ed25519 keys, and
tokens minted here with PyJWT; every bad token is UNAUTHENTICATED with its reason kept."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt_keys import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    ec_key,
    ed_key,
    good_claims,
    hand_signed,
    jwks,
    rsa_key,
)

from v1op_pb.server.auth import (
    UNAUTHENTICATED_MESSAGE,
    Authenticator,
    CredentialRefused,
    JwksError,
    JwtVerifier,
    KeySet,
    Principal,
    StaticKeys,
    TokenTable,
)

RSA, EC, ED = rsa_key(), ec_key(), ed_key()
KEYS = {"RS256": RSA, "ES256": EC, "EdDSA": ED}
ADA = Principal("users/ada")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_bytes(jwks(RSA, EC, ED))
    return path


@pytest.fixture(scope="module")
def verifier(keys_file) -> JwtVerifier:
    return JwtVerifier(StaticKeys.load(str(keys_file)), issuer=ISSUER, audience=AUDIENCE)


def principal_of(verifier: JwtVerifier, token: str) -> Principal:
    return asyncio.run(verifier.principal_of(token))


def refusal(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(CredentialRefused) as caught:
        principal_of(verifier, token)
    assert caught.value.message == UNAUTHENTICATED_MESSAGE
    assert token not in caught.value.refusal  # the reason never holds the token
    return caught.value.refusal


@pytest.mark.parametrize("algorithm", list(KEYS))
@pytest.mark.parametrize("who", ["users/ada", "services/evaluator"])
def test_a_good_token_of_each_algorithm_names_its_principal(verifier, algorithm, who):
    assert principal_of(verifier, KEYS[algorithm].mint(sub=who)) == Principal(who)


def test_another_claim_can_hold_the_principal(keys_file):
    verifier = JwtVerifier(
        StaticKeys.load(str(keys_file)),
        issuer=ISSUER,
        audience=AUDIENCE,
        principal_claim="v1op/principal",
    )
    token = EC.mint(sub="someone@example.com", **{"v1op/principal": "services/eval"})
    assert principal_of(verifier, token) == Principal("services/eval")
    assert 'missing the "v1op/principal" claim' in refusal(verifier, EC.mint(sub="users/ada"))


def test_an_audience_list_holding_ours_is_accepted(verifier):
    assert principal_of(verifier, RSA.mint(sub="users/ada", aud=["other", AUDIENCE])) == ADA


@pytest.mark.parametrize("algorithm", list(KEYS))
def test_expiry_and_not_before_have_60_seconds_of_leeway(verifier, algorithm):
    key, now = KEYS[algorithm], int(time.time())
    assert principal_of(verifier, key.mint(sub="users/ada", exp=now - 30)) == ADA
    assert principal_of(verifier, key.mint(sub="users/ada", nbf=now + 30)) == ADA
    assert "expired" in refusal(verifier, key.mint(sub="users/ada", exp=now - 120))
    assert "not yet valid" in refusal(verifier, key.mint(sub="users/ada", nbf=now + 120))


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "..", "e30.e30.e30", "x" * 5000 + ".y.z"],
    ids=["one-part", "not-base64-json", "empty-parts", "empty-objects", "huge"],
)
def test_malformed_tokens_are_refused(verifier, token):
    assert re.search(r"malformed JWT|algorithm", refusal(verifier, token))


def test_a_token_signed_by_another_key_of_the_same_id_is_forged(verifier):
    impostor = rsa_key(kid=RSA.kid)
    assert "Signature verification failed" in refusal(verifier, impostor.mint(sub="users/ada"))


def test_a_token_with_a_changed_payload_is_forged(verifier):
    header, _, signature = EC.mint(sub="users/bob").split(".")
    tampered = EC.mint(sub="users/ada").split(".")[1]
    assert "Signature verification failed" in refusal(verifier, f"{header}.{tampered}.{signature}")


def test_alg_none_is_refused(verifier):
    token = hand_signed({"alg": "none", "kid": RSA.kid}, good_claims(), None)
    assert refusal(verifier, token) == "JWT algorithm 'none' refused: only RS256, ES256, EdDSA"


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=lambda k: k.algorithm)
def test_hs256_with_the_public_key_as_secret_is_refused(verifier, key):
    # The key-confusion attack: a verifier that let the token choose HMAC would check it
    # with the public key, which anyone has, as the secret.
    token = hand_signed({"alg": "HS256", "kid": key.kid}, good_claims(), key.public_pem())
    assert refusal(verifier, token) == "JWT algorithm 'HS256' refused: only RS256, ES256, EdDSA"


def test_a_token_naming_another_algorithm_than_its_key_is_refused(verifier):
    # An ES256 signature presented under the RSA key's id: the key decides the algorithm.
    token = EC.mint(sub="users/ada", header={"kid": RSA.kid})
    assert refusal(verifier, token) == f"the JWT says ES256 but key '{RSA.kid}' is for RS256"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://elsewhere.test"}, "Invalid issuer"),
        ({"aud": "another-service"}, "Audience doesn't match"),
        ({"exp": None}, 'missing the "exp" claim'),
        ({"aud": None}, 'missing the "aud" claim'),
        ({"iss": None}, 'missing the "iss" claim'),
    ],
    ids=["wrong-issuer", "wrong-audience", "no-exp", "no-aud", "no-iss"],
)
def test_issuer_audience_and_expiry_are_required(verifier, claims, reason):
    assert reason in refusal(verifier, RSA.mint({"sub": "users/ada", **claims}))


@pytest.mark.parametrize(
    "sub", ["groups/admins", "users/", "ada", "users/ada/x", 42, ["users/ada"], None]
)
def test_the_principal_claim_must_be_users_or_services(verifier, sub):
    # PyJWT refuses a missing or non-string sub itself; the rest is refused by the principal
    # check.
    assert re.search(
        r"""['"]sub['"]|Subject must be a string""", refusal(verifier, ED.mint(sub=sub))
    )


def test_an_unknown_key_id_is_refused(verifier):
    stranger = ec_key(kid="who-knows")
    assert refusal(verifier, stranger.mint(sub="users/ada")) == (
        f"no ES256 key in the JWKS {verifier.keys.source} for a JWT with key id 'who-knows'"
    )


def test_a_token_without_key_id_needs_a_set_with_one_key_of_its_algorithm(tmp_path, verifier):
    one = tmp_path / "one.json"
    one.write_bytes(jwks(RSA))
    alone = JwtVerifier(StaticKeys.load(str(one)), issuer=ISSUER, audience=AUDIENCE)
    token = RSA.mint(sub="users/ada", header={"kid": None})
    assert principal_of(alone, token) == ADA
    two = tmp_path / "two.json"
    two.write_bytes(jwks(RSA, rsa_key("rsa-2")))
    both = JwtVerifier(StaticKeys.load(str(two)), issuer=ISSUER, audience=AUDIENCE)
    assert "names no key id (kid) and 2 RS256 keys fit" in refusal(both, token)


# --- the key set file ------------------------------------------------------------------------


# Newer PyJWT warns when it signs with a short RSA key, as this test does on purpose.
@pytest.mark.filterwarnings("ignore:The RSA key is")
def test_keys_of_other_kinds_are_left_out_and_a_set_needs_one_usable(tmp_path):
    small, usable = rsa_key("small", bits=1024), ec_key("usable")
    p384 = SigningKey("p384", "ES384", ec.generate_private_key(ec.SECP384R1()))
    # A P-384 key that claims ES256: the curve is checked, not only the label.
    posing = {**p384.jwk(), "kid": "posing", "alg": "ES256"}
    secret = {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}
    encryption = {**rsa_key("enc").jwk(), "use": "enc"}
    path = tmp_path / "mixed.json"
    path.write_text(
        json.dumps(
            {"keys": [small.jwk(), secret, encryption, p384.jwk(), posing, "junk", usable.jwk()]}
        )
    )
    keys = StaticKeys.load(str(path))
    verifier = JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    assert principal_of(verifier, usable.mint(sub="users/ada")) == ADA
    for left_out in (small, rsa_key("enc")):
        assert "no RS256 key" in refusal(verifier, left_out.mint(sub="users/ada"))
    assert "algorithm 'ES384' refused" in refusal(verifier, p384.mint(sub="users/ada"))
    assert [k.kid for k in KeySet.parse(path.read_bytes(), "mixed").keys] == ["usable"]
    path.write_text(json.dumps({"keys": [small.jwk(), secret, encryption]}))
    with pytest.raises(JwksError, match=r"holds no public signing key for RS256, ES256, EdDSA"):
        StaticKeys.load(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "is not JSON"),
        (b"[]", "is not a JWKS"),
        (b'{"keys": {}}', "is not a JWKS"),
        (b'{"keys": []}', "holds no public signing key"),
        (b"{" * 100_000, "is not JSON"),
    ],
    ids=["not-json", "array", "keys-not-array", "no-keys", "deep"],
)
def test_a_malformed_key_set_file_is_refused_naming_it(tmp_path, content, message):
    path = tmp_path / "jwks.json"
    path.write_bytes(content)
    with pytest.raises(JwksError, match=re.escape(message)) as caught:
        StaticKeys.load(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreadable_key_set_file_is_refused_naming_it(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(JwksError, match=re.escape(f"cannot read the JWKS '{missing}'")):
        StaticKeys.load(str(missing))


# --- with the token file ---------------------------------------------------------------------


def test_a_token_of_the_file_is_never_tried_as_a_jwt_and_jwts_need_the_jwks(verifier):
    dotted = "a.b.c"  # an opaque token that looks like a JWT
    auth = Authenticator(tokens=TokenTable({dotted: ADA}), jwt=verifier)
    assert asyncio.run(auth.authenticate([("authorization", f"Bearer {dotted}")], None)) == ADA
    jwt_token = RSA.mint(sub="services/eval")
    assert asyncio.run(
        auth.authenticate([("authorization", f"Bearer {jwt_token}")], None)
    ) == Principal("services/eval")
    tokens_only = Authenticator(tokens=TokenTable({dotted: ADA}))
    with pytest.raises(CredentialRefused) as caught:
        asyncio.run(tokens_only.authenticate([("authorization", f"Bearer {jwt_token}")], None))
    assert caught.value.refusal == "unknown bearer token"
