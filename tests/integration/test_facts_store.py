"""Facts on every backend: write-time supersession, history, retraction, and recall of current facts."""

from __future__ import annotations

import pytest
from _support import Facade, open_like

from agentmem_core._flows_write import remember_flow
from agentmem_core._records import MemoryInput
from agentmem_core.errors import InvalidMemoryError

ANA = {"user_id": "ana"}


async def contents(mem: Facade, query: str = "where does Ana live", **kw: object) -> list[str]:
    result = await mem.recall(query, k=20, reinforce=False, **ANA, **kw)
    return [h.memory.content for h in result]


async def test_a_newer_statement_supersedes_and_recall_returns_the_current_fact(mem: Facade) -> None:
    berlin = await mem.remember("Ana lives in Berlin", subject="home city", created_at=1000, **ANA)
    await mem.remember("Ana prefers window seats", **ANA)
    paris = await mem.remember("Ana moved to Paris", subject="Home_City", created_at=2000, **ANA)

    old = await mem.get(berlin)
    assert (old.subject, old.valid_until, old.superseded_by, old.current) == ("home_city", 2000, paris, False)
    new = await mem.get(paris)
    assert (new.subject, new.valid_until, new.superseded_by, new.current) == ("home_city", None, None, True)

    assert set(await contents(mem)) == {"Ana moved to Paris", "Ana prefers window seats"}
    assert "Ana lives in Berlin" in await contents(mem, history=True)
    assert await contents(mem, current=False) == ["Ana lives in Berlin"]
    by_vector = await mem.recall_by_vector(
        mem.store.embedder.embed(["where does Ana live"])[0], k=20, reinforce=False, **ANA
    )
    assert "Ana lives in Berlin" not in [h.memory.content for h in by_vector]


async def test_history_is_in_statement_order_whatever_the_write_order(mem: Facade) -> None:
    paris = await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
    rome = await mem.remember("Ana lived in Rome", subject="home_city", created_at=500, **ANA)
    berlin = await mem.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
    history = await mem.history("home city", **ANA)
    assert [m.id for m in history] == [rome, berlin, paris]
    assert [(m.valid_until, m.superseded_by) for m in history] == [
        (1000, berlin),
        (2000, paris),
        (None, None),
    ]
    assert await mem.history("home_city", user_id="bob") == []


async def test_retract_ends_the_fact_and_an_unmatched_retraction_is_reported(mem: Facade) -> None:
    acme = await mem.remember("Ana works at Acme", subject="employer", created_at=1000, **ANA)
    assert await mem.retract("employer", at=500, **ANA) is None  # nothing held yet
    assert await mem.retract("employer", at=1500, **ANA) == acme
    assert await mem.retract("employer", at=1500, **ANA) == acme  # restated: the same retraction
    assert await mem.retract("hobby", **ANA) is None
    memory = await mem.get(acme)
    assert (memory.valid_until, memory.superseded_by, memory.current) == (1500, None, False)
    assert "Ana works at Acme" not in await contents(mem, "where does Ana work")
    later = await mem.remember("Ana works at Initech", subject="employer", created_at=3000, **ANA)
    assert (await mem.get(later)).current
    assert (await mem.get(acme)).valid_until == 1500  # the retraction stays in the history


async def test_same_time_statements_the_later_write_wins(mem: Facade) -> None:
    first = await mem.remember("Ana is vegetarian", subject="diet", created_at=1000, **ANA)
    second = await mem.remember("Ana is vegan", subject="diet", created_at=1000, **ANA)
    assert (await mem.get(first)).superseded_by == second
    assert (await mem.get(second)).current


async def test_a_metadata_update_keeps_the_fact_state(mem: Facade) -> None:
    old = await mem.remember(
        "Ana lives in Berlin", subject="home_city", created_at=1000, metadata={"a": 1}, **ANA
    )
    await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
    await mem.update(old, metadata={"b": 2})
    await mem.update(old, metadata={})
    assert await contents(mem, current=False) == ["Ana lives in Berlin"]
    page = await mem.list(subject="home_city", current=False, **ANA)
    assert [m.id for m in page.memories] == [old]
    assert (await mem.list(metadata={"b": 2}, **ANA)).memories == ()


async def test_list_and_count_filter_facts(mem: Facade) -> None:
    await mem.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
    await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
    await mem.remember("Ana works at Acme", subject="employer", **ANA)
    await mem.remember("a note", **ANA)
    assert await mem.count(**ANA) == 4
    assert await mem.count(fact=True, **ANA) == 3
    assert await mem.count(fact=False, **ANA) == 1
    assert await mem.count(current=True, **ANA) == 3
    assert await mem.count(subject=["home city", "employer"], current=True, **ANA) == 2
    page = await mem.list(fact=True, current=True, order="oldest", **ANA)
    assert [m.content for m in page.memories] == ["Ana moved to Paris", "Ana works at Acme"]


async def test_facts_are_never_merged_by_dedup(mem: Facade) -> None:
    dedup = await open_like(mem, "", mem.store.config.name + "d", dedup_threshold=0.5)
    try:
        a = await dedup.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
        b = await dedup.remember("Ana lives in Berlin", subject="home_city", created_at=2000, **ANA)
        c = await dedup.remember("Ana lives in Berlin", **ANA)  # no merge into a fact either
        assert len({a, b, c}) == 3
        assert (await dedup.get(a)).superseded_by == b
    finally:
        await dedup.close()


