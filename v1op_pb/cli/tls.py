"""The TLS options of the commands: a server's (``--tls-cert``, ``--tls-key``,
``--tls-client-ca``) and a client's (``--tls-ca``, ``--tls-cert``/``--tls-key``, ``--tls``,
``--insecure``), and what they turn into."""

from __future__ import annotations

import argparse
from typing import Any

from .._tls import ServerTLS, check_key_pair, read_certificates, read_pem

__all__ = [
    "add_client_tls_options",
    "add_server_tls_options",
    "client_tls_from",
    "server_tls_from",
]


def add_server_tls_options(command: argparse.ArgumentParser, what: str = "gRPC") -> None:
    group = command.add_argument_group(f"TLS ({what})")
    group.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    group.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    group.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="mutual TLS: accept only clients with a certificate signed by this CA",
    )


def server_tls_from(args: argparse.Namespace) -> ServerTLS | None:
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise ValueError("give both --tls-cert and --tls-key")
    return ServerTLS.load(args.tls_cert, args.tls_key, args.tls_client_ca)


def add_client_tls_options(command: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--tls-ca`` and friends; with ``prefix`` (``grpc-``) for a command that is also a
    server (the gateway, toward its gRPC server)."""
    group = command.add_argument_group(f"TLS toward the {'gRPC ' if prefix else ''}server")
    group.add_argument(
        f"--{prefix}tls", action="store_true", help="use TLS with the system's root certificates"
    )
    group.add_argument(
        f"--{prefix}tls-ca",
        metavar="PEM",
        help="use TLS, trusting the server's certificate to this CA",
    )
    if prefix:
        group.add_argument(f"--{prefix}tls-cert", metavar="PEM", help="client certificate (mTLS)")
        group.add_argument(f"--{prefix}tls-key", metavar="PEM", help="its private key")
    else:
        # A client command has no server side: its --tls-cert is the client certificate.
        group.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
        group.add_argument("--tls-key", metavar="PEM", help="its private key")
    group.add_argument(
        f"--{prefix}insecure",
        action="store_true",
        help="plaintext even to a remote address, sending bearer tokens in clear",
    )


def client_tls_from(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """Keyword arguments for channel_settings (and the clients)."""
    key = prefix.replace("-", "_")
    ca, cert, private = (getattr(args, f"{key}tls_{x}") for x in ("ca", "cert", "key"))
    if (cert is None) != (private is None):
        raise ValueError(f"give both --{prefix}tls-cert and --{prefix}tls-key")
    chain = private_key = None
    if cert is not None and private is not None:
        chain = read_certificates(cert, f"--{prefix}tls-cert")
        private_key = read_pem(private, f"--{prefix}tls-key")
        check_key_pair(cert, private, f"--{prefix}tls-cert", f"--{prefix}tls-key")
    return {
        "tls": getattr(args, f"{key}tls"),
        "root_certificates": None if ca is None else read_certificates(ca, f"--{prefix}tls-ca"),
        "certificate_chain": chain,
        "private_key": private_key,
        "insecure": getattr(args, f"{key}insecure"),
    }
