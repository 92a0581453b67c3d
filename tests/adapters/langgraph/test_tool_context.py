"""The manage tool records the message that prompted a memory, and ValkeyMemoryStore matches its words.

Inside a graph the tool stores the latest human message at ``value["context"]``; ``ValkeyMemoryStore``
hands the text at its ``context_fields`` to the core as the memory's ``context`` (matched by the lexical
channel of composite searches, never embedded), and keeps the value exactly as written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agentmem_core.embeddings import HashingEmbedder
from agentmem_langgraph import ValkeyMemoryStore, create_manage_memory_tool

pytestmark = pytest.mark.integration

DIMS = 64
NS = ("memories", "{langgraph_user_id}")
ANA = {"configurable": {"langgraph_user_id": "ana"}}
QUESTION = "How many times have you been to Lisbon?"


def embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in HashingEmbedder(DIMS).embed(texts)]


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["content"]}


@pytest.fixture
def valkey_store(valkey_url: str, unique_name: str) -> Iterator[ValkeyMemoryStore]:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as s:
        s.setup()
        yield s


def run_turn(store: BaseStore, content: str, *, human: str = QUESTION, **tool_options: Any) -> None:
    """One graph turn: a human message, then the model's manage_memory call, run by a ToolNode."""
    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([create_manage_memory_tool(NS, **tool_options)]))
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    call = {
        "name": "manage_memory",
        "args": {"content": content},
        "id": uuid.uuid4().hex,
        "type": "tool_call",
    }
    state = {"messages": [HumanMessage(human), AIMessage(content="", tool_calls=[call])]}
    out = builder.compile(store=store).invoke(state, ANA)
    assert str(out["messages"][-1].content).startswith("created memory "), out["messages"][-1]


@pytest.mark.parametrize("kind", ["valkey", "in_memory"])
def test_the_tool_stores_the_prompting_message_in_the_value(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store: BaseStore = (
        request.getfixturevalue("valkey_store") if kind == "valkey" else InMemoryStore(index=INDEX)
    )
    run_turn(store, "Twice, both in spring.")
    (item,) = store.search(("memories", "ana"))
    assert item.value == {"content": "Twice, both in spring.", "context": QUESTION}


def test_record_context_off_and_outside_a_graph_store_the_content_only(
    valkey_store: ValkeyMemoryStore,
) -> None:
    run_turn(valkey_store, "likes tea", record_context=False)
    create_manage_memory_tool(NS, store=valkey_store).invoke({"content": "likes coffee"}, ANA)  # no graph
    values = sorted(i.value["content"] for i in valkey_store.search(("memories", "ana")))
    assert values == ["likes coffee", "likes tea"]
    assert all(set(i.value) == {"content"} for i in valkey_store.search(("memories", "ana")))


def test_the_context_is_matched_by_a_composite_search(valkey_store: ValkeyMemoryStore) -> None:
    run_turn(valkey_store, "Twice, both in spring.")
    run_turn(valkey_store, "Prefers aisle seats.", human="Book me a flight")
    hits = valkey_store.core.recall("Lisbon", namespace=("memories", "ana"), k=2, reinforce=False)
    by_content = {h.memory.content: h for h in hits}
    assert by_content["Twice, both in spring."].scores.lexical > 0  # only its context says "Lisbon"
    assert by_content["Twice, both in spring."] is hits[0]
    assert valkey_store.search(("memories", "ana"), query="Lisbon", limit=1)[0].value["content"] == (
        "Twice, both in spring."
    )


def test_context_fields_none_leaves_the_context_in_the_value_only(valkey_url: str, unique_name: str) -> None:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX, context_fields=None) as store:
        store.setup()
        run_turn(store, "Twice, both in spring.")
        (item,) = store.search(("memories", "ana"))
        assert item.value["context"] == QUESTION
        (hit,) = store.core.recall("Lisbon", namespace=("memories", "ana"), k=1, reinforce=False)
        assert hit.scores.lexical == 0


def test_a_context_value_on_an_unembedded_put_is_kept_and_ignored(valkey_store: ValkeyMemoryStore) -> None:
    valkey_store.put(("notes",), "n1", {"content": "hi", "context": "a question"}, index=False)
    item = valkey_store.get(("notes",), "n1")
    assert item is not None and item.value == {"content": "hi", "context": "a question"}


def test_a_long_context_keeps_its_end(valkey_store: ValkeyMemoryStore) -> None:
    long = "filler " * 2000 + "Lisbon"
    valkey_store.put(("notes",), "n2", {"content": "Twice, both in spring.", "context": long})
    (hit,) = valkey_store.core.recall("Lisbon", namespace=("notes",), k=1, reinforce=False)
    assert hit.scores.lexical > 0
    assert valkey_store.get(("notes",), "n2").value["context"] == long  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["context", ["$"]])
def test_bad_context_fields_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="context_fields"):
        ValkeyMemoryStore(InMemoryStore(), index=INDEX, context_fields=bad)  # type: ignore[arg-type]
