"""``v1op get``, ``list``, ``wait`` and ``progress``: read operations from a server as its
client."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .calls import add_client_options, json_of, run_client_command
from .common import EXIT_NOT_DONE
from .output import ProgressBar, operation_state, operations_table, table

if TYPE_CHECKING:
    from .._operation import Operation
    from ..client import OperationClient

__all__ = ["add_operation_commands"]

# How often ``wait`` redraws its progress bar: each WaitOperation slice is this long.
BAR_REFRESH_SECONDS = 1.0
_LEARNED = (
    "Payload types not given with --import or --descriptor-set are learned from the "
    "server's reflection."
)


def add_operation_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    get = commands.add_parser(
        "get", help="print an operation", description=f"Print an operation. {_LEARNED}"
    )
    get.add_argument("name", help="operations/<id>")
    add_client_options(get)
    get.set_defaults(run=lambda args: run_client_command(args, _get))

    listing = commands.add_parser(
        "list",
        help="print the operations you may read",
        description="Print the operations you may read: one page, as a "
        "ListOperationsResponse (its nextPageToken goes to --page-token for the next), or "
        f"with --all every operation, one JSON object a line. {_LEARNED}",
    )
    listing.add_argument(
        "--page-size",
        type=int,
        default=0,
        metavar="N",
        help="operations per page (default: the server's, 100; at most 1000)",
    )
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument(
        "--page-token",
        default="",
        metavar="TOKEN",
        help="print the page this token (a nextPageToken) starts",
    )
    pages.add_argument(
        "--all",
        action="store_true",
        help="print every operation across the pages as NDJSON, one operation a line",
    )
    add_client_options(listing)
    listing.set_defaults(run=lambda args: run_client_command(args, _list))

    wait = commands.add_parser(
        "wait",
        help="wait until an operation is done and print it",
        description="Wait until an operation is done and print it; on a terminal, stderr "
        f"shows its progress as the server computes it. {_LEARNED}",
    )
    wait.add_argument("name", help="operations/<id>")
    wait.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up after this long: print the operation as it is and exit 1",
    )
    add_client_options(wait)
    wait.set_defaults(run=lambda args: run_client_command(args, _wait))

    progress = commands.add_parser(
        "progress",
        help="print an operation's progress",
        description="Print the progress (0 to 1) and message the server reads from an "
        "operation's metadata (OperationProgressService).",
    )
    progress.add_argument("name", help="operations/<id>")
    add_client_options(progress)
    progress.set_defaults(run=lambda args: run_client_command(args, _progress))


def print_operation(client: OperationClient, operation: Operation, output: str) -> None:
    if output == "table":
        sys.stdout.write(operations_table([operation]))
    elif output == "name":
        sys.stdout.write(operation.name + "\n")
    else:
        sys.stdout.write(json_of(client, operation) + "\n")
    sys.stdout.flush()  # here, so that a closed pipe is seen while main can still say nothing


def _get(client: OperationClient, args: argparse.Namespace) -> int:
    print_operation(client, client.get(args.name), args.output)
    return 0


def _write_operations(
    client: OperationClient, operations: Iterable[Operation], output: str, *, header: bool = True
) -> None:
    """Operations one a line (JSON, NDJSON-style; or names), or as table rows."""
    if output == "table":
        sys.stdout.write(operations_table(list(operations), header=header))
    elif output == "name":
        sys.stdout.writelines(op.name + "\n" for op in operations)
    else:
        sys.stdout.writelines(json_of(client, op) + "\n" for op in operations)
    sys.stdout.flush()


def _list(client: OperationClient, args: argparse.Namespace) -> int:
    pager = client.list(args.page_size, args.page_token)
    if args.all:
        for index, page in enumerate(pager.pages):
            _write_operations(client, page.operations, args.output, header=index == 0)
        return 0
    if args.output == "json":
        sys.stdout.write(json_of(client, pager.response) + "\n")
        sys.stdout.flush()
        return 0
    _write_operations(client, pager.operations, args.output)
    if pager.next_page_token:
        print(f"v1op: more: --page-token {pager.next_page_token}", file=sys.stderr)
    return 0


def _wait(client: OperationClient, args: argparse.Namespace) -> int:
    if sys.stderr.isatty():
        operation = _wait_with_bar(client, args.name, args.timeout)
    else:
        operation = client.wait(args.name, args.timeout)
    print_operation(client, operation, args.output)
    if not operation.done:
        print(f"v1op: {args.name} is not done after {args.timeout}s", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


def _wait_with_bar(client: OperationClient, name: str, timeout: float | None) -> Operation:
    """``client.wait``, in slices, redrawing the bar with the server's progress after each."""
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = ProgressBar(sys.stderr)
    try:
        while True:
            progress = client.progress(name)
            bar.update(progress.progress, progress.message)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            slice_seconds = (
                BAR_REFRESH_SECONDS if remaining is None else min(remaining, BAR_REFRESH_SECONDS)
            )
            operation = client.wait(name, slice_seconds)
            if operation.done:
                fraction = 1.0 if operation_state(operation) == "succeeded" else progress.progress
                bar.update(fraction, operation_state(operation))
                return operation
            if deadline is not None and time.monotonic() >= deadline:
                return operation
    finally:
        bar.finish()


def _progress(client: OperationClient, args: argparse.Namespace) -> int:
    progress = client.progress(args.name)
    if args.output == "table":
        row = [progress.parent, f"{progress.progress:.0%}", progress.message or "-"]
        sys.stdout.write(table(["NAME", "PROGRESS", "MESSAGE"], [row]))
    elif args.output == "name":
        sys.stdout.write(progress.parent + "\n")
    else:
        sys.stdout.write(json_of(client, progress) + "\n")
    sys.stdout.flush()
    return 0
