"""Starting the reference server: ``create_server`` (gRPC) and ``create_servers`` (gRPC and
the HTTP port) for tests and embedding, ``serve`` for the command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from google.longrunning import operations_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._registry import TypeRegistry
from .._tls import ServerTLS
from .addresses import check_free, split_address
from .auth import Authenticator, TokenTable
from .dispatch import ServiceDispatcher
from .handlers import SERVICES
from .manager import OperationManager, page_bytes_for
from .observe import Observer, flush_logs, serve_metrics, tracing_from_environment
from .reflection import enable_reflection
from .services import (
    DecodeRequests,
    LongRunningService,
    OperationProgressService,
    OperationService,
)
from .store import Retention, Store, duration_text, open_store
from .tls import server_credentials

if TYPE_CHECKING:
    from ..gateway import HttpPort
    from .observe import Metrics

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "Servers", "create_server", "create_servers", "serve"]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DRAIN_SECONDS = 10.0
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)
# The name no stored operation has, read to learn that the store answers (readiness).
_READY_PROBE = "operations/readiness-probe"
_log = logging.getLogger("v1op")


@dataclass
class Servers:
    """A server's ports, bound and not yet started: gRPC, and the HTTP port (REST, Connect,
    gRPC-Web, OpenAPI, health) when asked for, both calling one dispatcher."""

    grpc: grpc.aio.Server
    grpc_port: int
    http: HttpPort | None
    # What both ports call: HTTP apps of one's own (create_http_app) may call it too.
    dispatcher: ServiceDispatcher
    manager: OperationManager
    health: health_aio.HealthServicer
    # What each call is told to: the access log, metrics, spans.
    observer: Observer = field(default_factory=Observer)
    # Background work while serving (retention, the store's gauges): made by start().
    background: list[Callable[[], Coroutine[object, object, None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def http_port(self) -> int | None:
        return None if self.http is None else self.http.port

    async def start(self) -> None:
        await self.grpc.start()
        if self.http is not None:
            await self.http.start()
        self._tasks = [asyncio.ensure_future(work()) for work in self.background]

    async def stop(self, grace: float | None = DRAIN_SECONDS) -> None:
        """Drain: no new calls; calls in flight on either port finish, gRPC's within
        ``grace`` seconds; waits answer at once with the state as it is."""
        await self.health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        draining = [asyncio.ensure_future(self.grpc.stop(grace))]
        if self.http is not None:
            draining.append(asyncio.ensure_future(self.http.close()))
        # Pending WaitOperation calls answer with the current state rather than hold
        # the drain until their timeouts.
        await asyncio.sleep(0)
        self.manager.release_waiters()
        await asyncio.gather(*draining)


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
    observer: Observer | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with every service added, bound to ``address`` (port 0 picks a
    free port), over TLS with ``tls``; returns it, not yet started, with the bound port. The
    caller owns ``store`` and closes it after the server stops. ``reuse_port`` lets other
    processes listen on the same port (SO_REUSEPORT), as ``serve --workers`` does; without
    it a busy port fails. ``auth`` says who calls; ``tokens`` alone is short for
    ``auth=Authenticator(tokens=tokens)``."""
    servers = await create_servers(
        address,
        store=store,
        auth=auth,
        tokens=tokens,
        registry=registry,
        max_message_bytes=max_message_bytes,
        max_wait_seconds=max_wait_seconds,
        tls=tls,
        reuse_port=reuse_port,
        observer=observer,
    )
    return servers.grpc, servers.grpc_port


