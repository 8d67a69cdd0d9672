"""A small synchronous client for the reference server, over the generated stubs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2_grpc, operations_proto_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from .._any import unpack
from .._exceptions import DeadlineExceeded, StatusError, error_from_status
from .._operation import Operation
from .._registry import TypeRegistry
from .._status import make_status

__all__ = ["OperationClient"]

T = TypeVar("T")

# WaitOperation asks the server to hold the call this long at most; the server may cap it.
_WAIT_SLICE_SECONDS = 60.0
_POLL_FIRST, _POLL_MAX, _POLL_FACTOR = 0.1, 5.0, 1.6


class OperationClient:
    """Reads, waits for and ends Operations on a server that speaks OperationService.

    ``token`` goes out as ``authorization: Bearer <token>`` on every call. A failed call
    raises the StatusError of its code (NotFound, PermissionDenied, ...), typed details kept.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        channel: grpc.Channel | None = None,
        registry: TypeRegistry | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._own_channel = channel is None
        self._channel = channel if channel is not None else grpc.insecure_channel(target)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._operations = pb_grpc.OperationServiceStub(self._channel)
        self._longrunning = operations_pb2_grpc.OperationsStub(self._channel)
        self._registry = registry
        self.timeout = timeout

    def get(self, name: str) -> Operation:
        request = pb.GetOperationRequest(name=name)
        return self._call(self._operations.GetOperation, request).operation

    def list(self, page_size: int = 0) -> pb.ListOperationsResponse:
        request = pb.ListOperationsRequest(page_size=page_size)
        return self._call(self._operations.ListOperations, request)

    def list_unseen(
        self, page_size: int = 0, view: int = pb.OPERATION_VIEW_FULL
    ) -> pb.ListUnseenOperationsResponse:
        request = pb.ListUnseenOperationsRequest(page_size=page_size, view=view)
        return self._call(self._operations.ListUnseenOperations, request)

    def mark_seen(self, name: str) -> Operation:
        request = pb.MarkOperationSeenByCreatorRequest(name=name)
        return self._call(self._operations.MarkOperationSeenByCreator, request).operation

    def abort(self, name: str) -> Operation:
        request = pb.AbortOperationRequest(name=name)
        return self._call(self._operations.AbortOperation, request).operation

    def wait(self, name: str, timeout: float | None = None) -> Operation:
        """The operation once done, or as it is when ``timeout`` seconds have passed.

        Uses google.longrunning's WaitOperation, which the server answers when the
        operation finishes; against a server without it, polls GetOperation with backoff.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            return self._wait_on_server(name, deadline)
        except StatusError as e:
            if e.code != grpc.StatusCode.UNIMPLEMENTED.value[0]:
                raise
        return self._poll(name, deadline)

    def result(self, name: str, timeout: float | None = None) -> Message:
        """The unpacked response of the finished operation.

        Raises the StatusError built from the operation's error (code kept, details typed),
        or DeadlineExceeded when it is not finished within ``timeout`` seconds.
        """
        operation = self.wait(name, timeout)
        if not operation.done:
            raise DeadlineExceeded(f"operation {name!r} did not finish within {timeout}s")
        if operation.WhichOneof("result") == "error":
            raise error_from_status(operation.error)
        return unpack(operation.response, self._registry)

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def __enter__(self) -> OperationClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _wait_on_server(self, name: str, deadline: float | None) -> Operation:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            slice_seconds = (
                _WAIT_SLICE_SECONDS if remaining is None else min(remaining, _WAIT_SLICE_SECONDS)
            )
            request = operations_proto_pb2.WaitOperationRequest(name=name)
            request.timeout.FromNanoseconds(int(slice_seconds * 1e9))
            self._call(self._longrunning.WaitOperation, request, timeout=slice_seconds + 10)
            # Read it back through OperationService: the longrunning view lacks our fields.
            operation = self.get(name)
            if operation.done or (deadline is not None and time.monotonic() >= deadline):
                return operation

    def _poll(self, name: str, deadline: float | None) -> Operation:
        delay = _POLL_FIRST
        while True:
            operation = self.get(name)
            if operation.done:
                return operation
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return operation
            pause = delay * random.uniform(0.8, 1.2)  # jitter, so clients do not align
            if deadline is not None:
                pause = min(pause, deadline - now)
            time.sleep(pause)
            delay = min(delay * _POLL_FACTOR, _POLL_MAX)

    def _call(
        self, method: Callable[..., T], request: Message, *, timeout: float | None = None
    ) -> T:
        try:
            return method(
                request,
                metadata=self._metadata,
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            raise _error_from_rpc(e) from e


def _error_from_rpc(error: grpc.RpcError) -> StatusError:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        code = error.code().value[0]  # type: ignore[attr-defined]
        status = make_status(code, error.details() or "")  # type: ignore[attr-defined]
    return error_from_status(status)
