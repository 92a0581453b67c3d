"""Pure tests of the recall plan: the search's fields, FETCH grouping, expiry checked on the client."""

from __future__ import annotations

import re

import pytest

from agentmem_core._context import Context
from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._flows_candidates import Candidate, _keeper, knn_rows_flow
from agentmem_core._flows_recall import fetch_op
from agentmem_core._plan import Batch, ScriptCall
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import IndexConfig, ScoringConfig, ScoringWeights, StoreConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.query import MemoryFilter, render_query
from agentmem_core.schema import NEVER, STORED_FIELDS, F, IndexSpec, format_number, rank_fields


def _ctx(cluster: bool) -> Context:
    keys = Keys("t")
    config = StoreConfig(name="t", index=IndexConfig(dims=4))
    return Context(keys, IndexSpec(keys, config.index), config, EngineInfo("redisearch", (2, 10, 5)), 1000.0,
                   True, cluster)  # fmt: skip


def _valkey(ctx: Context) -> ValkeyOps:
    return ValkeyOps(ctx.keys, ctx.spec, ctx.engine, ctx.config.timeout_ms, ctx.cluster)


def _candidates(ctx: Context) -> list[Candidate]:
    out = []
    for user in ("ana", "bob", "cy"):
        tag = ScopeKey(user_id=user).tag
        for n in range(2):
            memory_id = f"{tag}{n:016x}"
            out.append(Candidate(memory_id, {}, 0.1, True))
    return out


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
def test_fetch_is_one_call_standalone_and_one_per_hash_slot_on_a_cluster(cluster: bool) -> None:
    ctx = _ctx(cluster)
    candidates = _candidates(ctx)
    calls = _valkey(ctx).commands(fetch_op(ctx, candidates, reinforce=True, fields=STORED_FIELDS))
    assert len(calls) == (3 if cluster else 1)
    seen = []
    for call in calls:
        assert isinstance(call, ScriptCall)
        assert call.args[:2] == ("1", format_number(ctx.now)) and call.args[2:] == STORED_FIELDS
        pairs = list(zip(call.keys[::2], call.keys[1::2]))
        for memory_key, stats_key in pairs:
            memory_id = ctx.keys.id_from_memory_key(memory_key)
            assert (memory_key, stats_key) == (ctx.keys.memory(memory_id), ctx.keys.stats(memory_id))
            seen.append(memory_id)
        if cluster:  # every key of one call carries the same {hash tag}: one slot
            assert len({re.search(r"\{(\w+)\}", key).group(1) for key in call.keys}) == 1  # type: ignore[union-attr]
    assert seen == [c.id for c in candidates]


def test_knn_returns_only_ranking_fields_and_no_expiry_leaf() -> None:
    ctx = _ctx(False)
    fields = rank_fields(lexical=False, metadata=False)
    args = (
        _valkey(ctx)
        .knn_command(MemoryFilter.build(user_id="ana").scope_leaves(), b"\0" * 16, 20, fields)
        .args
    )
    returned = args[args.index("RETURN") + 2 : args.index("LIMIT")]
    # FACT: recall checks "current" on the client and pairs a distilled fact with its sources
    assert returned == ("am_distance", F.IMPORTANCE, F.CREATED_AT, F.EXPIRES_AT, F.FACT)
    assert F.CONTENT not in returned and F.EMBEDDING not in returned
    assert "x_expires_at" not in str(args[2])
    assert render_query(MemoryFilter().scope_leaves(), max_leaves=64) == "*"  # KNN accepts a match-all
    assert rank_fields(lexical=True, metadata=True)[-2:] == (F.METADATA, F.LEX)


def test_client_drops_expired_rows_the_engine_still_returns() -> None:
    ctx = _ctx(False)  # now = 1000
    keep = _keeper(ctx, None)
    assert keep({F.EXPIRES_AT: b"1000.5"}) and keep({F.EXPIRES_AT: str(NEVER).encode()})
    assert not keep({F.EXPIRES_AT: b"1000"}) and not keep({F.EXPIRES_AT: b"10"})
    by_meta = _keeper(ctx, MemoryFilter.build(metadata={"n": {"$gte": 1, "$lt": 2}}).client_predicate())
    assert by_meta({F.EXPIRES_AT: b"2000", F.METADATA: b'{"n": 1}'})
    assert not by_meta({F.EXPIRES_AT: b"2000", F.METADATA: b"{}"})
    assert not by_meta({F.EXPIRES_AT: b"5", F.METADATA: b'{"n": 1}'})