async def create_servers(
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
    http_address: str | None = None,
    cors_origins: Iterable[str] = (),
    observer: Observer | None = None,
    retention_seconds: float | None = None,
) -> Servers:
    """``create_server``'s gRPC server and, with ``http_address``, the HTTP port in the same
    process, on the same services (no gRPC hop between them), with the same TLS and client
    certificates, message limit and identity; ``cors_origins`` lets browsers of those
    origins call it. ``await servers.start()``, then ``await servers.stop()``.

    ``observer`` sees every call on both ports (by default: the access log on the
    ``v1op.access`` logger, spans when OpenTelemetry is set up, no metrics); with its
    ``metrics``, the store's are kept too. ``retention_seconds`` purges, while serving, the
    operations done or deleted for longer than that (see ``store.Retention``)."""
    if (auth is None) == (tokens is None):
        raise TypeError("give exactly one of auth and tokens")
    if auth is None:
        auth = Authenticator(tokens=tokens)
    if observer is None:
        observer = Observer(tracing=tracing_from_environment())
    split_address(address)
    manager = OperationManager(
        store,
        registry,
        max_wait_seconds=max_wait_seconds,
        max_page_bytes=page_bytes_for(max_message_bytes),
    )
    dispatcher = ServiceDispatcher(
        manager, auth, ready=lambda: store.get(_READY_PROBE), observer=observer
    )
    background = _background(store, observer.metrics, retention_seconds)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # gRPC shares ports by default: a second server on a busy port would start and
            # take half the connections. Only workers of one server share, on purpose.
            ("grpc.so_reuseport", int(reuse_port)),
        ],
        interceptors=[DecodeRequests(observer, frozenset(dispatcher.methods))],
    )
    certificates = tls is not None and tls.client_ca is not None
    # The servicers adapt gRPC calls onto the one dispatcher the HTTP port calls too.
    pb_grpc.add_OperationServiceServicer_to_server(
        OperationService(manager, auth, dispatcher=dispatcher, certificates=certificates),
        server,
    )
    pb_grpc.add_OperationProgressServiceServicer_to_server(
        OperationProgressService(manager, auth, dispatcher=dispatcher, certificates=certificates),
        server,
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(
        LongRunningService(manager, auth, dispatcher=dispatcher, certificates=certificates),
        server,
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection(
        server,
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
        registry,
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
    http = None
    if http_address is not None:
        http = await _open_http(
            http_address, dispatcher, registry, max_message_bytes, tls, cors_origins, observer
        )
    return Servers(server, port, http, dispatcher, manager, health, observer, background)


def _background(
    store: Store, metrics: Metrics | None, retention_seconds: float | None
) -> list[Callable[[], Coroutine[object, object, None]]]:
    """The work a server does beside its calls: retention, and the store's metrics."""
    work: list[Callable[[], Coroutine[object, object, None]]] = []
    if metrics is not None:
        from .observe import count_operations_forever, time_commits

        time_commits(store, metrics)
        work.append(lambda: count_operations_forever(store, metrics))
    if retention_seconds is not None:
        purged = None if metrics is None else metrics.purged.inc
        failed = None if metrics is None else metrics.retention_failures.inc
        retention = Retention(store, retention_seconds, on_purged=purged, on_failure=failed)
        work.append(retention.run)
    return work


async def _open_http(
    address: str,
    dispatcher: ServiceDispatcher,
    registry: TypeRegistry | None,
    max_bytes: int,
    tls: ServerTLS | None,
    cors_origins: Iterable[str],
    observer: Observer,
) -> HttpPort:
    from ..gateway import create_http_app, open_http_port
    from .observe import http_middleware, refused_request

    split_address(address)
    app = create_http_app(
        dispatcher,
        registry=registry,
        max_body_bytes=max_bytes,
        cors_origins=cors_origins,
        middlewares=[http_middleware(observer)],
    )
    try:
        return await open_http_port(
            address,
            app,
            ssl_context=None if tls is None else tls.ssl_context(),
            drain_seconds=DRAIN_SECONDS,
            on_refusal=lambda http_status, peer: refused_request(observer, http_status, peer),
        )
    except OSError as e:
        raise OSError(f"cannot listen on {address}: {e.strerror or e}") from e


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
    cors_origins: Iterable[str] = (),
    metrics_address: str | None = None,
    keep_metrics: bool = False,
    retention_seconds: float | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls and close the store.

    ``db`` is a SQLite file (or ``:memory:``) or a PostgreSQL URL. With ``http_address``,
    the HTTP port (REST, Connect, gRPC-Web) runs in the same process on the same services;
    with ``tls`` both serve TLS (HTTPS), asking for the same client certificates. With
    ``metrics_address`` the Prometheus metrics are served there (``keep_metrics``: kept
    but not served, as a worker keeps them for its parent). ``retention_seconds``: see
    ``create_servers``. Start-up failures (a bad or busy address, an unusable database)
    raise OSError or ValueError with a one-line message, before anything listens."""
    split_address(address)
    if http_address is not None:
        split_address(http_address)
    if metrics_address is not None:
        split_address(metrics_address)
    if not reuse_port:
        check_free(address)
    metrics = None
    if metrics_address is not None or keep_metrics:
        from .observe import Metrics

        metrics = Metrics()
    observer = Observer(metrics=metrics, tracing=tracing_from_environment())
    store = await asyncio.to_thread(open_store, db)
    exporter = None
    try:
        # Handlers first: a SIGTERM that comes right after the ready line must still drain.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        servers = await create_servers(
            address,
            store=store,
            auth=auth,
            registry=registry,
            max_message_bytes=max_message_bytes,
            max_wait_seconds=60.0,
            tls=tls,
            reuse_port=reuse_port,
            http_address=http_address,
            cors_origins=cors_origins,
            observer=observer,
            retention_seconds=retention_seconds,
        )
        if metrics_address is not None and metrics is not None:
            exporter = serve_metrics(metrics_address, metrics.registry)
        await servers.start()
        flush_logs()  # what came before the ready lines is on stderr when they come
        # One line on stdout per port, so a supervisor (or a test) knows the ports without
        # polling; the gRPC port's first.
        host = address.rsplit(":", 1)[0]
        print(f"v1op: serving gRPC on {host}:{servers.grpc_port}", flush=True)
        if http_address is not None:
            http_host = http_address.rsplit(":", 1)[0]
            print(f"v1op: serving HTTP on {http_host}:{servers.http_port}", flush=True)
        if exporter is not None and metrics_address is not None:
            metrics_host = metrics_address.rsplit(":", 1)[0]
            print(f"v1op: serving metrics on {metrics_host}:{exporter.port}", flush=True)
        if retention_seconds is not None:
            _log.info(
                "retention: purging operations done or deleted for more than %s",
                duration_text(retention_seconds),
            )
        await stop.wait()
        _log.info("stopping: draining in-flight calls")
        await servers.stop(DRAIN_SECONDS)
    finally:
        if exporter is not None:
            exporter.close()
        await store.aclose()
