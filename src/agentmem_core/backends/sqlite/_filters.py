"""Filter leaves (:mod:`agentmem_core._conditions`) rendered to SQL over the token and number tables.

The meaning is the FT query's (:func:`agentmem_core.query.render_query`): AND of leaves; ``TagIn``: the
field holds one of the tokens (negated: holds none, a missing field included); ``NumRange``: the field's
number lies in the range, with exclusive bounds, bounds rounded as the FT text renders them (fixed point,
6 decimals); ``AnyOf``: an OR of AND-groups; no leaves: everything. Values are always parameters.

A memory's extra vectors are separate documents on Valkey that lack ``x_terms`` and hold an
``x_expires_at`` long past (``_scripts._CHILDREN``, ``schema.CHILD_EXPIRES_AT``): ``child=True`` renders
the filter as those documents see it.

:func:`row_mask` evaluates the same meaning in memory, over the vector cache's postings (a
:class:`~agentmem_core.ops.Knn` filter: a few numpy operations per leaf instead of a SQL query that
yields every matching id); :func:`render` is for the filter-only searches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agentmem_core._conditions import AnyOf, NumRange, TagIn
from agentmem_core.errors import BackendError
from agentmem_core.schema import CHILD_EXPIRES_AT, F, format_number

from ._schema import Tables
from ._vectors import VectorCache

__all__ = ["CHILD_SKIP", "Estimate", "Postings", "memory_mask", "render", "row_mask"]

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
    """A boolean SQL expression on ``m.rid`` (the memory table's alias) and its parameters.

    With ``estimate``, the most selective top-level positive leaf becomes ``m.rid IN (...)`` (the
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
            parts.append(f"m.rid IN ({driver[1]})")
            params.extend(driver[2])
        else:
            parts.append(_leaf(leaf, sql, child, params))
    return "(" + " AND ".join(parts) + ")", params


def _subquery(leaf: Any, sql: Tables, child: bool) -> tuple[str, list[Any]] | None:
    """The rows a positive leaf matches, as a subquery on its index (``None``: not a positive leaf)."""
    skipped = child and getattr(leaf, "field", None) in CHILD_SKIP
    if isinstance(leaf, TagIn) and not leaf.negate and leaf.tokens and not skipped:
        marks = ", ".join("?" * len(leaf.tokens))
        statement = sql(f"SELECT rid FROM {{tok}} WHERE field = ? AND token IN ({marks})")
        return statement, [leaf.field, *(t.strip().lower() for t in leaf.tokens)]
    if isinstance(leaf, NumRange) and not skipped:
        where, params = _range(leaf)
        return sql("SELECT rid FROM {num} WHERE ") + where, params
    return None


def _child_holds(leaf: NumRange) -> bool:
    """Whether a child vector document matches (of the numbers it skips it holds CHILD_EXPIRES_AT only)."""
    if leaf.field != F.X_EXPIRES_AT:
        return False
    return bool(_in_range(leaf, np.array([float(CHILD_EXPIRES_AT)]))[0])


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
        probe = sql(f"SELECT 1 FROM {{tok}} WHERE field = ? AND token IN ({marks}) AND rid = m.rid")
        return f"{'NOT ' if leaf.negate else ''}EXISTS ({probe})"
    if isinstance(leaf, NumRange):
        if child and leaf.field in CHILD_SKIP:
            return "1" if _child_holds(leaf) else "0"
        where, more = _range(leaf)
        params.extend(more)
        return f"EXISTS ({sql('SELECT 1 FROM {num} WHERE rid = m.rid AND ')}{where})"
    if isinstance(leaf, AnyOf):
        if not leaf.groups:
            return "0"
        return "(" + " OR ".join(_and(group, sql, child, params) for group in leaf.groups) + ")"
    raise BackendError(f"not a filter leaf: {leaf!r}")


# -- in memory, over the vector cache's postings ------------------------------------------------------------
Mask = npt.NDArray[np.bool_]


class Postings:
    """Loads the postings a filter needs into the cache (``tag``/``numbers``: the SQL loaders)."""

    def __init__(
        self,
        cache: VectorCache,
        tag: Callable[[str, str], Iterable[str]],
        numbers: Callable[[str], Iterable[tuple[str, float]]],
        universe: Callable[[], Iterable[tuple[str, int | None]]],
    ) -> None:
        self.cache = cache
        self._tag = tag
        self._numbers = numbers
        self._universe = universe
        self._loaded: dict[tuple[str, str], Mask] = {}
        """The masks loaded for this evaluation (one may have been evicted from the cache since)."""

    def mask(self, field: str, token: str, n: int) -> Mask:
        """A needed TAG token's mask over the first ``n`` slots."""
        found = self.cache.tag(field, token)  # current (grown with the slots) unless evicted since
        if found is None:  # evicted by a later load of the same evaluation: slots added since hold none
            found = self._loaded[field, token]
        if found.shape[0] < n:
            found = np.concatenate([found, np.zeros(n - found.shape[0], dtype=bool)])
        return found[:n]

    def need_universe(self) -> None:
        """Load every memory's slot and deadline (what a filter-only search counts over)."""
        if not self.cache.universe:
            self.cache.load_universe(self._universe())

    def need(self, leaves: Sequence[Any]) -> None:
        """Load every posting the leaves read (before evaluating: loading may add slots)."""
        cache = self.cache
        for leaf in leaves:
            if isinstance(leaf, TagIn):
                for token in leaf.tokens:
                    token = token.strip().lower()
                    mask = cache.tag(leaf.field, token)
                    if mask is None:
                        mask = cache.load_tag(leaf.field, token, self._tag(leaf.field, token))
                    self._loaded[leaf.field, token] = mask
            elif isinstance(leaf, NumRange):
                if leaf.field not in cache.numbers:
                    cache.load_numbers(leaf.field, self._numbers(leaf.field))
            elif isinstance(leaf, AnyOf):
                for group in leaf.groups:
                    self.need(group)
            else:
                raise BackendError(f"not a filter leaf: {leaf!r}")


def row_mask(leaves: Sequence[Any], postings: Postings) -> Mask:
    """The cache rows (vector documents) the filter matches, dead rows left out: :func:`render`'s meaning.

    Raises:
        BackendError: for a value that is not a filter leaf.
    """
    cache = postings.cache
    postings.need(leaves)
    n, size = cache.n_slots, cache.size
    slot = cache.row_slot[:size]
    out = _and_mask(leaves, postings, n, False)[slot]
    if cache.has_extra:
        child = cache.child[:size]
        out = np.where(child, _and_mask(leaves, postings, n, True)[slot], out)
    out &= ~cache.dead[:size]
    return out


def memory_mask(leaves: Sequence[Any], postings: Postings) -> Mask:
    """The memory slots the filter matches (before the real-time deadline test), :func:`render`'s meaning.

    Raises:
        BackendError: for a value that is not a filter leaf.
    """
    postings.need_universe()
    postings.need(leaves)
    cache = postings.cache
    n = cache.n_slots
    return _and_mask(leaves, postings, n, False) & cache.present[:n]


def _and_mask(leaves: Sequence[Any], postings: Postings, n: int, child: bool) -> Mask:
    out = np.ones(n, dtype=bool)
    for leaf in leaves:
        out &= _leaf_mask(leaf, postings, n, child)
    return out


def _leaf_mask(leaf: Any, postings: Postings, n: int, child: bool) -> Mask:
    if isinstance(leaf, TagIn):
        if (child and leaf.field in CHILD_SKIP) or not leaf.tokens:
            return np.full(n, leaf.negate, dtype=bool)
        held = np.zeros(n, dtype=bool)
        for token in leaf.tokens:
            held |= postings.mask(leaf.field, token.strip().lower(), n)
        return ~held if leaf.negate else held
    if isinstance(leaf, NumRange):
        if child and leaf.field in CHILD_SKIP:
            return np.full(n, _child_holds(leaf), dtype=bool)
        return _in_range(leaf, postings.cache.numbers[leaf.field][:n])
    if isinstance(leaf, AnyOf):
        out = np.zeros(n, dtype=bool)
        for group in leaf.groups:
            out |= _and_mask(group, postings, n, child)
        return out
    raise BackendError(f"not a filter leaf: {leaf!r}")


def _in_range(leaf: NumRange, values: npt.NDArray[np.float64]) -> Mask:
    """Which of ``values`` lie in the leaf's range (NaN: the document has no such number)."""
    out = ~np.isnan(values)
    if leaf.lo is not None:
        lo = _bound(leaf.lo)
        out &= (values > lo) if leaf.lo_exclusive else (values >= lo)
    if leaf.hi is not None:
        hi = _bound(leaf.hi)
        out &= (values < hi) if leaf.hi_exclusive else (values <= hi)
    return out
