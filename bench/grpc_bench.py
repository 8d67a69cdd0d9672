"""Benchmark of the reference server (``v1op serve``) over loopback: gRPC, REST and Connect.

Starts the server as its own process on 127.0.0.1, serving gRPC and its HTTP port
(``--http-addr``: REST, Connect, gRPC-Web, calling the services in-process), with a SQLite
file on disk; seeds it with operations from ``bench.corpus``, then measures from this
process, as the client:

* GetOperation over gRPC: throughput and p50/p99 latency with 1, 8, 16 and 64 concurrent
  clients, each sending requests back to back for a fixed time;
* GetOperation over REST (``GET /v1/operations%2F<id>``) and over Connect with JSON
  (``POST /v1op.v1.OperationService/GetOperation``, see ``bench.rest_bench``) with 1 and 16
  clients, interleaved with gRPC at the same counts: the three take turns, in rounds, so
  that a change in the machine's load falls on all alike; every answer is checked (HTTP
  200, JSON, the requested name) and wrong ones are counted as errors, not as answers;
* CreateOperation and FinalizeOperation: throughput (and latency) of M writes by K
  concurrent clients, each write a committed SQLite transaction on disk.

Prints a Markdown table and the machine facts. Measures only, asserts nothing about time;
exits 1 (after the table) if any request failed.

    .venv/bin/python -m bench.grpc_bench            # full run, about a minute on 2 cores
    .venv/bin/python -m bench.grpc_bench --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import secrets
import selectors
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import any_pb2
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack, unpack

from .corpus import make_corpus
from .machine import cpu_fact, cpu_in_use, filesystem, os_fact, protobuf_fact, python_fact
from .rest_bench import ConnectClients, RestClients

SERVICE = "services/bench"
# The payload types the corpus packs into Any; the server refuses Anys it cannot read.
PAYLOAD_MODULE = "v1op.example.v1.evaluation_pb2"
READY_PREFIX = "v1op: serving gRPC on "
HTTP_READY_PREFIX = "v1op: serving HTTP on "
READY_TIMEOUT = 30.0
# The server drains in-flight calls for up to 10 s on SIGTERM; allow for that and more.
STOP_TIMEOUT = 20.0
CALL_TIMEOUT = 30.0
# Each simulated client gets its own HTTP/2 connection, as separate client processes would;
# by default, grpc would share one connection between channels to the same target.
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


@dataclasses.dataclass(frozen=True)
class Settings:
    seed_operations: int
    get_clients: tuple[int, ...]  # GetOperation over gRPC
    rest_clients: tuple[int, ...]  # GetOperation over REST and Connect, beside gRPC
    get_seconds: float
    warmup_seconds: float
    write_operations: int
    write_clients: int
    seed: int
    rounds: int  # turns each transport takes at a client count it shares with others


FULL = Settings(
    seed_operations=2000,
    get_clients=(1, 8, 16, 64),
    rest_clients=(1, 16),
    get_seconds=6.0,
    warmup_seconds=1.0,
    write_operations=2000,
    write_clients=8,
    seed=0,
    rounds=3,
)
QUICK = dataclasses.replace(
    FULL, seed_operations=100, get_seconds=0.5, warmup_seconds=0.2, write_operations=100
)


# --- measuring -------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """One row of the table."""

    call: str
    transport: str
    clients: int
    requests: int  # answered right; errors are not requests/s, nor in the latencies
    seconds: float
    latencies_ns: list[int]
    server_cpu: float | None  # CPU seconds the server used during the run
    client_cpu: float  # CPU seconds this process used during the run
    errors: Counter[str] = dataclasses.field(default_factory=Counter)  # what went wrong

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile: the smallest latency that ``p`` percent are at or under."""
        ordered = sorted(self.latencies_ns)
        if not ordered:
            return float("nan")
        rank = max(1, -(-len(ordered) * p // 100))
        return ordered[int(rank) - 1] / 1e6


class CpuClock:
    """CPU time of the server process (all its threads) and of this one."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def server(self) -> float | None:
        try:
            text = self._stat.read_text()
        except OSError:
            return None  # not Linux: no per-process CPU figure for the server
        # The command name, in parentheses, may itself hold spaces: split after it.
        fields = text.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    @staticmethod
    def client() -> float:
        return time.process_time()


async def measure(
    call: str,
    transport: str,
    clients: int,
    clock: CpuClock,
    worker: Callable[[int, list[int]], Awaitable[None]],
    errors: Counter[str] | None = None,
) -> Result:
    """Run ``clients`` workers concurrently; each appends its per-request latencies (and
    counts its failed requests in ``errors``)."""
    latencies: list[int] = []
    server_start, client_start = clock.server(), clock.client()
    start = time.perf_counter()
    await asyncio.gather(*(worker(i, latencies) for i in range(clients)))
    seconds = time.perf_counter() - start
    server_end = clock.server()
    server_cpu = None
    if server_start is not None and server_end is not None:
        server_cpu = server_end - server_start
    return Result(
        call=call,
        transport=transport,
        clients=clients,
        requests=len(latencies),
        seconds=seconds,
        latencies_ns=latencies,
        server_cpu=server_cpu,
        client_cpu=clock.client() - client_start,
        errors=Counter() if errors is None else errors,
    )


# --- the server ------------------------------------------------------------------------------


class ServerError(RuntimeError):
    """The server did not start, or did not stop cleanly."""


@dataclasses.dataclass(frozen=True)
class Server:
    target: str  # gRPC, HOST:PORT
    http_base: str  # REST, http://HOST:PORT
    pid: int
    db: Path


def _server_command() -> list[str]:
    script = Path(sys.executable).with_name("v1op")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "v1op_pb.cli"]


@contextlib.contextmanager
def running_server(
    workdir: Path, token: str, extra: Sequence[str] = (), unobserved: bool = False
) -> Iterator[Server]:
    """``v1op serve`` on 127.0.0.1 (a free port each for gRPC and HTTP) with a SQLite file
    in ``workdir``, and ``extra`` options; stopped with SIGTERM on the way out, whatever
    happened, and required to exit 0. ``unobserved``: with no access log, metrics or spans
    (``bench.bare_servicers unobserved``)."""
    tokens = workdir / "tokens"
    tokens.write_text(f"{token} {SERVICE}\n", encoding="utf-8")
    tokens.chmod(0o600)
    db = workdir / "operations.sqlite"
    log = workdir / "server.log"
    runner = (
        [sys.executable, "-m", "bench.bare_servicers", "unobserved"]
        if unobserved
        else _server_command()
    )
    command = [
        *runner,
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--db",
        str(db),
        "--tokens",
        str(tokens),
        "--import",
        PAYLOAD_MODULE,
        *extra,
    ]
    with open(log, "wb") as stderr:
        # Its own session, so a Ctrl-C here reaches only this process, which then stops the
        # server the one way it is measured to stop: SIGTERM, then exit status 0.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,  # unbuffered: the ready lines are read from the pipe as they come
            start_new_session=True,
        )
    try:
        target, http = _wait_ready(proc, log)
        yield Server(target=target, http_base=f"http://{http}", pid=proc.pid, db=db)
    finally:
        code = _stop(proc)
    if code != 0:
        raise ServerError(f"the server exited with status {code} on SIGTERM:\n{_tail(log)}")


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """The gRPC and the HTTP HOST:PORT, from the server's two ready lines."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    addresses: dict[str, str] = {}
    pending = b""
    # Raw reads of the pipe, lines split here: a buffered readline() could take both ready
    # lines into its buffer at once, and select() would then wait for the second in vain.
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                # The server closed stdout: it is exiting; let it, for its status.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(STOP_TIMEOUT)
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                for prefix in (READY_PREFIX, HTTP_READY_PREFIX):
                    if text.startswith(prefix):
                        addresses[prefix] = text[len(prefix) :].strip()
            if len(addresses) == 2:
                return addresses[READY_PREFIX], addresses[HTTP_READY_PREFIX]
    status = proc.poll()
    why = f"exited with status {status}" if status is not None else "did not get ready in time"
    raise ServerError(f"the server {why}:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"the server did not stop within {STOP_TIMEOUT}s; killed", file=sys.stderr)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- the client ------------------------------------------------------------------------------


class GetClients(Protocol):
    """GetOperation over one transport, for ``get_for``: ``Clients``, ``RestClients`` or
    ``ConnectClients``."""

    transport: str

    async def ensure(self, count: int) -> None: ...

    def requests(self, names: Sequence[str]) -> Sequence[Any]: ...

    async def get(self, client: int, request: Any) -> str | None: ...


class Clients:
    """One channel (and connection) per simulated client, opened once and reused."""

    transport = "gRPC"

    def __init__(self, target: str, token: str) -> None:
        self._target = target
        self._channels: list[grpc.aio.Channel] = []
        self.stubs: list[pb_grpc.OperationServiceStub] = []
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def ensure(self, count: int) -> None:
        while len(self._channels) < count:
            channel = grpc.aio.insecure_channel(self._target, options=CHANNEL_OPTIONS)
            await asyncio.wait_for(channel.channel_ready(), READY_TIMEOUT)
            self._channels.append(channel)
            self.stubs.append(pb_grpc.OperationServiceStub(channel))

    def requests(self, names: Sequence[str]) -> list[pb.GetOperationRequest]:
        return [pb.GetOperationRequest(name=name) for name in names]

    async def get(self, client: int, request: pb.GetOperationRequest) -> str | None:
        """GetOperation; None if the answer is right, else what was wrong with it."""
        try:
            response = await self.stubs[client].GetOperation(
                request, metadata=self.metadata, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as e:
            return f"{e.code().name}: {(e.details() or '')[:80]}"
        if response.operation.name != request.name:
            return "OK without the requested operation"
        return None

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels))


def _creatable(op: Operation) -> Operation:
    """What a service sends to create ``op``: metadata and outcome; the server sets the rest."""
    request = Operation()
    if op.HasField("metadata"):
        request.metadata.CopyFrom(op.metadata)
    if op.done:
        request.done = True
        if op.WhichOneof("result") == "error":
            request.error.CopyFrom(op.error)
        else:
            request.response.CopyFrom(op.response)
    return request


def _on_behalf_of(op: Operation) -> str:
    return op.creator if op.creator.startswith("users/") else ""


async def create_all(
    clients: Clients, clock: CpuClock, requests: Sequence[pb.CreateOperationRequest], workers: int
) -> tuple[Result, list[str]]:
    """Create every request with ``workers`` concurrent clients; the names, in order."""
    await clients.ensure(workers)
    names = [""] * len(requests)
    todo = iter(range(len(requests)))

    async def worker(i: int, latencies: list[int]) -> None:
        stub = clients.stubs[i]
        # The shared iterator hands each index to exactly one worker: no two tasks run
        # between its next() and the await, as the event loop is single-threaded.
        for index in todo:
            start = time.perf_counter_ns()
            response = await stub.CreateOperation(
                requests[index], metadata=clients.metadata, timeout=CALL_TIMEOUT
            )
            latencies.append(time.perf_counter_ns() - start)
            names[index] = response.operation.name

    result = await measure("CreateOperation", clients.transport, workers, clock, worker)
    return result, names


async def get_for(
    clients: GetClients,
    clock: CpuClock,
    names: Sequence[str],
    workers: int,
    seconds: float,
    seed: int,
) -> Result:
    """GetOperation of random seeded names, back to back, for ``seconds``; the same names
    in the same order whatever the transport. Failed requests are counted, not timed."""
    await clients.ensure(workers)
    requests = clients.requests(names)
    errors: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def worker(i: int, latencies: list[int]) -> None:
        rng = random.Random(seed * 1000 + i)
        while time.perf_counter() < deadline:
            request = rng.choice(requests)
            start = time.perf_counter_ns()
            error = await clients.get(i, request)
            elapsed = time.perf_counter_ns() - start
            if error is None:
                latencies.append(elapsed)
            else:
                errors[error] += 1

    return await measure("GetOperation", clients.transport, workers, clock, worker, errors)


async def finalize_all(
    clients: Clients, clock: CpuClock, requests: Sequence[pb.FinalizeOperationRequest], workers: int
) -> Result:
    await clients.ensure(workers)
    todo = iter(requests)

    async def worker(i: int, latencies: list[int]) -> None:
        stub = clients.stubs[i]
        for request in todo:
            start = time.perf_counter_ns()
            await stub.FinalizeOperation(request, metadata=clients.metadata, timeout=CALL_TIMEOUT)
            latencies.append(time.perf_counter_ns() - start)

    return await measure("FinalizeOperation", clients.transport, workers, clock, worker)


async def run(server: Server, token: str, settings: Settings) -> list[Result]:
    clock = CpuClock(server.pid)
    clients = Clients(server.target, token)
    rest = RestClients(server.http_base, token)
    connect = ConnectClients(server.http_base, token)
    results: list[Result] = []
    try:
        corpus = make_corpus(settings.seed_operations, settings.seed)
        seeding = [
            pb.CreateOperationRequest(operation=_creatable(op), on_behalf_of=_on_behalf_of(op))
            for op in corpus
        ]
        _note(f"seeding {len(seeding)} operations")
        _, names = await create_all(clients, clock, seeding, settings.write_clients)

        # By client count: gRPC alone, or gRPC, REST and Connect taking turns in rounds.
        for count in sorted(set(settings.get_clients) | set(settings.rest_clients)):
            transports: list[GetClients] = [clients]
            if count in settings.rest_clients:
                transports += [rest, connect]
            for transport in transports:
                _note(f"GetOperation over {transport.transport}, {count} clients: warm-up")
                await get_for(
                    transport, clock, names, count, settings.warmup_seconds, settings.seed
                )
            rounds = settings.rounds if len(transports) > 1 else 1
            parts: list[list[Result]] = [[] for _ in transports]
            for turn in range(rounds):
                for transport, done in zip(transports, parts, strict=True):
                    _note(f"GetOperation over {transport.transport}, {count} clients")
                    seconds = settings.get_seconds / rounds
                    seed = settings.seed + turn
                    done.append(await get_for(transport, clock, names, count, seconds, seed))
            results += [merged(done) for done in parts]

        # The writes: running operations created, then each finished with the outcome of a
        # finished corpus operation, as an evaluation service does.
        finished = make_corpus(
            settings.write_operations,
            settings.seed + 1,
            mix={"succeeded": 0.7, "failed": 0.3},
        )
        starts = [
            pb.CreateOperationRequest(
                operation=Operation(metadata=_running_metadata(op)), on_behalf_of=_on_behalf_of(op)
            )
            for op in finished
        ]
        _note(f"CreateOperation, {len(starts)} running operations")
        created, running = await create_all(clients, clock, starts, settings.write_clients)
        results.append(created)
        finals = []
        for name, op in zip(running, finished, strict=True):
            request = _creatable(op)
            request.name = name
            finals.append(pb.FinalizeOperationRequest(operation=request))
        _note(f"FinalizeOperation, {len(finals)} operations")
        results.append(await finalize_all(clients, clock, finals, settings.write_clients))
    finally:
        await asyncio.gather(clients.close(), rest.close(), connect.close())
    return results


def merged(parts: Sequence[Result]) -> Result:
    """The rounds of one transport at one client count, as one row."""
    first = parts[0]
    cpu = [p.server_cpu for p in parts]
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part.errors)
    return Result(
        call=first.call,
        transport=first.transport,
        clients=first.clients,
        requests=sum(p.requests for p in parts),
        seconds=sum(p.seconds for p in parts),
        latencies_ns=[ns for p in parts for ns in p.latencies_ns],
        server_cpu=None if None in cpu else sum(c for c in cpu if c is not None),
        client_cpu=sum(p.client_cpu for p in parts),
        errors=errors,
    )


def ratios(results: Sequence[Result]) -> list[str]:
    """REST to gRPC and Connect to REST, by client count, from the GetOperation rows."""
    rates = {(r.transport, r.clients): r.throughput for r in results if r.call == "GetOperation"}
    lines = []
    for count in sorted({clients for _, clients in rates}):
        grpc_rate = rates.get(("gRPC", count))
        rest_rate = rates.get(("REST", count))
        connect_rate = rates.get(("Connect JSON", count))
        if grpc_rate and rest_rate and connect_rate:
            lines.append(
                f"{count} clients: REST {rest_rate / grpc_rate:.2f}x gRPC's rate, "
                f"Connect JSON {connect_rate / rest_rate:.2f}x REST's"
            )
    return lines


def _running_metadata(op: Operation) -> any_pb2.Any:
    """The metadata ``op`` had while it ran: half-way progress of the same evaluation."""
    progress = unpack(op.metadata)
    assert isinstance(progress, evaluation_pb2.EvaluationProgress)
    half = progress.items_total // 2
    progress.items_done = half
    progress.progress = half / progress.items_total
    progress.message = f"scoring {half + 1} of {progress.items_total} test cases"
    return pack(progress)


def _note(text: str) -> None:
    print(f"bench: {text} ...", file=sys.stderr, flush=True)


# --- reporting -------------------------------------------------------------------------------


def table(results: Sequence[Result]) -> str:
    columns = ["Call", "Transport", "Clients", "Requests", "Errors", "Requests/s"]
    columns += ["p50 (ms)", "p99 (ms)", "Server CPU", "Server CPU/call (µs)", "Client CPU"]
    rows = ["| " + " | ".join(columns) + " |", "|---|---|" + "--:|" * (len(columns) - 2)]
    for r in results:
        server_cpu = per_call = "n/a"
        if r.server_cpu is not None:
            server_cpu = f"{r.server_cpu / r.seconds:.0%}"
            # What a call costs the server, whatever else ran on the machine meanwhile.
            per_call = f"{r.server_cpu / r.requests * 1e6:,.0f}" if r.requests else "n/a"
        errors = sum(r.errors.values())
        rows.append(
            f"| {r.call} | {r.transport} | {r.clients} | {r.requests} | {errors} "
            f"| {r.throughput:,.0f} "
            f"| {_ms(r, 50)} | {_ms(r, 99)} "
            f"| {server_cpu} | {per_call} | {r.client_cpu / r.seconds:.0%} |"
        )
    return "\n".join(rows)


def _ms(result: Result, p: float) -> str:
    return f"{result.percentile_ms(p):.2f}" if result.latencies_ns else "n/a"


def error_lines(results: Sequence[Result], most: int = 5) -> list[str]:
    """The commonest failures of each row that had any."""
    lines = []
    for r in results:
        for error, count in r.errors.most_common(most):
            lines.append(f"{r.call} over {r.transport}, {r.clients} clients: {count} x {error}")
    return lines


def machine_facts(workdir: Path, busy: float | None) -> list[str]:
    return [
        cpu_fact(busy),
        os_fact(),
        python_fact(),
        f"grpcio: {grpc.__version__}",
        protobuf_fact(),
        f"SQLite: {sqlite3.sqlite_version}, on {filesystem(workdir)}",
    ]


# --- command line ----------------------------------------------------------------------------


def _clients(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,8,64, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("client counts must be at least 1")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.grpc_bench",
        description="Benchmark the reference server over loopback, gRPC and REST; "
        "print a Markdown table.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds (smaller defaults for everything below)",
    )
    parser.add_argument(
        "--operations",
        type=int,
        help=f"operations seeded for GetOperation ({FULL.seed_operations})",
    )
    parser.add_argument(
        "--clients",
        type=_clients,
        help="GetOperation over gRPC: client counts, comma-separated "
        f"({','.join(map(str, FULL.get_clients))})",
    )
    parser.add_argument(
        "--rest-clients",
        type=_clients,
        help="GetOperation over REST and Connect: client counts, comma-separated "
        f"({','.join(map(str, FULL.rest_clients))})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"GetOperation seconds per transport and client count ({FULL.get_seconds})",
    )
    parser.add_argument(
        "--warmup", type=float, help=f"unmeasured seconds before each ({FULL.warmup_seconds})"
    )
    parser.add_argument(
        "--writes",
        type=int,
        help=f"operations created, then finalized ({FULL.write_operations})",
    )
    parser.add_argument(
        "--write-clients",
        type=int,
        help=f"concurrent clients for creates and finalizes ({FULL.write_clients})",
    )
    parser.add_argument("--seed", type=int, help="corpus and request-order seed (0)")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"turns of gRPC, REST and Connect at each shared client count ({FULL.rounds})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the SQLite file lives (default: the system temporary directory)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to v1op serve (repeatable): --serve-arg=--log-format --serve-arg=json",
    )
    parser.add_argument(
        "--unobserved",
        action="store_true",
        help="serve with no access log, metrics or spans, for what they cost",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    overrides = {
        "seed_operations": args.operations,
        "get_clients": args.clients,
        "rest_clients": args.rest_clients,
        "get_seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "write_operations": args.writes,
        "write_clients": args.write_clients,
        "seed": args.seed,
        "rounds": args.rounds,
    }
    settings = dataclasses.replace(
        base, **{key: value for key, value in overrides.items() if value is not None}
    )
    if settings.seed_operations < 1 or settings.write_operations < 1:
        raise SystemExit("--operations and --writes must be at least 1")
    if settings.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    if settings.write_clients < 1 or settings.get_seconds <= 0 or settings.warmup_seconds < 0:
        raise SystemExit("--write-clients must be at least 1, --seconds positive")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    token = secrets.token_urlsafe(24)
    busy = cpu_in_use()
    try:
        with tempfile.TemporaryDirectory(prefix="v1op-bench-", dir=args.dir) as tmp:
            workdir = Path(tmp)
            with running_server(workdir, token, args.serve_arg, args.unobserved) as server:
                results = asyncio.run(run(server, token, settings))
            facts = machine_facts(workdir, busy)
    except ServerError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the server was stopped", file=sys.stderr)
        return 130
    print()
    print(table(results))
    print()
    for line in ratios(results):
        print(f"- {line}")
    for fact in facts:
        print(f"- {fact}")
    print(
        f"- {settings.seed_operations} operations seeded for GetOperation, "
        f"{settings.get_seconds:g} s per transport and client count after "
        f"{settings.warmup_seconds:g} s of warm-up (gRPC, REST and Connect in "
        f"{settings.rounds} turns each where they share a client count); "
        "REST is GET /v1/operations%2F<id>, Connect "
        "is POST /v1op.v1.OperationService/GetOperation with JSON, "
        f"one keep-alive connection per client; {settings.write_operations} creates, "
        f"then finalizes, by {settings.write_clients} clients; seed {settings.seed}"
    )
    errors = error_lines(results)
    if errors:
        print()
        print("FAILED REQUESTS (counted in Errors, left out of Requests/s and latencies):")
        for line in errors:
            print(f"- {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
