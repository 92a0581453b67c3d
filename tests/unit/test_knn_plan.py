"""Pure tests of the KNN planner: when a filtered KNN searches RediSearch's graph in batches."""

from __future__ import annotations

import pytest

from agentmem_core._context import Context
from agentmem_core._encoding import Keys
from agentmem_core._flows_candidates import knn_rows_flow
from agentmem_core._knn_plan import _CAPACITY, ESTIMATE_TTL_S, KnnPlanner, prefer_batches
from agentmem_core._plan import Batch
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import AgentMemError
from agentmem_core.ops import FilterSearch, Knn, KnnResult
from agentmem_core.query import MemoryFilter, leaf_size
from agentmem_core.schema import IndexSpec


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_crossover_is_matches_squared_against_pool_times_total() -> None:
    # 30k memories, KNN-20: the measured crossover is about 10% of the index (3,000 matches)
    assert prefer_batches(3_000, 30_000, 20)
    assert not prefer_batches(2_999, 30_000, 20)
    assert prefer_batches(30_000, 30_000, 20) and not prefer_batches(300, 30_000, 20)
    assert not prefer_batches(0, 30_000, 20) and not prefer_batches(5, 0, 20)
    # a wider pool needs a larger share before the graph pays
    assert prefer_batches(4_000, 30_000, 20) and not prefer_batches(4_000, 30_000, 40)


def _count(total: int) -> tuple[int, list[object]]:
    return (total, [])


def test_planner_asks_for_counts_once_per_ttl_and_plans_from_them() -> None:
    clock = FakeClock()
    plan = KnnPlanner(clock)
    big, small = MemoryFilter.build(user_id="big"), MemoryFilter.build(user_id="small")
    assert not plan.batches(big.scope_leaves(), 20)  # nothing known: the engine's own plan
    needed = plan.counts_needed(big, clock.now, 64)
    assert [type(op) for _, op in needed] == [FilterSearch, FilterSearch]
    assert all(op.limit == 0 for _, op in needed)
    plan.learn([(key, _count(n)) for (key, _), n in zip(needed, (29_000, 30_000))])
    assert plan.counts_needed(big, clock.now, 64) == []  # both fresh: nothing more to send
    assert plan.batches(big.scope_leaves(), 20)
    # a small scope needs its own count (the total is known), then keeps the ad hoc plan
    (only,) = plan.counts_needed(small, clock.now, 64)
    plan.learn([(only[0], _count(40))])
    assert not plan.batches(small.scope_leaves(), 20)
    # past the TTL the estimates are stale: unknown again, and asked for again
    clock.now += ESTIMATE_TTL_S + 1
    assert not plan.batches(big.scope_leaves(), 20)
    assert len(plan.counts_needed(big, clock.now, 64)) == 2
    # the hybrid channel counts the filter anyway: only the index's count is asked for
    assert len(plan.counts_needed(big, clock.now, 64, matches=False)) == 1


def test_planner_ignores_what_is_not_a_count_and_stays_bounded() -> None:
    plan = KnnPlanner(FakeClock())
    flt = MemoryFilter.build(user_id="x")
    plan.learn([(plan.key(flt), None), (plan.key(flt), "oops")])
    assert len(plan.counts_needed(flt, 0.0, 64)) == 2
    for n in range(_CAPACITY + 50):
        plan.learn([(("k", n), _count(n))])
    assert len(plan._counts) == _CAPACITY
    assert ("k", 0) not in plan._counts and ("k", _CAPACITY + 49) in plan._counts


def _ctx(plan: KnnPlanner | None, engine: str = "redisearch", algorithm: str = "HNSW") -> Context:
    keys = Keys("t")
    config = StoreConfig(name="t", index=IndexConfig(dims=4, algorithm=algorithm))  # type: ignore[arg-type]
    return Context(keys, IndexSpec(keys, config.index), config, EngineInfo(engine, (2, 10, 5)), 1000.0,
                   True, False, plan)  # fmt: skip


def _knn_args(ctx: Context, op: Knn) -> tuple[object, ...]:
    valkey = ValkeyOps(ctx.keys, ctx.spec, ctx.engine, ctx.config.timeout_ms, ctx.cluster)  # type: ignore[arg-type]
    return valkey.commands(op)[0].args  # type: ignore[union-attr]


def _empty_knn() -> KnnResult:
    return KnnResult(rows=[], returned=0)


