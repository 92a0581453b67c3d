"""Consolidation on every backend: summaries (batched, idempotent, crash-safe) and distilled facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from _support import Facade, open_like

from agentmem_core.consolidation import ExtractedFact, KnownFact, Numbered
from agentmem_core.errors import BackendConnectionError, InvalidMemoryError, ModelError

ANA = {"user_id": "ana"}


class Summarizer:
    """A deterministic stand-in model: the summary names what it folded (bounded, like a real one's)."""

    def __init__(self, max_input_chars: int = 100_000) -> None:
        self.max_input_chars = max_input_chars
        self.calls: list[list[Numbered]] = []

    def summarize(self, memories: Sequence[Numbered]) -> str:
        self.calls.append(list(memories))
        return f"summary of {memories[0].content[:20]} .. {memories[-1].content[:20]} ({len(memories)})"

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        return self.summarize(memories)


class Extractor:
    """Facts by rule: "<subject>: <statement>" lines; "<subject>: -" retracts; cites its memory."""

    def __init__(self, max_input_chars: int = 100_000, cite: int = 0) -> None:
        self.max_input_chars = max_input_chars
        self.cite = cite  # added to every source number (a model citing numbers that do not exist)
        self.calls: list[tuple[list[Numbered], list[KnownFact]]] = []

    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        self.calls.append((list(memories), list(known)))
        out = []
        for m in memories:
            if ":" not in m.content:
                continue
            subject, statement = (p.strip() for p in m.content.split(":", 1))
            if statement == "-":
                out.append(ExtractedFact(subject, "", (m.n + self.cite,), retract=True))
            else:
                out.append(ExtractedFact(subject, statement, (m.n + self.cite,)))
        return out

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        return self.extract(memories, known)


async def seed(mem: Facade, n: int, scope: dict[str, Any] = ANA, start: float = 1000.0) -> list[str]:
    ids: list[str] = await mem.remember_many(
        [{"content": f"note {i}", "created_at": start + i, **scope} for i in range(n)]
    )
    return ids


async def test_consolidate_folds_oldest_to_newest_into_one_summary(mem: Facade) -> None:
    await seed(mem, 5)
    await mem.remember("Bob's note", user_id="bob")
    model = Summarizer()
    result = await mem.consolidate(model, **ANA)
    assert (result.scopes, result.sources, result.deleted, result.model_calls) == (1, 5, 5, 1)
    assert [m.content for m in model.calls[0]] == [f"note {i}" for i in range(5)]
    assert [m.n for m in model.calls[0]] == [1, 2, 3, 4, 5]  # numbered, never by id
    (summary,) = (await mem.list(**ANA)).memories
    assert summary.id == result.summaries[0]
    assert summary.kind.value == "summary" and summary.content.startswith("summary of note 0")
    assert summary.metadata["consolidation_sources"] == 5
    assert summary.metadata["consolidation_state"] == "done"
    assert (summary.metadata["consolidation_from"], summary.metadata["consolidation_to"]) == (1000, 1004)
    assert await mem.count(user_id="bob") == 1  # another scope is untouched


async def test_consolidate_refuses_to_run_without_selection_criteria(mem: Facade) -> None:
    await seed(mem, 3)
    with pytest.raises(InvalidMemoryError, match="selection criteria"):
        await mem.consolidate(Summarizer())
    with pytest.raises(InvalidMemoryError):
        await mem.consolidate(Summarizer(), older_than=-1, **ANA)
    assert await mem.count(**ANA) == 3


async def test_consolidate_selects_by_age_importance_and_tags(mem: Facade) -> None:
    mem.clock.now = 10_000.0
    await mem.remember("old low", importance=0.2, created_at=1000, tags=["trip"], **ANA)
    await mem.remember("old low 2", importance=0.3, created_at=1001, tags=["trip"], **ANA)
    await mem.remember("old high", importance=0.9, created_at=1002, tags=["trip"], **ANA)
    await mem.remember("new low", importance=0.2, created_at=9_999, tags=["trip"], **ANA)
    await mem.remember("old other tag", importance=0.2, created_at=1003, tags=["work"], **ANA)
    model = Summarizer()
    result = await mem.consolidate(model, older_than=3600, max_importance=0.5, tags=["trip"], **ANA)
    assert [m.content for m in model.calls[0]] == ["old low", "old low 2"]
    assert result.deleted == 2
    left = sorted(m.content for m in (await mem.list(**ANA)).memories if m.kind.value != "summary")
    assert left == ["new low", "old high", "old other tag"]


async def test_a_rerun_with_kept_sources_changes_nothing(mem: Facade) -> None:
    await seed(mem, 4)
    model = Summarizer()
    first = await mem.consolidate(model, delete_sources=False, **ANA)
    again = await mem.consolidate(model, delete_sources=False, **ANA)
    assert first.summaries and again.summaries == () and again.unchanged == 1
    assert len(model.calls) == 1
    assert await mem.count(**ANA) == 5
    await mem.remember("note 4", created_at=2000, **ANA)  # a new source: a new summary of all five
    third = await mem.consolidate(model, delete_sources=False, **ANA)
    assert len(third.summaries) == 1 and len(model.calls) == 2


async def test_large_selections_are_batched_then_summaries_summarised(mem: Facade) -> None:
    await seed(mem, 40)
    model = Summarizer(max_input_chars=400)  # about ten notes per call
    result = await mem.consolidate(model, **ANA)
    first_level = [c for c in model.calls if c[0].content.startswith("note")]
    assert len(first_level) >= 4
    assert sum(len(c) for c in first_level) == 40
    assert all(sum(len(m.content) + 32 for m in c) <= 400 for c in model.calls if len(c) > 1)
    assert model.calls[-1][0].kind == "summary"  # the last call folds summaries
    assert result.model_calls == len(model.calls)
    assert await mem.count(**ANA) == 1


async def test_a_failing_summarizer_deletes_nothing(mem: Facade) -> None:
    await seed(mem, 3)

    class Broken(Summarizer):
        def summarize(self, memories: Sequence[Numbered]) -> str:
            raise RuntimeError("rate limited")

    with pytest.raises(ModelError, match="rate limited"):
        await mem.consolidate(Broken(), **ANA)

    class Empty(Summarizer):
        def summarize(self, memories: Sequence[Numbered]) -> str:
            return "  "

    with pytest.raises(ModelError):
        await mem.consolidate(Empty(), **ANA)
    assert await mem.count(**ANA) == 3


class Flaky:
    """Wraps a backend: the ``fail_at``-th batch of operations dies like a killed connection."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.batches = inner, fail_at, 0

    def _tick(self) -> None:
        self.batches += 1
        if self.batches == self.fail_at:
            raise BackendConnectionError("connection killed by the test")

    def execute(self, ops: Any) -> list[Any]:
        self._tick()
        return self.inner.execute(ops)  # type: ignore[no-any-return]

    async def aexecute(self, ops: Any) -> list[Any]:
        self._tick()
        return await self.inner.aexecute(ops)  # type: ignore[no-any-return]


N = 5000


async def test_an_interrupted_consolidation_loses_nothing_and_a_rerun_completes_it(mem: Facade) -> None:
    await seed(mem, N)
    model = Summarizer()
    # count the batches a whole run takes, on a copy of the data in another store
    probe = await open_like(mem, "", mem.store.config.name + "p", clock=mem.clock)
    try:
        await seed(probe, N)
        counter = Flaky(probe.store._driver.backend, fail_at=-1)
        probe.store._driver.backend = counter
        await probe.consolidate(Summarizer(), **ANA)
        total = counter.batches
    finally:
        await probe.close()
    assert total > 10
    original = mem.store._driver.backend
    for fail_at in (total // 2, total - 3):  # mid-selection of the second pass / among the deletes
        mem.store._driver.backend = Flaky(original, fail_at)
        with pytest.raises(BackendConnectionError):
            await mem.consolidate(model, **ANA)
        mem.store._driver.backend = original
        sources = await mem.count(kinds=["episodic", "semantic"], **ANA)
        summaries = (await mem.list(kinds=["summary"], **ANA)).memories
        assert sources == N or len(summaries) == 1, (fail_at, sources, summaries)  # never neither
    calls = len(model.calls)
    result = await mem.consolidate(model, **ANA)
    assert len(model.calls) == calls  # completed without calling the model again
    assert result.resumed == 1
    (summary,) = (await mem.list(**ANA)).memories
    assert summary.metadata["consolidation_state"] == "done"
    assert summary.metadata["consolidation_sources"] == N
    assert await mem.count(**ANA) == 1


async def test_consolidate_facts_reconciles_by_subject(mem: Facade) -> None:
    for i, text in enumerate(
        ["home city: lives in Berlin", "employer: works at Acme", "a note without facts",
         "home city: moved to Paris", "employer: -", "hobby: -"]
    ):  # fmt: skip
        await mem.remember(text, created_at=1000 + i, **ANA)
    model = Extractor()
    result = await mem.consolidate_facts(model, **ANA)
    assert result.sources == 6 and result.model_calls == 1 and len(result.written) == 3
    assert result.unmatched_retractions == ("hobby",)
    assert len(result.retracted) == 1
    history = await mem.history("home_city", **ANA)
    assert [(m.content, m.created_at, m.current) for m in history] == [
        ("lives in Berlin", 1000, False), ("moved to Paris", 1003, True)
    ]  # fmt: skip
    sources = {m.content: m.id for m in (await mem.list(fact=False, **ANA)).memories}
    assert history[1].derived_from == (sources["home city: moved to Paris"],)
    (employer,) = await mem.history("employer", **ANA)
    assert (employer.content, employer.valid_until, employer.superseded_by) == ("works at Acme", 1004, None)
    hits = await mem.recall("where does Ana live", k=20, reinforce=False, fact=True, **ANA)
    assert [h.memory.content for h in hits] == ["moved to Paris"]
    assert await mem.count(**ANA) == 9  # sources are kept by default


async def test_consolidate_facts_reruns_change_nothing_and_skip_what_was_read(mem: Facade) -> None:
    await mem.remember("home city: lives in Berlin", created_at=1000, **ANA)
    model = Extractor()
    await mem.consolidate_facts(model, **ANA)
    again = await mem.consolidate_facts(model, **ANA)
    assert again.model_calls == 0 and again.written == ()  # nothing new since the last run
    redo = await mem.consolidate_facts(model, reprocess=True, **ANA)
    assert redo.model_calls == 1 and redo.written == () and redo.unchanged == 1
    await mem.remember("home city: moved to Paris", created_at=2000, **ANA)
    later = await mem.consolidate_facts(model, **ANA)
    assert len(later.written) == 1
    assert [m.content for m in model.calls[-1][0]] == ["home city: moved to Paris"]  # only the new memory
    assert [(k.n, k.subject, k.statement) for k in model.calls[-1][1]] == [
        (1, "home_city", "lives in Berlin")
    ]
    assert [m.current for m in await mem.history("home_city", **ANA)] == [False, True]


async def test_consolidate_facts_reports_citations_of_memories_it_was_not_shown(mem: Facade) -> None:
    await mem.remember("diet: vegetarian", created_at=1000, **ANA)
    result = await mem.consolidate_facts(Extractor(cite=50), **ANA)
    assert result.invalid_references == 1
    (fact,) = await mem.history("diet", **ANA)
    assert fact.created_at == 1000  # dated by the batch, not by a number that matches nothing


async def test_consolidate_facts_agrees_with_write_time_supersession(mem: Facade) -> None:
    await mem.remember("Ana lives in Rome", subject="home_city", created_at=500, **ANA)
    await mem.remember("home city: lives in Berlin", created_at=1000, **ANA)
    await mem.consolidate_facts(Extractor(), **ANA)
    await mem.remember("Ana moved to Paris", subject="home_city", created_at=2000, **ANA)
    history = await mem.history("home_city", **ANA)
    assert [m.content for m in history] == ["Ana lives in Rome", "lives in Berlin", "Ana moved to Paris"]
    assert [m.current for m in history] == [False, False, True]


async def test_consolidate_facts_can_delete_its_sources(mem: Facade) -> None:
    await mem.remember("diet: vegan", created_at=1000, **ANA)
    await mem.remember("nothing here", created_at=1001, **ANA)
    result = await mem.consolidate_facts(Extractor(), delete_sources=True, **ANA)
    assert result.deleted == 2
    assert [m.content for m in (await mem.list(**ANA)).memories] == ["vegan"]


async def test_malformed_extractor_output_is_a_model_error(mem: Facade) -> None:
    await mem.remember("diet: vegan", **ANA)

    class Bad(Extractor):
        def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> Any:
            return [{"subject": "diet"}]

    with pytest.raises(ModelError):
        await mem.consolidate_facts(Bad(), **ANA)
    assert await mem.count(fact=True, **ANA) == 0


async def test_a_distilled_fact_and_its_source_take_one_place_in_a_recall(mem: Facade) -> None:
    source = await mem.remember("diet: vegan since 2020", created_at=1000, **ANA)
    await mem.remember_many([{"content": f"other note {i}", **ANA} for i in range(5)])
    await mem.consolidate_facts(Extractor(), **ANA)
    (fact,) = await mem.history("diet", **ANA)
    assert fact.content == "vegan since 2020" and fact.derived_from == (source,)
    for query, kept, dropped in (
        ("vegan since 2020", fact.id, source),
        ("diet: vegan since 2020", source, fact.id),
    ):
        hits = await mem.recall(query, k=3, reinforce=False, **ANA)
        ids = [h.memory.id for h in hits]
        assert ids[0] == kept and dropped not in ids and len(ids) == 3, query  # the page is still full
    both = await mem.recall("vegan since 2020", k=3, reinforce=False, fact=False, **ANA)
    assert [h.memory.id for h in both][0] == source  # without the fact, the source is a hit again
    hits = await mem.recall("vegan since 2020", k=2, **ANA)  # reinforcement skips the dropped source
    assert (await mem.get(source)).access_count == 0 and hits.hits[0].memory.access_count == 1
