"""The reference OperationService server (needs the ``grpc`` extra).

``create_server`` builds a grpc.aio server with OperationService, OperationProgressService,
google.longrunning.Operations, health checking and reflection; ``create_servers`` adds the
HTTP port (REST, Connect, gRPC-Web; needs the ``rest`` extra) on the same services, in the
same process; ``serve`` runs them until SIGTERM. ``tls=ServerTLS.load(cert, key,
client_ca)`` serves TLS (mutual TLS with a client CA); ``auth=Authenticator(...)`` says who
calls (v1op_pb.server.auth).
"""

from .._tls import ServerTLS
from .app import DEFAULT_MAX_MESSAGE_BYTES, Servers, create_server, create_servers, serve
from .auth import Authenticator, Principal, TokenTable
from .dispatch import ServiceDispatcher
from .manager import MAX_BATCH, OperationManager
from .store import Page, Query, SQLiteStore, Store

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_BATCH",
    "Authenticator",
    "OperationManager",
    "Page",
    "Principal",
    "Query",
    "SQLiteStore",
    "ServerTLS",
    "Servers",
    "ServiceDispatcher",
    "Store",
    "TokenTable",
    "create_server",
    "create_servers",
    "serve",
]
