"""The gRPC server credentials of a ServerTLS: TLS, and mutual TLS with a client CA."""

from __future__ import annotations

import grpc

from .._tls import ServerTLS

__all__ = ["ServerTLS", "server_credentials"]


def server_credentials(tls: ServerTLS) -> grpc.ServerCredentials:
    """Credentials that present ``tls``'s certificate and, with a client CA, refuse a
    client without a certificate signed by it."""
    return grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )
