"""What the synchronous and the asyncio client share, with no I/O of their own: how a
channel is set up (TLS, the bearer token, the retry policy), the requests, the errors, the
pacing of a wait and the throttling of progress reports."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions
from google.longrunning import operations_proto_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from v1op.v1 import operation_service_pb2 as pb

from .._any import pack
from .._operation import Operation
from .._registry import TypeRegistry
from .._status import make_status, status_details

__all__ = [
    "DEFAULT_PROGRESS_INTERVAL",
    "RETRIED_METHODS",
    "ChannelSettings",
    "Pacing",
    "channel_settings",
    "error_from_rpc",
    "error_from_status",
    "is_loopback",
    "refuse_plaintext_to_remote",
    "status_from_exception",
]

# The calls a retry cannot make happen twice: reads, and marking seen (the first time
# stays). Create, Update, Finalize and Abort are not retried: a retry after a lost answer
# would create a second operation or find it finished.
RETRIED_METHODS: tuple[tuple[str, str], ...] = (
    *(
        ("v1op.v1.OperationService", method)
        for method in (
            "GetOperation",
            "BatchGetOperations",
            "ListOperations",
            "ListUnseenOperations",
            "MarkOperationSeenByCreator",
            "BatchMarkOperationSeenByCreator",
        )
    ),
    ("v1op.v1.OperationProgressService", "GetOperationProgressByParent"),
    ("google.longrunning.Operations", "GetOperation"),
    ("google.longrunning.Operations", "ListOperations"),
    ("google.longrunning.Operations", "WaitOperation"),
    ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"),
)

# gRPC's own retries (the service config's retryPolicy): attempts spaced by a randomised
# exponential backoff, and never past the call's deadline, which gRPC enforces across
# attempts. 5 is the most gRPC allows.
RETRY_POLICY: dict[str, Any] = {
    "maxAttempts": 5,
    "initialBackoff": "0.2s",
    "maxBackoff": "3s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_PROGRESS_INTERVAL = 1.0

# WaitOperation asks the server to hold the call this long at most; the server may cap it.
WAIT_SLICE_SECONDS = 60.0
_POLL_FIRST, _POLL_MAX, _POLL_FACTOR = 0.1, 5.0, 1.6


def service_config() -> str:
    names = [{"service": service, "method": method} for service, method in RETRIED_METHODS]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}]})


@dataclass(frozen=True)
class ChannelSettings:
    """How to open a channel: ``credentials`` None means plaintext; ``metadata`` carries the
    token where it cannot go as call credentials (plaintext)."""

    target: str
    credentials: grpc.ChannelCredentials | None
    options: tuple[tuple[str, Any], ...]
    metadata: tuple[tuple[str, str], ...]


def channel_settings(
    target: str,
    *,
    token: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    insecure: bool = False,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> ChannelSettings:
    """The settings for a channel to ``target``.

    TLS is on when ``tls`` is true or any certificate or ``credentials`` is given
    (``root_certificates`` None: the system's roots); ``private_key`` with
    ``certificate_chain`` is the client certificate of mutual TLS. Over TLS the token goes as
    call credentials. Over plaintext it goes as metadata, and only to a loopback address
    unless ``insecure`` says the caller accepts sending it in clear (as grpcurl -plaintext).
    """
    if (private_key is None) != (certificate_chain is None):
        raise ValueError("a client certificate needs both private_key and certificate_chain")
    use_tls = tls or credentials is not None or root_certificates is not None
    use_tls = use_tls or private_key is not None
    if use_tls and insecure:
        raise ValueError("insecure (plaintext) contradicts the TLS settings given")
    options: tuple[tuple[str, Any], ...] = (
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config()),
    )
    if use_tls:
        if credentials is None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates, private_key, certificate_chain
            )
        if token:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(token)
            )
        return ChannelSettings(target, credentials, options, ())
    if token and not insecure:
        refuse_plaintext_to_remote(target)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    return ChannelSettings(target, None, options, metadata)


def refuse_plaintext_to_remote(target: str, flag_prefix: str = "--") -> None:
    """Raise ValueError unless ``target`` is on this machine: bearer tokens must not cross a
    network in clear unless the caller says insecure. The message names the command-line
    flags that say so, ``flag_prefix`` first (``--grpc-`` for ``v1op gateway``)."""
    if not is_loopback(target):
        raise ValueError(
            f"refusing to send bearer tokens in plaintext to {target}: use TLS "
            f"(root certificates, {flag_prefix}tls-ca) or say insecure ({flag_prefix}insecure) "
            "to send them in clear"
        )


def is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine only (a loopback address, localhost, or a
    Unix socket), where plaintext crosses no network."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 or "]" in target else target
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- errors ------------------------------------------------------------------------------


def error_from_status(
    status: status_pb2.Status, registry: TypeRegistry | None = None, *, response: Any = None
) -> exceptions.GoogleAPICallError:
    """google-api-core's exception for a Status: the class of its code (GoogleAPICallError
    for a code outside google.rpc.Code, with that code kept in ``grpc_status_code``), its
    message, and its details unpacked into their own classes (unknown ones stay Any)."""
    details = status_details(status, registry)
    info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
    error: exceptions.GoogleAPICallError = exceptions.from_grpc_status(
        status.code, status.message, details=details, error_info=info, response=response
    )
    return error


def error_from_rpc(
    error: grpc.RpcError, registry: TypeRegistry | None = None
) -> exceptions.GoogleAPICallError:
    """The exception for a failed call, from its rich Status (grpc-status-details-bin) or,
    without one, from its code and message."""
    status = None
    # ValueError: a details trailer that contradicts the call's code; trust the code.
    with contextlib.suppress(ValueError):
        # A failed call's RpcError is its grpc.Call too; the stubs do not say so.
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        code = error.code().value[0]
        status = make_status(code, error.details() or "")
    return error_from_status(status, registry, response=error)


def status_from_exception(error: BaseException) -> status_pb2.Status:
    """The Status an operation ends with when its work raised ``error``.

    An api-core exception gives its own code, message and details: raise one to choose what
    the creator reads. Otherwise: TimeoutError is DEADLINE_EXCEEDED, cancellation and
    KeyboardInterrupt CANCELLED, NotImplementedError UNIMPLEMENTED, anything else UNKNOWN,
    with the exception's type and message.
    """
    if isinstance(error, exceptions.GoogleAPICallError):
        grpc_code = error.grpc_status_code
        code: int
        if grpc_code is None:
            code = code_pb2.UNKNOWN
        elif isinstance(grpc_code, grpc.StatusCode):
            code = int(grpc_code.value[0])
        else:  # api-core's annotation says StatusCode, but from_grpc_status keeps an int
            code = int(grpc_code)  # type: ignore[unreachable]  # outside google.rpc.Code
        details = [d for d in error.details if isinstance(d, Message)]
        return make_status(code, str(error.message), details)
    if isinstance(error, TimeoutError):
        code = code_pb2.DEADLINE_EXCEEDED
    elif isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
        code = code_pb2.CANCELLED
    elif isinstance(error, NotImplementedError):
        code = code_pb2.UNIMPLEMENTED
    else:
        code = code_pb2.UNKNOWN
    text = str(error)
    return make_status(code, f"{type(error).__name__}: {text}" if text else type(error).__name__)


# --- requests ----------------------------------------------------------------------------


def create_request(metadata: Message | None, on_behalf_of: str) -> pb.CreateOperationRequest:
    operation = Operation()
    if metadata is not None:
        operation.metadata.CopyFrom(pack(metadata))
    return pb.CreateOperationRequest(operation=operation, on_behalf_of=on_behalf_of)


def update_request(name: str, metadata: Message) -> pb.UpdateOperationRequest:
    operation = Operation(name=name)
    operation.metadata.CopyFrom(pack(metadata))
    return pb.UpdateOperationRequest(operation=operation)


def finalize_request(
    name: str,
    *,
    response: Message | None = None,
    error: status_pb2.Status | BaseException | None = None,
    metadata: Message | None = None,
) -> pb.FinalizeOperationRequest:
    """Finalize with exactly one of ``response`` (a message, packed) and ``error`` (a
    Status, or an exception turned into one by status_from_exception)."""
    if (response is None) == (error is None):
        raise ValueError("finalize with exactly one of response and error")
    operation = Operation(name=name, done=True)
    if metadata is not None:
        operation.metadata.CopyFrom(pack(metadata))
    if response is not None:
        operation.response.CopyFrom(pack(response))
    elif isinstance(error, BaseException):
        operation.error.CopyFrom(status_from_exception(error))
    elif error is not None:
        if error.code == code_pb2.OK:
            raise ValueError("an error Status needs a code other than OK")
        operation.error.CopyFrom(error)
    return pb.FinalizeOperationRequest(operation=operation)


def wait_request(seconds: float) -> operations_proto_pb2.WaitOperationRequest:
    request = operations_proto_pb2.WaitOperationRequest()
    request.timeout.FromNanoseconds(int(seconds * 1e9))
    return request


# --- pacing --------------------------------------------------------------------------------


class Pacing:
    """The deadline of a wait, the length of each WaitOperation slice, and the jittered
    backoff between GetOperation polls where the server lacks WaitOperation."""

    def __init__(self, timeout: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = None if timeout is None else clock() + timeout
        self._delay = _POLL_FIRST

    def expired(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline

    def wait_slice(self) -> float:
        if self.deadline is None:
            return WAIT_SLICE_SECONDS
        return max(0.0, min(self.deadline - self._clock(), WAIT_SLICE_SECONDS))

    def next_pause(self) -> float:
        pause = self._delay * random.uniform(0.8, 1.2)  # jitter, so clients do not align
        self._delay = min(self._delay * _POLL_FACTOR, _POLL_MAX)
        if self.deadline is not None:
            pause = max(0.0, min(pause, self.deadline - self._clock()))
        return pause