def _knn_reply(ctx: Context, live: int, expired_nil: int) -> list[object]:
    tag = ScopeKey(user_id="ana").tag
    reply: list[object] = [live + expired_nil]
    for n in range(live + expired_nil):
        reply.append(ctx.keys.memory(f"{tag}{n:016x}").encode())
        if n < expired_nil:
            reply.append(None)  # RediSearch: a logically expired key not yet deleted comes back as nil
        else:
            reply.append([b"am_distance", f"0.{n}".encode(), F.EXPIRES_AT.encode(), str(NEVER).encode()])
    return reply


def _limit(request: Batch) -> object:
    return request.commands[0].pool  # type: ignore[union-attr]


def _answer(ctx: Context, request: Batch, reply: list[object]) -> list[object]:
    """The flow's Knn answered from a raw FT.SEARCH reply, through the Valkey translation."""
    (op,) = request.commands
    valkey = _valkey(ctx)
    return [valkey.result(op, valkey.commands(op), [reply])]


def test_knn_widens_when_nil_rows_were_dropped_from_a_full_page() -> None:
    # Before: the flow decided "the index has nothing more" on the rows it had parsed, so a full page
    # whose rows were mostly nil (expired) ended the search with fewer than k hits.
    ctx = _ctx(False)
    flow = knn_rows_flow(ctx, b"\0" * 16, MemoryFilter(), 3, None)
    first = next(flow)
    pool = ctx.config.candidate_multiplier * 3
    assert isinstance(first, Batch) and _limit(first) == pool
    args = _valkey(ctx).commands(first.commands[0])[0].args  # type: ignore[union-attr]
    assert args[args.index("LIMIT") + 2] == pool
    second = flow.send(_answer(ctx, first, _knn_reply(ctx, live=2, expired_nil=pool - 2)))
    assert isinstance(second, Batch)  # widened instead of returning 2 rows
    assert _limit(second) == pool * 4
    with pytest.raises(StopIteration) as done:
        flow.send(_answer(ctx, second, _knn_reply(ctx, live=5, expired_nil=pool - 2)))
    assert len(done.value.value) == 5
    # a page that came back short is the end of the index, nil rows or not
    flow = knn_rows_flow(ctx, b"\0" * 16, MemoryFilter(), 3, None)
    first = next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(_answer(ctx, first, _knn_reply(ctx, live=1, expired_nil=2)))
    assert len(done.value.value) == 1


@pytest.mark.parametrize(
    ("index", "beam"),
    [
        (IndexConfig(dims=4), None),  # not set up: the index may be another adapter's FLAT one
        (IndexConfig(dims=4, algorithm="FLAT"), None),
        (IndexConfig(dims=4, algorithm="HNSW"), "EF_RUNTIME 64"),  # configured, or found by setup()
        (IndexConfig(dims=4, algorithm="HNSW", ef_runtime=200), "EF_RUNTIME 200"),
    ],
)
def test_knn_sends_hnsw_options_only_to_a_known_hnsw_index(index: IndexConfig, beam: str | None) -> None:
    keys = Keys("t")
    ops = ValkeyOps(keys, IndexSpec(keys, index), EngineInfo("redisearch", (2, 10, 5)), 1000, False)
    query = str(ops.knn_command(MemoryFilter().scope_leaves(), b"\0" * 16, 20, ("am_distance",)).args[2])
    assert ("EF_RUNTIME" in query) == (beam is not None)
    if beam is not None:
        assert beam in query


@pytest.mark.parametrize(
    ("weights", "pool"),
    [(ScoringWeights(similarity=1.0, recency=0.0, importance=0.0), 5), (ScoringWeights(), 10)],
)
def test_a_ranking_by_similarity_alone_asks_the_knn_for_the_k_nearest_only(
    weights: ScoringWeights, pool: int
) -> None:
    """With recency and importance weighing nothing the KNN order is the ranking: no spare candidates."""
    from agentmem_core import ops
    from agentmem_core._flows_recall import recall_flow

    ctx = _ctx(False)
    flow = recall_flow(
        ctx, [1.0, 0.0, 0.0, 0.0], k=5, flt=MemoryFilter.build(user_id="ana"), threshold=None,
        scoring=ScoringConfig(weights=weights), reinforce=False,
    )  # fmt: skip
    first = next(flow)
    assert isinstance(first, Batch)
    (knn,) = [op for op in first.commands if isinstance(op, ops.Knn)]
    assert knn.pool == pool
