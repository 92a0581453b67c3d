"""Recall's optional signals: the window of time a query names, and the store's reranker.

Both are decided here and sent by the recall flow (``_flows_recall``): the window narrows one more KNN
request (sent in the search's round trip) and feeds ``time_fit`` into the composite; the reranker is one
``Invoke`` after the fetch, over the composite's best ``rerank_depth`` candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from agentmem_core._context import Context
from agentmem_core._parse import as_text
from agentmem_core._plan import Flow, Invoke
from agentmem_core._timeref import TimeWindow, find_time_window, window_range
from agentmem_core.config import ScoringConfig
from agentmem_core.ops import Knn
from agentmem_core.query import MemoryFilter, leaf_size
from agentmem_core.rerank import Reranker, check_scores
from agentmem_core.schema import F

if TYPE_CHECKING:
    from agentmem_core._flows_candidates import Candidate

WINDOW_POOL = 2
"""With a query that names a time, the ``k * WINDOW_POOL`` nearest memories of that time join the pool."""

Ranked = tuple["Candidate", float, float]
"""A ranked candidate: ``(candidate, composite score, recency)``."""


def query_window(ctx: Context, query: object, scoring: ScoringConfig) -> TimeWindow | None:
    """The window of time a text query names, when time-aware recall is on (``weights.time > 0``)."""
    if not isinstance(query, str) or scoring.weights.time <= 0:
        return None
    return find_time_window(query, ctx.now, scoring.tz)


def window_filter(ctx: Context, flt: MemoryFilter, window: TimeWindow | None) -> MemoryFilter | None:
    """The filter narrowed to memories created in (or just after) the query's window of time.

    ``None``: no window, it leaves nothing, or its range leaf would not fit the engine's budget.
    """
    if window is None:
        return None
    lo, hi = window_range(window)
    if flt.created_after is not None:
        lo = max(lo, flt.created_after)
    if flt.created_before is not None:
        hi = min(hi, flt.created_before)
    narrowed = replace(flt, created_after=lo, created_before=hi)
    if narrowed.is_unsatisfiable():
        return None
    if sum(leaf_size(leaf) for leaf in narrowed.scope_leaves()) > ctx.engine.max_leaves:
        return None
    return narrowed


def window_knn(window: MemoryFilter | None, vector: bytes, k: int, fields: tuple[str, ...]) -> list[Knn]:
    """The extra KNN request over the query's window (``k * WINDOW_POOL`` rows); none without one."""
    if window is None:
        return []
    return [Knn(tuple(window.scope_leaves()), vector, k * WINDOW_POOL, fields, False)]


def rerank_flow(reranker: Reranker, query: str, ranked: Sequence[Ranked], depth: int) -> Flow[list[Ranked]]:
    """``ranked`` with its first ``depth`` rows in the reranker's order.

    The rows are ``(candidate, composite score, recency)``, fetched; each of the first ``depth`` gets
    its ``rerank`` score. Equal scores keep the composite's order.
    """
    head = list(ranked[:depth])
    texts = [_content(row[0]) for row in head]
    raw = yield Invoke(
        lambda: reranker.rerank(query, texts), lambda: reranker.arerank(query, texts), "reranker"
    )
    for row, value in zip(head, check_scores(raw, len(head))):
        row[0].rerank = value
    head.sort(key=lambda row: -(row[0].rerank or 0.0))  # stable; every head row has its score
    return head + list(ranked[depth:])


def _content(candidate: Candidate) -> str:
    return as_text(candidate.stored.get(F.CONTENT) or b"") if candidate.stored else ""
