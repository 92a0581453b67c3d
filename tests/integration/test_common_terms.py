"""The lexical channel's common terms, on every backend: a query term more memories hold than
``lexical_term_pool`` is counted, never enumerated (its memories are no candidates); the rare terms'
memories come from one union query; the store remembers which terms were common and leaves them out of
the union next time; and a recall's result never depends on that memory (a term that became rare is
asked for again)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from _support import Facade, open_like

from agentmem_core.embeddings import CallableEmbedder
from agentmem_core.ops import FilterSearch, TermStats
from agentmem_core.schema import F

DIMS = 32
NS = ("terms",)
POOL = 5


def _random_direction(texts: Sequence[str]) -> np.ndarray:
    """A vector per text that says nothing about its words (the vector channel ranks at random)."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        rows.append(np.random.default_rng(seed).normal(size=DIMS))
    return np.asarray(rows)


OPTIONS: dict[str, Any] = {
    "embedder": CallableEmbedder(_random_direction, dims=DIMS),
    "lexical_term_pool": POOL,
    "hybrid_pool": 30,
    "candidate_multiplier": 3,
}


KEPT = "kept"
"""A TermSpy entry ``((KEPT, *terms), 0)``: the terms' counts read from the scopes' kept term counts."""


class TermSpy:
    """Records ``(terms, row limit)`` of every term search a store's backend executes (``x_terms`` leaves),
    and ``((KEPT, *terms), 0)`` for a read of the kept term counts (``TermStats``)."""

    def __init__(self, store: Any) -> None:
        self.limits: list[list[tuple[tuple[str, ...], int]]] = []
        backend = store._backend
        if hasattr(backend, "aexecute"):
            inner_async = backend.aexecute

            async def aexecute(ops: Any) -> list[Any]:
                self._see(ops)
                return list(await inner_async(ops))

            backend.aexecute = aexecute
        if hasattr(backend, "execute"):
            inner = backend.execute

            def execute(ops: Any) -> list[Any]:
                self._see(ops)
                return list(inner(ops))

            backend.execute = execute

    def _see(self, ops: Any) -> None:
        seen = []
        for op in ops:
            if isinstance(op, TermStats):
                seen.append(((KEPT, *op.terms), 0))
            # a count's complement (its expired matches, subtracted: agentmem_core._counts) is not
            # another term query
            if isinstance(op, FilterSearch) and not any(
                getattr(leaf, "field", None) == F.X_EXPIRES_AT and getattr(leaf, "hi", None) is not None
                for leaf in op.leaves
            ):
                for leaf in op.leaves:
                    if getattr(leaf, "field", None) == F.X_TERMS:
                        seen.append((tuple(leaf.tokens), op.limit))
        if seen:
            self.limits.append(seen)


async def _store(mem: Facade, name: str, **options: Any) -> Facade:
    return await open_like(mem, "", name, clock=mem.clock, **{**OPTIONS, **options})  # type: ignore[attr-defined]


def _ids(result: Any) -> list[tuple[str, float]]:
    return [(h.memory.id, round(h.scores.score, 9)) for h in result.hits]


async def test_a_common_terms_rows_are_no_candidates_and_its_count_is_sent_without_rows(
    mem: Facade, unique_name: str
) -> None:
    store = await _store(mem, unique_name + "_a")
    try:
        # "weather" is in 60 memories (common: more than POOL), "passport" in one (rare)
        await store.remember_many(
            [{"content": f"note {i} about the weather", "namespace": NS} for i in range(60)]
        )
        target = await store.remember("the passport is in the hotel safe", namespace=NS)
        await store.close()
        # a store that did not write the scope: it knows neither its scopes nor its terms yet (the
        # writer would guess the scope it wrote, and take the kept counts from its first recall on)
        store = await _store(mem, unique_name + "_a")
        spy = TermSpy(store.store)
        first = await store.recall("weather passport", k=5, namespace=NS, reinforce=False)
        assert first.hits[0].memory.id == target
        # a count per term, and the union of the terms not known to be common, up to POOL rows per term
        assert spy.limits[0] == [(("weather",), 0), (("passport",), 0), (("weather", "passport"), 2 * POOL)]
        assert spy.limits[1] == [(("passport",), POOL)]  # that union was cut short: the rare terms' one
        second = await store.recall("weather passport", k=5, namespace=NS, reinforce=False)
        # known common, "weather" is left out; both counts are the scope's kept ones: one round trip
        assert spy.limits[2] == [((KEPT, "weather", "passport"), 0), (("passport",), POOL)]
        assert len(spy.limits) == 3
        assert _ids(second) == _ids(first)
    finally:
        await store.close()


