"""The servers ``bench.server_bench`` measures ``v1op serve`` against, each run as a process
of its own: ``python -m bench.bare_servicers KIND [ARGS]``, which prints ``bench: serving on
HOST:PORT`` once it listens and stops on SIGTERM.

* ``dict``: a bare grpc.aio servicer of the generated OperationService answering from a dict,
  the ceiling of grpc.aio here; ``dict-sync`` the same on grpc's thread-pool server;
  ``dict-interceptor`` the same with ``v1op serve``'s request interceptor in front (to tell
  how much of the distance to ``v1op serve`` that is);
* ``thread-sqlite PATH`` and ``thread-postgres URL``: one transaction per call in a thread
  (``asyncio.to_thread``), with the store's SQL and PRAGMAs, as the store was before group
  commit; ``thread-sqlite-sync PATH`` the same transactions in grpc's own handler threads;
* ``variant reader-thread|to-thread ARGS...``: ``v1op serve ARGS...`` whose SQLite store
  reads by name in one long-lived reader thread that takes every read waiting, or in
  ``asyncio.to_thread`` per read (the store before), for the choice of reading on the loop;
* ``unobserved ARGS...``: ``v1op serve ARGS...`` with no access log, metrics or spans (the
  observation hooks still run, telling nothing), for what observation costs a call;
  ``memory-unobserved ARGS...`` the same, its store answering reads by name from memory once
  it has read a name (no other process writes in the bench; the bench reads one name), for
  what is left of ``v1op serve`` when its store's read and its log cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation

SERVICE = "services/bench"
# Handler threads of the grpc sync server: as many as the benchmark has calls in flight.
SYNC_THREADS = 16

# --- the bare servicers ----------------------------------------------------------------------


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _created(request: pb.CreateOperationRequest) -> Operation:
    operation = Operation()
    operation.CopyFrom(request.operation)
    operation.name = f"operations/{uuid.uuid4()}"
    operation.creator = request.on_behalf_of or SERVICE
    operation.create_time.CopyFrom(_now())
    return operation


def _updated(operation: Operation, request: Operation) -> Operation:
    operation.metadata.CopyFrom(request.metadata)
    operation.update_time.CopyFrom(_now())
    return operation


def _finalized(operation: Operation, request: Operation) -> Operation:
    operation.done = True
    operation.response.CopyFrom(request.response)
    operation.update_time.CopyFrom(_now())
    return operation


class DictServicer(pb_grpc.OperationServiceServicer):
    """The ceiling: answers from a dict, no identity, no rules, no database."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}

    def CreateOperation(self, request: Any, context: Any) -> Any:
        operation = _created(request)
        self.operations[operation.name] = operation
        return pb.CreateOperationResponse(operation=operation)

    def GetOperation(self, request: Any, context: Any) -> Any:
        return pb.GetOperationResponse(operation=self.operations[request.name])

    def UpdateOperation(self, request: Any, context: Any) -> Any:
        operation = _updated(self.operations[request.operation.name], request.operation)
        return pb.UpdateOperationResponse(operation=operation)

    def FinalizeOperation(self, request: Any, context: Any) -> Any:
        operation = _finalized(self.operations[request.operation.name], request.operation)
        return pb.FinalizeOperationResponse(operation=operation)


class AsyncDictServicer(DictServicer):
    """DictServicer's handlers as coroutines, for grpc.aio."""

    async def CreateOperation(self, request: Any, context: Any) -> Any:
        return DictServicer.CreateOperation(self, request, context)

    async def GetOperation(self, request: Any, context: Any) -> Any:
        return DictServicer.GetOperation(self, request, context)

    async def UpdateOperation(self, request: Any, context: Any) -> Any:
        return DictServicer.UpdateOperation(self, request, context)

    async def FinalizeOperation(self, request: Any, context: Any) -> Any:
        return DictServicer.FinalizeOperation(self, request, context)


def _columns(operation: Operation) -> tuple[str, bool, bool, bool, bytes]:
    return (
        operation.creator,
        operation.done,
        operation.HasField("seen_by_creator_time"),
        operation.HasField("delete_time"),
        operation.SerializeToString(deterministic=True),
    )


