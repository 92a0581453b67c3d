"""agentmem for LangGraph: the Valkey checkpointer (short-term thread state) and store (long-term memory).

``ValkeySaver`` / ``AsyncValkeySaver`` implement LangGraph's ``BaseCheckpointSaver`` on a plain Valkey
server or cluster::

    from agentmem_langgraph import ValkeySaver

    with ValkeySaver.from_url("valkey://localhost:6379") as saver:
        graph = builder.compile(checkpointer=saver)

``ValkeyMemoryStore`` / ``AsyncValkeyMemoryStore`` implement LangGraph's ``BaseStore`` on agentmem_core
(Valkey with a search module)::

    from agentmem_langgraph import ValkeyMemoryStore

    with ValkeyMemoryStore.from_url("valkey://localhost:6379", name="agent") as store:
        store.setup()
        graph = builder.compile(store=store)

``ValkeyMemoryRetriever`` is a LangChain ``BaseRetriever`` over the core's recall, and
``create_manage_memory_tool`` / ``create_search_memory_tool`` are LangMem-style memory tools over any
LangGraph ``BaseStore`` (namespaces filled from the run config, e.g. ``("memories", "{langgraph_user_id}")``).
"""

from __future__ import annotations

from agentmem_langgraph.checkpoint import (
    AsyncValkeySaver,
    CheckpointError,
    CheckpointTTL,
    CorruptCheckpointError,
    InvalidCheckpointConfigError,
    ThreadNotEmptyError,
    ValkeySaver,
)
from agentmem_langgraph.retriever import ValkeyMemoryRetriever
from agentmem_langgraph.store import AsyncValkeyMemoryStore, ValkeyMemoryStore
from agentmem_langgraph.tools import (
    ManageMemoryTool,
    MemoryToolError,
    NamespaceTemplate,
    SearchMemoryTool,
    create_manage_memory_tool,
    create_search_memory_tool,
)

__all__ = [
    "AsyncValkeyMemoryStore",
    "AsyncValkeySaver",
    "CheckpointError",
    "CheckpointTTL",
    "CorruptCheckpointError",
    "InvalidCheckpointConfigError",
    "ManageMemoryTool",
    "MemoryToolError",
    "NamespaceTemplate",
    "SearchMemoryTool",
    "ThreadNotEmptyError",
    "ValkeyMemoryRetriever",
    "ValkeyMemoryStore",
    "ValkeySaver",
    "create_manage_memory_tool",
    "create_search_memory_tool",
]
