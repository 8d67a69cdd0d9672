"""The clients of the reference server (need the ``grpc`` extra): ``OperationClient``
(``sync``) and ``AsyncOperationClient`` (``aio``, on grpc.aio), with the same methods.

Every method takes ``retry=``, ``timeout=`` and ``metadata=`` as google-api-core's generated
clients do; ``list`` and ``list_unseen`` return pagers (``pagers``); payload types the
client does not know are learned from the server's reflection (``reflection``). A failed
call raises google-api-core's exception of its code (``NotFound``, ``PermissionDenied``, ...
from ``google.api_core.exceptions``), details typed; ``error_from_status`` turns a
google.rpc.Status into one the same way.
"""

from ._calls import DEFAULT
from ._common import error_from_status, status_from_exception
from .aio import AsyncOperationClient
from .pagers import AsyncListOperationsPager, ListOperationsPager
from .runs import AsyncOperationRun, OperationRun, ProgressThrottle
from .sync import OperationClient

__all__ = [
    "DEFAULT",
    "AsyncListOperationsPager",
    "AsyncOperationClient",
    "AsyncOperationRun",
    "ListOperationsPager",
    "OperationClient",
    "OperationRun",
    "ProgressThrottle",
    "error_from_status",
    "status_from_exception",
]