async def test_a_term_that_became_rare_is_asked_for_its_rows_again(mem: Facade, unique_name: str) -> None:
    store = await _store(mem, unique_name + "_b")
    try:
        ids = await store.remember_many(
            [{"content": f"filler {i} about nothing", "namespace": NS} for i in range(80)]
            + [{"content": f"mango {i} smoothie", "namespace": NS} for i in range(40)]
        )
        mangoes = ids[80:]
        await store.recall("mango", k=5, namespace=NS, reinforce=False)  # mango: common, remembered
        await store.forget_many(mangoes[:-2])  # two left: rare now
        spy = TermSpy(store.store)
        warm = await store.recall("mango", k=5, namespace=NS, reinforce=False)
        assert spy.limits == [[((KEPT, "mango"), 0)], [(("mango",), POOL)]]  # counted, found rare, asked
        assert {h.memory.id for h in warm.hits[:2]} == set(mangoes[-2:])
        fresh = await _store(mem, unique_name + "_b")  # the same memories, a store that remembers nothing
        try:
            cold = await fresh.recall("mango", k=5, namespace=NS, reinforce=False)
        finally:
            await fresh.close()
        assert _ids(warm) == _ids(cold)
    finally:
        await store.close()


@pytest.mark.parametrize("held_by", [POOL, POOL + 1])
async def test_the_pool_is_the_boundary(mem: Facade, unique_name: str, held_by: int) -> None:
    """A term held by exactly ``lexical_term_pool`` memories is enumerated; one more makes it common."""
    store = await _store(mem, f"{unique_name}_c{held_by}")
    try:
        await store.remember_many(
            [{"content": f"filler {i} about nothing", "namespace": NS} for i in range(80)]
            + [{"content": f"kiwi {i}", "namespace": NS} for i in range(held_by)]
        )
        spy = TermSpy(store.store)
        for _ in range(2):
            await store.recall("kiwi", k=3, namespace=NS, reinforce=False)
        asked = [(("kiwi",), POOL)] if held_by <= POOL else []  # a common term: only counted
        assert spy.limits[1] == [((KEPT, "kiwi"), 0), *asked]
    finally:
        await store.close()


async def test_a_recall_ranks_the_same_whether_or_not_the_store_knew_a_term_was_common(
    mem: Facade, unique_name: str
) -> None:
    """A common term's rows are never candidates, so asking for them (the first recall) or not (the
    next) ranks alike. The first memories written hold the term in the shortest texts (the best BM25):
    the rows an engine returns first, and outside a KNN pool of 3."""
    store = await _store(mem, unique_name + "_d", hybrid_pool=1, candidate_multiplier=1)
    try:
        await store.remember_many(
            [{"content": f"hail {i}", "namespace": NS} for i in range(POOL)]
            + [{"content": f"hail {i} and wind and rain and fog", "namespace": NS} for i in range(60)]
        )
        await store.close()  # the reader did not write the scope: its first recall knows nothing yet
        store = await _store(mem, unique_name + "_d", hybrid_pool=1, candidate_multiplier=1)
        spy = TermSpy(store.store)
        cold = await store.recall("hail", k=3, namespace=NS, reinforce=False)
        warm = await store.recall("hail", k=3, namespace=NS, reinforce=False)
        assert spy.limits == [[(("hail",), POOL)], [((KEPT, "hail"), 0)]]
        assert _ids(cold) == _ids(warm)
    finally:
        await store.close()


async def test_a_common_term_in_a_whole_union_brings_no_candidates(mem: Facade, unique_name: str) -> None:
    """A union that came back whole may still hold a common term's memories: they are dropped, so the
    first recall (the union of both terms) ranks as the next (the rare term's union alone)."""
    store = await _store(mem, unique_name + "_e", hybrid_pool=1, candidate_multiplier=1)
    try:
        await store.remember_many(
            [{"content": f"sleet {i}", "namespace": NS} for i in range(POOL + 1)]  # common, barely
            + [{"content": "the ferry leaves at noon", "namespace": NS}]
            + [{"content": f"filler {i} about nothing", "namespace": NS} for i in range(80)]
        )
        spy = TermSpy(store.store)
        cold = await store.recall("sleet ferry", k=3, namespace=NS, reinforce=False)
        warm = await store.recall("sleet ferry", k=3, namespace=NS, reinforce=False)
        assert spy.limits[0][-1] == (("sleet", "ferri"), 2 * POOL)  # POOL + 2 rows: it came back whole
        assert spy.limits[1] == [((KEPT, "sleet", "ferri"), 0), (("ferri",), POOL)] and len(spy.limits) == 2
        assert _ids(cold) == _ids(warm)
    finally:
        await store.close()
