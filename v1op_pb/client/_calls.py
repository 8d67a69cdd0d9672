"""The per-call options of both clients, as google-api-core's generated clients take them
(``retry=``, ``timeout=``, ``metadata=``), and what a finished operation's result is; no
I/O of their own."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from google.api_core import exceptions, retry_async
from google.api_core import retry as retries
from google.protobuf.message import Message
from google.rpc import status_pb2

from .._any import unpack
from .._operation import Operation
from .._registry import TypeRegistry, type_name_of
from ._common import error_from_status

__all__ = [
    "DEFAULT",
    "CallOptions",
    "OptionalAsyncRetry",
    "OptionalRetry",
    "OptionalTimeout",
    "call_options",
    "check_call_metadata",
    "result_of",
    "unknown_detail_types",
]

M = TypeVar("M", bound=Message)


class _MethodDefault(enum.Enum):
    """What an option left out means: the client's own behaviour. (api-core's generated
    clients spell it gapic_v1.method.DEFAULT, which is taken too; importing gapic_v1 would
    import grpc_helpers and google.auth's transport, and their warnings, into every CLI
    command.)"""

    DEFAULT = "DEFAULT"


DEFAULT = _MethodDefault.DEFAULT

# The annotations api-core's generated clients use: DEFAULT is "what the client does
# without being told", None is "none".
OptionalRetry: TypeAlias = "retries.Retry | _MethodDefault | None"
OptionalAsyncRetry: TypeAlias = "retry_async.AsyncRetry | _MethodDefault | None"
OptionalTimeout: TypeAlias = "float | _MethodDefault | None"


def _is_default(value: object) -> bool:
    # api-core's own sentinel, by its type's name: comparing with it would need the import.
    return value is DEFAULT or type(value).__name__ == "_MethodDefault"


@dataclass(frozen=True)
class CallOptions:
    """How to make one call: its deadline in seconds (None: none), the api-core retry that
    wraps it (None: gRPC's own retries only, as the channel's service config sets them),
    and its metadata (the client's, then the call's)."""

    timeout: float | None
    retry: retries.Retry | retry_async.AsyncRetry | None
    metadata: tuple[tuple[str, str], ...]


def check_call_metadata(metadata: object) -> tuple[tuple[str, str], ...]:
    """The call's gRPC metadata as pairs; a message here is the old spelling of the
    operation's metadata, which has a name of its own now."""
    if isinstance(metadata, Message):
        raise TypeError(
            "metadata= is the call's gRPC metadata (key, value) pairs, as in google-api-core; "
            "pass the operation's metadata message positionally or as operation_metadata="
        )
    if isinstance(metadata, (str, bytes)):
        raise TypeError("metadata= takes (key, value) pairs, not a string")
    pairs: list[tuple[str, str]] = []
    for pair in metadata:  # type: ignore[attr-defined]  # checked here, at run time
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"metadata= takes (key, value) pairs, got {pair!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def call_options(
    *,
    default_timeout: float | None,
    client_metadata: tuple[tuple[str, str], ...],
    retry: OptionalRetry | OptionalAsyncRetry,
    timeout: OptionalTimeout,
    metadata: Sequence[tuple[str, str]],
) -> CallOptions:
    if _is_default(retry):
        retry = None
    if _is_default(timeout):
        timeout = default_timeout
    if not (retry is None or isinstance(retry, (retries.Retry, retry_async.AsyncRetry))):
        raise TypeError(f"retry= takes a google.api_core Retry or AsyncRetry, got {retry!r}")
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout= takes seconds (a number) or None, got {timeout!r}")
    return CallOptions(timeout, retry, client_metadata + check_call_metadata(metadata))


def unknown_detail_types(status: status_pb2.Status, registry: TypeRegistry) -> list[str]:
    """The full names of the details of ``status`` that ``registry`` cannot read."""
    return [
        type_name_of(detail.type_url)
        for detail in status.details
        if detail.type_url not in registry
    ]


def result_of(
    operation: Operation,
    timeout: float | None,
    registry: TypeRegistry | None,
    message_type: type[M] | None = None,
) -> Message:
    """The unpacked response of a finished operation (a ``message_type`` when given, which
    the response must be); raises the api-core exception of its error, or DeadlineExceeded
    when it is still running."""
    if not operation.done:
        raise exceptions.DeadlineExceeded(
            f"operation {operation.name!r} did not finish within {timeout}s"
        )
    if operation.WhichOneof("result") == "error":
        raise error_from_status(operation.error, registry)
    if message_type is not None:
        return unpack(operation.response, message_type=message_type)
    return unpack(operation.response, registry)
