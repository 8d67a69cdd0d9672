"""The one place that decides who a call is, for every protocol: a bearer token (from the
token file, or a JWT), else a SPIFFE client certificate, else the development-only
anonymous principal, else UNAUTHENTICATED."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .principal import CredentialRefused, Principal
from .tokens import TokenTable

if TYPE_CHECKING:
    # The auth extra's parts: a server with a token file alone runs without them.
    from .jwt_verifier import JwtVerifier
    from .spiffe import SpiffeIds

__all__ = ["Authenticator"]


class Authenticator:
    """Any combination of the sources of identity.

    - ``tokens``: opaque bearer tokens of the token file;
    - ``jwt``: bearer tokens that are JWTs, checked against a JWKS (a token the file holds
      is never tried as a JWT);
    - ``spiffe``: for a call without a bearer token, the SPIFFE ID of the verified client
      certificate (mutual TLS);
    - ``anonymous``: who a call with no credential at all acts as: for development only.
      A credential that is given and refused is never replaced by it.
    """

    def __init__(
        self,
        *,
        tokens: TokenTable | None = None,
        jwt: JwtVerifier | None = None,
        spiffe: SpiffeIds | None = None,
        anonymous: Principal | None = None,
    ) -> None:
        self.tokens = tokens
        self.jwt = jwt
        self.spiffe = spiffe
        self.anonymous = anonymous

    async def authenticate(
        self, metadata: Sequence[tuple[str, str]], peer_certificate: bytes | None
    ) -> Principal:
        """The principal of a call: ``metadata`` with lowercase keys, ``peer_certificate``
        the DER of the client certificate the TLS layer verified (None without one).
        CredentialRefused (UNAUTHENTICATED) otherwise."""
        headers = [value for key, value in metadata if key.lower() == "authorization"]
        if len(headers) > 1:
            raise CredentialRefused(f"{len(headers)} authorization headers in one call")
        if headers:
            return await self._bearer(headers[0])
        if peer_certificate is not None and self.spiffe is not None:
            return self.spiffe.principal_of(peer_certificate)
        if self.anonymous is not None:
            return self.anonymous
        without = "no authorization metadata"
        if self.spiffe is not None:
            without += " and no client certificate"
        raise CredentialRefused(without)

    async def _bearer(self, header: str) -> Principal:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise CredentialRefused("the authorization metadata is not 'Bearer <token>'")
        if self.tokens is not None:
            found = self.tokens.lookup(token)
            if found is not None:
                return found
        if self.jwt is not None and self.jwt.looks_like_jwt(token):
            return await self.jwt.principal_of(token)
        raise CredentialRefused("unknown bearer token")
