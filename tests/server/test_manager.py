"""OperationManager: every rule of the reference server, over SQLiteStore with a fixed clock."""

from __future__ import annotations

import asyncio
import functools
import random
import re
import threading
import time
import uuid

import pytest
from factories import make_succeeded
from google.api_core.exceptions import (
    FailedPrecondition,
    GoogleAPICallError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from google.protobuf import any_pb2, duration_pb2, struct_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Operation, TypeRegistry, make_status, pack
from v1op_pb.server.auth import Principal
from v1op_pb.server.manager import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH,
    MAX_PAGE_SIZE,
    OperationManager,
)
from v1op_pb.server.store import Query, SQLiteStore, open_store

ADA = Principal("users/ada")
BOB = Principal("users/bob")
EVALUATOR = Principal("services/evaluator")
INDEXER = Principal("services/indexer")

START_NS = 1_795_000_000_123_456_789
UNKNOWN_ANY = any_pb2.Any(type_url="type.googleapis.com/acme.v9.Secret", value=b"\x08\x01")
# Far longer than any test takes, so a wait that ends was woken, not timed out.
LONG = 60.0


class Clock:
    """A clock that stands still unless a test moves it."""

    def __init__(self, ns: int = START_NS) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: int) -> None:
        self.ns += seconds * 1_000_000_000


class ObservedStore(SQLiteStore):
    """A store that counts reads and records each write, in commit order.

    ``hold``, when set, keeps the next read from returning until the event is set, so a
    test can write between a read and what the caller does with it.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.gets = 0
        self.read = threading.Event()
        self.hold: asyncio.Event | None = None
        self.writes: list[Operation] = []

    async def get(self, name: str) -> Operation | None:
        operation = await super().get(name)
        self.gets += 1
        self.read.set()
        hold, self.hold = self.hold, None
        if hold is not None:
            await asyncio.wait_for(hold.wait(), 10)
        return operation

    def modify(self, names, change, **options):
        def recorded(operation: Operation, now: int) -> Operation:
            new = change(operation, now)
            # change runs under the store's write lock, in the order writes commit (the
            # tests that read this make no write that the database refuses).
            self.writes.append(Operation.FromString(new.SerializeToString()))
            return new

        return super().modify(names, recorded, **options)


def async_test(fn):
    """Run an async test function to completion (there is no pytest-asyncio here)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store():
    store = ObservedStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def manager(store, clock) -> OperationManager:
    return OperationManager(store, clock=clock)


