"""Retries: the client's reads are retried on UNAVAILABLE by gRPC's own retry policy (the
channel's service config), the calls that change state are not. Against a real server
whose OperationService answers UNAVAILABLE the first times it is asked about a name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from conftest import Served, running
from google.api_core.exceptions import ServiceUnavailable
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb.client import OperationClient
from v1op_pb.client._common import RETRY_POLICY
from v1op_pb.server.auth import Authenticator
from v1op_pb.server.manager import OperationManager
from v1op_pb.server.services import OperationService

ADA = "users/ada"
ALWAYS = 1000


class WarmingUp(OperationService):
    """Answers UNAVAILABLE to the first ``failures[name]`` calls about each name."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures: dict[str, int] = {}
        self.calls: Counter[str] = Counter()

    async def _maybe_fail(self, name: str, context: grpc.aio.ServicerContext) -> None:
        self.calls[name] += 1
        if self.calls[name] <= self.failures.get(name, 0):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")

    async def GetOperation(self, request, context):
        await self._maybe_fail(request.name, context)
        return await super().GetOperation(request, context)

    async def AbortOperation(self, request, context):
        await self._maybe_fail(request.name, context)
        return await super().AbortOperation(request, context)


@pytest.fixture(scope="module")
def warming(served: Served) -> Iterator[tuple[WarmingUp, str]]:
    service = WarmingUp(OperationManager(served.store), Authenticator(tokens=served.table))

    async def build():
        server = grpc.aio.server()
        pb_grpc.add_OperationServiceServicer_to_server(service, server)
        return server, server.add_insecure_port("127.0.0.1:0")

    with running(build) as thread:
        yield service, f"127.0.0.1:{thread.port}"


def test_a_read_is_retried_until_the_server_answers(served, warming, make_operation):
    service, target = warming
    created = make_operation(ADA)
    service.failures[created.name] = 2
    with OperationClient(target, token=served.tokens[ADA], timeout=30) as client:
        assert client.get(created.name) == created
    assert service.calls[created.name] == 3


def test_retries_stop_at_the_policys_attempts(served, warming, make_operation):
    service, target = warming
    created = make_operation(ADA)
    service.failures[created.name] = ALWAYS
    with (
        OperationClient(target, token=served.tokens[ADA], timeout=30) as client,
        pytest.raises(ServiceUnavailable, match="warming up"),
    ):
        client.get(created.name)
    assert service.calls[created.name] == RETRY_POLICY["maxAttempts"]


def test_a_call_that_changes_state_is_not_retried(served, warming, make_operation):
    service, target = warming
    created = make_operation(ADA)
    service.failures[created.name] = 1
    with OperationClient(target, token=served.tokens[ADA], timeout=30) as client:
        with pytest.raises(ServiceUnavailable, match="warming up"):
            client.abort(created.name)
        assert service.calls[created.name] == 1
        # Asked again by its caller, who knows it did not happen, it does.
        assert client.abort(created.name).done
