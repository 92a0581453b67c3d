"""Memory tools for agents over a LangGraph ``BaseStore`` (``ValkeyMemoryStore``, ``InMemoryStore``, ...).

The same two tools as LangMem's ``create_manage_memory_tool`` / ``create_search_memory_tool``, with the
same arguments and stored shape (``{"content": ...}`` under a UUID key), so memories written by either
are read by both::

    from agentmem_langgraph import create_manage_memory_tool, create_search_memory_tool

    tools = [
        create_manage_memory_tool(namespace=("memories", "{langgraph_user_id}")),
        create_search_memory_tool(namespace=("memories", "{langgraph_user_id}")),
    ]
    graph = builder.compile(checkpointer=saver, store=store)   # a ToolNode(tools) inside
    graph.invoke(inputs, {"configurable": {"thread_id": "t1", "langgraph_user_id": "ana"}})

The namespace's ``{name}`` labels come from the run config's ``configurable`` (a missing value is an
error, never a wider namespace); the model chooses only the content, the action, the MEMORY ID within
that namespace and the search arguments. The store is the tool's ``store=``, else the graph's:
``ToolRuntime.store`` when a ``ToolNode`` runs the tool, ``get_store()`` when a node calls it. Both
tools are sync and async (``invoke`` / ``ainvoke``). Mistakes the model can fix (an update without an
id, an unknown id, a bad filter) come back to it as the tool's error message
(:class:`MemoryToolError`); missing configuration raises
:class:`~agentmem_core.errors.ConfigurationError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langgraph.store.base import BaseStore

from agentmem_langgraph.tools._common import MemoryToolError, NamespaceTemplate
from agentmem_langgraph.tools.manage import DEFAULT_MANAGE_INSTRUCTIONS, Action, ManageMemoryTool
from agentmem_langgraph.tools.search import SearchMemoryInput, SearchMemoryTool

__all__ = [
    "Action",
    "ManageMemoryTool",
    "MemoryToolError",
    "NamespaceTemplate",
    "SearchMemoryInput",
    "SearchMemoryTool",
    "create_manage_memory_tool",
    "create_search_memory_tool",
]


def create_manage_memory_tool(
    namespace: tuple[str, ...] | str,
    *,
    instructions: str = DEFAULT_MANAGE_INSTRUCTIONS,
    schema: Any = str,
    actions_permitted: Sequence[Action] | None = ("create", "update", "delete"),
    store: BaseStore | None = None,
    name: str = "manage_memory",
    record_context: bool = True,
) -> ManageMemoryTool:
    """A tool that creates, updates and deletes memories (LangMem's ``create_manage_memory_tool``).

    Args:
        namespace: the namespace template, e.g. ``("memories", "{langgraph_user_id}")``.
        instructions: when the model should call the tool (appended to the description).
        schema: the type of a memory's content (``str``, or a pydantic model stored as its JSON).
        actions_permitted: the actions the model may take (not empty).
        store: a store to use instead of the graph's (for use outside LangGraph).
        name: the tool name.
        record_context: inside a graph, store the latest human message at ``value["context"]`` with
            each created or updated memory (``ValkeyMemoryStore`` matches its words in searches).

    Raises:
        ConfigurationError: an invalid namespace template or set of actions.
    """
    return ManageMemoryTool(
        namespace=NamespaceTemplate.parse(namespace).template,
        instructions=instructions,
        content_schema=schema,
        actions_permitted=tuple(actions_permitted or ()),
        store=store,
        name=name,
        record_context=record_context,
    )


def create_search_memory_tool(
    namespace: tuple[str, ...] | str,
    *,
    instructions: str = "",
    store: BaseStore | None = None,
    response_format: Literal["content", "content_and_artifact"] = "content",
    name: str = "search_memory",
) -> SearchMemoryTool:
    """A tool that searches memories (LangMem's ``create_search_memory_tool``).

    Args:
        namespace: the namespace template (searched with everything below it).
        instructions: when the model should call the tool (appended to the description).
        store: a store to use instead of the graph's (for use outside LangGraph).
        response_format: ``"content"`` (JSON text) or ``"content_and_artifact"`` (also the items).
        name: the tool name.

    Raises:
        ConfigurationError: an invalid namespace template.
    """
    return SearchMemoryTool(
        namespace=NamespaceTemplate.parse(namespace).template,
        instructions=instructions,
        store=store,
        response_format=response_format,
        name=name,
    )
