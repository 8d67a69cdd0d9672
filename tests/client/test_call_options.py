"""Per-call ``timeout=``, ``retry=`` and ``metadata=`` on the client methods, as google-api-core's
generated clients take them: against a real server that records what each call carried
(its metadata and deadline), holds the calls it is told to, and fails the first calls of a
key with UNAVAILABLE."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from conftest import Served, make_progress, running
from google.api_core import retry as retries
from google.api_core import retry_async
from google.api_core.exceptions import DeadlineExceeded, ServiceUnavailable
from google.api_core.gapic_v1.method import DEFAULT as GAPIC_DEFAULT
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb.client import DEFAULT, AsyncOperationClient, OperationClient
from v1op_pb.server.manager import OperationManager
from v1op_pb.server.services import OperationService

ADA, EVAL = "users/ada", "services/eval"
KEY = "x-test-key"
HANG = "operations/00000000-0000-4000-8000-00000000dead"


@dataclass
class Seen:
    metadata: dict[str, str]
    time_remaining: float | None


class Recording(OperationService):
    """OperationService that records each call by its ``x-test-key`` metadata, answers
    UNAVAILABLE to the first ``failures[key]`` CreateOperation calls of a key, and holds
    GetOperation of HANG until the module ends."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, list[Seen]] = {}
        self.failures: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.release: asyncio.Event | None = None

    def _record(self, context: grpc.aio.ServicerContext) -> str:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        key = metadata.get(KEY, "")
        self.seen.setdefault(key, []).append(Seen(metadata, context.time_remaining()))
        self.calls[key] += 1
        return key

    async def GetOperation(self, request, context):
        self._record(context)
        if request.name == HANG:
            if self.release is None:
                self.release = asyncio.Event()
            await self.release.wait()
        return await super().GetOperation(request, context)

    async def CreateOperation(self, request, context):
        key = self._record(context)
        if self.calls[key] <= self.failures.get(key, 0):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return await super().CreateOperation(request, context)


@pytest.fixture(scope="module")
def recording(served: Served) -> Iterator[tuple[Recording, str]]:
    service = Recording(OperationManager(served.store), served.table)
    loop: list[asyncio.AbstractEventLoop] = []

    async def build():
        loop.append(asyncio.get_running_loop())
        server = grpc.aio.server()
        pb_grpc.add_OperationServiceServicer_to_server(service, server)
        return server, server.add_insecure_port("127.0.0.1:0")

    with running(build) as thread:
        yield service, f"127.0.0.1:{thread.port}"
        if service.release is not None:
            loop[0].call_soon_threadsafe(service.release.set)


def quick_retry() -> retries.Retry:
    return retries.Retry(
        predicate=retries.if_exception_type(ServiceUnavailable),
        initial=0.01,
        maximum=0.05,
        timeout=30,
    )


def test_metadata_and_timeout_reach_the_server(served, recording, make_operation):
    service, target = recording
    created = make_operation(ADA)
    with OperationClient(target, token=served.tokens[ADA], timeout=1000) as client:
        client.get(created.name, metadata=[(KEY, "given"), ("x-trace", "t-1")], timeout=7)
        client.get(created.name, metadata=((KEY, "default"),))
        client.get(created.name, metadata=[(KEY, "gapic")], timeout=GAPIC_DEFAULT, retry=DEFAULT)
        client.get(created.name, metadata=[(KEY, "none")], timeout=None)
    given, default, none, gapic = (
        service.seen[key][-1] for key in ("given", "default", "none", "gapic")
    )
    # Beside the client's own (the token), as one more pair each.
    assert given.metadata["x-trace"] == "t-1"
    assert given.metadata["authorization"] == f"Bearer {served.tokens[ADA]}"
    # (The grpc-timeout header rounds a deadline up, by about 1%.)
    assert given.time_remaining is not None and given.time_remaining < 8
    # The client's timeout when none is given, no deadline at all with None.
    assert default.time_remaining is not None and 500 < default.time_remaining < 1100
    assert none.time_remaining is None
    # api-core's own sentinel means the same.
    assert gapic.time_remaining is not None and 500 < gapic.time_remaining < 1100


def test_a_call_past_its_timeout_is_deadline_exceeded(served, recording):
    _, target = recording
    with (
        OperationClient(target, token=served.tokens[ADA]) as client,
        pytest.raises(DeadlineExceeded),
    ):
        client.get(HANG, timeout=0.2)


def test_retry_retries_a_call_gRPC_itself_does_not(served, recording):
    service, target = recording
    service.failures["create-retried"] = 2
    service.failures["create-once"] = 1
    with OperationClient(target, token=served.tokens[EVAL]) as client:
        created = client.create(
            make_progress(), retry=quick_retry(), metadata=[(KEY, "create-retried")]
        )
        assert created.name.startswith("operations/")
        assert service.calls["create-retried"] == 3
        # Without a retry, CreateOperation is tried once: a lost answer must not create two.
        with pytest.raises(ServiceUnavailable):
            client.create(make_progress(), metadata=[(KEY, "create-once")], retry=DEFAULT)
        assert service.calls["create-once"] == 1


def test_the_async_client_takes_the_same_options(served, recording):
    service, target = recording
    service.failures["async-retried"] = 2

    async def main() -> tuple[str, float | None]:
        async with AsyncOperationClient(target, token=served.tokens[EVAL], timeout=1000) as c:
            created = await c.create(
                make_progress(),
                retry=retry_async.AsyncRetry(
                    predicate=retries.if_exception_type(ServiceUnavailable), initial=0.01
                ),
                metadata=[(KEY, "async-retried")],
            )
            await c.get(created.name, metadata=[(KEY, "async-get")], timeout=5)
            with pytest.raises(DeadlineExceeded):
                await c.get(HANG, timeout=0.2)
            return created.name, service.seen["async-get"][-1].time_remaining

    name, remaining = asyncio.run(main())
    assert name.startswith("operations/")
    assert service.calls["async-retried"] == 3
    assert remaining is not None and remaining < 6


def test_a_message_as_metadata_is_refused_with_the_new_name(served, recording):
    _, target = recording
    with OperationClient(target, token=served.tokens[EVAL]) as client:
        with pytest.raises(TypeError, match="operation_metadata="):
            client.finalize("operations/x", response=make_progress(), metadata=make_progress())
        with pytest.raises(TypeError, match=r"\(key, value\) pairs"):
            client.get("operations/x", metadata=["just-a-key"])
        with pytest.raises(TypeError, match="Retry or AsyncRetry"):
            client.get("operations/x", retry=3)


def test_the_client_does_not_import_grpc_helpers_or_google_auths_transport():
    # google.auth.transport.grpc warns on stderr on import with some grpcio releases: the
    # CLI's one line of error must stay one line. A fresh interpreter, as a command is.
    script = (
        "import sys, v1op_pb.client, v1op_pb.cli.calls; "
        "print(sorted(m for m in sys.modules if m in "
        "('google.auth.transport.grpc', 'google.api_core.grpc_helpers')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert (done.stdout, done.stderr) == ("[]\n", "")
