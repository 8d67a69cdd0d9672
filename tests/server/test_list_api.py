"""ListOperations' filter, order_by and show_deleted (AIP-160, AIP-132, AIP-164), on gRPC and
REST, over SQLite and PostgreSQL: newest first, the states, deleted operations in lists only,
the rules of who sees what, precise INVALID_ARGUMENT for what the server does not take, and
page tokens good only for the listing they came from.

One server per engine for the module (gRPC and the HTTP port in one process); each test
takes users of its own, so that its lists are exact although the module shares the store.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import grpc
import pytest
from conftest import make_progress, make_result, make_token_table, running_with_http
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.rpc import code_pb2, error_details_pb2, status_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack
from v1op_pb.server.store import open_store

TIMEOUT = 20
NEWEST = "create_time desc"


@dataclass
class Server:
    grpc_port: int
    http_port: int
    tokens: dict[str, str]
    ops: pb_grpc.OperationServiceStub
    lro: operations_pb2_grpc.OperationsStub
    users: Iterator[str]

    def auth(self, principal: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[principal]}"),)

    def user(self) -> str:
        return next(self.users)

    # --- making operations in each state, for ``owner``, as services/eval ---------------------

    def create(self, owner: str, *, error: int | None = None, response: bool = False) -> str:
        requested = Operation(metadata=pack(make_progress()))
        if error is not None:
            requested.done = True
            requested.error.CopyFrom(status_pb2.Status(code=error, message="it broke"))
        elif response:
            requested.done = True
            requested.response.CopyFrom(pack(make_result()))
        request = pb.CreateOperationRequest(operation=requested, on_behalf_of=owner)
        answer = self.ops.CreateOperation(
            request, metadata=self.auth("services/eval"), timeout=TIMEOUT
        )
        return answer.operation.name

    def aborted(self, owner: str) -> str:
        name = self.create(owner)
        request = pb.AbortOperationRequest(name=name)
        self.ops.AbortOperation(request, metadata=self.auth(owner), timeout=TIMEOUT)
        return name

    def delete(self, owner: str, name: str) -> None:
        request = lro.DeleteOperationRequest(name=name)
        self.lro.DeleteOperation(request, metadata=self.auth(owner), timeout=TIMEOUT)

    def one_of_each(self, owner: str) -> dict[str, str]:
        """An operation in every state, created in this order, and one deleted (succeeded)."""
        made = {
            "running": self.create(owner),
            "succeeded": self.create(owner, response=True),
            "failed": self.create(owner, error=code_pb2.INVALID_ARGUMENT),
            "aborted": self.aborted(owner),
            "deleted": self.create(owner, response=True),
        }
        self.delete(owner, made["deleted"])
        return made

    # --- listing ---------------------------------------------------------------------------

    def grpc_list(self, principal: str, **fields) -> pb.ListOperationsResponse:
        request = pb.ListOperationsRequest(**fields)
        return self.ops.ListOperations(request, metadata=self.auth(principal), timeout=TIMEOUT)

    def grpc_names(self, principal: str, **fields) -> list[str]:
        """Every page's names, following next_page_token."""
        names: list[str] = []
        token = ""
        while True:
            page = self.grpc_list(principal, page_token=token, **fields)
            names += [op.name for op in page.operations]
            token = page.next_page_token
            if not token:
                return names

    def rest(self, principal: str, query: dict[str, str]) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=TIMEOUT)
        try:
            path = "/v1/operations?" + urllib.parse.urlencode(query)
            headers = {"Authorization": f"Bearer {self.tokens[principal]}"}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def rest_names(self, principal: str, query: dict[str, str]) -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            status, body = self.rest(principal, {**query, "pageToken": token} if token else query)
            assert status == 200, body
            names += [op["name"] for op in body["operations"]]
            token = body["nextPageToken"]
            if not token:
                return names


@pytest.fixture(scope="module", params=["sqlite-file", "postgres"])
def server(request, tmp_path_factory) -> Iterator[Server]:
    if request.param == "postgres":
        database = request.getfixturevalue("postgres").new_database()
    else:
        database = str(tmp_path_factory.mktemp("list") / "operations.db")
    table, tokens = make_token_table()
    store = open_store(database)
    with (
        running_with_http(store, table) as (thread, http_port),
        grpc.insecure_channel(f"127.0.0.1:{thread.port}") as channel,
    ):
        users = (f"users/spare-{i:02d}" for i in count())
        yield Server(
            thread.port,
            http_port,
            tokens,
            pb_grpc.OperationServiceStub(channel),
            operations_pb2_grpc.OperationsStub(channel),
            users,
        )
    store.close()


