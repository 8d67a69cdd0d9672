"""The reference OperationService server (needs the ``grpc`` extra).

``create_server`` builds a grpc.aio server with OperationService, OperationProgressService,
google.longrunning.Operations, health checking and reflection; ``serve`` runs one until
SIGTERM. ``tls=ServerTLS.load(cert, key, client_ca)`` serves TLS (mutual TLS with a client
CA); ``auth=Authenticator(...)`` says who calls (v1op_pb.server.auth).
"""

from .._tls import ServerTLS
from .app import DEFAULT_MAX_MESSAGE_BYTES, create_server, serve
from .auth import Authenticator, Principal, TokenTable
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
    "Store",
    "TokenTable",
    "create_server",
    "serve",
]
