"""The recall flow: search (KNN, plus client-side BM25 when hybrid), rank, fetch and reinforce.

Round trips of a recall:

1. The search. Every candidate comes back with only what ranking needs (distance, importance,
   created_at, expires_at; ``lex`` when hybrid; ``metadata`` when a metadata condition runs on the
   client). Never the content or the vector: the engine's per-row field loading is most of a wide
   FT.SEARCH's cost, and parsing it most of a naive client's.
2. One FETCH script call (per hash slot on a cluster, one in all on a standalone server) for the
   candidates that can still make the top ``k``: their counters and stored fields, and, when no more
   than ``k`` candidates can make the top ``k`` (the usual case), their reinforcement.
3. Only when more than ``k`` candidates were still in the running (or a threshold is set): the
   reinforcement of the winners.

A recall ranked by similarity alone, not reinforced and asked for no counters (``counters=False``) is one
round trip: its KNN rows carry every stored field and are the hits. The candidates themselves (KNN rows,
the hybrid channel) come from ``_flows_candidates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._flows_candidates import (
    MAX_POOL,
    Candidate,
    hybrid_candidates_flow,
    knn_rows_flow,
    lexical_fits,
)
from agentmem_core._lexical import fuse_scores, query_terms
from agentmem_core._limits import MAX_K
from agentmem_core._plan import Embed, Flow, batch, expect
from agentmem_core._recall_signals import query_window, rerank_flow, window_filter
from agentmem_core._refresh import refresh_flow, refreshed
from agentmem_core._timeref import TimeWindow, time_fit
from agentmem_core.config import ScoringConfig
from agentmem_core.embeddings import Vectors, validate_vectors, vector_to_bytes
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.facts import decode_state
from agentmem_core.ops import Fetch, ReadMemories
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import (
    STORED_FIELDS,
    F,
    decode_memory,
    format_number,
)
from agentmem_core.scoring import composite, recency, similarity_from_distance
from agentmem_core.types import NearMiss, RecallHit, RecallResult, ScoreBreakdown, build_frozen

__all__ = ["MAX_K", "MAX_POOL", "recall_flow"]

def query_vector_flow(query: str | Sequence[float] | np.ndarray, dims: int) -> Flow[Vectors]:
    """Embed a text query, or validate a caller's vector."""
    if isinstance(query, str):
        if not query.strip():
            raise InvalidMemoryError("recall query must be a non-empty string")
        raw = yield Embed((query,), is_query=True)
        return validate_vectors(raw, dims, expected=1)
    return validate_vectors([query], dims, expected=1)  # type: ignore[list-item]


def assign_relevance(candidates: Sequence[Candidate], lexical_weight: float) -> None:
    """Relevance per candidate: similarity (vector-only), or the fused channels (hybrid)."""
    lexical_raw = {c.id: c.lexical for c in candidates if c.lexical is not None}
    if not lexical_raw:
        for c in candidates:
            c.relevance = similarity_from_distance(c.distance if c.distance is not None else 2.0)
        return
    dense_raw = {
        c.id: similarity_from_distance(c.distance) for c in candidates if c.in_knn and c.distance is not None
    }
    fused = fuse_scores(dense_raw, lexical_raw, lexical_weight)
    for c in candidates:
        c.relevance, c.lexical_scaled = fused.get(c.id, (0.0, 0.0))


def derivations(candidates: Sequence[Candidate]) -> dict[str, set[str]]:
    """Which candidates stand for the same evidence: a distilled fact and the sources it cites.

    Returns:
        For each candidate in such a pair, the ids of its partners among the candidates (``{}``: none).
    """
    ids = {c.id for c in candidates}
    partners: dict[str, set[str]] = {}
    for c in candidates:
        raw = c.fields.get(F.FACT)
        state = decode_state(raw) if raw else None
        if state is None or not state.sources:
            continue
        for source in state.sources:
            if source in ids and source != c.id:
                partners.setdefault(c.id, set()).add(source)
                partners.setdefault(source, set()).add(c.id)
    return partners


def one_per_evidence(
    ranked: list[tuple[Candidate, float, float]], partners: dict[str, set[str]]
) -> list[tuple[Candidate, float, float]]:
    """The ranking with the lower-ranked of a fact and its source dropped.

    They are one piece of evidence: the fact restates what its sources said (``consolidate_facts``).
    """
    if not partners:
        return ranked
    seen: set[str] = set()
    out = []
    for entry in ranked:
        memory_id = entry[0].id
        if memory_id in seen:
            continue
        out.append(entry)
        seen.update(partners.get(memory_id, ()))
    return out


