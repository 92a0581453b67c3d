"""Read flows: recall (KNN + composite score + reinforcement), get, list, stats, scope listing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, parse_id
from agentmem_core._lexical import bm25_scores, fuse_scores, query_terms
from agentmem_core._parse import SearchRow, as_text, pairs, parse_filter_search, parse_search
from agentmem_core._plan import Call, Embed, Flow, ScriptCall, batch, expect
from agentmem_core._scripts import REINFORCE, SCOPE_STATS
from agentmem_core.config import ScoringConfig
from agentmem_core.embeddings import Vectors, validate_vectors, vector_to_bytes
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.query import Leaf, MemoryFilter, TagIn, render_query
from agentmem_core.schema import STATS_FIELDS, STORED_FIELDS, F, decode_memory, format_number
from agentmem_core.scoring import composite, recency, similarity_from_distance
from agentmem_core.types import (
    Memory,
    NearMiss,
    Page,
    RecallHit,
    RecallResult,
    ScopeStats,
    ScoreBreakdown,
    Stats,
)

__all__ = ["get_many_flow", "list_flow", "recall_flow", "scopes_flow", "stats_flow"]

MAX_K = 10_000


def query_vector_flow(query: str | Sequence[float] | np.ndarray, dims: int) -> Flow[Vectors]:
    """Embed a text query, or validate a caller's vector."""
    if isinstance(query, str):
        if not query.strip():
            raise InvalidMemoryError("recall query must be a non-empty string")
        raw = yield Embed((query,), is_query=True)
        return validate_vectors(raw, dims, expected=1)
    return validate_vectors([query], dims, expected=1)  # type: ignore[list-item]


def knn_command(ctx: Context, vector: bytes, filter_text: str, pool: int) -> Call:
    """The portable KNN FT.SEARCH (EF_RUNTIME before AS, explicit LIMIT 0 k, TIMEOUT, DIALECT 2)."""
    knn = f"[KNN {pool} @{F.EMBEDDING} $vec"
    if ctx.spec.config.algorithm == "HNSW":
        ef = ctx.spec.config.ef_runtime or max(pool, 64)
        knn += f" EF_RUNTIME {min(4096, max(ef, pool if pool <= 4096 else 4096))}"
    knn += " AS am_distance]"
    fields = ctx.spec.return_fields
    return Call((
        "FT.SEARCH", ctx.spec.name, f"{filter_text}=>{knn}",
        "PARAMS", 2, "vec", vector,
        "RETURN", len(fields), *fields,
        "LIMIT", 0, pool,
        "TIMEOUT", ctx.config.timeout_ms,
        "DIALECT", 2,
    ))  # fmt: skip


def _stats_commands(ctx: Context, ids: Sequence[str]) -> list[Call]:
    return [Call(("HMGET", ctx.keys.stats(i), *STATS_FIELDS)) for i in ids]


def _memory_from_row(ctx: Context, row: SearchRow, stats: Sequence[Any] | None) -> Memory:
    return decode_memory(ctx.keys.id_from_memory_key(row.key), row.fields, stats)


Predicate = Callable[[Mapping[str, Any]], bool]


