"""Why a connection failed, in words a person can act on.

gRPC reports a plaintext call to a TLS port as "Socket closed", and an untrusted server
certificate as a line of BoringSSL internals. When a call ends UNAVAILABLE, a Probe opens
one connection of its own to the server, with Python's ssl, and looks at what the server
does: answers a TLS handshake to a plaintext client, presents a certificate the client's
roots do not trust, is not speaking TLS at all, or asks for a client certificate that was
not given. What it finds replaces gRPC's message; when it finds nothing, the error is left
as it was.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions

__all__ = ["Probe", "explain", "explain_async"]

PROBE_TIMEOUT_SECONDS = 3.0
# What an HTTP/2 client sends first: the preface and an empty SETTINGS frame. A gRPC server
# answers it at once, so the probe never waits for a timeout on a healthy server.
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_TLS_FIX = "give --tls-ca the CA that signed its certificate (root_certificates= in Python)"
_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


@dataclass(frozen=True)
class Probe:
    """How the client connects to ``target``: with TLS or not, with which roots (None:
    the system's), and whether it presents a client certificate."""

    target: str
    tls: bool
    root_certificates: bytes | None = None
    client_certificate: bool = False

    @classmethod
    def of(
        cls,
        target: str,
        channel: Any = None,
        credentials: Any = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
    ) -> Probe | None:
        """The probe of a client's settings; None where the caller brought its own channel
        or grpc credentials, whose settings this cannot know."""
        if channel is not None or credentials is not None:
            return None
        use_tls = tls or root_certificates is not None or certificate_chain is not None
        return cls(target, use_tls, root_certificates, certificate_chain is not None)

    def diagnose(self, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
        """What is wrong between this client and the server, or None when the probe sees
        nothing wrong (or cannot reach it: gRPC's own message says that well). Blocking."""
        address = _host_and_port(self.target)
        if address is None:
            return None
        try:
            raw = socket.create_connection(address, timeout=timeout)
        except OSError:
            return None
        with raw:
            if self.tls:
                return self._over_tls(raw, address[0])
            return self._over_plaintext(raw)

    def _over_plaintext(self, raw: socket.socket) -> str | None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        try:
            context.wrap_socket(raw).close()
        except ssl.SSLError as e:
            # An alert is a TLS server's answer (one that wants a client certificate, say).
            if "ALERT" not in (e.reason or ""):
                return None
        except OSError:
            return None
        return f"the server at {self.target} speaks TLS and this call was plaintext: {_TLS_FIX}"

    def _over_tls(self, raw: socket.socket, host: str) -> str | None:
        try:
            context = ssl.create_default_context(
                cadata=None if self.root_certificates is None else self.root_certificates.decode()
            )
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            return None
        context.set_alpn_protocols(["h2"])
        roots = (
            "the CA given (--tls-ca) does"
            if self.root_certificates
            else "the system's root certificates do"
        )
        try:
            secured = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            return self._untrusted(e, roots)
        except ssl.SSLError as e:
            if e.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"):
                return (
                    f"the server at {self.target} does not speak TLS: connect without --tls-ca "
                    "or --tls (plaintext), or to its TLS port"
                )
            return None
        except OSError:
            return None
        with secured:
            if self.client_certificate:
                return None  # a refused certificate: the probe, which shows none, cannot tell
            try:
                secured.sendall(_HTTP2_HELLO)
                # A server that wants a client certificate ends the connection here (with
                # an alert, or, as gRPC's, silently); a healthy one answers its SETTINGS.
                closed = secured.recv(1) == b""
            except ssl.SSLError as e:
                closed = "CERTIFICATE_REQUIRED" in (e.reason or "")
            except OSError:
                closed = False
        if not closed:
            return None
        return (
            f"the server at {self.target} ended the connection after the TLS handshake, as a "
            "server that asks for a client certificate does (mutual TLS): pass --tls-cert and "
            "--tls-key (certificate_chain= and private_key= in Python)"
        )

    def _untrusted(self, error: ssl.SSLCertVerificationError, roots: str) -> str:
        said = error.verify_message or "not trusted"
        if error.verify_code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
            return (
                f"the server at {self.target} presented a certificate for another name "
                f"({said}): connect to a name the certificate holds"
            )
        if error.verify_code == _EXPIRED:
            return f"the server at {self.target} presented an expired certificate ({said})"
        return (
            f"the server at {self.target} presented a certificate that {roots} not trust "
            f"({said}): {_TLS_FIX}"
        )


def _host_and_port(target: str) -> tuple[str, int] | None:
    """(host, port) of a gRPC target (port 443 when it names none); None for targets the
    probe does not dial (Unix sockets, other resolvers)."""
    if target.startswith(("unix:", "unix-abstract:", "vsock:")):
        return None
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
    if "/" in target:
        return None  # another resolver (xds:///...), or a DNS server named in the target
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "443"
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, "443"
    try:
        return host, int(port)
    except ValueError:
        return None


def explain(
    error: exceptions.GoogleAPICallError, probe: Probe | None
) -> exceptions.GoogleAPICallError:
    """``error``, or for an UNAVAILABLE call whose cause the probe finds, a
    ServiceUnavailable that says it (the original kept in ``errors``). Blocking."""
    if probe is None or not isinstance(error, exceptions.ServiceUnavailable):
        return error
    finding = probe.diagnose()
    if finding is None:
        return error
    explained: exceptions.GoogleAPICallError = exceptions.ServiceUnavailable(
        finding, errors=(error,), response=error.response
    )
    return explained


async def explain_async(
    error: exceptions.GoogleAPICallError, probe: Probe | None
) -> exceptions.GoogleAPICallError:
    """explain, with the probe in a thread: the event loop does not wait on the network."""
    if probe is None or not isinstance(error, exceptions.ServiceUnavailable):
        return error
    return await asyncio.to_thread(explain, error, probe)
