"""Concurrency against the real Valkey: threads, processes (spawn) and asyncio tasks hitting one scope.

Invariants checked after every writer finished:

* reinforcement counters are exact: a memory's ``access_count`` equals the number of reinforced recalls
  that returned it, and the counts those recalls saw are exactly ``1..n`` (no lost or doubled HINCRBY);
* capacity holds: a scope written with ``max_items_per_scope=N`` ends with exactly ``min(N, written)``
  memories, every survivor is one of the ids the writers got back, the bookkeeping (list, stats, the
  scope's sorted set, its per-kind counts, the memory keys themselves) agrees, and the memories with the
  highest ``importance + recency`` are never the ones evicted (checked with a deterministic
  interleaving: under free-running threads which memories survive a race depends on timing);
* no write is lost: concurrent ``remember_many`` calls return unique ids that all exist afterwards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core._encoding import ScopeKey
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.server import ValkeyServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIMS = 64
QUERY = "window seat on long flights"


# -- helpers (module level: the spawn workers import them) ----------------------------------------------
def open_store(url: str, name: str, **options: Any) -> MemoryStore:
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS), **options)
    store.setup()
    return store


def recall_worker(url: str, name: str, user_id: str, rounds: int, k: int) -> list[tuple[str, int]]:
    """Reinforced recalls from a store of its own; returns (id, access_count seen) for every hit."""
    store = open_store(url, name)
    try:
        seen: list[tuple[str, int]] = []
        for _ in range(rounds):
            for hit in store.recall(QUERY, k=k, user_id=user_id, reinforce=True):
                seen.append((hit.memory.id, hit.memory.access_count))
        return seen
    finally:
        store.close()


def capacity_worker(url: str, name: str, user_id: str, capacity: int, writer: int, count: int) -> list[str]:
    """Writes ``count`` low-importance memories into one scope with a capacity; returns the ids."""
    store = open_store(url, name, max_items_per_scope=capacity)
    try:
        ids = []
        for n in range(count):
            if n % 4 == 3:  # mix single writes with small batches
                ids += store.remember_many(
                    [
                        {"content": f"w{writer} batch {n} item {j}", "user_id": user_id, "importance": 0.1}
                        for j in range(3)
                    ]  # fmt: skip
                )
            else:
                ids.append(store.remember(f"w{writer} note {n}", user_id=user_id, importance=0.2))
        return ids
    finally:
        store.close()


def run_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released together by a barrier; re-raises the first error."""
    barrier = threading.Barrier(n)

    def start(i: int) -> Any:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return [f.result(timeout=120) for f in [pool.submit(start, i) for i in range(n)]]


def scope_tag(**scope: Any) -> str:
    return ScopeKey(
        tuple(scope.get("namespace", ())), scope.get("thread_id"), scope.get("agent_id"), scope.get("user_id")
    ).tag


def assert_counts_exact(
    store: MemoryStore, observations: Sequence[tuple[str, int]], ids: Sequence[str]
) -> None:
    by_id: dict[str, list[int]] = defaultdict(list)
    for memory_id, count in observations:
        by_id[memory_id].append(count)
    assert observations, "no recall returned anything"
    memories = {m.id: m for m in store.get_many(list(ids)) if m is not None}
    assert set(memories) == set(ids)
    for memory_id in ids:
        seen = sorted(by_id.get(memory_id, []))
        # every reinforced recall that returned it saw a distinct count, and together they are 1..n
        assert seen == list(range(1, len(seen) + 1)), (memory_id, seen)
        assert memories[memory_id].access_count == len(seen), memory_id
        if seen:
            assert memories[memory_id].last_accessed_at is not None


def assert_scope_consistent(store: MemoryStore, user_id: str, expected: set[str]) -> None:
    """list, stats, the scope's sorted set / counts and the memory keys all agree with ``expected``."""
    tag = scope_tag(user_id=user_id)
    page = store.list(limit=1000, user_id=user_id)
    assert {m.id for m in page.memories} == expected
    stats = store.stats(user_id=user_id)
    assert stats.total == len(expected)
    assert sum(stats.by_kind.values()) == len(expected)
    client = store.client
    assert {m.decode() for m in client.zrange(store.keys.created(tag), 0, -1)} == expected
    counts = client.hgetall(store.keys.counts(tag))  # per-kind counts, plus the "#seq" write sequence
    assert sum(int(v) for k, v in counts.items() if not k.startswith(b"#")) == len(expected)
    memory_keys = {
        k.decode() for k in client.scan_iter(match=f"{store.keys.memory_prefix}{{{tag}}}*", count=1000)
    }
    assert {store.keys.id_from_memory_key(k) for k in memory_keys} == expected
    stat_keys = list(client.scan_iter(match=f"{store.keys.prefix}s:{{{tag}}}*", count=1000))
    assert {k.decode()[-16:] for k in stat_keys} <= {i[16:] for i in expected}  # no orphaned counters


