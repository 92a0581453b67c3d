"""A recall's candidates: the KNN rows and the hybrid channel's (see ``_flows_recall``).

KNN rows are widened until enough pass the filter's client-side part; the hybrid channel scores the
memories holding the query's terms by BM25 and joins them to the KNN's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._counts import TermCounts, live_count, live_count_ops
from agentmem_core._flows_read import indexed_scopes, same_scopes, scope_read
from agentmem_core._flows_scan import exhaustive_rows_flow
from agentmem_core._lexical import bm25_scores, lex_doc
from agentmem_core._limits import MAX_K
from agentmem_core._parse import as_text
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._recall_signals import window_knn
from agentmem_core.ops import FilterSearch, Knn, SearchRow, TermStats
from agentmem_core.query import Leaf, MemoryFilter, TagIn, leaf_size
from agentmem_core.schema import (
    NEVER,
    STORED_FIELDS,
    F,
    rank_fields,
)

__all__ = ["MAX_POOL", "Candidate", "hybrid_candidates_flow", "knn_fields", "knn_rows_flow"]

MAX_POOL = MAX_K
"""The widest KNN pool a recall asks for; past it, a filter the client evaluates is served exhaustively
(``_flows_scan``)."""

STATS_SCOPES = 128
"""The most scopes whose kept term counts (:class:`TermStats`) a recall sums; over more, it counts.

