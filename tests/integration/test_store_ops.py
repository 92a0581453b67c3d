"""Every store operation against the real Valkey + search module, through the sync and the async store."""

from __future__ import annotations

import time

import pytest
import valkey
from _support import Facade  # tests/integration is on sys.path (rootdir import mode)

from agentmem_core import (
    DimensionMismatchError,
    InvalidMemoryError,
    Kind,
    MemoryStore,
    NotFoundError,
)
from agentmem_core.embeddings import HashingEmbedder


async def test_remember_recall_get(mem: Facade) -> None:
    a = await mem.remember(
        "Ana prefers window seats on long flights", user_id="ana", importance=0.9, tags=["seat"]
    )
    b = await mem.remember("Ana is vegetarian", user_id="ana", metadata={"diet": "veg"})
    await mem.remember("Bob likes aisle seats", user_id="bob")
    result = await mem.recall("window seats", user_id="ana", k=5)
    assert [h.memory.id for h in result][:1] == [a]
    assert {h.memory.user_id for h in result} == {"ana"}
    top = result[0]
    assert 0 <= top.distance < 1
    assert top.scores.similarity == pytest.approx(1 - top.distance / 2)
    assert top.score == top.scores.score
    assert top.memory.access_count == 1
    got = await mem.get(b)
    assert got is not None and got.content == "Ana is vegetarian" and got.metadata == {"diet": "veg"}
    assert got.kind is Kind.SEMANTIC and got.expires_at is None
    assert await mem.get(a[:16] + "0" * 16) is None
    many = await mem.get_many([a, b])
    assert [m.id for m in many] == [a, b]


async def test_recall_without_reinforce_leaves_counts(mem: Facade) -> None:
    a = await mem.remember("the hotel in Lisbon was noisy", thread_id="t1")
    await mem.recall("hotel Lisbon", thread_id="t1", reinforce=False)
    assert (await mem.get(a)).access_count == 0
    await mem.recall("hotel Lisbon", thread_id="t1")
    await mem.recall("hotel Lisbon", thread_id="t1")
    assert (await mem.get(a)).access_count == 2


@pytest.mark.parametrize("twin", [False, True])
async def test_reinforcement_scores_from_the_previous_access(mem: Facade, twin: bool) -> None:
    """Recency is scored from the access before this recall; the hit reports the access it just made.

    Without a twin only the hit can make the top 1 (counters read and reinforced in one script call);
    with an identical twin both can (counters read first, the winner reinforced after).
    """
    clock = mem.clock  # type: ignore[attr-defined]
    created = clock.now
    await mem.remember("the ferry to Capri leaves at nine", thread_id="t")
    await mem.remember("gelato on the harbour", thread_id="t")
    if twin:
        await mem.remember("the ferry to Capri leaves at nine", thread_id="t")
    half_life = mem.store.config.scoring.half_life_seconds
    clock.now = created + half_life
    first = (await mem.recall("ferry Capri", thread_id="t", k=1))[0]
    a = first.memory.id
    assert first.memory.content == "the ferry to Capri leaves at nine"
    assert first.scores.recency == pytest.approx(0.5)  # never accessed: decays from created_at
    assert (first.memory.access_count, first.memory.last_accessed_at) == (1, clock.now)
    clock.now += half_life
    second = (await mem.recall("ferry Capri", thread_id="t", k=1))[0]
    assert second.memory.id == a  # its twin (if any) decayed further
    assert second.scores.recency == pytest.approx(0.5)  # from the first recall, not from this one
    assert (second.memory.access_count, second.memory.last_accessed_at) == (2, clock.now)
    stored = await mem.get(a)
    assert (stored.access_count, stored.last_accessed_at) == (2, clock.now)


