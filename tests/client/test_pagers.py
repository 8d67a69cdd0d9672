"""list() and list_unseen() return pagers in google-api-core's style, sync and async: every
operation across the pages, ``.pages`` for the responses, and the current response's fields
by attribute."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_result
from v1op.v1 import operation_service_pb2 as pb

from v1op_pb.client import (
    AsyncListOperationsPager,
    AsyncOperationClient,
    ListOperationsPager,
    OperationClient,
)


@pytest.fixture
def five(served, make_operation):
    """A user of its own with five operations (three running, two finished)."""
    user = served.fresh_user()
    names = [make_operation(user).name for _ in range(3)]
    names += [make_operation(user, response=make_result(f"e{i}")).name for i in range(2)]
    return user, names


def test_iterating_the_pager_yields_every_operation_across_pages(served, five):
    user, names = five
    with OperationClient(served.target, token=served.tokens[user]) as client:
        pager = client.list(page_size=2)
        assert isinstance(pager, ListOperationsPager)
        assert [op.name for op in pager] == names


def test_pages_yields_each_response_and_asks_for_the_next_only_when_reached(served, five):
    user, names = five
    with OperationClient(served.target, token=served.tokens[user]) as client:
        pager = client.list(page_size=2)
        pages = pager.pages
        first = next(pages)
        assert isinstance(first, pb.ListOperationsResponse)
        assert [op.name for op in first.operations] == names[:2]
        # Attribute access is the current page's: nothing fetched yet beyond the first.
        assert pager.next_page_token == first.next_page_token != ""
        assert pager.total_size == 5
        rest = list(pages)
        assert [[op.name for op in page.operations] for page in rest] == [names[2:4], names[4:]]
        assert pager.next_page_token == "" == rest[-1].next_page_token
        assert pager.response is rest[-1]


def test_the_first_page_keeps_working_as_a_response(served, five):
    user, names = five
    with OperationClient(served.target, token=served.tokens[user]) as client:
        page = client.list(page_size=2)
        assert [op.name for op in page.operations] == names[:2]
        rest = client.list(page_size=3, page_token=page.next_page_token)
        assert [op.name for op in rest.operations] == names[2:]
        # Any other attribute is the response's, its methods included.
        assert [field.name for field, _ in page.ListFields()] == [
            "operations",
            "total_size",
            "next_page_token",
        ]


def test_list_unseen_pages_too(served, five):
    user, names = five
    with OperationClient(served.target, token=served.tokens[user]) as client:
        pager = client.list_unseen(page_size=1, view=pb.OPERATION_VIEW_BASIC)
        assert [op.name for op in pager] == names[3:]
        pages = list(client.list_unseen(page_size=1).pages)
        assert [op.name for page in pages for op in page.operations] == names[3:]
        assert len(pages) >= 2 and pages[-1].next_page_token == ""


def test_an_empty_listing_is_one_empty_page(served):
    user = served.fresh_user()
    with OperationClient(served.target, token=served.tokens[user]) as client:
        pager = client.list()
        assert list(pager) == []
        assert [len(page.operations) for page in client.list().pages] == [0]


def test_the_async_pager_works_with_async_for(served, five):
    user, names = five

    async def main() -> tuple[list[str], list[list[str]], str, int]:
        async with AsyncOperationClient(served.target, token=served.tokens[user]) as client:
            pager = await client.list(page_size=2)
            assert isinstance(pager, AsyncListOperationsPager)
            every = [op.name async for op in pager]
            again = await client.list(page_size=3)
            token, total = again.next_page_token, again.total_size
            pages = [[op.name for op in page.operations] async for page in again.pages]
            unseen = [op.name async for op in await client.list_unseen(page_size=1)]
            assert unseen == names[3:]
            return every, pages, token, total

    every, pages, token, total = asyncio.run(main())
    assert every == names
    assert pages == [names[:3], names[3:]]
    assert token != "" and total == 5
