"""A batch's writes to one scope go as one call (WriteMany), and store what one write at a time stores.

``remember_many`` sends each run of consecutive writes to one scope as one ``WriteMany`` (on Valkey one
WRITE_MANY script call instead of one WRITE per memory). These tests write the same items both ways, into
two stores on the same backend and clock, and compare everything a reader can see.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _support import Clock, Facade, open_like

from agentmem_core import _flows_write

ITEMS: list[dict[str, Any]] = [
    {"content": "the flight to Lisbon leaves at nine", "importance": 0.9, "tags": ["travel"]},
    {"content": "likes window seats", "key": "seat", "metadata": {"kind": "pref", "n": 2}},
    {"content": "hotel booked near the river", "ttl": 3600, "kind": "episodic"},
    {"content": "prefers green tea", "key": "drink"},  # re-puts the key written before the batch
    {"content": "packing list", "texts": ["passport and charger", "sunscreen for the beach"]},
    {"content": "likes aisle seats now", "key": "seat"},  # the same key twice in one batch
    {"content": "not embedded: the booking reference", "embed": False},
    {"content": "museum tickets for Tuesday", "ttl": 60, "tags": ["travel", "plans"]},
    {"content": "other user's note", "user_id": "v2"},  # another scope between two runs of this one
    {"content": "a second note about the river walk"},
]


def _seen(m: Any) -> tuple[Any, ...]:
    return (
        m.content, m.kind, m.importance, m.tags, m.user_id, m.key, m.metadata, m.created_at, m.updated_at,
        m.expires_at, m.sequence, m.embedded, m.ttl, m.access_count, m.duplicate_count,
    )  # fmt: skip


async def _state(mem: Facade, user: str) -> dict[str, Any]:
    page = await mem.list(user_id=user, limit=100)
    recalled = await mem.recall("river seats tea", user_id=user, k=20, reinforce=False)
    stats = await mem.stats(user_id=user)
    return {
        "listed": [_seen(m) for m in page.memories],
        # as a set: memories that tie on score are ordered by id, and the two stores' ids differ
        "recalled": sorted(
            (h.memory.content, round(h.scores.score, 9), round(h.scores.lexical or 0, 9)) for h in recalled
        ),
        "total": stats.total,
        "by_kind": stats.by_kind,
        "count": await mem.count(user_id=user),
        "other": [m.content for m in (await mem.list(user_id="v2", limit=10)).memories],
    }


async def test_a_batch_writes_what_one_write_at_a_time_writes(mem: Facade, unique_name: str) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    one_by_one = await open_like(mem, "", unique_name + "b", clock=clock)
    try:
        for store in (mem, one_by_one):
            await store.remember("likes black tea", user_id="v", key="drink", created_at=clock.now - 500)
            await store.remember("an older note about the river", user_id="v")
        clock.now += 10
        items = [{"user_id": "v", **item} for item in ITEMS]
        batch_ids = await mem.remember_many(items)
        single_ids = [await one_by_one.remember(**item) for item in items]
        assert len(batch_ids) == len(single_ids) == len(ITEMS)
        assert batch_ids[1] == batch_ids[5]  # one key, one memory
        assert await _state(mem, "v") == await _state(one_by_one, "v")
        drink = await mem.get(batch_ids[3])
        assert drink.content == "prefers green tea" and drink.created_at == clock.now - 510
        clock.now += 120  # the museum tickets expire; both stores purge them the same way
        after = [{"user_id": "v", "content": "after the expiry"}, {"user_id": "v", "content": "and one more"}]
        await mem.remember_many(after)  # one call: it purges the expired memory first
        for item in after:
            await one_by_one.remember(**item)
        assert await _state(mem, "v") == await _state(one_by_one, "v")
    finally:
        await one_by_one.close()


async def test_a_scope_over_capacity_is_evicted_as_without_one_call(
    mem: Facade, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch evicts once, after its writes (each write's scope size in its reply), coalesced or not."""
    clock = mem.clock  # type: ignore[attr-defined]
    batch = await open_like(mem, "", unique_name + "c", clock=clock, max_items_per_scope=5)
    single = await open_like(mem, "", unique_name + "d", clock=clock, max_items_per_scope=5)
    try:
        items = [
            {"content": f"note {i} about seats", "user_id": "v", "importance": ((i * 5) % 12) / 12}
            for i in range(12)
        ]
        await batch.remember_many(items)
        with monkeypatch.context() as m:
            m.setattr(_flows_write, "WRITE_MANY_MAX", 1)  # every write its own call, as before WriteMany
            await single.remember_many(items)
        assert await _state(batch, "v") == await _state(single, "v")
        assert (await batch.stats(user_id="v")).total == 5
    finally:
        await batch.close()
        await single.close()