# -- (a) reinforcement ----------------------------------------------------------------------------------
def test_threads_reinforcing_the_same_memories_keep_exact_counts(valkey_url: str, unique_name: str) -> None:
    setup = open_store(valkey_url, unique_name)
    try:
        targets = [setup.remember(t, user_id="ana") for t in ("window seat on long flights",
                   "an aisle seat on short flights", "window seat please, always")]  # fmt: skip
        bystander = setup.remember("window seat on long flights", user_id="bob")
        stores = [setup] + [open_store(valkey_url, unique_name) for _ in range(3)]

        def worker(i: int) -> list[tuple[str, int]]:
            store = stores[i % len(stores)]  # threads share clients as well as using their own
            seen = []
            for _ in range(12):
                for hit in store.recall(QUERY, k=2, user_id="ana", reinforce=True):
                    seen.append((hit.memory.id, hit.memory.access_count))
                store.recall(QUERY, k=3, user_id="ana", reinforce=False)  # must not count
            return seen

        observations = [o for seen in run_threads(8, worker) for o in seen]
        assert len(observations) == 8 * 12 * 2
        assert_counts_exact(setup, observations, targets)
        assert setup.get(bystander).access_count == 0  # type: ignore[union-attr]
        assert sum(m.access_count for m in setup.get_many(targets) if m) == 8 * 12 * 2
        for s in stores[1:]:
            s.close()
    finally:
        setup.close()


def test_processes_reinforcing_the_same_memories_keep_exact_counts(valkey_url: str, unique_name: str) -> None:
    store = open_store(valkey_url, unique_name)
    try:
        targets = [store.remember(t, user_id="ana") for t in ("window seat on long flights",
                   "window seat please, always")]  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(3) as pool:
            async_results = [
                pool.apply_async(recall_worker, (valkey_url, unique_name, "ana", 15, 2)) for _ in range(3)
            ]
            # the parent reinforces at the same time
            local = [(h.memory.id, h.memory.access_count) for _ in range(15)
                     for h in store.recall(QUERY, k=2, user_id="ana")]  # fmt: skip
            remote = [o for r in async_results for o in r.get(timeout=120)]
        observations = local + remote
        assert len(observations) == 4 * 15 * 2
        assert_counts_exact(store, observations, targets)
        assert [m.access_count for m in store.get_many(targets) if m] == [60, 60]
    finally:
        store.close()


async def test_async_gathered_recalls_keep_exact_counts(astore: AsyncMemoryStore) -> None:
    targets = [await astore.remember(t, user_id="ana") for t in ("window seat on long flights",
               "window seat please, always", "an aisle seat on short flights")]  # fmt: skip
    other = await astore.remember("window seat on long flights", user_id="bob")

    async def one(k: int, reinforce: bool) -> list[tuple[str, int]]:
        result = await astore.recall(QUERY, k=k, user_id="ana", reinforce=reinforce)
        return [(h.memory.id, h.memory.access_count) for h in result] if reinforce else []

    batches = await asyncio.gather(*(one(1 + n % 3, n % 5 != 4) for n in range(60)))
    observations = [o for b in batches for o in b]
    expected_hits = sum(1 + n % 3 for n in range(60) if n % 5 != 4)
    assert len(observations) == expected_hits
    by_id: dict[str, list[int]] = defaultdict(list)
    for memory_id, count in observations:
        by_id[memory_id].append(count)
    memories = await astore.get_many(targets)
    for memory in memories:
        assert memory is not None
        assert sorted(by_id[memory.id]) == list(range(1, memory.access_count + 1))
        assert memory.access_count == len(by_id[memory.id])
    assert (await astore.get(other)).access_count == 0  # type: ignore[union-attr]


# -- (b) capacity ---------------------------------------------------------------------------------------
CAPACITY = 5


