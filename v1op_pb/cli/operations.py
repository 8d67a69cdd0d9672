"""``v1op get``, ``list`` and ``wait``: read operations from a server as its client."""

from __future__ import annotations

import argparse
import os
import sys

from google.protobuf.message import Message

from .._json import to_json
from .common import EXIT_ERROR, EXIT_NOT_DONE, add_type_options, registry_from

__all__ = ["add_operation_commands"]


def add_operation_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    for name, helptext in (
        ("get", "print an operation as JSON"),
        ("list", "print the operations you may read, as a ListOperationsResponse"),
        ("wait", "wait until an operation is done and print it"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--addr", required=True, metavar="HOST:PORT")
        command.add_argument(
            "--token", default=os.environ.get("V1OP_TOKEN"), help="bearer token ($V1OP_TOKEN)"
        )
        if name == "list":
            command.add_argument("--page-size", type=int, default=0)
        else:
            command.add_argument("name", help="operations/<id>")
        if name == "wait":
            command.add_argument("--timeout", type=float, default=None, help="seconds")
        add_type_options(command)
        command.set_defaults(run=_client_command)


def _client_command(args: argparse.Namespace) -> int:
    from ..client import OperationClient, StatusError

    registry = registry_from(args)
    try:
        with OperationClient(args.addr, token=args.token, registry=registry) as client:
            if args.command == "get":
                message: Message = client.get(args.name)
            elif args.command == "list":
                message = client.list(args.page_size)
            else:
                message = client.wait(args.name, args.timeout)
    except StatusError as e:
        print(f"v1op: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(to_json(message, registry=registry))
    if args.command == "wait" and not message.done:  # type: ignore[attr-defined]
        print(f"v1op: {args.name} is not done after {args.timeout}s", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0
