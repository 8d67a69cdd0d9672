"""The store's side of the metrics: how long each group commit took and how many writes it
made (timed in the store's writer thread), and how many operations the store holds in
each state (counted by a task of the server's loop every REFRESH_SECONDS)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..store import StoreUnavailable
from .metrics import Metrics

__all__ = ["REFRESH_SECONDS", "count_operations_forever", "time_commits"]

# A count reads an index of the whole table: often enough for a scrape every 15 s or more.
REFRESH_SECONDS = 15.0
_log = logging.getLogger("v1op.observe")


def time_commits(store: Any, metrics: Metrics) -> None:
    """Have the store's writer report each commit (a store without one is left alone)."""
    observe = getattr(store, "observe_commits", None)
    if observe is None:
        return
    seconds, writes, failures = (
        metrics.commit_seconds,
        metrics.commit_writes,
        metrics.commit_failures,
    )

    def committed(elapsed: float, count: int, failed: bool) -> None:
        seconds.observe(elapsed)
        writes.observe(count)
        if failed:
            failures.inc()

    observe(committed)


async def count_operations_forever(
    store: Any, metrics: Metrics, interval: float = REFRESH_SECONDS
) -> None:
    """Keep v1op_store_operations current until cancelled."""
    count = getattr(store, "count_operations", None)
    if count is None:
        return
    failing = False
    while True:
        try:
            metrics.set_operations(await count())
            failing = False
        except StoreUnavailable as e:
            if not failing:  # once per outage, not once per interval
                _log.warning("cannot count the operations for the metrics: %s", e)
            failing = True
        await asyncio.sleep(interval)
