"""google.rpc.Status with typed details."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from ._any import pack, unpack
from ._errors import ConversionError
from ._registry import TypeRegistry

__all__ = ["Status", "make_status", "status_details"]

Status = status_pb2.Status


def make_status(code: int, message: str = "", details: Iterable[Message] = ()) -> Status:
    """A Status with the given google.rpc.Code, message and details.

    Details may be any messages (ErrorInfo, RetryInfo, BadRequest, ... or your own); each is
    packed into an Any, and an Any is taken as it is.
    """
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"code must be an int (a google.rpc.Code), got {type(code).__name__}")
    if not -(2**31) <= code < 2**31:
        raise ValueError(f"code {code} is out of the int32 range")
    packed = [d if isinstance(d, any_pb2.Any) else pack(d) for d in details]
    return Status(code=code, message=message, details=packed)


def status_details(status: Status, registry: TypeRegistry | None = None) -> list[Message]:
    """The details of a Status, each unpacked into its own message class.

    A detail whose type is unknown to the registry stays an Any, so nothing is lost; test a
    detail with ``isinstance(detail, ErrorInfo)``, or an Any with ``detail.Is(...)``.
    """
    out: list[Message] = []
    for detail in status.details:
        try:
            out.append(unpack(detail, registry))
        except ConversionError:
            out.append(detail)
    return out


def code_name(code: int) -> str:
    """The google.rpc.Code name of a code number, or the number as text."""
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return str(code)
