"""The reference server end to end: real gRPC on loopback, generated stubs, bearer tokens.

Every test of the module shares one server (see conftest.served); tests that assert exact
list contents use a user of their own (served.fresh_user) so the others cannot disturb them.
"""

from __future__ import annotations

import collections
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from conftest import EXTRA_MAX_MESSAGE, extra_server, make_progress, make_result, running
from factories import make_failed, make_timestamp
from google.api_core import exceptions as api_exceptions
from google.api_core import operation as api_operation
from google.api_core import operations_v1
from google.api_core.future import polling
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import any_pb2, struct_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, make_status, pack

EVAL, OTHER, ADA, BOB = "services/eval", "services/other", "users/ada", "users/bob"
UNKNOWN_NAME = "operations/00000000-0000-4000-8000-000000000000"
NAME_PATTERN = re.compile(r"operations/[0-9a-f-]{36}\Z")
UNKNOWN_ANY = any_pb2.Any(type_url="type.googleapis.com/nowhere.v1.Mystery", value=b"\x08\x01")
RPC_TIMEOUT = 10


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def progress_stub(channel) -> pb_grpc.OperationProgressServiceStub:
    return pb_grpc.OperationProgressServiceStub(channel)


@pytest.fixture(scope="module")
def lro_stub(channel) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(channel)


def rpc_error(
    code: grpc.StatusCode, method, request, *, metadata=(), match: str | None = None
) -> grpc.Call:
    """The RpcError of a call that must fail with ``code``."""
    with pytest.raises(grpc.RpcError, match=match) as info:
        method(request, metadata=metadata, timeout=RPC_TIMEOUT)
    assert info.value.code() == code, info.value.details()
    return info.value


def detail(error: grpc.Call, cls: type[Message]) -> Message:
    """The one detail of type ``cls`` in the rich Status of a failed call, unpacked here with
    plain Any.Unpack so the library under test does not judge its own output."""
    status = rpc_status.from_call(error)
    assert status is not None, "the call carried no grpc-status-details-bin"
    assert status.code == error.code().value[0]
    found = [d for d in status.details if d.Is(cls.DESCRIPTOR)]
    assert len(found) == 1, status
    message = cls()
    found[0].Unpack(message)
    return message


def make_finalize(
    name: str, *, response: Message | None = None, error=None
) -> pb.FinalizeOperationRequest:
    operation = Operation(name=name, done=True)
    if error is not None:
        operation.error.CopyFrom(error)
    else:
        operation.response.CopyFrom(pack(response if response is not None else make_result()))
    return pb.FinalizeOperationRequest(operation=operation)


def make_update(name: str, metadata: Message | any_pb2.Any) -> pb.UpdateOperationRequest:
    packed = metadata if isinstance(metadata, any_pb2.Any) else pack(metadata)
    return pb.UpdateOperationRequest(operation=Operation(name=name, metadata=packed))


def service_list(ops, served) -> list[Operation]:
    """Every operation, as a service sees them."""
    return list(
        ops.ListOperations(pb.ListOperationsRequest(), metadata=served.auth(EVAL)).operations
    )


def assert_still_serving(ops, served, name: str) -> None:
    got = ops.GetOperation(pb.GetOperationRequest(name=name), metadata=served.auth(EVAL), timeout=5)
    assert got.operation.name == name


# --- OperationService, the happy paths ----------------------------------------------------------


def test_create_sets_the_output_only_fields_itself(ops, served):
    before = time.time()
    requested = Operation(
        name="operations/chosen-by-caller",
        creator="users/mallory",
        updater="users/mallory",
        create_time=make_timestamp("2001-01-01T00:00:00Z"),
        seen_by_creator_time=make_timestamp("2001-01-01T00:00:00Z"),
        delete_time=make_timestamp("2001-01-01T00:00:00Z"),
        metadata=pack(make_progress(0.5)),
    )
    request = pb.CreateOperationRequest(operation=requested, on_behalf_of=ADA)
    created = ops.CreateOperation(request, metadata=served.auth(EVAL)).operation

    assert NAME_PATTERN.match(created.name)
    assert created.creator == ADA
    assert before - 1 <= created.create_time.ToNanoseconds() / 1e9 <= time.time() + 1
    for stamp in ("update_time", "seen_by_creator_time", "delete_time"):
        assert not created.HasField(stamp), stamp
    assert created.updater == ""
    assert created.metadata == pack(make_progress(0.5))
    assert not created.done
    # What CreateOperation answered is what is stored.
    got = ops.GetOperation(pb.GetOperationRequest(name=created.name), metadata=served.auth(ADA))
    assert got.operation == created


def test_create_without_on_behalf_of_makes_the_service_the_creator(make_operation):
    assert make_operation(EVAL).creator == EVAL


def test_create_a_finished_operation(make_operation):
    created = make_operation(response=make_result("evaluations/at-once"))
    assert created.done
    assert created.response == pack(make_result("evaluations/at-once"))


def test_batch_get_keeps_the_requested_order(ops, served, make_operation):
    first, second = make_operation(), make_operation()
    names = [second.name, first.name, second.name]
    got = ops.BatchGetOperations(
        pb.BatchGetOperationsRequest(names=names), metadata=served.auth(ADA)
    )
    assert [op.name for op in got.operations] == names
    assert got.operations[1] == first


