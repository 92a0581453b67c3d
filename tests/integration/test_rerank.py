"""A store's reranker on every backend: it reorders a text recall's best candidates, sees their contents,
keeps the composite score, never runs for a vector query, and a failing one raises ``ModelError`` with
nothing reinforced."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from _support import Facade, open_like

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import ConfigurationError, InvalidMemoryError, ModelError

NS = ("menu",)
DISHES = ["pasta with tomato", "tomato soup", "tomato salad", "grilled tomato", "tomato and beta bread"]


class Spy:
    """A reranker function preferring texts with "beta"; records what it was asked."""

    def __init__(self, reply: Any = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.reply = reply

    def __call__(self, query: str, texts: list[str]) -> Sequence[float]:
        self.calls.append((query, texts))
        if self.reply is not None:
            return self.reply(texts)  # type: ignore[no-any-return]
        return [1.0 if "beta" in t else 0.0 for t in texts]


async def _pair(mem: Facade, unique_name: str, valkey_url: str, reranker: Any, **options: Any) -> Facade:
    store = await open_like(mem, valkey_url, unique_name + "_rr", reranker=reranker, **options)
    for dish in DISHES:
        await store.remember(dish, namespace=NS)
    return store


async def test_the_reranker_orders_the_hits_and_the_composite_stays(
    mem: Facade, unique_name: str, valkey_url: str
) -> None:
    spy = Spy()
    store = await _pair(mem, unique_name, valkey_url, spy, rerank_depth=5)
    plain = await open_like(mem, valkey_url, unique_name + "_rr")  # the same memories, no reranker
    try:
        reranked = await store.recall("tomato", k=3, namespace=NS, reinforce=False)
        before = await plain.recall("tomato", k=5, namespace=NS, reinforce=False)
        assert reranked.hits[0].memory.content == "tomato and beta bread"
        assert reranked.hits[0].scores.rerank == 1.0
        assert all(h.scores.rerank == 0.0 for h in reranked.hits[1:])
        # the others keep the composite's order, and every composite score is what it was
        composite = {h.memory.id: h.scores.score for h in before.hits}
        rest = [h.memory.id for h in before.hits if h.memory.content != "tomato and beta bread"]
        assert [h.memory.id for h in reranked.hits[1:]] == rest[:2]
        assert all(h.scores.score == pytest.approx(composite[h.memory.id]) for h in reranked.hits)
        assert all(h.scores.rerank is None for h in before.hits)
        # it saw the query and the contents of the rerank_depth best candidates (here all five)
        query, texts = spy.calls[-1]
        assert query == "tomato" and sorted(texts) == sorted(DISHES)
    finally:
        await store.forget_by_scope(namespace_prefix=NS)
        await store.close()
        await plain.close()


async def test_rerank_false_skips_the_reranker_for_one_call(
    mem: Facade, unique_name: str, valkey_url: str
) -> None:
    spy = Spy()
    store = await _pair(mem, unique_name, valkey_url, spy, rerank_depth=5)
    plain = await open_like(mem, valkey_url, unique_name + "_rr")
    try:
        skipped = await store.recall("tomato", k=5, namespace=NS, reinforce=False, rerank=False)
        assert spy.calls == []
        expected = await plain.recall("tomato", k=5, namespace=NS, reinforce=False)
        assert [h.memory.id for h in skipped.hits] == [h.memory.id for h in expected.hits]
        assert all(h.scores.rerank is None for h in skipped.hits)
        reranked = await store.recall("tomato", k=5, namespace=NS, reinforce=False)  # the default: on
        assert len(spy.calls) == 1 and reranked.hits[0].scores.rerank == 1.0
        with pytest.raises(InvalidMemoryError, match="rerank"):
            await store.recall("tomato", k=5, namespace=NS, rerank="no")
    finally:
        await store.forget_by_scope(namespace_prefix=NS)
        await store.close()
        await plain.close()


async def test_depth_is_at_least_the_page_and_a_vector_query_is_not_reranked(
    mem: Facade, unique_name: str, valkey_url: str
) -> None:
    spy = Spy()
    store = await _pair(mem, unique_name, valkey_url, spy, rerank_depth=2)
    try:
        await store.recall("tomato", k=1, namespace=NS, reinforce=False)
        assert len(spy.calls[-1][1]) == 2
        await store.recall("tomato", k=4, namespace=NS, reinforce=False)
        assert len(spy.calls[-1][1]) == 4
        calls = len(spy.calls)
        vector = HashingEmbedder(64).embed(["tomato"])[0]
        result = await store.recall_by_vector(vector, k=3, namespace=NS, reinforce=False)
        assert len(spy.calls) == calls and all(h.scores.rerank is None for h in result.hits)
        # paging goes through the reranked order
        whole = await store.recall("tomato", k=4, namespace=NS, reinforce=False)
        second = await store.recall("tomato", k=2, offset=2, namespace=NS, reinforce=False)
        assert [h.memory.id for h in second.hits] == [h.memory.id for h in whole.hits[2:4]]
    finally:
        await store.forget_by_scope(namespace_prefix=NS)
        await store.close()


@pytest.mark.parametrize(
    "reply",
    [
        lambda texts: [1.0],  # too few
        lambda texts: [math.nan] * len(texts),
        lambda texts: ["high"] * len(texts),
        lambda texts: 1 / 0,  # it raises
    ],
    ids=["count", "nan", "text", "raises"],
)
async def test_a_failing_reranker_raises_model_error_and_reinforces_nothing(
    mem: Facade, unique_name: str, valkey_url: str, reply: Any
) -> None:
    store = await _pair(mem, unique_name, valkey_url, Spy(reply))
    try:
        with pytest.raises(ModelError, match="reranker"):
            await store.recall("tomato", k=2, namespace=NS)
        with pytest.raises(ModelError, match="reranker"):  # every candidate on the page
            await store.recall("tomato", k=len(DISHES), namespace=NS)
        listed = (await store.list(namespace=NS, limit=10)).memories
        assert len(listed) == len(DISHES)
        assert all(m.access_count == 0 for m in listed)
    finally:
        await store.forget_by_scope(namespace_prefix=NS)
        await store.close()


async def test_an_async_rerank_function(mem: Facade, unique_name: str, valkey_url: str) -> None:
    async def prefer_soup(query: str, texts: list[str]) -> list[float]:
        return [float("soup" in t) for t in texts]

    if isinstance(mem.store, MemoryStore):
        with pytest.raises(ConfigurationError, match="async store"):
            MemoryStore.from_url(valkey_url, name=unique_name + "_x", embedder=HashingEmbedder(64),
                                 reranker=prefer_soup)  # fmt: skip
        return
    assert isinstance(mem.store, AsyncMemoryStore)
    store = await _pair(mem, unique_name, valkey_url, prefer_soup)
    try:
        result = await store.recall("tomato", k=2, namespace=NS, reinforce=True)
        assert result.hits[0].memory.content == "tomato soup"
        assert result.hits[0].memory.access_count == 1
    finally:
        await store.forget_by_scope(namespace_prefix=NS)
        await store.close()


def test_bad_reranker_and_depth_are_configuration_errors(valkey_url: str, unique_name: str) -> None:
    with pytest.raises(ConfigurationError, match="reranker"):
        MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64), reranker=42)
    for depth in (0, True, 2.5):
        with pytest.raises(ConfigurationError, match="rerank_depth"):
            MemoryStore.from_url(
                valkey_url, name=unique_name, embedder=HashingEmbedder(64), rerank_depth=depth
            )
