"""JWT bearer tokens (RFC 7519) checked with PyJWT against a JWKS: signature, issuer,
audience, expiry and not-before; the principal is one claim of the token."""

from __future__ import annotations

import jwt

from ..._errors import excerpt
from .jwks import ALGORITHMS, KeySource
from .principal import CredentialRefused, Principal

__all__ = ["LEEWAY_SECONDS", "JwtVerifier"]

# Clocks of the identity provider and of this server may differ by this much.
LEEWAY_SECONDS = 60.0


class JwtVerifier:
    """Who a JWT says the caller is, once PyJWT has checked it.

    ``issuer`` and ``audience`` are required: a key set is often shared by every service of
    an identity provider, and a token minted for another audience must not work here.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        principal_claim: str = "sub",
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        if not issuer or not audience or not principal_claim:
            raise ValueError("a JWT check needs an issuer, an audience and a principal claim")
        self.keys = keys
        self._issuer = issuer
        self._audience = audience
        self._claim = principal_claim
        self._leeway = leeway

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """A compact JWS has three dot-separated parts; opaque tokens rarely do."""
        return token.count(".") == 2

    async def principal_of(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise CredentialRefused(f"malformed JWT: {_said(e)}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise CredentialRefused(
                f"JWT algorithm {excerpt(algorithm)} refused: only {', '.join(ALGORITHMS)}"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise CredentialRefused(f"the JWT's key id is not a string: {excerpt(kid)}")
        key = await self.keys.key_for(kid, algorithm)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", self._claim]},
            )
        except jwt.PyJWTError as e:
            which = "no key id" if kid is None else f"key id {excerpt(kid)}"
            raise CredentialRefused(f"JWT ({algorithm}, {which}) refused: {_said(e)}") from None
        value = claims[self._claim]
        try:
            if not isinstance(value, str):
                raise ValueError
            return Principal(value)
        except ValueError:
            raise CredentialRefused(
                f"the JWT's {self._claim!r} claim {excerpt(value)} is not "
                "users/<id> or services/<id>"
            ) from None


def _said(error: Exception) -> str:
    """PyJWT's message, bounded: it names the failed check, never the token."""
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."
