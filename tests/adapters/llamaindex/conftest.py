"""Fixtures for the LlamaIndex adapter: chat stores (ours and LlamaIndex's SQLAlchemy reference), embeddings.

Every Valkey store gets its own core store name (``unique_name``) on the session's server, so tests never
flush or share keys. The reference is ``SQLAlchemyChatStore`` on in-memory SQLite (aiosqlite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

from agentmem_core.embeddings import HashingEmbedder
from agentmem_llamaindex import ValkeyChatStore

DIMS = 64


class HashEmbedding(BaseEmbedding):
    """A deterministic LlamaIndex embedding model (the core's HashingEmbedder) that counts its calls."""

    dims: int = DIMS
    _hasher: HashingEmbedder = PrivateAttr()
    _calls: list[tuple[str, int]] = PrivateAttr(default_factory=list)

    def __init__(self, dims: int = DIMS, **kwargs: Any) -> None:
        super().__init__(dims=dims, model_name=f"hash-{dims}", **kwargs)  # type: ignore[call-arg]
        self._hasher = HashingEmbedder(dims)

    @property
    def calls(self) -> list[tuple[str, int]]:
        return self._calls

    def _vectors(self, kind: str, texts: list[str]) -> list[list[float]]:
        self._calls.append((kind, len(texts)))
        return [list(map(float, v)) for v in self._hasher.embed(texts)]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vectors("query", [query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vectors("query", [query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vectors("text", [text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._vectors("texts", texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._vectors("texts", texts)


@pytest.fixture
def embed_model() -> HashEmbedding:
    return HashEmbedding()


@pytest.fixture
def make_valkey_chat(valkey_url: str, unique_name: str) -> Callable[..., ValkeyChatStore]:
    """A factory of chat stores on this test's core store name (each with its own client)."""
    made: list[ValkeyChatStore] = []

    def make(**kwargs: Any) -> ValkeyChatStore:
        store = ValkeyChatStore.from_url(valkey_url, name=kwargs.pop("name", unique_name), **kwargs)
        made.append(store)
        return store

    make.made = made  # type: ignore[attr-defined]
    return make


@pytest.fixture
async def valkey_chat(make_valkey_chat: Callable[..., ValkeyChatStore]) -> AsyncIterator[ValkeyChatStore]:
    store = make_valkey_chat()
    await store.asetup()
    yield store
    for s in make_valkey_chat.made:  # type: ignore[attr-defined]
        await s.aclose()


@pytest.fixture
async def embedded_chat(tmp_path: Path, unique_name: str) -> AsyncIterator[ValkeyChatStore]:
    """The same chat store on the embedded backend (a SQLite file of the core, not SQLAlchemy)."""
    store = ValkeyChatStore.from_url(f"sqlite:///{tmp_path / 'chat.db'}", name=unique_name)
    await store.asetup()
    yield store
    await store.aclose()


@pytest.fixture
async def sql_chat() -> AsyncIterator[SQLAlchemyChatStore]:
    """LlamaIndex's reference store, as its own tests build it (in-memory SQLite through aiosqlite)."""
    store = SQLAlchemyChatStore(table_name="test_messages", async_database_uri="sqlite+aiosqlite:///:memory:")
    yield store
    if store._async_engine is not None:
        await store._async_engine.dispose()


@pytest.fixture(params=["valkey", "embedded", "sqlalchemy"])
def chat_store(request: pytest.FixtureRequest) -> AsyncDBChatStore:
    """Each contract test runs against our store on both core backends and against the reference."""
    names = {"valkey": "valkey_chat", "embedded": "embedded_chat", "sqlalchemy": "sql_chat"}
    store: AsyncDBChatStore = request.getfixturevalue(names[request.param])
    return store


async def message_ids(store: AsyncDBChatStore, key: str) -> list[int]:
    """The ids ``delete_message`` takes, oldest first: our public API, or the reference's table rows."""
    if isinstance(store, ValkeyChatStore):
        return [idx for idx, _ in await store.get_messages_with_ids(key, status=None)]
    assert isinstance(store, SQLAlchemyChatStore)
    session_factory, table = await store._initialize()
    async with session_factory() as session:
        result = await session.execute(
            table.select().where(table.c.key == key).order_by(table.c.timestamp, table.c.id)
        )
        return [row.id for row in result.fetchall()]