def _seed_capacity_scope(store: MemoryStore) -> tuple[list[str], list[str]]:
    pinned = [store.remember(f"pinned fact {n}", user_id="crowd", importance=1.0) for n in range(2)]
    control = [store.remember(f"other scope {n}", user_id="quiet", importance=0.0) for n in range(7)]
    return pinned, control


def test_threads_writing_one_scope_respect_capacity(valkey_url: str, unique_name: str) -> None:
    seed = open_store(valkey_url, unique_name)  # no capacity: the control scope keeps all 7
    try:
        pinned, control = _seed_capacity_scope(seed)
        results = run_threads(
            8, lambda i: capacity_worker(valkey_url, unique_name, "crowd", CAPACITY, writer=i, count=12)
        )
        written = [i for ids in results for i in ids] + pinned
        assert len(written) == len(set(written)) == 8 * (9 + 3 * 3) + 2
        survivors = {m.id for m in seed.get_many(written) if m is not None}
        assert len(survivors) == min(CAPACITY, len(written))
        assert survivors <= set(written)
        assert_scope_consistent(seed, "crowd", survivors)
        assert_scope_consistent(seed, "quiet", set(control))
        # Which memories survive a race is checked deterministically in
        # test_eviction_from_a_stale_snapshot_keeps_the_most_important; here it would be timing-dependent.
    finally:
        seed.close()


def test_processes_writing_one_scope_respect_capacity(valkey_url: str, unique_name: str) -> None:
    seed = open_store(valkey_url, unique_name)
    try:
        pinned, control = _seed_capacity_scope(seed)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(3) as pool:
            results = pool.starmap(
                capacity_worker, [(valkey_url, unique_name, "crowd", CAPACITY, w, 10) for w in range(3)]
            )
        written = [i for ids in results for i in ids] + pinned
        assert len(written) == len(set(written)) == 3 * (8 + 2 * 3) + 2
        survivors = {m.id for m in seed.get_many(written) if m is not None}
        assert len(survivors) == CAPACITY
        assert_scope_consistent(seed, "crowd", survivors)
        assert_scope_consistent(seed, "quiet", set(control))
    finally:
        seed.close()


async def test_async_gathered_writes_respect_capacity(valkey_url: str, unique_name: str) -> None:
    store = AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS), max_items_per_scope=CAPACITY
    )
    await store.setup()
    try:
        pinned = [await store.remember(f"pinned {n}", user_id="crowd", importance=1.0) for n in range(2)]
        ids = await asyncio.gather(
            *(store.remember(f"note {n}", user_id="crowd", importance=0.2) for n in range(40))
        )
        written = [*pinned, *ids]
        assert len(set(written)) == 42
        survivors = {m.id for m in await store.get_many(written) if m is not None}
        assert len(survivors) == CAPACITY
        assert (await store.stats(user_id="crowd")).total == CAPACITY
        page = await store.list(limit=100, user_id="crowd")
        assert {m.id for m in page.memories} == survivors
    finally:
        await store.close()


def test_eviction_from_a_stale_snapshot_keeps_the_most_important(valkey_url: str, unique_name: str) -> None:
    """Deterministic interleaving: between writer 1's ranking and its delete, another writer inserts.

    The other writer is a store that has not (yet) seen the capacity, e.g. one that has not re-read the
    live config; the scope is briefly over capacity, which writer 1's eviction must resolve by dropping
    the *least* important memories.
    """
    capacity = 3
    w1 = open_store(valkey_url, unique_name, max_items_per_scope=capacity)
    w2 = open_store(valkey_url, unique_name)
    try:
        pinned = w1.remember("pinned fact", user_id="crowd", importance=1.0)
        w1.remember_many(
            [{"content": f"filler {n}", "user_id": "crowd", "importance": 0.3} for n in range(2)]
        )
        late: list[str] = []
        # the one round trip every call ends in (below the retry loop, which re-plans around it)
        send = w1._driver.backend._send_once  # type: ignore[attr-defined]

        def interleaving_send(commands: Sequence[Any]) -> list[Any]:
            if not late and any(
                getattr(getattr(c, "script", None), "name", "") == "delete" for c in commands
            ):
                late.extend(w2.remember(f"late low {n}", user_id="crowd", importance=0.0) for n in range(4))
            return send(commands)

        w1._driver.backend._send_once = interleaving_send  # type: ignore[attr-defined]
        w1.remember("trigger", user_id="crowd", importance=0.5)
        assert len(late) == 4
        survivors = {m.id for m in w1.list(limit=100, user_id="crowd").memories}
        assert len(survivors) == capacity
        assert pinned in survivors
        assert not survivors & set(late), "the least important (importance 0) memories survived eviction"
    finally:
        w1.close()
        w2.close()


