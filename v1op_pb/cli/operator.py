"""``v1op create``, ``update``, ``finalize``, ``abort``, ``delete`` and ``mark-seen``: change
operations on a server, as a service (create, update, finalize) or as their creator.

JSON arguments are ``@type``-tagged JSON (``{"@type": "type.googleapis.com/...", ...}``),
or ``@FILE`` to read it from a file (``@-``: stdin); ``--error`` is a google.rpc.Status
(``{"code": 8, "message": "..."}``). Payload types the command was not given are learned
from the server's reflection, as for the reads.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from .._any import unpack
from .._errors import ConversionError
from .._json import from_json
from .calls import add_client_options, run_client_command
from .common import read_file
from .operations import print_operation

if TYPE_CHECKING:
    from ..client import OperationClient

__all__ = ["JsonArgumentError", "add_operator_commands"]

_PAYLOAD = "@type-tagged JSON, or @FILE"
_JSON_ARGUMENTS = (
    'JSON arguments are @type-tagged JSON ({"@type": "type.googleapis.com/...", ...}), or '
    "@FILE to read it from a file (@-: stdin). Payload types not given with --import or "
    "--descriptor-set are learned from the server's reflection."
)


class JsonArgumentError(ValueError):
    """A JSON argument that does not convert: names the option, the JSON path and why."""

    def __init__(self, option: str, error: ConversionError) -> None:
        super().__init__(f"{option}: {error}")
        self.option = option
        self.error = error


def add_operator_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    create = commands.add_parser(
        "create",
        help="start an operation (services only) and print it",
        description="Create an operation, as a service, and print it. " + _JSON_ARGUMENTS,
    )
    create.add_argument("--metadata", metavar="JSON", help=f"its first metadata: {_PAYLOAD}")
    create.add_argument(
        "--on-behalf-of",
        default="",
        metavar="PRINCIPAL",
        help="the user (users/<id>) who becomes its creator",
    )
    add_client_options(create)
    create.set_defaults(run=lambda args: run_client_command(args, _create))

    update = commands.add_parser(
        "update",
        help="replace a running operation's metadata (its progress)",
        description="Replace the metadata of a running operation, as a service, and print "
        "it. " + _JSON_ARGUMENTS,
    )
    update.add_argument("name", help="operations/<id>")
    update.add_argument(
        "--metadata", required=True, metavar="JSON", help=f"the new metadata: {_PAYLOAD}"
    )
    add_client_options(update)
    update.set_defaults(run=lambda args: run_client_command(args, _update))

    finalize = commands.add_parser(
        "finalize",
        help="finish an operation with a response or an error",
        description="Finish a running operation, as a service, with a response or an error "
        "Status, and print it. " + _JSON_ARGUMENTS,
    )
    finalize.add_argument("name", help="operations/<id>")
    outcome = finalize.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--response", metavar="JSON", help=f"the response: {_PAYLOAD}")
    outcome.add_argument(
        "--error",
        metavar="JSON",
        help='a google.rpc.Status ({"code": 8, "message": "...", "details": [...]}), or @FILE',
    )
    finalize.add_argument(
        "--metadata", metavar="JSON", help=f"the last metadata, sent with it: {_PAYLOAD}"
    )
    add_client_options(finalize)
    finalize.set_defaults(run=lambda args: run_client_command(args, _finalize))

    for name, helptext in (
        ("abort", "abort a running operation (its creator, or a service)"),
        ("delete", "delete an operation: readers get NOT_FOUND from then on"),
        ("mark-seen", "mark a finished operation seen by its creator"),
    ):
        command = commands.add_parser(
            name, help=helptext, description=helptext[0].upper() + helptext[1:] + "."
        )
        command.add_argument("name", help="operations/<id>")
        add_client_options(command, output=name != "delete")
        command.set_defaults(run=lambda args: run_client_command(args, _simple))


def json_argument(option: str, text: str) -> bytes:
    """The JSON an argument gives: its text, or the file it names after ``@`` (``@-``:
    stdin)."""
    if not text.startswith("@"):
        return text.encode("utf-8")
    try:
        return read_file(text[1:])
    except OSError as e:
        raise ValueError(f"{option}: cannot read {text[1:]}: {e.strerror or e}") from e


def payload(client: OperationClient, option: str, text: str) -> Message:
    """The message an ``@type``-tagged JSON argument holds."""
    data = json_argument(option, text)

    def convert() -> Message:
        packed = from_json(data, message_type=any_pb2.Any, registry=client.registry)
        return unpack(packed, client.registry)

    try:
        return client.with_learned_types(convert)
    except ConversionError as e:
        raise JsonArgumentError(option, e) from e


def _status(text: str, client: OperationClient) -> status_pb2.Status:
    data = json_argument("--error", text)
    try:
        return client.with_learned_types(
            lambda: from_json(data, message_type=status_pb2.Status, registry=client.registry)
        )
    except ConversionError as e:
        raise JsonArgumentError("--error", e) from e


def _create(client: OperationClient, args: argparse.Namespace) -> int:
    metadata = None if args.metadata is None else payload(client, "--metadata", args.metadata)
    operation = client.create(metadata, on_behalf_of=args.on_behalf_of)
    print_operation(client, operation, args.output)
    return 0


def _update(client: OperationClient, args: argparse.Namespace) -> int:
    operation = client.update(args.name, payload(client, "--metadata", args.metadata))
    print_operation(client, operation, args.output)
    return 0


def _finalize(client: OperationClient, args: argparse.Namespace) -> int:
    metadata = None if args.metadata is None else payload(client, "--metadata", args.metadata)
    if args.response is not None:
        response = payload(client, "--response", args.response)
        operation = client.finalize(args.name, response=response, operation_metadata=metadata)
    else:
        error = _status(args.error, client)
        operation = client.finalize(args.name, error=error, operation_metadata=metadata)
    print_operation(client, operation, args.output)
    return 0


def _simple(client: OperationClient, args: argparse.Namespace) -> int:
    if args.command == "delete":
        client.delete(args.name)
        return 0
    change = client.abort if args.command == "abort" else client.mark_seen
    operation = change(args.name)
    print_operation(client, operation, args.output)
    return 0
