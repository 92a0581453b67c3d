"""Filter leaves (:mod:`agentmem_core._conditions`) rendered to SQL over the token and number tables.

The meaning is the FT query's (:func:`agentmem_core.query.render_query`): AND of leaves; ``TagIn``: the
field holds one of the tokens (negated: holds none, a missing field included); ``NumRange``: the field's
number lies in the range, with exclusive bounds, bounds rounded as the FT text renders them (fixed point,
6 decimals); ``AnyOf``: an OR of AND-groups; no leaves: everything. Values are always parameters.

A memory's extra vectors are separate documents on Valkey that lack ``x_terms`` and ``x_expires_at``
(``_scripts._CHILDREN``): ``child=True`` renders the filter as those documents see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentmem_core._conditions import AnyOf, NumRange, TagIn
from agentmem_core.errors import BackendError
from agentmem_core.schema import F, format_number

from ._schema import Tables

__all__ = ["CHILD_SKIP", "render"]

CHILD_SKIP = frozenset({F.CONTENT, F.X_TERMS, F.X_EXPIRES_AT, F.EMBEDDING, F.VX, F.NV})
"""Fields an extra-vector document does not copy from its memory (``_scripts._CHILDREN``)."""


def _bound(value: float) -> float:
    # the FT text carries format_number(value): the engine compares with that number, so do we
    return float(format_number(value))


def render(leaves: Sequence[Any], sql: Tables, *, child: bool = False) -> tuple[str, list[Any]]:
    """A boolean SQL expression on ``m.id`` (the memory table's alias) and its parameters.

    Raises:
        BackendError: for a value that is not a filter leaf.
    """
    params: list[Any] = []
    text = _and(leaves, sql, child, params)
    return text, params


def _and(leaves: Sequence[Any], sql: Tables, child: bool, params: list[Any]) -> str:
    if not leaves:
        return "1"
    return "(" + " AND ".join(_leaf(leaf, sql, child, params) for leaf in leaves) + ")"


def _leaf(leaf: Any, sql: Tables, child: bool, params: list[Any]) -> str:
    if isinstance(leaf, TagIn):
        if child and leaf.field in CHILD_SKIP:
            return "1" if leaf.negate else "0"  # the document has no such field
        if not leaf.tokens:
            return "1" if leaf.negate else "0"
        marks = ", ".join("?" * len(leaf.tokens))
        params.append(leaf.field)
        params.extend(token.strip().lower() for token in leaf.tokens)
        inner = sql(f"SELECT id FROM {{tok}} WHERE field = ? AND token IN ({marks})")
        return f"m.id {'NOT IN' if leaf.negate else 'IN'} ({inner})"
    if isinstance(leaf, NumRange):
        if child and leaf.field in CHILD_SKIP:
            return "0"
        parts = ["field = ?"]
        params.append(leaf.field)
        if leaf.lo is not None:
            parts.append("value > ?" if leaf.lo_exclusive else "value >= ?")
            params.append(_bound(leaf.lo))
        if leaf.hi is not None:
            parts.append("value < ?" if leaf.hi_exclusive else "value <= ?")
            params.append(_bound(leaf.hi))
        return f"m.id IN ({sql('SELECT id FROM {num} WHERE ')}{' AND '.join(parts)})"
    if isinstance(leaf, AnyOf):
        if not leaf.groups:
            return "0"
        return "(" + " OR ".join(_and(group, sql, child, params) for group in leaf.groups) + ")"
    raise BackendError(f"not a filter leaf: {leaf!r}")