def test_recall_sends_counts_in_its_round_trip_then_batches_a_large_scope() -> None:
    clock = FakeClock()
    plan = KnnPlanner(clock)
    ctx = _ctx(plan)
    flt = MemoryFilter.build(user_id="big")
    flow = knn_rows_flow(ctx, b"\0" * 16, flt, 10, None)
    first = next(flow)
    assert isinstance(first, Batch)
    knn, *counts = first.commands
    assert isinstance(knn, Knn) and not knn.batches and len(counts) == 2  # one round trip, unplanned
    assert "HYBRID_POLICY" not in str(_knn_args(ctx, knn)[2])
    with pytest.raises(StopIteration):
        flow.send([_empty_knn(), _count(29_000), _count(30_000)])
    flow = knn_rows_flow(ctx, b"\0" * 16, flt, 10, None)
    (knn,) = next(flow).commands  # type: ignore[union-attr]
    assert isinstance(knn, Knn) and knn.batches
    assert "HYBRID_POLICY BATCHES AS" in str(_knn_args(ctx, knn)[2])
    # a selective scope keeps the engine's exact (ad hoc) plan
    small = MemoryFilter.build(user_id="small")
    flow = knn_rows_flow(ctx, b"\0" * 16, small, 10, None)
    knn, count = next(flow).commands  # type: ignore[union-attr]
    with pytest.raises(StopIteration):
        flow.send([_empty_knn(), _count(90)])
    flow = knn_rows_flow(ctx, b"\0" * 16, small, 10, None)
    (knn,) = next(flow).commands  # type: ignore[union-attr]
    assert isinstance(knn, Knn) and not knn.batches


def test_a_failed_count_raises_instead_of_being_dropped() -> None:
    ctx = _ctx(KnnPlanner(FakeClock()))
    flow = knn_rows_flow(ctx, b"\0" * 16, MemoryFilter.build(user_id="big"), 10, None)
    next(flow)
    with pytest.raises(AgentMemError, match="boom"):
        flow.send([_empty_knn(), AgentMemError("boom"), _count(5)])


def test_no_plan_means_no_counts_and_valkey_search_never_gets_the_hint() -> None:
    ctx = _ctx(None)
    flow = knn_rows_flow(ctx, b"\0" * 16, MemoryFilter.build(user_id="big"), 10, None)
    (knn,) = next(flow).commands  # type: ignore[union-attr]
    assert isinstance(knn, Knn) and not knn.batches
    hinted = Knn(knn.leaves, knn.vector, knn.pool, knn.fields, True)
    assert "HYBRID_POLICY" not in str(_knn_args(_ctx(None, engine="valkey-search"), hinted)[2])
    assert "HYBRID_POLICY" in str(_knn_args(_ctx(None), hinted)[2])


def test_a_filter_whose_count_would_pass_the_leaf_budget_is_not_counted() -> None:
    # the KNN carries the filter's own leaves; its count adds the expiry leaf: at the engine's budget
    # the count would be refused (QueryTooComplexError), so the filter keeps the engine's own plan
    plan = KnnPlanner(FakeClock())
    flt = MemoryFilter.build(metadata={f"k{i}": i for i in range(64)})
    assert sum(leaf_size(leaf) for leaf in flt.scope_leaves()) == 64
    needed = plan.counts_needed(flt, 0.0, 64)
    assert [key for key, _ in needed] == [("*",)]  # the index's count only
    assert len(plan.counts_needed(MemoryFilter.build(metadata={"k": 1}), 0.0, 64)) == 2


def test_an_unfiltered_knn_is_never_hinted() -> None:
    # RediSearch refuses HYBRID_POLICY on a KNN without a filter ("hybrid query attributes were sent for
    # a non-hybrid query"): found by the CrewAI concurrency test, whose recalls span every scope
    clock = FakeClock()
    plan = KnnPlanner(clock)
    everything = MemoryFilter()
    assert everything.scope_leaves() == []
    assert plan.counts_needed(everything, clock.now, 64) == []  # nothing to count for
    plan.learn([(plan.key(everything), _count(30_000)), (("*",), _count(30_000))])
    assert not plan.batches(everything.scope_leaves(), 20)
    hinted = Knn((), b"\0" * 16, 20, (), True)
    assert "HYBRID_POLICY" not in str(_knn_args(_ctx(None), hinted)[2])
