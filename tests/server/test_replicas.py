"""Several ``v1op serve`` processes on one database: replicas on one PostgreSQL database, and
``--workers 2`` behind one address on SQLite and on PostgreSQL.

Every check goes through real server processes and real gRPC calls; a wait that the other
process's finish does not wake runs into its call deadline (shorter than the server's cap on
waits) and fails.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2
from serving import OWN_CONNECTION, Client, Serving, auth, run_serve, start, woken

from v1op_pb.server.store import SCHEMA_VERSION

# Enough writers that each server has several writes waiting at once: they are made in
# batches (group commit), and the kill comes in the middle of batches.
STORM_THREADS = 8


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="module")
def database(postgres) -> str:
    return postgres.new_database()


@pytest.fixture(scope="module")
def replicas(directory, database) -> Iterator[tuple[Serving, Serving]]:
    first = start(directory, database)
    try:
        second = start(directory, database)
        try:
            yield first, second
        finally:
            assert second.stop() == 0, second.stderr()
    finally:
        assert first.stop() == 0, first.stderr()


@pytest.fixture(scope="module")
def clients(replicas) -> Iterator[tuple[Client, Client]]:
    a, b = Client(replicas[0].addr), Client(replicas[1].addr)
    yield a, b
    a.close()
    b.close()


# --- what every deployment of several processes must do ---------------------------------------


def check_a_finish_wakes_waits_elsewhere(waiting: Client, finishing: Client, rounds: int) -> None:
    for i in range(rounds):
        name = waiting.create().name
        assert finishing.get(name).name == name
        future = waiting.wait_future(name)
        assert not future.done()
        finalized = finishing.finalize(name, f"evaluations/{i}")
        waited = woken(future)
        assert waited.name == name
        assert waited.done
        assert waited.response == finalized.response


def check_racing_finalize_and_abort(first: Client, second: Client, count: int) -> None:
    names = [first.create().name for _ in range(count)]

    def attempt(job: tuple[Callable[[str], object], str]) -> str:
        call, name = job
        try:
            call(name)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
            return "lost"
        return "won"

    jobs = [job for name in names for job in ((first.finalize, name), (second.abort, name))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, jobs))
    for i, name in enumerate(names):
        finalize_outcome, abort_outcome = outcomes[2 * i], outcomes[2 * i + 1]
        assert {finalize_outcome, abort_outcome} == {"won", "lost"}, name
        stored = second.get(name)
        assert stored.done
        # What is stored is the winner's, whichever replica reads it.
        if abort_outcome == "won":
            assert stored.error.code == code_pb2.CANCELLED
        else:
            assert stored.WhichOneof("result") == "response"
        assert first.get(name) == stored


def check_seen_time_is_set_once(first: Client, second: Client) -> None:
    name = first.create().name
    first.finalize(name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        marked = list(pool.map(lambda c: c.mark_seen(name), [first, second] * 4))
    times = {op.seen_by_creator_time.ToNanoseconds() for op in marked}
    assert len(times) == 1
    assert second.get(name).seen_by_creator_time == marked[0].seen_by_creator_time


class Storm:
    """Threads creating and finalizing operations through some clients until stopped;
    remembers every write a server acknowledged."""

    def __init__(self, clients: list[Client]) -> None:
        self._clients = itertools.cycle(clients)
        self._lock = threading.Lock()
        self.created: set[str] = set()
        self.finalized: dict[str, str] = {}  # name -> the evaluation it was finalized with
        self.failures = 0
        self._stop = threading.Event()
        self._counted = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._run, args=(next(self._clients),))
            for _ in range(STORM_THREADS)
        ]

    def __enter__(self) -> Storm:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, client: Client) -> None:
        while not self._stop.is_set():
            try:
                name = client.create().name
            except grpc.RpcError:
                self._fail()
                continue
            with self._lock:
                self.created.add(name)
            evaluation = f"evaluations/{name.rsplit('/', 1)[1]}"
            try:
                client.finalize(name, evaluation)
            except grpc.RpcError:
                self._fail()
                continue
            with self._lock:
                self.finalized[name] = evaluation
                self._counted.notify_all()

    def _fail(self) -> None:
        with self._lock:
            self.failures += 1

    def wait_for(self, acknowledged: int) -> None:
        """Until ``acknowledged`` more finalizes have been acknowledged."""
        with self._lock:
            goal = len(self.finalized) + acknowledged
            assert self._counted.wait_for(lambda: len(self.finalized) >= goal, timeout=60)


def check_every_acknowledged_write_is_kept(storm: Storm, reader: Client) -> None:
    assert storm.finalized
    listed = {op.name for op in list_all(reader)}
    assert storm.created <= listed
    for name, evaluation in storm.finalized.items():
        stored = reader.get(name)
        assert stored.done, name
        assert evaluation.encode() in stored.response.value, name


def list_all(client: Client) -> list:
    operations, token = [], ""
    while True:
        page = client.list_page(200, token)
        operations.extend(page.operations)
        token = page.next_page_token
        if not token:
            return operations


# --- two replicas on one PostgreSQL database -------------------------------------------------


def test_created_in_one_finalized_in_the_other_wakes_a_wait_in_the_first(clients):
    first, second = clients
    check_a_finish_wakes_waits_elsewhere(first, second, rounds=5)
    check_a_finish_wakes_waits_elsewhere(second, first, rounds=5)


def test_racing_finalize_and_abort_across_replicas_exactly_one_wins(clients):
    check_racing_finalize_and_abort(*clients, count=100)


def test_seen_time_is_set_once_across_replicas(clients):
    check_seen_time_is_set_once(*clients)


def test_page_tokens_mean_the_same_in_every_replica(clients):
    first = clients[0]
    for _ in range(16):
        first.create()
    everything = [op.name for op in list_all(first)]
    # Page by page, each page from the other replica than the one that gave the token.
    alternating, token = [], ""
    for client in itertools.cycle(clients):
        page = client.list_page(7, token)
        alternating.extend(op.name for op in page.operations)
        token = page.next_page_token
        if not token:
            break
    assert alternating == everything
    assert len(everything) > 14


def test_after_the_database_drops_every_connection_calls_and_wake_ups_recover(database, clients):
    import psycopg

    first, second = clients
    name = first.create().name
    with psycopg.connect(database, autocommit=True) as admin:
        others = "datname = current_database() AND pid <> pg_backend_pid()"
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}")
        assert wait_until(
            lambda: (
                admin.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {others}").fetchone()[0]
                == 0
            )
        )
    # A call that meets a dropped connection is UNAVAILABLE (worth a retry), never
    # INTERNAL; each dropped connection fails at most one call.
    outcomes = []
    for client in [first, second] * 10:
        try:
            outcomes.append(client.get(name).name)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            outcomes.append("unavailable")
    assert outcomes[-4:] == [name] * 4
    # The listeners reconnected: finishes still wake waits in the other replica.
    check_a_finish_wakes_waits_elsewhere(first, second, rounds=2)
    check_a_finish_wakes_waits_elsewhere(second, first, rounds=2)


def test_kill_9_in_a_write_storm_loses_no_acknowledged_write(directory, database, clients):
    first, second = clients
    doomed = start(directory, database)
    victim = Client(doomed.addr)
    try:
        with Storm([victim, second]) as storm:
            storm.wait_for(20)
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait(timeout=10)
            # The other replica keeps serving: its writes go on being acknowledged.
            storm.wait_for(20)
        check_every_acknowledged_write_is_kept(storm, first)
        # The writes were made in batches: rows that one transaction wrote share its xmin.
        assert len(transactions_of(database, list(storm.finalized))) < len(storm.finalized)
    finally:
        victim.close()
        doomed.stop()


def transactions_of(database: str, names: list[str]) -> set[str]:
    """The transactions that last wrote these operations (PostgreSQL's xmin)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT xmin::text FROM v1op_operations WHERE name = ANY(%s)", (names,)
        ).fetchall()
    return {xmin for (xmin,) in rows}