def timestamp_of(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def make_progress(progress: float = 0.25, message: str = "scoring 30 of 120") -> any_pb2.Any:
    return pack(
        evaluation_pb2.EvaluationProgress(
            progress=progress, message=message, items_done=30, items_total=120
        )
    )


def make_struct(**fields) -> any_pb2.Any:
    struct = struct_pb2.Struct()
    struct.update(fields)
    return pack(struct)


def make_result(evaluation: str = "evaluations/e1") -> any_pb2.Any:
    return pack(
        evaluation_pb2.EvaluationResult(
            evaluation=evaluation, verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED
        )
    )


def make_update(name: str, metadata: any_pb2.Any | None = None) -> Operation:
    return Operation(name=name, metadata=metadata or make_progress(0.5, "halfway"))


def make_finish(name: str, *, error: bool = False) -> Operation:
    if error:
        return Operation(
            name=name,
            done=True,
            error=make_status(
                code_pb2.RESOURCE_EXHAUSTED,
                "quota",
                [error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com")],
            ),
        )
    return Operation(name=name, done=True, response=make_result())


async def create_running(
    manager: OperationManager, for_user: Principal | None = ADA, metadata=None
) -> Operation:
    request = Operation(metadata=metadata or make_progress())
    on_behalf_of = for_user.name if for_user is not None else ""
    return await manager.create(EVALUATOR, request, on_behalf_of)


async def create_finished(manager: OperationManager, for_user: Principal = ADA) -> Operation:
    operation = await create_running(manager, for_user)
    return await manager.finalize(EVALUATOR, make_finish(operation.name))


async def stored(store: SQLiteStore) -> list[Operation]:
    return (await store.list(Query(deleted=None))).operations


def violation_fields(error: GoogleAPICallError) -> list[str]:
    return [
        violation.field
        for detail in error.details
        if isinstance(detail, error_details_pb2.BadRequest)
        for violation in detail.field_violations
    ]


# --- create ----------------------------------------------------------------------------------


@async_test
async def test_create_sets_the_server_fields(manager, store):
    created = await manager.create(EVALUATOR, Operation(metadata=make_progress()), ADA.name)
    prefix, _, identifier = created.name.partition("/")
    assert prefix == "operations"
    assert uuid.UUID(identifier).version == 4
    assert created.create_time == timestamp_of(START_NS)
    assert created.creator == "users/ada"
    assert created.metadata == make_progress()
    assert not created.done
    assert created.WhichOneof("result") is None
    assert await store.get(created.name) == created


@async_test
async def test_create_without_on_behalf_of_makes_the_service_the_creator(manager):
    created = await manager.create(EVALUATOR, Operation(metadata=make_progress()))
    assert created.creator == "services/evaluator"


@async_test
async def test_create_gives_each_operation_its_own_name(manager, store):
    names = {(await create_running(manager)).name for _ in range(20)}
    assert len(names) == 20
    assert (await store.list(Query())).total_size == 20


@async_test
async def test_create_ignores_output_only_fields(manager):
    # A client cannot choose the name, the creator, times, or mark its work deleted or seen.
    request = make_succeeded()
    request.creator = "users/mallory"
    request.updater = "services/mallory"
    request.delete_time.CopyFrom(timestamp_of(1))
    request.deleter = "services/mallory"
    created = await manager.create(EVALUATOR, request, ADA.name)
    assert created.name != request.name
    assert created.creator == "users/ada"
    assert created.create_time == timestamp_of(START_NS)
    assert created.update_time != request.update_time
    assert created.updater != "services/mallory"
    assert not created.HasField("delete_time")
    assert not created.deleter
    assert not created.HasField("seen_by_creator_time")
    # What a creating service may set is kept: metadata, and the outcome of finished work.
    assert created.metadata == request.metadata
    assert created.done
    assert created.response == request.response


@async_test
async def test_create_of_finished_work_with_an_error(manager):
    request = make_finish("", error=True)
    created = await manager.create(EVALUATOR, request, ADA.name)
    assert created.done
    assert created.error == request.error


@async_test
async def test_create_by_a_user_is_denied(manager, store):
    with pytest.raises(PermissionDenied, match=re.escape("only services create operations")):
        await manager.create(ADA, Operation(metadata=make_progress()))
    assert await stored(store) == []


@pytest.mark.parametrize(
    ("on_behalf_of", "message"),
    [
        ("services/indexer", "on_behalf_of names a user, users/<id>"),
        ("ada", "principal 'ada' is not users/<id> or services/<id>"),
        ("users/", "principal 'users/' is not users/<id> or services/<id>"),
        ("users/ada/x", "principal 'users/ada/x' is not users/<id> or services/<id>"),
    ],
)
@async_test
async def test_create_on_behalf_of_a_non_user_is_invalid(manager, store, on_behalf_of, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)) as caught:
        await manager.create(EVALUATOR, Operation(metadata=make_progress()), on_behalf_of)
    assert violation_fields(caught.value) == ["on_behalf_of"]
    assert await stored(store) == []


@async_test
async def test_create_done_without_a_result_is_invalid(manager, store):
    with pytest.raises(
        InvalidArgument,
        match=re.escape("a finished operation carries exactly one of error or response"),
    ):
        await manager.create(EVALUATOR, Operation(done=True), ADA.name)
    assert await stored(store) == []


@pytest.mark.parametrize("error", [False, True], ids=["response", "error"])
@async_test
async def test_create_with_a_result_but_not_done_is_invalid(manager, store, error):
    # done=false says "still running", a result says "finished": the request contradicts
    # itself, and the server must not pick one reading for the caller.
    request = make_finish("", error=error)
    request.done = False
    with pytest.raises(InvalidArgument):
        await manager.create(EVALUATOR, request, ADA.name)
    assert await stored(store) == []


# --- update ----------------------------------------------------------------------------------


@async_test
async def test_update_replaces_metadata_and_stamps_the_update(manager, store, clock):
    created = await create_running(manager)
    clock.advance(5)
    updated = await manager.update(INDEXER, make_update(created.name, make_struct(step=2.0)))
    assert updated.metadata == make_struct(step=2.0)
    assert updated.update_time == timestamp_of(START_NS + 5_000_000_000)
    assert updated.updater == "services/indexer"
    assert updated.create_time == created.create_time
    assert updated.creator == created.creator
    assert not updated.done
    assert await store.get(created.name) == updated


@async_test
async def test_update_ignores_output_only_fields(manager, store):
    created = await create_running(manager)
    request = make_update(created.name)
    request.creator = "users/mallory"
    request.create_time.CopyFrom(timestamp_of(1))
    request.update_time.CopyFrom(timestamp_of(2))
    request.updater = "services/mallory"
    # A delete_time in an update request must not delete the operation.
    request.delete_time.CopyFrom(timestamp_of(3))
    request.deleter = "services/mallory"
    request.seen_by_creator_time.CopyFrom(timestamp_of(4))
    updated = await manager.update(EVALUATOR, request)
    assert updated.creator == "users/ada"
    assert updated.create_time == created.create_time
    assert updated.update_time == timestamp_of(START_NS)
    assert updated.updater == "services/evaluator"
    assert not updated.HasField("delete_time")
    assert not updated.deleter
    assert not updated.HasField("seen_by_creator_time")
    assert (await manager.get(ADA, created.name)) == updated


@pytest.mark.parametrize(
    "finish",
    [
        Operation(done=True),
        Operation(response=make_result()),
        Operation(error=make_status(code_pb2.INTERNAL, "x")),
        Operation(done=True, response=make_result()),
    ],
    ids=["done", "response", "error", "done-and-response"],
)
@async_test
async def test_update_that_would_finish_is_invalid(manager, store, finish):
    created = await create_running(manager)
    request = make_update(created.name)
    request.MergeFrom(finish)
    with pytest.raises(
        InvalidArgument, match=re.escape("UpdateOperation changes only metadata")
    ) as caught:
        await manager.update(EVALUATOR, request)
    assert violation_fields(caught.value) == ["operation.done"]
    assert await store.get(created.name) == created


@pytest.mark.parametrize("who", [ADA, BOB], ids=["creator", "other"])
@async_test
async def test_update_by_a_user_is_denied(manager, store, who):
    created = await create_running(manager)
    with pytest.raises(PermissionDenied, match=re.escape("only services update operations")):
        await manager.update(who, make_update(created.name))
    assert await store.get(created.name) == created


@async_test
async def test_update_of_a_finished_operation_fails_its_precondition(manager, store):
    finished = await create_finished(manager)
    with pytest.raises(
        FailedPrecondition, match=re.escape(f"operation {finished.name!r} is already finished")
    ) as caught:
        await manager.update(EVALUATOR, make_update(finished.name))
    (detail,) = caught.value.details
    assert isinstance(detail, error_details_pb2.PreconditionFailure)
    assert detail.violations[0].subject == finished.name
    assert caught.value.code == 400
    assert await store.get(finished.name) == finished


@async_test
async def test_update_of_an_unknown_operation_is_not_found(manager, store):
    name = f"operations/{uuid.uuid4()}"
    with pytest.raises(NotFound, match=re.escape(f"operation {name!r} not found")) as caught:
        await manager.update(EVALUATOR, make_update(name))
    assert caught.value.details == [
        error_details_pb2.ResourceInfo(resource_type="v1op.v1.Operation", resource_name=name)
    ]
    assert await stored(store) == []


# --- finalize --------------------------------------------------------------------------------


@async_test
async def test_finalize_with_a_response(manager, store, clock):
    created = await create_running(manager)
    clock.advance(60)
    finished = await manager.finalize(INDEXER, make_finish(created.name))
    assert finished.done
    assert finished.response == make_result()
    assert finished.WhichOneof("result") == "response"
    assert finished.update_time == timestamp_of(START_NS + 60_000_000_000)
    assert finished.updater == "services/indexer"
    # Metadata not given in the request stays as it was.
    assert finished.metadata == created.metadata
    assert await store.get(created.name) == finished


@async_test
async def test_finalize_with_an_error_and_new_metadata(manager):
    created = await create_running(manager)
    request = make_finish(created.name, error=True)
    request.metadata.CopyFrom(make_progress(1.0, "gave up"))
    finished = await manager.finalize(EVALUATOR, request)
    assert finished.done
    assert finished.error == request.error
    assert finished.WhichOneof("result") == "error"
    assert finished.metadata == make_progress(1.0, "gave up")


@async_test
async def test_finalize_sets_done_itself(manager):
    # FinalizeOperation's purpose is to finish: a result without done is still a finish.
    created = await create_running(manager)
    request = make_finish(created.name)
    request.done = False
    finished = await manager.finalize(EVALUATOR, request)
    assert finished.done


@async_test
async def test_finalize_ignores_output_only_fields(manager):
    created = await create_running(manager)
    request = make_finish(created.name)
    request.creator = "users/mallory"
    request.create_time.CopyFrom(timestamp_of(1))
    request.delete_time.CopyFrom(timestamp_of(3))
    request.seen_by_creator_time.CopyFrom(timestamp_of(4))
    finished = await manager.finalize(EVALUATOR, request)
    assert finished.creator == "users/ada"
    assert finished.create_time == created.create_time
    assert not finished.HasField("delete_time")
    assert not finished.HasField("seen_by_creator_time")


@pytest.mark.parametrize("done", [True, False])
@async_test
async def test_finalize_without_a_result_is_invalid(manager, store, done):
    created = await create_running(manager)
    with pytest.raises(
        InvalidArgument,
        match=re.escape("a finished operation carries exactly one of error or response"),
    ) as caught:
        await manager.finalize(EVALUATOR, Operation(name=created.name, done=done))
    assert violation_fields(caught.value) == ["operation.result"]
    assert await store.get(created.name) == created


@async_test
async def test_finalize_with_both_results_on_the_wire_keeps_only_one(manager):
    # error and response are a oneof: a request cannot carry both, even if a client puts
    # both on the wire; the last one read is the one that counts, as protobuf defines.
    created = await create_running(manager)
    wire = (
        make_finish(created.name, error=True).SerializeToString()
        + Operation(response=make_result()).SerializeToString()
    )
    request = Operation.FromString(wire)
    assert request.WhichOneof("result") == "response"
    finished = await manager.finalize(EVALUATOR, request)
    assert finished.WhichOneof("result") == "response"
    assert not finished.HasField("error")


@pytest.mark.parametrize("who", [ADA, BOB], ids=["creator", "other"])
@async_test
async def test_finalize_by_a_user_is_denied(manager, store, who):
    created = await create_running(manager)
    with pytest.raises(PermissionDenied, match=re.escape("only services finalize operations")):
        await manager.finalize(who, make_finish(created.name))
    assert await store.get(created.name) == created


@async_test
async def test_second_finalize_fails_its_precondition_and_keeps_the_first(manager, store):
    created = await create_running(manager)
    first = await manager.finalize(EVALUATOR, make_finish(created.name))
    with pytest.raises(FailedPrecondition, match=re.escape("is already finished")):
        await manager.finalize(EVALUATOR, make_finish(created.name, error=True))
    assert await store.get(created.name) == first


# --- abort -----------------------------------------------------------------------------------


@async_test
async def test_abort_by_the_creator_ends_with_cancelled(manager, store, clock):
    created = await create_running(manager)
    clock.advance(1)
    aborted = await manager.abort(ADA, created.name)
    assert aborted.done
    assert aborted.WhichOneof("result") == "error"
    assert aborted.error.code == code_pb2.CANCELLED
    assert aborted.error.message == "aborted by users/ada"
    assert aborted.updater == "users/ada"
    assert aborted.update_time == timestamp_of(START_NS + 1_000_000_000)
    assert aborted.metadata == created.metadata
    assert await store.get(created.name) == aborted


@pytest.mark.parametrize("who", [BOB, EVALUATOR], ids=["other-user", "service"])
@async_test
async def test_abort_by_anyone_but_the_creator_is_denied(manager, store, who):
    created = await create_running(manager)
    with pytest.raises(
        PermissionDenied, match=re.escape(f"only the creator of {created.name} may abort it")
    ):
        await manager.abort(who, created.name)
    assert await store.get(created.name) == created


@pytest.mark.parametrize("how", ["finalize", "abort"])
@async_test
async def test_abort_of_a_finished_operation_fails_its_precondition(manager, store, how):
    created = await create_running(manager)
    if how == "finalize":
        finished = await manager.finalize(EVALUATOR, make_finish(created.name))
    else:
        finished = await manager.abort(ADA, created.name)
    with pytest.raises(FailedPrecondition, match=re.escape("is already finished")):
        await manager.abort(ADA, created.name)
    assert await store.get(created.name) == finished


@async_test
async def test_nothing_changes_an_aborted_operation(manager, store):
    created = await create_running(manager)
    aborted = await manager.abort(ADA, created.name)
    with pytest.raises(FailedPrecondition):
        await manager.update(EVALUATOR, make_update(created.name))
    with pytest.raises(FailedPrecondition):
        await manager.finalize(EVALUATOR, make_finish(created.name))
    assert await store.get(created.name) == aborted


# --- mark seen -------------------------------------------------------------------------------


@async_test
async def test_mark_seen_sets_the_time_once(manager, store, clock):
    finished = await create_finished(manager)
    clock.advance(10)
    seen = await manager.mark_seen(ADA, finished.name)
    first_time = timestamp_of(START_NS + 10_000_000_000)
    assert seen.seen_by_creator_time == first_time
    clock.advance(10)
    # Marking again succeeds (idempotent) but the time, once set, never changes.
    again = await manager.mark_seen(ADA, finished.name)
    assert again.seen_by_creator_time == first_time
    assert (await store.get(finished.name)).seen_by_creator_time == first_time


@async_test
async def test_mark_seen_of_a_batch(manager, store):
    names = [(await create_finished(manager)).name for _ in range(3)]
    seen = await manager.batch_mark_seen(ADA, names)
    assert [op.name for op in seen] == names
    assert all([(await store.get(name)).HasField("seen_by_creator_time") for name in names])


@pytest.mark.parametrize("who", [BOB, EVALUATOR], ids=["other-user", "service"])
@async_test
async def test_mark_seen_by_anyone_but_the_creator_is_denied(manager, store, who):
    finished = await create_finished(manager)
    with pytest.raises(
        PermissionDenied, match=re.escape(f"only the creator of {finished.name} may mark seen")
    ):
        await manager.mark_seen(who, finished.name)
    assert await store.get(finished.name) == finished


@async_test
async def test_mark_seen_of_a_batch_is_all_or_none(manager, store):
    # One name the caller may not mark, or one that does not exist, leaves every other one
    # unmarked too.
    own = [(await create_finished(manager)).name for _ in range(2)]
    others = (await create_finished(manager, BOB)).name
    with pytest.raises(PermissionDenied):
        await manager.batch_mark_seen(ADA, [own[0], others, own[1]])
    unknown = f"operations/{uuid.uuid4()}"
    with pytest.raises(NotFound, match=re.escape(f"operation {unknown!r} not found")):
        await manager.batch_mark_seen(ADA, [own[0], unknown])
    assert not any(op.HasField("seen_by_creator_time") for op in await stored(store))


@async_test
async def test_mark_seen_takes_at_most_1000_names(manager, store):
    names = []
    for i in range(MAX_BATCH + 1):
        # Straight into the store: 1001 creates through the manager would only be slower.
        operation = make_succeeded()
        operation.name = f"operations/bulk-{i}"
        operation.ClearField("seen_by_creator_time")
        await store.insert(operation)
        names.append(operation.name)
    with pytest.raises(
        InvalidArgument, match=re.escape("1001 names given; at most 1000 per call")
    ) as caught:
        await manager.batch_mark_seen(ADA, names)
    assert violation_fields(caught.value) == ["names"]
    assert not any(op.HasField("seen_by_creator_time") for op in await stored(store))
    seen = await manager.batch_mark_seen(ADA, names[:MAX_BATCH])
    assert len(seen) == MAX_BATCH
    assert not (await store.get(names[-1])).HasField("seen_by_creator_time")


# --- reading ---------------------------------------------------------------------------------


@async_test
async def test_users_read_their_own_and_services_read_everything(manager):
    ours = await create_running(manager, ADA)
    services_own = await create_running(manager, None)
    assert await manager.get(ADA, ours.name) == ours
    for service in [EVALUATOR, INDEXER]:
        assert await manager.get(service, ours.name) == ours
        assert await manager.get(service, services_own.name) == services_own
    with pytest.raises(
        PermissionDenied, match=re.escape(f"users/bob may not read {ours.name}")
    ) as caught:
        await manager.get(BOB, ours.name)
    assert caught.value.code == 403
    with pytest.raises(PermissionDenied):
        await manager.get(ADA, services_own.name)


@async_test
async def test_get_of_an_unknown_operation_is_not_found(manager):
    name = f"operations/{uuid.uuid4()}"
    for who in [ADA, EVALUATOR]:
        with pytest.raises(NotFound, match=re.escape(f"operation {name!r} not found")):
            await manager.get(who, name)


@async_test
async def test_batch_get_keeps_the_order_of_the_names(manager):
    ops = [await create_running(manager) for _ in range(3)]
    names = [ops[2].name, ops[0].name, ops[2].name, ops[1].name]
    got = await manager.batch_get(ADA, names)
    assert [op.name for op in got] == names
    assert await manager.batch_get(ADA, []) == []


@async_test
async def test_batch_get_fails_whole_on_one_bad_name(manager):
    ours = await create_running(manager, ADA)
    theirs = await create_running(manager, BOB)
    with pytest.raises(PermissionDenied, match=re.escape(f"may not read {theirs.name}")):
        await manager.batch_get(ADA, [ours.name, theirs.name])
    unknown = f"operations/{uuid.uuid4()}"
    with pytest.raises(NotFound, match=re.escape(f"operation {unknown!r} not found")):
        await manager.batch_get(ADA, [ours.name, unknown])
    assert len(await manager.batch_get(EVALUATOR, [ours.name, theirs.name])) == 2


@async_test
async def test_batch_get_takes_at_most_1000_names(manager):
    ours = await create_running(manager)
    with pytest.raises(InvalidArgument, match=re.escape("1001 names given; at most 1000")):
        await manager.batch_get(ADA, [ours.name] * (MAX_BATCH + 1))
    assert len(await manager.batch_get(ADA, [ours.name] * MAX_BATCH)) == MAX_BATCH


@async_test
async def test_list_shows_users_their_own_and_services_all(manager):
    ada_ops = [await create_running(manager, ADA) for _ in range(3)]
    bob_ops = [await create_running(manager, BOB) for _ in range(2)]
    page = await manager.list(ADA, 0)
    assert page.operations == ada_ops
    assert page.total_size == 3
    page = await manager.list(BOB, 0)
    assert page.operations == bob_ops
    page = await manager.list(INDEXER, 0)
    assert [op.name for op in page.operations] == [op.name for op in ada_ops + bob_ops]
    assert page.total_size == 5
    assert (await manager.list(Principal("users/nobody"), 0)).total_size == 0


@async_test
async def test_list_pages(manager):
    ops = [await create_running(manager) for _ in range(5)]
    first = await manager.list(ADA, 2)
    assert first.operations == ops[:2]
    assert first.total_size == 5
    second = await manager.list(ADA, 2, after=first.cursor)
    assert second.operations == ops[2:4]
    third = await manager.list(ADA, 2, after=second.cursor)
    assert third.operations == ops[4:]
    assert (await manager.list(ADA, 2, after=third.cursor)).operations == []


@async_test
async def test_list_filters_on_done(manager):
    running = await create_running(manager)
    finished = await create_finished(manager)
    assert (await manager.list(ADA, 0, done=True)).operations == [finished]
    assert (await manager.list(ADA, 0, done=False)).operations == [running]


@pytest.mark.parametrize("page_size", [-1, -1000])
@async_test
async def test_negative_page_sizes_are_invalid(manager, page_size):
    await create_finished(manager)
    message = f"page_size {page_size} is negative"
    with pytest.raises(InvalidArgument, match=re.escape(message)) as caught:
        await manager.list(ADA, page_size)
    assert violation_fields(caught.value) == ["page_size"]
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        await manager.list_unseen(ADA, page_size, full=True)


async def insert_plain(store, n: int, creator: str = "users/ada") -> list[str]:
    """``n`` small running operations straight into the store (faster than create)."""
    names = []
    for i in range(n):
        operation = Operation(name=f"operations/plain-{i:05d}", creator=creator)
        await store.insert(operation)
        names.append(operation.name)
    return names


@async_test
async def test_page_sizes_have_a_default_and_a_maximum(manager, store):
    names = await insert_plain(store, MAX_PAGE_SIZE + 1)
    default = await manager.list(ADA, 0)
    assert [op.name for op in default.operations] == names[:DEFAULT_PAGE_SIZE]
    assert default.more and default.total_size == MAX_PAGE_SIZE + 1
    for asked in (MAX_PAGE_SIZE, MAX_PAGE_SIZE + 1, 2**31 - 1):
        page = await manager.list(ADA, asked)
        assert [op.name for op in page.operations] == names[:MAX_PAGE_SIZE]
        assert page.more
        rest = await manager.list(ADA, asked, after=page.cursor)
        assert [op.name for op in rest.operations] == names[MAX_PAGE_SIZE:]
        assert not rest.more


@async_test
async def test_pages_are_cut_to_fit_max_page_bytes_and_go_on_where_they_stopped(store, clock):
    manager = OperationManager(store, clock=clock, max_page_bytes=10_000)
    created = [
        await create_running(manager, metadata=make_struct(text="x" * size))
        for size in (3000, 3000, 3000, 9000, 20_000, 100, 100)
    ]
    pages, after = [], 0
    while True:
        page = await manager.list(ADA, 0, after=after)
        pages.append([op.name for op in page.operations])
        if not page.more:
            break
        after = page.cursor
    # Three of 3 KB fit 10 KB; one over the limit alone is a page of its own (it must be
    # listed), and the rest come after it.
    sizes = [len(p) for p in pages]
    assert sizes == [3, 1, 1, 2], sizes
    assert [name for p in pages for name in p] == [op.name for op in created]


@async_test
async def test_the_basic_view_fits_pages_without_the_responses(store, clock):
    manager = OperationManager(store, clock=clock, max_page_bytes=10_000)
    for _ in range(4):
        operation = await create_running(manager)
        request = make_finish(operation.name)
        request.response.CopyFrom(make_struct(text="r" * 4000))
        await manager.finalize(EVALUATOR, request)
    assert len((await manager.list_unseen(ADA, 0, full=True)).operations) == 2
    assert len((await manager.list_unseen(ADA, 0, full=False)).operations) == 4


# --- list unseen -----------------------------------------------------------------------------


@async_test
async def test_list_unseen_is_the_callers_finished_unseen_operations(manager):
    await create_running(manager, ADA)
    unseen = [await create_finished(manager, ADA) for _ in range(3)]
    await create_finished(manager, BOB)
    await manager.mark_seen(ADA, unseen[1].name)
    page = await manager.list_unseen(ADA, 0, full=True)
    assert [op.name for op in page.operations] == [unseen[0].name, unseen[2].name]
    assert page.total_size == 2
    assert all(op.response == make_result() for op in page.operations)


@async_test
async def test_list_unseen_pages_with_the_total(manager):
    for _ in range(3):
        await create_finished(manager)
    page = await manager.list_unseen(ADA, 2, full=True)
    assert len(page.operations) == 2
    assert page.total_size == 3


@async_test
async def test_list_unseen_basic_view_leaves_out_the_response(manager, store):
    succeeded = await create_finished(manager)
    failed = await create_running(manager)
    failed = await manager.finalize(EVALUATOR, make_finish(failed.name, error=True))
    page = await manager.list_unseen(ADA, 0, full=False)
    basic_succeeded, basic_failed = page.operations
    assert not basic_succeeded.HasField("response")
    assert basic_succeeded.done
    assert basic_succeeded.metadata == succeeded.metadata
    # BASIC drops only the response: the error of a failed operation stays.
    assert basic_failed == failed
    # The stored operation keeps its response.
    assert (await store.get(succeeded.name)).response == make_result()


@async_test
async def test_list_unseen_of_a_service_is_its_own(manager):
    own = await manager.finalize(EVALUATOR, make_finish((await create_running(manager, None)).name))
    await create_finished(manager, ADA)
    assert (await manager.list_unseen(EVALUATOR, 0, full=True)).operations == [own]


# --- deleted operations ----------------------------------------------------------------------


@async_test
async def test_a_deleted_operation_is_gone_for_readers(manager):
    finished = await create_finished(manager)
    kept = await create_finished(manager)
    await manager.delete(EVALUATOR, finished.name)
    for who in [ADA, EVALUATOR]:
        with pytest.raises(NotFound, match=re.escape(f"operation {finished.name!r} not found")):
            await manager.get(who, finished.name)
        with pytest.raises(NotFound):
            await manager.batch_get(who, [kept.name, finished.name])
        page = await manager.list(who, 0)
        assert [op.name for op in page.operations] == [kept.name]
        assert page.total_size == 1
    unseen = await manager.list_unseen(ADA, 0, full=True)
    assert [op.name for op in unseen.operations] == [kept.name]
    assert unseen.total_size == 1
    with pytest.raises(NotFound):
        await manager.progress(ADA, finished.name)
    with pytest.raises(NotFound):
        await manager.wait(ADA, finished.name, 0)


@async_test
async def test_a_deleted_operation_cannot_be_changed(manager, store):
    running = await create_running(manager)
    deleted = await manager.delete(EVALUATOR, running.name)
    assert deleted.HasField("delete_time")
    changes = calls_with_name(manager, running.name)
    for call_name in ["update", "finalize", "abort", "mark_seen", "delete"]:
        with pytest.raises(NotFound, match=re.escape(f"operation {running.name!r} not found")):
            await changes[call_name]()
    assert await store.get(running.name) == deleted


# --- names -----------------------------------------------------------------------------------


BAD_NAMES = ["", "operations", "operations/", "operations/a/b", "projects/p/operations/a", "a"]


def calls_with_name(manager: OperationManager, name: str) -> dict:
    """Every manager call that takes an operation name, by what it is called."""
    return {
        "get": lambda: manager.get(ADA, name),
        "batch_get": lambda: manager.batch_get(ADA, [name]),
        "update": lambda: manager.update(EVALUATOR, make_update(name)),
        "finalize": lambda: manager.finalize(EVALUATOR, make_finish(name)),
        "abort": lambda: manager.abort(ADA, name),
        "mark_seen": lambda: manager.mark_seen(ADA, name),
        "batch_mark_seen": lambda: manager.batch_mark_seen(ADA, [name]),
        "delete": lambda: manager.delete(EVALUATOR, name),
        "progress": lambda: manager.progress(ADA, name),
        "wait": lambda: manager.wait(ADA, name, LONG),
    }


# The request field that holds the name, as the BadRequest detail names it.
REQUEST_FIELD = {
    "batch_get": "names[0]",
    "batch_mark_seen": "names[0]",
    "update": "operation.name",
    "finalize": "operation.name",
    "progress": "parent",
}


@pytest.mark.parametrize("name", BAD_NAMES)
@async_test
async def test_malformed_names_are_invalid(manager, store, name):
    await create_running(manager)
    before = await stored(store)
    for call_name, call in calls_with_name(manager, name).items():
        with pytest.raises(
            InvalidArgument, match=re.escape(f"{name!r} is not an operation name")
        ) as caught:
            await call()
        assert violation_fields(caught.value) == [REQUEST_FIELD.get(call_name, "name")], call_name
    assert await stored(store) == before


@async_test
async def test_unknown_names_are_not_found(manager, store):
    await create_running(manager)
    before = await stored(store)
    name = f"operations/{uuid.uuid4()}"
    for call_name, call in calls_with_name(manager, name).items():
        with pytest.raises(NotFound, match=re.escape(f"operation {name!r} not found")) as caught:
            await call()
        assert caught.value.details == [
            error_details_pb2.ResourceInfo(resource_type="v1op.v1.Operation", resource_name=name)
        ], call_name
    assert await stored(store) == before


# --- Any payloads of unknown types -----------------------------------------------------------


def with_unknown_metadata(operation: Operation) -> Operation:
    operation.metadata.CopyFrom(UNKNOWN_ANY)
    return operation


def with_unknown_response(operation: Operation) -> Operation:
    operation.done = True
    operation.response.CopyFrom(UNKNOWN_ANY)
    return operation


def with_unknown_error_detail(operation: Operation) -> Operation:
    # The second detail, so the path must name the index, not just "details".
    operation.done = True
    operation.error.CopyFrom(
        make_status(code_pb2.INTERNAL, "x", [error_details_pb2.ErrorInfo(reason="R"), UNKNOWN_ANY])
    )
    return operation


UNKNOWN_PAYLOADS = [
    pytest.param("operation.metadata", with_unknown_metadata, id="metadata"),
    pytest.param("operation.response", with_unknown_response, id="response"),
    pytest.param("operation.error.details[1]", with_unknown_error_detail, id="error-detail"),
]


@pytest.mark.parametrize(("path", "fill"), UNKNOWN_PAYLOADS)
@async_test
async def test_create_with_an_unknown_any_type_is_invalid(manager, store, path, fill):
    request = fill(Operation(metadata=make_progress()))
    with pytest.raises(InvalidArgument, match=re.escape("acme.v9.Secret")) as caught:
        await manager.create(EVALUATOR, request, ADA.name)
    # The field names where the bad type is, so a client can find it in its request.
    assert violation_fields(caught.value) == [f'{path}["@type"]']
    assert await stored(store) == []


@pytest.mark.parametrize(("path", "fill"), UNKNOWN_PAYLOADS[1:])
@async_test
async def test_finalize_with_an_unknown_any_type_is_invalid(manager, store, path, fill):
    created = await create_running(manager)
    request = fill(Operation(name=created.name))
    with pytest.raises(InvalidArgument) as caught:
        await manager.finalize(EVALUATOR, request)
    assert violation_fields(caught.value) == [f'{path}["@type"]']
    assert await store.get(created.name) == created


@pytest.mark.parametrize("method", ["update", "finalize"])
@async_test
async def test_update_and_finalize_with_unknown_metadata_type_are_invalid(manager, store, method):
    created = await create_running(manager)
    request = make_update(created.name, UNKNOWN_ANY)
    if method == "finalize":
        request.response.CopyFrom(make_result())
    with pytest.raises(InvalidArgument) as caught:
        await getattr(manager, method)(EVALUATOR, request)
    assert violation_fields(caught.value) == ['operation.metadata["@type"]']
    assert await store.get(created.name) == created


@async_test
async def test_an_any_whose_bytes_are_not_its_type_is_invalid(manager, store):
    corrupt = any_pb2.Any(type_url=make_progress().type_url, value=b"\xff\xff\xff")
    with pytest.raises(InvalidArgument, match=re.escape("not a valid")) as caught:
        await manager.create(EVALUATOR, Operation(metadata=corrupt), ADA.name)
    assert violation_fields(caught.value) == ["operation.metadata"]
    assert await stored(store) == []


@async_test
async def test_a_registry_makes_a_type_known(store, clock):
    # With a registry that knows nothing but its own types, EvaluationProgress is unknown.
    bare = OperationManager(store, TypeRegistry(use_default_pool=False), clock=clock)
    with pytest.raises(InvalidArgument):
        await create_running(bare)
    registry = TypeRegistry(use_default_pool=False)
    registry.register(evaluation_pb2)
    known = OperationManager(store, registry, clock=clock)
    created = await create_running(known)
    assert created.metadata == make_progress()


# --- progress --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (make_progress(0.25, "scoring 30 of 120"), (0.25, "scoring 30 of 120")),
        (make_struct(progress=0.5, message="half", other="x"), (0.5, "half")),
        (make_struct(progress=1), (1.0, "")),
        (make_struct(message="starting"), (0.0, "starting")),
        (make_struct(), (0.0, "")),
        # A message type without progress or message fields says nothing of progress.
        (pack(duration_pb2.Duration(seconds=5)), (0.0, "")),
        (None, (0.0, "")),
    ],
    ids=["typed", "struct", "struct-progress", "struct-message", "empty-struct", "other", "none"],
)
@async_test
async def test_progress_reads_the_metadata(manager, metadata, expected):
    request = Operation()
    if metadata is not None:
        request.metadata.CopyFrom(metadata)
    created = await manager.create(EVALUATOR, request, ADA.name)
    name, progress, message = await manager.progress(ADA, created.name)
    assert (progress, message) == expected
    prefix, _, identifier = name.rpartition("/")
    assert prefix == f"{created.name}/progresses"
    uuid.UUID(identifier)


