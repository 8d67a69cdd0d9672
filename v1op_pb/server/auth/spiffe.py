"""SPIFFE X.509 identities: a verified client certificate whose one URI SAN is
``spiffe://<trust domain>/users/<id>`` or ``.../services/<id>`` acts as that principal.

The certificate's chain was verified by the TLS layer (against ``--tls-client-ca``) before
a call gets here; this reads the identity it carries."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cryptography import x509

from ..._errors import excerpt
from .principal import CredentialRefused, Principal

__all__ = ["SpiffeIds", "check_trust_domain"]

# SPIFFE ID spec, section 2.1: lowercase letters, digits, dots, dashes and underscores.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+\Z")
_PATH = re.compile(r"/((?:users|services)/[^/]+)\Z")


def check_trust_domain(domain: str) -> str:
    if not _TRUST_DOMAIN.match(domain):
        raise ValueError(
            f"trust domain {domain!r}: lowercase letters, digits, '.', '-' and '_' only "
            "(as in spiffe://example.org/...)"
        )
    return domain


class SpiffeIds:
    """The principals of client certificates of one trust domain."""

    def __init__(self, trust_domain: str) -> None:
        self.trust_domain = check_trust_domain(trust_domain)

    def principal_of(self, certificate_der: bytes) -> Principal:
        uri = self._uri_of(certificate_der)
        parts = urlsplit(uri)
        if parts.scheme != "spiffe":
            raise CredentialRefused(
                f"the client certificate's URI SAN {excerpt(uri)} is not spiffe://"
            )
        # spiffe://user@domain:port/... and queries or fragments are not SPIFFE IDs.
        plain = parts.netloc == parts.hostname and not parts.query and not parts.fragment
        if not plain or "?" in uri or "#" in uri:
            raise CredentialRefused(f"the client certificate's {excerpt(uri)} is not a SPIFFE ID")
        if parts.netloc != self.trust_domain:
            raise CredentialRefused(
                f"the client certificate's {excerpt(uri)} is not of the trust domain "
                f"{self.trust_domain!r}"
            )
        match = _PATH.match(parts.path)
        try:
            if match is None:
                raise ValueError
            return Principal(match.group(1))
        except ValueError:
            raise CredentialRefused(
                f"the client certificate's {excerpt(uri)} names neither users/<id> nor "
                "services/<id>"
            ) from None

    @staticmethod
    def _uri_of(certificate_der: bytes) -> str:
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            raise CredentialRefused(
                "the client certificate has no subject alternative name"
            ) from None
        except ValueError as e:
            raise CredentialRefused(f"the client certificate does not parse: {e}") from None
        uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
        if len(uris) != 1:
            raise CredentialRefused(
                f"the client certificate has {len(uris)} URI SANs; a SPIFFE ID is exactly one"
            )
        return uris[0]
