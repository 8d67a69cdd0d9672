"""Errors that carry a google.rpc.Status, one class per google.rpc.Code.

Like google-api-core's exceptions: the classes are found through a table by gRPC code, and
each knows the HTTP status a gRPC-to-REST gateway answers with for it. The server raises
them to end a call; the client raises them for a failed call or a failed Operation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from ._status import make_status, status_details

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "StatusError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "error_from_status",
    "http_status_of",
]


class StatusError(Exception):
    """A failure described by a google.rpc.Status: ``code``, ``message``, typed ``details``."""

    code: ClassVar[int] = code_pb2.UNKNOWN
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        details: Iterable[Message] = (),
        *,
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is None:
            status = make_status(self.code, message, details)
        elif status.code != self.code:
            self.code = status.code  # type: ignore[misc]  # a code outside google.rpc.Code
        self.status = status

    @property
    def details(self) -> list[Message]:
        """The details, each as its own message class where its type is known."""
        return status_details(self.status)

    @property
    def code_name(self) -> str:
        try:
            return code_pb2.Code.Name(self.code)
        except ValueError:
            return f"code {self.code}"

    def __str__(self) -> str:
        return f"{self.code_name}: {self.message}"


class Cancelled(StatusError):
    code = code_pb2.CANCELLED
    http_status = 499


class Unknown(StatusError):
    code = code_pb2.UNKNOWN
    http_status = 500


class InvalidArgument(StatusError):
    code = code_pb2.INVALID_ARGUMENT
    http_status = 400


class DeadlineExceeded(StatusError):
    code = code_pb2.DEADLINE_EXCEEDED
    http_status = 504


class NotFound(StatusError):
    code = code_pb2.NOT_FOUND
    http_status = 404


class AlreadyExists(StatusError):
    code = code_pb2.ALREADY_EXISTS
    http_status = 409


class PermissionDenied(StatusError):
    code = code_pb2.PERMISSION_DENIED
    http_status = 403


class ResourceExhausted(StatusError):
    code = code_pb2.RESOURCE_EXHAUSTED
    http_status = 429


class FailedPrecondition(StatusError):
    code = code_pb2.FAILED_PRECONDITION
    http_status = 400


class Aborted(StatusError):
    code = code_pb2.ABORTED
    http_status = 409


class OutOfRange(StatusError):
    code = code_pb2.OUT_OF_RANGE
    http_status = 400


class Unimplemented(StatusError):
    code = code_pb2.UNIMPLEMENTED
    http_status = 501


class Internal(StatusError):
    code = code_pb2.INTERNAL
    http_status = 500


class Unavailable(StatusError):
    code = code_pb2.UNAVAILABLE
    http_status = 503


class DataLoss(StatusError):
    code = code_pb2.DATA_LOSS
    http_status = 500


class Unauthenticated(StatusError):
    code = code_pb2.UNAUTHENTICATED
    http_status = 401


_BY_CODE: dict[int, type[StatusError]] = {cls.code: cls for cls in StatusError.__subclasses__()}


def error_from_status(status: status_pb2.Status) -> StatusError:
    """The exception for a Status: the class of its code, carrying the Status unchanged.

    A code outside google.rpc.Code gives a plain StatusError that keeps the code.
    """
    copy = status_pb2.Status()
    copy.CopyFrom(status)
    return _BY_CODE.get(status.code, StatusError)(status.message, status=copy)


def http_status_of(code: int) -> int:
    """The HTTP status a gRPC-to-REST gateway answers with for a gRPC code (200 for OK)."""
    if code == code_pb2.OK:
        return 200
    cls = _BY_CODE.get(code)
    return cls.http_status if cls is not None else 500
