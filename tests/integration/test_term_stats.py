"""The scopes' term counts kept at write time (``TermStats``), on every backend: after any history of
writes, replacements, updates, deletions, expiries (before and after the server reclaims the memories)
and purges, they equal what the index counts for the same selection, exactly; and a hybrid recall ranks
the same with them as with the index's counts. On Valkey, counts that cannot tell say so (the recall then
counts with the index) instead of answering wrong."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _support import Facade, open_like

import agentmem_core._flows_candidates as recall_module
from agentmem_core._conditions import TagIn
from agentmem_core._counts import live_count, live_count_ops
from agentmem_core._encoding import ScopeKey
from agentmem_core._lexical import query_terms
from agentmem_core.ops import TermStats
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import F

A, B, DEEP = ("ts", "a"), ("ts", "b"), ("ts", "a", "deep")
TERMS = tuple(query_terms("apple banana cherry walnut passport nothing"))
SELECTIONS: list[tuple[dict[str, Any], tuple[tuple[str, ...], ...]]] = [
    ({"namespace_prefix": ("ts",)}, (A, B, DEEP)),
    ({"namespace": A}, (A,)),
    ({"namespace_prefix": A}, (A, DEEP)),
    ({"namespace": B}, (B,)),
]


async def _execute(store: Any, ops: list[Any]) -> list[Any]:
    backend = store._backend
    if hasattr(backend, "aexecute"):
        return list(await backend.aexecute(ops))
    return list(backend.execute(ops))


async def _kept_and_counted(mem: Facade, now: float) -> list[tuple[Any, Any]]:
    """Per selection: (the kept counts, the index's live counts) of TERMS."""
    out = []
    for selection, namespaces in SELECTIONS:
        leaves = tuple(MemoryFilter.build(**selection).scope_leaves())
        tags = tuple(ScopeKey(ns).tag for ns in namespaces)
        size = live_count_ops(leaves, now)
        per_term = [live_count_ops((*leaves, TagIn(F.X_TERMS, (t,))), now) for t in TERMS]
        replies = await _execute(
            mem.store, [TermStats(tags, leaves, TERMS, now), *size, *(op for ops in per_term for op in ops)]
        )
        at = 1 + len(size)
        counted = [live_count(replies[1:at])]
        for ops in per_term:
            counted.append(live_count(replies[at : at + len(ops)]))
            at += len(ops)
        kept = replies[0]
        out.append(((kept[0], *kept[1]) if kept is not None else None, tuple(counted)))
    return out


async def _history(mem: Facade) -> list[str]:
    """Writes, replacements, content updates, TTL changes, deletions; some memories expire in 1 s."""
    ids = await mem.remember_many(
        [{"content": f"apple {i} and banana", "namespace": A} for i in range(6)]
        + [{"content": f"cherry {i} apple", "namespace": B, "ttl": 1} for i in range(4)]
        + [{"content": f"walnut {i} passport", "namespace": DEEP} for i in range(3)]
        + [{"content": "the the of", "namespace": A}]  # no terms at all
        + [  # term mixes and lengths: BM25 scores of many levels (the ranking depends on every count)
            {"content": text, "namespace": ns}
            for text, ns in [
                ("apple banana cherry", A), ("apple apple walnut banana pie crust", A), ("banana", B),
                ("walnut and apple", DEEP), ("passport apple cherry cherry", B), ("bread", A),
            ]
        ]
    )
    await mem.remember("apple pie with walnut", namespace=A, id="caller-1")
    await mem.remember("banana bread", namespace=A, id="caller-1")  # replaces it: apple, walnut leave
    await mem.update(ids[0], content="passport renewal")  # apple, banana -> passport
    await mem.update(ids[1], ttl=1)  # now expiring, its terms kept apart
    await mem.update(ids[11], content="cherry walnut", ttl=1)
    await mem.forget_many([ids[2], ids[6]])
    return ids


async def test_kept_term_counts_equal_the_index_counts_through_a_history(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    await _history(mem)
    for kept, counted in await _kept_and_counted(mem, clock.now):
        assert kept == counted
    clock.now += 5  # the TTL memories are past their time for the store, still on the server
    for kept, counted in await _kept_and_counted(mem, clock.now):
        assert kept == counted
    await asyncio.sleep(1.3)  # and now reclaimed by the server (Valkey), unpurged
    for kept, counted in await _kept_and_counted(mem, clock.now):
        assert kept == counted
    await mem.remember("apple again", namespace=B)  # a write purges B
    await mem.remember("walnut again", namespace=DEEP)
    results = await _kept_and_counted(mem, clock.now)
    for kept, counted in results:
        assert kept == counted
    assert results[0][1][0] > 0 and any(results[0][1][1:])  # the counts are not all empty


async def test_a_scope_emptied_and_written_again_counts_from_zero(mem: Facade) -> None:
    ids = await mem.remember_many([{"content": f"apple {i}", "namespace": B} for i in range(3)])
    await mem.forget_many(ids)
    await mem.remember("banana split", namespace=B)
    kept, counted = (await _kept_and_counted(mem, mem.clock.now))[3]  # type: ignore[attr-defined]
    assert kept == counted and counted[0] == 1


async def test_a_hybrid_recall_ranks_the_same_with_the_kept_counts_and_the_index_counts(
    mem: Facade, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _history(mem)
    mem.clock.now += 5  # type: ignore[attr-defined]
    queries = ["apple banana", "walnut passport cherry", "banana bread"]
    selections = [{"namespace_prefix": ("ts",)}, {"namespace": A}]
    runs = []
    for stats_scopes in (recall_module.STATS_SCOPES, 0):  # kept counts, then the index's counts
        monkeypatch.setattr(recall_module, "STATS_SCOPES", stats_scopes)
        store = await open_like(mem, "", unique_name, clock=mem.clock)  # type: ignore[attr-defined]
        try:
            run = []
            for query in queries:
                for selection in selections:
                    for _ in range(2):  # the first recall learns the scopes; the second reads ahead
                        result = await store.recall(query, k=5, reinforce=False, **selection)
                        run.append([(h.memory.id, round(h.scores.score, 9)) for h in result.hits])
            runs.append(run)
        finally:
            await store.close()
    assert runs[0] == runs[1]
    assert any(runs[0])


def _raw(valkey_url: str) -> Any:
    import valkey

    return valkey.Valkey.from_url(valkey_url)


def _kept(store: Any, namespace: tuple[str, ...]) -> Any:
    leaves = tuple(MemoryFilter.build(namespace=namespace).scope_leaves())
    (kept,) = store._backend.execute([TermStats((ScopeKey(namespace).tag,), leaves, TERMS, store._clock())])
    return kept


def test_counts_of_a_scope_written_before_they_were_kept_are_not_used(store: Any, valkey_url: str) -> None:
    """A scope whose counts are not complete (its memories were written by an earlier version: no "#v")
    answers None, and a recall counts with the index: the same ranking as with complete counts."""
    for i in range(8):
        store.remember(f"apple {i} banana" + " cherry" * (i % 3), namespace=A)
    assert _kept(store, A) is not None
    def ranked() -> list[tuple[str, float]]:
        result = store.recall("apple cherry", k=5, namespace=A, reinforce=False)
        return [(h.memory.id, h.scores.score) for h in result.hits]

    before = ranked()
    raw = _raw(valkey_url)
    raw.hdel(store.keys.terms(ScopeKey(A).tag), "#v")
    assert _kept(store, A) is None
    after = ranked()
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before])
    store.remember("apple again", namespace=A)
    assert _kept(store, A) is None  # still not complete: only an empty scope starts them again


def test_an_expiring_memory_whose_terms_are_lost_makes_the_counts_incomplete(
    store: Any, valkey_url: str
) -> None:
    """Counts never answer wrong: a reclaimed memory whose terms cannot be found leaves them "not
    complete" when it is purged (and the unpurged one makes the read say so first)."""
    keep = store.remember("walnut bread", namespace=B)
    store.remember("walnut cake", namespace=B)  # the scope never empties (that would start them again)
    gone = store.remember("apple pie", namespace=B, ttl=1)
    raw = _raw(valkey_url)
    raw.hdel(store.keys.expiring_terms(ScopeKey(B).tag), gone)
    time.sleep(1.3)
    assert _kept(store, B) is None  # past its time, unpurged, its terms unknown
    store.forget(keep)  # purges B first
    store.remember("banana", namespace=B)
    assert _kept(store, B) is None
    assert raw.hget(store.keys.terms(ScopeKey(B).tag), "#v") is None