@async_test
async def test_progress_follows_updates_and_has_a_stable_name(manager):
    created = await create_running(manager)
    name, progress, _ = await manager.progress(EVALUATOR, created.name)
    assert progress == 0.25
    await manager.update(EVALUATOR, make_update(created.name, make_progress(0.75, "almost")))
    again, progress, message = await manager.progress(ADA, created.name)
    assert (progress, message) == (0.75, "almost")
    assert again == name
    other, _, _ = await manager.progress(ADA, (await create_running(manager)).name)
    assert other != name


@async_test
async def test_progress_of_metadata_of_an_unknown_type_is_zero(manager, store):
    # Stored before this server knew better (or by another engine): no progress, no error.
    operation = Operation(name="operations/legacy", creator="users/ada", metadata=UNKNOWN_ANY)
    await store.insert(operation)
    assert (await manager.progress(ADA, operation.name))[1:] == (0.0, "")


@async_test
async def test_progress_of_anothers_operation_is_denied(manager):
    created = await create_running(manager, ADA)
    with pytest.raises(PermissionDenied):
        await manager.progress(BOB, created.name)


# --- wait ------------------------------------------------------------------------------------


async def start_waiting(manager, store, name, who=ADA, timeout=LONG) -> asyncio.Task:
    """A task waiting on ``name``, returned once it has read the operation as running."""
    store.read.clear()
    task = asyncio.create_task(manager.wait(who, name, timeout))
    assert await asyncio.to_thread(store.read.wait, 10), "wait never read the operation"
    return task


