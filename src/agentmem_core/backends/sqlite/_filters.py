"""Filter leaves (:mod:`agentmem_core._conditions`) rendered to SQL over the token and number tables.

The meaning is the FT query's (:func:`agentmem_core.query.render_query`): AND of leaves; ``TagIn``: the
field holds one of the tokens (negated: holds none, a missing field included); ``NumRange``: the field's
number lies in the range, with exclusive bounds, bounds rounded as the FT text renders them (fixed point,
6 decimals); ``AnyOf``: an OR of AND-groups; no leaves: everything. Values are always parameters.

A memory's extra vectors are separate documents on Valkey that lack ``x_terms`` and ``x_expires_at``
(``_scripts._CHILDREN``): ``child=True`` renders the filter as those documents see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentmem_core._conditions import AnyOf, NumRange, TagIn
from agentmem_core.errors import BackendError
from agentmem_core.schema import F, format_number

from ._schema import Tables

__all__ = ["CHILD_SKIP", "Estimate", "render"]

CHILD_SKIP = frozenset({F.CONTENT, F.X_TERMS, F.X_EXPIRES_AT, F.EMBEDDING, F.VX, F.NV})
"""Fields an extra-vector document does not copy from its memory (``_scripts._CHILDREN``)."""


def _bound(value: float) -> float:
    # the FT text carries format_number(value): the engine compares with that number, so do we
    return float(format_number(value))


Estimate = Callable[[str, list[Any]], int]
"""Bounded row count of a subquery (``_tx.Tx.estimate``): picks the leaf that drives the query."""


def render(
    leaves: Sequence[Any], sql: Tables, *, child: bool = False, estimate: Estimate | None = None
) -> tuple[str, list[Any]]:
    """A boolean SQL expression on ``m.id`` (the memory table's alias) and its parameters.

    With ``estimate``, the most selective top-level positive leaf becomes ``m.id IN (...)`` (the
    planner then walks its index entries only), every other leaf a correlated ``EXISTS`` probe per
    candidate; without one (or when no leaf is positive) the memory table is scanned.

    Raises:
        BackendError: for a value that is not a filter leaf.
    """
    driver: tuple[int, str, list[Any]] | None = None
    if estimate is not None:
        best = -1
        for n, leaf in enumerate(leaves):
            found = _subquery(leaf, sql, child)
            if found is not None:
                rows = estimate(*found)
                if best < 0 or rows < best:
                    best, driver = rows, (n, *found)
    params: list[Any] = []
    if not leaves:
        return "1", params
    parts: list[str] = []
    for n, leaf in enumerate(leaves):
        if driver is not None and n == driver[0]:
            parts.append(f"m.id IN ({driver[1]})")
            params.extend(driver[2])
        else:
            parts.append(_leaf(leaf, sql, child, params))
    return "(" + " AND ".join(parts) + ")", params


def _subquery(leaf: Any, sql: Tables, child: bool) -> tuple[str, list[Any]] | None:
    """The ids a positive leaf matches, as a subquery on its index (``None``: not a positive leaf)."""
    skipped = child and getattr(leaf, "field", None) in CHILD_SKIP
    if isinstance(leaf, TagIn) and not leaf.negate and leaf.tokens and not skipped:
        marks = ", ".join("?" * len(leaf.tokens))
        statement = sql(f"SELECT id FROM {{tok}} WHERE field = ? AND token IN ({marks})")
        return statement, [leaf.field, *(t.strip().lower() for t in leaf.tokens)]
    if isinstance(leaf, NumRange) and not skipped:
        where, params = _range(leaf)
        return sql("SELECT id FROM {num} WHERE ") + where, params
    return None


def _range(leaf: NumRange) -> tuple[str, list[Any]]:
    parts = ["field = ?"]
    params: list[Any] = [leaf.field]
    if leaf.lo is not None:
        parts.append("value > ?" if leaf.lo_exclusive else "value >= ?")
        params.append(_bound(leaf.lo))
    if leaf.hi is not None:
        parts.append("value < ?" if leaf.hi_exclusive else "value <= ?")
        params.append(_bound(leaf.hi))
    return " AND ".join(parts), params


def _and(leaves: Sequence[Any], sql: Tables, child: bool, params: list[Any]) -> str:
    if not leaves:
        return "1"
    return "(" + " AND ".join(_leaf(leaf, sql, child, params) for leaf in leaves) + ")"


def _leaf(leaf: Any, sql: Tables, child: bool, params: list[Any]) -> str:
    if isinstance(leaf, TagIn):
        if (child and leaf.field in CHILD_SKIP) or not leaf.tokens:
            return "1" if leaf.negate else "0"  # the document has no such field / no token to hold
        marks = ", ".join("?" * len(leaf.tokens))
        params.append(leaf.field)
        params.extend(token.strip().lower() for token in leaf.tokens)
        probe = sql(f"SELECT 1 FROM {{tok}} WHERE field = ? AND token IN ({marks}) AND id = m.id")
        return f"{'NOT ' if leaf.negate else ''}EXISTS ({probe})"
    if isinstance(leaf, NumRange):
        if child and leaf.field in CHILD_SKIP:
            return "0"
        where, more = _range(leaf)
        params.extend(more)
        return f"EXISTS ({sql('SELECT 1 FROM {num} WHERE id = m.id AND ')}{where})"
    if isinstance(leaf, AnyOf):
        if not leaf.groups:
            return "0"
        return "(" + " OR ".join(_and(group, sql, child, params) for group in leaf.groups) + ")"
    raise BackendError(f"not a filter leaf: {leaf!r}")