# --- --workers 2 behind one address ---------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def workers(request, directory) -> Iterator[Serving]:
    if request.param == "postgres":
        db = request.getfixturevalue("postgres").new_database()
    else:
        db = str(directory / f"workers-{os.getpid()}.db")
    served = start(directory, db, "--workers", "2")
    yield served
    assert served.stop() == 0, served.stderr()
    assert worker_pids(served) == []


@pytest.fixture(scope="module")
def worker_clients(workers) -> Iterator[list[Client]]:
    # Each its own connection, which the kernel hands to one worker or the other.
    made = [Client(workers.addr) for _ in range(8)]
    yield made
    for client in made:
        client.close()


def worker_pids(served: Serving) -> list[int]:
    pid = served.process.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def test_workers_are_two_processes_on_one_port(workers):
    assert len(worker_pids(workers)) == 2
    assert "2 workers" in workers.stderr()


def test_a_finish_through_one_connection_wakes_a_wait_through_another(worker_clients):
    for waiting, finishing in itertools.pairwise(worker_clients):
        check_a_finish_wakes_waits_elsewhere(waiting, finishing, rounds=1)


def test_racing_finalize_and_abort_through_one_address_exactly_one_wins(worker_clients):
    check_racing_finalize_and_abort(worker_clients[0], worker_clients[1], count=100)


def test_seen_time_is_set_once_through_one_address(worker_clients):
    check_seen_time_is_set_once(worker_clients[2], worker_clients[3])