@pytest.mark.parametrize("how", ["finalize", "abort"])
@async_test
async def test_wait_is_woken_by_the_finish(manager, store, how):
    created = await create_running(manager)
    started = time.monotonic()
    waiting = await start_waiting(manager, store, created.name)
    gets_before = store.gets
    if how == "finalize":
        finished = await manager.finalize(EVALUATOR, make_finish(created.name))
    else:
        finished = await manager.abort(ADA, created.name)
    # The guard fails the test fast if the finish does not wake the waiter.
    result = await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - started < LONG / 2
    assert result == finished
    # One read after the wake-up and none in between: woken, not polling.
    assert store.gets == gets_before + 1


@async_test
async def test_a_finish_whose_caller_was_cancelled_still_wakes_the_waits(manager, store):
    # The finishing call's client goes away once its write is with the store: the write is
    # made all the same, and it must wake the waits as any other finish does.
    created = await create_running(manager)
    waiting = await start_waiting(manager, store, created.name)
    finishing = asyncio.ensure_future(manager.finalize(EVALUATOR, make_finish(created.name)))
    await asyncio.sleep(0)  # its write reaches the store
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    result = await asyncio.wait_for(waiting, 10)
    assert result.done
    assert await store.get(created.name) == result


@async_test
async def test_a_finish_between_the_read_and_the_wait_still_wakes_it(manager, store):
    # wait reads the operation as running, then waits to be woken: a finish that lands in
    # between must not be missed, or the caller waits out its whole timeout.
    created = await create_running(manager)
    release = asyncio.Event()
    store.hold = release
    store.read.clear()
    waiting = asyncio.create_task(manager.wait(ADA, created.name, LONG))
    assert await asyncio.to_thread(store.read.wait, 10)
    finished = await manager.finalize(EVALUATOR, make_finish(created.name))
    release.set()
    assert await asyncio.wait_for(waiting, 10) == finished


