"""Ending a call with google-api-core's exceptions: the one Status a raised exception
stands for, so clients read its code, message and typed details."""

from __future__ import annotations

from google.api_core.exceptions import GoogleAPICallError
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from .._status import make_status

__all__ = ["status_of"]


def status_of(error: GoogleAPICallError) -> status_pb2.Status:
    """The google.rpc.Status of an api-core exception: its gRPC code (UNKNOWN for one
    without), its message and its details, packed (details that are not messages, which
    api-core allows for HTTP errors, are left out: a Status cannot carry them)."""
    grpc_code = error.grpc_status_code
    code = code_pb2.UNKNOWN if grpc_code is None else int(grpc_code.value[0])
    details = [d for d in error.details if isinstance(d, Message)]
    return make_status(code, str(error.message), details)