def _metadata_of(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = fields.get(F.METADATA)
    text = as_text(raw) if raw is not None else ""
    return json.loads(text) if text else {}


def knn_rows_flow(
    ctx: Context, vector: bytes, flt: MemoryFilter, k: int, predicate: Predicate | None
) -> Flow[list[SearchRow]]:
    """KNN rows that pass ``predicate`` (on metadata); widens the pool until ``k`` pass or none are left."""
    filter_text = render_query(flt.leaves(ctx.now), max_leaves=ctx.engine.max_leaves)
    pool = min(MAX_K, k * ctx.config.candidate_multiplier)
    while True:
        (reply,) = yield batch([knn_command(ctx, vector, filter_text, pool)])
        rows = parse_search(expect(reply))
        if predicate is None:
            return rows
        passing = [r for r in rows if predicate(_metadata_of(r.fields))]
        if len(passing) >= k or len(rows) < pool or pool >= MAX_K:
            return passing
        pool = min(MAX_K, pool * 4)


@dataclass
class Candidate:
    """A recall candidate from either channel (``distance`` is filled in later for lexical-only ones)."""

    id: str
    fields: dict[str, Any]
    distance: float | None
    lexical: float | None
    in_knn: bool
    relevance: float = 0.0
    lexical_scaled: float = 0.0


def filter_search_command(ctx: Context, query: str, limit: int, fields: Sequence[str] = ()) -> Call:
    """A filter-only FT.SEARCH: the engine's count of every match plus up to ``limit`` rows of ``fields``.

    ``limit=0`` makes it a pure count (the filter's size); with a term predicate, the total is that term's
    document frequency under the filter.
    """
    returned: tuple[str | int, ...] = ("RETURN", len(fields), *fields) if fields else ()
    return Call((
        "FT.SEARCH", ctx.spec.name, query, *returned,
        "LIMIT", 0, limit, "TIMEOUT", ctx.config.timeout_ms, "DIALECT", 2,
    ))  # fmt: skip


def term_query(ctx: Context, leaves: Sequence[Leaf], term: str) -> str:
    """The filter plus one term predicate on the analysed-terms TAG field."""
    return render_query([*leaves, TagIn(F.X_TERMS, (term,))], max_leaves=ctx.engine.max_leaves)


def lexical_fits(ctx: Context, flt: MemoryFilter) -> bool:
    """Whether a term predicate still fits the engine's predicate budget next to the filter."""
    return len(flt.leaves(ctx.now)) < ctx.engine.max_leaves


def hybrid_candidates_flow(
    ctx: Context, vector: bytes, flt: MemoryFilter, terms: list[str], k: int
) -> Flow[list[Candidate]]:
    """Both channels in one round trip; candidates keyed by id.

    The vector channel is the KNN pool. The lexical channel scores BM25 on the client: per query term
    the engine returns its document frequency under the filter and up to ``lexical_term_pool`` memories
    containing it (rare terms are enumerated completely; a common term's few rows matter little, and
    documents found by rarer terms or by the KNN pool are scored for it anyway); one more count gives the
    filter's size. The ``pool`` best-scoring documents form the lexical channel.
    """
    leaves = flt.leaves(ctx.now)
    filter_text = render_query(leaves, max_leaves=ctx.engine.max_leaves)
    pool = min(MAX_K, max(ctx.config.hybrid_pool, k * ctx.config.candidate_multiplier))
    replies = yield batch([
        knn_command(ctx, vector, filter_text, pool),
        filter_search_command(ctx, filter_text, 0),
        *(
            filter_search_command(
                ctx, term_query(ctx, leaves, term), ctx.config.lexical_term_pool, ctx.spec.term_return_fields
            )
            for term in terms
        ),
    ])  # fmt: skip
    out: dict[str, Candidate] = {}
    for row in parse_search(expect(replies[0])):
        memory_id = ctx.keys.id_from_memory_key(row.key)
        out[memory_id] = Candidate(memory_id, row.fields, row.distance, None, True)
    n_docs, _ = parse_filter_search(expect(replies[1]))
    df: dict[str, int] = {}
    for term, reply in zip(terms, replies[2:]):
        df[term], rows = parse_filter_search(expect(reply))
        for key, fields in rows:
            memory_id = ctx.keys.id_from_memory_key(key)
            if memory_id not in out:
                out[memory_id] = Candidate(memory_id, fields, None, None, False)
    docs = {memory_id: as_text(c.fields.get(F.LEX) or b"").split() for memory_id, c in out.items()}
    avgdl = sum(len(d) for d in docs.values()) / len(docs) if docs else 0.0
    scores = bm25_scores(terms, docs, df, n_docs, avgdl)
    for memory_id, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:pool]:
        out[memory_id].lexical = score
    return [c for c in out.values() if c.in_knn or c.lexical is not None]


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


def _importance_created(fields: Mapping[str, Any]) -> tuple[float, float]:
    importance = fields.get(F.IMPORTANCE)
    created = fields.get(F.CREATED_AT)
    return (
        float(as_text(importance)) if importance is not None else 0.5,
        float(as_text(created)) if created is not None else 0.0,
    )


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
    bounds = []
    for c in candidates:
        importance, created = _importance_created(c.fields)
        low = composite(
            c.relevance, recency(ctx.now, created, scoring.half_life_seconds), importance, scoring
        )
        high = composite(c.relevance, 1.0, importance, scoring)
        bounds.append((low, high, c))
    kth_low = sorted((b[0] for b in bounds), reverse=True)[k - 1]
    return [c for low, high, c in bounds if high >= kth_low]


