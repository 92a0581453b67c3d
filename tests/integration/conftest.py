"""Store fixtures for the integration tests: a fresh store name per test, on the session's Valkey."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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


# Backends the store-level tests run on: the contract is the same on every one (the conformance run).
BACKENDS = [b for b in os.environ.get("AGENTMEM_TEST_BACKENDS", "valkey,sqlite").split(",") if b]
MEM_PARAMS = [
    p
    for p in ("sync", "async", "sqlite-sync", "sqlite-async")
    if ("sqlite" if "sqlite" in p else "valkey") in BACKENDS
]


@pytest.fixture(params=MEM_PARAMS)
async def mem(
    request: pytest.FixtureRequest, valkey_url: str, unique_name: str, tmp_path: Path
) -> AsyncIterator[Facade]:
    """A set-up sync or async store (HashingEmbedder(64), a settable ``mem.clock``) behind one call style,
    on Valkey (``sync`` / ``async``) and on the embedded backend (``sqlite-*``)."""
    clock = Clock()
    cls = (
        MemoryStore
        if request.param.endswith("sync") and not request.param.endswith("async")
        else AsyncMemoryStore
    )
    backend = "sqlite" if request.param.startswith("sqlite") else "valkey"

    def url_for(name: str) -> str:
        return f"sqlite:///{tmp_path / (name + '.db')}" if backend == "sqlite" else valkey_url

    store = cls.from_url(url_for(unique_name), name=unique_name, embedder=HashingEmbedder(64), clock=clock)
    facade = Facade(store, backend, url_for)
    facade.clock = clock  # type: ignore[attr-defined]
    await facade.setup()
    yield facade
    await facade.close()
