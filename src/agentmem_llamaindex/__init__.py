"""agentmem for LlamaIndex: a chat store and a scored memory block for ``llama_index.core.memory.Memory``.

``ValkeyChatStore`` is an ``AsyncDBChatStore`` (the short-term FIFO queue of ``Memory``, with ACTIVE /
ARCHIVED status) and ``ValkeyMemoryBlock`` a ``BaseMemoryBlock[str]`` (long-term memory recalled by the
core's composite score), both on agentmem_core, so a LlamaIndex app's whole memory lives in Valkey::

    from llama_index.core.memory import Memory
    from agentmem_llamaindex import ValkeyChatStore, ValkeyMemoryBlock

    chat_store = ValkeyChatStore.from_url("valkey://localhost:6379", name="chat")
    block = ValkeyMemoryBlock.from_url("valkey://localhost:6379", name="memories",
                                       embed_model=embed_model, user_id="ana")
    await chat_store.asetup()
    await block.asetup()
    memory = Memory.from_defaults(session_id="ana-1", token_limit=4000,
                                  memory_blocks=[block], chat_store=chat_store)

Use it with ``SimpleChatEngine``, ``CondensePlusContextChatEngine``, ``FunctionAgent`` / ``AgentWorkflow``
(``memory=``). ``llamaindex_embedder`` wraps a LlamaIndex ``BaseEmbedding`` into a core embedder.
"""

from __future__ import annotations

from agentmem_llamaindex._block_plan import BLOCK_NAMESPACE
from agentmem_llamaindex._chat_plan import CHAT_NAMESPACE
from agentmem_llamaindex.chat_store import DEFAULT_MAX_MESSAGE_CHARS, ValkeyChatStore
from agentmem_llamaindex.embeddings import llamaindex_embedder
from agentmem_llamaindex.memory_block import ValkeyMemoryBlock

__all__ = [
    "BLOCK_NAMESPACE",
    "CHAT_NAMESPACE",
    "DEFAULT_MAX_MESSAGE_CHARS",
    "ValkeyChatStore",
    "ValkeyMemoryBlock",
    "llamaindex_embedder",
]