@async_test
async def test_wait_wakes_every_waiter(manager, store):
    created = await create_running(manager)
    waiters = [await start_waiting(manager, store, created.name, who) for who in [ADA, INDEXER]]
    waiters.append(await start_waiting(manager, store, created.name, EVALUATOR))
    finished = await manager.finalize(EVALUATOR, make_finish(created.name))
    results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert results == [finished] * 3


@async_test
async def test_wait_is_not_woken_by_an_update(manager, store):
    created = await create_running(manager)
    waiting = await start_waiting(manager, store, created.name, timeout=0.3)
    await manager.update(EVALUATOR, make_update(created.name, make_progress(0.9, "late")))
    result = await asyncio.wait_for(waiting, 10)
    # It ran out its timeout and answers the operation as it is then: running, updated.
    assert not result.done
    assert result.metadata == make_progress(0.9, "late")


@async_test
async def test_wait_of_a_finished_operation_returns_at_once(manager, store):
    finished = await create_finished(manager)
    gets_before = store.gets
    assert await asyncio.wait_for(manager.wait(ADA, finished.name, LONG), 10) == finished
    assert store.gets == gets_before + 1


@async_test
async def test_wait_returns_the_running_operation_at_its_timeout(manager, store):
    created = await create_running(manager)
    gets_before = store.gets
    result = await manager.wait(ADA, created.name, 0.05)
    assert result == created
    # One read before the wait and one after it: no polling in between.
    assert store.gets == gets_before + 2


