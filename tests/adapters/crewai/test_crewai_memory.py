"""crewai.Memory (and a Crew) on ValkeyStorage, with a deterministic embedder and no real LLM call."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _crewai_support import DIMS, embed, same_record
from crewai import Agent, Crew, Memory, Task
from crewai.llms.base_llm import BaseLLM
from crewai.memory.analyze import _get_prompt
from crewai.memory.storage.factory import set_memory_storage_factory
from crewai.memory.types import MemoryRecord
from pydantic import Field

from agentmem_core import IndexConfig, MemoryStore
from agentmem_core.errors import ConfigurationError, SchemaMismatchError
from agentmem_crewai import ValkeyStorage, ValkeyStorageFactory, register_valkey_storage
from agentmem_crewai.storage import never_embeds


def text_of(messages: Any) -> str:
    return messages if isinstance(messages, str) else "\n".join(str(m.get("content", "")) for m in messages)


def no_answer(prompt: str) -> str:
    raise AssertionError(f"no LLM call expected, got: {prompt[:200]}")


class OfflineLLM(BaseLLM):
    """An offline LLM stand-in: canned answers to CrewAI's memory prompts, ``answer(prompt)`` for tasks.

    Every prompt is recorded. The default ``answer`` fails the test: for paths that must not call an LLM.
    """

    model: str = "offline-stand-in"
    answer: Callable[[str], str] = no_answer
    prompts: list[str] = Field(default_factory=list)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        text = text_of(messages)
        if self.answer is no_answer:
            no_answer(text)
        self.prompts.append(text)
        if _get_prompt("extract_memories_system") in text:
            result = text.split("Result:", 1)[1].split("Final Answer:")[-1].strip().splitlines()[0]
            return json.dumps({"memories": [result]})
        if _get_prompt("save_system") in text:
            return json.dumps({"suggested_scope": "/facts", "categories": ["fact"], "importance": 0.8})
        if _get_prompt("query_system") in text:
            return json.dumps({"recall_queries": ["launch code"], "complexity": "simple"})
        if _get_prompt("consolidation_system") in text:
            return json.dumps({"actions": [], "insert_new": True})
        return f"Thought: I now know the final answer\nFinal Answer: {self.answer(text)}"

    def supports_function_calling(self) -> bool:
        return False


def offline() -> OfflineLLM:
    return OfflineLLM(model="offline-stand-in")


@pytest.fixture
def memory(storage: ValkeyStorage) -> Iterator[Memory]:
    m = Memory(storage=storage, llm=offline(), embedder=embed, consolidation_threshold=1.0)
    try:
        yield m
    finally:
        m.close()


def test_memory_end_to_end_without_an_llm(memory: Memory, storage: ValkeyStorage) -> None:
    fact = memory.remember(
        "Valkey is the team's memory backend", scope="/project/infra", categories=["decision"], importance=0.9
    )
    assert fact is not None and same_record(storage.get_record(fact.id), fact)
    memory.remember_many(  # the background pool: recall waits for it
        ["Ana leads the platform team", "Bo owns the release calendar"],
        scope="/project/people",
        categories=["team"],
        importance=0.4,
    )
    secret = memory.remember(
        "The staging password rotates weekly",
        scope="/project/infra",
        categories=["ops"],
        importance=0.7,
        source="ana",
        private=True,
    )
    matches = memory.recall("which memory backend does the team use", depth="shallow", limit=3)
    assert matches[0].record.id == fact.id
    assert memory.recall("who leads the platform team", scope="/project/people", depth="shallow")[
        0
    ].record.content == ("Ana leads the platform team")
    assert {
        m.record.id for m in memory.recall("staging password", depth="shallow", categories=["ops"])
    } == set()
    assert [
        m.record.id for m in memory.recall("staging password", depth="shallow", source="ana", limit=1)
    ] == [secret.id]
    touched = storage.get_record(fact.id)
    assert touched.last_accessed > fact.last_accessed  # recall touched its results
    assert memory.list_scopes("/project") == ["/project/infra", "/project/people"]
    assert memory.list_scopes() == ["/project"]
    info = memory.info("/project")
    assert info.record_count == 4 and info.categories == ["decision", "ops", "team"]
    assert info.child_scopes == ["/project/infra", "/project/people"]
    assert memory.list_categories("/project/people") == {"team": 2}
    assert [r.content for r in memory.list_records("/project/people", limit=1)] in (
        ["Ana leads the platform team"],
        ["Bo owns the release calendar"],
    )
    updated = memory.update(
        fact.id, content="Valkey, with agentmem, is the memory backend", scope="/project/x"
    )
    assert same_record(storage.get_record(fact.id), updated)
    assert memory.recall("agentmem memory backend", depth="shallow", limit=1)[0].record.scope == "/project/x"
    assert memory.forget(scope="/project/people") == 2
    assert memory.info("/").record_count == 2
    memory.reset()
    assert memory.info("/").record_count == 0 and storage.count() == 0


def test_memory_views_and_root_scope(storage: ValkeyStorage) -> None:
    crew_memory = Memory(storage=storage, llm=offline(), embedder=embed, root_scope="/crew/research")
    other = Memory(storage=storage, llm=offline(), embedder=embed, root_scope="/crew/researchers")
    crew_memory.remember("inside the research crew", scope="/notes", categories=["n"], importance=0.5)
    other.remember("inside the researchers crew", scope="/notes", categories=["n"], importance=0.5)
    # the root scope /crew/research does not see /crew/researchers (LanceDB's LIKE would)
    assert [m.record.content for m in crew_memory.recall("inside crew", depth="shallow")] == [
        "inside the research crew"
    ]
    assert crew_memory.list_records()[0].scope == "/crew/research/notes"
    view = crew_memory.scope("/notes")
    assert [m.record.content for m in view.recall("inside crew", depth="shallow")] == [
        "inside the research crew"
    ]
    # a storage is a handle: copies share it (crewai's own Memory.__deepcopy__ fails on Python 3.11:
    # it calls isinstance(value, threading.Lock), and threading.Lock is a function)
    assert copy.deepcopy(storage) is storage
    crew_memory.reset()
    assert storage.count() == 1


def test_factory_selects_valkey_by_string(valkey_url: str, unique_name: str) -> None:
    factory = register_valkey_storage(dims=DIMS)
    try:
        memory = Memory(storage=f"{valkey_url}/0?name={unique_name}", llm=offline(), embedder=embed)
        try:
            assert isinstance(memory._storage, ValkeyStorage)
            assert memory._storage.core.keys.store == unique_name
            memory.remember("selected by a string", scope="/s", categories=["c"], importance=0.5)
            assert memory.recall("selected by a string", depth="shallow")[0].record.scope == "/s"
        finally:
            memory.close()
        assert factory("lancedb") is None and factory("/some/path") is None and factory("qdrant-edge") is None
    finally:
        set_memory_storage_factory(None)
    routed = ValkeyStorageFactory(default=f"{valkey_url}?name={unique_name}&dims={DIMS}")("lancedb")
    assert isinstance(routed, ValkeyStorage) and routed.count() == 1
    routed.close()
    assert ValkeyStorageFactory().parse(f"{valkey_url}/2?name=x&dims=8&socket_timeout=3") == (
        f"{valkey_url}/2?socket_timeout=3",
        "x",
        8,
    )
    for bad in (f"{valkey_url}?name=x", f"{valkey_url}?dims=zero", f"{valkey_url}?dims=0"):
        with pytest.raises(ConfigurationError):
            ValkeyStorageFactory()(bad)


def test_an_existing_hnsw_index_is_shared_and_an_explicit_flat_refused(
    valkey_url: str, unique_name: str
) -> None:
    """An index another adapter made with HNSW is used as HNSW; a storage that asks FLAT is refused."""
    with MemoryStore.from_url(valkey_url, name=unique_name, embedder=never_embeds, dims=DIMS) as other:
        assert other.setup() is not None and other.spec.config.algorithm == "HNSW"  # the core's default
    with ValkeyStorage.from_url(valkey_url, name=unique_name, dims=DIMS) as shared:
        shared.save([MemoryRecord(content="kept", scope="/s", embedding=embed(["kept"])[0])])
        assert shared.core.spec.config.algorithm == "HNSW"
        assert [r.content for r, _ in shared.search(embed(["kept"])[0])] == ["kept"]
    flat = {"index": IndexConfig(dims=DIMS, algorithm="FLAT")}
    with ValkeyStorage.from_url(valkey_url, name=unique_name, dims=DIMS, core_options=flat) as exact:
        with pytest.raises(SchemaMismatchError, match="HNSW"):
            exact.setup()
    with ValkeyStorage.from_url(valkey_url, name=unique_name + "new", dims=DIMS) as fresh:
        fresh.setup()
        assert fresh.core.spec.config.algorithm == "FLAT"  # what a storage creates


@pytest.mark.parametrize("holder", ["crew", "agent"])
def test_a_crew_recalls_what_an_earlier_task_saved(
    storage: ValkeyStorage, monkeypatch: pytest.MonkeyPatch, holder: str
) -> None:
    monkeypatch.setenv("CREWAI_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")

    def answer(prompt: str) -> str:
        task = prompt.split("Current Task:", 1)[-1]
        if "Discover the launch code" in task:
            return "The launch code is BLUE-42."
        # the second task has no context from the first: only recalled memories can hold the code
        return "BLUE-42" if "BLUE-42" in prompt else "unknown"

    llm = OfflineLLM(model="offline-stand-in", answer=answer)
    memory = Memory(storage=storage, llm=llm, embedder=embed, consolidation_threshold=1.0)
    agent = Agent(
        role="Archivist",
        goal="Keep facts",
        backstory="Remembers everything.",
        llm=llm,
        memory=memory if holder == "agent" else None,  # the agent's own memory, or the crew's
    )
    discover = Task(description="Discover the launch code.", expected_output="The code.", agent=agent)
    report = Task(
        description="Report the launch code you know from memory.",
        expected_output="The code.",
        agent=agent,
        context=[],  # no task output passed along
    )
    crew = Crew(agents=[agent], tasks=[discover, report], memory=memory if holder == "crew" else False)
    try:
        result = crew.kickoff()
    finally:
        memory.close()
    assert [t.raw for t in result.tasks_output] == ["The launch code is BLUE-42.", "BLUE-42"]
    second = [p for p in llm.prompts if "Report the launch code" in p.split("Current Task:", 1)[-1]]
    assert second and "- (score=" in second[0] and "The launch code is BLUE-42." in second[0]
    saved = {r.content: r for r in storage.list_records()}
    assert set(saved) == {"The launch code is BLUE-42.", "BLUE-42"}  # each task's result was saved
    fact = saved["The launch code is BLUE-42."]
    assert fact.categories == ["fact"] and fact.scope.endswith("/facts") and fact.importance == 0.8