def test_list_shows_a_user_only_its_own_and_a_service_everything(ops, served, make_operation):
    user = served.fresh_user()
    mine = [make_operation(user).name for _ in range(3)]
    theirs = make_operation(BOB).name

    listed = ops.ListOperations(pb.ListOperationsRequest(), metadata=served.auth(user))
    assert [op.name for op in listed.operations] == mine
    assert listed.total_size == 3

    page = ops.ListOperations(pb.ListOperationsRequest(page_size=2), metadata=served.auth(user))
    assert [op.name for op in page.operations] == mine[:2]
    assert page.total_size == 3  # irrespective of pagination

    everything = {op.name for op in service_list(ops, served)}
    assert {*mine, theirs} <= everything


def test_list_unseen_lists_finished_unseen_operations(ops, served, make_operation):
    user = served.fresh_user()
    make_operation(user)  # running: never "unseen"
    finished = [make_operation(user, response=make_result(f"evaluations/{i}")) for i in range(2)]
    aborted = ops.AbortOperation(
        pb.AbortOperationRequest(name=make_operation(user).name), metadata=served.auth(user)
    ).operation
    unseen_names = [finished[0].name, finished[1].name, aborted.name]

    full = ops.ListUnseenOperations(pb.ListUnseenOperationsRequest(), metadata=served.auth(user))
    assert [op.name for op in full.operations] == unseen_names
    assert full.total_size == 3
    assert full.operations[0].response == pack(make_result("evaluations/0"))

    basic = ops.ListUnseenOperations(
        pb.ListUnseenOperationsRequest(page_size=2, view=pb.OPERATION_VIEW_BASIC),
        metadata=served.auth(user),
    )
    assert [op.name for op in basic.operations] == unseen_names[:2]
    assert basic.total_size == 3
    # BASIC is everything but the response.
    assert all(op.done and not op.HasField("response") for op in basic.operations)
    assert basic.operations[0].metadata == finished[0].metadata

    ops.MarkOperationSeenByCreator(
        pb.MarkOperationSeenByCreatorRequest(name=finished[0].name), metadata=served.auth(user)
    )
    after = ops.ListUnseenOperations(pb.ListUnseenOperationsRequest(), metadata=served.auth(user))
    assert [op.name for op in after.operations] == unseen_names[1:]


def test_update_replaces_the_metadata_and_stamps_the_updater(ops, served, make_operation):
    created = make_operation()
    request = make_update(created.name, make_progress(0.75, "scoring 75 of 100"))
    updated = ops.UpdateOperation(request, metadata=served.auth(EVAL)).operation
    assert updated.metadata == pack(make_progress(0.75, "scoring 75 of 100"))
    assert updated.updater == EVAL
    assert updated.update_time.ToNanoseconds() >= created.create_time.ToNanoseconds()
    assert updated.creator == ADA and updated.create_time == created.create_time
    assert not updated.done


def test_finalize_with_a_response(ops, served, make_operation):
    created = make_operation()
    request = make_finalize(created.name, response=make_result("evaluations/final"))
    finished = ops.FinalizeOperation(request, metadata=served.auth(EVAL)).operation
    assert finished.done
    assert finished.response == pack(make_result("evaluations/final"))
    assert finished.updater == EVAL
    assert finished.metadata == created.metadata  # a finalize without metadata keeps it


def test_finalize_with_an_error_keeps_its_typed_details(ops, served, make_operation):
    created = make_operation()
    failed = make_failed().error
    finished = ops.FinalizeOperation(
        make_finalize(created.name, error=failed), metadata=served.auth(EVAL)
    ).operation
    assert finished.done
    assert finished.error == failed


def test_abort_by_the_creator_cancels(ops, served, make_operation):
    created = make_operation()
    aborted = ops.AbortOperation(
        pb.AbortOperationRequest(name=created.name), metadata=served.auth(ADA)
    ).operation
    assert aborted.done
    assert aborted.error.code == code_pb2.CANCELLED
    assert aborted.error.message == "aborted by users/ada"
    assert aborted.updater == ADA


def test_mark_seen_sets_the_time_once(ops, served, make_operation):
    created = make_operation(response=make_result())
    request = pb.MarkOperationSeenByCreatorRequest(name=created.name)
    first = ops.MarkOperationSeenByCreator(request, metadata=served.auth(ADA)).operation
    assert first.HasField("seen_by_creator_time")
    again = ops.MarkOperationSeenByCreator(request, metadata=served.auth(ADA)).operation
    assert again.seen_by_creator_time == first.seen_by_creator_time


def test_batch_mark_seen(ops, served, make_operation):
    names = [make_operation(response=make_result()).name for _ in range(3)]
    marked = ops.BatchMarkOperationSeenByCreator(
        pb.BatchMarkOperationSeenByCreatorRequest(names=names), metadata=served.auth(ADA)
    ).operations
    assert [op.name for op in marked] == names
    assert all(op.HasField("seen_by_creator_time") for op in marked)


def test_progress_by_parent_reads_the_metadata(progress_stub, served, make_operation):
    created = make_operation(metadata=make_progress(0.25, "scoring 25 of 100"))
    request = pb.GetOperationProgressByParentRequest(parent=created.name)
    got = progress_stub.GetOperationProgressByParent(request, metadata=served.auth(ADA))
    progress = got.operation_progress
    assert progress.parent == created.name
    assert progress.progress == pytest.approx(0.25)
    assert progress.message == "scoring 25 of 100"
    assert re.fullmatch(re.escape(created.name) + r"/progresses/[0-9a-f-]{36}", progress.name)
    # The progress resource name is stable: clients may key on it.
    again = progress_stub.GetOperationProgressByParent(request, metadata=served.auth(EVAL))
    assert again.operation_progress.name == progress.name


