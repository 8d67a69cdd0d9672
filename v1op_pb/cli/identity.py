"""The identity options of ``v1op serve``: the token file, JWTs (``--jwks`` and friends),
SPIFFE client certificates (``--trust-domain``), and the development-only anonymous
principal; and the Authenticator they make."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..server.auth import Authenticator, JwtVerifier, SpiffeIds

__all__ = ["add_identity_options", "authenticator_from", "warn_anonymous"]


def add_identity_options(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group(
        "identity (any combination; a call's bearer token comes first, then its client certificate)"
    )
    group.add_argument("--tokens", metavar="FILE", help="'TOKEN PRINCIPAL' lines")
    group.add_argument(
        "--jwks",
        metavar="PATH_OR_URL",
        help="accept JWT bearer tokens (RS256, ES256, EdDSA) signed by a key of this JSON Web "
        "Key Set: a file, or an https:// URL (fetched when needed, refetched on an unknown "
        "key id at most once a minute)",
    )
    group.add_argument("--jwt-issuer", metavar="ISS", help="the 'iss' a JWT must carry")
    group.add_argument("--jwt-audience", metavar="AUD", help="the 'aud' a JWT must carry")
    group.add_argument(
        "--jwt-principal-claim",
        metavar="CLAIM",
        default="sub",
        help="the JWT claim that holds users/<id> or services/<id> (default: sub)",
    )
    group.add_argument(
        "--trust-domain",
        metavar="DOMAIN",
        help="with --tls-client-ca: a call without a bearer token acts as the client "
        "certificate's SPIFFE ID spiffe://DOMAIN/users/<id> or spiffe://DOMAIN/services/<id>",
    )
    group.add_argument(
        "--dev-anonymous",
        metavar="PRINCIPAL",
        help="FOR DEVELOPMENT ONLY: calls without any credential act as PRINCIPAL",
    )


def authenticator_from(args: argparse.Namespace) -> Authenticator:
    """The Authenticator of the options; ValueError (one line) for a combination that
    cannot work or a file that cannot be used, before anything listens."""
    from ..server.auth import Authenticator, Principal, TokenTable

    anonymous = Principal(args.dev_anonymous) if args.dev_anonymous else None
    if not (args.tokens or args.jwks or args.trust_domain or anonymous):
        raise ValueError(
            "give --tokens FILE, --jwks, or --trust-domain (or, for development only, "
            "--dev-anonymous)"
        )
    jwt, spiffe = _jwt_from(args), _spiffe_from(args)
    tokens = None if args.tokens is None else TokenTable.load(args.tokens)
    return Authenticator(tokens=tokens, jwt=jwt, spiffe=spiffe, anonymous=anonymous)


def _jwt_from(args: argparse.Namespace) -> JwtVerifier | None:
    if args.jwks is None:
        if args.jwt_issuer or args.jwt_audience:
            raise ValueError("--jwt-issuer and --jwt-audience go with --jwks")
        return None
    if not args.jwt_issuer or not args.jwt_audience:
        raise ValueError("--jwks needs --jwt-issuer and --jwt-audience")
    from ..server.auth.jwks import key_source
    from ..server.auth.jwt_verifier import JwtVerifier

    return JwtVerifier(
        key_source(args.jwks),
        issuer=args.jwt_issuer,
        audience=args.jwt_audience,
        principal_claim=args.jwt_principal_claim,
    )


def _spiffe_from(args: argparse.Namespace) -> SpiffeIds | None:
    if args.trust_domain is None:
        return None
    if args.tls_client_ca is None:
        raise ValueError(
            "--trust-domain needs --tls-client-ca: only a verified client certificate names "
            "a principal"
        )
    from ..server.auth.spiffe import SpiffeIds

    return SpiffeIds(args.trust_domain)


def warn_anonymous(args: argparse.Namespace) -> None:
    """Through the server's logging (text or JSON), which serve has set up by then."""
    if args.dev_anonymous:
        logging.getLogger("v1op").warning(
            "calls without a token act as %s (development only)", args.dev_anonymous
        )