Reading them costs about 10 µs of server time per scope (100 scopes: 1.0 ms at 100k memories, where the
index's counts cost 2.9 ms); the index's counts cost about 0.06 µs per memory and term, so the kept
counts win from about 17 memories per scope with 10 query terms."""

Predicate = Callable[[Mapping[str, Any]], bool]
"""The client-side part of a filter, over a search row's stored fields (``MemoryFilter.client_predicate``)."""


def _alive(fields: Mapping[str, Any], now: float) -> bool:
    raw = fields.get(F.EXPIRES_AT)
    if raw is None:
        return True
    try:
        expires = float(raw)
    except ValueError:
        return True  # an unreadable value is reported when the winner is decoded
    return expires >= NEVER or expires > now


def _keeper(ctx: Context, predicate: Predicate | None) -> Callable[[Mapping[str, Any]], bool]:
    """Alive (not past its TTL at ``now``) and passing the filter's client-side part (over the row)."""
    now = ctx.now
    if predicate is None:
        return lambda fields: _alive(fields, now)
    return lambda fields: _alive(fields, now) and predicate(fields)


def knn_fields(flt: MemoryFilter, stored: bool = False) -> tuple[str, ...]:
    """The fields a KNN row of recall carries: what ranking and the client-side filter read.

    With ``stored``, every stored field too: the rows are then the hits (:func:`recall_flow`).
    """
    fields = rank_fields(lexical=False, extra=flt.client_fields())
    if stored:
        fields = (*fields, *(f for f in STORED_FIELDS if f not in fields))
    return fields


def knn_rows_flow(
    ctx: Context,
    vector: bytes,
    flt: MemoryFilter,
    k: int,
    predicate: Predicate | None,
    window: MemoryFilter | None = None,
    multiplier: int | None = None,
    stored: bool = False,
) -> Flow[list[SearchRow]]:
    """KNN rows that are alive and pass ``predicate``; widens the pool until ``k`` pass or none are left.

    The first pool is ``k × multiplier`` (default: the store's ``candidate_multiplier``). When the widest
    pool still holds fewer than ``k`` passing rows, the exhaustive channel answers (a page is never short
    because a condition ran on the client). With a ``window`` (the filter narrowed to the query's time),
    its nearest rows join the first pool, in the same round trip. ``stored``: the rows also carry every
    stored field (a row of an extra-vector document all but the content: see :func:`_whole_rows`).
    """
    leaves = tuple(flt.scope_leaves())
    fields = knn_fields(flt, stored)
    keep = _keeper(ctx, predicate)
    times = ctx.config.candidate_multiplier if multiplier is None else multiplier
    pool = first = min(MAX_POOL, k * times)
    plan = ctx.knn_plan
    near: list[SearchRow] = []
    extra = window_knn(window, vector, k, fields)
    while True:
        counts = plan.counts_needed(flt, ctx.now, ctx.engine.max_leaves) if plan is not None else []
        found, *counted = yield batch(
            [_knn(ctx, leaves, vector, pool, fields), *(op for _, op in counts), *extra]
        )
        if extra:  # the window's nearest rows, asked for once
            near, extra = [r for r in expect(counted.pop()).rows if keep(r.fields)], []
        if plan is not None:
            plan.learn([(key, expect(reply)) for (key, _), reply in zip(counts, counted)])
        found = expect(found)
        passing = [r for r in found.rows if keep(r.fields)]
        if len(passing) >= k or found.returned < pool:
            return _with(passing, near)
        if pool >= MAX_POOL:  # as many candidates as the first pool would have given
            return _with((yield from _exhaustive(ctx, vector, flt, first)), near)
        pool = min(MAX_POOL, pool * 4)


def _with(rows: list[SearchRow], more: list[SearchRow]) -> list[SearchRow]:
    """``rows`` and then those of ``more`` that are not among them."""
    seen = {r.id for r in rows}
    return rows + [r for r in more if r.id not in seen]


def _knn(ctx: Context, leaves: tuple[Leaf, ...], vector: bytes, pool: int, fields: tuple[str, ...]) -> Knn:
    """The KNN request, in the batches the planner chose for this filter and pool (none: one query)."""
    plan = ctx.knn_plan
    return Knn(leaves, vector, pool, fields, plan is not None and plan.batches(leaves, pool))


def _exhaustive(ctx: Context, vector: bytes, flt: MemoryFilter, pool: int) -> Flow[list[SearchRow]]:
    query = np.frombuffer(vector, dtype="<f4")
    return (yield from exhaustive_rows_flow(ctx, query, flt, pool))


@dataclass(slots=True)
class Candidate:
    """A recall candidate from either channel (``distance`` is filled in later for lexical-only ones)."""

    id: str
    fields: dict[str, Any]
    distance: float | None
    in_knn: bool
    lexical: float | None = None
    relevance: float = 0.0
    lexical_scaled: float = 0.0
    importance: float = 0.5
    created_at: float = 0.0
    stored: dict[str, Any] | None = None
    counters: Sequence[Any] | None = ()
    time_fit: float | None = None  # how created_at fits the query's dates (None: it names none)
    rerank: float | None = None  # the store's reranker's score, when one ran


def term_leaves(leaves: Sequence[Leaf], terms: Sequence[str]) -> tuple[Leaf, ...]:
    """The filter plus a predicate on the analysed-terms TAG field: memories holding any of ``terms``."""
    return (*leaves, TagIn(F.X_TERMS, tuple(terms)))


def lexical_fits(ctx: Context, flt: MemoryFilter) -> bool:
    """Whether a term predicate still fits the engine's predicate budget next to the filter."""
    return sum(leaf_size(leaf) for leaf in flt.leaves(ctx.now)) < ctx.engine.max_leaves


def _whole_scopes(flt: MemoryFilter) -> bool:
    """Whether a recall's filter pushes only scope fields into the index (it selects whole scopes)."""
    if flt.current is not None and not flt.current_on_client:
        return False
    return replace(flt, current=None, current_on_client=False).is_scope_only()


def _holds_any(row_fields: Mapping[str, Any], terms: AbstractSet[str]) -> bool:
    """Whether a row's stored term sequence (content and context) holds one of ``terms``."""
    return any(token in terms for token in as_text(row_fields.get(F.LEX) or b"").split())


def hybrid_candidates_flow(
    ctx: Context,
    vector: bytes,
    flt: MemoryFilter,
    terms: list[str],
    k: int,
    predicate: Predicate | None,
    window: MemoryFilter | None = None,
) -> Flow[list[Candidate]]:
    """Both channels in one round trip; candidates keyed by id.

    The vector channel is the KNN pool. The lexical channel scores BM25 on the client: per query term
    the engine counts its document frequency under the filter, and the memories holding a rare term
    (one held by at most ``lexical_term_pool`` memories) are candidates. They come from one more query,
    the union of the terms not known to be common, so a memory holding several of them comes once. A
    common term is only counted: its memories would be an arbitrary sample, and every candidate (found
    by a rarer term or the KNN pool) is scored for it anyway. When the union came back cut short (a term
    not known to be common was), or a term known to be common is rare now, the union of the rare terms
    is asked for in one more round trip, so the result never depends on what the store knew. One more
    count gives the filter's size. The ``pool`` best-scoring documents form the lexical channel. Every
    count is of live memories (``_counts``): the filter's size is its matches minus its expired ones,
    each term's frequency its matches minus the listed expired memories that hold it.

    When the filter selects whole scopes (scope fields only) and they are known from the last recall of
    that selection (at most :data:`STATS_SCOPES`), the counts come from the scopes' term counts kept at
    write time (:class:`TermStats`: one script call in the same round trip, with the scope index read
    that confirms the scopes) instead of a count of postings per term, whose cost grows with the
    scope (at 100k memories one common term's count cost 0.3-12 ms of server time). When those counts
    cannot tell, or the scopes changed, the index counts, in one more round trip: the same numbers.
    """
    leaves = tuple(flt.leaves(ctx.now))
    knn_leaves = tuple(flt.scope_leaves())
    fields = rank_fields(lexical=True, extra=flt.client_fields())
    pool = first = min(MAX_POOL, max(ctx.config.hybrid_pool, k * ctx.config.candidate_multiplier))
    plan = ctx.knn_plan
    counts = (
        plan.counts_needed(flt, ctx.now, ctx.engine.max_leaves, matches=False) if plan is not None else []
    )
    term_pool = ctx.config.lexical_term_pool
    selection = tuple(knn_leaves)
    common = ctx.terms.common(selection, terms, term_pool) if ctx.terms is not None else frozenset()
    asked = [t for t in terms if t not in common]
    # one term asked: its own count is its union (the query that counts it returns the rows too)
    alone = asked[0] if len(asked) == 1 else None
    alone_ops = [FilterSearch(term_leaves(leaves, (alone,)), term_pool, fields)] if alone is not None else []
    counted = TermCounts(knn_leaves, tuple(t for t in terms if t != alone), ctx.now)
    # Whole scopes selected, and known from last time: their term counts kept at write time answer (one
    # script call, a few hash reads) instead of a count of postings per term. Else, or when they cannot
    # tell, every count is a live count of the index (``_counts``).
    read = scope_read(ctx, flt) if _whole_scopes(flt) else None
    guess = read[1] if read is not None else None
    stats = guess is not None and len(guess) <= STATS_SCOPES
    stat_ops: list[Any] = []
    if read is not None and (guess is None or stats):  # the scopes, confirmed (or learnt for next time)
        stat_ops.append(read[0])
    if stats:
        assert guess is not None
        stat_ops.append(TermStats(tuple(s.tag for s in guess), knn_leaves, tuple(terms), ctx.now))
    size_ops = () if stats else live_count_ops(knn_leaves, ctx.now)
    term_ops = [] if stats else counted.ops()
    union = []
    if len(asked) > 1:
        union.append(FilterSearch(term_leaves(leaves, asked), term_pool * len(asked), fields))
    window_ops = window_knn(window, vector, k, fields)
    replies = yield batch([
        _knn(ctx, knn_leaves, vector, pool, fields),
        *stat_ops,
        *size_ops,
        *alone_ops,
        *term_ops,
        *union,
        *(op for _, op in counts),
        *window_ops,
    ])  # fmt: skip
    at = 1 + len(stat_ops)
    size_replies = replies[at : at + len(size_ops)]
    at += len(size_ops)
    alone_reply: Any = replies[at] if alone_ops else None
    at += len(alone_ops)
    term_replies = replies[at : at + len(term_ops)]
    at += len(term_ops)
    kept: Any = None
    if stat_ops:
        scopes = yield from indexed_scopes(ctx, flt, replies[1])
        if stats and guess is not None and same_scopes(scopes, guess):
            kept = expect(replies[2])
    live_df: dict[str, int]
    if kept is not None:
        n_docs, frequencies = kept
        live_df = dict(zip(terms, frequencies))
    else:
        if stats:  # the kept counts could not tell (or the scopes changed): count, one more round trip
            size_ops, term_ops = live_count_ops(knn_leaves, ctx.now), counted.ops()
            more = yield batch([*size_ops, *term_ops])
            size_replies, term_replies = more[: len(size_ops)], more[len(size_ops) :]
        n_docs = live_count(size_replies)
        found_df = counted.read(term_replies)
        if found_df is None:  # the expired memories could not all be listed: count them per term
            fallback = yield batch(counted.fallback_ops())
            found_df = counted.read_fallback(term_replies, fallback)
        live_df = found_df
        if alone is not None:
            live_df[alone] = expect(alone_reply)[0]
    df: dict[str, int] = {t: live_df[t] for t in terms}
    union_reply = replies[at] if union else None
    at += len(union)
    count_replies = replies[at : at + len(counts)]
    rare = [t for t in terms if df[t] <= term_pool]
    rows: list[tuple[str, dict[str, Any]]] = []
    complete = False
    if asked:
        total, rows = expect(alone_reply if alone is not None else union_reply)
        complete = total <= term_pool * len(asked) and set(rare) <= set(asked)
    if rare and not complete:  # cut short, or a term known to be common is rare now
        (again,) = yield batch([FilterSearch(term_leaves(leaves, rare), term_pool * len(rare), fields)])
        rows = expect(again)[1]
    if ctx.terms is not None:
        ctx.terms.counted(selection, df.items())
    if plan is not None:  # the filter's count is the lexical channel's own (sent on every hybrid recall)
        plan.learn(
            [
                (plan.key(flt), (n_docs, [])),
                *((key, expect(r)) for (key, _), r in zip(counts, count_replies)),
            ]
        )
    keep = _keeper(ctx, predicate)
    found = expect(replies[0])
    knn_rows = [r for r in found.rows if keep(r.fields)]
    # The vector channel alone must be able to fill the page: when a client-side condition or expiry
    # dropped rows from a full KNN page, widen it (the lexical replies stay valid: they do not depend
    # on the pool).
    while len(knn_rows) < k and found.returned >= pool:
        if pool >= MAX_POOL:
            knn_rows = yield from _exhaustive(ctx, vector, flt, first)
            break
        pool = min(MAX_POOL, pool * 4)
        (found,) = yield batch([_knn(ctx, knn_leaves, vector, pool, fields)])
        found = expect(found)
        knn_rows = [r for r in found.rows if keep(r.fields)]
    live: dict[str, Candidate] = {}
    for row in knn_rows:
        live[row.id] = Candidate(row.id, row.fields, row.distance, True)
    if window_ops:  # the window's nearest memories join the vector channel
        for row in expect(replies[-1]).rows:
            if row.id not in live and keep(row.fields):
                live[row.id] = Candidate(row.id, row.fields, row.distance, True)
    wanted_rare = frozenset(rare)
    for memory_id, row_fields in rows:
        if memory_id not in live and keep(row_fields) and _holds_any(row_fields, wanted_rare):
            live[memory_id] = Candidate(memory_id, row_fields, None, False)
    wanted = set(terms)
    docs = {memory_id: lex_doc(as_text(c.fields.get(F.LEX) or b""), wanted) for memory_id, c in live.items()}
    avgdl = sum(length for _, length in docs.values()) / len(docs) if docs else 0.0
    scores = bm25_scores(terms, docs, df, n_docs, avgdl)
    for memory_id, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:pool]:
        live[memory_id].lexical = score
    return [c for c in live.values() if c.in_knn or c.lexical is not None]