def test_progress_from_struct_metadata_and_from_metadata_without_progress(
    progress_stub, served, make_operation
):
    struct = struct_pb2.Struct()
    struct.update({"progress": 0.5, "message": "half way"})
    from_struct = make_operation(metadata=struct)
    without = make_operation(metadata=evaluation_pb2.EvaluationResult(evaluation="e"))

    def progress_of(name: str) -> pb.OperationProgress:
        request = pb.GetOperationProgressByParentRequest(parent=name)
        response = progress_stub.GetOperationProgressByParent(request, metadata=served.auth(ADA))
        return response.operation_progress

    assert (progress_of(from_struct.name).progress, progress_of(from_struct.name).message) == (
        0.5,
        "half way",
    )
    assert (progress_of(without.name).progress, progress_of(without.name).message) == (0.0, "")


# --- who may call ----------------------------------------------------------------------------


# (label, stub class, method, request) for every authenticated RPC the server offers.
EVERY_RPC = [
    ("Get", pb_grpc.OperationServiceStub, "GetOperation",
     pb.GetOperationRequest(name=UNKNOWN_NAME)),
    ("BatchGet", pb_grpc.OperationServiceStub, "BatchGetOperations",
     pb.BatchGetOperationsRequest(names=[UNKNOWN_NAME])),
    ("List", pb_grpc.OperationServiceStub, "ListOperations", pb.ListOperationsRequest()),
    ("ListUnseen", pb_grpc.OperationServiceStub, "ListUnseenOperations",
     pb.ListUnseenOperationsRequest()),
    ("Update", pb_grpc.OperationServiceStub, "UpdateOperation",
     make_update(UNKNOWN_NAME, make_progress())),
    ("Finalize", pb_grpc.OperationServiceStub, "FinalizeOperation", make_finalize(UNKNOWN_NAME)),
    ("Abort", pb_grpc.OperationServiceStub, "AbortOperation",
     pb.AbortOperationRequest(name=UNKNOWN_NAME)),
    ("Mark", pb_grpc.OperationServiceStub, "MarkOperationSeenByCreator",
     pb.MarkOperationSeenByCreatorRequest(name=UNKNOWN_NAME)),
    ("BatchMark", pb_grpc.OperationServiceStub, "BatchMarkOperationSeenByCreator",
     pb.BatchMarkOperationSeenByCreatorRequest(names=[UNKNOWN_NAME])),
    ("Create", pb_grpc.OperationServiceStub, "CreateOperation",
     pb.CreateOperationRequest(operation=Operation())),
    ("Progress", pb_grpc.OperationProgressServiceStub, "GetOperationProgressByParent",
     pb.GetOperationProgressByParentRequest(parent=UNKNOWN_NAME)),
    ("lro.Get", operations_pb2_grpc.OperationsStub, "GetOperation",
     lro.GetOperationRequest(name=UNKNOWN_NAME)),
    ("lro.List", operations_pb2_grpc.OperationsStub, "ListOperations",
     lro.ListOperationsRequest(name="operations")),
    ("lro.Cancel", operations_pb2_grpc.OperationsStub, "CancelOperation",
     lro.CancelOperationRequest(name=UNKNOWN_NAME)),
    ("lro.Delete", operations_pb2_grpc.OperationsStub, "DeleteOperation",
     lro.DeleteOperationRequest(name=UNKNOWN_NAME)),
    ("lro.Wait", operations_pb2_grpc.OperationsStub, "WaitOperation",
     lro.WaitOperationRequest(name=UNKNOWN_NAME)),
]  # fmt: skip


BAD_CREDENTIALS = {
    "no metadata": (),
    "unknown token": (("authorization", "Bearer no-such-token"),),
    "not bearer": (("authorization", "Basic dXNlcjpwYXNz"),),
    "empty bearer": (("authorization", "Bearer "),),
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS, ids=list(BAD_CREDENTIALS))
@pytest.mark.parametrize(
    ("stub_class", "method", "request_"),
    [rpc[1:] for rpc in EVERY_RPC],
    ids=[rpc[0] for rpc in EVERY_RPC],
)
def test_calls_without_a_known_token_are_unauthenticated(
    channel, ops, served, stub_class, method, request_, credentials
):
    before = service_list(ops, served)
    rpc_error(
        grpc.StatusCode.UNAUTHENTICATED,
        getattr(stub_class(channel), method),
        request_,
        metadata=BAD_CREDENTIALS[credentials],
    )
    assert service_list(ops, served) == before


def test_permission_denied(channel, ops, progress_stub, lro_stub, served, make_operation):
    adas = make_operation(ADA)
    bobs = make_operation(BOB)
    name = adas.name
    denied = [
        # A user reads only what it created.
        (BOB, ops.GetOperation, pb.GetOperationRequest(name=name)),
        (BOB, ops.BatchGetOperations, pb.BatchGetOperationsRequest(names=[bobs.name, name])),
        (BOB, progress_stub.GetOperationProgressByParent,
         pb.GetOperationProgressByParentRequest(parent=name)),
        (BOB, lro_stub.GetOperation, lro.GetOperationRequest(name=name)),
        (BOB, lro_stub.WaitOperation, lro.WaitOperationRequest(name=name)),
        # Only the creator aborts, marks seen, deletes; a service is no creator of a user's.
        (BOB, ops.AbortOperation, pb.AbortOperationRequest(name=name)),
        (EVAL, ops.AbortOperation, pb.AbortOperationRequest(name=name)),
        (BOB, lro_stub.CancelOperation, lro.CancelOperationRequest(name=name)),
        (BOB, ops.MarkOperationSeenByCreator, pb.MarkOperationSeenByCreatorRequest(name=name)),
        (EVAL, ops.MarkOperationSeenByCreator, pb.MarkOperationSeenByCreatorRequest(name=name)),
        (BOB, ops.BatchMarkOperationSeenByCreator,
         pb.BatchMarkOperationSeenByCreatorRequest(names=[bobs.name, name])),
        (BOB, lro_stub.DeleteOperation, lro.DeleteOperationRequest(name=name)),
        # Only services create, update and finalize.
        (ADA, ops.UpdateOperation, make_update(name, make_progress(0.9))),
        (ADA, ops.FinalizeOperation, make_finalize(name)),
        (ADA, ops.CreateOperation, pb.CreateOperationRequest(operation=Operation())),
    ]  # fmt: skip
    before = service_list(ops, served)
    for who, method, request in denied:
        rpc_error(grpc.StatusCode.PERMISSION_DENIED, method, request, metadata=served.auth(who))
    assert service_list(ops, served) == before
    # Nothing partial either: the batch that failed on ada's did not mark bob's.
    assert not ops.GetOperation(
        pb.GetOperationRequest(name=bobs.name), metadata=served.auth(BOB)
    ).operation.HasField("seen_by_creator_time")


