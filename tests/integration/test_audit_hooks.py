"""Every write appends its audit entry, on every backend: what was done, to which ids, in which scope."""

from __future__ import annotations

import io
from collections.abc import Sequence

from _support import Facade, open_like

from agentmem_core.consolidation import Numbered

ANA = {"user_id": "ana"}


class Summarizer:
    max_input_chars = 100_000

    def summarize(self, memories: Sequence[Numbered]) -> str:
        return f"summary of {len(memories)}"

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        return self.summarize(memories)


async def actions(mem: Facade, **kw: object) -> list[str]:
    return [e.action for e in await mem.audit(limit=1000, **kw)]


async def test_remember_update_forget_are_logged_with_ids_scope_and_actor(mem: Facade) -> None:
    logged = await open_like(mem, "", mem.store.config.name + "a", actor="travel-agent", clock=mem.clock)
    try:
        a = await logged.remember("Prefers window seats", **ANA)
        b, c = await logged.remember_many([{"content": "x", **ANA}, {"content": "y", "user_id": "bob"}])
        await logged.update(a, importance=0.9, tags=["seat"])
        await logged.forget(b)
        await logged.forget_by_scope(user_id="bob")
        entries = await logged.audit()
        assert [e.action for e in entries] == [
            "forget",
            "forget",
            "update",
            "remember",
            "remember",
            "remember",
        ]
        forget_bob, forget_b, update, *remembers = entries
        assert forget_bob.ids == (c,) and forget_bob.scope == {"user_id": "bob"}
        assert forget_b.ids == (b,) and forget_b.scope == {"user_id": "ana"}
        assert update.ids == (a,) and update.detail == {"changed": ["importance", "tags"]}
        assert all(e.actor == "travel-agent" and e.at == mem.clock.now for e in entries)
        assert {i for e in remembers for i in e.ids} == {a, b, c}
        assert [e.action for e in await logged.audit(memory_id=a)] == ["update", "remember"]
        assert [e.action for e in await logged.audit(user_id="bob")] == ["forget", "remember"]
    finally:
        await logged.close()


async def test_merges_evictions_supersessions_and_retractions_are_logged(mem: Facade) -> None:
    logged = await open_like(
        mem, "", mem.store.config.name + "b", dedup_threshold=0.05, max_items_per_scope=3, clock=mem.clock
    )
    try:
        first = await logged.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
        second = await logged.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
        supersede = (await logged.audit(actions=["supersede"]))[0]
        assert supersede.ids == (first,) and supersede.detail == {"subject": "home_city"}
        await logged.retract("home_city", at=3000, **ANA)
        retract = (await logged.audit(actions=["retract"]))[0]
        assert retract.ids == (second,)
        note = await logged.remember("a note about the trip", **ANA)
        assert await logged.remember("a note about the trip", **ANA) == note  # merged by dedup
        assert (await logged.audit(actions=["merge"]))[0].ids == (note,)
        mem.clock.now += 1
        await logged.remember("another memory entirely", importance=1.0, **ANA)  # over capacity: evicts
        (evict,) = await logged.audit(actions=["evict"])
        assert evict.count == 1 and evict.scope == {"user_id": "ana"}
    finally:
        await logged.close()


async def test_consolidation_and_import_are_logged(mem: Facade) -> None:
    ids = await mem.remember_many([{"content": f"note {i}", "created_at": 1000 + i, **ANA} for i in range(3)])
    result = await mem.consolidate(Summarizer(), **ANA)
    (entry,) = await mem.audit(actions=["consolidate"])
    assert set(entry.ids) == set(ids) and entry.count == 3
    assert entry.detail == {"summary": result.summaries[0], "calls": 1}
    # the summary is written, logged, then the sources go, then the summary is marked done
    assert (await actions(mem))[:5] == ["update", "forget", "consolidate", "remember", "remember"]
    sink = io.StringIO()
    await mem.export(sink)
    target = await open_like(mem, "", mem.store.config.name + "i", clock=mem.clock)
    try:
        await target.import_records(sink.getvalue().splitlines())
        (imported,) = await target.audit(actions=["import"])
        assert imported.ids == result.summaries
    finally:
        await target.close()


async def test_the_audit_trail_can_be_turned_off(mem: Facade) -> None:
    quiet = await open_like(mem, "", mem.store.config.name + "q", audit=False, clock=mem.clock)
    try:
        memory_id = await quiet.remember("x", **ANA)
        await quiet.update(memory_id, importance=0.1)
        await quiet.forget(memory_id)
        assert await quiet.audit() == []
    finally:
        await quiet.close()


async def test_entries_list_at_most_a_hundred_ids_and_count_them_all(mem: Facade) -> None:
    ids = await mem.remember_many([{"content": f"n{i}", **ANA} for i in range(150)])
    (entry,) = await mem.audit(actions=["remember"])
    assert entry.count == 150 and len(entry.ids) == 100 and set(entry.ids) <= set(ids)


async def test_a_memory_with_a_caller_id_is_found_by_that_id(mem: Facade) -> None:
    memory_id = await mem.remember("passport number", id="passport-ana", **ANA)
    assert memory_id == "passport-ana"
    await mem.update(memory_id, importance=0.9)
    await mem.forget(memory_id)  # found after the forget too (the alias is gone by then)
    found = await mem.audit(memory_id="passport-ana")
    assert [e.action for e in found] == ["forget", "update", "remember"]
    assert await mem.audit(memory_id="someone-else") == []
