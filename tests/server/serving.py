"""Real ``v1op serve`` processes for the tests of replicas and workers, and the calls those
tests make to them."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack

SCRIPT = Path(sys.executable).parent / "v1op"
READY = re.compile(r"v1op: serving gRPC on 127\.0\.0\.1:(\d+)\n\Z")
START_TIMEOUT = 60.0
CALL_TIMEOUT = 20.0
WAIT_SECONDS = 55  # under the server's 60 s cap on waits
WAKE_GUARD_SECONDS = 25
TOKENS = {"services/eval": "tok-eval", "users/ada": "tok-ada"}
# A separate connection per channel, as separate clients would have: with port sharing,
# the kernel gives each new connection to one of the processes on the port.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


def make_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "V1OP_TOKEN"}


def write_tokens(directory: Path) -> Path:
    path = directory / "tokens.txt"
    path.write_text("".join(f"{t} {who}\n" for who, t in TOKENS.items()), encoding="utf-8")
    return path


def serve_command(directory: Path, db: str, addr: str, *extra: str) -> list[str]:
    return [
        str(SCRIPT),
        "serve",
        "--grpc-addr",
        addr,
        "--db",
        db,
        "--tokens",
        str(write_tokens(directory)),
        "--import",
        "v1op.example.v1.evaluation_pb2",
        *extra,
    ]


@dataclass
class Serving:
    process: subprocess.Popen[str]
    port: int
    stderr_path: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start(directory: Path, db: str, *extra: str, addr: str = "127.0.0.1:0") -> Serving:
    """``v1op serve`` on ``db``, once its ready line (with the port) has come."""
    return launch(directory, serve_command(directory, db, addr, *extra))


def launch(directory: Path, command: list[str]) -> Serving:
    """Run ``command`` (a ``v1op serve``) and wait for its ready line (with the port)."""
    stderr_path = directory / f"serve-{time.monotonic_ns()}.err"
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=make_env()
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    # readline blocks; a reader thread lets the wait for the ready line have a deadline.
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        line = ""
    match = READY.match(line)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"no ready line (got {line!r}); stderr: {stderr_path.read_text()}")
    return Serving(process, int(match.group(1)), stderr_path)


def run_serve(directory: Path, db: str, addr: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``v1op serve`` expected to fail at start: its exit status and output."""
    return subprocess.run(
        serve_command(directory, db, addr, *extra),
        capture_output=True,
        text=True,
        timeout=60,
        env=make_env(),
    )


def auth(principal: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[principal]}"),)


class Client:
    """Calls to one address over a connection of its own."""

    def __init__(self, addr: str) -> None:
        self.channel = grpc.insecure_channel(addr, options=OWN_CONNECTION)
        self.ops = pb_grpc.OperationServiceStub(self.channel)
        self.lro = operations_pb2_grpc.OperationsStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def create(self) -> Operation:
        requested = Operation(metadata=pack(evaluation_pb2.EvaluationProgress(progress=0.5)))
        request = pb.CreateOperationRequest(operation=requested, on_behalf_of="users/ada")
        return self.ops.CreateOperation(
            request, metadata=auth("services/eval"), timeout=CALL_TIMEOUT
        ).operation

    def get(self, name: str) -> Operation:
        return self.ops.GetOperation(
            pb.GetOperationRequest(name=name), metadata=auth("services/eval"), timeout=CALL_TIMEOUT
        ).operation

    def finalize(self, name: str, evaluation: str = "evaluations/e1") -> Operation:
        result = evaluation_pb2.EvaluationResult(
            evaluation=evaluation, verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED
        )
        requested = Operation(name=name, done=True, response=pack(result))
        return self.ops.FinalizeOperation(
            pb.FinalizeOperationRequest(operation=requested),
            metadata=auth("services/eval"),
            timeout=CALL_TIMEOUT,
        ).operation

    def abort(self, name: str) -> Operation:
        return self.ops.AbortOperation(
            pb.AbortOperationRequest(name=name), metadata=auth("users/ada"), timeout=CALL_TIMEOUT
        ).operation

    def mark_seen(self, name: str) -> Operation:
        return self.ops.MarkOperationSeenByCreator(
            pb.MarkOperationSeenByCreatorRequest(name=name),
            metadata=auth("users/ada"),
            timeout=CALL_TIMEOUT,
        ).operation

    def list_page(self, page_size: int, token: str = "") -> lro.ListOperationsResponse:
        """A page of google.longrunning ListOperations, the list with page tokens."""
        return self.lro.ListOperations(
            lro.ListOperationsRequest(name="operations", page_size=page_size, page_token=token),
            metadata=auth("users/ada"),
            timeout=CALL_TIMEOUT,
        )

    def wait_future(self, name: str) -> grpc.Future:
        """A WaitOperation for up to WAIT_SECONDS, once it has reached the server. The server
        answers a wait at its timeout with the state as it is then, done or not; so the one
        sign that a finish woke it is that it answered long before: ``woken`` tells."""
        request = lro.WaitOperationRequest(name=name)
        request.timeout.FromSeconds(WAIT_SECONDS)
        future = self.lro.WaitOperation.future(
            request, metadata=auth("users/ada"), timeout=WAIT_SECONDS + CALL_TIMEOUT
        )
        # A later call on the same connection answered: the wait reached the server.
        self.get(name)
        return future


def woken(future: grpc.Future) -> Operation:
    """What the wait answered, if that was well before its own timeout ran out (not a
    measure of speed: a woken wait answers within milliseconds)."""
    try:
        return future.result(timeout=WAKE_GUARD_SECONDS)
    except grpc.FutureTimeoutError:
        future.cancel()
        raise AssertionError(
            f"the wait was not woken: no answer {WAKE_GUARD_SECONDS} s into its "
            f"{WAIT_SECONDS} s timeout"
        ) from None
