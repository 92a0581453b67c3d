"""Store fixtures for the integration tests: a fresh store name per test, on the session's Valkey."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from _support import Clock, Facade  # tests/integration is on sys.path (rootdir import mode)

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder

DIMS = 64


@pytest.fixture
def store(valkey_url: str, unique_name: str) -> Iterator[MemoryStore]:
    """A set-up sync store (HashingEmbedder(64)) under a name no other test uses; closed after."""
    s = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    s.setup()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
async def astore(valkey_url: str, unique_name: str) -> AsyncIterator[AsyncMemoryStore]:
    """The async twin of ``store``."""
    s = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    await s.setup()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["sync", "async"])
async def mem(request: pytest.FixtureRequest, valkey_url: str, unique_name: str) -> AsyncIterator[Facade]:
    """A set-up sync or async store (HashingEmbedder(64), a settable ``mem.clock``) behind one call style."""
    clock = Clock()
    cls = MemoryStore if request.param == "sync" else AsyncMemoryStore
    store = cls.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64), clock=clock)
    facade = Facade(store)
    facade.clock = clock  # type: ignore[attr-defined]
    await facade.setup()
    yield facade
    await facade.close()