def test_another_service_may_finish_what_one_started(ops, served, make_operation):
    # Services are trusted producers: the rules do not tie a running operation to one.
    created = make_operation()
    finished = ops.FinalizeOperation(make_finalize(created.name), metadata=served.auth(OTHER))
    assert finished.operation.updater == OTHER


# --- rich errors -------------------------------------------------------------------------------


def test_bad_request_detail_names_the_field(ops, served):
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        ops.GetOperation,
        pb.GetOperationRequest(name="jobs/1"),
        metadata=served.auth(EVAL),
        match=re.escape("'jobs/1' is not an operation name"),
    )
    violations = detail(error, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("name", "must match operations/[^/]+")
    ]


def test_resource_info_detail_names_the_missing_operation(ops, served):
    error = rpc_error(
        grpc.StatusCode.NOT_FOUND,
        ops.GetOperation,
        pb.GetOperationRequest(name=UNKNOWN_NAME),
        metadata=served.auth(EVAL),
        match=re.escape(f"operation {UNKNOWN_NAME!r} not found"),
    )
    info = detail(error, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("v1op.v1.Operation", UNKNOWN_NAME)


def test_precondition_failure_detail_when_finishing_twice(ops, served, make_operation):
    created = make_operation()
    ops.FinalizeOperation(make_finalize(created.name), metadata=served.auth(EVAL))
    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        ops.FinalizeOperation,
        make_finalize(created.name, response=make_result("evaluations/second")),
        metadata=served.auth(EVAL),
        match=re.escape("is already finished"),
    )
    violation = detail(error, error_details_pb2.PreconditionFailure).violations[0]
    assert (violation.type, violation.subject, violation.description) == (
        "STATE",
        created.name,
        "done",
    )
    # The first outcome stands.
    got = ops.GetOperation(pb.GetOperationRequest(name=created.name), metadata=served.auth(EVAL))
    assert got.operation.response == pack(make_result())


def test_update_and_abort_of_a_finished_operation_fail_the_precondition(
    ops, served, make_operation
):
    created = make_operation(response=make_result())
    for who, method, request in [
        (EVAL, ops.UpdateOperation, make_update(created.name, make_progress(0.9))),
        (ADA, ops.AbortOperation, pb.AbortOperationRequest(name=created.name)),
    ]:
        error = rpc_error(
            grpc.StatusCode.FAILED_PRECONDITION, method, request, metadata=served.auth(who)
        )
        assert (
            detail(error, error_details_pb2.PreconditionFailure).violations[0].subject
            == created.name
        )


# --- bad input ---------------------------------------------------------------------------------

MALFORMED_NAMES = [
    "",
    "operations/",
    "operations/a/b",
    "jobs/1",
    "operations%2Fabc",
    "/operations/x",
]


@pytest.mark.parametrize("bad", MALFORMED_NAMES)
def test_malformed_names_are_invalid_arguments(
    ops, progress_stub, lro_stub, served, make_operation, bad
):
    good = make_operation()
    before = service_list(ops, served)
    calls = [
        (ops.GetOperation, pb.GetOperationRequest(name=bad)),
        (ops.BatchGetOperations, pb.BatchGetOperationsRequest(names=[good.name, bad])),
        (ops.UpdateOperation, make_update(bad, make_progress())),
        (ops.FinalizeOperation, make_finalize(bad)),
        (ops.AbortOperation, pb.AbortOperationRequest(name=bad)),
        (ops.MarkOperationSeenByCreator, pb.MarkOperationSeenByCreatorRequest(name=bad)),
        (ops.BatchMarkOperationSeenByCreator,
         pb.BatchMarkOperationSeenByCreatorRequest(names=[good.name, bad])),
        (progress_stub.GetOperationProgressByParent,
         pb.GetOperationProgressByParentRequest(parent=bad)),
        (lro_stub.GetOperation, lro.GetOperationRequest(name=bad)),
        (lro_stub.CancelOperation, lro.CancelOperationRequest(name=bad)),
        (lro_stub.DeleteOperation, lro.DeleteOperationRequest(name=bad)),
        (lro_stub.WaitOperation, lro.WaitOperationRequest(name=bad)),
    ]  # fmt: skip
    for method, request in calls:
        # The name is refused before anyone's rights to it are weighed.
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT, method, request, metadata=served.auth(EVAL)
        )
        assert detail(error, error_details_pb2.BadRequest).field_violations
    assert service_list(ops, served) == before
    assert_still_serving(ops, served, good.name)


