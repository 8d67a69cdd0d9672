"""The clients of the reference server (need the ``grpc`` extra): ``OperationClient``
(``sync``) and ``AsyncOperationClient`` (``aio``, on grpc.aio), with the same methods.

A failed call raises google-api-core's exception of its code (``NotFound``,
``PermissionDenied``, ... from ``google.api_core.exceptions``), details typed;
``error_from_status`` turns a google.rpc.Status into one the same way.
"""

from ._common import ProgressThrottle, error_from_status, status_from_exception
from .aio import AsyncOperationClient, AsyncOperationRun
from .sync import OperationClient, OperationRun

__all__ = [
    "AsyncOperationClient",
    "AsyncOperationRun",
    "OperationClient",
    "OperationRun",
    "ProgressThrottle",
    "error_from_status",
    "status_from_exception",
]