@pytest.mark.parametrize("n", [2, 50, 130])
async def test_one_call_per_run_of_writes_to_a_scope(store: Any, valkey_url: str, n: int) -> None:
    """On Valkey ``n`` memories of one (registered) scope are ceil(n / 64) script calls, not ``n``."""
    import valkey

    admin = valkey.Valkey.from_url(valkey_url)
    try:
        store.remember("registers the scope", user_id="w")

        def calls() -> int:
            return int(admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

        before = calls()
        ids = store.remember_many([{"content": f"message {i}", "user_id": "w"} for i in range(n)])
        assert calls() - before == -(-n // 64)
        assert len(set(ids)) == n and store.count(user_id="w") == n + 1
        listed = store.list(user_id="w", limit=200, order="oldest").memories
        assert [m.content for m in listed] == ["registers the scope", *(f"message {i}" for i in range(n))]
    finally:
        admin.close()


def test_one_call_purges_the_scopes_expired_memories_first(valkey_url: str, unique_name: str) -> None:
    """Reads skip an expired memory anyway; the purge drops its bookkeeping (z, x, the term counts)."""
    import valkey

    from agentmem_core import MemoryStore
    from agentmem_core._records import scope_of
    from agentmem_core.embeddings import HashingEmbedder

    clock = Clock()
    store = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64), clock=clock)
    admin = valkey.Valkey.from_url(valkey_url, decode_responses=True)
    try:
        store.setup()
        store.remember_many([{"content": f"short lived {i}", "user_id": "w", "ttl": 60} for i in range(3)])
        tag = scope_of(None, None, None, "w").tag
        keys = store.keys
        assert admin.zcard(keys.created(tag)) == 3 and admin.zcard(keys.expiring(tag)) == 3
        clock.now += 120
        store.remember_many([{"content": f"kept {i}", "user_id": "w"} for i in range(2)])
        assert admin.zcard(keys.created(tag)) == 2 and admin.zcard(keys.expiring(tag)) == 0
        assert admin.hget(keys.counts(tag), "semantic") == "2"
        terms = admin.hgetall(keys.terms(tag))
        assert "short" not in terms and terms.get("kept") == "2"
        # memories whose terms are all the same: the terms go once for the whole call, and count each
        store.remember_many([{"content": "lisbon trip words", "user_id": "w2"}] * 3)
        same = admin.hgetall(keys.terms(scope_of(None, None, None, "w2").tag))
        assert same.get("lisbon") == "3" and same.get("word") == "3"
    finally:
        admin.close()
        store.close()


async def test_each_write_of_one_call_reports_its_own_result(mem: Facade) -> None:
    """WriteMany's results are each write's own: is_new, and the scope's size right after it."""
    from agentmem_core._flows_write import write_op
    from agentmem_core._records import MemoryInput, prepare
    from agentmem_core.ops import WriteMany, WriteResult

    store = mem.store
    cfg, now = store.config, mem.clock.now  # type: ignore[attr-defined]

    def op(content: str, **kw: Any) -> Any:
        return write_op(prepare(MemoryInput(content=content, user_id="r", embed=False, **kw), cfg, now), [])

    async def execute(ops: list[Any]) -> list[Any]:
        backend = store._backend
        got = await backend.aexecute(ops) if hasattr(backend, "aexecute") else backend.execute(ops)
        return list(got)

    first = await execute([WriteMany((op("a", key="ka"), op("b"), op("a again", key="ka"), op("c")))])
    assert first == [
        (WriteResult(True, 1), WriteResult(True, 2), WriteResult(False, 2), WriteResult(True, 3))
    ]
    second = await execute([WriteMany((op("b again", key="kb"), op("a thrice", key="ka"), op("d")))])
    assert second == [(WriteResult(True, 4), WriteResult(False, 4), WriteResult(True, 5))]
    assert await mem.count(user_id="r") == 5