def _read_rank_fields(candidates: Sequence[Candidate], window: TimeWindow | None) -> None:
    for c in candidates:
        importance = c.fields.get(F.IMPORTANCE)
        created = c.fields.get(F.CREATED_AT)
        try:
            c.importance = float(importance) if importance is not None else 0.5
            c.created_at = float(created) if created is not None else 0.0
        except ValueError:  # unreadable: rank it as a default; decoding the winner reports the error
            c.importance, c.created_at = 0.5, 0.0
        if window is not None:
            c.time_fit = time_fit(c.created_at, window)


def plausible(
    ctx: Context, candidates: Sequence[Candidate], k: int, scoring: ScoringConfig
) -> list[Candidate]:
    """Candidates that can still reach the top ``k`` whatever their counters say.

    Recency is between ``recency(created_at)`` (never accessed since) and 1 (just accessed), so a
    candidate whose best case is below the k-th best worst case cannot make the cut: its counters need
    not be read. With the default weights this leaves about ``k`` candidates.
    """
    if len(candidates) <= k:
        return list(candidates)
    half_life, now = scoring.half_life_seconds, ctx.now
    bounds = []
    for c in candidates:
        rec = recency(now, c.created_at, half_life)
        low = composite(c.relevance, rec, c.importance, scoring, c.time_fit)
        high = composite(c.relevance, 1.0, c.importance, scoring, c.time_fit)  # best case: accessed now
        bounds.append((low, high, c))
    kth_low = sorted((b[0] for b in bounds), reverse=True)[k - 1]
    # ">=": a candidate whose best case ties the k-th worst case can still make the cut (with a frozen
    # clock or a zero recency weight every bound is a tie, and ">" would drop them all).
    return [c for low, high, c in bounds if high >= kth_low]


def fetch_op(
    ctx: Context, candidates: Sequence[Candidate], *, reinforce: bool, fields: Sequence[str]
) -> Fetch:
    """The Fetch of candidates (counters kept outside the index: reinforcing never re-indexes a document)."""
    return Fetch(tuple(c.id for c in candidates), reinforce, format_number(ctx.now), tuple(fields))


def _count(raw: Any) -> int:
    return int(raw) if raw else 0


def _rank(
    ctx: Context, candidates: Sequence[Candidate], scoring: ScoringConfig, k: int
) -> list[tuple[Candidate, float, float]]:
    """The top ``k`` as ``(candidate, composite score, recency)``, best first (ties: closer, then id)."""
    half_life, now = scoring.half_life_seconds, ctx.now
    scored = []
    for c in candidates:
        last = c.counters[1] if c.counters else None
        rec = recency(now, float(last) if last else c.created_at, half_life)
        scored.append((c, composite(c.relevance, rec, c.importance, scoring, c.time_fit), rec))
    scored.sort(key=lambda t: (-t[1], t[0].distance if t[0].distance is not None else 2.0, t[0].id))
    return scored[:k]


def _whole_rows(chosen: list[Candidate]) -> Flow[list[Candidate]]:
    """``chosen`` with their stored fields (no counters), from the KNN rows that carry every one.

    A memory's extra vectors (``remember(texts=...)``) are documents of their own that copy its indexed
    fields but not its content: such a row is read from the memory itself (one more round trip, only when
    one of them is among the hits; a memory deleted since the search is then no hit).
    """
    unread = []
    for c in chosen:
        c.counters = None
        if F.CONTENT in c.fields:
            c.stored = c.fields
        else:
            unread.append(c)
    if not unread:
        return chosen
    (read,) = yield batch([ReadMemories(tuple(c.id for c in unread), STORED_FIELDS)])
    gone = set()
    for c, (values, _) in zip(unread, expect(read)):
        if values is None:
            gone.add(c.id)
        else:
            c.stored = dict(zip(STORED_FIELDS, values))
    return [c for c in chosen if c.id not in gone]


