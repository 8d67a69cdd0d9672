"""Retention: operations done or deleted for longer than a duration are purged from the
store, in the background, in small batches.

A server with ``--retention`` runs ``Retention.run`` beside its calls. Each pass deletes
batches of up to BATCH operations whose finish (``finish_ns``, the time of the write that
finished it) or deletion (``delete_ns``) is older than the cutoff, one transaction a batch,
until a batch comes back short; then it waits for the next pass. A running operation that
nobody deleted is never purged; a deleted one goes once it has been deleted that long,
finished or not (deleted, it answers NOT_FOUND to every caller already, and no write can
finish it). A purged name answers NOT_FOUND, as one never created.

One replica at a time purges: in PostgreSQL a batch takes an advisory lock, and a replica
that finds it taken leaves the pass to the one holding it; in SQLite every batch holds the
file's write lock, so the processes sharing the file purge one batch at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from .base import StoreUnavailable

__all__ = ["BATCH", "Retention", "duration_text", "parse_duration"]

BATCH = 500
# Passes come this often (a tenth of the retention, within these bounds): a row outlives
# its retention by at most about that.
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 60.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])\Z")
_log = logging.getLogger("v1op.retention")


class Purging(Protocol):
    """What retention asks of a store (both engines have it)."""

    def purge(self, before_ns: int, limit: int) -> Awaitable[int | None]:
        """Delete up to ``limit`` operations done or deleted before ``before_ns``; how many,
        or None when another replica is purging."""


def parse_duration(text: str) -> float:
    """Seconds of ``30d``, ``12h``, ``90m``, ``2s`` or ``1w``; ValueError, in one line,
    otherwise."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"--retention {text!r}: give a duration above zero as a number and a unit "
            "(s, m, h, d or w), such as 30d, 12h, 90m or 2s"
        )
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def duration_text(seconds: float) -> str:
    """Seconds as ``parse_duration`` reads them, in the largest unit that divides them."""
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Retention:
    """Purges ``store``'s operations done or deleted for longer than ``keep_seconds``."""

    def __init__(
        self,
        store: Purging,
        keep_seconds: float,
        *,
        batch: int = BATCH,
        interval: float | None = None,
        on_purged: Callable[[int], object] | None = None,
        on_failure: Callable[[], object] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if keep_seconds <= 0:
            raise ValueError("retention must keep operations for more than 0 seconds")
        self._store = store
        self.keep_ns = int(keep_seconds * 1_000_000_000)
        self._batch = batch
        self.interval = (
            interval
            if interval is not None
            else min(max(keep_seconds / 10, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS)
        )
        self._on_purged = on_purged
        self._on_failure = on_failure
        self._clock = clock

    async def run(self) -> None:
        """Pass after pass until cancelled; a pass that fails (the database is away) is
        logged, and the next one tries again."""
        failing = False
        while True:
            try:
                await self.purge_once()
                failing = False
            except StoreUnavailable as e:
                if self._on_failure is not None:
                    self._on_failure()
                if not failing:
                    _log.warning("retention: cannot purge now: %s", e)
                failing = True
            await asyncio.sleep(self.interval)

    async def purge_once(self) -> int:
        """One pass: batches until one comes back short (or another replica is at it);
        the operations it purged."""
        before = self._clock() - self.keep_ns
        total = 0
        while True:
            purged = await self._store.purge(before, self._batch)
            if purged is None:
                break  # another replica holds the lock: this pass is its
            total += purged
            if purged and self._on_purged is not None:
                self._on_purged(purged)
            if purged < self._batch:
                break
            await asyncio.sleep(0)  # calls go on between batches
        if total:
            _log.info(
                "retention: purged %d operations done or deleted before %s",
                total,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before / 1e9)),
            )
        return total
