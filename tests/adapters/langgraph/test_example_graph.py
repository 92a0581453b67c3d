"""examples/langgraph_agent.py: the agent saves a preference in one thread and uses it in another.

The example runs as shipped (sync and async), then its graph is driven here once more to check what
the checkpointer and the store hold: thread 2 starts without thread 1's messages, the preference lives
in the user's namespace only, and another user never sees it.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agentmem_langgraph import ValkeyMemoryStore, ValkeySaver

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langgraph_agent.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("langgraph_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def check_turns(turns: list[Any]) -> None:
    assert [(t.user, t.thread) for t in turns] == [
        ("ana", "thread-1"),
        ("ana", "thread-2"),
        ("bob", "thread-3"),
    ]
    assert turns[0].answer == "Got it, I'll remember that."
    assert turns[1].answer == "From what you told me before: I prefer window seats on flights"
    assert turns[2].answer == "I don't know your preferences yet."


def test_the_example_runs(example: ModuleType, valkey_url: str, unique_name: str) -> None:
    check_turns(example.run(valkey_url, name=unique_name))
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=example.INDEX) as store:
        assert store.list_namespaces() == []  # keep=False cleaned up after itself


async def test_the_example_runs_async(example: ModuleType, valkey_url: str, unique_name: str) -> None:
    check_turns(await example.arun(valkey_url, name=unique_name))


def test_what_the_checkpointer_and_the_store_hold(
    example: ModuleType, valkey_url: str, unique_name: str
) -> None:
    prefix = "ex" + uuid.uuid4().hex[:10]
    with (
        ValkeySaver.from_url(valkey_url, prefix=prefix) as saver,
        ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=example.INDEX) as store,
    ):
        store.setup()
        graph = example.build_agent(example.ScriptedChatModel(), example.memory_tools()).compile(
            checkpointer=saver, store=store
        )
        ana1 = {"configurable": {"thread_id": "t1", "langgraph_user_id": "ana"}}
        ana2 = {"configurable": {"thread_id": "t2", "langgraph_user_id": "ana"}}
        graph.invoke({"messages": [HumanMessage("Remember that I prefer window seats")]}, ana1)
        first = graph.get_state(ana1).values["messages"]
        assert [type(m) for m in first] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
        assert first[1].tool_calls[0]["name"] == "manage_memory"

        (item,) = store.search(("memories", "ana"))
        # the manage tool also keeps the message the memory came from (matched by searches, not embedded)
        assert item.value == {
            "content": "I prefer window seats",
            "context": "Remember that I prefer window seats",
        }
        assert store.list_namespaces() == [("memories", "ana")]

        graph.invoke({"messages": [HumanMessage("Which seat should I book?")]}, ana2)
        second = graph.get_state(ana2).values["messages"]
        assert "window" not in str(second[0].content)  # the thread starts fresh: nothing from t1
        assert second[1].tool_calls[0]["name"] == "search_memory"
        assert second[-1].content == "From what you told me before: I prefer window seats"
        # thread 1's state is unchanged by thread 2
        assert len(graph.get_state(ana1).values["messages"]) == 4
        # the same user in a later turn of thread 1 keeps that thread's history
        graph.invoke({"messages": [HumanMessage("And the seat?")]}, ana1)
        assert len(graph.get_state(ana1).values["messages"]) == 8