def test_unknown_operations_are_not_found(ops, progress_stub, lro_stub, served, make_operation):
    good = make_operation(response=make_result())
    before = service_list(ops, served)
    calls = [
        (EVAL, ops.GetOperation, pb.GetOperationRequest(name=UNKNOWN_NAME)),
        (EVAL, ops.BatchGetOperations,
         pb.BatchGetOperationsRequest(names=[good.name, UNKNOWN_NAME])),
        (EVAL, ops.UpdateOperation, make_update(UNKNOWN_NAME, make_progress())),
        (EVAL, ops.FinalizeOperation, make_finalize(UNKNOWN_NAME)),
        (ADA, ops.AbortOperation, pb.AbortOperationRequest(name=UNKNOWN_NAME)),
        (ADA, ops.MarkOperationSeenByCreator,
         pb.MarkOperationSeenByCreatorRequest(name=UNKNOWN_NAME)),
        (ADA, ops.BatchMarkOperationSeenByCreator,
         pb.BatchMarkOperationSeenByCreatorRequest(names=[good.name, UNKNOWN_NAME])),
        (EVAL, progress_stub.GetOperationProgressByParent,
         pb.GetOperationProgressByParentRequest(parent=UNKNOWN_NAME)),
        (EVAL, lro_stub.GetOperation, lro.GetOperationRequest(name=UNKNOWN_NAME)),
        (ADA, lro_stub.CancelOperation, lro.CancelOperationRequest(name=UNKNOWN_NAME)),
        (EVAL, lro_stub.DeleteOperation, lro.DeleteOperationRequest(name=UNKNOWN_NAME)),
        (EVAL, lro_stub.WaitOperation, lro.WaitOperationRequest(name=UNKNOWN_NAME)),
    ]  # fmt: skip
    for who, method, request in calls:
        error = rpc_error(grpc.StatusCode.NOT_FOUND, method, request, metadata=served.auth(who))
        assert detail(error, error_details_pb2.ResourceInfo).resource_name == UNKNOWN_NAME
    # All or none: the batch that failed on the unknown name did not mark the known one.
    assert service_list(ops, served) == before
    assert_still_serving(ops, served, good.name)


def test_bad_request_names_the_request_field_that_is_malformed(ops, progress_stub, served):
    # BadRequest.field_violations[].field is a path into the request (AIP-193): a client
    # (or a gateway mapping it back to a query parameter) must find the field by it.
    calls = [
        ("parent", progress_stub.GetOperationProgressByParent,
         pb.GetOperationProgressByParentRequest(parent="jobs/1")),
        ("operation.name", ops.UpdateOperation, make_update("jobs/1", make_progress())),
        ("operation.name", ops.FinalizeOperation, make_finalize("jobs/1")),
        ("names[1]", ops.BatchGetOperations,
         pb.BatchGetOperationsRequest(names=[UNKNOWN_NAME, "jobs/1"])),
    ]  # fmt: skip
    fields = []
    for _, method, request in calls:
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT, method, request, metadata=served.auth(EVAL)
        )
        fields.append(detail(error, error_details_pb2.BadRequest).field_violations[0].field)
    assert fields == [field for field, _, _ in calls]


def test_batches_of_more_than_1000_names_are_refused(ops, served, make_operation):
    good = make_operation()
    names_1001 = [good.name] * 1001
    for method, request in [
        (ops.BatchGetOperations, pb.BatchGetOperationsRequest(names=names_1001)),
        (ops.BatchMarkOperationSeenByCreator,
         pb.BatchMarkOperationSeenByCreatorRequest(names=names_1001)),
    ]:  # fmt: skip
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            method,
            request,
            metadata=served.auth(ADA),
            match=re.escape("1001 names given; at most 1000 per call"),
        )
        assert detail(error, error_details_pb2.BadRequest).field_violations[0].field == "names"
    assert not ops.GetOperation(
        pb.GetOperationRequest(name=good.name), metadata=served.auth(ADA)
    ).operation.HasField("seen_by_creator_time")
    # 1000 is still allowed.
    got = ops.BatchGetOperations(
        pb.BatchGetOperationsRequest(names=[good.name] * 1000), metadata=served.auth(ADA)
    )
    assert len(got.operations) == 1000


def test_negative_page_sizes_are_invalid(ops, lro_stub, served):
    for method, request in [
        (ops.ListOperations, pb.ListOperationsRequest(page_size=-1)),
        (ops.ListUnseenOperations, pb.ListUnseenOperationsRequest(page_size=-1)),
        (lro_stub.ListOperations, lro.ListOperationsRequest(name="operations", page_size=-1)),
    ]:
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            method,
            request,
            metadata=served.auth(ADA),
            match=re.escape("page_size -1 is negative"),
        )
        assert detail(error, error_details_pb2.BadRequest).field_violations[0].field == "page_size"


def test_any_of_an_unknown_type_is_refused_and_nothing_is_written(ops, served, make_operation):
    running = make_operation()
    unknown_detail = make_status(code_pb2.INTERNAL, "boom", [UNKNOWN_ANY])
    before = service_list(ops, served)
    calls = [
        (ops.CreateOperation, pb.CreateOperationRequest(operation=Operation(metadata=UNKNOWN_ANY))),
        (ops.CreateOperation,
         pb.CreateOperationRequest(operation=Operation(done=True, response=UNKNOWN_ANY))),
        (ops.UpdateOperation, make_update(running.name, UNKNOWN_ANY)),
        (ops.FinalizeOperation, pb.FinalizeOperationRequest(
            operation=Operation(name=running.name, done=True, response=UNKNOWN_ANY))),
        (ops.FinalizeOperation, make_finalize(running.name, error=unknown_detail)),
    ]  # fmt: skip
    for method, request in calls:
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            method,
            request,
            metadata=served.auth(EVAL),
            match=re.escape("no message type 'nowhere.v1.Mystery' is known"),
        )
        assert (
            detail(error, error_details_pb2.BadRequest)
            .field_violations[0]
            .field.startswith("operation.")
        )
    assert service_list(ops, served) == before


