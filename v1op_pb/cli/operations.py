"""``v1op get``, ``list`` and ``wait``: read operations from a server as its client."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import uuid
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from .._codec import dumps
from .._codec.descriptors import is_repeated
from .._errors import ConversionError
from .._json import to_dict, to_json
from .._operation import Operation
from .._registry import TypeRegistry, unknown_type_of
from .common import EXIT_ERROR, EXIT_NOT_DONE, add_type_options, registry_from
from .tls import add_client_tls_options, client_tls_from

__all__ = ["add_operation_commands"]

_STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


def add_operation_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    for name, helptext in (
        ("get", "print an operation as JSON"),
        ("list", "print the operations you may read, as a ListOperationsResponse"),
        ("wait", "wait until an operation is done and print it"),
    ):
        command = commands.add_parser(
            name,
            help=helptext,
            description=helptext[0].upper() + helptext[1:] + ". Payload types not given "
            "with --import or --descriptor-set are learned from the server's reflection.",
        )
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
        add_client_tls_options(command)
        command.set_defaults(run=_client_command)


def _client_command(args: argparse.Namespace) -> int:
    # Before grpc is imported: its C core would also log a failed TLS handshake at info
    # level on stderr, which our one error line already says in full.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from google.api_core.exceptions import GoogleAPICallError

    from ..client import OperationClient
    from ..client.reflection import with_learned_types

    registry = registry_from(args)
    try:
        with OperationClient(
            args.addr, token=args.token, registry=registry, **client_tls_from(args)
        ) as client:
            if args.command == "get":
                message: Message = client.get(args.name)
            elif args.command == "list":
                message = client.list(args.page_size)
            else:
                message = client.wait(args.name, args.timeout)
            text = with_learned_types(lambda: _json_of(message, registry), client.channel, registry)
    except GoogleAPICallError as e:
        print(f"v1op: {_describe(e)}", file=sys.stderr)
        return EXIT_ERROR
    except ConversionError as e:
        name = unknown_type_of(e)
        if name is None:
            raise
        # Still show the operation: the payload the server's reflection could not describe
        # either goes out as its type URL and base64 bytes.
        print(
            f"v1op: payload type {name!r} is unknown here and to the server's reflection; "
            "it is shown as base64 (give --import or --descriptor-set to read it)",
            file=sys.stderr,
        )
        text = dumps(_opaque(message, registry)) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()  # here, so that a closed pipe is seen while main can still say nothing
    # wait gives an Operation (get and list other messages).
    if args.command == "wait" and isinstance(message, Operation) and not message.done:
        print(f"v1op: {args.name} is not done after {args.timeout}s", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


def _json_of(message: Message, registry: TypeRegistry) -> str:
    return to_json(message, registry=registry) + "\n"


def _describe(error: Any) -> str:
    code = error.grpc_status_code
    name = getattr(code, "name", None) or f"code {code}"
    return f"{name}: {error.message}"


def _opaque(message: Message, registry: TypeRegistry) -> Any:
    """The JSON value of ``message`` with every Any the registry cannot read written as
    ``{"@type": <url>, "value": <base64>}``: the bytes kept, nothing invented."""
    copy = type(message)()
    copy.CopyFrom(message)
    placeholders: dict[str, tuple[str, bytes]] = {}
    _mask_unknown(copy, registry, placeholders)
    value = to_dict(copy, registry=registry)
    return _unmask(value, placeholders)


def _mask_unknown(
    message: Message, registry: TypeRegistry, placeholders: dict[str, tuple[str, bytes]]
) -> None:
    """Swap each Any of an unknown type for a StringValue holding a fresh random key
    (which no real value can equal), remembering its type URL and bytes by that key."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        elif is_repeated(field):
            items = list(value)
        else:
            items = [value]
        for item in items:
            if not isinstance(item, any_pb2.Any):
                _mask_unknown(item, registry, placeholders)
            elif item.type_url not in registry:
                key = f"v1op-opaque-{uuid.uuid4().hex}"
                placeholders[key] = (item.type_url, item.value)
                item.type_url = _STRING_VALUE
                item.value = b"\n" + _varint(len(key)) + key.encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _unmask(value: Any, placeholders: dict[str, tuple[str, bytes]]) -> Any:
    if isinstance(value, dict):
        if value.get("@type") == _STRING_VALUE and (value.get("value") in placeholders):
            url, data = placeholders[value["value"]]
            return {"@type": url, "value": base64.b64encode(data).decode("ascii")}
        return {k: _unmask(v, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmask(v, placeholders) for v in value]
    return value