def test_a_memory_the_server_reclaimed_early_is_counted_once(valkey_url: str, unique_name: str) -> None:
    """The server expired a memory (PEXPIRE) before the store's clock says so: re-writing its key in a
    call adds no second member, and the sizes the call reports are the scope's."""
    import valkey

    from agentmem_core import MemoryStore
    from agentmem_core._flows_write import write_op
    from agentmem_core._records import MemoryInput, prepare, scope_of
    from agentmem_core.embeddings import HashingEmbedder
    from agentmem_core.ops import WriteMany, WriteResult

    clock = Clock()  # frozen: the store never sees the memory expire
    store = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64), clock=clock)
    admin = valkey.Valkey.from_url(valkey_url, decode_responses=True)
    try:
        store.setup()
        gone = store.remember("short lived", user_id="q", key="k", embed=False, ttl=0.2)
        store.remember("stays", user_id="q", embed=False)
        keys, tag = store.keys, scope_of(None, None, None, "q").tag
        deadline = time.monotonic() + 5
        while admin.exists(keys.memory(gone)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not admin.exists(keys.memory(gone)) and admin.zcard(keys.created(tag)) == 2

        def op(content: str, **kw: Any) -> Any:
            item = MemoryInput(content=content, user_id="q", embed=False, **kw)
            return write_op(prepare(item, store.config, clock.now), [])

        got = store._backend.execute([WriteMany((op("back", key="k"), op("new")))])
        assert got == [(WriteResult(True, 2), WriteResult(True, 3))]
        assert admin.zcard(keys.created(tag)) == 3 and store.count(user_id="q") == 3
    finally:
        admin.close()
        store.close()


def _bookkeeping(raw: Any, store: Any, contents: dict[str, str]) -> dict[str, Any]:
    """A Valkey scope's bookkeeping, ids replaced by contents (the two stores' ids differ)."""
    keys, tag = store.keys, next(iter(contents))[:16]
    text = {memory_id.encode(): content for memory_id, content in contents.items()}
    return {
        "counts": raw.hgetall(keys.counts(tag)),
        "created": sorted((text[m], s) for m, s in raw.zrange(keys.created(tag), 0, -1, withscores=True)),
        "importance": sorted(
            (text[m], s) for m, s in raw.zrange(keys.by_importance(tag), 0, -1, withscores=True)
        ),
    }


async def test_a_batch_keeps_the_bookkeeping_one_write_at_a_time_keeps(
    mem: Facade, unique_name: str, valkey_url: str
) -> None:
    """WRITE_MANY sums a call's kind counts, write sequence and importance entries and sends them once:
    the scope's counts (``#seq`` included), creation and importance ZSETs (what eviction reads) end as
    one WRITE per memory leaves them."""
    if mem.backend != "valkey":
        pytest.skip("the Valkey scripts' own bookkeeping")
    import valkey

    clock = mem.clock  # type: ignore[attr-defined]
    one_by_one = await open_like(mem, "", unique_name + "b", clock=clock)
    raw = valkey.Valkey.from_url(valkey_url)
    try:
        states = []
        for store, batched in ((mem, True), (one_by_one, False)):
            await store.remember("likes black tea", user_id="v", key="drink", importance=0.3)
            items = [{"user_id": "v", **item} for item in ITEMS if "user_id" not in item]
            ids = (
                await store.remember_many(items) if batched else [await store.remember(**i) for i in items]
            )
            contents = {m.id: m.content for m in (await store.list(user_id="v", limit=100)).memories}
            assert set(ids) <= set(contents)
            states.append(_bookkeeping(raw, store.store, contents))
        assert states[0] == states[1]
        assert b"#seq" in states[0]["counts"] and len(states[0]["importance"]) == len(states[0]["created"])
    finally:
        raw.close()
        await one_by_one.close()
