"""LangGraph agent demo: a tool-calling agent remembers a user's preference in one thread, uses it in another.

The graph is compiled with agentmem's two LangGraph pieces::

    graph = builder.compile(checkpointer=ValkeySaver(...), store=ValkeyMemoryStore(...))

The checkpointer keeps each thread's messages (short-term state); the store keeps what the agent chose
to remember (long-term memory), which the memory tools write and search under the namespace
``("memories", "{langgraph_user_id}")`` filled from the run config. A new thread has none of the old
thread's messages, yet the agent finds the preference again through ``search_memory``.

The chat model is an offline stand-in (:class:`ScriptedChatModel`) that emits tool calls
deterministically, and the store embeds with agentmem's keyless hashing embedder, so the demo needs no
API key and no network. Run it with ``python examples/langgraph_agent.py``: it starts a throwaway local
Valkey with the search module unless ``AGENTMEM_URL`` points at one. ``AGENTMEM_ASYNC=1`` runs the
same agent on the async saver and store (``graph.ainvoke``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.server import ValkeyServer
from agentmem_langgraph import (
    AsyncValkeyMemoryStore,
    AsyncValkeySaver,
    ValkeyMemoryStore,
    ValkeySaver,
    create_manage_memory_tool,
    create_search_memory_tool,
)

NAMESPACE = ("memories", "{langgraph_user_id}")
DIMS = 64
_EMBEDDER = HashingEmbedder(DIMS)


def embed(texts: list[str]) -> list[list[float]]:
    """The store's embedding function: agentmem's deterministic hashing embedder (offline)."""
    return [[float(x) for x in row] for row in _EMBEDDER.embed(texts)]


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["content"]}


class ScriptedChatModel(BaseChatModel):
    """An offline stand-in for a tool-calling chat model, with a fixed policy.

    * a user message "remember that ..." -> call ``manage_memory`` with that text;
    * any other user message -> call ``search_memory`` with it;
    * after ``manage_memory`` -> confirm; after ``search_memory`` -> answer from what was found.
    """

    @property
    def _llm_type(self) -> str:
        return "scripted-demo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        # The policy knows its two tools by name; binding only checks they are there.
        names = {t.name for t in tools if isinstance(t, BaseTool)}
        missing = {"manage_memory", "search_memory"} - names
        if missing:
            raise ValueError(f"ScriptedChatModel needs the tools {sorted(missing)}")
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages))])

    def _respond(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            if last.status == "error":
                return AIMessage(content=f"Sorry, my memory tool failed: {last.content}")
            if last.name == "manage_memory":
                return AIMessage(content="Got it, I'll remember that.")
            found = [item["value"]["content"] for item in json.loads(str(last.content))]
            if not found:
                return AIMessage(content="I don't know your preferences yet.")
            return AIMessage(content="From what you told me before: " + "; ".join(found))
        text = str(last.content)
        match = re.match(r"(?i)\s*remember that\s+(.+)", text)
        call_id = "call-" + uuid.uuid5(uuid.NAMESPACE_URL, f"{len(messages)}:{text}").hex[:12]
        if match:
            call = {"name": "manage_memory", "args": {"content": match.group(1)}, "id": call_id}
        else:
            call = {"name": "search_memory", "args": {"query": text, "limit": 3}, "id": call_id}
        return AIMessage(content="", tool_calls=[{**call, "type": "tool_call"}])


def build_agent(model: BaseChatModel, tools: Sequence[BaseTool]) -> StateGraph[Any]:
    """The agent loop: the model, then its tool calls (``ToolNode``), until it answers."""
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


def memory_tools() -> list[BaseTool]:
    """The memory tools; their store is the graph's (``ToolRuntime.store``)."""
    return [create_manage_memory_tool(NAMESPACE), create_search_memory_tool(NAMESPACE)]


@dataclass(frozen=True)
class Turn:
    """One exchange of the demo: who asked what in which thread, and the agent's answer."""

    user: str
    thread: str
    said: str
    answer: str


SCRIPT = (
    ("ana", "thread-1", "Remember that I prefer window seats on flights"),
    ("ana", "thread-2", "Book me a flight to Porto"),
    ("bob", "thread-3", "Book me a flight to Porto"),
)
"""Ana states a preference in thread 1 and books in thread 2; Bob (another user) books in thread 3."""


def _config(user: str, thread: str, run: str) -> RunnableConfig:
    return {"configurable": {"thread_id": f"{run}-{thread}", "langgraph_user_id": f"{run}-{user}"}}


def run(
    url: str, *, name: str = "langgraph_agent_demo", prefix: str | None = None, keep: bool = False
) -> list[Turn]:
    """Run the script on the sync saver and store (``graph.invoke``); ``keep=False`` deletes its data."""
    run_id = uuid.uuid4().hex[:8]
    turns = []
    with (
        ValkeySaver.from_url(url, prefix=prefix or f"demo{run_id}") as saver,
        ValkeyMemoryStore.from_url(url, name=name, index=INDEX) as store,
    ):
        store.setup()
        graph = build_agent(ScriptedChatModel(), memory_tools()).compile(checkpointer=saver, store=store)
        for user, thread, said in SCRIPT:
            state = graph.invoke({"messages": [HumanMessage(said)]}, _config(user, thread, run_id))
            turns.append(Turn(user, thread, said, str(state["messages"][-1].content)))
        if not keep:
            for user, thread, _ in SCRIPT:
                config = _config(user, thread, run_id)["configurable"]
                saver.delete_thread(config["thread_id"])
                for item in store.search(("memories", config["langgraph_user_id"]), limit=100):
                    store.delete(item.namespace, item.key)
    return turns


async def arun(
    url: str, *, name: str = "langgraph_agent_demo", prefix: str | None = None, keep: bool = False
) -> list[Turn]:
    """Run the script on the async saver and store (``graph.ainvoke``); ``keep=False`` deletes its data."""
    run_id = uuid.uuid4().hex[:8]
    turns = []
    async with (
        AsyncValkeySaver.from_url(url, prefix=prefix or f"demo{run_id}") as saver,
        AsyncValkeyMemoryStore.from_url(url, name=name, index=INDEX) as store,
    ):
        await store.setup()
        graph = build_agent(ScriptedChatModel(), memory_tools()).compile(checkpointer=saver, store=store)
        for user, thread, said in SCRIPT:
            state = await graph.ainvoke({"messages": [HumanMessage(said)]}, _config(user, thread, run_id))
            turns.append(Turn(user, thread, said, str(state["messages"][-1].content)))
        if not keep:
            for user, thread, _ in SCRIPT:
                config = _config(user, thread, run_id)["configurable"]
                await saver.adelete_thread(config["thread_id"])
                for item in await store.asearch(("memories", config["langgraph_user_id"]), limit=100):
                    await store.adelete(item.namespace, item.key)
    return turns


def main() -> None:
    server = None
    url = os.environ.get("AGENTMEM_URL")
    if not url:
        server = ValkeyServer(search=True).start()
        url = server.url
        print(f"started a local Valkey with the search module at {url}")
    try:
        turns = asyncio.run(arun(url)) if os.environ.get("AGENTMEM_ASYNC") == "1" else run(url)
        for turn in turns:
            where = f"[{turn.user} / {turn.thread}]"
            print(f"\n{where} user:  {turn.said}\n{where} agent: {turn.answer}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
