"""A unary call as every protocol of the server makes it, and the one interface they call
through.

gRPC, REST, Connect and gRPC-Web each turn a request into a ``CallInfo`` (who asks, for
which method, with which metadata, over which connection) and a request message, and hand
both to a ``Dispatcher``: in the server's own process the services themselves
(``v1op_pb.server.dispatch``), in ``v1op gateway`` a gRPC channel to a remote server. A
call that fails raises ``CallError`` with the one google.rpc.Status its caller gets, in
whatever shape its protocol gives a Status.

Standard library and protobuf only, so that the server and the gateway share these types
without importing each other. The wording of the refusals every protocol makes alike is
here too, so it is written once.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from ._status import make_status

__all__ = [
    "CONNECT",
    "GRPC",
    "GRPC_WEB",
    "MAX_AUTHORIZATION_CHARS",
    "REQUEST_ID",
    "REST",
    "UNAUTHENTICATED_MESSAGE",
    "CallError",
    "CallInfo",
    "Dispatcher",
    "MethodSpec",
    "check_authorization",
    "given_request_id",
    "method_specs",
    "not_binary_message",
    "over_limit",
    "request_id_of",
]

GRPC = "grpc"
REST = "rest"
CONNECT = "connect"
GRPC_WEB = "grpc-web"
# What every refused caller hears, on every protocol (the reason goes to the server log).
UNAUTHENTICATED_MESSAGE = "unauthenticated: the call carries no credential this server accepts"
# A bearer token is printable ASCII; anything longer than this is not one the server gave
# out, and gRPC's metadata limit would refuse it further on.
MAX_AUTHORIZATION_CHARS = 4096
# The metadata key (HTTP header) of a call's request id: taken from the caller when it sends
# a usable one, made otherwise, logged with the call and sent back on every protocol.
REQUEST_ID = "x-request-id"
MAX_REQUEST_ID_CHARS = 128
_NOT_IN_REQUEST_IDS = frozenset(' "\\')
# The request id an HTTP port's middleware gave the request its current task serves, for
# the CallInfo the port's handlers make (None: no middleware gave one).
given_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "v1op_request_id", default=None
)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The facts of one call, the same for every protocol: what metrics, access logs and
    tracing see, and what identity is decided from."""

    protocol: str  # GRPC, REST, CONNECT or GRPC_WEB
    method: str  # the full method name: "/v1op.v1.OperationService/GetOperation"
    metadata: tuple[tuple[str, str], ...]  # text metadata (HTTP headers), keys lowercase
    peer: str  # "ipv4:127.0.0.1:53124", as gRPC names peers
    # DER of the client's verified leaf certificate under mutual TLS, else None.
    peer_certificate: bytes | None = None
    # time.monotonic() by which the caller wants its answer; None: no deadline.
    deadline: float | None = None
    # What the access log, the caller and any server behind a gateway know the call by.
    request_id: str = ""

    def header(self, key: str) -> str | None:
        """The first value of a metadata key (lowercase), or None."""
        for name, value in self.metadata:
            if name == key:
                return value
        return None


class CallError(Exception):
    """The call ended with ``status`` (never OK): the answer its caller gets."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    @classmethod
    def of(cls, code: int, message: str) -> CallError:
        return cls(make_status(code, message))


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A unary method every protocol serves: its name, descriptor and message classes."""

    name: str  # "/v1op.v1.OperationService/GetOperation"
    descriptor: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]
    # Marked `option idempotency_level = NO_SIDE_EFFECTS`: Connect serves it over GET too.
    no_side_effects: bool


def method_specs(services: Iterable[ServiceDescriptor]) -> dict[str, MethodSpec]:
    """The unary methods of ``services``, by full method name."""
    specs = {}
    for service in services:
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            name = f"/{service.full_name}/{method.name}"
            options = descriptor_pb2.MethodOptions.FromString(
                method.GetOptions().SerializeToString()
            )
            specs[name] = MethodSpec(
                name,
                method,
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type),
                options.idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
            )
    return specs


class Dispatcher(Protocol):
    """Where every protocol's calls go: in-process to the services, or over gRPC."""

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        """The methods it answers, by full name."""

    async def call(self, info: CallInfo, request: Message) -> Message:
        """The method's response to ``request``; CallError with the Status otherwise."""

    async def learn_type(self, full_name: str) -> bool:
        """Make a payload type the codecs could not find known, if the server knows it:
        True when it is known now."""

    async def ready(self) -> bool:
        """Whether calls can be answered now (the store, or the remote server, is
        reachable)."""


def check_authorization(metadata: Sequence[tuple[str, str]]) -> None:
    """Refuse an ``authorization`` value that cannot be a bearer token: gRPC metadata takes
    printable ASCII only, so no token anyone was given is anything else."""
    for key, value in metadata:
        if key == "authorization" and (
            len(value) > MAX_AUTHORIZATION_CHARS or not _printable_ascii(value)
        ):
            raise CallError.of(code_pb2.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


def request_id_of(metadata: Sequence[tuple[str, str]]) -> str:
    """The caller's ``x-request-id`` when it is 1 to 128 printable ASCII characters without
    spaces, quotes or backslashes (anything else would be a burden on every log that keeps
    it), else a new one: 32 random hex digits (from ``random``, reseeded in every forked
    worker: an id need only be unique, and os.urandom would be a system call a call)."""
    for key, value in metadata:
        if key == REQUEST_ID:
            if (
                0 < len(value) <= MAX_REQUEST_ID_CHARS
                and _printable_ascii(value)
                and not _NOT_IN_REQUEST_IDS.intersection(value)
            ):
                return value
            break
    return f"{random.getrandbits(128):032x}"


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def not_binary_message(what: str) -> CallError:
    """Request bytes that are not a valid message of the request type."""
    return CallError.of(
        code_pb2.INVALID_ARGUMENT, f"the request is not a valid {what} in binary form"
    )


def over_limit(size: int | None, limit: int) -> CallError:
    """A request body or message larger than the server takes."""
    if size is None:
        text = f"the request is over the limit of {limit} bytes"
    else:
        text = f"the request of {size} bytes is over the limit of {limit} bytes"
    return CallError.of(code_pb2.RESOURCE_EXHAUSTED, text)