# -- (c) no lost writes ---------------------------------------------------------------------------------
def test_concurrent_remember_many_loses_nothing(valkey_url: str, unique_name: str) -> None:
    stores = [open_store(valkey_url, unique_name) for _ in range(3)]
    try:

        def worker(i: int) -> list[str]:
            store = stores[i % len(stores)]
            ids = []
            for batch in range(4):
                ids += store.remember_many(
                    [
                        {
                            "content": f"writer {i} batch {batch} item {j}",
                            "user_id": "shared",
                            "kind": "episodic" if j % 2 else "semantic",
                            "tags": [f"w{i}"],
                        }
                        for j in range(10)
                    ]  # fmt: skip
                    + [{"content": f"writer {i} own {batch}", "user_id": f"own{i}"}]
                )
            return ids

        results = run_threads(6, worker)
        ids = [i for r in results for i in r]
        assert len(ids) == len(set(ids)) == 6 * 4 * 11
        store = stores[0]
        assert all(m is not None for m in store.get_many(ids))
        shared = {i for r in results for n, i in enumerate(r) if n % 11 != 10}
        assert len(shared) == 240
        assert_scope_consistent(store, "shared", shared)
        stats = store.stats(user_id="shared")
        assert dict(stats.by_kind) == {"episodic": 120, "semantic": 120}
        assert store.stats().total == 264
        for i in range(6):
            assert {m.id for m in store.list(limit=100, user_id=f"own{i}").memories} == set(
                results[i][10::11]
            )
            hits = store.recall(QUERY, k=100, user_id="shared", tags=[f"w{i}"], reinforce=False)
            assert len(hits) == 40
    finally:
        for s in stores:
            s.close()


def test_concurrent_upserts_of_one_key_leave_one_memory(valkey_url: str, unique_name: str) -> None:
    stores = [open_store(valkey_url, unique_name) for _ in range(4)]
    try:
        results = run_threads(
            8,
            lambda i: [
                stores[i % 4].remember(
                    f"version {i}.{n}", user_id="ana", key="seat", importance=0.1 * (n % 10)
                )
                for n in range(15)
            ],
        )
        ids = {i for r in results for i in r}
        assert len(ids) == 1
        (memory_id,) = ids
        store = stores[0]
        memory = store.get(memory_id)
        assert memory is not None and memory.key == "seat"
        assert_scope_consistent(store, "ana", {memory_id})
        assert dict(store.stats(user_id="ana").by_kind) == {"semantic": 1}
        assert len(store.recall(QUERY, k=10, user_id="ana")) == 1
    finally:
        for s in stores:
            s.close()


# -- robustness -------------------------------------------------------------------------------------
@contextmanager
def private_server() -> Iterator[str]:
    """A server of this test's own (its script cache is flushed; nobody else may share it)."""
    server = ValkeyServer(search=True).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_store_survives_a_lost_script_cache() -> None:
    with private_server() as url:
        store = open_store(url, "flush" + uuid.uuid4().hex[:8])
        try:
            first = store.remember("window seat on long flights", user_id="ana")
            store.client.script_flush()  # what a restart or a failover to a fresh replica looks like
            second = store.remember("aisle seat on short flights", user_id="ana")
            assert {h.memory.id for h in store.recall(QUERY, k=5, user_id="ana")} == {first, second}
            assert store.stats(user_id="ana").total == 2
            assert store.forget(first) is True
        finally:
            store.close()


def test_counter_helper_rejects_lost_increments() -> None:
    """The exactness check itself must fail on a lost or duplicated increment."""

    class FakeStore:
        def get_many(self, ids: list[str]) -> list[Any]:
            return [type("M", (), {"id": i, "access_count": 2, "last_accessed_at": 1.0})() for i in ids]

    with pytest.raises(AssertionError):
        assert_counts_exact(FakeStore(), [("x", 1), ("x", 1)], ["x"])  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        assert_counts_exact(FakeStore(), [("x", 1), ("x", 2), ("x", 3)], ["x"])  # type: ignore[arg-type]
    assert_counts_exact(FakeStore(), [("x", 2), ("x", 1)], ["x"])  # type: ignore[arg-type]
