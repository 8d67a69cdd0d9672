"""TLS settings read from PEM files, as the server, the gateway and the CLI take them:
standard library only, so that every part can use them.

Every file is checked here, with Python's ssl, before gRPC sees it: gRPC's C core reports a
bad key or certificate as log lines of its own and a failure to listen, which names neither
the file nor the fault. Each check's error is one line naming the file.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["ServerTLS", "check_key_pair", "count_certificates", "read_certificates", "read_pem"]


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


def count_certificates(pem: bytes) -> int:
    """How many X.509 certificates that parse ``pem`` holds (0 for none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError):
        return 0  # "no start line": no certificate block, or none that parses
    return int(context.cert_store_stats()["x509"])


def read_certificates(path: str, what: str) -> bytes:
    """A PEM file that must hold at least one certificate (a CA, a certificate chain)."""
    data = read_pem(path, what)
    if count_certificates(data) == 0:
        raise ValueError(f"the {what} {path!r} holds no PEM certificate that parses")
    return data


def _encrypted() -> bytes:
    raise ValueError("encrypted")


def check_key_pair(cert_file: str, key_file: str, cert_what: str, key_what: str) -> None:
    """That ``key_file`` holds an unencrypted private key of the certificate that starts
    ``cert_file`` (which read_certificates has checked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # The password callback runs only for an encrypted key: gRPC takes none.
        context.load_cert_chain(cert_file, key_file, password=_encrypted)
    except ValueError:
        raise ValueError(
            f"the {key_what} {key_file!r} is encrypted; give it unencrypted "
            "(gRPC reads no password)"
        ) from None
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(
                f"the {key_what} {key_file!r} is not the key of the {cert_what} {cert_file!r}"
            ) from None
        raise ValueError(
            f"the {key_what} {key_file!r} holds no PEM private key that parses"
        ) from None


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
        """The files, checked: OSError or ValueError, one line naming the file, for one that
        cannot be read, holds no certificate (or key) that parses, or a key that is not the
        certificate's."""
        chain = read_certificates(cert_file, "TLS certificate")
        key = read_pem(key_file, "TLS key")
        check_key_pair(cert_file, key_file, "TLS certificate", "TLS key")
        client_ca = None
        if client_ca_file is not None:
            client_ca = read_certificates(client_ca_file, "client CA")
        return cls(chain, key, client_ca, cert_file, key_file, client_ca_file)

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