async def test_recall_by_vector_and_threshold_near_miss(mem: Facade) -> None:
    embedder = HashingEmbedder(64)
    a = await mem.remember("museum tickets for Tuesday", agent_id="planner")
    vector = embedder.embed(["museum tickets for Tuesday"])[0]
    hits = await mem.recall_by_vector(vector, agent_id="planner", k=1)
    assert hits[0].memory.id == a and hits[0].distance == pytest.approx(0, abs=1e-5)
    empty = await mem.recall("completely unrelated zebra xylophone", agent_id="planner", threshold=0.01)
    assert len(empty) == 0
    assert empty.nearest_miss is not None and empty.nearest_miss.memory_id == a
    assert empty.nearest_miss.distance > 0.01


async def test_scoping_namespace_prefix_and_tags_kinds(mem: Facade) -> None:
    x = await mem.remember("likes jazz bars", namespace=("travel", "prefs"), tags=["music"], kind="semantic")
    y = await mem.remember("visited Porto", namespace=("travel", "trips"), kind=Kind.EPISODIC)
    z = await mem.remember("likes jazz", namespace=("travelx",))
    ids = {h.memory.id for h in await mem.recall("jazz", namespace_prefix=("travel",), k=10)}
    assert ids == {x, y}
    assert {h.memory.id for h in await mem.recall("jazz", namespace=("travel", "prefs"))} == {x}
    assert {h.memory.id for h in await mem.recall("jazz", tags=["music", "nope"])} == {x}
    assert {h.memory.id for h in await mem.recall("Porto", kinds=["episodic"])} == {y}
    assert z not in {h.memory.id for h in await mem.recall("jazz", namespace_prefix="travel")}


async def test_created_and_metadata_filters(mem: Facade) -> None:
    old = await mem.remember("flight to Rome", created_at=1000.0, metadata={"price": 120, "cls": "eco"})
    new = await mem.remember("flight to Oslo", created_at=2000.0, metadata={"price": 400, "cls": "biz"})
    assert {h.memory.id for h in await mem.recall("flight", created_after=1500)} == {new}
    assert {h.memory.id for h in await mem.recall("flight", created_before=1500)} == {old}
    assert {h.memory.id for h in await mem.recall("flight", metadata={"cls": "biz"})} == {new}
    assert {h.memory.id for h in await mem.recall("flight", metadata={"cls": {"$ne": "biz"}})} == {old}
    assert {h.memory.id for h in await mem.recall("flight", metadata={"price": {"$gte": 200}})} == {new}
    assert {h.memory.id for h in await mem.recall("flight", metadata={"price": {"$lt": 200}})} == {old}


async def test_range_filter_refills_to_k(mem: Facade) -> None:
    # 30 near-identical memories; only the 5 with n >= 25 pass a client-side range filter. The KNN pool
    # (k * multiplier) is smaller than 30, so recall must widen it instead of returning fewer than k.
    await mem.remember_many(
        [
            {"content": f"note about packing list item {i}", "metadata": {"n": i}, "user_id": "u"}
            for i in range(30)
        ]
    )
    hits = await mem.recall("packing list", user_id="u", k=5, metadata={"n": {"$gte": 25}})
    assert sorted(h.memory.metadata["n"] for h in hits) == [25, 26, 27, 28, 29]


async def test_recency_ranks_newer_near_equal_memory_first(mem: Facade) -> None:
    now = mem.clock.now  # type: ignore[attr-defined]
    old = await mem.remember("user lives in Berlin", user_id="r", created_at=now - 60 * 86400)
    new = await mem.remember("user lives in Berlin", user_id="r", created_at=now - 3600)
    hits = await mem.recall("where does the user live", user_id="r", k=2)
    assert [h.memory.id for h in hits] == [new, old]
    assert hits[0].scores.recency > hits[1].scores.recency
    assert hits[0].scores.similarity == pytest.approx(hits[1].scores.similarity, abs=1e-6)


