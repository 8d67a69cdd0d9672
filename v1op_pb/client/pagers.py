"""Pagers over the list RPCs, in the style of google-api-core's generated clients.

``client.list()`` answers the first page at once and returns a pager: iterating it yields
every Operation across the pages, fetching each next page when the one before runs out;
``.pages`` yields the responses themselves; and any other attribute is the current
response's (``pager.next_page_token``, ``pager.total_size``), so code written for a single
page keeps working. The asyncio client's pager does the same with ``async for``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from .._operation import Operation

__all__ = ["AsyncListOperationsPager", "ListOperationsPager"]


class _Page(Protocol):
    """What both list responses have: ListOperationsResponse, ListUnseenOperationsResponse."""

    @property
    def next_page_token(self) -> str: ...
    @property
    def total_size(self) -> int: ...
    @property
    def operations(self) -> Any: ...


class _Request(Protocol):
    page_token: str


ResponseT = TypeVar("ResponseT", bound=_Page)
RequestT = TypeVar("RequestT", bound=_Request)


class _CurrentPage(Generic[ResponseT]):
    """What both pagers show of the page they are on: its response, and through it any
    attribute of that response."""

    _response: ResponseT

    @property
    def response(self) -> ResponseT:
        """The current page's response."""
        return self._response

    @property
    def next_page_token(self) -> str:
        return self._response.next_page_token

    @property
    def total_size(self) -> int:
        return self._response.total_size

    def __getattr__(self, name: str) -> Any:
        # The current response's other attributes (operations, ListFields, ...).
        return getattr(self._response, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {type(self._response).__name__} page>"


class ListOperationsPager(_CurrentPage[ResponseT], Generic[RequestT, ResponseT]):
    """Every Operation of a listing, page after page (``fetch`` asks for the next)."""

    def __init__(
        self, fetch: Callable[[RequestT], ResponseT], request: RequestT, response: ResponseT
    ) -> None:
        self._fetch = fetch
        self._request = request
        self._response = response

    @property
    def pages(self) -> Iterator[ResponseT]:
        """The responses, the first (already answered) included; each next one is asked
        for when the caller moves on to it."""
        yield self._response
        while self._response.next_page_token:
            self._request.page_token = self._response.next_page_token
            self._response = self._fetch(self._request)
            yield self._response

    def __iter__(self) -> Iterator[Operation]:
        for page in self.pages:
            yield from page.operations


class AsyncListOperationsPager(_CurrentPage[ResponseT], Generic[RequestT, ResponseT]):
    """Every Operation of a listing, page after page, for ``async for``."""

    def __init__(
        self,
        fetch: Callable[[RequestT], Awaitable[ResponseT]],
        request: RequestT,
        response: ResponseT,
    ) -> None:
        self._fetch = fetch
        self._request = request
        self._response = response

    @property
    async def pages(self) -> AsyncIterator[ResponseT]:
        yield self._response
        while self._response.next_page_token:
            self._request.page_token = self._response.next_page_token
            self._response = await self._fetch(self._request)
            yield self._response

    def __aiter__(self) -> AsyncIterator[Operation]:
        async def operations() -> AsyncIterator[Operation]:
            async for page in self.pages:
                for operation in page.operations:
                    yield operation

        return operations()
