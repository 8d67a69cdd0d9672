"""The client of the reference server (needs the ``grpc`` extra), and the errors a failed
call or a failed Operation raises."""

from .._exceptions import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    StatusError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    error_from_status,
    http_status_of,
)
from .sync import OperationClient

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
    "OperationClient",
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