async def test_weights_override_per_call(mem: Facade) -> None:
    low = await mem.remember("hotel near the beach", importance=0.0)
    high = await mem.remember("hotel near the station", importance=1.0)
    hits = await mem.recall(
        "hotel near the beach", weights={"similarity": 0.0, "recency": 0.0, "importance": 1.0}
    )
    assert hits[0].memory.id == high
    hits = await mem.recall(
        "hotel near the beach", weights={"similarity": 1.0, "recency": 0.0, "importance": 0.0}
    )
    assert hits[0].memory.id == low


async def test_update_reembeds_only_on_content_change(mem: Facade) -> None:
    a = await mem.remember("likes tea", user_id="u", tags=["drink"])
    updated = await mem.update(a, importance=0.9, tags=["drink", "morning"])
    assert (
        updated.importance == 0.9 and updated.tags == ("drink", "morning") and updated.content == "likes tea"
    )
    updated = await mem.update(a, content="likes green coffee")
    assert updated.content == "likes green coffee"
    assert (await mem.recall("green coffee", user_id="u", k=1))[0].memory.id == a
    with pytest.raises(NotFoundError):
        await mem.update(a[:16] + "f" * 16, importance=0.1)


async def test_update_many_applies_one_change_to_each_memory(mem: Facade) -> None:
    a = await mem.remember("likes tea", user_id="u", metadata={"status": "active", "n": 1})
    b = await mem.remember("likes rain", user_id="v", metadata={"status": "active"}, id="caller-b")
    other = await mem.remember("untouched", user_id="u", metadata={"status": "active"})
    gone = a[:16] + "f" * 16
    updated = await mem.update_many([a, gone, "caller-b", a], metadata={"status": "archived"}, importance=0.2)
    assert [m.id if m else None for m in updated] == [a, None, "caller-b", a]  # per given id, in order
    assert updated[0].metadata == {"status": "archived"} and updated[0].importance == 0.2  # type: ignore[union-attr]
    assert updated[0].content == "likes tea" and updated[2].user_id == "v"  # type: ignore[union-attr]
    assert updated[0].updated_at >= updated[0].created_at  # type: ignore[union-attr]
    assert (await mem.get(b)).metadata == {"status": "archived"}
    assert (await mem.get(other)).metadata == {"status": "active"} and (
        await mem.get(other)
    ).importance == 0.5
    archived = await mem.list(user_id="u", metadata={"status": "archived"})
    assert [m.id for m in archived.memories] == [a]  # the indexed metadata moved with the change
    assert await mem.count(metadata={"status": "archived"}) == 2
    logged = {e.scope.get("user_id"): e for e in await mem.audit() if e.action == "update"}
    assert sorted(logged) == ["u", "v"]  # one entry per scope
    assert logged["u"].ids == (a,) and len(logged["v"].ids) == 1  # each id once
    assert logged["u"].detail == {"changed": ["importance", "metadata"]}
    assert await mem.update_many([], importance=0.3) == []
    assert await mem.update_many([gone], importance=0.3) == [None]
    with pytest.raises(InvalidMemoryError):
        await mem.update_many([a, b], importance=7.0)  # validated once, before anything is written
    with pytest.raises(InvalidMemoryError):
        await mem.update_many(a, importance=0.3)  # one id is not a list of ids
    assert (await mem.get(a)).importance == 0.2


async def test_counts_leave_out_memories_past_their_ttl_the_server_still_holds(mem: Facade) -> None:
    """A count is all matches minus the expired ones (``_counts``): both halves are exact."""
    clock = mem.clock  # type: ignore[attr-defined]
    for i in range(3):
        await mem.remember(f"short-lived note {i} about ferries", user_id="u", ttl=60)
    for i in range(2):
        await mem.remember(f"lasting note {i} about ferries", user_id="u")
    await mem.remember("another user's ferry note", user_id="v", ttl=60)
    assert await mem.count(user_id="u") == 5
    clock.now += 120  # past their TTL by the store's clock; the server's PEXPIRE has not run
    assert await mem.count(user_id="u") == 2
    assert await mem.count() == 2 and await mem.count(user_id="v") == 0
    hits = await mem.recall("ferries note", user_id="u", k=5)
    assert sorted(h.memory.content for h in hits) == [
        "lasting note 0 about ferries",
        "lasting note 1 about ferries",
    ]


