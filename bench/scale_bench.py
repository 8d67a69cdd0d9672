"""Benchmark of the server in several processes: 1 and 2 workers, SQLite and PostgreSQL,
and how soon a finish in one replica wakes a wait in another.

For each engine (a SQLite file on disk; a throwaway PostgreSQL server started from the
Debian binaries, as the tests do) and each worker count (``v1op serve``, then ``v1op serve
--workers 2``), on a fresh database:

* seeds operations, then GetOperation of random seeded names by K concurrent clients, back
  to back for a fixed time: throughput and p50/p99 latency;
* creates M running operations, then FinalizeOperation of each by K concurrent clients:
  throughput and p50/p99 latency (each a committed transaction).

Each simulated client has its own connection, so with 2 workers the kernel spreads the
connections over both. The CPU columns are shares of one core over the run: the v1op
processes (all workers), PostgreSQL's processes, and this load generator. The machine has 2
cores and the load generator (one asyncio process) needs most of one at these rates, so the
table shows how much CPU each side got rather than assuming a free core per worker.

Then the wake-up: two replicas on one database, each its own ``v1op serve`` on its own
port (PostgreSQL: LISTEN/NOTIFY; SQLite: both processes on one file, which read its change
counter every 50 ms). Each round creates an operation through A, starts a WaitOperation on
A, finalizes through B, and times from the Finalize being sent to the wait's answer.

    .venv/bin/python -m bench.scale_bench            # full run, about two minutes
    .venv/bin/python -m bench.scale_bench --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import queue
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack

from .grpc_bench import (
    CALL_TIMEOUT,
    CHANNEL_OPTIONS,
    PAYLOAD_MODULE,
    SERVICE,
    Clients,
    CpuClock,
    Result,
    create_all,
    finalize_all,
    get_for,
)
from .machine import cpu_fact, cpu_in_use, os_fact, python_fact

READY_PREFIX = "v1op: serving gRPC on "
READY_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Settings:
    seed_operations: int
    get_clients: int
    get_seconds: float
    warmup_seconds: float
    writes: int
    write_clients: int
    wake_rounds: int


FULL = Settings(
    seed_operations=1000,
    get_clients=16,
    get_seconds=5.0,
    warmup_seconds=1.0,
    writes=1500,
    write_clients=16,
    wake_rounds=200,
)
QUICK = Settings(
    seed_operations=100,
    get_clients=8,
    get_seconds=0.5,
    warmup_seconds=0.2,
    writes=100,
    write_clients=8,
    wake_rounds=20,
)


# --- processes and their CPU -----------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
                todo.extend(int(child) for child in text.split())
    return found


def _cpu_seconds(pids: Sequence[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


class TreeClock(CpuClock):
    """CPU seconds of whole process trees (the v1op server and its workers; PostgreSQL's
    postmaster and its backends), and of this process."""

    def __init__(self, roots: Sequence[int]) -> None:
        super().__init__(roots[0])
        self._roots = roots

    def server(self) -> float:
        return _cpu_seconds([p for root in self._roots for p in _descendants(root)])


@dataclasses.dataclass(frozen=True)
class Served:
    target: str
    pid: int


@contextlib.contextmanager
def serving(workdir: Path, db: str, token: str, *extra: str) -> Iterator[Served]:
    tokens = workdir / "tokens"
    tokens.write_text(f"{token} {SERVICE}\n{token}-user users/bench\n", encoding="utf-8")
    log = open(workdir / f"server-{time.monotonic_ns()}.log", "w", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("v1op")),
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
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            line = ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"v1op serve did not start: {line!r}; see {log.name}")
        yield Served(line[len(READY_PREFIX) :].strip(), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- one row: an engine and a number of workers ----------------------------------------------


@dataclasses.dataclass
class Row:
    engine: str
    workers: int
    result: Result
    db_cpu: float | None


async def measure_server(
    served: Served, token: str, settings: Settings, db_pids: Sequence[int]
) -> list[tuple[Result, float | None]]:
    clock = TreeClock([served.pid])
    db_clock = TreeClock(db_pids) if db_pids else None
    clients = Clients(served.target, token)
    rows: list[tuple[Result, float | None]] = []
    try:
        seeding = [_create_request() for _ in range(settings.seed_operations)]
        _, names = await create_all(clients, clock, seeding, settings.write_clients)
        await get_for(clients, clock, names, settings.get_clients, settings.warmup_seconds, 0)
        db_start = db_clock.server() if db_clock else None
        got = await get_for(clients, clock, names, settings.get_clients, settings.get_seconds, 0)
        rows.append((got, _share(db_clock, db_start, got)))
        starts = [_create_request() for _ in range(settings.writes)]
        _, running = await create_all(clients, clock, starts, settings.write_clients)
        finals = [pb.FinalizeOperationRequest(operation=_final(name)) for name in running]
        db_start = db_clock.server() if db_clock else None
        finalized = await finalize_all(clients, clock, finals, settings.write_clients)
        rows.append((finalized, _share(db_clock, db_start, finalized)))
    finally:
        await clients.close()
    return rows


def _share(clock: TreeClock | None, start: float | None, result: Result) -> float | None:
    if clock is None or start is None:
        return None
    return (clock.server() - start) / result.seconds


def _create_request() -> pb.CreateOperationRequest:
    progress = evaluation_pb2.EvaluationProgress(progress=0.5, items_done=50, items_total=100)
    return pb.CreateOperationRequest(
        operation=Operation(metadata=pack(progress)), on_behalf_of="users/bench"
    )


def _final(name: str) -> Operation:
    result = evaluation_pb2.EvaluationResult(
        evaluation="evaluations/bench",
        verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED,
        scores={"faithfulness": 0.9},
    )
    return Operation(name=name, done=True, response=pack(result))


# --- wake-up across replicas -----------------------------------------------------------------


def wake_latencies(
    first: Served, second: Served, token: str, rounds: int
) -> tuple[list[int], list[int]]:
    """Nanoseconds from sending Finalize to B to the answer of a WaitOperation on A, and
    to B's acknowledgement of the Finalize (its own commit, part of the first)."""
    service = (("authorization", f"Bearer {token}"),)
    user = (("authorization", f"Bearer {token}-user"),)
    latencies, acknowledged = [], []
    rng = random.Random(0)
    with (
        grpc.insecure_channel(first.target, options=CHANNEL_OPTIONS) as a,
        grpc.insecure_channel(second.target, options=CHANNEL_OPTIONS) as b,
    ):
        ops_a, ops_b = pb_grpc.OperationServiceStub(a), pb_grpc.OperationServiceStub(b)
        waits = operations_pb2_grpc.OperationsStub(a)
        for _ in range(rounds):
            name = ops_a.CreateOperation(
                _create_request(), metadata=service, timeout=CALL_TIMEOUT
            ).operation.name
            request = lro.WaitOperationRequest(name=name)
            request.timeout.FromSeconds(30)
            future = waits.WaitOperation.future(request, metadata=user, timeout=CALL_TIMEOUT + 30)
            # Answered after the wait on the same connection: the wait is in the server.
            ops_a.GetOperation(pb.GetOperationRequest(name=name), metadata=service)
            # A random pause: the rounds must not fall into step with SQLite's 50 ms reads
            # of the change counter (each round ends just after one), which would time
            # every finish at the same, worst, point between two reads.
            time.sleep(rng.random() * 0.05)
            start = time.perf_counter_ns()
            ops_b.FinalizeOperation(
                pb.FinalizeOperationRequest(operation=_final(name)),
                metadata=service,
                timeout=CALL_TIMEOUT,
            )
            acknowledged.append(time.perf_counter_ns() - start)
            answer = future.result()
            latencies.append(time.perf_counter_ns() - start)
            if not answer.done:
                raise RuntimeError(f"the wait on {name} answered before the finish")
    return latencies, acknowledged


