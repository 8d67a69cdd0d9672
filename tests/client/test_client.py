"""OperationClient against the reference server over loopback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from conftest import Served, make_progress, make_result, running
from factories import make_failed
from google.api_core.exceptions import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    GoogleAPICallError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServiceUnavailable,
    Unauthenticated,
)
from google.rpc import code_pb2, error_details_pb2
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

# The modules themselves; test_server checks that the public faces export these objects.
from v1op_pb import Operation, TypeRegistry, make_status, pack
from v1op_pb.client.sync import OperationClient
from v1op_pb.server.auth import Authenticator
from v1op_pb.server.manager import OperationManager
from v1op_pb.server.services import OperationService

EVAL, ADA, BOB = "services/eval", "users/ada", "users/bob"
UNKNOWN_NAME = "operations/00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def make_client(served: Served) -> Iterator[Callable[..., OperationClient]]:
    opened: list[OperationClient] = []

    def make(
        principal: str | None = ADA, *, target: str | None = None, **kwargs
    ) -> OperationClient:
        token = served.tokens[principal] if principal else kwargs.pop("token", None)
        client = OperationClient(target or served.target, token=token, **kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def finalize(ops, served: Served, name: str, *, response=None, error=None) -> Operation:
    operation = Operation(name=name, done=True)
    if error is not None:
        operation.error.CopyFrom(error)
    else:
        operation.response.CopyFrom(pack(response if response is not None else make_result()))
    request = pb.FinalizeOperationRequest(operation=operation)
    return ops.FinalizeOperation(request, metadata=served.auth(EVAL), timeout=10).operation


def finalize_once_read(ops, served: Served, name: str, **outcome) -> threading.Thread:
    """Finalize ``name`` from another thread as soon as a waiter has read it.

    Waiting on the read, not on a sleep, makes sure the finish lands while the client is
    already waiting.
    """
    read = served.store.watch_reads(name)

    def run() -> None:
        if read.wait(10):
            finalize(ops, served, name, **outcome)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- reading and ending ----------------------------------------------------------------------


def test_get_returns_the_stored_operation(make_client, make_operation):
    created = make_operation(metadata=make_progress(0.6, "sixty"))
    got = make_client(ADA).get(created.name)
    assert isinstance(got, Operation)
    assert got == created


def test_list_and_its_page_size(make_client, served, make_operation):
    user = served.fresh_user()
    names = [make_operation(user).name for _ in range(3)]
    client = make_client(user)
    assert [op.name for op in client.list().operations] == names
    page = client.list(page_size=2)
    assert ([op.name for op in page.operations], page.total_size) == (names[:2], 3)
    rest = client.list(page_size=2, page_token=page.next_page_token)
    assert ([op.name for op in rest.operations], rest.next_page_token) == (names[2:], "")


def test_list_unseen_and_mark_seen(make_client, served, make_operation):
    user = served.fresh_user()
    make_operation(user)
    finished = [make_operation(user, response=make_result(f"e{i}")) for i in range(2)]
    client = make_client(user)

    unseen = client.list_unseen()
    assert [op.name for op in unseen.operations] == [op.name for op in finished]
    assert unseen.operations[0].response == finished[0].response
    basic = client.list_unseen(view=pb.OPERATION_VIEW_BASIC)
    assert not any(op.HasField("response") for op in basic.operations)

    marked = client.mark_seen(finished[0].name)
    assert marked.HasField("seen_by_creator_time")
    assert client.mark_seen(finished[0].name).seen_by_creator_time == marked.seen_by_creator_time
    assert [op.name for op in client.list_unseen(page_size=5).operations] == [finished[1].name]


def test_abort(make_client, make_operation):
    created = make_operation()
    aborted = make_client(ADA).abort(created.name)
    assert aborted.done
    assert aborted.error.code == code_pb2.CANCELLED


def test_a_given_channel_is_used_and_left_open(served, make_operation):
    created = make_operation()
    with grpc.insecure_channel(served.target) as channel:
        with OperationClient("ignored:0", token=served.tokens[ADA], channel=channel) as client:
            assert client.get(created.name).name == created.name
        # The client closed only what it opened: the caller's channel still works.
        again = OperationClient("ignored:0", token=served.tokens[ADA], channel=channel)
        assert again.get(created.name).name == created.name


# --- errors ------------------------------------------------------------------------------------


def test_not_found_carries_resource_info(make_client):
    with pytest.raises(NotFound, match=re.escape(f"operation {UNKNOWN_NAME!r} not found")) as info:
        make_client(ADA).get(UNKNOWN_NAME)
    error = info.value
    assert (error.grpc_status_code, error.code) == (grpc.StatusCode.NOT_FOUND, 404)
    (resource,) = error.details
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert resource.resource_name == UNKNOWN_NAME


def test_invalid_argument_carries_bad_request(make_client):
    with pytest.raises(
        InvalidArgument, match=re.escape("'jobs/1' is not an operation name")
    ) as info:
        make_client(ADA).get("jobs/1")
    (bad_request,) = info.value.details
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "name"


def test_permission_denied(make_client, make_operation):
    adas = make_operation(ADA)
    bob = make_client(BOB)
    with pytest.raises(PermissionDenied, match=re.escape(f"users/bob may not read {adas.name}")):
        bob.get(adas.name)
    with pytest.raises(PermissionDenied, match=re.escape("only the creator")):
        bob.abort(adas.name)
    with pytest.raises(PermissionDenied):
        bob.wait(adas.name, timeout=1)


def test_failed_precondition_carries_precondition_failure(make_client, make_operation):
    created = make_operation(response=make_result())
    with pytest.raises(FailedPrecondition, match=re.escape("is already finished")) as info:
        make_client(ADA).abort(created.name)
    (failure,) = info.value.details
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == created.name


@pytest.mark.parametrize(
    ("token", "message"),
    # One message for every refusal: the caller learns nothing of which check failed.
    [(None, "unauthenticated: the call carries no credential"), ("nope", "unauthenticated: the")],
)
def test_unauthenticated(make_client, make_operation, token, message):
    created = make_operation()
    client = make_client(None, token=token)
    with pytest.raises(Unauthenticated, match=re.escape(message)) as info:
        client.get(created.name)
    assert info.value.code == 401
    with pytest.raises(Unauthenticated):
        client.list()


def test_an_unreachable_server_is_unavailable():
    # Port 1 on loopback refuses at once, so this does not wait for the timeout.
    with (
        OperationClient("127.0.0.1:1", token="t", timeout=5) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.get(UNKNOWN_NAME)


# --- wait and result -----------------------------------------------------------------------------


def test_wait_returns_when_finalized_from_another_thread(make_client, ops, served, make_operation):
    created = make_operation()
    finisher = finalize_once_read(ops, served, created.name, response=make_result("e-wait"))
    start = time.monotonic()
    waited = make_client(ADA).wait(created.name, timeout=20)
    elapsed = time.monotonic() - start
    finisher.join(10)
    assert waited.done
    assert waited.response == pack(make_result("e-wait"))
    # The full Operation, not the longrunning view: the output-only fields are there.
    assert waited.creator == ADA and waited.updater == EVAL
    assert elapsed < 5, f"wait took {elapsed:.1f}s of its 20s"


def test_wait_with_a_timeout_returns_the_running_operation(make_client, make_operation):
    created = make_operation()
    start = time.monotonic()
    waited = make_client(ADA).wait(created.name, timeout=0.3)
    elapsed = time.monotonic() - start
    assert (waited.name, waited.done) == (created.name, False)
    assert 0.25 <= elapsed < 5


def test_result_returns_the_unpacked_response(make_client, ops, served, make_operation):
    created = make_operation()
    finisher = finalize_once_read(ops, served, created.name, response=make_result("e-result"))
    result = make_client(ADA).result(created.name, timeout=20)
    finisher.join(10)
    assert isinstance(result, evaluation_pb2.EvaluationResult)
    assert result == make_result("e-result")


def test_result_with_a_registry_of_its_own(make_client, make_operation):
    created = make_operation(response=make_result("e-registry"))
    registry = TypeRegistry(use_default_pool=False).register(evaluation_pb2)
    result = make_client(ADA, registry=registry).result(created.name, timeout=5)
    assert result == make_result("e-registry")


def test_result_of_a_failed_operation_raises_its_status(make_client, ops, served, make_operation):
    created = make_operation()
    finalize(ops, served, created.name, error=make_failed().error)
    with pytest.raises(ResourceExhausted, match=re.escape("token quota exhausted")) as info:
        make_client(ADA).result(created.name, timeout=5)
    error = info.value
    assert error.message == make_failed().error.message
    kinds = [type(d) for d in error.details]
    assert kinds == [
        error_details_pb2.ErrorInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.LocalizedMessage,
        error_details_pb2.Help,
    ]
    assert error.details[0].reason == "QUOTA_EXHAUSTED"


def test_result_of_an_aborted_operation_raises_cancelled(make_client, make_operation):
    created = make_operation()
    client = make_client(ADA)
    client.abort(created.name)
    with pytest.raises(Cancelled, match=re.escape("aborted by users/ada")):
        client.result(created.name, timeout=5)


def test_result_keeps_a_code_outside_google_rpc_code(make_client, ops, served, make_operation):
    created = make_operation()
    finalize(ops, served, created.name, error=make_status(77, "custom"))
    with pytest.raises(GoogleAPICallError, match=re.escape("custom")) as info:
        make_client(ADA).result(created.name, timeout=5)
    assert type(info.value) is GoogleAPICallError and info.value.grpc_status_code == 77


def test_result_times_out_with_deadline_exceeded(make_client, make_operation):
    created = make_operation()
    with pytest.raises(DeadlineExceeded, match=re.escape(f"{created.name!r} did not finish")):
        make_client(ADA).result(created.name, timeout=0.2)


# --- without google.longrunning: polling ---------------------------------------------------------


@pytest.fixture(scope="module")
def plain_server(served: Served):
    """A server with OperationService alone (no google.longrunning), on the same store."""

    async def build():
        server = grpc.aio.server()
        service = OperationService(
            OperationManager(served.store), Authenticator(tokens=served.table)
        )
        pb_grpc.add_OperationServiceServicer_to_server(service, server)
        return server, server.add_insecure_port("127.0.0.1:0")

    with running(build) as thread:
        yield thread


def test_wait_polls_a_server_without_longrunning(
    make_client, ops, served, plain_server, make_operation
):
    created = make_operation()
    client = make_client(ADA, target=f"127.0.0.1:{plain_server.port}")
    # The poll's first read lets the finish in, after WaitOperation was refused.
    finisher = finalize_once_read(ops, served, created.name, response=make_result("e-polled"))
    start = time.monotonic()
    waited = client.wait(created.name, timeout=20)
    elapsed = time.monotonic() - start
    finisher.join(10)
    assert waited.done and waited.response == pack(make_result("e-polled"))
    assert elapsed < 5, f"polling took {elapsed:.1f}s"


def test_polling_wait_times_out_on_a_running_operation(make_client, plain_server, make_operation):
    created = make_operation()
    client = make_client(ADA, target=f"127.0.0.1:{plain_server.port}")
    start = time.monotonic()
    waited = client.wait(created.name, timeout=0.4)
    elapsed = time.monotonic() - start
    assert not waited.done
    assert 0.35 <= elapsed < 5
    with pytest.raises(DeadlineExceeded):
        client.result(created.name, timeout=0.2)


def test_polling_result_of_a_finished_operation(make_client, plain_server, make_operation):
    created = make_operation(response=make_result("e-plain"))
    client = make_client(ADA, target=f"127.0.0.1:{plain_server.port}")
    assert client.result(created.name, timeout=5) == make_result("e-plain")
