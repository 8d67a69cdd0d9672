"""The reference server against hostile input (issue 11): every malformed request gets a
precise status, never UNKNOWN or internals; every listing fits in a message.

One server for the module (conftest.served), plus servers on the same store with other
options: a 64 KiB message limit, and a store that fails the way a bug would.
"""

from __future__ import annotations

import base64
import json
import logging

import grpc
import pytest
from conftest import EXTRA_MAX_MESSAGE, extra_server, make_progress, running
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import duration_pb2, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from fuzz.grpc_calls import UNARY_METHODS, GrpcServer, call_raw, check_call, grpc_seeds
from v1op_pb import Operation, pack
from v1op_pb.server.app import create_server
from v1op_pb.server.manager import DEFAULT_PAGE_SIZE

EVAL = "services/eval"
RPC_TIMEOUT = 10
HUGE_NAME = "operations/" + "x" * 100_000
# What a status may take in the trailers whatever the input (gRPC clients take 8 KiB).
MAX_MESSAGE_CHARS = 2048


@pytest.fixture(scope="module")
def lro_stub(channel) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(channel)


@pytest.fixture(scope="module")
def progress_stub(channel) -> pb_grpc.OperationProgressServiceStub:
    return pb_grpc.OperationProgressServiceStub(channel)


def failure(code: grpc.StatusCode, method, request, metadata) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        method(request, metadata=metadata, timeout=RPC_TIMEOUT)
    error = info.value
    assert error.code() == code, (error.code(), error.details())
    assert len(error.details()) <= MAX_MESSAGE_CHARS
    return error


def token_of(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode("ascii")


def create_for(ops, served, user: str, n: int, *, filler: int = 0) -> list[Operation]:
    metadata = pack(make_progress(0.5, "m" * filler))
    return [
        ops.CreateOperation(
            pb.CreateOperationRequest(operation=Operation(metadata=metadata), on_behalf_of=user),
            metadata=served.auth(EVAL),
            timeout=RPC_TIMEOUT,
        ).operation
        for _ in range(n)
    ]


# --- numbers from the request are range-checked where they enter ------------------------------


@pytest.mark.parametrize(
    "token",
    [
        token_of({"after": 2**62 * 4, "scope": "longrunning:"}),  # beyond SQLite's INTEGER
        token_of({"after": -1, "scope": "longrunning:"}),
        token_of({"after": 1.5, "scope": "longrunning:"}),
        token_of({"after": True, "scope": "longrunning:"}),
        token_of({"after": "12", "scope": "longrunning:"}),
        token_of({"after": 1}),
        token_of({"after": 1, "scope": "longrunning:", "more": 1}),
        token_of([1, 2]),
        token_of("text"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # deeper than json's recursion
        "not base64!",
        "é",
    ],
)
def test_a_forged_longrunning_page_token_is_invalid(lro_stub, served, token):
    error = failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        lro_stub.ListOperations,
        lro.ListOperationsRequest(name="operations", page_token=token),
        served.auth(EVAL),
    )
    assert error.details() == "page_token is not one this server gave out"


def test_a_page_token_is_good_only_for_the_listing_it_came_from(ops, lro_stub, served):
    user = served.fresh_user()
    create_for(ops, served, user, 3)
    auth = served.auth(user)
    first = ops.ListOperations(pb.ListOperationsRequest(page_size=1), metadata=auth)
    assert first.next_page_token
    for method, request in [
        (lro_stub.ListOperations, lro.ListOperationsRequest(page_token=first.next_page_token)),
        (ops.ListUnseenOperations,
         pb.ListUnseenOperationsRequest(page_token=first.next_page_token)),
    ]:  # fmt: skip
        failure(grpc.StatusCode.INVALID_ARGUMENT, method, request, auth)


@pytest.mark.parametrize(
    "timeout",
    [
        duration_pb2.Duration(seconds=2**62),
        duration_pb2.Duration(seconds=315_576_000_001),
        duration_pb2.Duration(seconds=-1),
        duration_pb2.Duration(seconds=0, nanos=-5),
        duration_pb2.Duration(seconds=1, nanos=1_000_000_000),
    ],
)
def test_a_wait_timeout_outside_durations_range_is_invalid(lro_stub, served, timeout):
    failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        lro_stub.WaitOperation,
        lro.WaitOperationRequest(name="operations/x", timeout=timeout),
        served.auth(EVAL),
    )


def test_the_longest_valid_wait_timeout_is_capped_not_refused(lro_stub, served, make_operation):
    finished = make_operation(response=make_progress())
    waited = lro_stub.WaitOperation(
        lro.WaitOperationRequest(
            name=finished.name, timeout=duration_pb2.Duration(seconds=315_576_000_000)
        ),
        metadata=served.auth(EVAL),
        timeout=RPC_TIMEOUT,
    )
    assert waited.done