def test_malformed_producer_requests_are_invalid(ops, served, make_operation):
    running = make_operation()
    before = service_list(ops, served)
    update_done = make_update(running.name, make_progress())
    update_done.operation.done = True
    calls = [
        (ops.UpdateOperation, update_done, "UpdateOperation changes only metadata"),
        (ops.FinalizeOperation,
         pb.FinalizeOperationRequest(operation=Operation(name=running.name, done=True)),
         "exactly one of error or response"),
        (ops.CreateOperation, pb.CreateOperationRequest(operation=Operation(done=True)),
         "exactly one of error or response"),
        (ops.CreateOperation,
         pb.CreateOperationRequest(operation=Operation(), on_behalf_of="services/other"),
         "on_behalf_of names a user"),
        (ops.CreateOperation, pb.CreateOperationRequest(operation=Operation(), on_behalf_of="ada"),
         "is not users/<id> or services/<id>"),
    ]  # fmt: skip
    for method, request, message in calls:
        error = rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            method,
            request,
            metadata=served.auth(EVAL),
            match=re.escape(message),
        )
        assert detail(error, error_details_pb2.BadRequest).field_violations
    assert service_list(ops, served) == before


@pytest.fixture(scope="module")
def small_server(served):
    """A second server on the same store whose messages may be at most 64 KiB."""
    with running(extra_server(served, max_message_bytes=EXTRA_MAX_MESSAGE)) as thread:
        yield thread


def test_an_oversized_message_is_resource_exhausted(ops, served, small_server, make_operation):
    good = make_operation()
    before = service_list(ops, served)
    huge = make_progress(0.1, "x" * (EXTRA_MAX_MESSAGE + 1))
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as small:
        stub = pb_grpc.OperationServiceStub(small)
        for method, request in [
            (stub.CreateOperation,
             pb.CreateOperationRequest(operation=Operation(metadata=pack(huge)), on_behalf_of=ADA)),
            (stub.UpdateOperation, make_update(good.name, huge)),
        ]:  # fmt: skip
            rpc_error(
                grpc.StatusCode.RESOURCE_EXHAUSTED, method, request, metadata=served.auth(EVAL)
            )
            # The same connection keeps serving.
            got = stub.GetOperation(
                pb.GetOperationRequest(name=good.name), metadata=served.auth(EVAL)
            )
            assert got.operation == good
    assert service_list(ops, served) == before


# --- concurrency -------------------------------------------------------------------------------

FINISHERS = ("finalize-response", "finalize-error", "abort")
RACERS = (*FINISHERS, "update-1", "update-2")


def test_racing_finishers_exactly_one_wins(ops, served, make_operation):
    """16 clients race two finalizes, an abort and two updates on each of 20 operations."""
    created = [make_operation() for _ in range(20)]
    channels = [grpc.insecure_channel(served.target) for _ in range(16)]
    local = threading.local()
    slot = iter(range(16))
    slot_lock = threading.Lock()
    barriers = {op.name: threading.Barrier(len(RACERS), timeout=10) for op in created}

    def stub() -> pb_grpc.OperationServiceStub:
        if not hasattr(local, "stub"):
            with slot_lock:
                local.stub = pb_grpc.OperationServiceStub(channels[next(slot)])
        return local.stub

    def race(task: tuple[str, str]) -> tuple[str, str, grpc.StatusCode, Operation | None]:
        name, action = task
        calls = {
            "finalize-response": (EVAL, stub().FinalizeOperation,
                                  make_finalize(name, response=make_result(f"by {name}"))),
            "finalize-error": (OTHER, stub().FinalizeOperation,
                               make_finalize(name, error=make_status(code_pb2.INTERNAL, name))),
            "abort": (ADA, stub().AbortOperation, pb.AbortOperationRequest(name=name)),
            "update-1": (EVAL, stub().UpdateOperation,
                         make_update(name, make_progress(0.1, "u1"))),
            "update-2": (OTHER, stub().UpdateOperation,
                         make_update(name, make_progress(0.2, "u2"))),
        }  # fmt: skip
        who, method, request = calls[action]
        barriers[name].wait()  # all five calls on one operation leave together
        try:
            response = method(request, metadata=served.auth(who), timeout=RPC_TIMEOUT)
        except grpc.RpcError as e:
            return name, action, e.code(), None
        return name, action, grpc.StatusCode.OK, response.operation

    tasks = []
    for op in created:
        racers = list(RACERS)
        random.shuffle(racers)
        tasks += [(op.name, action) for action in racers]
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(race, tasks))
    finally:
        for ch in channels:
            ch.close()

    by_name = collections.defaultdict(dict)
    for name, action, code, operation in outcomes:
        by_name[name][action] = (code, operation)
    for op in created:
        results = by_name[op.name]
        winners = [a for a in FINISHERS if results[a][0] == grpc.StatusCode.OK]
        assert len(winners) == 1, results
        losers = [results[a][0] for a in FINISHERS if a not in winners]
        assert losers == [grpc.StatusCode.FAILED_PRECONDITION] * 2
        for update in ("update-1", "update-2"):
            assert results[update][0] in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION)
        final = ops.GetOperation(pb.GetOperationRequest(name=op.name), metadata=served.auth(EVAL))
        final = final.operation
        assert final == results[winners[0]][1]  # the winner's answer is what is stored
        assert final.done
        winner = winners[0]
        if winner == "finalize-response":
            assert final.response == pack(make_result(f"by {op.name}")) and final.updater == EVAL
        elif winner == "finalize-error":
            assert (final.error.code, final.error.message) == (code_pb2.INTERNAL, op.name)
            assert final.updater == OTHER
        else:
            assert final.error.code == code_pb2.CANCELLED and final.updater == ADA
        # The metadata is the creation's or that of an update that got in before the finish.
        landed = [results[u][1].metadata for u in ("update-1", "update-2") if results[u][1]]
        assert final.metadata in [op.metadata, *landed]