async def test_an_interrupted_supersession_is_repaired_by_the_next_write(mem: Facade) -> None:
    await mem.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
    # the write without its settle round: what a crash between the two leaves (two current versions)
    store = mem.store
    flow = remember_flow(
        store._context(), [MemoryInput("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)]
    )
    await mem._run("remember", flow)
    assert await mem.count(subject="home_city", current=True, **ANA) == 2
    await mem.remember("Ana moved to Lisbon", subject="home_city", created_at=3000, **ANA)
    history = await mem.history("home_city", **ANA)
    assert [m.content for m in history] == [
        "Ana lives in Berlin",
        "Ana moved to Paris",
        "Ana moved to Lisbon",
    ]
    assert [m.current for m in history] == [False, False, True]
    assert history[0].superseded_by == history[1].id and history[1].superseded_by == history[2].id


async def test_remember_many_settles_every_subject_in_one_pass(mem: Facade) -> None:
    ids = await mem.remember_many(
        [
            {"content": "Ana lives in Berlin", "subject": "home_city", "created_at": 1000, **ANA},
            {"content": "Ana moved to Paris", "subject": "home_city", "created_at": 2000, **ANA},
            {"content": "Ana works at Acme", "subject": "employer", "created_at": 1000, **ANA},
            {"content": "Bob lives in Oslo", "subject": "home_city", "created_at": 1000, "user_id": "bob"},
        ]
    )
    berlin, paris, acme, oslo = [await mem.get(i) for i in ids]
    assert berlin.superseded_by == paris.id and paris.current and acme.current and oslo.current


async def test_bad_subjects_are_typed_errors_and_nothing_is_written(mem: Facade) -> None:
    for bad in ("", "  ", "a\x00b", 7):
        with pytest.raises(InvalidMemoryError):
            await mem.remember("x", subject=bad, **ANA)
    with pytest.raises(InvalidMemoryError):
        await mem.remember("x", subject="s", texts=["a", "b"], **ANA)
    with pytest.raises(InvalidMemoryError):
        await mem.remember_many([{"content": "ok", **ANA}, {"content": "x", "subject": "", **ANA}])
    with pytest.raises(InvalidMemoryError):
        await mem.retract("employer", at=float("nan"), **ANA)
    with pytest.raises(InvalidMemoryError):
        await mem.recall("x", current="yes", **ANA)
    assert await mem.count(**ANA) == 0


async def test_a_subject_never_matches_another_scope_or_a_metadata_value(mem: Facade) -> None:
    await mem.remember("Ana lives in Berlin", subject="home_city", **ANA)
    await mem.remember("Bob lives in Oslo", subject="home_city", user_id="bob")
    await mem.remember("meta", metadata={"subject": "home_city", "home_city": True}, **ANA)
    assert [m.content for m in (await mem.list(subject="home_city", **ANA)).memories] == [
        "Ana lives in Berlin"
    ]
    assert await mem.count(fact=True, **ANA) == 1


async def test_current_facts_only_even_when_the_filter_fills_the_engine_budget(mem: Facade) -> None:
    budget = mem.store.engine.max_leaves
    full = {f"k{i}": i for i in range(budget)}
    await mem.remember("Ana lives in Berlin", subject="home_city", created_at=1000, metadata=full, **ANA)
    await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, metadata=full, **ANA)
    # the filter takes every leaf but the scope's: "current" is then checked on the client
    flt = {f"k{i}": i for i in range(budget - 2)}
    assert await contents(mem, metadata=flt) == ["Ana moved to Paris"]
    assert sorted(await contents(mem, metadata=flt, history=True)) == [
        "Ana lives in Berlin",
        "Ana moved to Paris",
    ]


async def test_facts_and_their_history_survive_an_export_and_import(mem: Facade) -> None:
    import io

    old = await mem.remember("Ana lives in Berlin", subject="home_city", created_at=1000, **ANA)
    new = await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
    sink = io.StringIO()
    await mem.export(sink)
    target = await open_like(mem, "", mem.store.config.name + "x", clock=mem.clock)
    try:
        await target.import_records(sink.getvalue().splitlines())
        history = await target.history("home_city", **ANA)
        assert [(m.id, m.valid_until, m.superseded_by) for m in history] == [
            (old, 2000, new),
            (new, None, None),
        ]
        hits = await target.recall("where does Ana live", k=5, reinforce=False, **ANA)
        assert [h.memory.id for h in hits] == [new]
    finally:
        await target.close()


async def test_a_fact_and_its_source_among_the_nearest_still_fill_a_page_ranked_by_similarity(
    mem: Facade,
) -> None:
    """Ranked by similarity alone, recall asks the KNN for the k nearest only; when a distilled fact and its
    source are among them (one place), it asks again for the spares that fill the page."""
    from agentmem_core.embeddings import HashingEmbedder

    source = await mem.remember("diet: vegan since 2020", **ANA)
    (fact,) = await mem.remember_many(
        [MemoryInput("vegan since 2020", subject="diet", derived_from=(source,), **ANA)]
    )
    await mem.remember_many([{"content": f"other note {i}", **ANA} for i in range(5)])
    vector = HashingEmbedder(64).embed(["vegan since 2020"])[0]
    only = {"similarity": 1.0, "recency": 0.0, "importance": 0.0}
    hits = await mem.recall_by_vector(vector, k=3, weights=only, reinforce=False, **ANA)
    ids = [h.memory.id for h in hits]
    assert len(ids) == 3 and ids[0] == fact and source not in ids
