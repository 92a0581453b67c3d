"""Regressions from the review: each test here failed on the code before its fix (the comment says how).

Every test runs on the sync and the async store (the ``mem`` fixture), on the real Valkey + search module.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey
from _support import (  # tests/integration on sys.path
    QUERY,
    Facade,
    check_everywhere,
    ids_on_every_path,
    open_like,
    valkey_only,
)

from agentmem_core import (
    AsyncMemoryStore,
    BackendError,
    ConfigurationError,
    InvalidMemoryError,
    MemoryInput,
    MemoryStore,
)
from agentmem_core._flows_write import EVICTION_SAMPLE
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.scoring import eviction_priority, recency

pytestmark = pytest.mark.integration

# -- one meaning of list-valued metadata on every path --------------------------------------------------
# Before: recall pushed {"labels": "x"} into the index as "contains x", so it returned the memory whose
# labels are ["x", "y"] while list and forget_by_scope compared whole values (and $ne was inverted alike).
LISTS = {"a": {"labels": ["x", "y"]}, "b": {"labels": "x"}, "c": {}, "d": {"labels": ["y"]}}
LIST_CASES = [
    pytest.param({"labels": "x"}, {"b"}, id="implicit-eq-scalar"),
    pytest.param({"labels": {"$eq": "x"}}, {"b"}, id="eq-scalar"),
    pytest.param({"labels": {"$ne": "x"}}, {"a", "c", "d"}, id="ne-scalar"),
    pytest.param({"labels": ["x", "y"]}, {"a"}, id="eq-whole-list"),
    pytest.param({"labels": ["y", "x"]}, set(), id="eq-list-order-matters"),
    pytest.param({"labels": {"$ne": ["x", "y"]}}, {"b", "c", "d"}, id="ne-whole-list"),
    pytest.param({"labels": {"$contains": "x"}}, {"a"}, id="contains"),
    pytest.param({"labels": {"$contains": "y"}}, {"a", "d"}, id="contains-y"),
    pytest.param({"labels": {"$contains": "z"}}, set(), id="contains-none"),
    pytest.param({"labels": {"$in": ["x", "q"]}}, {"b"}, id="in"),
    pytest.param({"labels": {"$nin": ["x"]}}, {"a", "c", "d"}, id="nin"),
    pytest.param({"labels": {"$exists": True}}, {"a", "b", "d"}, id="exists"),
    pytest.param({"labels": {"$exists": False}}, {"c"}, id="not-exists"),
]


@pytest.mark.parametrize(("flt", "expected"), LIST_CASES)
async def test_list_valued_metadata_means_one_thing_on_every_path(
    mem: Facade, flt: dict[str, Any], expected: set[str]
) -> None:
    seed = {name: {"metadata": metadata} for name, metadata in LISTS.items()}
    await check_everywhere(mem, "lists", seed, {"metadata": flt}, expected)


# -- range boundaries -----------------------------------------------------------------------------------
# Before: no test touched a range boundary, so "$lte" evaluated as "<" passed the whole suite.
NUMBERS = {"four": {"n": 4}, "five": {"n": 5}, "five_f": {"n": 5.0}, "six": {"n": 6}, "text": {"n": "5"}}
RANGE_CASES = [
    pytest.param({"$lte": 5}, {"four", "five", "five_f"}, id="lte"),
    pytest.param({"$lt": 5}, {"four"}, id="lt"),
    pytest.param({"$gte": 5}, {"five", "five_f", "six"}, id="gte"),
    pytest.param({"$gt": 5}, {"six"}, id="gt"),
    pytest.param({"$gte": 5, "$lte": 5}, {"five", "five_f"}, id="gte-lte-point"),
    pytest.param({"$gt": 4.5, "$lt": 5.5}, {"five", "five_f"}, id="float-bounds"),
    pytest.param({"$eq": 5}, {"five", "five_f"}, id="eq-int-equals-float"),
    pytest.param({"$lte": "5"}, {"text"}, id="strings-compare-with-strings"),
]


@pytest.mark.parametrize("declared", [False, True], ids=["client-side", "numeric-field"])
@pytest.mark.parametrize(("condition", "expected"), RANGE_CASES)
async def test_range_boundaries_on_every_path(
    mem: Facade,
    valkey_url: str,
    unique_name: str,
    condition: dict[str, Any],
    expected: set[str],
    declared: bool,
) -> None:
    # declared: "n" is a numeric field, so its ranges run inside the search; the answers must not change
    store = await open_like(mem, valkey_url, unique_name + "n", numeric_fields=("n",)) if declared else mem
    seed = {name: {"metadata": metadata} for name, metadata in NUMBERS.items()}
    await check_everywhere(store, "ranges", seed, {"metadata": {"n": condition}}, expected)
    if declared:
        await store.close()


# -- a page is never short because a condition ran on the client ----------------------------------------
@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"$gte": 290}, set(range(290, 300))),
        ({"$lt": 7}, set(range(7))),
        ({"$in": [3, 150, 299]}, {3, 150, 299}),
    ],
    ids=["gte-290", "lt-7", "in"],
)
async def test_client_side_conditions_never_shorten_a_recall(
    mem: Facade, condition: dict[str, Any], expected: set[int]
) -> None:
    # Before: the hybrid recall (the default) never widened its pool, so over 300 memories whose n is
    # 0..299, recall(text, metadata={"n": {"$gte": 290}}, k=10) returned 0 hits.
    await mem.remember_many(
        [
            MemoryInput(f"trip note number {i} about hotels", user_id="p", metadata={"n": i})
            for i in range(300)
        ]
    )
    flt = {"n": condition}
    for path, got in (await ids_on_every_path(mem, {"user_id": "p"}, {"metadata": flt})).items():
        numbers = {m.metadata["n"] for m in await mem.get_many(sorted(got))}
        assert numbers == expected if len(expected) <= 10 else len(got) >= 10, (path, numbers)
    for recall in (mem.recall(QUERY, k=10, user_id="p", metadata=flt),
                   mem.recall("trip note hotels", k=10, user_id="p", metadata=flt)):  # fmt: skip
        hits = await recall
        assert len(hits) == min(10, len(expected))
        assert {h.memory.metadata["n"] for h in hits} <= expected


# -- forget_by_scope over stale bookkeeping --------------------------------------------------------------
async def test_forget_by_scope_deletes_every_match_when_expired_entries_fill_the_pages(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # Before: with > 500 members in a scope and expired ones among them, the page offset counted entries
    # the delete script had purged, so the next page skipped live matches.
    clock = mem.clock  # type: ignore[attr-defined]
    items = []
    for i in range(1300):
        expiring = i % 2 == 1
        items.append(
            MemoryInput(f"entry {i}", user_id="f", metadata={"drop": True}, ttl=600 if expiring else None,
                        created_at=clock.now - 1300 + i)
        )  # fmt: skip
    await mem.remember_many(items)
    clock.now += 3600  # the odd ones are past their TTL for the store, still on the server
    deleted = await mem.forget_by_scope(user_id="f", metadata={"drop": True})
    assert deleted == 650
    assert (await mem.list(user_id="f", limit=10)).memories == ()
    assert (await mem.stats(user_id="f")).total == 0


# -- the scope registry ----------------------------------------------------------------------------------
async def test_a_lost_registry_write_is_retried_by_the_next_write(mem: Facade) -> None:
    # Before: the scope was marked registered before the registry write succeeded; once that write was
    # lost, list / stats / forget_by_scope never saw the scope again.
    valkey_only(mem, "breaks the registry hash with a foreign SET")
    store = mem.store
    client = valkey.Valkey.from_url(_url_of(store))
    try:
        client.set(store.keys.scopes, "not a hash")  # the registry write now fails (WRONGTYPE)
        with pytest.raises(BackendError):
            await mem.remember("first", user_id="reg")
        client.delete(store.keys.scopes)
        second = await mem.remember("second", user_id="reg")
    finally:
        client.close()
    page = await mem.list(user_id="reg", limit=10)
    assert second in {m.id for m in page.memories} and len(page.memories) == 2
    assert (await mem.stats(user_id="reg")).total == 2
    assert await mem.forget_by_scope(user_id="reg") == 2


def _url_of(store: MemoryStore | AsyncMemoryStore) -> str:
    kwargs = store.client.get_connection_kwargs()
    return f"valkey://{kwargs['host']}:{kwargs['port']}"


# -- client checks ---------------------------------------------------------------------------------------
def test_a_cluster_client_with_decoded_responses_is_refused(cluster_url: str) -> None:
    # Before: _check_client read connection_pool, which cluster clients lack, so decode_responses=True
    # slipped through (and every vector read broke later).
    sync = valkey.ValkeyCluster.from_url(cluster_url, decode_responses=True)  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(ConfigurationError, match="decode_responses"):
            MemoryStore(sync, name="c1", embedder=HashingEmbedder(8))
    finally:
        sync.close()
    lazy = avalkey.ValkeyCluster.from_url(cluster_url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        AsyncMemoryStore(lazy, name="c1", embedder=HashingEmbedder(8))
    with pytest.raises(ConfigurationError, match="protocol"):
        AsyncMemoryStore(avalkey.ValkeyCluster.from_url(cluster_url, protocol=3), name="c1",
                         embedder=HashingEmbedder(8))  # fmt: skip
    with pytest.raises(ConfigurationError, match="valkey-py client"):
        MemoryStore(object(), name="c1", embedder=HashingEmbedder(8))  # type: ignore[arg-type]


# -- capacity eviction -----------------------------------------------------------------------------------
def _commandstats(client: valkey.Valkey) -> dict[str, int]:
    out = {}
    for key, value in client.info("commandstats").items():
        out[key.removeprefix("cmdstat_")] = int(value["calls"])
    return out


async def test_eviction_cost_does_not_grow_with_the_scope(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # Before: at capacity every write read the whole scope (a full ZRANGE plus 2n HMGETs).
    valkey_only(mem, "counts the server's HMGET calls")
    capacity = 400
    cap = await open_like(mem, valkey_url, unique_name + "e", max_items_per_scope=capacity)
    await cap.remember_many(
        [MemoryInput(f"filler {i}", user_id="e", importance=0.5) for i in range(capacity)]
    )
    client = valkey.Valkey.from_url(valkey_url)
    try:
        before = _commandstats(client)
        await cap.remember("one more", user_id="e", importance=0.9)
        after = _commandstats(client)
    finally:
        client.close()
    hmgets = after.get("hmget", 0) - before.get("hmget", 0)
    assert 0 < hmgets <= 4 * EVICTION_SAMPLE
    assert (await cap.stats(user_id="e")).total == capacity
    await cap.close()


async def test_eviction_follows_recency_not_only_importance(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # Before: nothing checked recency (the test named "keeps important and recent" only asserted
    # importance), so an eviction ranking by importance alone passed the suite.
    clock = mem.clock  # type: ignore[attr-defined]
    cap = await open_like(mem, valkey_url, unique_name + "r", max_items_per_scope=3, clock=clock)
    old = clock.now - 300 * 86400
    stale = await cap.remember("stale but slightly important", user_id="r", importance=0.6, created_at=old)
    used = await cap.remember("old and recalled: boarding pass", user_id="r", importance=0.6, created_at=old)
    fresh = await cap.remember("fresh chatter", user_id="r", importance=0.5)
    assert [h.memory.id for h in await cap.recall("boarding pass", user_id="r", k=1)] == [used]
    newest = await cap.remember("newest chatter", user_id="r", importance=0.5)
    survivors = {m.id for m in (await cap.list(user_id="r", limit=10)).memories}
    # priorities: stale 0.6 + ~0, used 0.6 + 1 (just recalled), fresh / newest 0.5 + 1
    assert survivors == {used, fresh, newest}, stale
    await cap.close()


async def test_sampled_eviction_keeps_exactly_the_highest_priorities(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # The bounded eviction must choose the same victims as ranking the whole scope would.
    clock = mem.clock  # type: ignore[attr-defined]
    half_life = 7 * 86400.0
    capacity = 150
    cap = await open_like(mem, valkey_url, unique_name + "x", max_items_per_scope=capacity, clock=clock)
    rng = __import__("random").Random(7)
    items = [
        MemoryInput(f"m{i}", user_id="x", importance=round(rng.random(), 3),
                    created_at=clock.now - rng.random() * 60 * 86400)
        for i in range(capacity + 60)
    ]  # fmt: skip
    written = []
    for item in items:  # one by one: each write past capacity evicts one
        written.append((await cap.remember_many([item]))[0])
    priority = {
        memory_id: eviction_priority(
            item.importance, recency(clock.now, float(item.created_at or 0), half_life)
        )
        for memory_id, item in zip(written, items)
    }
    survivors = {m.id for m in (await cap.list(user_id="x", limit=1000)).memories}
    assert len(survivors) == capacity
    # every write evicted the lowest of its moment; with a frozen clock the global order is stable, so the
    # survivors are the top `capacity` among all written (the one written last always got its chance)
    lowest_kept = min(priority[i] for i in survivors)
    highest_dropped = max(priority[i] for i in set(written) - survivors)
    assert lowest_kept >= highest_dropped
    await cap.close()


# -- per-call scoring overrides -------------------------------------------------------------------------
async def test_half_life_zero_is_rejected_not_replaced(mem: Facade) -> None:
    # Before: half_life_seconds=0 was silently replaced by the store's default half-life.
    await mem.remember("a note", user_id="h")
    for bad in (0, 0.0, -1, math.nan, math.inf, True):
        with pytest.raises(InvalidMemoryError, match="half_life"):
            await mem.recall("a note", user_id="h", half_life_seconds=bad)
    with pytest.raises(InvalidMemoryError, match="weight"):
        await mem.recall("a note", user_id="h", weights={"similarity": -1})
    mem.clock.now += 1.0  # type: ignore[attr-defined]
    tiny = await mem.recall("a note", user_id="h", half_life_seconds=1e-6)
    assert tiny[0].scores.recency == 0.0  # honoured: one second is a million half-lives


# -- candidate pruning with ties -------------------------------------------------------------------------
@pytest.mark.parametrize("reinforce", [True, False])
async def test_ties_in_every_score_bound_still_fill_the_page(mem: Facade, reinforce: bool) -> None:
    # Before (as a mutation): pruning with ">" instead of ">=" returned 0 hits for k=3 over 6 memories
    # with a frozen clock, where every candidate's best and worst case tie.
    await mem.remember_many([MemoryInput("same words every time", user_id="tie") for _ in range(6)])
    hits = await mem.recall("same words every time", user_id="tie", k=3, reinforce=reinforce)
    assert len(hits) == 3
    distinct = await mem.remember_many([MemoryInput(f"tie note {w}", user_id="tie0") for w in "abcdef"])
    hits = await mem.recall(
        "tie note", user_id="tie0", k=3, weights={"similarity": 1, "recency": 0, "importance": 0},
        reinforce=reinforce,
    )  # fmt: skip
    assert len(hits) == 3 and {h.memory.id for h in hits} <= set(distinct)


async def test_eviction_widens_its_sample_when_it_cannot_prove_its_choice(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # The lowest priority here is neither among the lowest importances (40 newer memories have 0) nor among
    # the oldest (40 memories are older): a sample that trusted itself would evict an old important one.
    clock = mem.clock  # type: ignore[attr-defined]
    day = 86400.0
    cap = await open_like(mem, valkey_url, unique_name + "w", max_items_per_scope=81, clock=clock)
    cheap_new = [MemoryInput(f"new {i}", user_id="w", importance=0.0) for i in range(40)]  # 0 + 1
    old_vital = [
        MemoryInput(f"old {i}", user_id="w", importance=0.9, created_at=clock.now - 400 * day - i)
        for i in range(40)
    ]  # 0.9 + ~0
    (victim,) = await cap.remember_many(
        [MemoryInput("mid", user_id="w", importance=0.3, created_at=clock.now - 14 * day)]
    )
    await cap.remember_many(cheap_new + old_vital)  # 81 memories: at capacity
    await cap.remember("one more", user_id="w", importance=1.0)
    survivors = {m.id for m in (await cap.list(user_id="w", limit=100)).memories}
    assert len(survivors) == 81 and victim not in survivors  # the mid one scored 0.3 + 0.25
    await cap.close()
