"""``v1op serve --workers 2 --metrics-addr``: the parent serves the sum of its workers'
metrics (prometheus-client's multiprocess mode). Shown beyond doubt by killing both workers
that served the calls: their counts are still there, added up, with the calls of the
workers that replaced them."""

from __future__ import annotations

import os
import signal
import threading

import grpc
import pytest
from processes import launch, write_tokens
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

TOKENS = {"svc-token-w": "services/eval", "ada-token-w": "users/ada"}
SERVICE = (("authorization", "Bearer svc-token-w"),)
ADA = (("authorization", "Bearer ada-token-w"),)
GET = (
    ("grpc_code", "OK"),
    ("grpc_method", "GetOperation"),
    ("grpc_service", "v1op.v1.OperationService"),
    ("grpc_type", "unary"),
)
# A connection per channel: the kernel hands each to one worker or the other.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("workers-metrics")
    process = launch(
        directory,
        [
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--db",
            str(directory / "ops.db"),
            "--tokens",
            str(write_tokens(directory, TOKENS)),
            "--workers",
            "2",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        expect=("gRPC", "metrics"),
    )
    yield process
    assert process.stop() == 0, process.stderr()


def children(process) -> list[int]:
    pid = process.process.pid
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(p) for p in f.read().split()]


def calls(address: str, count: int) -> None:
    """``count`` GetOperation calls, over 8 connections of their own."""
    channels = [grpc.insecure_channel(address, options=OWN_CONNECTION) for _ in range(8)]
    try:
        stubs = [pb_grpc.OperationServiceStub(c) for c in channels]
        # wait_for_ready: a worker just restarted may not listen yet.
        name = (
            stubs[0]
            .CreateOperation(
                pb.CreateOperationRequest(on_behalf_of="users/ada"),
                metadata=SERVICE,
                timeout=30,
                wait_for_ready=True,
            )
            .operation.name
        )
        for i in range(count):
            stubs[i % len(stubs)].GetOperation(
                pb.GetOperationRequest(name=name), metadata=ADA, timeout=30, wait_for_ready=True
            )
    finally:
        for channel in channels:
            channel.close()


def replaced(process, dead: int) -> bool:
    """Until the parent has started a worker in place of ``dead``."""
    done = threading.Event()
    timer = threading.Timer(60, done.set)
    timer.start()
    try:
        while not done.is_set():
            pids = children(process)
            if dead not in pids and len(pids) == 2:
                return True
            done.wait(0.05)
        return False
    finally:
        timer.cancel()


def test_the_parent_serves_the_sum_of_every_workers_counts_the_dead_ones_too(workers):
    address = f"127.0.0.1:{workers.ports['gRPC']}"
    calls(address, 40)
    assert workers.scrape()[("grpc_server_handled_total", GET)] == 40
    for pid in children(workers):
        os.kill(pid, signal.SIGKILL)
        assert replaced(workers, pid)
    # Neither worker alive served any of those 40 calls: the counts are read from the
    # files the dead ones left.
    assert workers.scrape()[("grpc_server_handled_total", GET)] == 40
    calls(address, 10)
    samples = workers.scrape()
    assert samples[("grpc_server_handled_total", GET)] == 50
    assert samples[("grpc_server_handling_seconds_count", GET[1:])] == 50
    assert ("v1op_waits_in_progress", ()) in samples