@pytest.mark.parametrize("listing", ["listed", "cut short"])
async def test_term_frequencies_leave_out_memories_past_their_ttl_the_server_still_holds(
    mem: Facade, valkey_url: str, unique_name: str, listing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lexical channel's counts are live counts too (``_counts.TermCounts``): a store holding expired
    memories scores a hybrid recall exactly as a store that never had them, whether the expired memories
    fit the listing or their per-term counts are asked for instead."""
    from _support import open_like

    if listing == "cut short":
        monkeypatch.setattr("agentmem_core._counts.EXPIRED_LISTING", 1)

    lasting = ["ferry to the harbour", "ferry times", "harbour walk"] + [f"filler {i}" for i in range(6)]
    clock = mem.clock  # type: ignore[attr-defined]
    other = await open_like(mem, valkey_url, unique_name + "_never", clock=clock)
    try:
        for store, expiring in ((mem, 3), (other, 0)):
            for n, text in enumerate(lasting):
                await store.remember(text, user_id="u", created_at=1000.0 + n)
            for i in range(expiring):  # "ferry" only: its frequency, not harbour's, would be wrong
                await store.remember(f"ferry note {i}", user_id="u", created_at=900.0 + i, ttl=60)
        clock.now += 120  # past their TTL by the store's clock; the server's PEXPIRE has not run
        scored = []
        for store in (mem, other):
            hits = await store.recall("ferry harbour", user_id="u", k=9, reinforce=False)
            scored.append(sorted((h.memory.content, round(h.scores.lexical, 9)) for h in hits))
        assert scored[0] == scored[1]
        assert any(lexical > 0 for _, lexical in scored[0])
    finally:
        await other.forget_by_scope(user_id="u")
        await other.close()


async def test_forget_each_says_which_ids_this_call_deleted(mem: Facade) -> None:
    a = await mem.remember("a", user_id="u")
    await mem.remember("b", user_id="v", id="caller-b")
    gone = await mem.remember("c", user_id="u")
    assert await mem.forget(gone)
    # agentmem's id, a caller's id (another scope), one already deleted, one nobody holds, a repeat
    assert await mem.forget_each([a, "caller-b", gone, "nobody", a]) == [True, True, False, False, False]
    assert await mem.count(user_id="u") == 0 and await mem.count(user_id="v") == 0
    assert await mem.forget_each([]) == [] and await mem.forget_each([a]) == [False]


async def test_key_upsert_replaces(mem: Facade) -> None:
    a = await mem.remember("home airport: LIS", user_id="u", key="home_airport")
    b = await mem.remember("home airport: OPO", user_id="u", key="home_airport")
    assert a == b
    assert (await mem.get(a)).content == "home airport: OPO"
    assert (await mem.stats(user_id="u")).total == 1


async def test_list_newest_first_paginated(mem: Facade) -> None:
    ids = [await mem.remember(f"event {i}", thread_id="th", created_at=1000.0 + i) for i in range(7)]
    await mem.remember("other thread", thread_id="zz", created_at=5000.0)
    seen: list[str] = []
    cursor = None
    while True:
        page = await mem.list(thread_id="th", limit=3, cursor=cursor)
        seen += [m.id for m in page.memories]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))
    kinds_page = await mem.list(thread_id="th", kinds=["episodic"], limit=10)
    assert kinds_page.memories == ()


async def test_ttl_and_kind_defaults(mem: Facade, valkey_url: str) -> None:
    e = await mem.remember("saw a concert", kind="episodic")
    s = await mem.remember("allergic to nuts", kind="semantic")
    short = await mem.remember("temporary note", ttl=0.3)
    got = await mem.get(e)
    assert got.expires_at == pytest.approx(mem.clock.now + 7 * 86400)  # type: ignore[attr-defined]
    assert (await mem.get(s)).expires_at is None
    if mem.backend == "valkey":  # the server's own key lifetimes
        client = valkey.Valkey.from_url(valkey_url)
        assert client.pttl(mem.store.keys.memory(e)) > 6 * 86400 * 1000
        assert client.pttl(mem.store.keys.memory(s)) == -1
        client.close()
    time.sleep(0.5)
    mem.clock.now += 1  # type: ignore[attr-defined]
    assert await mem.get(short) is None
    assert short not in {h.memory.id for h in await mem.recall("temporary note", k=10)}
    assert short not in {m.id for m in (await mem.list(limit=10)).memories}
    stats = await mem.stats()
    assert stats.total == 2 and stats.by_kind == {"episodic": 1, "semantic": 1}


async def test_expired_is_filtered_even_before_the_server_deletes_it(mem: Facade) -> None:
    a = await mem.remember("boarding pass", ttl=3600)
    mem.clock.now += 7200  # type: ignore[attr-defined]  # logically expired, key still present
    assert await mem.get(a) is None
    assert len(await mem.recall("boarding pass")) == 0


async def test_expired_rows_in_the_knn_pool_never_cost_hits(mem: Facade) -> None:
    """KNN carries no expiry leaf: logically expired rows the engine still returns are dropped on the
    client, and the pool widens so that k live memories still come back."""
    near = [[1.0, 0.01 * i] + [0.0] * 62 for i in range(30)]
    far = [[0.0, 1.0, 0.1 * i] + [0.0] * 61 for i in range(5)]
    expiring = await mem.remember_many(
        [{"content": f"old {i}", "user_id": "u", "ttl": 3600} for i in range(30)], vectors=near
    )
    kept = await mem.remember_many([{"content": f"kept {i}", "user_id": "u"} for i in range(5)], vectors=far)
    before = await mem.recall_by_vector(near[0], k=5, user_id="u", reinforce=False)
    assert {h.memory.id for h in before} <= set(expiring)  # the near ones win while alive
    mem.clock.now += 7200  # type: ignore[attr-defined]  # logically expired; the keys are still there
    after = await mem.recall_by_vector(near[0], k=5, user_id="u", reinforce=False)
    assert sorted(h.memory.id for h in after) == sorted(kept)


async def test_forget_and_forget_by_scope(mem: Facade) -> None:
    a = await mem.remember("one", user_id="u1", thread_id="t")
    await mem.remember("two", user_id="u1", thread_id="t2")
    c = await mem.remember("three", user_id="u2")
    assert await mem.forget(a) is True
    assert await mem.forget(a) is False
    await mem.remember_many(
        [{"content": f"bulk {i}", "user_id": "u1", "thread_id": "t3"} for i in range(1200)]
    )
    assert await mem.forget_by_scope(user_id="u1") == 1201
    assert (await mem.stats()).total == 1
    assert (await mem.get(c)) is not None
    assert await mem.forget_many([c]) == 1


async def test_forget_by_scope_with_extra_filter(mem: Facade) -> None:
    await mem.remember_many(
        [{"content": f"x{i}", "user_id": "u", "tags": ["a" if i % 2 else "b"]} for i in range(10)]
    )
    assert await mem.forget_by_scope(user_id="u", tags=["a"]) == 5
    assert {m.tags for m in (await mem.list(user_id="u", limit=50)).memories} == {("b",)}


async def test_stats_per_scope_and_kind(mem: Facade) -> None:
    await mem.remember("a", user_id="x", kind="episodic")
    await mem.remember("b", user_id="x", kind="semantic")
    await mem.remember("c", user_id="y", kind="procedural")
    stats = await mem.stats()
    assert stats.total == 3
    assert stats.by_kind == {"episodic": 1, "semantic": 1, "procedural": 1}
    per_user = {s.user_id: s.total for s in stats.scopes}
    assert per_user == {"x": 2, "y": 1}
    scopes = await mem.scopes(user_id="x")
    assert [s.user_id for s in scopes] == ["x"]


async def test_capacity_eviction_keeps_important_and_recent(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    cls = type(mem.store)
    store = cls.from_url(
        valkey_url, name=unique_name + "c", embedder=HashingEmbedder(64), max_items_per_scope=3
    )
    cap = Facade(store)
    await cap.setup()
    now = time.time()
    keep = await cap.remember(
        "vital: passport number", user_id="u", importance=1.0, created_at=now - 86400 * 300
    )
    for i in range(5):
        await cap.remember(f"chatter {i}", user_id="u", importance=0.1, created_at=now - 86400 * (50 - i))
    page = await cap.list(user_id="u", limit=10)
    assert len(page.memories) == 3
    assert keep in {m.id for m in page.memories}
    assert (await cap.stats(user_id="u")).total == 3
    await cap.close()


async def test_dedup_merges_tags_and_returns_existing_id(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    cls = type(mem.store)
    store = cls.from_url(
        valkey_url, name=unique_name + "d", embedder=HashingEmbedder(64), dedup_threshold=0.05
    )
    dd = Facade(store)
    await dd.setup()
    a = await dd.remember("prefers window seats", user_id="u", tags=["seat"])
    b = await dd.remember("prefers window seats", user_id="u", tags=["flight", "seat"])
    c = await dd.remember("prefers window seats", user_id="other")
    ids = await dd.remember_many(["loves sushi", "loves sushi"])
    assert a == b and c != a
    assert ids[0] == ids[1]
    merged = await dd.get(a)
    assert merged.tags == ("seat", "flight") and merged.duplicate_count == 1
    assert (await dd.recall("window", tags=["flight"], user_id="u"))[0].memory.id == a
    await dd.close()


async def test_live_config_reread_without_restart(mem: Facade) -> None:
    a = await mem.remember("coffee shop in Alfama")
    assert len(await mem.recall("coffee", k=5)) == 1
    await mem.set_live_config(threshold=0.0001)
    result = await mem.recall("tea house", k=5)
    assert len(result) == 0 and result.nearest_miss is not None and result.nearest_miss.memory_id == a
    await mem.set_live_config(threshold=None, recency_weight=0.0)
    assert len(await mem.recall("tea house", k=5)) == 1
    assert mem.store.effective_config.scoring.weights.recency == 0.0


async def test_dimension_mismatch_names_both(mem: Facade, valkey_url: str) -> None:
    url = mem.url_for(mem.store.config.name) if mem.url_for else valkey_url  # the same store, 32-d now
    other = MemoryStore.from_url(url, name=mem.store.config.name, embedder=HashingEmbedder(32))
    with pytest.raises(DimensionMismatchError) as info:
        other.setup()
    assert info.value.existing == 64 and info.value.configured == 32
    assert "64" in str(info.value) and "32" in str(info.value)
    other.close()


async def test_setup_is_idempotent(mem: Facade) -> None:
    kept = await mem.remember("kept across setups", user_id="s", metadata={"n": 1}, tags=["t"])
    again = await mem.setup()  # a second setup validates the existing index: it must not drop or reindex data
    assert again.kind == ("redisearch" if mem.backend == "valkey" else "embedded")
    assert (await mem.get(kept)).content == "kept across setups"
    assert [h.memory.id for h in await mem.recall("kept across setups", user_id="s", tags=["t"])] == [kept]
    assert (await mem.stats(user_id="s")).total == 1


async def test_stats_rejects_filters_it_cannot_count(mem: Facade) -> None:
    from agentmem_core import InvalidMemoryError

    await mem.remember("x", user_id="u", tags=["a"])
    with pytest.raises(InvalidMemoryError, match="whole scopes"):
        await mem.stats(tags=["a"])
    assert (await mem.stats(user_id="u")).total == 1