def test_page_tokens_mean_the_same_through_one_address(worker_clients):
    for _ in range(10):
        worker_clients[0].create()
    everything = [op.name for op in list_all(worker_clients[0])]
    paged, token = [], ""
    # Each page through another connection, so through one worker or the other.
    for client in itertools.cycle(worker_clients):
        page = client.list_page(3, token)
        paged.extend(op.name for op in page.operations)
        token = page.next_page_token
        if not token:
            break
    assert paged == everything
    assert len(everything) >= 10


def test_a_killed_worker_is_restarted_and_no_acknowledged_write_is_lost(workers, worker_clients):
    before = worker_pids(workers)
    with Storm(worker_clients[:4]) as storm:
        storm.wait_for(20)
        os.kill(before[0], signal.SIGKILL)
        # The other worker keeps serving (a connection to the dead one fails, and its
        # client's next call makes a new connection).
        storm.wait_for(20)
    check_every_acknowledged_write_is_kept(storm, worker_clients[5])
    restarted = wait_until(lambda: len(set(worker_pids(workers)) - set(before)) == 1)
    assert restarted
    assert "exited with status -9; restarting it" in workers.stderr()
    fresh = Client(workers.addr)
    try:
        name = fresh.create().name
        assert fresh.finalize(name).done
    finally:
        fresh.close()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    event = threading.Event()
    deadline = threading.Timer(timeout, event.set)
    deadline.start()
    try:
        while not event.is_set():
            if condition():
                return True
            event.wait(0.05)
        return condition()
    finally:
        deadline.cancel()


# --- start-up failures: one line, exit status 2 ----------------------------------------------


def assert_one_line_failure(result, *expected: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0]


@pytest.mark.parametrize("extra", [(), ("--workers", "2")])
def test_a_busy_port_fails_at_start(directory, extra):
    holder = start(directory, ":memory:")
    try:
        result = run_serve(directory, str(directory / "busy.db"), holder.addr, *extra)
        assert_one_line_failure(result, f"cannot listen on {holder.addr}", "in use")
    finally:
        assert holder.stop() == 0


@pytest.mark.parametrize("extra", [(), ("--workers", "2")])
def test_an_address_without_a_port_fails_at_start(directory, extra):
    result = run_serve(directory, str(directory / "noport.db"), "127.0.0.1", *extra)
    assert_one_line_failure(result, "'127.0.0.1' has no port")


@pytest.mark.parametrize("extra", [(), ("--workers", "2")])
def test_an_unreachable_database_fails_at_start(directory, extra):
    result = run_serve(directory, "postgresql://v1op:pw@127.0.0.1:1/none", "127.0.0.1:0", *extra)
    assert_one_line_failure(result, "cannot use PostgreSQL database", "refused")
    assert ":pw@" not in result.stderr


def test_an_unopenable_sqlite_file_fails_at_start(directory):
    result = run_serve(directory, str(directory / "missing" / "ops.db"), "127.0.0.1:0")
    assert_one_line_failure(result, "cannot open SQLite database")


def test_a_database_of_a_newer_schema_fails_at_start(directory, postgres):
    import psycopg

    db = postgres.new_database()
    server = start(directory, db)
    assert server.stop() == 0
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE v1op_schema SET version = version + 1")
    result = run_serve(directory, db, "127.0.0.1:0")
    newer = SCHEMA_VERSION + 1
    assert_one_line_failure(
        result, f"schema version {newer}; this server knows up to {SCHEMA_VERSION}"
    )


def test_workers_serve_tls_with_the_options_given_once(directory):
    # The workers repeat the whole command line: TLS options reach every one of them.
    from certs import make_certs
    from v1op.v1 import operation_service_pb2 as pb
    from v1op.v1 import operation_service_pb2_grpc as pb_grpc

    certs = make_certs(directory)
    served = start(
        directory,
        str(directory / "tls-workers.db"),
        "--workers",
        "2",
        "--tls-cert",
        str(certs.server_cert),
        "--tls-key",
        str(certs.server_key),
    )
    try:
        assert len(worker_pids(served)) == 2
        credentials = grpc.ssl_channel_credentials(root_certificates=certs.read("ca"))
        # Several connections, so both workers answer some.
        for _ in range(4):
            with grpc.secure_channel(served.addr, credentials, options=OWN_CONNECTION) as ch:
                stub = pb_grpc.OperationServiceStub(ch)
                created = stub.CreateOperation(
                    pb.CreateOperationRequest(on_behalf_of="users/ada"),
                    metadata=auth("services/eval"),
                    timeout=20,
                ).operation
                got = stub.GetOperation(
                    pb.GetOperationRequest(name=created.name),
                    metadata=auth("services/eval"),
                    timeout=20,
                ).operation
                assert got.name == created.name
        with grpc.insecure_channel(served.addr) as plain, pytest.raises(grpc.RpcError):
            pb_grpc.OperationServiceStub(plain).GetOperation(
                pb.GetOperationRequest(name=created.name), metadata=auth("services/eval"), timeout=5
            )
    finally:
        assert served.stop() == 0, served.stderr()