def bad_request(error: grpc.RpcError) -> tuple[str, list[tuple[str, str]]]:
    """The message of an INVALID_ARGUMENT and its BadRequest's field violations."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    status = next(
        status_pb2.Status.FromString(value)
        for key, value in error.trailing_metadata()
        if key == "grpc-status-details-bin"
    )
    violations = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        violations += [(v.field, v.description) for v in bad.field_violations]
    return error.details(), violations


# --- order ---------------------------------------------------------------------------------


def test_newest_first_on_grpc_and_rest_oldest_first_by_default(server):
    ada = server.user()
    made = [server.create(ada) for _ in range(5)]

    assert server.grpc_names(ada, page_size=2, order_by=NEWEST) == made[::-1]
    assert server.rest_names(ada, {"pageSize": "2", "orderBy": NEWEST}) == made[::-1]
    assert server.grpc_names(ada, page_size=2) == made
    assert server.grpc_names(ada, page_size=2, order_by="create_time") == made
    assert server.rest_names(ada, {"pageSize": "3", "orderBy": " create_time  desc "}) == made[::-1]


def test_newest_first_pages_do_not_shift_when_operations_are_created_meanwhile(server):
    ada = server.user()
    made = [server.create(ada) for _ in range(4)]
    first = server.grpc_list(ada, page_size=2, order_by=NEWEST)
    later = server.create(ada)
    second = server.grpc_list(ada, page_size=2, order_by=NEWEST, page_token=first.next_page_token)

    assert [op.name for op in first.operations] == [made[3], made[2]]
    assert [op.name for op in second.operations] == [made[1], made[0]]
    assert second.total_size == 5  # counts the one created meanwhile, which page 1 misses
    assert server.grpc_names(ada, order_by=NEWEST)[0] == later


# --- filter --------------------------------------------------------------------------------


def test_each_state_on_grpc_and_rest(server):
    ada = server.user()
    made = server.one_of_each(ada)

    for state in ("running", "succeeded", "failed", "aborted"):
        assert server.grpc_names(ada, filter=f"state = {state}") == [made[state]], state
        status, body = server.rest(ada, {"filter": f"state = {state}"})
        assert status == 200, body
        assert [op["name"] for op in body["operations"]] == [made[state]]
        assert body["totalSize"] == 1
    deleted = server.grpc_list(ada, filter="state = deleted", show_deleted=True)
    assert [op.name for op in deleted.operations] == [made["deleted"]]
    assert deleted.operations[0].HasField("delete_time")
    assert deleted.operations[0].HasField("response")  # the whole operation, as stored
    status, body = server.rest(ada, {"filter": "state = deleted", "showDeleted": "true"})
    assert [op["name"] for op in body["operations"]] == [made["deleted"]], body


def test_states_joined_by_or_quoted_or_in_capitals(server):
    ada = server.user()
    made = server.one_of_each(ada)

    either = server.grpc_names(ada, filter='state = failed OR state = "aborted"')
    assert either == [made["failed"], made["aborted"]]
    assert server.grpc_names(ada, filter="state=RUNNING", order_by=NEWEST) == [made["running"]]
    three = "state = running OR state = succeeded OR state = failed"
    assert server.rest_names(ada, {"filter": three, "orderBy": NEWEST}) == [
        made["failed"],
        made["succeeded"],
        made["running"],
    ]


def test_deleted_operations_are_listed_only_when_asked_and_stay_not_found_by_name(server):
    ada = server.user()
    made = server.one_of_each(ada)
    alive = [made[s] for s in ("running", "succeeded", "failed", "aborted")]
    in_order = [*alive, made["deleted"]]

    assert server.grpc_names(ada) == alive
    assert server.grpc_list(ada).total_size == 4
    assert server.grpc_names(ada, show_deleted=True) == in_order
    assert server.grpc_list(ada, show_deleted=True).total_size == 5
    assert server.rest_names(ada, {"showDeleted": "true", "orderBy": NEWEST}) == in_order[::-1]
    # With show_deleted, a state takes deleted and live operations alike.
    assert server.grpc_names(ada, filter="state = succeeded", show_deleted=True) == [
        made["succeeded"],
        made["deleted"],
    ]
    with pytest.raises(grpc.RpcError) as caught:
        request = pb.GetOperationRequest(name=made["deleted"])
        server.ops.GetOperation(request, metadata=server.auth(ada), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_users_list_their_own_and_services_every_one(server):
    ada, bob = server.user(), server.user()
    ada_failed = server.create(ada, error=code_pb2.INTERNAL)
    bob_failed = server.create(bob, error=code_pb2.INTERNAL)
    server.create(bob)

    assert server.grpc_names(ada, filter="state = failed") == [ada_failed]
    assert server.rest_names(bob, {"filter": "state = failed"}) == [bob_failed]
    for_service = server.grpc_names("services/other", filter="state = failed", order_by=NEWEST)
    assert for_service.index(bob_failed) < for_service.index(ada_failed)
    assert all(
        op.error.code != 0
        for op in server.grpc_list("services/other", filter="state = failed").operations
    )


# --- what the server does not take ---------------------------------------------------------

STATE_LIST = "running, succeeded, failed, aborted, deleted"
REFUSED = [
    (
        {"filter": "done = true"},
        "filter",
        "unsupported filter 'done = true'; use state = <state>, terms joined by OR, "
        f"with a state of {STATE_LIST}",
    ),
    (
        {"filter": "state = running AND state = failed"},
        "filter",
        "unsupported filter 'state = running AND state = failed'; use state = <state>, terms "
        f"joined by OR, with a state of {STATE_LIST}",
    ),
    (
        {"filter": "state = paused"},
        "filter",
        f"unknown state 'paused'; the states: {STATE_LIST}",
    ),
    (
        {"filter": "state = deleted"},
        "filter",
        "state = deleted lists deleted operations: set show_deleted",
    ),
    (
        {"filter": "state = deleted OR state = failed", "show_deleted": True},
        "filter",
        "state = deleted stands alone: it cannot be joined with other states",
    ),
    (
        {"order_by": "name"},
        "order_by",
        "unsupported order 'name'; use 'create_time' (oldest first, the default) or "
        "'create_time desc' (newest first)",
    ),
    (
        {"order_by": "create_time asc"},
        "order_by",
        "unsupported order 'create_time asc'; use 'create_time' (oldest first, the default) "
        "or 'create_time desc' (newest first)",
    ),
]


@pytest.mark.parametrize(("fields", "field", "description"), REFUSED)
def test_what_the_server_does_not_take_is_a_precise_invalid_argument(
    server, fields, field, description
):
    with pytest.raises(grpc.RpcError) as caught:
        server.grpc_list("users/ada", **fields)
    message, violations = bad_request(caught.value)
    assert message == f"{field}: {description}"
    assert violations == [(field, description)]

    query = {
        {"filter": "filter", "order_by": "orderBy", "show_deleted": "showDeleted"}[k]: (
            "true" if v is True else v
        )
        for k, v in fields.items()
    }
    status, body = server.rest("users/ada", query)
    assert status == 400
    assert body["code"] == code_pb2.INVALID_ARGUMENT
    assert body["message"] == f"{field}: {description}"
    assert body["details"][0]["fieldViolations"][0]["field"] == field


# --- page tokens ---------------------------------------------------------------------------


def test_a_page_token_is_good_only_for_the_listing_it_came_from(server):
    ada = server.user()
    for _ in range(3):
        server.create(ada, error=code_pb2.INTERNAL)
    failed_newest = server.grpc_list(ada, page_size=1, filter="state = failed", order_by=NEWEST)
    token = failed_newest.next_page_token
    assert token

    # The same listing, spelled otherwise, takes it.
    same = server.grpc_list(
        ada, page_size=1, filter='state="FAILED"', order_by=" create_time desc", page_token=token
    )
    assert same.operations[0].name != failed_newest.operations[0].name
    for other in (
        {"filter": "state = failed"},  # oldest first
        {"order_by": NEWEST},  # every state
        {"filter": "state = failed", "order_by": NEWEST, "show_deleted": True},
        {"filter": "state = failed OR state = aborted", "order_by": NEWEST},
    ):
        with pytest.raises(grpc.RpcError) as caught:
            server.grpc_list(ada, page_size=1, page_token=token, **other)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, other
        assert caught.value.details() == (
            "page_token was given out for another filter or another listing"
        )
    status, body = server.rest(ada, {"pageToken": token})
    assert status == 400, body
    assert body["message"] == "page_token was given out for another filter or another listing"


def test_the_plain_listing_keeps_its_tokens(server):
    """Tokens of the listing without filter or order (as before they existed) still work,
    and google.longrunning's list is not changed."""
    ada = server.user()
    made = [server.create(ada) for _ in range(3)]
    first = server.grpc_list(ada, page_size=2)
    assert first.next_page_token
    second = server.grpc_list(ada, page_size=2, page_token=first.next_page_token)
    assert [op.name for op in [*first.operations, *second.operations]] == made
    listed = server.lro.ListOperations(
        lro.ListOperationsRequest(name="operations", filter="done=false"),
        metadata=server.auth(ada),
        timeout=TIMEOUT,
    )
    assert [op.name for op in listed.operations] == made
