"""TLS settings read from PEM files, as the server, the gateway and the CLI take them:
standard library only, so that every part can use them."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["ServerTLS", "read_pem"]


def read_pem(path: str, what: str) -> bytes:
    """The bytes of a PEM file; an OSError that says which option it was for."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OSError(f"cannot read the {what} {path!r}: {e.strerror or e}") from e
    if b"-----BEGIN " not in data:
        raise ValueError(f"the {what} {path!r} is not PEM")
    return data


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate chain and key, and for mutual TLS the CA its clients'
    certificates must be signed by (``client_ca``; None: no client certificate asked)."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None
    # The files, for ssl.SSLContext, which loads a chain and key only from files.
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str | None = None

    @classmethod
    def load(cls, cert_file: str, key_file: str, client_ca_file: str | None = None) -> ServerTLS:
        return cls(
            read_pem(cert_file, "TLS certificate"),
            read_pem(key_file, "TLS key"),
            None if client_ca_file is None else read_pem(client_ca_file, "client CA"),
            cert_file,
            key_file,
            client_ca_file,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side SSLContext (for HTTPS) asking for the same client certificates."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as e:
            raise ValueError(f"TLS certificate and key do not load: {e}") from e
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context