class ThreadSQLite:
    """One transaction per call, in a thread: the store's SQL and PRAGMAs on one connection
    that a lock keeps to one thread at a time (the SQLite store before group commit)."""

    def __init__(self, path: str) -> None:
        from v1op_pb.server.store import SQLiteStore

        SQLiteStore(path).close()  # the store's own tables
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.lock = threading.Lock()

    def insert(self, operation: Operation) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO operations (name, creator, done, seen, deleted, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (operation.name, *_columns(operation)),
            )

    def get(self, name: str) -> Operation:
        with self.lock:
            (data,) = self.db.execute(
                "SELECT data FROM operations WHERE name = ?", (name,)
            ).fetchone()
        return Operation.FromString(data)

    def modify(self, name: str, change: Callable[[Operation], Operation]) -> Operation:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                (data,) = self.db.execute(
                    "SELECT data FROM operations WHERE name = ?", (name,)
                ).fetchone()
                operation = change(Operation.FromString(data))
                self.db.execute(
                    "UPDATE operations SET creator = ?, done = ?, seen = ?, deleted = ?, "
                    "data = ? WHERE name = ?",
                    (*_columns(operation), name),
                )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        return operation


class ThreadPostgres:
    """One transaction per call, in a thread: the store's SQL over a psycopg pool of 8 (the
    PostgreSQL store before group commit)."""

    def __init__(self, url: str) -> None:
        from psycopg_pool import ConnectionPool

        from v1op_pb.server.store import open_store

        open_store(url).close()  # the store's own tables
        self.pool = ConnectionPool(url, min_size=1, max_size=8, open=True)

    def insert(self, operation: Operation) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x7631_6F71,))
            conn.execute(
                "INSERT INTO v1op_operations (name, creator, done, seen, deleted, data) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (operation.name, *_columns(operation)),
            )

    def get(self, name: str) -> Operation:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT data FROM v1op_operations WHERE name = %s", (name,)
            ).fetchone()
        assert row is not None
        return Operation.FromString(row[0])

    def modify(self, name: str, change: Callable[[Operation], Operation]) -> Operation:
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT name, data FROM v1op_operations WHERE name = ANY(%s) "
                "ORDER BY name FOR UPDATE",
                ([name],),
            ).fetchone()
            assert row is not None
            operation = change(Operation.FromString(row[1]))
            conn.execute(
                "UPDATE v1op_operations SET creator = %s, done = %s, seen = %s, "
                "deleted = %s, data = %s WHERE name = %s",
                (*_columns(operation), name),
            )
        return operation


class ThreadServicer(pb_grpc.OperationServiceServicer):
    """A grpc.aio servicer that hands each call to a thread (ThreadSQLite, ThreadPostgres)."""

    def __init__(self, store: ThreadSQLite | ThreadPostgres) -> None:
        self.store = store

    async def CreateOperation(self, request: Any, context: Any) -> Any:
        operation = _created(request)
        await asyncio.to_thread(self.store.insert, operation)
        return pb.CreateOperationResponse(operation=operation)

    async def GetOperation(self, request: Any, context: Any) -> Any:
        operation = await asyncio.to_thread(self.store.get, request.name)
        return pb.GetOperationResponse(operation=operation)

    async def UpdateOperation(self, request: Any, context: Any) -> Any:
        requested = request.operation
        operation = await asyncio.to_thread(
            self.store.modify, requested.name, lambda op: _updated(op, requested)
        )
        return pb.UpdateOperationResponse(operation=operation)

    async def FinalizeOperation(self, request: Any, context: Any) -> Any:
        requested = request.operation
        operation = await asyncio.to_thread(
            self.store.modify, requested.name, lambda op: _finalized(op, requested)
        )
        return pb.FinalizeOperationResponse(operation=operation)


class SyncThreadServicer(pb_grpc.OperationServiceServicer):
    """The same transactions on grpc's thread-pool server: each call's in its handler thread,
    with no hop (the sync model's own way to write)."""

    def __init__(self, store: ThreadSQLite) -> None:
        self.store = store

    def CreateOperation(self, request: Any, context: Any) -> Any:
        operation = _created(request)
        self.store.insert(operation)
        return pb.CreateOperationResponse(operation=operation)

    def GetOperation(self, request: Any, context: Any) -> Any:
        return pb.GetOperationResponse(operation=self.store.get(request.name))

    def UpdateOperation(self, request: Any, context: Any) -> Any:
        requested = request.operation
        operation = self.store.modify(requested.name, lambda op: _updated(op, requested))
        return pb.UpdateOperationResponse(operation=operation)

    def FinalizeOperation(self, request: Any, context: Any) -> Any:
        requested = request.operation
        operation = self.store.modify(requested.name, lambda op: _finalized(op, requested))
        return pb.FinalizeOperationResponse(operation=operation)


async def _serve_aio(
    servicer: pb_grpc.OperationServiceServicer, interceptors: Sequence[Any] = ()
) -> None:
    server = grpc.aio.server(interceptors=interceptors)
    pb_grpc.add_OperationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"bench: serving on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(1)


