"""LangChain's standard tests (``langchain-tests``) for the retriever and the memory tools.

* ``RetrieversIntegrationTests`` for ``ValkeyMemoryRetriever``: over a sync core store (``ainvoke`` in a
  worker thread), and over a sync plus an async store (``ainvoke`` on the async one);
* ``ToolsUnitTests`` and ``ToolsIntegrationTests`` for ``ManageMemoryTool`` and ``SearchMemoryTool``, over
  ``ValkeyMemoryStore`` and LangGraph's ``InMemoryStore``.

The suites take their constructor arguments from properties; the stores come from a per-test autouse
fixture (each test its own store name on the session's Valkey).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_langgraph import ManageMemoryTool, SearchMemoryTool, ValkeyMemoryRetriever, ValkeyMemoryStore

pytestmark = pytest.mark.integration

DIMS = 64
NAMESPACE = ("memories", "standard")


def embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in HashingEmbedder(DIMS).embed(texts)]


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["content"]}


# -- the retriever -----------------------------------------------------------------------------------------
class TestRetrieverOverSyncStore(RetrieversIntegrationTests):
    core: MemoryStore

    @pytest.fixture(autouse=True)
    def _core(self, valkey_url: str, unique_name: str) -> Iterator[None]:
        with MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS)) as store:
            store.setup()
            for i, text in enumerate(["window seat", "aisle seat", "seat upgrade", "vegetarian meal"]):
                store.remember(text, user_id="ana", importance=0.2 * (i + 1))
            store.remember("front row seat", user_id="bob")  # another user: never retrieved
            self.core = store
            yield

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return ValkeyMemoryRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": self.core, "user_id": "ana"}

    @property
    def retriever_query_example(self) -> str:
        return "which seat"


class TestRetrieverOverSyncAndAsyncStores(TestRetrieverOverSyncStore):
    acore: AsyncMemoryStore

    @pytest.fixture(autouse=True)
    async def _acore(self, _core: None, valkey_url: str) -> AsyncIterator[None]:
        name = self.core.config.name
        async with AsyncMemoryStore.from_url(valkey_url, name=name, embedder=HashingEmbedder(DIMS)) as store:
            await store.setup()
            self.acore = store
            yield

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": self.core, "async_store": self.acore, "user_id": "ana"}


# -- the tools ---------------------------------------------------------------------------------------------
class _ValkeyStoreMixin:
    store: BaseStore

    @pytest.fixture(autouse=True)
    def _store(self, valkey_url: str, unique_name: str) -> Iterator[None]:
        with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as store:
            store.setup()
            store.put(NAMESPACE, "m1", {"content": "prefers window seats"})
            self.store = store
            yield


class _InMemoryStoreMixin:
    store: BaseStore

    @pytest.fixture(autouse=True)
    def _store(self) -> None:
        self.store = InMemoryStore(index=INDEX)
        self.store.put(NAMESPACE, "m1", {"content": "prefers window seats"})


class _ManageTool:
    store: BaseStore

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return ManageMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "store": self.store}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"content": "likes green tea", "action": "create"}


class _SearchTool:
    store: BaseStore

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SearchMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "store": self.store, "response_format": "content_and_artifact"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "seat preference", "limit": 3}


class TestManageToolUnit(_InMemoryStoreMixin, _ManageTool, ToolsUnitTests):
    pass


class TestSearchToolUnit(_InMemoryStoreMixin, _SearchTool, ToolsUnitTests):
    pass


class TestManageToolOnValkey(_ValkeyStoreMixin, _ManageTool, ToolsIntegrationTests):
    pass


class TestSearchToolOnValkey(_ValkeyStoreMixin, _SearchTool, ToolsIntegrationTests):
    pass


class TestManageToolOnInMemoryStore(_InMemoryStoreMixin, _ManageTool, ToolsIntegrationTests):
    pass


class TestSearchToolOnInMemoryStore(_InMemoryStoreMixin, _SearchTool, ToolsIntegrationTests):
    pass


def test_the_standard_suites_wrote_through_the_tools(valkey_url: str, unique_name: str) -> None:
    # The integration suites above only check the shape of the output; check the effect once.
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as store:
        store.setup()
        tool = ManageMemoryTool(namespace=NAMESPACE, store=store)
        message = tool.invoke({"name": tool.name, "args": {"content": "x"}, "id": "1", "type": "tool_call"})
        key = str(message.content).removeprefix("created memory ")
        item = store.get(NAMESPACE, key)
        assert item is not None and item.value == {"content": "x"}