def score_candidates(
    ctx: Context, candidates: Sequence[Candidate], stats: Sequence[Any], scoring: ScoringConfig, k: int
) -> list[RecallHit]:
    """Composite-score candidates with their counters; decode only the ``k`` winners."""
    scored: list[tuple[float, float, str, Candidate, Any, float]] = []
    for candidate, counters in zip(candidates, stats):
        counters = expect(counters)
        importance, created = _importance_created(candidate.fields)
        last = counters[1] if counters is not None else None
        seen = float(as_text(last)) if last is not None else created
        rec = recency(ctx.now, seen, scoring.half_life_seconds)
        score = composite(candidate.relevance, rec, importance, scoring)
        distance = candidate.distance if candidate.distance is not None else 2.0
        scored.append((-score, distance, candidate.id, candidate, counters, rec))
    scored.sort(key=lambda t: (t[0], t[1], t[2]))
    hits: list[RecallHit] = []
    for neg_score, distance, _, candidate, counters, rec in scored[:k]:
        memory = decode_memory(candidate.id, candidate.fields, counters)
        sim = similarity_from_distance(distance)
        breakdown = ScoreBreakdown(
            sim, rec, memory.importance, -neg_score, candidate.relevance, candidate.lexical_scaled
        )
        hits.append(RecallHit(memory, distance, breakdown))
    return hits


def reinforce_commands(ctx: Context, ids: Sequence[str]) -> list[ScriptCall]:
    """One REINFORCE per scope (all of that scope's hits; one slot), sent in one round trip.

    HINCRBY keeps counts exact under concurrency; the counters live outside the index, so reinforcing
    never re-indexes a document.
    """
    by_tag: dict[str, list[str]] = {}
    for memory_id in ids:
        by_tag.setdefault(memory_id[:16], []).append(memory_id)
    now = format_number(ctx.now)
    calls = []
    for group in by_tag.values():
        keys: list[str] = []
        for memory_id in group:
            keys += [ctx.keys.memory(memory_id), ctx.keys.stats(memory_id)]
        calls.append(ScriptCall(REINFORCE, tuple(keys), (now, F.ACCESS_COUNT)))
    return calls


def parse_reinforce(
    ctx: Context, calls: Sequence[ScriptCall], replies: Sequence[Any]
) -> dict[str, tuple[int, list[Any]]]:
    """REINFORCE replies -> ``id -> (new access count, counters before)``; gone memories are left out."""
    out: dict[str, tuple[int, list[Any]]] = {}
    for call, reply in zip(calls, replies):
        for key, value in zip(call.keys[::2], expect(reply)):
            if isinstance(value, (list, tuple)):
                count = int(value[0])
                out[ctx.keys.id_from_memory_key(key)] = (count, [count - 1, value[1], value[2]])
    return out


def _with_counters(hit: RecallHit, access_count: int, now: float) -> RecallHit:
    memory = hit.memory
    updated = Memory(**{**memory.__dict__, "access_count": access_count, "last_accessed_at": now})
    return RecallHit(updated, hit.distance, hit.scores)