@async_test
async def test_wait_is_capped_at_max_wait_seconds(store, clock):
    manager = OperationManager(store, clock=clock, max_wait_seconds=0.05)
    created = await create_running(manager)
    for timeout in [None, LONG]:
        result = await asyncio.wait_for(manager.wait(ADA, created.name, timeout), 10)
        assert not result.done


@async_test
async def test_wait_woken_by_a_delete_is_not_found(manager, store):
    created = await create_running(manager)
    waiting = await start_waiting(manager, store, created.name)
    await manager.delete(EVALUATOR, created.name)
    with pytest.raises(NotFound):
        await asyncio.wait_for(waiting, 10)


@async_test
async def test_wait_checks_who_may_read(manager):
    created = await create_running(manager, ADA)
    with pytest.raises(PermissionDenied):
        await manager.wait(BOB, created.name, LONG)


@async_test
async def test_a_finish_wakes_waiters_of_that_operation_only(manager, store):
    first = await create_running(manager)
    second = await create_running(manager)
    waiting = await start_waiting(manager, store, second.name, timeout=0.3)
    await manager.finalize(EVALUATOR, make_finish(first.name))
    assert not (await asyncio.wait_for(waiting, 10)).done


# --- concurrency -----------------------------------------------------------------------------


@async_test
async def test_concurrent_updates_and_finishes_serialise(manager, store):
    operations = [await create_running(manager) for _ in range(4)]
    store.writes.clear()
    calls = []
    for i in range(200):
        name = operations[i % 4].name
        kind = ["update", "update", "update", "finalize", "abort"][(i // 4) % 5]
        calls.append((i, name, kind))
    random.Random(7).shuffle(calls)

    async def call(i: int, name: str, kind: str):
        mark = make_struct(writer=float(i))
        try:
            if kind == "update":
                result = await manager.update(EVALUATOR, make_update(name, mark))
            elif kind == "finalize":
                request = make_finish(name)
                request.metadata.CopyFrom(mark)
                result = await manager.finalize(EVALUATOR, request)
            else:
                result = await manager.abort(ADA, name)
        except GoogleAPICallError as e:
            return i, name, kind, e
        return i, name, kind, result

    outcomes = await asyncio.gather(*(call(*c) for c in calls))

    for operation in operations:
        mine = [o for o in outcomes if o[1] == operation.name]
        succeeded = [o for o in mine if isinstance(o[3], Operation)]
        failed = [o for o in mine if not isinstance(o[3], Operation)]
        # Exactly one finish wins; every other call that came after it is refused.
        finishes = [o for o in succeeded if o[2] != "update"]
        assert len(finishes) == 1, finishes
        assert all(isinstance(o[3], FailedPrecondition) for o in failed), failed
        assert all(o[2] == "update" or o[3].done for o in succeeded)
        # Each successful call answered with its own write, not someone else's.
        for i, _, kind, result in succeeded:
            if kind != "abort":
                assert result.metadata == make_struct(writer=float(i))
            if kind == "update":
                assert not result.done
        # No lost update: every successful call is one committed write, the finish last,
        # and the stored operation is that last write.
        writes = [w for w in store.writes if w.name == operation.name]
        assert len(writes) == len(succeeded)
        assert writes[-1] == finishes[0][3]
        assert [w.done for w in writes[:-1]] == [False] * (len(writes) - 1)
        assert sorted(w.metadata.SerializeToString() for w in writes) == sorted(
            o[3].metadata.SerializeToString() for o in succeeded
        )
        assert await store.get(operation.name) == finishes[0][3]


@async_test
async def test_update_times_follow_the_order_of_writes(store):
    # update_time is read under the store's write lock: a read right after an acknowledged
    # update never shows an older time than the acknowledgement, and the stored times of
    # successive writes never go backwards, however the calls interleave.
    ticks = iter(range(START_NS, START_NS + 1_000_000))
    manager = OperationManager(store, clock=lambda: next(ticks))
    operation = await create_running(manager)
    store.writes.clear()

    async def update(i: int) -> Operation:
        acknowledged = await manager.update(EVALUATOR, make_update(operation.name))
        after = await manager.get(EVALUATOR, operation.name)
        assert after.update_time.ToNanoseconds() >= acknowledged.update_time.ToNanoseconds()
        return acknowledged

    await asyncio.gather(*(update(i) for i in range(50)))
    times = [w.update_time.ToNanoseconds() for w in store.writes]
    assert len(times) == 50
    assert times == sorted(times)


@async_test
async def test_a_clock_that_steps_back_does_not_move_an_operations_times_back(store, clock):
    manager = OperationManager(store, clock=clock)
    operation = await create_running(manager)
    clock.advance(10)
    first = await manager.update(EVALUATOR, make_update(operation.name))
    clock.advance(-60)  # the wall clock is set back
    second = await manager.update(EVALUATOR, make_update(operation.name))
    assert second.update_time == first.update_time
    finished = await manager.finalize(EVALUATOR, make_finish(operation.name))
    assert finished.update_time == first.update_time
    seen = await manager.mark_seen(ADA, operation.name)
    assert seen.seen_by_creator_time == first.update_time
    deleted = await manager.delete(EVALUATOR, operation.name)
    assert deleted.delete_time == first.update_time


@async_test
async def test_racing_finalize_and_abort_have_one_winner(manager, store):
    operations = [await create_running(manager) for _ in range(25)]
    rng = random.Random(11)

    async def race(name: str):
        calls = [manager.finalize(EVALUATOR, make_finish(name)), manager.abort(ADA, name)]
        if rng.random() < 0.5:
            calls.reverse()
        return await asyncio.gather(*calls, return_exceptions=True)

    results = await asyncio.gather(*(race(op.name) for op in operations))
    for operation, outcome in zip(operations, results, strict=True):
        winners = [r for r in outcome if isinstance(r, Operation)]
        losers = [r for r in outcome if not isinstance(r, Operation)]
        assert len(winners) == 1
        assert len(losers) == 1
        assert isinstance(losers[0], FailedPrecondition)
        assert await store.get(operation.name) == winners[0]


@async_test
async def test_concurrent_creates_are_all_kept(manager, store):
    created = await asyncio.gather(*(create_running(manager) for _ in range(100)))
    assert len({op.name for op in created}) == 100
    assert (await store.list(Query())).total_size == 100


# --- restart ---------------------------------------------------------------------------------


@async_test
async def test_a_restarted_server_keeps_every_operation(tmp_path, clock):
    path = str(tmp_path / "operations.db")
    store = SQLiteStore(path)
    manager = OperationManager(store, clock=clock)
    running = await create_running(manager)
    finished = await create_finished(manager)
    seen = await create_finished(manager, BOB)
    seen = await manager.mark_seen(BOB, seen.name)
    deleted = await create_finished(manager)
    deleted = await manager.delete(EVALUATOR, deleted.name)
    before = await stored(store)
    await store.aclose()

    reopened = SQLiteStore(path)
    restarted = OperationManager(reopened, clock=clock)
    assert await stored(reopened) == before
    assert await restarted.get(ADA, running.name) == running
    assert await restarted.get(ADA, finished.name) == finished
    assert await restarted.get(BOB, seen.name) == seen
    with pytest.raises(NotFound):
        await restarted.get(EVALUATOR, deleted.name)
    assert (await restarted.list_unseen(ADA, 0, full=True)).operations == [finished]
    # The rules hold across the restart: finished stays finished, running can finish.
    with pytest.raises(FailedPrecondition):
        await restarted.abort(ADA, finished.name)
    assert (await restarted.finalize(EVALUATOR, make_finish(running.name))).done
    await reopened.aclose()


# --- on every engine -------------------------------------------------------------------------


class ReadsSeen:
    """A store of any engine that tells when an operation was read."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.read = asyncio.Event()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def get(self, name: str) -> Operation | None:
        operation = await self._inner.get(name)
        self.read.set()
        return operation


@pytest.fixture(params=["sqlite-file", "postgres"])
def database(request, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres").new_database()
    return str(tmp_path / "operations.db")


def on_every_engine(fn):
    """Run the async test with a manager over a real store of ``database``, closed on the
    test's loop."""

    def wrapper(database):
        async def main():
            store = ReadsSeen(open_store(database))
            try:
                await fn(OperationManager(store), store)
            finally:
                await store.aclose()

        asyncio.run(main())

    # Not functools.wraps: pytest would read the test's own arguments, manager and store,
    # and pass this module's fixtures of those names.
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@on_every_engine
async def test_a_finish_wakes_a_wait_even_when_its_caller_was_cancelled(manager, store):
    created = await create_running(manager)
    store.read.clear()
    waiting = asyncio.create_task(manager.wait(ADA, created.name, LONG))
    await asyncio.wait_for(store.read.wait(), 10)
    finishing = asyncio.ensure_future(manager.finalize(EVALUATOR, make_finish(created.name)))
    await asyncio.sleep(0)  # its write reaches the store
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    assert (await asyncio.wait_for(waiting, 10)).done


@on_every_engine
async def test_concurrent_writes_keep_update_times_in_commit_order(manager, store):
    created = await create_running(manager)

    async def update() -> Operation:
        acknowledged = await manager.update(EVALUATOR, make_update(created.name))
        after = await manager.get(EVALUATOR, created.name)
        assert after.update_time.ToNanoseconds() >= acknowledged.update_time.ToNanoseconds()
        return acknowledged

    acknowledged = await asyncio.gather(*(update() for _ in range(40)))
    times = sorted(op.update_time.ToNanoseconds() for op in acknowledged)
    stored_time = (await manager.get(EVALUATOR, created.name)).update_time.ToNanoseconds()
    assert stored_time == times[-1]