# --- google.longrunning through google-api-core ---------------------------------------------------

_Details = collections.namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


class BearerInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds the bearer token to every call. OperationsClient.list_operations takes no page
    size, so the interceptor may also set one, to make the listing span several pages."""

    def __init__(self, token: str, page_size: int = 0) -> None:
        self._token = token
        self._page_size = page_size
        self.list_requests: list[lro.ListOperationsRequest] = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = [
            *(client_call_details.metadata or ()),
            ("authorization", f"Bearer {self._token}"),
        ]
        details = _CallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
            client_call_details.compression,
        )
        if isinstance(request, lro.ListOperationsRequest) and self._page_size:
            request = lro.ListOperationsRequest(
                name=request.name,
                filter=request.filter,
                page_token=request.page_token,
                page_size=self._page_size,
            )
            self.list_requests.append(request)
        return continuation(details, request)


@pytest.fixture
def api_core_client(served):
    """OperationsClient factory: google-api-core's client over an intercepted channel."""
    opened = []

    def make(principal: str = ADA, page_size: int = 0):
        interceptor = BearerInterceptor(served.tokens[principal], page_size)
        raw = grpc.insecure_channel(served.target)
        opened.append(raw)
        return operations_v1.OperationsClient(grpc.intercept_channel(raw, interceptor)), interceptor

    yield make
    for ch in opened:
        ch.close()


FAST_POLLING = polling.DEFAULT_POLLING.with_delay(initial=0.02, maximum=0.2, multiplier=1.5)


def test_api_core_get_operation(api_core_client, make_operation):
    client, _ = api_core_client()
    created = make_operation(metadata=make_progress(0.4, "forty"))
    got = client.get_operation(created.name)
    assert isinstance(got, lro.Operation)
    assert (got.name, got.done) == (created.name, False)
    assert got.metadata == pack(make_progress(0.4, "forty"))


def test_api_core_list_operations_pages_through_everything(api_core_client, served, make_operation):
    user = served.fresh_user()
    created = [
        make_operation(user, response=make_result(f"e{i}") if i % 2 else None) for i in range(7)
    ]
    client, interceptor = api_core_client(user, page_size=3)

    every = client.list_operations("operations", "")
    pages = [[op.name for op in page] for page in every.pages]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for page in pages for n in page] == [op.name for op in created]
    assert {r.page_size for r in interceptor.list_requests} == {3}

    done = [op.name for op in client.list_operations("operations", "done=true")]
    assert done == [op.name for op in created if op.done]
    running_ = [op.name for op in client.list_operations("operations", " done = false ")]
    assert running_ == [op.name for op in created if not op.done]
    # The page tokens were not all empty: three pages took two tokens.
    assert sum(bool(r.page_token) for r in interceptor.list_requests) >= 2


def test_longrunning_list_refuses_bad_filters_names_and_tokens(lro_stub, served):
    def bad(request: lro.ListOperationsRequest, message: str) -> None:
        rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            lro_stub.ListOperations,
            request,
            metadata=served.auth(ADA),
            match=re.escape(message),
        )

    bad(lro.ListOperationsRequest(name="operations", filter="state=DONE"), "unsupported filter")
    bad(lro.ListOperationsRequest(name="projects/p"), "list the collection 'operations'")
    bad(lro.ListOperationsRequest(name="operations", page_token="%%%"), "not one this server")
    first = lro_stub.ListOperations(
        lro.ListOperationsRequest(name="operations", filter="done=true", page_size=1),
        metadata=served.auth(ADA),
    )
    assert first.next_page_token
    # A token given out for one filter does not page through another.
    bad(
        lro.ListOperationsRequest(
            name="operations", filter="done=false", page_token=first.next_page_token
        ),
        "page_token was given out for another filter",
    )


def test_api_core_cancel_and_delete(api_core_client, ops, served, make_operation):
    client, _ = api_core_client(ADA)
    created = make_operation()
    client.cancel_operation(created.name)
    cancelled = client.get_operation(created.name)
    assert cancelled.done and cancelled.error.code == code_pb2.CANCELLED

    client.delete_operation(created.name)
    with pytest.raises(api_exceptions.NotFound, match=re.escape(created.name)):
        client.get_operation(created.name)
    with pytest.raises(api_exceptions.NotFound):
        client.delete_operation(created.name)
    assert created.name not in {op.name for op in service_list(ops, served)}
    rpc_error(
        grpc.StatusCode.NOT_FOUND,
        ops.GetOperation,
        pb.GetOperationRequest(name=created.name),
        metadata=served.auth(EVAL),
    )


def test_api_core_operation_future_returns_the_typed_result(
    api_core_client, ops, served, make_operation
):
    client, _ = api_core_client(ADA)
    created = make_operation(metadata=make_progress(0.3, "thirty"))
    future = api_operation.from_gapic(
        client.get_operation(created.name),
        client,
        evaluation_pb2.EvaluationResult,
        metadata_type=evaluation_pb2.EvaluationProgress,
        polling=FAST_POLLING,
    )
    assert not future.done()
    assert future.metadata == make_progress(0.3, "thirty")

    finisher = threading.Thread(
        target=ops.FinalizeOperation,
        args=(make_finalize(created.name, response=make_result("evaluations/future")),),
        kwargs={"metadata": served.auth(EVAL), "timeout": RPC_TIMEOUT},
    )
    finisher.start()
    result = future.result(timeout=10)
    finisher.join(10)
    assert isinstance(result, evaluation_pb2.EvaluationResult)
    assert result == make_result("evaluations/future")