def _fetched(
    ctx: Context,
    chosen: list[Candidate],
    missing: Sequence[Candidate],
    reinforce: bool,
    query_vector: np.ndarray,
) -> Flow[list[Candidate]]:
    """``chosen`` with their counters and stored fields (and ``missing``'s distances), in one round trip.

    ``reinforce``: the fetch also reinforces them (the hits are known before their counters are).
    """
    requests: list[Any] = [fetch_op(ctx, chosen, reinforce=reinforce, fields=STORED_FIELDS)]
    if missing:
        requests.append(ReadMemories(tuple(c.id for c in missing), (F.EMBEDDING, F.VX)))
    replies = yield batch(requests)
    fetched = expect(replies[0])
    dims = ctx.spec.config.dims
    for candidate, (values, _) in zip(missing, expect(replies[1]) if missing else ()):
        raw, extra = values or (None, None)
        if isinstance(raw, bytes) and len(raw) == 4 * dims:
            stored = np.frombuffer(raw, dtype="<f4")
            if isinstance(extra, bytes) and extra and len(extra) % (4 * dims) == 0:  # its closest vector
                stored = np.vstack([stored, np.frombuffer(extra, dtype="<f4").reshape(-1, dims)])
            best = float(np.max(stored @ query_vector))
            candidate.distance = max(0.0, min(2.0, 1.0 - best))
    chosen = [c for c in chosen if c.id in fetched]  # a memory deleted since the search is not a hit
    for c in chosen:
        c.counters, values = fetched[c.id]
        c.stored = dict(zip(STORED_FIELDS, values))
    return chosen


def _hit(c: Candidate, score: float, rec: float, counters: Sequence[Any] | None) -> RecallHit:
    memory = decode_memory(c.id, c.stored or {}, counters)
    distance = c.distance if c.distance is not None else 2.0
    breakdown = build_frozen(
        ScoreBreakdown, similarity=similarity_from_distance(distance), recency=rec,
        importance=memory.importance, score=score, relevance=c.relevance, lexical=c.lexical_scaled,
        time=c.time_fit, rerank=c.rerank,
    )  # fmt: skip
    return build_frozen(RecallHit, memory=memory, distance=distance, scores=breakdown)


def _near_miss(candidates: Sequence[Candidate], threshold: float) -> NearMiss | None:
    closest = min(
        (c for c in candidates if c.distance is not None), key=lambda c: c.distance or 0.0, default=None
    )
    return None if closest is None else NearMiss(closest.id, float(closest.distance or 0.0), threshold)


def _by_similarity_alone(scoring: ScoringConfig, window: TimeWindow | None, reranker: Any) -> bool:
    """Whether the ranking is the KNN order: no recency, importance, time fit or reranker weighs in."""
    weights = scoring.weights
    return weights.recency == 0 and weights.importance == 0 and window is None and reranker is None


