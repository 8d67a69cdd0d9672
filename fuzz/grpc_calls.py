"""The gRPC server under fuzzing: any bytes as the request of any unary method must get a
precise status (never UNKNOWN or INTERNAL), and no handler error in the server's log."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Iterator

import grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from v1op.v1 import operation_service_pb2 as pb

from v1op_pb import Operation, pack
from v1op_pb.server.app import create_server
from v1op_pb.server.auth import Principal, TokenTable
from v1op_pb.server.store import SQLiteStore

__all__ = ["PRECISE", "UNARY_METHODS", "GrpcServer", "call_raw", "check_call", "grpc_seeds"]

TIMEOUT = 10.0
# Each may well be the right answer to a malformed request; UNKNOWN and INTERNAL never are.
PRECISE = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
_METADATA = struct_pb2.Struct(fields={"progress": struct_pb2.Value(number_value=0.5)})
_TOKEN = base64.urlsafe_b64encode(json.dumps({"after": 1, "scope": "list"}).encode()).decode()
UNARY_METHODS: list[tuple[str, Message]] = [
    ("/v1op.v1.OperationService/GetOperation", pb.GetOperationRequest(name="operations/a")),
    ("/v1op.v1.OperationService/BatchGetOperations",
     pb.BatchGetOperationsRequest(names=["operations/a", "operations/b"])),
    ("/v1op.v1.OperationService/ListOperations",
     pb.ListOperationsRequest(page_size=3, page_token=_TOKEN)),
    ("/v1op.v1.OperationService/ListUnseenOperations",
     pb.ListUnseenOperationsRequest(page_size=2, view=pb.OPERATION_VIEW_BASIC)),
    ("/v1op.v1.OperationService/UpdateOperation",
     pb.UpdateOperationRequest(operation=Operation(name="operations/a", metadata=pack(_METADATA)))),
    ("/v1op.v1.OperationService/FinalizeOperation",
     pb.FinalizeOperationRequest(
         operation=Operation(name="operations/a", done=True, response=pack(_METADATA)))),
    ("/v1op.v1.OperationService/AbortOperation", pb.AbortOperationRequest(name="operations/a")),
    ("/v1op.v1.OperationService/MarkOperationSeenByCreator",
     pb.MarkOperationSeenByCreatorRequest(name="operations/a")),
    ("/v1op.v1.OperationService/BatchMarkOperationSeenByCreator",
     pb.BatchMarkOperationSeenByCreatorRequest(names=["operations/a"])),
    ("/v1op.v1.OperationService/CreateOperation",
     pb.CreateOperationRequest(operation=Operation(metadata=pack(_METADATA)),
                               on_behalf_of="users/bob")),
    ("/v1op.v1.OperationProgressService/GetOperationProgressByParent",
     pb.GetOperationProgressByParentRequest(parent="operations/a")),
    ("/google.longrunning.Operations/GetOperation", lro.GetOperationRequest(name="operations/a")),
    ("/google.longrunning.Operations/ListOperations",
     lro.ListOperationsRequest(name="operations", filter="done=true", page_size=2)),
    ("/google.longrunning.Operations/DeleteOperation",
     lro.DeleteOperationRequest(name="operations/a")),
    ("/google.longrunning.Operations/CancelOperation",
     lro.CancelOperationRequest(name="operations/a")),
]  # fmt: skip


def call_raw(
    channel: grpc.Channel, method: str, raw: bytes, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """(code, details) of calling ``method`` with ``raw`` as its request bytes."""
    # Bytes in, bytes out: no serializer of ours.
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    try:
        call(raw, metadata=metadata, timeout=TIMEOUT)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class GrpcServer:
    """A server of its own (SQLite in memory) on a background event loop; calls come as
    users/bob, who may read and change only his own operations, and as services/eval."""

    def __init__(self) -> None:
        self.errors = _Errors()
        logging.getLogger("v1op.server").addHandler(self.errors)
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True).start()
        if not ready.wait(TIMEOUT):
            raise RuntimeError("the gRPC server did not start")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    async def _serve(self, ready: threading.Event) -> None:
        table = TokenTable({"bob": Principal("users/bob"), "eval": Principal("services/eval")})
        server, self.port = await create_server(
            "127.0.0.1:0", store=SQLiteStore(":memory:"), tokens=table
        )
        await server.start()
        ready.set()
        await asyncio.Event().wait()


def check_call(server: GrpcServer, data: bytes) -> None:
    """The first byte picks the method and the caller, the rest is the request."""
    if not data:
        return
    method, _ = UNARY_METHODS[data[0] % len(UNARY_METHODS)]
    who = "eval" if data[0] & 0x80 else "bob"
    code, details = call_raw(
        server.channel, method, data[1:], (("authorization", f"Bearer {who}"),)
    )
    assert code in PRECISE, (method, code, details)
    assert "Traceback" not in details and "<class" not in details, details
    errors, server.errors.records = server.errors.records, []
    assert not errors, [record.getMessage() for record in errors]


def grpc_seeds() -> Iterator[tuple[str, bytes]]:
    for index, (method, request) in enumerate(UNARY_METHODS):
        name = method.rsplit("/", 1)[1]
        yield f"{index:02d}-{name}", bytes([index]) + request.SerializeToString()
        yield f"{index:02d}-{name}-eval", bytes([index | 0x80]) + request.SerializeToString()