def test_api_core_operation_future_of_a_failed_operation(
    api_core_client, ops, served, make_operation
):
    client, _ = api_core_client(ADA)
    created = make_operation()
    ops.FinalizeOperation(
        make_finalize(created.name, error=make_failed().error), metadata=served.auth(EVAL)
    )
    future = api_operation.from_gapic(
        client.get_operation(created.name),
        client,
        evaluation_pb2.EvaluationResult,
        polling=FAST_POLLING,
    )
    error = future.exception(timeout=10)
    assert isinstance(error, api_exceptions.GoogleAPICallError)
    assert error.grpc_status_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.message == "token quota exhausted"
    with pytest.raises(api_exceptions.ResourceExhausted, match=re.escape("token quota exhausted")):
        future.result(timeout=10)


def test_api_core_operation_future_cancel(api_core_client, make_operation):
    client, _ = api_core_client(ADA)
    created = make_operation()
    future = api_operation.from_gapic(
        client.get_operation(created.name),
        client,
        evaluation_pb2.EvaluationResult,
        polling=FAST_POLLING,
    )
    assert future.cancel()
    assert future.cancelled()
    assert isinstance(future.exception(timeout=10), api_exceptions.Cancelled)


# --- WaitOperation -----------------------------------------------------------------------------


def make_wait(name: str, seconds: float | None) -> lro.WaitOperationRequest:
    request = lro.WaitOperationRequest(name=name)
    if seconds is not None:
        request.timeout.FromNanoseconds(int(seconds * 1e9))
    return request


def test_wait_returns_as_soon_as_another_client_finalizes(lro_stub, served, make_operation):
    created = make_operation()
    read = served.store.watch_reads(created.name)
    start = time.monotonic()
    call = lro_stub.WaitOperation.future(
        make_wait(created.name, 20), metadata=served.auth(ADA), timeout=30
    )
    # The server has registered the waiter once it reads the operation.
    assert read.wait(10), "WaitOperation never read the operation"
    with grpc.insecure_channel(served.target) as other:
        pb_grpc.OperationServiceStub(other).FinalizeOperation(
            make_finalize(created.name, response=make_result("evaluations/waited")),
            metadata=served.auth(EVAL),
        )
    waited = call.result(timeout=10)
    elapsed = time.monotonic() - start
    assert waited.done
    assert waited.response == pack(make_result("evaluations/waited"))
    assert elapsed < 5, f"WaitOperation took {elapsed:.1f}s of its 20s"


def test_wait_returns_the_running_operation_at_its_timeout(lro_stub, served, make_operation):
    created = make_operation()
    start = time.monotonic()
    waited = lro_stub.WaitOperation(
        make_wait(created.name, 0.3), metadata=served.auth(ADA), timeout=10
    )
    elapsed = time.monotonic() - start
    assert (waited.name, waited.done) == (created.name, False)
    assert 0.25 <= elapsed < 5


def test_wait_answers_before_the_callers_deadline(lro_stub, served, make_operation):
    # No timeout in the request: the server answers within the gRPC deadline instead of
    # letting the call fail with DEADLINE_EXCEEDED.
    created = make_operation()
    waited = lro_stub.WaitOperation(
        make_wait(created.name, None), metadata=served.auth(ADA), timeout=2
    )
    assert (waited.name, waited.done) == (created.name, False)


def test_wait_of_a_finished_operation_returns_at_once(lro_stub, served, make_operation):
    created = make_operation(response=make_result())
    start = time.monotonic()
    waited = lro_stub.WaitOperation(
        make_wait(created.name, 20), metadata=served.auth(ADA), timeout=30
    )
    assert waited.done and time.monotonic() - start < 5


def test_wait_ends_not_found_when_the_operation_is_deleted(lro_stub, served, make_operation):
    created = make_operation()
    read = served.store.watch_reads(created.name)
    call = lro_stub.WaitOperation.future(
        make_wait(created.name, 20), metadata=served.auth(ADA), timeout=30
    )
    assert read.wait(10), "WaitOperation never read the operation"
    lro_stub.DeleteOperation(
        lro.DeleteOperationRequest(name=created.name), metadata=served.auth(ADA)
    )
    with pytest.raises(grpc.RpcError) as info:
        call.result(timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


# --- health checking and reflection --------------------------------------------------------------


@pytest.mark.parametrize(
    "service",
    [
        "",
        "v1op.v1.OperationService",
        "v1op.v1.OperationProgressService",
        "google.longrunning.Operations",
    ],
)
def test_health_check_serving(channel, service):
    # Health checks need no token: load balancers probe without one.
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services_and_serves_their_files(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="v1op.v1.OperationService"),
    ]
    listed, files = list(stub.ServerReflectionInfo(iter(requests), timeout=RPC_TIMEOUT))
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "v1op.v1.OperationService",
        "v1op.v1.OperationProgressService",
        "google.longrunning.Operations",
        "grpc.health.v1.Health",
    } <= names
    assert files.file_descriptor_response.file_descriptor_proto


def test_names_are_unique_uuids(make_operation):
    names = {make_operation().name for _ in range(5)}
    assert len(names) == 5
    assert all(uuid.UUID(name.removeprefix("operations/")) for name in names)
