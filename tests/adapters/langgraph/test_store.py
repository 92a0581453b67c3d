"""ValkeyMemoryStore / AsyncValkeyMemoryStore on the real Valkey + search module (tests/conftest.py).

Each test gets its own store name (``unique_name``), so tests never flush or share items.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any, TypedDict

import pytest
import valkey.asyncio as avalkey
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from agentmem_core import IndexConfig as CoreIndexConfig
from agentmem_langgraph import AsyncValkeyMemoryStore, ValkeyMemoryStore

pytestmark = pytest.mark.integration

DIMS = 32


def embed(texts: list[str]) -> list[list[float]]:
    """Deterministic hashing bag of words (a constant component keeps every vector non-zero)."""
    out = []
    for text in texts:
        vector = [0.0] * DIMS
        vector[0] = 0.05
        for word in text.lower().split():
            vector[1 + int(hashlib.sha256(word.encode()).hexdigest(), 16) % (DIMS - 1)] += 1.0
        out.append(vector)
    return out


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["text"]}
FLAT = {"index": CoreIndexConfig(dims=DIMS, algorithm="FLAT")}


@pytest.fixture
def store(valkey_url: str, unique_name: str) -> Iterator[ValkeyMemoryStore]:
    with ValkeyMemoryStore.from_url(
        valkey_url, name=unique_name, index=INDEX, ranking="similarity", core_options=FLAT
    ) as s:
        s.setup()
        yield s


@pytest.fixture
async def astore(valkey_url: str, unique_name: str) -> AsyncIterator[AsyncValkeyMemoryStore]:
    async with AsyncValkeyMemoryStore.from_url(
        valkey_url, name=unique_name, index=INDEX, ranking="similarity", core_options=FLAT
    ) as s:
        await s.setup()
        yield s


def keys(items: Any) -> list[str]:
    return [i.key for i in items]


# -- put / get / delete ----------------------------------------------------------------------------------
def test_put_get_update_delete(store: ValkeyMemoryStore) -> None:
    ns = ("users", "ana")
    value = {"text": "likes tea", "nested": {"a": [1, 2.5, None, True]}, "unicode": "ünï ✓"}
    store.put(ns, "pref", value)
    first = store.get(ns, "pref")
    assert first is not None
    assert (first.namespace, first.key, first.value) == (ns, "pref", value)
    assert first.created_at.tzinfo is timezone.utc and first.created_at <= datetime.now(timezone.utc)
    time.sleep(0.01)
    store.put(ns, "pref", {"text": "likes coffee"})
    second = store.get(ns, "pref")
    assert second is not None and second.value == {"text": "likes coffee"}
    assert second.created_at == first.created_at  # a re-put keeps created_at
    assert second.updated_at > first.updated_at
    assert store.get(ns, "other") is None and store.get(("users",), "pref") is None
    store.delete(ns, "pref")
    assert store.get(ns, "pref") is None
    store.delete(ns, "pref")  # deleting a missing item is a no-op
    assert store.list_namespaces() == []


def test_namespaces_never_collide(store: ValkeyMemoryStore) -> None:
    spaces = [("a", "b"), ("a b",), ("a:b",), ("a/b",), ("a|b",), ("a\\b",), ("a", "b "), ("ü", "ñ✓"),
              ("a",), ("a", "b", "c"), ("a", "bc")]  # fmt: skip
    for n, ns in enumerate(spaces):
        store.put(ns, "k", {"text": f"item {n}", "n": n})
    for n, ns in enumerate(spaces):
        item = store.get(ns, "k")
        assert item is not None and item.value["n"] == n and item.namespace == ns
    assert store.list_namespaces() == sorted(spaces)
    # a prefix matches whole labels only
    assert sorted(i.value["n"] for i in store.search(("a", "b"))) == [0, 9]
    assert sorted(i.value["n"] for i in store.search(("a", "b"), query="item")) == [0, 9]
    assert store.list_namespaces(prefix=("a", "b")) == [("a", "b"), ("a", "b", "c")]
    # a period in a label would let ("a.b",) address ("a", "b") in a dotted encoding: LangGraph refuses it,
    # also for ops that reach batch() directly
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"n": 1})
    for op in (PutOp(("a.b",), "k", {"n": 1}), GetOp(("a.b",), "k"), SearchOp(("a.b",))):
        with pytest.raises(InvalidNamespaceError):
            store.batch([op])
    with pytest.raises(InvalidNamespaceError):
        store.batch([ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("a.b",)),))])


def test_batch_reads_before_writes_and_last_put_wins(store: ValkeyMemoryStore) -> None:
    ns = ("docs",)
    store.put(ns, "old", {"text": "old"})
    results = store.batch(
        [
            PutOp(ns, "k", {"text": "first"}),
            GetOp(ns, "k"),  # puts apply after the reads: not there yet
            PutOp(ns, "k", {"text": "second"}),
            PutOp(ns, "old", None),
            GetOp(ns, "old"),  # still there
            SearchOp(ns, limit=10),
            ListNamespacesOp(),
            PutOp(ns, "gone", {"text": "x"}),
            PutOp(ns, "gone", None),
        ]
    )
    assert results[0] is None and results[1] is None and results[2] is None and results[3] is None
    assert results[4] is not None and results[4].value == {"text": "old"}
    assert keys(results[5]) == ["old"] and results[6] == [ns]
    item = store.get(ns, "k")
    assert item is not None and item.value == {"text": "second"}
    assert store.get(ns, "old") is None and store.get(ns, "gone") is None
    with pytest.raises(ValueError, match="Unknown operation"):
        store.batch(["not an op"])  # type: ignore[list-item]


# -- search ----------------------------------------------------------------------------------------------
def test_search_order_without_query_is_creation_order(store: ValkeyMemoryStore) -> None:
    store.put(("x", "1"), "a", {"text": "a"})
    store.put(("x", "2"), "b", {"text": "b"})
    store.put(("x", "1"), "c", {"text": "c"})
    store.put(("x", "1"), "a", {"text": "a again"})  # keeps its place
    store.delete(("x", "2"), "b")
    store.put(("x", "2"), "b", {"text": "b again"})  # re-created: moves to the end
    assert keys(store.search(("x",))) == ["a", "c", "b"]
    assert keys(store.search(("x",), offset=1, limit=1)) == ["c"]
    assert all(i.score is None for i in store.search(("x",)))


def test_search_similarity_scores_and_scoreless_fill(store: ValkeyMemoryStore) -> None:
    reference = InMemoryStore(index=INDEX)
    for s in (store, reference):
        s.put(("d",), "tea", {"text": "green tea leaves"})
        s.put(("d",), "coffee", {"text": "black coffee"})
        s.put(("d",), "both", {"text": "tea and coffee"})
        s.put(("d",), "raw", {"text": "tea tea tea"}, index=False)
        s.put(("d",), "nofield", {"other": "tea"})
    got = store.search(("d",), query="green tea", limit=10)
    want = reference.search(("d",), query="green tea", limit=10)
    assert keys(got) == keys(want) == ["tea", "both", "coffee", "raw", "nofield"]
    for g, w in zip(got, want):
        assert (g.score is None) == (w.score is None)
        if w.score is not None:
            assert g.score == pytest.approx(w.score, abs=1e-5)
    # offset counts through the ranked items and then the unranked ones
    assert keys(store.search(("d",), query="green tea", offset=2, limit=2)) == ["coffee", "raw"]
    assert keys(store.search(("d",), query="green tea", offset=4, limit=2)) == ["nofield"]
    # InMemoryStore restarts the unranked items at the first on every page past the ranked ones:
    assert keys(reference.search(("d",), query="green tea", offset=4, limit=2)) == ["raw", "nofield"]


def test_a_similarity_search_and_a_get_read_no_counters(store: ValkeyMemoryStore) -> None:
    # An Item shows no access counters, so the store reads none: a similarity search is the KNN's one
    # round trip, and a get reads the memory's hash alone.
    store.put(("d",), "tea", {"text": "green tea leaves"})
    store.put(("d",), "coffee", {"text": "black coffee"})
    store.search(("d",), query="green tea", limit=2)  # the scope is known from here on
    backend = store.core._driver.backend  # type: ignore[attr-defined]
    sent: list[list[Any]] = []
    inner = backend.execute

    def recorded(ops: Any) -> Any:
        sent.append(list(ops))
        return inner(ops)

    backend.execute = recorded
    try:
        assert keys(store.search(("d",), query="green tea", limit=2)) == ["tea", "coffee"]
        assert len(sent) == 1
        item = store.get(("d",), "tea")
        assert item is not None and item.value == {"text": "green tea leaves"}
        assert [getattr(op, "counters", None) for op in sent[-1]] == [False]
    finally:
        del backend.execute


def test_search_filters(store: ValkeyMemoryStore) -> None:
    ns = ("f",)
    store.put(ns, "1", {"text": "one", "n": 1, "color": "red", "meta": {"a": 1, "b": "x"}, "tags": [1, 2]})
    store.put(ns, "2", {"text": "two", "n": 2, "color": "blue", "meta": {"a": 2, "b": "x"}})
    store.put(ns, "3", {"text": "three", "n": 3, "meta": {"a": 3, "deep": {"c": True}}})
    store.put(ns, "4", {"text": "four", "meta": "not a dict"})

    def found(flt: dict[str, Any], query: str | None = None) -> list[str]:
        return sorted(keys(store.search(ns, filter=flt, query=query, limit=10)))

    assert found({"color": "red"}) == ["1"]
    assert found({"n": {"$gt": 1}}) == ["2", "3"]
    assert found({"n": {"$gte": 1, "$lt": 3}}) == ["1", "2"]
    assert found({"n": {"$lte": 2}}, query="two") == ["1", "2"]
    assert found({"color": {"$ne": "red"}}) == ["2", "3", "4"]  # $ne matches a missing key
    assert found({"meta": {"b": "x"}}) == ["1", "2"]  # a nested dict matches partially
    assert found({"meta": {"a": {"$gte": 2}}}) == ["2", "3"]
    assert found({"meta": {"deep": {"c": True}}}) == ["3"]
    assert found({"meta": {"b": {"$ne": "x"}}}) == ["3", "4"]  # see the note on "4" below
    assert found({"tags": [1, 2]}) == ["1"] and found({"tags": [2, 1]}) == []
    assert found({"color": "red", "n": 2}) == []
    # Where InMemoryStore is wrong: a range on a missing key raises TypeError there (float(None));
    # here it never matches.
    assert found({"missing": {"$gt": 0}}) == []
    with pytest.raises(TypeError):
        reference = InMemoryStore()
        reference.put(ns, "1", {"n": 1})
        reference.search(ns, filter={"missing": {"$gt": 0}})
    with pytest.raises(ValueError, match="Unsupported operator"):
        store.search(ns, filter={"n": {"$regex": "x"}})
    # Known deviation (core gap: no type test): {"meta": {"b": {"$ne": "x"}}} matches "4" here, whose
    # "meta" is a string; InMemoryStore requires "meta" to be a dict.


def test_composite_ranking(valkey_url: str, unique_name: str) -> None:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as s:
        s.setup()
        s.put(("c",), "tea", {"text": "green tea leaves"})
        s.put(("c",), "coffee", {"text": "black coffee"})
        s.put(("c",), "raw", {"text": "green tea"}, index=False)
        got = s.search(("c",), query="green tea")
        assert keys(got) == ["tea", "coffee", "raw"]
        assert got[0].score is not None and got[1].score is not None
        assert 1 >= got[0].score > got[1].score >= 0 and got[2].score is None


def test_multiple_index_fields_are_embedded_as_one_text(store: ValkeyMemoryStore) -> None:
    store.put(("m",), "both", {"title": "tea", "body": "coffee"}, index=["title", "body"])
    store.put(("m",), "title", {"title": "tea", "body": "water"}, index=["title"])
    store.put(("m",), "whole", {"a": "tea"}, index=["$"])
    got = store.search(("m",), query="tea coffee")
    assert keys(got)[0] == "both" and all(i.score is not None for i in got)


def test_store_without_index_ignores_the_query(valkey_url: str, unique_name: str) -> None:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name) as s:
        s.setup()
        s.put(("n",), "a", {"text": "x"})
        s.put(("n",), "b", {"text": "y"})
        got = s.search(("n",), query="y")
        assert keys(got) == ["a", "b"] and all(i.score is None for i in got)


# -- namespaces ------------------------------------------------------------------------------------------
def test_list_namespaces(store: ValkeyMemoryStore) -> None:
    spaces = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f")]
    for ns in spaces:
        store.put(ns, "k", {"text": "t"})
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [("a", "b", "c"), ("a", "b", "d"),
                                                                      ("a", "b", "f")]  # fmt: skip
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(limit=2, offset=1) == sorted(spaces)[1:3]
    # several conditions of one kind (only reachable through batch) combine label by label
    both = (MatchCondition("prefix", ("a", "*")), MatchCondition("prefix", ("*", "c")))
    assert store.batch([ListNamespacesOp(match_conditions=both)])[0] == [("a", "c", "f")]
    clash = (MatchCondition("prefix", ("a", "b")), MatchCondition("prefix", ("a", "c")))
    assert store.batch([ListNamespacesOp(match_conditions=clash)])[0] == []
    store.delete(("a", "c", "f"), "k")  # a namespace without items is not listed (InMemoryStore lists it)
    assert ("a", "c", "f") not in store.list_namespaces()


# -- TTL -------------------------------------------------------------------------------------------------
def test_ttl_expires_and_refreshes(valkey_url: str, unique_name: str) -> None:
    ttl: Any = {"default_ttl": 1 / 60, "refresh_on_read": True}  # one second
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, ttl=ttl) as s:
        s.setup()
        assert s.supports_ttl
        s.put(("t",), "default", {"v": 1})
        s.put(("t",), "long", {"v": 2}, ttl=10)
        s.put(("t",), "forever", {"v": 3}, ttl=None)
        memory = s.core.get_by_key("long", namespace=("t",))
        assert memory is not None and memory.ttl == pytest.approx(600)
        time.sleep(0.6)
        assert s.get(("t",), "default") is not None  # refreshed on read: one more second from now
        time.sleep(0.6)
        assert s.get(("t",), "default", refresh_ttl=False) is not None
        time.sleep(0.6)
        assert s.get(("t",), "default") is None
        assert keys(s.search(("t",))) == ["long", "forever"]


# -- graphs ----------------------------------------------------------------------------------------------
class State(TypedDict):
    user: str
    seen: list[str]


def remember_node(state: State) -> dict[str, Any]:
    store = get_store()
    ns = ("memories", state["user"])
    store.put(ns, f"m{len(store.search(ns))}", {"text": f"visit by {state['user']}"})
    return {"seen": [i.value["text"] for i in store.search(ns, query="visit")]}


def injected_node(state: State, *, store: BaseStore) -> dict[str, Any]:
    item = store.get(("memories", state["user"]), "m0")
    return {"seen": [*state["seen"], "first:" + (item.value["text"] if item else "none")]}


def build(store: BaseStore) -> Any:
    builder = StateGraph(State)
    builder.add_node("remember", remember_node)
    builder.add_node("injected", injected_node)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "injected")
    builder.add_edge("injected", END)
    return builder.compile(store=store)


def test_graph_uses_the_store(store: ValkeyMemoryStore) -> None:
    graph = build(store)
    assert graph.invoke({"user": "ana", "seen": []})["seen"] == ["visit by ana", "first:visit by ana"]
    out = graph.invoke({"user": "ana", "seen": []})["seen"]
    assert out == ["visit by ana", "visit by ana", "first:visit by ana"]
    assert store.list_namespaces() == [("memories", "ana")]


async def test_graph_uses_the_store_async(store: ValkeyMemoryStore, astore: AsyncValkeyMemoryStore) -> None:
    # sync nodes of ainvoke run in worker threads: the async store hops onto its loop for them
    graph = build(astore)
    assert (await graph.ainvoke({"user": "bo", "seen": []}))["seen"] == ["visit by bo", "first:visit by bo"]
    # the sync store's abatch runs in a worker thread
    out = (await build(store).ainvoke({"user": "cy", "seen": []}))["seen"]
    assert out == ["visit by cy", "first:visit by cy"]


# -- async -----------------------------------------------------------------------------------------------
async def test_async_store(astore: AsyncValkeyMemoryStore) -> None:
    await astore.aput(("a", "b"), "k", {"text": "hello world", "n": 1})
    await astore.aput(("a", "bc"), "k", {"text": "hello", "n": 2})
    item = await astore.aget(("a", "b"), "k")
    assert item is not None and item.value == {"text": "hello world", "n": 1}
    got = await astore.asearch(("a",), query="hello world", filter={"n": {"$gte": 1}})
    assert keys(got) == ["k", "k"] and got[0].namespace == ("a", "b") and got[0].score == pytest.approx(1.0)
    assert [i.namespace for i in await astore.asearch(("a", "b"))] == [("a", "b")]
    assert await astore.alist_namespaces(prefix=("a",)) == [("a", "b"), ("a", "bc")]
    await astore.adelete(("a", "b"), "k")
    assert await astore.aget(("a", "b"), "k") is None
    # sync calls on the loop's own thread would deadlock: refused with a pointer to the async method
    with pytest.raises(asyncio.InvalidStateError, match="abatch"):
        astore.get(("a", "bc"), "k")
    # from another thread they hop onto the loop
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(astore.get(("a", "bc"), "k")))
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.01)
    assert result[0] is not None and result[0].value["n"] == 2


async def test_async_store_over_a_client(valkey_url: str, unique_name: str) -> None:
    client = avalkey.Valkey.from_url(valkey_url)
    try:
        s = AsyncValkeyMemoryStore(client, name=unique_name)
        await s.setup()
        await s.abatch([PutOp(("n",), "a", {"x": 1}), PutOp(("n",), "a", {"x": 2})])
        item = await s.aget(("n",), "a")
        assert item is not None and item.value == {"x": 2}
    finally:
        await client.aclose()


def test_summaries_and_facts_the_core_wrote_show_their_text(store: ValkeyMemoryStore) -> None:
    class Summarizer:
        max_input_chars = 10_000

        def summarize(self, memories: Any) -> str:
            return "Ana's Rome trip: hotel near Termini, hated the heat"

        async def asummarize(self, memories: Any) -> str:
            return self.summarize(memories)

    for i, note in enumerate(["hotel near Termini", "too hot in July"]):
        store.put(("trips", "rome"), f"n{i}", {"note": note})
    store.core.consolidate(Summarizer(), namespace=("trips", "rome"))
    store.core.remember("Ana lives in Berlin", subject="home_city", namespace=("trips", "rome"))
    items = store.search(("trips", "rome"), limit=10)
    texts = sorted(i.value["content"] for i in items)
    assert texts == ["Ana lives in Berlin", "Ana's Rome trip: hotel near Termini, hated the heat"]
    store.put(("trips", "rome"), "n9", {"note": "kept as given"})
    assert store.get(("trips", "rome"), "n9").value == {"note": "kept as given"}  # what was put, exactly


def test_search_never_returns_superseded_facts(store: ValkeyMemoryStore) -> None:
    ns = ("profile", "ana")
    store.core.remember("Ana lives in Berlin", subject="home_city", namespace=ns, created_at=1000)
    store.core.remember("Ana lives in Munich", subject="home_city", namespace=ns, created_at=2000)
    listed = [i.value["content"] for i in store.search(ns, limit=10)]
    found = [i.value["content"] for i in store.search(ns, query="where does Ana live", limit=10)]
    assert listed == found == ["Ana lives in Munich"]


def test_records_another_adapter_wrote_show_their_text(store: ValkeyMemoryStore) -> None:
    # a CrewAI record: a caller id, no key, its text in content, its own metadata
    store.core.remember("Ana collects Miles & More", namespace=("travel", "ana"), id="crew-1",
                        metadata={"crewai:categories": ["loyalty"]})  # fmt: skip
    (item,) = store.search(("travel",), limit=5)
    assert item.value == {"content": "Ana collects Miles & More", "crewai:categories": ["loyalty"]}
