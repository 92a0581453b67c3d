"""End to end with LlamaIndex: Memory (queue + block), chat engines and a FunctionAgent, all offline.

The LLMs are LlamaIndex's ``MockLLM`` and a scripted function-calling LLM below; embeddings are the
deterministic ``HashEmbedding`` (conftest). Every store lives on the session's Valkey.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from conftest import HashEmbedding
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.memory import Memory
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.tools import FunctionTool

from agentmem_llamaindex import ValkeyChatStore, ValkeyMemoryBlock

pytestmark = pytest.mark.integration

PREFERENCES = "I always want a window seat and a vegetarian meal when I fly."


@pytest.fixture
async def stores(
    valkey_url: str, unique_name: str
) -> AsyncIterator[tuple[ValkeyChatStore, ValkeyMemoryBlock]]:
    chat = ValkeyChatStore.from_url(valkey_url, name=f"{unique_name}c")
    block = ValkeyMemoryBlock.from_url(
        valkey_url, name=f"{unique_name}m", embed_model=HashEmbedding(), user_id="ana"
    )
    await chat.asetup()
    await block.asetup()
    yield chat, block
    await chat.aclose()
    await block.aclose()


def small_memory(session: str, chat: ValkeyChatStore, block: ValkeyMemoryBlock, **kwargs: Any) -> Memory:
    """A queue of ~30 tokens, flushed 20 tokens at a time: a few turns push the oldest into the block."""
    options: dict[str, Any] = {
        "token_limit": 60,
        "chat_history_token_ratio": 0.5,
        "token_flush_size": 20,
        **kwargs,
    }
    return Memory.from_defaults(session_id=session, memory_blocks=[block], chat_store=chat, **options)


async def session_a(memory: Memory) -> None:
    await memory.aput(ChatMessage(role="user", content=PREFERENCES))
    await memory.aput(ChatMessage(role="assistant", content="Noted: window seat, vegetarian meal."))
    for i in range(3):
        await memory.aput(
            ChatMessage(role="user", content=f"Unrelated question {i} about the weather today.")
        )
        await memory.aput(ChatMessage(role="assistant", content=f"Unrelated answer {i}."))


async def test_session_b_of_the_same_user_gets_session_a_preferences(
    stores: tuple[ValkeyChatStore, ValkeyMemoryBlock],
) -> None:
    chat, block = stores
    await session_a(small_memory("ana-A", chat, block))
    # the queue flushed: the oldest turns are archived in the chat store and stored in the block
    archived = await chat.get_messages("ana-A", status=MessageStatus.ARCHIVED)
    assert archived[0].content == PREFERENCES
    assert await chat.count_messages("ana-A") >= 1
    memory_b = Memory.from_defaults(
        session_id="ana-B", token_limit=4000, memory_blocks=[block], chat_store=chat
    )
    await memory_b.aput(ChatMessage(role="user", content="Please book my flight seat and meal."))
    context = await memory_b.aget()
    assert context[0].role == "system" and PREFERENCES in (context[0].content or "")
    assert context[0].content is not None and context[0].content.startswith("<memory>")
    assert [m.content for m in context[1:]] == ["Please book my flight seat and meal."]
    # another user's new session gets nothing from ana
    bob_block = ValkeyMemoryBlock(block.core, embed_model=HashEmbedding(), user_id="bob")
    memory_bob = Memory.from_defaults(
        session_id="bob-1", token_limit=4000, memory_blocks=[bob_block], chat_store=chat
    )
    await memory_bob.aput(ChatMessage(role="user", content="Please book my flight seat and meal."))
    assert all(PREFERENCES not in (m.content or "") for m in await memory_bob.aget())


async def test_history_and_memories_survive_new_clients(
    valkey_url: str, unique_name: str, stores: tuple[ValkeyChatStore, ValkeyMemoryBlock]
) -> None:
    chat, block = stores
    await session_a(small_memory("ana-A", chat, block))
    before = await chat.get_messages("ana-A", status=None)
    # a "restarted process": new clients on the same server and store names
    chat2 = ValkeyChatStore.from_url(valkey_url, name=f"{unique_name}c")
    block2 = ValkeyMemoryBlock.from_url(
        valkey_url, name=f"{unique_name}m", embed_model=HashEmbedding(), user_id="ana"
    )
    await chat2.asetup()
    await block2.asetup()
    try:
        assert [m.model_dump() for m in await chat2.get_messages("ana-A", status=None)] == [
            m.model_dump() for m in before
        ]
        resumed = small_memory("ana-A", chat2, block2)
        assert [m.content for m in await resumed.aget_all()] == [m.content for m in before]
        fresh = Memory.from_defaults(
            session_id="ana-C", token_limit=4000, memory_blocks=[block2], chat_store=chat2
        )
        context = await fresh.aget(input="window seat please")
        assert PREFERENCES in (context[0].content or "")
    finally:
        await chat2.aclose()
        await block2.aclose()


async def test_priority_decides_what_memory_truncates(
    stores: tuple[ValkeyChatStore, ValkeyMemoryBlock],
) -> None:
    chat, block = stores
    await session_a(small_memory("ana-A", chat, block))
    history = [ChatMessage(role="user", content="word " * 40)]
    for priority, survives in ((0, True), (1, False)):
        shaped = ValkeyMemoryBlock(block.core, embed_model=HashEmbedding(), user_id="ana", priority=priority)
        memory = Memory.from_defaults(
            session_id=f"ana-P{priority}", token_limit=60, memory_blocks=[shaped], chat_store=chat
        )
        await memory.aset(history)
        context = await memory.aget(input="window seat vegetarian meal")
        assert any(PREFERENCES in (m.content or "") for m in context) is survives


async def test_simple_chat_engine_with_mock_llm(stores: tuple[ValkeyChatStore, ValkeyMemoryBlock]) -> None:
    chat, block = stores
    await session_a(small_memory("ana-A", chat, block))
    memory = Memory.from_defaults(
        session_id="ana-E", token_limit=4000, memory_blocks=[block], chat_store=chat
    )
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4), memory=memory)
    response = await engine.achat("Which seat do I like?")
    assert str(response) == "text text text text"
    assert [m.content for m in await chat.get_messages("ana-E")] == [
        "Which seat do I like?",
        "text text text text",
    ]
    second = await engine.achat("And which meal?")
    assert str(second) == "text text text text"
    assert await chat.count_messages("ana-E") == 4


class _GateRetriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text="Flights leave from gate 7."), score=1.0)]


async def test_condense_plus_context_chat_engine(stores: tuple[ValkeyChatStore, ValkeyMemoryBlock]) -> None:
    chat, block = stores
    memory = Memory.from_defaults(
        session_id="ana-CPC", token_limit=4000, memory_blocks=[block], chat_store=chat
    )
    engine = CondensePlusContextChatEngine.from_defaults(
        retriever=_GateRetriever(), llm=MockLLM(max_tokens=3), memory=memory
    )
    await engine.achat("Hello there")
    await engine.achat("Where do flights leave?")
    assert [m.role.value for m in await chat.get_messages("ana-CPC")] == ["user", "assistant"] * 2


class ScriptedToolLLM(FunctionCallingLLM):
    """A function-calling LLM: first asks for the ``lookup`` tool, then answers with what its input held."""

    _seen: list[list[ChatMessage]] = PrivateAttr(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, is_function_calling_model=True, model_name="scripted")

    @property
    def seen(self) -> list[list[ChatMessage]]:
        return self._seen

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return {"messages": list(chat_history or [])}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls", [])
        return [ToolSelection(tool_id=c["id"], tool_name=c["name"], tool_kwargs=c["args"]) for c in calls]

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self._seen.append(list(messages))
        if messages[-1].role.value != "tool":
            call = {"id": "call-1", "name": "lookup", "args": {"topic": "seat"}}
            return ChatResponse(
                message=ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [call]})
            )
        knows = any("window seat" in (m.content or "") for m in messages if m.role.value == "system")
        return ChatResponse(
            message=ChatMessage(role="assistant", content=f"window={knows}; {messages[-1].content}")
        )

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        response = await self.achat(messages, **kwargs)

        async def gen() -> ChatResponseAsyncGen:
            yield response

        return gen()

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        raise NotImplementedError

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        raise NotImplementedError

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        raise NotImplementedError

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        raise NotImplementedError


def lookup(topic: str) -> str:
    """Look something up about a topic."""
    return f"looked up {topic}"


async def test_function_agent_uses_memory(stores: tuple[ValkeyChatStore, ValkeyMemoryBlock]) -> None:
    chat, block = stores
    await session_a(small_memory("ana-A", chat, block))
    llm = ScriptedToolLLM()
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(lookup)], llm=llm, streaming=False)
    memory = Memory.from_defaults(
        session_id="ana-agent", token_limit=4000, memory_blocks=[block], chat_store=chat
    )
    result = await agent.run(user_msg="Book a seat for my flight", memory=memory)
    assert str(result) == "window=True; looked up seat"
    stored = await chat.get_messages("ana-agent")
    assert [m.role.value for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[1].additional_kwargs["tool_calls"][0]["name"] == "lookup"  # tool calls round-trip
    assert stored[2].content == "looked up seat"
    # the second run starts from the stored history
    again = await agent.run(user_msg="And the meal?", memory=memory)
    assert str(again) == "window=True; looked up seat"
    assert await chat.count_messages("ana-agent") == 8
    assert any(m.content == "Book a seat for my flight" for m in llm.seen[-1])


SYNC_SCRIPT = """
import sys
from llama_index.core.async_utils import asyncio_run
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import Memory
from agentmem_core.embeddings import HashingEmbedder
from agentmem_llamaindex import ValkeyChatStore, ValkeyMemoryBlock

url, name = sys.argv[1], sys.argv[2]
chat = ValkeyChatStore.from_url(url, name=name + "c")
block = ValkeyMemoryBlock.from_url(url, name=name + "m", embedder=HashingEmbedder(16), user_id="u")
asyncio_run(chat.asetup())
asyncio_run(block.asetup())
memory = Memory.from_defaults(session_id="sync", token_limit=1000, memory_blocks=[block], chat_store=chat,
                              chat_history=[ChatMessage(content="seed")])
engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=2), memory=memory)
engine.chat("hello")
engine.chat("again")
print("|".join(m.content or "" for m in memory.get_all()))
"""


def test_sync_chat_engine_in_a_plain_script(valkey_url: str, unique_name: str) -> None:
    """LlamaIndex's sync wrappers (asyncio_run on one loop) work with the async core underneath."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SYNC_SCRIPT, valkey_url, unique_name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "seed|hello|text text|again|text text"
