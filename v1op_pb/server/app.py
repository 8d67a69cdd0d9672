"""Starting the reference server: ``create_server`` for tests and embedding, ``serve`` for
the command line."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from google.longrunning import operations_pb2_grpc, operations_proto_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._registry import TypeRegistry
from .._tls import ServerTLS
from .addresses import check_free, split_address
from .auth import Authenticator, TokenTable
from .manager import OperationManager, page_bytes_for
from .reflection import RegistryReflectionPool
from .services import (
    DecodeRequests,
    LongRunningService,
    OperationProgressService,
    OperationService,
)
from .store import Store, open_store
from .tls import server_credentials

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "create_server", "serve"]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DRAIN_SECONDS = 10.0

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["OperationService"].full_name,
    pb.DESCRIPTOR.services_by_name["OperationProgressService"].full_name,
    operations_proto_pb2.DESCRIPTOR.services_by_name["Operations"].full_name,
)


async def create_server(
    address: str,
    *,
    store: Store,
    auth: Authenticator | None = None,
    tokens: TokenTable | None = None,
    registry: TypeRegistry | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_wait_seconds: float = 60.0,
    tls: ServerTLS | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with every service added, bound to ``address`` (port 0 picks a
    free port), over TLS with ``tls``; returns it, not yet started, with the bound port. The
    caller owns ``store`` and closes it after the server stops. ``reuse_port`` lets other
    processes listen on the same port (SO_REUSEPORT), as ``serve --workers`` does; without
    it a busy port fails. ``auth`` says who calls; ``tokens`` alone is short for
    ``auth=Authenticator(tokens=tokens)``."""
    if (auth is None) == (tokens is None):
        raise TypeError("give exactly one of auth and tokens")
    assembled = await _assemble(
        address,
        store=store,
        auth=auth if auth is not None else Authenticator(tokens=tokens),
        registry=registry,
        max_message_bytes=max_message_bytes,
        max_wait_seconds=max_wait_seconds,
        tls=tls,
        reuse_port=reuse_port,
    )
    return assembled.server, assembled.port


@dataclass
class _Assembled:
    server: grpc.aio.Server
    port: int
    manager: OperationManager
    health: health_aio.HealthServicer


async def _assemble(
    address: str,
    *,
    store: Store,
    auth: Authenticator,
    registry: TypeRegistry | None,
    max_message_bytes: int,
    max_wait_seconds: float,
    tls: ServerTLS | None = None,
    reuse_port: bool = False,
) -> _Assembled:
    split_address(address)
    manager = OperationManager(
        store,
        registry,
        max_wait_seconds=max_wait_seconds,
        max_page_bytes=page_bytes_for(max_message_bytes),
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # gRPC shares ports by default: a second server on a busy port would start and
            # take half the connections. Only workers of one server share, on purpose.
            ("grpc.so_reuseport", int(reuse_port)),
        ],
        interceptors=[DecodeRequests()],
    )
    pb_grpc.add_OperationServiceServicer_to_server(OperationService(manager, auth), server)
    pb_grpc.add_OperationProgressServiceServicer_to_server(
        OperationProgressService(manager, auth), server
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(LongRunningService(manager, auth), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
        # The payload types of --descriptor-set too, so clients can learn them as well.
        # A stand-in with the look-ups the servicer makes of a DescriptorPool.
        pool=RegistryReflectionPool(registry),  # type: ignore[arg-type]
    )
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, server_credentials(tls))
    except RuntimeError as e:
        raise OSError(f"cannot listen on {address}: in use or not an address of this host") from e
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return _Assembled(server, port, manager, health)


async def _start_own_gateway(
    http_address: str,
    grpc_port: int,
    registry: TypeRegistry | None,
    max_bytes: int,
    tls: ServerTLS | None,
) -> tuple[web.AppRunner, grpc.aio.Channel, int]:
    from ..gateway import DOCUMENTED_SERVICES, open_channel, start_gateway

    # Over loopback to this process's own server: the same servicers, identity and rules
    # as every gRPC caller gets.
    channel = open_channel(f"127.0.0.1:{grpc_port}", max_bytes)
    runner, port = await start_gateway(
        http_address,
        channel,
        DOCUMENTED_SERVICES,
        registry=registry,
        max_body_bytes=max_bytes,
        ssl_context=None if tls is None else tls.ssl_context(),
    )
    return runner, channel, port


async def serve(
    address: str,
    *,
    db: str,
    auth: Authenticator,
    registry: TypeRegistry | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    http_address: str | None = None,
    tls: ServerTLS | None = None,
    reuse_port: bool = False,
) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls and close the store.

    ``db`` is a SQLite file (or ``:memory:``) or a PostgreSQL URL. With ``http_address``,
    the REST gateway runs in the same process, in front of this server's own services; with
    ``tls`` both serve TLS (HTTPS), asking for the same client certificates. Start-up
    failures (a bad or busy address, an unusable database) raise OSError or ValueError with
    a one-line message, before anything listens."""
    split_address(address)
    if not reuse_port:
        check_free(address)
    store = await asyncio.to_thread(open_store, db)
    try:
        # Handlers first: a SIGTERM that comes right after the ready line must still drain.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        assembled = await _assemble(
            address,
            store=store,
            auth=auth,
            registry=registry,
            max_message_bytes=max_message_bytes,
            max_wait_seconds=60.0,
            tls=tls,
            reuse_port=reuse_port,
        )
        gateway_port = assembled.port
        if tls is not None and http_address is not None:
            # The in-process gateway reaches its own server over a loopback-only plaintext
            # port: TLS between two parts of one process would protect nothing. Callers'
            # tokens still decide who they are.
            gateway_port = assembled.server.add_insecure_port("127.0.0.1:0")
        await assembled.server.start()
        host = address.rsplit(":", 1)[0]
        gateway = None
        if http_address is not None:
            gateway = await _start_own_gateway(
                http_address, gateway_port, registry, max_message_bytes, tls
            )
        # One line on stdout, so a supervisor (or a test) knows the port without polling.
        print(f"v1op: serving gRPC on {host}:{assembled.port}", flush=True)
        if gateway is not None:
            runner, channel, http_port = gateway
            assert http_address is not None  # the gateway starts only with an HTTP address
            http_host = http_address.rsplit(":", 1)[0]
            print(f"v1op: serving HTTP on {http_host}:{http_port}", flush=True)
        await stop.wait()
        print("v1op: stopping: draining in-flight calls", file=sys.stderr, flush=True)
        if gateway is not None:
            await runner.cleanup()  # finishes in-flight HTTP requests, takes no new ones
            await channel.close()
        await assembled.health.enter_graceful_shutdown()
        stopped = asyncio.ensure_future(assembled.server.stop(DRAIN_SECONDS))
        # Pending WaitOperation calls answer with the current state rather than hold
        # the drain until their timeouts.
        await asyncio.sleep(0)
        assembled.manager.release_waiters()
        await stopped
    finally:
        store.close()