def recall_flow(
    ctx: Context,
    query: str | Sequence[float] | np.ndarray,
    *,
    k: int,
    flt: MemoryFilter,
    threshold: float | None,
    scoring: ScoringConfig,
    reinforce: bool,
) -> Flow[RecallResult]:
    """Recall: embed, search (KNN, plus BM25 when hybrid), read counters, score, reinforce.

    Round trips: the search (both channels pipelined), then the counters of the candidates that can
    still make the top ``k``, then the reinforcement (one script call per scope). When no more than
    ``k`` candidates can make the top ``k`` (the usual case), the last two are one script call that
    reads the counters and reinforces.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidMemoryError(f"k must be an int in 1..{MAX_K}, got {k!r}")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 2
    ):
        raise InvalidMemoryError(f"threshold is a cosine distance in [0, 2], got {threshold!r}")
    vectors = yield from query_vector_flow(query, ctx.spec.config.dims)
    if flt.is_unsatisfiable():
        return RecallResult(())
    query_vector = vectors[0]
    blob = vector_to_bytes(query_vector)
    predicate = flt.client_predicate()
    terms = query_terms(query) if ctx.lexical and isinstance(query, str) and lexical_fits(ctx, flt) else []
    candidates: list[Candidate]
    if terms:
        candidates = yield from hybrid_candidates_flow(ctx, blob, flt, terms, k)
        if predicate is not None:
            candidates = [c for c in candidates if predicate(_metadata_of(c.fields))]
    else:
        rows = yield from knn_rows_flow(ctx, blob, flt, k, predicate)
        candidates = [
            Candidate(ctx.keys.id_from_memory_key(r.key), r.fields, r.distance, None, True) for r in rows
        ]
    nearest_miss = None
    if threshold is not None:
        in_range = [c for c in candidates if c.distance is None or c.distance <= threshold]
        if not [c for c in in_range if c.distance is not None] and not any(
            c.distance is None for c in in_range
        ):
            closest = min(
                (c for c in candidates if c.distance is not None),
                key=lambda c: c.distance or 0.0,
                default=None,
            )
            if closest is not None:
                nearest_miss = NearMiss(closest.id, float(closest.distance or 0.0), threshold)
            return RecallResult((), nearest_miss)
        candidates = in_range
    if not candidates:
        return RecallResult(())
    assign_relevance(candidates, ctx.config.lexical_weight)
    # With a threshold, lexical-only candidates need their distance before ranking: read them all.
    chosen = list(candidates) if threshold is not None else plausible(ctx, candidates, k, scoring)
    missing = [c for c in chosen if c.distance is None]
    distance_reads = [Call(("HGET", ctx.keys.memory(c.id), F.EMBEDDING)) for c in missing]
    # When no more than k candidates can make the top k, they are the hits whatever their counters say:
    # read the counters and reinforce in the same script call (one round trip fewer).
    folded = reinforce and threshold is None and len(chosen) <= k
    reinforced: dict[str, tuple[int, list[Any]]] = {}
    if folded:
        calls = reinforce_commands(ctx, [c.id for c in chosen])
        replies = yield batch([*calls, *distance_reads])
        reinforced = parse_reinforce(ctx, calls, replies[: len(calls)])
        stats: list[Any] = [reinforced[c.id][1] if c.id in reinforced else None for c in chosen]
        blobs = replies[len(calls) :]
    else:
        replies = yield batch(_stats_commands(ctx, [c.id for c in chosen]) + distance_reads)
        stats, blobs = list(replies[: len(chosen)]), replies[len(chosen) :]
    for candidate, blob_reply in zip(missing, blobs):
        raw = expect(blob_reply)
        if isinstance(raw, bytes) and len(raw) == 4 * ctx.spec.config.dims:
            stored = np.frombuffer(raw, dtype="<f4")
            candidate.distance = max(0.0, min(2.0, 1.0 - float(np.dot(stored, query_vector))))
    if threshold is not None:
        kept = [(c, s) for c, s in zip(chosen, stats) if c.distance is not None and c.distance <= threshold]
        if not kept:
            closest = min(
                (c for c in chosen if c.distance is not None), key=lambda c: c.distance or 0.0, default=None
            )
            if closest is not None:
                nearest_miss = NearMiss(closest.id, float(closest.distance or 0.0), threshold)
            return RecallResult((), nearest_miss)
        chosen, stats = [c for c, _ in kept], [s for _, s in kept]
    hits = score_candidates(ctx, chosen, stats, scoring, k)
    if reinforce and hits and not folded:
        calls = reinforce_commands(ctx, [h.memory.id for h in hits])
        reinforced = parse_reinforce(ctx, calls, (yield batch(calls)))
    if reinforce and hits:
        hits = [
            _with_counters(h, reinforced[h.memory.id][0], ctx.now) if h.memory.id in reinforced else h
            for h in hits
        ]
    return RecallResult(tuple(hits), nearest_miss)


def get_commands(ctx: Context, ids: Sequence[str]) -> list[Call]:
    """HMGET of the stored fields and the counters of each id."""
    commands: list[Call] = []
    for memory_id in ids:
        commands.append(Call(("HMGET", ctx.keys.memory(memory_id), *STORED_FIELDS)))
        commands.append(Call(("HMGET", ctx.keys.stats(memory_id), *STATS_FIELDS)))
    return commands


def decode_gets(ctx: Context, ids: Sequence[str], replies: Sequence[Any]) -> list[Memory | None]:
    """Decode :func:`get_commands` replies (``None`` for missing or expired memories)."""
    out: list[Memory | None] = []
    for n, memory_id in enumerate(ids):
        values = expect(replies[2 * n])
        counters = expect(replies[2 * n + 1])
        if values is None or all(v is None for v in values):
            out.append(None)
            continue
        memory = decode_memory(memory_id, dict(zip(STORED_FIELDS, values)), counters)
        if memory.expires_at is not None and memory.expires_at <= ctx.now:
            out.append(None)
            continue
        out.append(memory)
    return out


def get_many_flow(ctx: Context, ids: Sequence[str]) -> Flow[list[Memory | None]]:
    """Fetch memories by id in one round trip."""
    for memory_id in ids:
        parse_id(memory_id)
    if not ids:
        return []
    replies = yield batch(get_commands(ctx, ids))
    return decode_gets(ctx, ids, replies)


# -- scopes --------------------------------------------------------------------------------------------
def scope_matches(scope: ScopeKey, flt: MemoryFilter) -> bool:
    """Whether a scope can hold memories matching the filter's scope fields."""
    if flt.namespace is not None and scope.namespace != flt.namespace:
        return False
    if flt.namespace_prefix and scope.namespace[: len(flt.namespace_prefix)] != flt.namespace_prefix:
        return False
    for want, have in ((flt.thread_id, scope.thread_id), (flt.agent_id, scope.agent_id),
                       (flt.user_id, scope.user_id)):  # fmt: skip
        if want is not None and want != have:
            return False
    return True


