"""The reference server's rules, in one place whichever API a call came through: what a
valid name, batch and page are, who may read or change an operation, which state changes are
allowed, and the times the server stamps. Each refusal is a google-api-core exception with
typed details (BadRequest, ResourceInfo, PreconditionFailure); the manager (``manager``)
applies them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from google.api_core.exceptions import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from .._errors import excerpt
from .._operation import Operation
from .auth import Principal

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "check_batch",
    "check_creator",
    "check_name",
    "check_outcome",
    "check_read",
    "check_running",
    "copy_outcome",
    "fitting_count",
    "not_before",
    "page_size_of",
    "progress_of",
    "require_service",
    "resource_info",
    "stamp_update",
    "timestamp_of",
    "violation",
]

MAX_BATCH = 1000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_NAME = re.compile(r"operations/[^/]+\Z")


def check_name(name: str, field: str = "name") -> None:
    """``field`` is the request field that holds the name, for the BadRequest detail."""
    if not _NAME.match(name):
        raise InvalidArgument(
            f"{field}: {excerpt(name)} is not an operation name, operations/<id>",
            details=[violation(field, "must match operations/[^/]+")],
        )


def check_batch(names: Sequence[str]) -> None:
    if len(names) > MAX_BATCH:
        raise InvalidArgument(
            f"{len(names)} names given; at most {MAX_BATCH} per call",
            details=[violation("names", f"at most {MAX_BATCH}")],
        )
    for index, name in enumerate(names):
        check_name(name, f"names[{index}]")


def page_size_of(page_size: int) -> int:
    """The page size a request asks for, as the server takes it (AIP-158): 0 is the
    default, more than the maximum is the maximum."""
    if page_size < 0:
        raise InvalidArgument(
            f"page_size {page_size} is negative", details=[violation("page_size", "must be >= 0")]
        )
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def fitting_count(operations: Sequence[Operation], max_bytes: int) -> int:
    """How many of ``operations``, from the first, a response of ``max_bytes`` holds (at
    least one)."""
    size = 0
    for count, operation in enumerate(operations):
        length = operation.ByteSize()
        # The repeated field's tag (1 byte) and length prefix (at most 5 bytes).
        size += length + 6
        if size > max_bytes:
            return max(count, 1)
    return len(operations)


def check_read(who: Principal, operation: Operation) -> None:
    if operation.HasField("delete_time"):
        raise NotFound(
            f"operation {excerpt(operation.name)} not found",
            details=[resource_info(operation.name)],
        )
    if not who.is_service and operation.creator != who.name:
        raise PermissionDenied(f"{who.name} may not read {operation.name}")


def check_creator(who: Principal, operation: Operation, action: str) -> None:
    if operation.creator != who.name:
        raise PermissionDenied(f"only the creator of {operation.name} may {action} it")


def require_service(who: Principal, action: str) -> None:
    if not who.is_service:
        raise PermissionDenied(f"only services {action} operations")


def check_running(operation: Operation) -> None:
    if operation.done:
        raise FailedPrecondition(
            f"operation {excerpt(operation.name)} is already finished",
            details=[
                error_details_pb2.PreconditionFailure(
                    violations=[{"type": "STATE", "subject": operation.name, "description": "done"}]
                )
            ],
        )


def check_outcome(requested: Operation) -> None:
    if requested.WhichOneof("result") is None:
        raise InvalidArgument(
            "a finished operation carries exactly one of error or response",
            details=[violation("operation.result", "set error or response")],
        )


def copy_outcome(source: Operation, target: Operation) -> None:
    target.done = True
    if source.WhichOneof("result") == "error":
        target.error.CopyFrom(source.error)
    else:
        target.response.CopyFrom(source.response)


def stamp_update(operation: Operation, now: int, who: Principal) -> None:
    operation.update_time.CopyFrom(not_before(operation, now))
    operation.updater = who.name


def timestamp_of(nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def not_before(operation: Operation, now: int) -> timestamp_pb2.Timestamp:
    """``now``, or the operation's latest time when the wall clock stepped back below it:
    an operation's times never go backwards."""
    latest = max(
        operation.create_time.ToNanoseconds(),
        operation.update_time.ToNanoseconds(),
    )
    return timestamp_of(max(now, latest))


def progress_of(metadata: Message) -> tuple[float, str]:
    """``progress`` and ``message`` of a metadata message that has them (a Struct, or any
    message with a numeric ``progress`` and a string ``message`` field)."""
    if isinstance(metadata, struct_pb2.Struct):
        fields = metadata.fields
        progress = fields["progress"].number_value if "progress" in fields else 0.0
        message = fields["message"].string_value if "message" in fields else ""
        return progress, message
    fields_by_name = metadata.DESCRIPTOR.fields_by_name
    progress_field = fields_by_name.get("progress")
    message_field = fields_by_name.get("message")
    numeric = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)
    # Fields found by name on a message of any type: read dynamically.
    progress = (
        float(getattr(metadata, "progress"))  # noqa: B009
        if progress_field is not None and progress_field.cpp_type in numeric
        else 0.0
    )
    message = (
        str(getattr(metadata, "message"))  # noqa: B009
        if message_field is not None and message_field.cpp_type == FieldDescriptor.CPPTYPE_STRING
        else ""
    )
    return progress, message


def resource_info(name: str) -> error_details_pb2.ResourceInfo:
    return error_details_pb2.ResourceInfo(resource_type="v1op.v1.Operation", resource_name=name)


def violation(field: str, description: str) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[{"field": field, "description": description}]
    )
