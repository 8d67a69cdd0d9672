"""What the client commands share: their options (the server's address, the token, types,
TLS, the output format), the client they open, one line on stderr for a refused call, and
printing messages with payload types learned from the server's reflection."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from .._codec import dumps
from .._codec.descriptors import is_repeated
from .._errors import ConversionError
from .._json import to_dict, to_json
from .._registry import TypeRegistry, unknown_type_of
from .common import EXIT_ERROR, add_type_options, registry_from
from .output import OUTPUTS
from .tls import add_client_tls_options, client_tls_from

if TYPE_CHECKING:
    from ..client import OperationClient

__all__ = [
    "ADDR_VARIABLE",
    "TOKEN_VARIABLE",
    "add_client_options",
    "json_of",
    "run_client_command",
]

ADDR_VARIABLE = "V1OP_ADDR"
TOKEN_VARIABLE = "V1OP_TOKEN"
_STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


def add_client_options(command: argparse.ArgumentParser, *, output: bool = True) -> None:
    addr = os.environ.get(ADDR_VARIABLE)
    command.add_argument(
        "--addr",
        required=addr is None,
        default=addr,
        metavar="HOST:PORT",
        help=f"the server's gRPC address (${ADDR_VARIABLE})",
    )
    command.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"bearer token (${TOKEN_VARIABLE})",
    )
    if output:
        command.add_argument(
            "--output",
            choices=OUTPUTS,
            default="json",
            help="json (default): the message as JSON; table: columns for people; name: the "
            "operation's name alone (for scripts: name=$(v1op create ... --output name))",
        )
    add_type_options(command)
    add_client_tls_options(command)


def run_client_command(
    args: argparse.Namespace, action: Callable[[OperationClient, argparse.Namespace], int]
) -> int:
    """``action`` with a client for ``args``; a refused call is one line on stderr and
    exit status 2."""
    # Before grpc is imported: its C core would also log a failed TLS handshake at info
    # level on stderr, which our one error line already says in full.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from google.api_core.exceptions import GoogleAPICallError

    from ..client import OperationClient

    registry = registry_from(args)
    try:
        with OperationClient(
            args.addr, token=args.token, registry=registry, **client_tls_from(args)
        ) as client:
            return action(client, args)
    except GoogleAPICallError as e:
        print(f"v1op: {describe(e)}", file=sys.stderr)
        return EXIT_ERROR


def describe(error: Any) -> str:
    """``CODE: message`` of an api-core exception."""
    code = error.grpc_status_code
    name = getattr(code, "name", None) or f"code {code}"
    return f"{name}: {error.message}"


def json_of(client: OperationClient, message: Message) -> str:
    """The JSON text of ``message``, payload types learned from the server when needed;
    a payload that the server's reflection cannot describe either is written as its type
    URL and base64 bytes, with a note on stderr."""
    registry = client.registry
    try:
        return client.with_learned_types(lambda: to_json(message, registry=registry))
    except ConversionError as e:
        name = unknown_type_of(e)
        if name is None:
            raise
        print(
            f"v1op: payload type {name!r} is unknown here and to the server's reflection; "
            "it is shown as base64 (give --import or --descriptor-set to read it)",
            file=sys.stderr,
        )
        return dumps(_opaque(message, registry))


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