def _serve_sync(servicer: pb_grpc.OperationServiceServicer) -> None:
    # As many handler threads as calls in flight: none waits for a thread.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SYNC_THREADS))
    pb_grpc.add_OperationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"bench: serving on 127.0.0.1:{port}", flush=True)
    stop.wait()
    server.stop(1).wait()


# --- v1op serve with other ways of reading by name --------------------------------------------


def _read_variant(kind: str) -> type:
    """A SQLite store whose reads by name go through a thread: ``reader-thread`` (one
    long-lived thread taking every read waiting, answering each batch with one call into the
    loop) or ``to-thread`` (asyncio.to_thread per read, the store before); or ``memory``, whose
    reads by name come from memory once a name was read (a bench-only shortcut: it never
    sees a later write)."""
    from v1op_pb.server.store import SQLiteStore

    get_sql = "SELECT data FROM operations WHERE name = ?"

    class ToThread(SQLiteStore):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            self._own = threading.local()

        def _read(self, name: str) -> Operation | None:
            db = getattr(self._own, "db", None)
            if db is None:
                db = self._own.db = sqlite3.connect(self.path, check_same_thread=False)
            row = db.execute(get_sql, (name,)).fetchone()
            return Operation.FromString(row[0]) if row else None

        async def get(self, name: str) -> Operation | None:
            return await asyncio.to_thread(self._read, name)

    class ReaderThread(SQLiteStore):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            self._reads: queue.SimpleQueue[tuple[str, asyncio.Future[Any]]] = queue.SimpleQueue()
            threading.Thread(target=self._read_batches, daemon=True).start()

        def get(self, name: str) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._reads.put((name, future))
            return future

        def _read_batches(self) -> None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            while True:
                batch = [self._reads.get()]
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 256:
                        batch.append(self._reads.get_nowait())
                answers = []
                for name, future in batch:
                    row = db.execute(get_sql, (name,)).fetchone()
                    answers.append((future, Operation.FromString(row[0]) if row else None))
                loop = batch[0][1].get_loop()
                loop.call_soon_threadsafe(_answer, answers)

    class MemoryReads(SQLiteStore):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            self._read: dict[str, Operation] = {}

        async def get(self, name: str) -> Operation | None:
            operation = self._read.get(name)
            if operation is None:
                operation = await super().get(name)
                if operation is not None:
                    self._read[name] = operation
            return operation

    return {"to-thread": ToThread, "reader-thread": ReaderThread, "memory": MemoryReads}[kind]


def _answer(answers: list[tuple[asyncio.Future[Any], Operation | None]]) -> None:
    for future, operation in answers:
        if not future.done():
            future.set_result(operation)


def _serve_variant(kind: str, argv: list[str]) -> int:
    from v1op_pb.cli import main as cli_main
    from v1op_pb.server import app

    store_class = _read_variant(kind)
    # The one change to `v1op serve`: the class of its store.
    app.open_store = store_class  # type: ignore[attr-defined]
    return cli_main(argv)


def _serve_unobserved(argv: list[str], store_class: type | None = None) -> int:
    from v1op_pb.cli import main as cli_main
    from v1op_pb.server import app
    from v1op_pb.server.observe import Observer

    if store_class is not None:
        app.open_store = store_class  # type: ignore[attr-defined]

    def silent(**ignored: object) -> Observer:
        return Observer(access_log=False)

    # The one change to `v1op serve`: an observer that tells nothing.
    app.Observer = silent  # type: ignore[attr-defined,assignment]
    return cli_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    kind, *args = list(sys.argv[1:] if argv is None else argv)
    if kind == "dict":
        asyncio.run(_serve_aio(AsyncDictServicer()))
    elif kind == "dict-sync":
        _serve_sync(DictServicer())
    elif kind == "dict-interceptor":
        from v1op_pb.server.services import DecodeRequests

        asyncio.run(_serve_aio(AsyncDictServicer(), [DecodeRequests()]))
    elif kind == "thread-sqlite":
        asyncio.run(_serve_aio(ThreadServicer(ThreadSQLite(args[0]))))
    elif kind == "thread-sqlite-sync":
        _serve_sync(SyncThreadServicer(ThreadSQLite(args[0])))
    elif kind == "thread-postgres":
        asyncio.run(_serve_aio(ThreadServicer(ThreadPostgres(args[0]))))
    elif kind == "variant":
        return _serve_variant(args[0], args[1:])
    elif kind == "unobserved":
        return _serve_unobserved(args)
    elif kind == "memory-unobserved":
        return _serve_unobserved(args, _read_variant("memory"))

    else:
        raise SystemExit(f"unknown servicer {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