def recall_flow(
    ctx: Context,
    query: str | Sequence[float] | np.ndarray,
    *,
    k: int,
    flt: MemoryFilter,
    threshold: float | None,
    scoring: ScoringConfig,
    reinforce: bool,
    offset: int = 0,
    refresh_ttl: bool = False,
    counters: bool = True,
) -> Flow[RecallResult]:
    """Recall: embed, search (KNN, plus BM25 when hybrid), rank, fetch (+ reinforce); see the module doc.

    ``offset`` skips that many of the best hits (the page ``offset .. offset + k`` of the ranking); only
    the returned hits are reinforced. ``counters=False`` returns the hits without their counters; ranked
    by similarity alone and not reinforced, the KNN's own rows are then the hits (one round trip).
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidMemoryError(f"k must be an int in 1..{MAX_K}, got {k!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_K - k:
        raise InvalidMemoryError(
            f"offset must be an int in 0..{MAX_K - k} (k + offset <= {MAX_K}), got {offset!r}"
        )
    page_end = k + offset
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 2
    ):
        raise InvalidMemoryError(f"threshold is a cosine distance in [0, 2], got {threshold!r}")
    # the implicit current-facts leaf yields to the caller's filter and the lexical channel's term leaf
    flt = flt.with_numeric(ctx.config.numeric_fields).within_budget(ctx.engine.max_leaves)
    vectors = yield from query_vector_flow(query, ctx.spec.config.dims)
    if flt.is_unsatisfiable():
        return RecallResult(())
    query_vector = vectors[0]
    blob = vector_to_bytes(query_vector)
    predicate = flt.client_predicate()
    terms = query_terms(query) if ctx.lexical and isinstance(query, str) and lexical_fits(ctx, flt) else []
    window = query_window(ctx, query, scoring)
    reranker = ctx.reranker if isinstance(query, str) else None
    candidates: list[Candidate]
    whole = False  # the KNN rows carry every stored field: no fetch
    if terms:
        candidates = yield from hybrid_candidates_flow(
            ctx, blob, flt, terms, page_end, predicate, window_filter(ctx, flt, window)
        )
    else:
        # Ranked by similarity alone, the KNN order is the ranking: the k nearest are the hits, no spare
        # candidates needed, unless a fact and its source among them take one place (asked again below).
        nearest = _by_similarity_alone(scoring, window, reranker)
        # Nothing to rank or return needs the counters then, so the rows can be the hits themselves.
        whole = nearest and not reinforce and not counters
        rows = yield from knn_rows_flow(
            ctx, blob, flt, page_end, predicate, window_filter(ctx, flt, window), 1 if nearest else None,
            stored=whole,
        )  # fmt: skip
        candidates = [Candidate(r.id, r.fields, r.distance, True) for r in rows]
        if nearest and derivations(candidates):  # spares to fill the places such pairs free
            rows = yield from knn_rows_flow(ctx, blob, flt, page_end, predicate, None, stored=whole)
            candidates = [Candidate(r.id, r.fields, r.distance, True) for r in rows]
    if threshold is not None:
        in_range = [c for c in candidates if c.distance is None or c.distance <= threshold]
        if not in_range:
            return RecallResult((), _near_miss(candidates, threshold))
        candidates = in_range
    if not candidates:
        return RecallResult(())
    _read_rank_fields(candidates, window)
    assign_relevance(candidates, ctx.config.lexical_weight)
    # a fact and its sources take one place: rank enough candidates to fill the page without the spares
    partners = derivations(candidates)
    depth = max(page_end, ctx.config.rerank_depth) if reranker is not None else page_end
    wanted = depth + len(partners)
    # With a threshold, lexical-only candidates need their distance before ranking: read them all.
    chosen = list(candidates) if threshold is not None else plausible(ctx, candidates, wanted, scoring)
    missing = [c for c in chosen if c.distance is None]
    # When no more than k candidates can make the top k, they are the hits whatever their counters say:
    # fetch and reinforce them in the same script call (one round trip fewer).
    # (Not with a reranker: it runs after the fetch, and a failing one must leave no reinforcement.)
    folded = (
        reinforce and threshold is None and offset == 0 and len(chosen) <= k and not partners
        and reranker is None
    )  # fmt: skip
    if whole:  # the rows carry what the hits need: no fetch (see _whole_rows)
        chosen = yield from _whole_rows(chosen)
    else:
        chosen = yield from _fetched(ctx, chosen, missing, folded, query_vector)
    if threshold is not None:
        kept = [c for c in chosen if c.distance is not None and c.distance <= threshold]
        if not kept:
            return RecallResult((), _near_miss(chosen, threshold))
        chosen = kept
    ranked = one_per_evidence(_rank(ctx, chosen, scoring, len(chosen)), partners)
    if reranker is not None and ranked:
        assert isinstance(query, str)
        ranked = yield from rerank_flow(reranker, query, ranked, depth)
    ranked = ranked[offset:page_end]
    if reinforce and ranked and not folded:
        (after,) = yield batch([fetch_op(ctx, [c for c, _, _ in ranked], reinforce=True, fields=())])
        after = expect(after)
        ranked = [r for r in ranked if r[0].id in after]
        for c, _, _ in ranked:
            c.counters = after[c.id][0]
    hits = []
    now = format_number(ctx.now)
    for c, score, rec in ranked:
        held = c.counters
        if not counters:
            held = None
        elif reinforce and held is not None:  # the counters after this recall: one more access, now
            held = (_count(held[0]) + 1, now, held[2])
        hits.append(_hit(c, score, rec, held))
    if refresh_ttl and hits:  # restart the lifetime of the returned memories (one more round trip)
        yield from refresh_flow(ctx, [h.memory for h in hits], [c.id for c, _, _ in ranked])
        # only a memory with a TTL changes (its expires_at)
        hits = [h if h.memory.ttl is None else replace(h, memory=refreshed(ctx, h.memory)) for h in hits]
    return RecallResult(tuple(hits))
