"""The reference model on its own (no server): the documented semantics it encodes, and its recall check."""

from __future__ import annotations

import dataclasses

import pytest

from agentmem_core import InvalidMemoryError, Kind, MemoryInput, NotFoundError
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.model import ReferenceModel, Scored, recall_page_problems


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def model(clock: Clock) -> ReferenceModel:
    return ReferenceModel(embedder=HashingEmbedder(64), clock=clock)


def test_a_re_put_key_keeps_created_at_place_and_counters(model: ReferenceModel, clock: Clock) -> None:
    first = model.remember("likes tea", user_id="k", key="drink")
    born = clock.now
    model.remember("another", user_id="k")
    model.reinforce([first])
    clock.now += 100
    assert model.remember("likes coffee", user_id="k", key="drink") == first
    memory = model.get(first)
    assert memory is not None and memory.created_at == born and memory.updated_at == clock.now
    assert memory.access_count == 1 and memory.last_accessed_at == born
    # same created_at: the write order decides, and the re-put key kept its place (first)
    oldest = model.list(user_id="k", order="oldest").memories
    assert [m.content for m in oldest] == ["likes coffee", "another"]


def test_expired_memories_are_gone_for_every_operation(model: ReferenceModel, clock: Clock) -> None:
    short = model.remember("short", user_id="u", ttl=60)
    model.remember("episodic", user_id="u", kind=Kind.EPISODIC)  # the kind's default TTL: 7 days
    model.remember("held", user_id="u1", id="shared", ttl=60)
    clock.now += 61
    assert model.get(short) is None and model.count(user_id="u") == 1
    assert model.forget(short) is False
    with pytest.raises(NotFoundError):
        model.update(short, importance=0.9)
    assert model.remember("free again", user_id="u2", id="shared") == "shared"
    clock.now += 7 * 86_400
    assert model.count(user_id="u") == 0 and model.list_namespaces() == []


def test_a_live_caller_id_belongs_to_its_scope(model: ReferenceModel) -> None:
    model.remember("alice's", user_id="alice", id="x")
    with pytest.raises(InvalidMemoryError):
        model.remember("bob's", user_id="bob", id="x")
    with pytest.raises(InvalidMemoryError):
        model.remember_many([MemoryInput("a", user_id="p", id="y"), MemoryInput("b", user_id="q", id="y")])
    assert model.count(user_id="bob") == 0 and model.get("y") is None


def test_list_orders_pages_and_cursors(model: ReferenceModel) -> None:
    ids = model.remember_many([MemoryInput(f"message {i}", thread_id="chat") for i in range(7)])
    assert [m.id for m in model.list(thread_id="chat", order="oldest", limit=10).memories] == ids
    assert [m.id for m in model.list(thread_id="chat", limit=10).memories] == ids[::-1]
    walked, cursor = [], None
    while True:
        page = model.list(thread_id="chat", order="oldest", limit=3, cursor=cursor)
        walked += [m.id for m in page.memories]
        if (cursor := page.next_cursor) is None:
            break
    assert walked == ids
    with pytest.raises(InvalidMemoryError):
        model.list(thread_id="chat", order="newest", cursor=model.list(order="oldest", limit=1).next_cursor)


def test_list_namespaces_follows_langgraph(model: ReferenceModel) -> None:
    names = [("a", "b"), ("a", "bc"), ("a.b",), ("users", "ana", "prefs"), ("users", "bob", "prefs")]
    for namespace in names:
        model.remember("x", namespace=namespace)
    model.remember("no namespace", user_id="u")
    assert model.list_namespaces(prefix=("a", "b")) == [("a", "b")]
    assert model.list_namespaces(prefix=("users", "*", "prefs"), limit=1, offset=1) == [names[4]]
    assert model.list_namespaces(suffix=("prefs",), max_depth=1) == [("users",)]


def test_recall_ranks_by_the_composite_and_reinforces(model: ReferenceModel, clock: Clock) -> None:
    low = model.remember("window seat", user_id="r", importance=0.0)
    high = model.remember("window seat", user_id="r", importance=1.0)
    model.remember("unrelated coffee", user_id="r", importance=1.0)
    result = model.recall("window seat", user_id="r", k=2)
    assert [h.memory.id for h in result] == [high, low]
    assert all(h.memory.access_count == 1 and h.memory.last_accessed_at == clock.now for h in result)
    # importance only: equal scores, equal distances (same text), so the smaller internal id first
    ranked = model.rank("window seat", user_id="r", weights={"similarity": 0, "recency": 0, "importance": 1})
    assert [s.memory.id for s in ranked][:2] == [high, ranked[1].memory.id]


def test_capacity_evicts_the_lowest_importance_plus_recency(clock: Clock) -> None:
    model = ReferenceModel(embedder=HashingEmbedder(64), clock=clock, max_items_per_scope=2)
    low = model.remember("first", user_id="e", importance=0.0)
    other = model.remember("second", user_id="e", importance=0.5)
    model.update(low, importance=1.0)
    third = model.remember("third", user_id="e", importance=0.6)
    assert {m.id for m in model.list(user_id="e").memories} == {low, third}
    assert model.get(other) is None


def _scored(memory_id: str, score: float, distance: float, model: ReferenceModel) -> Scored:
    base = model.rank("window seat")[0]
    return Scored(
        memory=dataclasses.replace(base.memory, id=memory_id),
        internal_id=memory_id,
        distance=distance,
        similarity=1 - distance / 2,
        recency=1.0,
        score=score,
    )


def test_recall_page_problems_accepts_near_ties_and_rejects_swaps(model: ReferenceModel) -> None:
    model.remember("window seat")
    ranking = [
        _scored("a", 0.9, 0.1, model),
        _scored("b", 0.9 - 1e-7, 0.1, model),  # a near-tie of a
        _scored("c", 0.5, 0.2, model),
        _scored("d", 0.5, 0.2, model),  # an exact tie of c: the smaller id first
    ]
    assert recall_page_problems(ranking, [("a", 0.9, 0.1), ("b", 0.9, 0.1)], offset=0, k=2) == []
    assert recall_page_problems(ranking, [("b", 0.9, 0.1), ("a", 0.9, 0.1)], offset=0, k=2) == []
    assert recall_page_problems(ranking, [("c", 0.5, 0.2)], offset=2, k=1) == []
    assert recall_page_problems(ranking, [("d", 0.5, 0.2)], offset=2, k=1) != []
    assert recall_page_problems(ranking, [("c", 0.5, 0.2), ("a", 0.9, 0.1)], offset=0, k=2) != []
    assert recall_page_problems(ranking, [("a", 0.8, 0.1)], offset=0, k=1) != []  # wrong score
    assert recall_page_problems(ranking, [("a", 0.9, 0.1)], offset=0, k=2) != []  # short page


def test_equal_scores_from_different_inputs_may_come_in_either_order(model: ReferenceModel) -> None:
    # similarity 1 / importance 0.5 against similarity 0.5 / importance 1: the same score here, but a float32
    # backend's similarity of 1 may come out as 0.99999994, so the distance tie-break is not guaranteed
    model.remember("window seat")
    ranking = [_scored("near", 0.8, 0.0, model), _scored("far", 0.8, 1.0, model)]
    assert recall_page_problems(ranking, [("far", 0.8, 1.0)], offset=0, k=1) == []
    # ... unless the score ignores the distance: then the closer memory must come first
    ranking = [dataclasses.replace(s, similarity_weight=0.0) for s in ranking]
    assert recall_page_problems(ranking, [("far", 0.8, 1.0)], offset=0, k=1) != []
