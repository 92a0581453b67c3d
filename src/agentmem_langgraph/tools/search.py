"""``SearchMemoryTool``: search memories in a LangGraph ``BaseStore`` (LangMem's ``search_memory``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.store.base import BaseStore, SearchItem
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentmem_core.errors import ConfigurationError
from agentmem_langgraph.tools._common import (
    InjectedRuntime,
    MemoryToolError,
    NamespaceTemplate,
    items_to_json,
    resolve_store,
)

__all__ = ["MAX_SEARCH_LIMIT", "SearchMemoryInput", "SearchMemoryTool"]

MAX_SEARCH_LIMIT = 100
"""The most results one call of the search tool may ask for."""


class SearchMemoryInput(BaseModel):
    """The search tool's arguments (``runtime`` is injected by LangGraph and hidden from the model)."""

    query: str = Field(description="What to look for in your memories.")
    limit: int = Field(default=10, ge=1, le=MAX_SEARCH_LIMIT, description="How many memories to return.")
    offset: int = Field(default=0, ge=0, le=10_000, description="How many of the best matches to skip.")
    filter: dict[str, Any] | None = Field(
        default=None, description="Exact matches on fields of the stored value, e.g. {'category': 'food'}."
    )
    runtime: InjectedRuntime = Field(default=None, exclude=True)


class SearchMemoryTool(BaseTool):
    """Search memories in a LangGraph ``BaseStore`` under ``namespace`` (and the namespaces below it).

    The store is ``store`` if given, else the graph's (``ToolRuntime.store`` under ``ToolNode``, or
    ``get_store()`` in a node). The result is a JSON list of ``{namespace, key, value, created_at,
    updated_at, score}`` (the key is the MEMORY ID the manage tool takes); with
    ``response_format="content_and_artifact"`` the ``SearchItem`` list is the artifact.

    Attributes:
        namespace: the namespace template, e.g. ``("memories", "{langgraph_user_id}")``.
        store: a store to use instead of the graph's.
        instructions: when the model should call the tool (part of the description).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "search_memory"
    description: str = ""
    namespace: tuple[str, ...]
    store: BaseStore | None = Field(default=None, exclude=True)
    instructions: str = ""
    args_schema: Any = SearchMemoryInput
    response_format: Literal["content", "content_and_artifact"] = "content"
    handle_tool_error: Any = True

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "namespace" not in data:
            raise ConfigurationError(
                "SearchMemoryTool needs namespace=, e.g. ('memories', '{langgraph_user_id}')"
            )
        data["namespace"] = NamespaceTemplate.parse(data["namespace"]).template
        if not data.get("description"):
            data["description"] = (
                "Search your long-term memories for information relevant to your current context. "
                + data.get("instructions", "")
            ).strip()
        return data

    @property
    def template(self) -> NamespaceTemplate:
        """The namespace template."""
        return NamespaceTemplate(self.namespace)

    def _run(
        self,
        query: str,
        limit: int = 10,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        runtime: InjectedRuntime = None,
        *,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> str | tuple[str, list[SearchItem]]:
        namespace = self.template.fill(config)
        store = resolve_store(self.store, runtime)
        try:
            items = store.search(namespace, query=query, filter=filter, limit=limit, offset=offset)
        except ValueError as exc:  # a filter the store refuses: the model can correct it
            raise MemoryToolError(f"search failed: {exc}") from exc
        return self._output(items)

    async def _arun(
        self,
        query: str,
        limit: int = 10,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        runtime: InjectedRuntime = None,
        *,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> str | tuple[str, list[SearchItem]]:
        namespace = self.template.fill(config)
        store = resolve_store(self.store, runtime)
        try:
            items = await store.asearch(namespace, query=query, filter=filter, limit=limit, offset=offset)
        except ValueError as exc:  # a filter the store refuses: the model can correct it
            raise MemoryToolError(f"search failed: {exc}") from exc
        return self._output(items)

    def _output(self, items: list[SearchItem]) -> str | tuple[str, list[SearchItem]]:
        text = items_to_json(items)
        return (text, items) if self.response_format == "content_and_artifact" else text
