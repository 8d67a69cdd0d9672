"""``v1op serve`` (the reference gRPC server, and the HTTP port beside it in the same
process) and ``v1op gateway`` (the HTTP port alone, in front of a remote server)."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from .common import add_type_options, registry_from
from .identity import add_identity_options, authenticator_from, warn_anonymous
from .tls import add_client_tls_options, add_server_tls_options, client_tls_from, server_tls_from

__all__ = ["add_serve_commands"]


def add_serve_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the reference OperationService gRPC server",
        description="Serve OperationService, OperationProgressService, "
        "google.longrunning.Operations, health checking and reflection until SIGTERM.",
    )
    serve.add_argument(
        "--grpc-addr", required=True, metavar="HOST:PORT", help="serve gRPC on this address"
    )
    serve.add_argument(
        "--db",
        required=True,
        help="a SQLite file (or :memory:), or a PostgreSQL URL postgresql://USER@HOST:PORT/DB "
        "that several servers may share",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N server processes on the one address (sharing the port and the store); "
        "restart any that dies",
    )
    # How --workers starts each worker: a server that shares its port on purpose.
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    add_identity_options(serve)
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="the largest gRPC message taken or sent (default: 4 MiB)",
    )
    serve.add_argument(
        "--http-addr",
        metavar="HOST:PORT",
        help="also serve REST, Connect, gRPC-Web, /openapi.json, /healthz and /readyz on "
        "this address, in the same process",
    )
    _add_cors_option(serve)
    serve.add_argument(
        "--retention",
        metavar="DURATION",
        help="purge operations done or deleted for longer than DURATION (30d, 12h, 90m, 2s), "
        "in the background; default: keep them",
    )
    _add_observe_options(serve)
    add_type_options(serve)
    add_server_tls_options(serve, "gRPC, and HTTPS with --http-addr")
    serve.set_defaults(run=_serve)

    gateway = commands.add_parser(
        "gateway",
        help="serve the HTTP port (REST, Connect, gRPC-Web) in front of a remote gRPC server",
        description="Serve the google.api.http mapping of OperationService and "
        "OperationProgressService, and Connect and gRPC-Web for every service, forwarding "
        "each call (with its Authorization) over gRPC.",
    )
    gateway.add_argument(
        "--http-addr", required=True, metavar="HOST:PORT", help="serve the REST API on this address"
    )
    gateway.add_argument(
        "--grpc-target", required=True, metavar="HOST:PORT", help="the gRPC server to forward to"
    )
    gateway.add_argument(
        "--max-body-bytes", type=int, default=4 * 1024 * 1024, help="413 above this"
    )
    _add_cors_option(gateway)
    _add_observe_options(gateway)
    add_type_options(gateway)
    add_server_tls_options(gateway, "HTTPS to the gateway's callers")
    add_client_tls_options(gateway, prefix="grpc-")
    gateway.set_defaults(run=_gateway)


def _add_cors_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from ORIGIN (https://app.example.com; '*' for any) call the "
        "HTTP port; repeatable. None given: no CORS headers",
    )


def _add_observe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs the metrics extra)",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="text",
        help="stderr as text lines or one JSON object a line, the access log's line of every "
        "call included (default: text)",
    )


def _configure_logging(args: argparse.Namespace) -> None:
    """Every stderr line in the chosen format from here on (main reports errors through
    it too). The gRPC C core writes to stderr past Python's logging: it is silenced, unless
    GRPC_VERBOSITY says otherwise, before grpc is first imported."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from ..server.observe import configure_logging

    args.logging = configure_logging(args.log_format)


def _serve(args: argparse.Namespace) -> int:
    _configure_logging(args)
    from ..server import serve
    from ..server.store import parse_duration

    retention = None if args.retention is None else parse_duration(args.retention)
    if args.cors_origin and args.http_addr is None:
        raise ValueError("--cors-origin is for the HTTP port: give --http-addr too")
    # Certificates and identity: one error here, before any worker starts.
    tls = server_tls_from(args)
    auth = authenticator_from(args)
    if args.workers is not None and not args.worker:
        return _serve_workers(args)
    if not args.worker:
        warn_anonymous(args)
    asyncio.run(
        serve(
            args.grpc_addr,
            db=args.db,
            auth=auth,
            registry=registry_from(args),
            max_message_bytes=args.max_message_bytes,
            http_address=args.http_addr,
            tls=tls,
            reuse_port=args.worker,
            cors_origins=args.cors_origin,
            # A worker keeps its metrics for its parent, which serves them all.
            metrics_address=None if args.worker else args.metrics_addr,
            keep_metrics=args.worker and args.metrics_addr is not None,
            retention_seconds=retention,
        )
    )
    return 0


def _serve_workers(args: argparse.Namespace) -> int:
    from ..server.workers import run_workers

    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: give 1 or more")
    if args.http_addr is not None:
        raise ValueError(
            "--http-addr does not combine with --workers: run `v1op gateway` in front of them"
        )
    if args.db == ":memory:":
        raise ValueError("--workers share the store: give a SQLite file or a PostgreSQL URL")
    warn_anonymous(args)
    return run_workers(
        args.argv,
        address=args.grpc_addr,
        db=args.db,
        count=args.workers,
        metrics_address=args.metrics_addr,
    )


def _gateway(args: argparse.Namespace) -> int:
    _configure_logging(args)
    from ..client._common import channel_settings, refuse_plaintext_to_remote
    from ..gateway import run_gateway
    from ..server.observe import (
        GatewayObservation,
        Observer,
        serve_metrics,
        tracing_from_environment,
    )

    settings = channel_settings(args.grpc_target, **client_tls_from(args, "grpc-"))
    if settings.credentials is None and not args.grpc_insecure:
        # The gateway forwards every caller's token: the rule of a client's own token.
        refuse_plaintext_to_remote(args.grpc_target, flag_prefix="--grpc-")
    tls = server_tls_from(args)
    metrics: Any = None
    exporter = None
    if args.metrics_addr is not None:
        from ..server.observe import Metrics

        metrics = Metrics()
    observer = Observer(metrics=metrics, tracing=tracing_from_environment())
    if metrics is not None:
        exporter = serve_metrics(args.metrics_addr, metrics.registry)
        host = args.metrics_addr.rsplit(":", 1)[0]
        print(f"v1op: serving metrics on {host}:{exporter.port}", flush=True)
    try:
        asyncio.run(
            run_gateway(
                args.http_addr,
                args.grpc_target,
                registry=registry_from(args),
                max_body_bytes=args.max_body_bytes,
                credentials=settings.credentials,
                ssl_context=None if tls is None else tls.ssl_context(),
                cors_origins=args.cors_origin,
                observation=GatewayObservation(observer),
            )
        )
    finally:
        if exporter is not None:
            exporter.close()
    return 0