# --- errors quote bounded, escaped excerpts ----------------------------------------------------


def test_a_100kb_name_is_not_found_with_a_short_message(ops, lro_stub, progress_stub, served):
    auth = served.auth(EVAL)
    for method, request in [
        (ops.GetOperation, pb.GetOperationRequest(name=HUGE_NAME)),
        (ops.BatchGetOperations, pb.BatchGetOperationsRequest(names=[HUGE_NAME])),
        (ops.AbortOperation, pb.AbortOperationRequest(name=HUGE_NAME)),
        (lro_stub.GetOperation, lro.GetOperationRequest(name=HUGE_NAME)),
        (lro_stub.DeleteOperation, lro.DeleteOperationRequest(name=HUGE_NAME)),
        (progress_stub.GetOperationProgressByParent,
         pb.GetOperationProgressByParentRequest(parent=HUGE_NAME)),
    ]:  # fmt: skip
        error = failure(grpc.StatusCode.NOT_FOUND, method, request, auth)
        assert "(100011 characters)" in error.details()


def test_a_100kb_malformed_name_is_invalid_with_a_short_message(ops, lro_stub, served):
    auth = served.auth(EVAL)
    huge = "x" * 100_000
    for method, request in [
        (ops.GetOperation, pb.GetOperationRequest(name=huge)),
        (ops.BatchMarkOperationSeenByCreator,
         pb.BatchMarkOperationSeenByCreatorRequest(names=["operations/a", huge])),
        (ops.UpdateOperation,
         pb.UpdateOperationRequest(operation=Operation(name=huge, metadata=pack(make_progress())))),
        (lro_stub.ListOperations, lro.ListOperationsRequest(name=huge)),
        (lro_stub.ListOperations, lro.ListOperationsRequest(filter=huge)),
    ]:  # fmt: skip
        error = failure(grpc.StatusCode.INVALID_ARGUMENT, method, request, auth)
        assert "(100000 characters)" in error.details()


def test_control_characters_and_lone_surrogates_are_escaped_in_messages(ops, served):
    error = failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        ops.GetOperation,
        pb.GetOperationRequest(name="bad\n\t\x00name"),
        served.auth(EVAL),
    )
    assert "'bad\\n\\t\\x00name'" in error.details()


def test_a_huge_key_in_a_payload_is_invalid_with_a_short_message(ops, served):
    struct = struct_pb2.Struct()
    struct.fields["k" * 100_000].number_value = float("nan")  # NaN has no JSON form
    error = failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        ops.CreateOperation,
        pb.CreateOperationRequest(operation=Operation(metadata=pack(struct))),
        served.auth(EVAL),
    )
    assert "(100000 characters)" in error.details()


# --- a bug answers INTERNAL, without its internals ---------------------------------------------


class BrokenStore:
    """The module's store, but reading one name fails the way a bug in a store would."""

    BROKEN = "operations/broken"

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def get(self, name: str):
        if name == self.BROKEN:
            raise OverflowError("Python int too large to convert to SQLite INTEGER (secret)")
        return self._inner.get(name)


@pytest.fixture(scope="module")
def broken_server(served):
    store = BrokenStore(served.store)
    build = lambda: create_server("127.0.0.1:0", store=store, tokens=served.table)  # noqa: E731
    with running(build) as thread:
        yield thread


def test_an_unexpected_exception_is_internal_and_logged_not_unknown(broken_server, served, caplog):
    with grpc.insecure_channel(f"127.0.0.1:{broken_server.port}") as channel:
        stub = pb_grpc.OperationServiceStub(channel)
        with caplog.at_level(logging.ERROR, logger="v1op.server"):
            error = failure(
                grpc.StatusCode.INTERNAL,
                stub.GetOperation,
                pb.GetOperationRequest(name=BrokenStore.BROKEN),
                served.auth(EVAL),
            )
        assert error.details() == "internal server error"
        # The server's log has what the caller does not: the exception and its traceback.
        (record,) = [r for r in caplog.records if r.name == "v1op.server"]
        assert record.exc_info is not None and record.exc_info[0] is OverflowError
        # The same connection keeps serving.
        stub.ListOperations(pb.ListOperationsRequest(page_size=1), metadata=served.auth(EVAL))


# --- listings have a default, a maximum, and pages that fit ------------------------------------


