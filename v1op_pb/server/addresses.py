"""Checking a listening address before gRPC sees it, so that a mistake is one clear line
(gRPC takes a missing port for 443, and logs its own lines when a bind fails)."""

from __future__ import annotations

import socket

__all__ = ["check_free", "split_address"]


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` or ``[V6]:PORT``; ValueError naming the address
    otherwise."""
    host, colon, port_text = address.rpartition(":")
    if not colon or not host or not port_text.isdigit() or host.endswith(":"):
        raise ValueError(f"address {address!r} has no port: give HOST:PORT (port 0: any free)")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"address {address!r}: port {port} is over 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def check_free(address: str) -> None:
    """OSError when nothing could listen on ``address`` now (in use, not this machine's),
    bound as gRPC binds without port sharing."""
    host, port = split_address(address)
    if port == 0:
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(f"cannot listen on {address}: {e.strerror}") from e
    for family, kind, proto, _, where in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as e:
                raise OSError(f"cannot listen on {address}: {e.strerror}") from e
