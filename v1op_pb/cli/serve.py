"""``v1op serve`` (the reference gRPC server, and the REST gateway beside it) and ``v1op
gateway`` (the gateway alone, in front of a remote server)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .common import add_type_options, registry_from
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
    serve.add_argument("--tokens", metavar="FILE", help="'TOKEN PRINCIPAL' lines")
    serve.add_argument(
        "--dev-anonymous",
        metavar="PRINCIPAL",
        help="FOR DEVELOPMENT ONLY: calls without a token act as PRINCIPAL",
    )
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="the largest gRPC message taken or sent (default: 4 MiB)",
    )
    serve.add_argument(
        "--http-addr",
        metavar="HOST:PORT",
        help="also serve the documented REST API on this address, in the same process",
    )
    add_type_options(serve)
    add_server_tls_options(serve, "gRPC, and HTTPS with --http-addr")
    serve.set_defaults(run=_serve)

    gateway = commands.add_parser(
        "gateway",
        help="serve the documented REST API in front of a remote gRPC server",
        description="Serve the google.api.http mapping of OperationService and "
        "OperationProgressService, forwarding each call (with its Authorization) over gRPC.",
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
    add_type_options(gateway)
    add_server_tls_options(gateway, "HTTPS to the gateway's callers")
    add_client_tls_options(gateway, prefix="grpc-")
    gateway.set_defaults(run=_gateway)


def _serve(args: argparse.Namespace) -> int:
    from ..server import Principal, TokenTable, serve

    anonymous = Principal(args.dev_anonymous) if args.dev_anonymous else None
    if args.tokens is None and anonymous is None:
        raise ValueError("give --tokens FILE (or, for development only, --dev-anonymous)")
    if args.tokens is not None:
        tokens = TokenTable.load(args.tokens, anonymous=anonymous)
    else:
        tokens = TokenTable({}, anonymous=anonymous)
    if args.workers is not None and not args.worker:
        return _serve_workers(args)
    if anonymous is not None and not args.worker:
        print(
            f"v1op: WARNING: calls without a token act as {anonymous.name} (development only)",
            file=sys.stderr,
        )
    asyncio.run(
        serve(
            args.grpc_addr,
            db=args.db,
            tokens=tokens,
            registry=registry_from(args),
            max_message_bytes=args.max_message_bytes,
            http_address=args.http_addr,
            tls=server_tls_from(args),
            reuse_port=args.worker,
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
    server_tls_from(args)  # unreadable certificates: one error here, not one per worker
    if args.dev_anonymous:
        print(
            f"v1op: WARNING: calls without a token act as {args.dev_anonymous} (development only)",
            file=sys.stderr,
        )
    return run_workers(args.argv, address=args.grpc_addr, db=args.db, count=args.workers)


def _gateway(args: argparse.Namespace) -> int:
    from ..client._common import channel_settings, refuse_plaintext_to_remote
    from ..gateway import run_gateway

    settings = channel_settings(args.grpc_target, **client_tls_from(args, "grpc-"))
    if settings.credentials is None and not args.grpc_insecure:
        # The gateway forwards every caller's token: the rule of a client's own token.
        refuse_plaintext_to_remote(args.grpc_target, flag_prefix="--grpc-")
    tls = server_tls_from(args)
    asyncio.run(
        run_gateway(
            args.http_addr,
            args.grpc_target,
            registry=registry_from(args),
            max_body_bytes=args.max_body_bytes,
            credentials=settings.credentials,
            ssl_context=None if tls is None else tls.ssl_context(),
        )
    )
    return 0
