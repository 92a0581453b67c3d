"""A real LangGraph graph on the saver: 20 turns on several threads, interrupt/resume, time travel,
state history, Send fan-out with pending writes, and deletion that leaves no key behind.

Each scenario runs against LangGraph's ``InMemorySaver`` too and must produce the same states.
It runs for the sync saver (``invoke``) and the async saver (``ainvoke``), on one server and on the
3-node cluster.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt

from agentmem_langgraph import AsyncValkeySaver, ValkeySaver
from agentmem_langgraph.checkpoint._keys import escape

TURNS = 20
THREADS = 3


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def respond(state: ChatState) -> dict[str, Any]:
    last = state["messages"][-1]
    n = len(state["messages"])
    return {"messages": [AIMessage(content=f"echo({n}): {last.content}", id=f"ai-{last.id}")]}


def count(state: ChatState) -> dict[str, Any]:
    return {"turns": state.get("turns", 0) + 1}


def chat_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("respond", respond)
    builder.add_node("count", count)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "count")
    builder.add_edge("count", END)
    return builder.compile(checkpointer=saver)


class ApprovalState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def draft(state: ApprovalState) -> dict[str, Any]:
    return {"messages": [AIMessage(content="draft ready", id="ai-draft")]}


def approve(state: ApprovalState) -> dict[str, Any]:
    answer = interrupt({"question": "send it?", "draft": state["messages"][-1].content})
    return {"messages": [AIMessage(content=f"approved: {answer}", id="ai-approved")]}


def approval_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(ApprovalState)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=saver)


class FanState(TypedDict):
    items: list[int]
    results: Annotated[list[str], operator.add]


def fan_graph(saver: BaseCheckpointSaver[Any], calls: list[int]) -> Any:
    def plan(state: FanState) -> dict[str, Any]:
        return {}

    def worker(arg: dict[str, int]) -> dict[str, Any]:
        i = arg["i"]
        calls.append(i)
        if i == 3:
            ok = interrupt(f"item {i}?")
            return {"results": [f"{i}:{ok}"]}
        return {"results": [f"{i}:done"]}

    def fan_out(state: FanState) -> list[Send]:
        return [Send("worker", {"i": i}) for i in state["items"]]

    builder = StateGraph(FanState)
    builder.add_node("plan", plan)
    builder.add_node("worker", worker)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["worker"])
    builder.add_edge("worker", END)
    return builder.compile(checkpointer=saver)


class Runner:
    """Drives a compiled graph with the sync or the async API, so one scenario serves both savers."""

    def __init__(self, graph: Any, use_async: bool) -> None:
        self.graph = graph
        self.use_async = use_async

    async def invoke(self, value: Any, config: dict[str, Any]) -> Any:
        if self.use_async:
            return await self.graph.ainvoke(value, config)
        return self.graph.invoke(value, config)

    async def state(self, config: dict[str, Any]) -> Any:
        if self.use_async:
            return await self.graph.aget_state(config)
        return self.graph.get_state(config)

    async def history(self, config: dict[str, Any]) -> list[Any]:
        if self.use_async:
            return [s async for s in self.graph.aget_state_history(config)]
        return list(self.graph.get_state_history(config))


KINDS = ["sync", "async", "sync-cluster", "async-cluster"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(request: pytest.FixtureRequest, kind: str) -> Any:
    name = {
        "sync": "sync_client",
        "async": "async_client",
        "sync-cluster": "cluster_client",
        "async-cluster": "async_cluster_client",
    }[kind]
    return request.getfixturevalue(name)


@pytest.fixture
def valkey_saver(kind: str, client: Any, prefix: str) -> BaseCheckpointSaver[Any]:
    if kind.startswith("async"):
        return AsyncValkeySaver(client, prefix=prefix)
    return ValkeySaver(client, prefix=prefix)


def snapshot_view(history: Sequence[Any]) -> list[tuple[Any, ...]]:
    """What must match the reference saver: step, source, values, next nodes, parent linkage."""
    ids = {s.config["configurable"]["checkpoint_id"] for s in history}
    return [
        (
            s.metadata["step"],
            s.metadata["source"],
            s.values,
            s.next,
            s.parent_config is None or s.parent_config["configurable"]["checkpoint_id"] in ids,
            [(t.name, [i.value for i in t.interrupts]) for t in s.tasks],  # interrupt ids embed uuids
        )
        for s in history
    ]


async def run_chat(runner: Runner, thread: str, turns: int) -> list[Any]:
    config = {"configurable": {"thread_id": thread}}
    outputs = []
    for n in range(turns):
        msg = HumanMessage(content=f"{thread} says {n} " + "x" * 180, id=f"h-{thread}-{n}")
        outputs.append(await runner.invoke({"messages": [msg]}, config))
    return outputs


async def test_twenty_turns_history_time_travel_and_delete(
    kind: str,
    client: Any,
    valkey_saver: BaseCheckpointSaver[Any],
    prefix: str,
    keys_under: Callable[[Any, str], Awaitable[list[bytes]]],
) -> None:
    use_async = kind.startswith("async")
    ours = Runner(chat_graph(valkey_saver), use_async)
    ref = Runner(chat_graph(InMemorySaver()), use_async)
    threads = [f"chat-{i}-{{tag}}-{uuid.uuid4().hex[:6]}" for i in range(THREADS)]  # braces on purpose

    for thread in threads:
        got = await run_chat(ours, thread, TURNS)
        expected = await run_chat(ref, thread, TURNS)
        assert got == expected
        state = await ours.state({"configurable": {"thread_id": thread}})
        assert state.values == expected[-1]
        assert len(state.values["messages"]) == 2 * TURNS
        assert state.values["turns"] == TURNS

    # state history: same checkpoints, same values, newest first, as the reference saver
    config = {"configurable": {"thread_id": threads[0]}}
    history = await ours.history(config)
    ref_history = await ref.history(config)
    assert snapshot_view(history) == snapshot_view(ref_history)
    assert len(history) == len(ref_history) > 3 * TURNS
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    assert ids == sorted(ids, reverse=True)

    # time travel: fork from the state after turn 5 (10 messages); the original branch stays readable
    past = next(s for s in history if s.metadata["source"] == "loop" and len(s.values["messages"]) == 10
                and not s.next)  # fmt: skip
    head_before = await ours.state(config)
    fork = HumanMessage(content="fork", id="h-fork")
    forked = await ours.invoke({"messages": [fork]}, past.config)
    assert [m.content for m in forked["messages"][:10]] == [m.content for m in past.values["messages"]]
    assert len(forked["messages"]) == 12
    assert forked["turns"] == 6
    assert (await ours.state(config)).values == forked  # the fork is now the thread head
    old_head = await ours.state(head_before.config)  # the old branch, by checkpoint id
    assert old_head.values == head_before.values
    assert len(old_head.values["messages"]) == 2 * TURNS
    again = await ours.state(past.config)
    assert again.values == past.values

    # delete_thread leaves nothing of that thread; other threads intact
    tag = "{" + escape(threads[0]) + "}"
    assert any(tag.encode() in key for key in await keys_under(client, prefix))
    if use_async:
        await valkey_saver.adelete_thread(threads[0])
    else:
        valkey_saver.delete_thread(threads[0])
    assert not any(tag.encode() in key for key in await keys_under(client, prefix))
    assert (await ours.state(config)).values == {}
    assert (await ours.state({"configurable": {"thread_id": threads[1]}})).values["turns"] == TURNS
    for thread in threads[1:]:
        if use_async:
            await valkey_saver.adelete_thread(thread)
        else:
            valkey_saver.delete_thread(thread)
    assert await keys_under(client, prefix) == []


async def test_interrupt_and_resume(kind: str, valkey_saver: BaseCheckpointSaver[Any]) -> None:
    use_async = kind.startswith("async")
    ours = Runner(approval_graph(valkey_saver), use_async)
    ref = Runner(approval_graph(InMemorySaver()), use_async)
    config = {"configurable": {"thread_id": "approval-" + uuid.uuid4().hex[:6]}}
    start = {"messages": [HumanMessage(content="write the mail", id="h-1")]}

    first = await ours.invoke(start, config)
    ref_first = await ref.invoke(start, config)
    assert first["__interrupt__"][0].value == {"question": "send it?", "draft": "draft ready"}
    assert first["__interrupt__"][0].value == ref_first["__interrupt__"][0].value
    paused = await ours.state(config)
    assert paused.next == ("approve",)
    assert paused.tasks[0].interrupts[0].value["question"] == "send it?"

    done = await ours.invoke(Command(resume="yes"), config)
    ref_done = await ref.invoke(Command(resume="yes"), config)
    assert done == ref_done
    assert [m.content for m in done["messages"]] == ["write the mail", "draft ready", "approved: yes"]
    final = await ours.state(config)
    assert final.next == ()
    assert snapshot_view(await ours.history(config)) == snapshot_view(await ref.history(config))


async def test_send_fan_out_keeps_pending_writes(kind: str, valkey_saver: BaseCheckpointSaver[Any]) -> None:
    """Parallel Send tasks: the finished ones are stored as pending writes and not re-run on resume."""
    use_async = kind.startswith("async")
    calls: list[int] = []
    ref_calls: list[int] = []
    ours = Runner(fan_graph(valkey_saver, calls), use_async)
    ref = Runner(fan_graph(InMemorySaver(), ref_calls), use_async)
    config = {"configurable": {"thread_id": "fan-" + uuid.uuid4().hex[:6]}}
    start = {"items": list(range(8)), "results": []}

    paused = await ours.invoke(start, config)
    await ref.invoke(start, config)
    assert paused["__interrupt__"][0].value == "item 3?"
    state = await ours.state(config)
    assert state.next == ("worker",)  # only the interrupted task is pending
    assert sorted(calls) == list(range(8))

    calls.clear()
    ref_calls.clear()
    done = await ours.invoke(Command(resume="ok"), config)
    ref_done = await ref.invoke(Command(resume="ok"), config)
    assert calls == [3] == ref_calls  # the 7 finished workers were not re-run
    assert sorted(done["results"]) == sorted(f"{i}:done" if i != 3 else "3:ok" for i in range(8))
    assert done == ref_done
