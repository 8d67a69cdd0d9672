"""Where the reference server keeps Operations: the interface every engine implements.

The interface is synchronous and small, so engines sit side by side (``sqlite``); the server
calls it from one dedicated thread.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..._operation import Operation

__all__ = ["Page", "Query", "Store", "StoredOperationMissing"]


class StoredOperationMissing(KeyError):
    """No operation of that name is stored."""


@dataclass(frozen=True)
class Query:
    """Which operations a list returns: all fields combine with AND; None means any."""

    creator: str | None = None
    done: bool | None = None
    seen: bool | None = None
    include_deleted: bool = False
    after: int = 0  # a Page.cursor: only operations stored after it
    limit: int = 0  # 0: no limit


@dataclass(frozen=True)
class Page:
    operations: list[Operation]
    total_size: int  # matching operations, irrespective of ``after`` and ``limit``
    cursor: int  # where the next page starts (Query.after); 0 when this page is empty


class Store(Protocol):
    def insert(self, operation: Operation) -> None:
        """Store a new operation; its name must be new."""

    def get(self, name: str) -> Operation | None: ...

    def get_many(self, names: Sequence[str]) -> dict[str, Operation]:
        """The stored operations among ``names``, by name."""

    def list(self, query: Query) -> Page:
        """Matching operations in creation order."""

    def modify(
        self, names: Sequence[str], change: Callable[[Operation], Operation]
    ) -> builtins.list[Operation]:
        """Atomically replace each named operation by ``change(current)``, all or none: an
        exception from ``change`` leaves every one as it was. StoredOperationMissing when
        one is not stored."""

    def close(self) -> None: ...