def percentile_ms(values: Sequence[int], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1] / 1e6


# --- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_cluster() -> Iterator[tuple[Any, list[int]]]:
    """A throwaway PostgreSQL (the tests' tests/postgres_server.py) and its postmaster's
    pid, the root of its processes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from postgres_server import running_cluster

    with running_cluster() as cluster:
        import psycopg

        with psycopg.connect(cluster.url("postgres")) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            # A backend's parent is the postmaster (read while the backend lives).
            stat = Path(f"/proc/{row[0]}/stat").read_text()
        yield cluster, [int(stat.rpartition(")")[2].split()[1])]


def run(settings: Settings, workdir: Path, engines: Sequence[str]) -> tuple[list[Row], list[str]]:
    token = secrets.token_urlsafe(24)
    rows: list[Row] = []
    wakes: list[str] = []
    with contextlib.ExitStack() as stack:
        cluster: Any = None
        pg_pids: list[int] = []
        if "postgres" in engines:
            try:
                cluster, pg_pids = stack.enter_context(postgres_cluster())
            except RuntimeError as e:  # no PostgreSQL binaries or psycopg here
                _note(f"leaving PostgreSQL out: {e}")
                engines = [engine for engine in engines if engine != "postgres"]
        for engine in engines:
            for workers in (1, 2):
                if engine == "postgres":
                    db = cluster.new_database()
                    db_pids = pg_pids
                else:
                    db = str(workdir / f"ops-{workers}.db")
                    db_pids = []
                extra = ("--workers", "2") if workers == 2 else ()
                _note(f"{engine}, {workers} worker(s)")
                with serving(workdir, db, token, *extra) as served:
                    for result, db_cpu in asyncio.run(
                        measure_server(served, token, settings, db_pids)
                    ):
                        rows.append(Row(engine, workers, result, db_cpu))
            _note(f"{engine}: wake-up across two replicas")
            db = cluster.new_database() if engine == "postgres" else str(workdir / "wake.db")
            with serving(workdir, db, token) as a, serving(workdir, db, token) as b:
                latencies, acks = wake_latencies(a, b, token, settings.wake_rounds)
            wakes.append(
                f"| {engine} | {len(latencies)} | {percentile_ms(latencies, 50):.1f} "
                f"| {percentile_ms(latencies, 99):.1f} | {max(latencies) / 1e6:.1f} "
                f"| {percentile_ms(acks, 50):.1f} |"
            )
    return rows, wakes


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| Engine | Workers | Call | Clients | Requests | Requests/s | p50 (ms) | p99 (ms) "
        "| v1op CPU | PostgreSQL CPU | Load generator CPU |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        r = row.result
        server = "n/a" if r.server_cpu is None else f"{r.server_cpu / r.seconds:.0%}"
        db = "-" if row.db_cpu is None else f"{row.db_cpu:.0%}"
        lines.append(
            f"| {row.engine} | {row.workers} | {r.call} | {r.clients} | {r.requests} "
            f"| {r.throughput:,.0f} | {r.percentile_ms(50):.2f} | {r.percentile_ms(99):.2f} "
            f"| {server} | {db} | {r.client_cpu / r.seconds:.0%} |"
        )
    return "\n".join(lines)


def _note(text: str) -> None:
    print(f"bench: {text} ...", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument("--dir", type=Path, help="where the SQLite files live")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    engines = [e for e in args.engines.split(",") if e]
    busy = cpu_in_use()
    with tempfile.TemporaryDirectory(prefix="v1op-scale-", dir=args.dir) as tmp:
        rows, wakes = run(settings, Path(tmp), engines)
    print()
    print(table(rows))
    print()
    print("Wake-up across replicas: Finalize sent to B -> WaitOperation on A answered")
    print()
    print("| Engine | Rounds | p50 (ms) | p99 (ms) | max (ms) | Finalize acknowledged p50 (ms) |")
    print("|---|--:|--:|--:|--:|--:|")
    for line in wakes:
        print(line)
    print()
    for fact in (cpu_fact(busy), os_fact(), python_fact(), f"grpcio: {grpc.__version__}"):
        print(f"- {fact}")
    print(
        f"- {settings.seed_operations} operations seeded; GetOperation {settings.get_seconds:g} s "
        f"by {settings.get_clients} clients after {settings.warmup_seconds:g} s warm-up; "
        f"{settings.writes} finalizes by {settings.write_clients} clients; "
        f"{settings.wake_rounds} wake-up rounds"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