def scopes_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[list[ScopeKey]]:
    """Scopes in the registry (optionally only those a filter can match)."""
    (raw,) = yield batch([Call(("HGETALL", ctx.keys.scopes))])
    scopes = []
    for tag, descriptor in pairs(expect(raw)).items():
        scope = ScopeKey.from_descriptor(json.loads(as_text(descriptor)))
        if scope.tag != tag:
            continue
        if flt is None or scope_matches(scope, flt):
            scopes.append(scope)
    scopes.sort(key=lambda s: (s.namespace, s.thread_id or "", s.agent_id or "", s.user_id or ""))
    return scopes


# -- list ----------------------------------------------------------------------------------------------
def _parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    try:
        created, memory_id = cursor.split(":", 1)
        parse_id(memory_id)
        return float(created), memory_id
    except (ValueError, InvalidMemoryError) as exc:
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}") from exc


def _after(memory: Memory, cursor: tuple[float, str] | None) -> bool:
    if cursor is None:
        return True
    created, memory_id = cursor
    return memory.created_at < created or (memory.created_at == created and memory.id < memory_id)


def list_flow(ctx: Context, flt: MemoryFilter, limit: int, cursor: str | None) -> Flow[Page]:
    """Newest first across the matching scopes, paginated by an opaque cursor; exact (refills on filter)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_K:
        raise InvalidMemoryError(f"limit must be an int in 1..{MAX_K}, got {limit!r}")
    position = _parse_cursor(cursor)
    if flt.is_unsatisfiable():
        return Page(())
    scopes = yield from scopes_flow(ctx, flt)
    if not scopes:
        return Page(())
    upper = "+inf" if position is None else format_number(position[0])
    fetch = limit + 1
    while True:
        replies = yield batch([
            Call(("ZREVRANGEBYSCORE", ctx.keys.created(s.tag), upper, "-inf", "LIMIT", 0, fetch))
            for s in scopes
        ])  # fmt: skip
        id_lists = [[as_text(x) for x in expect(r)] for r in replies]
        more = any(len(ids) >= fetch for ids in id_lists)
        ids = [i for ids in id_lists for i in ids]
        memories = yield from get_many_flow(ctx, ids)
        found = [m for m in memories if m is not None and _after(m, position) and flt.matches(m, ctx.now)]
        found.sort(key=lambda m: (-m.created_at, _desc(m.id)))
        if len(found) > limit or not more:
            page = tuple(found[:limit])
            has_next = len(found) > limit or (more and len(page) == limit)
            next_cursor = f"{format_number(page[-1].created_at)}:{page[-1].id}" if page and has_next else None
            return Page(page, next_cursor)
        fetch *= 4


def _desc(memory_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in memory_id)


def stats_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[Stats]:
    """Counts per scope and kind (expired memories are purged from the bookkeeping first)."""
    scopes = yield from scopes_flow(ctx, flt)
    now = format_number(ctx.now)
    replies = yield batch([
        ScriptCall(
            SCOPE_STATS, (ctx.keys.created(s.tag), ctx.keys.expiring(s.tag), ctx.keys.counts(s.tag)), (now,)
        )
        for s in scopes
    ])  # fmt: skip
    per_scope: list[ScopeStats] = []
    totals: dict[str, int] = {}
    for scope, reply in zip(scopes, replies):
        count, raw_kinds = expect(reply)
        kinds = {k: int(as_text(v)) for k, v in pairs(raw_kinds).items() if int(as_text(v)) > 0}
        for kind, n in kinds.items():
            totals[kind] = totals.get(kind, 0) + n
        if int(count) > 0:
            per_scope.append(
                ScopeStats(scope.namespace, scope.thread_id, scope.agent_id, scope.user_id, int(count), kinds)
            )
    return Stats(sum(s.total for s in per_scope), totals, tuple(per_scope))
