"""Who is calling: bearer tokens from a token file, JWTs checked against a JWKS, and SPIFFE
client certificates, combined by one Authenticator that every protocol asks.

``Authenticator.authenticate(metadata, peer_certificate)`` returns the Principal, or raises
CredentialRefused: google-api-core's Unauthenticated with one message for every failure,
and the reason in its ``refusal`` attribute, for the server's log.

The JWT and SPIFFE parts need the ``auth`` extra (PyJWT, cryptography); they are imported
when first used, so that a server with a token file alone runs without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .authenticator import Authenticator
from .principal import UNAUTHENTICATED_MESSAGE, CredentialRefused, Principal
from .tokens import TokenTable

if TYPE_CHECKING:
    from .jwks import ALGORITHMS, JwksError, KeySet, RemoteKeys, StaticKeys, key_source
    from .jwt_verifier import LEEWAY_SECONDS, JwtVerifier
    from .spiffe import SpiffeIds

__all__ = [
    "ALGORITHMS",
    "LEEWAY_SECONDS",
    "UNAUTHENTICATED_MESSAGE",
    "Authenticator",
    "CredentialRefused",
    "JwksError",
    "JwtVerifier",
    "KeySet",
    "Principal",
    "RemoteKeys",
    "SpiffeIds",
    "StaticKeys",
    "TokenTable",
    "key_source",
]

_NEEDS_THE_AUTH_EXTRA = {
    "ALGORITHMS": "jwks",
    "JwksError": "jwks",
    "KeySet": "jwks",
    "RemoteKeys": "jwks",
    "StaticKeys": "jwks",
    "key_source": "jwks",
    "LEEWAY_SECONDS": "jwt_verifier",
    "JwtVerifier": "jwt_verifier",
    "SpiffeIds": "spiffe",
}


def __getattr__(name: str) -> Any:
    module = _NEEDS_THE_AUTH_EXTRA.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
