"""Benchmark of ``v1op serve`` against bare servicers of the same generated service.

Every server runs as its own process on 127.0.0.1, and all of them run for the whole
benchmark; the measurements take turns (one round: each server once, in an order that
rotates from round to round), so the machine's other load falls on all of them alike. The
figures are sums over the rounds; the ratios compare servers of one run.

The servers:

* ``v1op serve`` (SQLite file, WAL, ``synchronous=FULL``; and PostgreSQL): the real server,
  with its identity, rules and checks;
* ``dict``: a bare grpc.aio servicer answering from a dict, the ceiling of grpc.aio here;
* ``thread``: a bare grpc.aio servicer that runs each call as one transaction in a thread
  (``asyncio.to_thread``), with the SQL and PRAGMAs the store uses (one connection and a
  lock for SQLite, a pool of 8 for PostgreSQL, as the store had before group commit);
* ``v1op serve`` with other ways of reading by name, for the choice the store made: reads
  handed to one long-lived reader thread that takes every read waiting (``reader thread``),
  and each read in ``asyncio.to_thread`` (``to_thread``, the store before);
* ``dict, grpc sync``: the dict servicer on grpc's thread-pool server, the other model;
* ``v1op serve --workers 2`` beside ``--workers 1``;
* what observation costs GetOperation: ``v1op serve`` with no access log, metrics or spans
  (``unobserved``), with its default text access log, and with the JSON access log and
  Prometheus metrics; with ``--before REF``, also the ``v1op serve`` of git REF (before
  observation), run from an export of that commit with this tree's built C core.

The load: GetOperation from h2load (Debian's nghttp2-client: a C load generator that costs
the server almost no CPU), 16 connections with one call in flight each, the same request
throughout; UpdateOperation and FinalizeOperation from a grpc.aio client in this process, 16
calls in flight, each on an operation of its own (Finalize: each operation once); and
UpdateOperation again from 16 h2load processes, each with one call in flight on an operation
of its own, so that the load generator leaves the cores to the server (Finalize cannot be
sent that way: h2load sends one body throughout, and an operation finishes once). Server CPU
is the process tree's (every worker; PostgreSQL's backends apart), per call.

    .venv/bin/python -m bench.server_bench            # about six minutes
    .venv/bin/python -m bench.server_bench --quick    # a smoke run
    .venv/bin/python -m bench.server_bench --observation-only --before main
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import queue
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack

from .machine import cpu_fact, cpu_in_use, filesystem, os_fact, protobuf_fact, python_fact

SERVICE = "services/bench"
PAYLOAD_MODULE = "v1op.example.v1.evaluation_pb2"
READY = re.compile(r"(?:v1op: serving gRPC on |bench: serving on )(\S+)")
READY_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0
IN_FLIGHT = 16
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


@dataclasses.dataclass(frozen=True)
class Settings:
    rounds: int
    get_seconds: float
    updates: int  # per server and round
    finalizes: int  # per server and round


FULL = Settings(rounds=3, get_seconds=4.0, updates=2400, finalizes=1600)
QUICK = Settings(rounds=1, get_seconds=1.0, updates=320, finalizes=320)


# --- running servers -------------------------------------------------------------------------


@dataclasses.dataclass
class Served:
    label: str
    target: str
    pid: int
    db_pids: list[int]  # PostgreSQL's postmaster, whose backends serve this one

    def cpu(self) -> float:
        return _tree_cpu(self.pid)

    def db_cpu(self) -> float | None:
        return sum(_tree_cpu(pid) for pid in self.db_pids) if self.db_pids else None


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and its descendants (a server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{pid}/task"):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                todo.extend(int(child) for child in text.split())
    return total / tick


@contextlib.contextmanager
def launched(
    label: str,
    command: list[str],
    log: Path,
    db_pids: list[int],
    environment: dict[str, str] | None = None,
) -> Iterator[Served]:
    with open(log, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
            env=environment,
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{label} did not start; see {log}") from None
            match = READY.match(line)
            if match:
                break
        yield Served(label, match.group(1), process.pid, db_pids)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def v1op_command(db: str, tokens: Path, *extra: str) -> list[str]:
    return [
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--db",
        db,
        "--tokens",
        str(tokens),
        "--import",
        PAYLOAD_MODULE,
        *extra,
    ]


def bare(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.bare_servicers", *args]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[tuple[Any, list[int]]]:
    """A throwaway PostgreSQL (tests/postgres_server.py) that syncs its commits to disk, as
    a production one does (the tests' clusters do not), and its postmaster's pid."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from postgres_server import running_cluster

    with running_cluster(durable=True) as cluster:
        import psycopg

        with psycopg.connect(cluster.url("postgres")) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            stat = Path(f"/proc/{row[0]}/stat").read_text()
        yield cluster, [int(stat.rpartition(")")[2].split()[1])]


# --- the load --------------------------------------------------------------------------------


@dataclasses.dataclass
class Measured:
    calls: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    db_cpu: float = 0.0
    load_cpu: float = 0.0
    errors: int = 0

    def add(self, other: Measured) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def per_call_us(self, cpu: float) -> float:
        return cpu / self.calls * 1e6 if self.calls else float("nan")


def _grpc_frame(message: Any) -> bytes:
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def h2load(
    served: Served, method: str, request: Any, token: str, seconds: float, workdir: Path
) -> Measured:
    """``h2load`` sending ``request`` to ``method`` over IN_FLIGHT connections, one call in
    flight on each, for ``seconds``."""
    return h2load_each(served, method, [request], token, seconds, workdir, connections=IN_FLIGHT)


def h2load_each(
    served: Served,
    method: str,
    requests: Sequence[Any],
    token: str,
    seconds: float,
    workdir: Path,
    *,
    connections: int = 1,
) -> Measured:
    """One ``h2load`` per request, all at once, each sending its request over
    ``connections`` connections, one call in flight on each, for ``seconds``: h2load sends
    one body throughout, so calls that must differ (an operation each) take a process each."""
    commands = []
    for i, request in enumerate(requests):
        body = workdir / f"{method}-{i}.body"
        body.write_bytes(_grpc_frame(request))
        commands.append(
            [
                "h2load",
                "-c",
                str(connections),
                "-m",
                "1",
                "-D",
                f"{seconds:g}",
                "-d",
                str(body),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-H",
                f"authorization: Bearer {token}",
                f"http://{served.target}/v1op.v1.OperationService/{method}",
            ]
        )
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, db_cpu = served.cpu(), served.db_cpu()
    start = time.perf_counter()
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    outputs = [process.communicate(timeout=seconds + 60) for process in running]
    elapsed = time.perf_counter() - start
    server_cpu = served.cpu() - cpu
    db_end = served.db_cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    succeeded = failed = 0
    measured_seconds = 0.0
    for process, (stdout, stderr) in zip(running, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"h2load failed: {stdout}{stderr}")
        counts = re.search(
            r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", stdout
        )
        finished = re.search(r"finished in ([\d.]+)(m?s)", stdout)
        if counts is None or finished is None:
            raise RuntimeError(f"cannot read h2load's output: {stdout}")
        took = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
        measured_seconds = max(measured_seconds, took)
        succeeded += int(counts.group(3))
        failed += int(counts.group(2)) - int(counts.group(3))
    # The CPU figures span h2load's whole run (its connecting too): scale them to the
    # measured part, which is nearly all of it.
    share = min(1.0, measured_seconds / elapsed)
    return Measured(
        calls=succeeded,
        seconds=measured_seconds,
        server_cpu=server_cpu * share,
        db_cpu=(db_end - db_cpu) * share if db_end is not None and db_cpu is not None else 0.0,
        load_cpu=(
            children.ru_utime
            + children.ru_stime
            - children_before.ru_utime
            - children_before.ru_stime
        )
        * share,
        errors=failed,
    )


class Client:
    """IN_FLIGHT grpc.aio channels to one server, each its own connection."""

    def __init__(self, target: str, token: str) -> None:
        self.channels = [
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(IN_FLIGHT)
        ]
        self.stubs = [pb_grpc.OperationServiceStub(channel) for channel in self.channels]
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

    async def create(self, count: int) -> list[str]:
        names: list[str] = []

        async def one(stub: pb_grpc.OperationServiceStub, n: int) -> None:
            for _ in range(n):
                response = await stub.CreateOperation(
                    _create_request(), metadata=self.metadata, timeout=CALL_TIMEOUT
                )
                names.append(response.operation.name)

        share = -(-count // IN_FLIGHT)
        await asyncio.gather(*(one(stub, share) for stub in self.stubs))
        return names[:count]

    async def check_get(self, name: str) -> None:
        response = await self.stubs[0].GetOperation(
            pb.GetOperationRequest(name=name), metadata=self.metadata, timeout=CALL_TIMEOUT
        )
        if response.operation.name != name:
            raise RuntimeError(f"GetOperation answered {response.operation.name!r}")

    async def run(self, requests: list[list[tuple[str, Any]]]) -> tuple[int, int, float]:
        """Each list to one channel, back to back: (calls answered right, errors, seconds)."""
        errors = 0

        async def one(stub: pb_grpc.OperationServiceStub, mine: list[tuple[str, Any]]) -> int:
            nonlocal errors
            answered = 0
            for method, request in mine:
                try:
                    await getattr(stub, method)(
                        request, metadata=self.metadata, timeout=CALL_TIMEOUT
                    )
                    answered += 1
                except grpc.aio.AioRpcError:
                    errors += 1
            return answered

        start = time.perf_counter()
        counts = await asyncio.gather(
            *(one(s, r) for s, r in zip(self.stubs, requests, strict=True))
        )
        return sum(counts), errors, time.perf_counter() - start


def _create_request() -> pb.CreateOperationRequest:
    progress = evaluation_pb2.EvaluationProgress(progress=0.5, items_done=50, items_total=100)
    return pb.CreateOperationRequest(
        operation=Operation(metadata=pack(progress)), on_behalf_of="users/bench"
    )


def _update_request(name: str, i: int) -> pb.UpdateOperationRequest:
    progress = evaluation_pb2.EvaluationProgress(
        progress=i / 10_000, message=f"step {i}", items_done=i, items_total=10_000
    )
    return pb.UpdateOperationRequest(operation=Operation(name=name, metadata=pack(progress)))


def _finalize_request(name: str) -> pb.FinalizeOperationRequest:
    result = evaluation_pb2.EvaluationResult(
        evaluation="evaluations/bench",
        verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED,
        scores={"faithfulness": 0.9},
    )
    return pb.FinalizeOperationRequest(
        operation=Operation(name=name, done=True, response=pack(result))
    )


async def _writes(served: Served, token: str, method: str, count: int) -> Measured:
    client = Client(served.target, token)
    try:
        requests: list[list[tuple[str, Any]]]
        if method == "UpdateOperation":
            names = await client.create(IN_FLIGHT)
            requests = [
                [(method, _update_request(name, i)) for i in range(count // IN_FLIGHT)]
                for name in names
            ]
        else:
            names = await client.create(count)
            requests = [
                [(method, _finalize_request(name)) for name in names[i::IN_FLIGHT]]
                for i in range(IN_FLIGHT)
            ]
        cpu, db_cpu = served.cpu(), served.db_cpu()
        load_cpu = time.process_time()
        calls, errors, seconds = await client.run(requests)
        db_end = served.db_cpu()
        return Measured(
            calls=calls,
            seconds=seconds,
            server_cpu=served.cpu() - cpu,
            db_cpu=db_end - db_cpu if db_end is not None and db_cpu is not None else 0.0,
            load_cpu=time.process_time() - load_cpu,
            errors=errors,
        )
    finally:
        await client.close()


async def _operations(served: Served, token: str, count: int) -> list[str]:
    """``count`` new running operations."""
    client = Client(served.target, token)
    try:
        return await client.create(count)
    finally:
        await client.close()


async def _seed(served: Served, token: str) -> str:
    """One operation to read, checked to read back through gRPC."""
    client = Client(served.target, token)
    try:
        (name,) = await client.create(1)
        await client.check_get(name)
        return name
    finally:
        await client.close()


# --- the run ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    table: str  # which comparison
    label: str
    call: str
    measured: Measured = dataclasses.field(default_factory=Measured)


def _note(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _rotate(items: list[Any], by: int) -> list[Any]:
    by %= max(1, len(items))
    return items[by:] + items[:by]


def export_commit(ref: str, workdir: Path) -> Path:
    """The tree of git ``ref`` in ``workdir``, with this tree's built C core (the same C
    sources: checked), to run its ``v1op serve`` from."""
    root = Path(__file__).resolve().parent.parent
    native = "v1op_pb/_codec/native"
    changed = subprocess.run(
        ["git", "-C", str(root), "diff", "--quiet", ref, "--", native], check=False
    )
    if changed.returncode != 0:
        raise RuntimeError(f"{ref}'s C core differs from this tree's: build it there instead")
    target = workdir / "before"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    for built in (root / "v1op_pb" / "_codec").glob("*.so"):
        shutil.copy(built, target / "v1op_pb" / "_codec" / built.name)
    return target


def run(
    settings: Settings,
    workdir: Path,
    with_postgres: bool,
    *,
    observation_only: bool = False,
    before: str | None = None,
) -> list[Row]:
    token = secrets.token_urlsafe(24)
    tokens = workdir / "tokens"
    tokens.write_text(f"{token} {SERVICE}\n", encoding="utf-8")
    tokens.chmod(0o600)
    logs = workdir / "logs"
    logs.mkdir()
    rows: dict[tuple[str, str, str], Row] = {}

    def row(table: str, label: str, call: str) -> Row:
        return rows.setdefault((table, label, call), Row(table, label, call))

    with contextlib.ExitStack() as stack:

        def start(label: str, command: list[str], db_pids: list[int] | None = None) -> Served:
            log = logs / f"{re.sub(r'[^a-z0-9]+', '-', label.lower())}.log"
            return stack.enter_context(launched(label, command, log, db_pids or []))

        v1op = [sys.executable, "-m", "v1op_pb.cli"]

        def serve(label: str, db: str, *extra: str, db_pids: list[int] | None = None) -> Served:
            return start(label, [*v1op, *v1op_command(db, tokens, *extra)], db_pids)

        v1op_sqlite = serve("v1op serve", str(workdir / "v1op.db"))
        observation = {
            "access log off, no metrics": start(
                "unobserved", bare("unobserved", *v1op_command(str(workdir / "un.db"), tokens))
            ),
            "text access log (the default)": v1op_sqlite,
            "JSON access log, metrics": serve(
                "json metrics",
                str(workdir / "json.db"),
                "--log-format",
                "json",
                "--metrics-addr",
                "127.0.0.1:0",
            ),
        }
        if before is not None:
            tree = export_commit(before, workdir)
            # The C core as quiet as this tree's serve makes it.
            environment = {
                **os.environ,
                "GRPC_VERBOSITY": "NONE",
                "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'gen'}",
            }
            log = logs / "before.log"
            observation[f"before ({before})"] = stack.enter_context(
                launched(
                    "before",
                    [*v1op, *v1op_command(str(workdir / "before.db"), tokens)],
                    log,
                    [],
                    environment,
                )
            )
        if observation_only:
            tables: dict[str, dict[str, Served]] = {"observation": observation}
            return _measure(settings, tables, token, workdir, rows, row)
        ceiling = start("dict", bare("dict"))
        sqlite = {
            "v1op serve": v1op_sqlite,
            "dict": ceiling,
            "thread": start("thread", bare("thread-sqlite", str(workdir / "thread.db"))),
        }
        tables: dict[str, dict[str, Served]] = {
            "sqlite": sqlite,
            "reads": {
                "v1op serve (on the loop)": v1op_sqlite,
                "reader thread": start(
                    "reader thread",
                    bare("variant", "reader-thread", *v1op_command(str(workdir / "rt.db"), tokens)),
                ),
                "to_thread": start(
                    "to_thread",
                    bare("variant", "to-thread", *v1op_command(str(workdir / "tt.db"), tokens)),
                ),
            },
            "ceiling": {
                "dict": ceiling,
                "dict + v1op's request interceptor": start(
                    "dict interceptor", bare("dict-interceptor")
                ),
                "v1op serve, reads from memory, no access log": start(
                    "memory unobserved",
                    bare("memory-unobserved", *v1op_command(str(workdir / "mem.db"), tokens)),
                ),
                "v1op serve, no access log": observation["access log off, no metrics"],
                "v1op serve": v1op_sqlite,
            },
            "model": {
                "dict, grpc.aio": ceiling,
                "dict, grpc sync": start("dict, grpc sync", bare("dict-sync")),
                "v1op serve (grpc.aio, group commit)": v1op_sqlite,
                "transaction per call, grpc sync": start(
                    "sync thread", bare("thread-sqlite-sync", str(workdir / "sync.db"))
                ),
            },
            "workers": {
                "sqlite, --workers 1": serve("sqlite w1", str(workdir / "w1.db"), "--workers", "1"),
                "sqlite, --workers 2": serve("sqlite w2", str(workdir / "w2.db"), "--workers", "2"),
            },
            "observation": observation,
        }
        if with_postgres:
            cluster, pg_pids = stack.enter_context(postgres_cluster())
            tables["postgres"] = {
                "v1op serve": serve("v1op serve pg", cluster.new_database(), db_pids=pg_pids),
                "thread": start(
                    "thread pg", bare("thread-postgres", cluster.new_database()), pg_pids
                ),
            }
            for workers in ("1", "2"):
                tables["workers"][f"postgres, --workers {workers}"] = serve(
                    f"pg w{workers}", cluster.new_database(), "--workers", workers, db_pids=pg_pids
                )

        return _measure(settings, tables, token, workdir, rows, row)
    return list(rows.values())


def _measure(
    settings: Settings,
    tables: dict[str, dict[str, Served]],
    token: str,
    workdir: Path,
    rows: dict[tuple[str, str, str], Row],
    row: Any,
) -> list[Row]:
    """Every server of ``tables`` measured, in rounds that rotate their order."""
    servers = {s.pid: s for group in tables.values() for s in group.values()}
    names = {pid: asyncio.run(_seed(s, token)) for pid, s in servers.items()}
    # Each server's GetOperation is measured once a round and shown in every table it is
    # in; a first pass, not counted, warms caches and connections.
    gets = {pid: Measured() for pid in servers}
    for table, group in tables.items():
        for label, served in group.items():
            row(table, label, "GetOperation").measured = gets[served.pid]
    # So are the writes of the servers of the write tables.
    writers = {
        s.pid: s
        for table in ("sqlite", "postgres", "model")
        for s in tables.get(table, {}).values()
    }
    writes = {
        method: {pid: Measured() for pid in writers}
        for method in ("UpdateOperation", "FinalizeOperation")
    }
    for method, measured in writes.items():
        for table in ("sqlite", "postgres", "model"):
            for label, served in tables.get(table, {}).items():
                row(table, label, method).measured = measured[served.pid]
    # UpdateOperation again with h2load as the load, which leaves the cores to the servers:
    # a process per operation (h2load sends one body throughout), IN_FLIGHT of them.
    h2_writers = {
        s.pid: s for table in ("sqlite", "postgres") for s in tables.get(table, {}).values()
    }
    h2_updates = {pid: Measured() for pid in h2_writers}
    own = {pid: asyncio.run(_operations(s, token, IN_FLIGHT)) for pid, s in h2_writers.items()}
    for table in ("sqlite", "postgres"):
        for label, served in tables.get(table, {}).items():
            row(table, label, H2LOAD_UPDATE).measured = h2_updates[served.pid]
    for pid, served in servers.items():
        request = pb.GetOperationRequest(name=names[pid])
        h2load(served, "GetOperation", request, token, min(1.0, settings.get_seconds), workdir)

    for r in range(settings.rounds):
        _note(f"round {r + 1} of {settings.rounds}")
        for pid, served in _rotate(list(servers.items()), r):
            request = pb.GetOperationRequest(name=names[pid])
            gets[pid].add(
                h2load(served, "GetOperation", request, token, settings.get_seconds, workdir)
            )
        for method, count in (
            ("UpdateOperation", settings.updates),
            ("FinalizeOperation", settings.finalizes),
        ):
            for pid, served in _rotate(list(writers.items()), r):
                writes[method][pid].add(asyncio.run(_writes(served, token, method, count)))
        for pid, served in _rotate(list(h2_writers.items()), r):
            updates = [_update_request(name, r) for name in own[pid]]
            h2_updates[pid].add(
                h2load_each(
                    served, "UpdateOperation", updates, token, settings.get_seconds, workdir
                )
            )
        # --workers with h2load alone: UpdateOperation of one operation, 16 at a time.
        for label, served in _rotate(list(tables.get("workers", {}).items()), r):
            update = _update_request(names[served.pid], r)
            row("workers", label, "UpdateOperation").measured.add(
                h2load(served, "UpdateOperation", update, token, settings.get_seconds, workdir)
            )
    return list(rows.values())


# --- the tables ------------------------------------------------------------------------------

# UpdateOperation with h2load as the load: IN_FLIGHT processes, an operation each.
H2LOAD_UPDATE = "UpdateOperation (h2load)"
BASELINE = {
    "GetOperation": "dict",
    "UpdateOperation": "thread",
    "FinalizeOperation": "thread",
    H2LOAD_UPDATE: "thread",
}


def _find(rows: Sequence[Row], table: str, label: str, call: str) -> Measured | None:
    for row in rows:
        if (row.table, row.label, row.call) == (table, label, call):
            return row.measured
    return None


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def server_table(rows: Sequence[Row], table: str) -> list[str]:
    with_db = table == "postgres"
    lines = [
        "| Call | Server | Calls | Calls/s | Server CPU/call (µs) "
        + ("| PostgreSQL CPU/call (µs) " if with_db else "")
        + "| Rate vs baseline | CPU/call vs baseline | Errors |",
        "|---|---|--:|--:|--:|" + ("--:|" if with_db else "") + "--:|--:|--:|",
    ]
    for row in rows:
        if row.table != table:
            continue
        m = row.measured
        base_label = BASELINE[row.call]
        base_table = "sqlite" if base_label == "dict" else table
        base = _find(rows, base_table, base_label, row.call)
        rate = cpu = "-"
        if base is not None and row.label != base_label:
            rate = _ratio(m.rate, base.rate)
            cpu = _ratio(m.per_call_us(m.server_cpu), base.per_call_us(base.server_cpu))
        label = f"{row.label} (baseline)" if row.label == base_label else row.label
        db = f"| {m.per_call_us(m.db_cpu):.0f} " if with_db else ""
        lines.append(
            f"| {row.call} | {label} | {m.calls} | {m.rate:,.0f} "
            f"| {m.per_call_us(m.server_cpu):.0f} {db}| {rate} | {cpu} | {m.errors} |"
        )
    return lines


def simple_table(rows: Sequence[Row], table: str, first_column: str) -> list[str]:
    lines = [
        f"| Call | {first_column} | Calls | Calls/s | Server CPU/call (µs) | Server CPU "
        "| Load generator CPU | Rate vs first | Errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    firsts: dict[str, Measured] = {}
    for row in rows:
        if row.table != table:
            continue
        m = row.measured
        first = firsts.setdefault(row.call, m)
        lines.append(
            f"| {row.call} | {row.label} | {m.calls} | {m.rate:,.0f} "
            f"| {m.per_call_us(m.server_cpu):.0f} | {m.server_cpu / m.seconds:.0%} "
            f"| {m.load_cpu / m.seconds:.0%} | {_ratio(m.rate, first.rate)} | {m.errors} |"
        )
    return lines


def observation_table(rows: Sequence[Row]) -> list[str]:
    """GetOperation of each observed server against the one that tells nothing: the cost of
    the access log and the metrics, per call."""
    lines = [
        "| Server | Calls | Calls/s | Server CPU/call (µs) | CPU/call over unobserved (µs) "
        "| Rate vs unobserved | Errors |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    base = _find(rows, "observation", "access log off, no metrics", "GetOperation")
    for row in rows:
        if row.table != "observation":
            continue
        m = row.measured
        extra = rate = "-"
        if base is not None and m is not base:
            extra = f"{m.per_call_us(m.server_cpu) - base.per_call_us(base.server_cpu):+.1f}"
            rate = _ratio(m.rate, base.rate)
        lines.append(
            f"| {row.label} | {m.calls} | {m.rate:,.0f} | {m.per_call_us(m.server_cpu):.1f} "
            f"| {extra} | {rate} | {m.errors} |"
        )
    return lines


def targets(rows: Sequence[Row]) -> list[str]:
    found = []

    def check(what: str, value: float | None, goal: float, at_least: bool) -> None:
        if value is None:
            found.append(f"- {what}: not measured")
            return
        met = value >= goal if at_least else value <= goal
        sign = ">=" if at_least else "<="
        found.append(
            f"- {what}: {value:.2f}x (target {sign} {goal}x): {'met' if met else 'NOT met'}"
        )

    v1op = _find(rows, "sqlite", "v1op serve", "GetOperation")
    ceiling = _find(rows, "sqlite", "dict", "GetOperation")
    if v1op and ceiling:
        check("GetOperation rate, v1op / dict", v1op.rate / ceiling.rate, 0.85, True)
        check(
            "GetOperation CPU per call, v1op / dict",
            v1op.per_call_us(v1op.server_cpu) / ceiling.per_call_us(ceiling.server_cpu),
            1.5,
            False,
        )
    for table in ("sqlite", "postgres"):
        for call in ("UpdateOperation", "FinalizeOperation", H2LOAD_UPDATE):
            ours = _find(rows, table, "v1op serve", call)
            bare = _find(rows, table, "thread", call)
            if ours and bare:
                check(f"{call} rate on {table}, v1op / thread", ours.rate / bare.rate, 2.0, True)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--dir", type=Path, help="where the SQLite files live")
    parser.add_argument(
        "--observation-only",
        action="store_true",
        help="measure only what observation costs GetOperation",
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also measure the v1op serve of git REF (before observation)",
    )
    args = parser.parse_args(argv)
    if shutil.which("h2load") is None:
        print("bench: h2load is missing: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else FULL
    busy = cpu_in_use()
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="v1op-server-bench-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        rows = run(
            settings,
            workdir,
            not args.no_postgres,
            observation_only=args.observation_only,
            before=args.before,
        )
        where = filesystem(workdir)
    failed = sum(row.measured.errors for row in rows)
    if args.observation_only:
        print()
        print("What observation costs GetOperation (SQLite), h2load:")
        print()
        print("\n".join(observation_table(rows)))
        print()
        print(f"- {cpu_fact(busy)}")
        print(f"- load average (1, 5, 15 min) before: {load_before}; after: {_load_average()}")
        print(f"- {settings.rounds} rounds of {settings.get_seconds:g} s per server")
        return 1 if failed else 0
    print()
    print("SQLite file (WAL, synchronous=FULL); GetOperation's baseline is the dict servicer,")
    print("the writes' the thread-per-call servicer:")
    print()
    print("\n".join(server_table(rows, "sqlite")))
    if any(row.table == "postgres" for row in rows):
        print()
        print("PostgreSQL (fsync on); GetOperation's baseline is the dict servicer above:")
        print()
        print("\n".join(server_table(rows, "postgres")))
    print()
    print("Reads by name in v1op serve (SQLite), three ways:")
    print()
    print("\n".join(simple_table(rows, "reads", "Reads")))
    print()
    print("GetOperation from the ceiling to v1op serve:")
    print()
    print("\n".join(simple_table(rows, "ceiling", "Server")))
    print()
    print("Server model: the dict servicer on grpc.aio and on grpc's thread-pool server:")
    print()
    print("\n".join(simple_table(rows, "model", "Server")))
    print()
    print("--workers, h2load alone (Update: 16 at a time of one operation):")
    print()
    print("\n".join(simple_table(rows, "workers", "Server")))
    print()
    print("What observation costs GetOperation (SQLite):")
    print()
    print("\n".join(observation_table(rows)))
    print()
    print("Targets:")
    print("\n".join(targets(rows)))
    print()
    facts = (
        cpu_fact(busy),
        f"load average (1, 5, 15 min) before: {load_before}; after: {_load_average()}",
        os_fact(),
        python_fact(),
        protobuf_fact(),
        f"grpcio: {grpc.__version__}",
        f"SQLite files on {where}",
        f"{settings.rounds} rounds; GetOperation {settings.get_seconds:g} s per server and round; "
        f"{settings.updates} updates and {settings.finalizes} finalizes per server and round; "
        f"{IN_FLIGHT} calls in flight",
    )
    for fact in facts:
        print(f"- {fact}")
    if failed:
        print(f"bench: {failed} calls failed", file=sys.stderr)
        return 1
    return 0


def _load_average() -> str:
    try:
        return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
