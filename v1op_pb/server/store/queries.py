"""The SQL a list runs, the same for every engine but for its parameter marks."""

from __future__ import annotations

from .base import Query

__all__ = ["page_order", "where_of"]


def where_of(query: Query, mark: str) -> tuple[str, list[str | int | bool]]:
    """The WHERE condition of ``query`` (without its cursor), and its parameters, with
    ``mark`` as the parameter placeholder (``?`` or ``%s``)."""
    where = ["1 = 1"]
    params: list[str | int | bool] = []
    for column, value in (("creator", query.creator), ("done", query.done), ("seen", query.seen)):
        if value is not None:
            where.append(f"{column} = {mark}")
            params.append(value)
    if query.deleted is not None:
        where.append("deleted" if query.deleted else "NOT deleted")
    if query.states is not None:
        states = sorted(query.states)
        if not states:
            where.append("1 = 0")
        else:
            where.append(f"state IN ({', '.join([mark] * len(states))})")
            params.extend(states)
    return " AND ".join(where), params


def page_order(query: Query, mark: str) -> tuple[str, list[int]]:
    """The cursor condition and the ORDER BY of a page: creation order (``seq``), newest
    first with ``query.newest_first``, after (or before) the cursor ``query.after``."""
    if query.newest_first:
        if query.after > 0:
            return f"seq < {mark} ORDER BY seq DESC", [query.after]
        return "1 = 1 ORDER BY seq DESC", []
    return f"seq > {mark} ORDER BY seq", [query.after]