def test_a_list_without_a_page_size_gets_the_default_page_and_a_token(ops, served):
    user = served.fresh_user()
    created = create_for(ops, served, user, DEFAULT_PAGE_SIZE + 3)
    auth = served.auth(user)
    first = ops.ListOperations(pb.ListOperationsRequest(), metadata=auth)
    assert len(first.operations) == DEFAULT_PAGE_SIZE
    assert first.total_size == DEFAULT_PAGE_SIZE + 3
    second = ops.ListOperations(
        pb.ListOperationsRequest(page_token=first.next_page_token), metadata=auth
    )
    assert [op.name for op in [*first.operations, *second.operations]] == [
        op.name for op in created
    ]
    assert second.next_page_token == ""


@pytest.fixture(scope="module")
def small_server(served):
    """A server on the same store whose messages may be at most 64 KiB."""
    with running(extra_server(served, max_message_bytes=EXTRA_MAX_MESSAGE)) as thread:
        yield thread


def every_page(method, request, auth) -> list[list[str]]:
    pages = []
    while True:
        response = method(request, metadata=auth, timeout=RPC_TIMEOUT)
        pages.append([op.name for op in response.operations])
        if not response.next_page_token:
            return pages
        request.page_token = response.next_page_token


def test_lists_of_large_operations_are_cut_to_fit_the_message_limit(ops, served, small_server):
    # Each running operation takes a quarter of the small server's message limit, a finished
    # one half: a page holds a few, and no listing fails with RESOURCE_EXHAUSTED.
    user = served.fresh_user()
    created = create_for(ops, served, user, 5, filler=EXTRA_MAX_MESSAGE // 4)
    names = [op.name for op in created]
    for op in created[:3]:
        finish = Operation(name=op.name, done=True, response=op.metadata)
        ops.FinalizeOperation(
            pb.FinalizeOperationRequest(operation=finish), metadata=served.auth(EVAL)
        )
    auth = served.auth(user)
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        small = pb_grpc.OperationServiceStub(channel)
        small_lro = operations_pb2_grpc.OperationsStub(channel)
        for method, request, expected in [
            (small.ListOperations, pb.ListOperationsRequest(), names),
            (small.ListOperations, pb.ListOperationsRequest(page_size=1000), names),
            (small_lro.ListOperations, lro.ListOperationsRequest(name="operations"), names),
            (small.ListUnseenOperations, pb.ListUnseenOperationsRequest(), names[:3]),
        ]:  # fmt: skip
            pages = every_page(method, request, auth)
            assert [name for page in pages for name in page] == expected
            assert len(pages) > 1
            assert all(pages[:-1]), pages  # every page but a last empty one moves on


def test_two_operations_of_3_mib_list_page_by_page_at_the_default_limit(ops, lro_stub, served):
    # The case: with 4 MiB messages, a user's two 3 MiB operations made every listing
    # fail with RESOURCE_EXHAUSTED for good.
    user = served.fresh_user()
    created = create_for(ops, served, user, 2, filler=3 * 1024 * 1024)
    auth = served.auth(user)
    for method, request in [
        (ops.ListOperations, pb.ListOperationsRequest()),
        (lro_stub.ListOperations, lro.ListOperationsRequest(name="operations")),
    ]:
        pages = every_page(method, request, auth)
        assert [name for page in pages for name in page] == [op.name for op in created]
        assert [len(page) for page in pages[:2]] == [1, 1]


# --- request bytes that are not a request message ----------------------------------------------


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a" * 200])
def test_bytes_that_are_no_request_are_invalid_argument_not_unknown(channel, served, raw):
    for method, _ in UNARY_METHODS:
        code, details = call_raw(channel, method, raw, served.auth("users/bob"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, details)
        assert "in binary form" in details


def test_a_name_that_is_not_utf8_is_invalid_argument_not_unknown(channel, served):
    for method in [
        "/v1op.v1.OperationService/GetOperation",
        "/google.longrunning.Operations/GetOperation",
    ]:
        code, _ = call_raw(channel, method, b"\x0a\x02\xc3\x28", served.auth("users/bob"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, method


@pytest.fixture(scope="module")
def fuzzed_server() -> GrpcServer:
    return GrpcServer()  # its own store: what it is sent cannot disturb the other tests


@st.composite
def mutated_call(draw: st.DrawFn) -> bytes:
    """A seed of the grpc fuzz target (method byte, request bytes) with a few edits."""
    data = bytearray(draw(st.sampled_from(GRPC_SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(1, len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "delete"]))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[at:at] = bytes([draw(st.integers(0, 255))])
        else:
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


GRPC_SEEDS = [data for _, data in grpc_seeds()]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=mutated_call())
def test_mutated_requests_get_a_precise_status(fuzzed_server, data):
    check_call(fuzzed_server, data)
