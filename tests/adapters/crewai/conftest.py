"""CrewAI adapter fixtures: storages on the session's Valkey (tests/conftest.py), LanceDB in a temp dir.

Every storage gets its own core store name (``unique_name``), so tests never flush or share data.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # crewai.rag replaces its module object with one that refuses attributes, so importing any of its
    # child modules (crewai's own __init__ does) emits ImportWarning, which pytest's "error" filter
    # would turn into a failure. Scoped to this one import, before anything else imports crewai.
    warnings.simplefilter("ignore", ImportWarning)
    import crewai  # noqa: F401
    import crewai.rag.embeddings.factory  # noqa: F401

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from _crewai_support import DIMS, Driver, embed
from crewai.memory.storage.lancedb_storage import LanceDBStorage

from agentmem_core import AsyncMemoryStore, IndexConfig
from agentmem_crewai import ValkeyStorage
from agentmem_crewai.storage import never_embeds


@pytest.fixture
def embedder() -> Callable[[list[str]], list[list[float]]]:
    return embed


@pytest.fixture
def storage(core_url: str, unique_name: str) -> Iterator[ValkeyStorage]:
    """A sync ValkeyStorage on its own store name (set up lazily by its first call), on every backend."""
    s = ValkeyStorage.from_url(core_url, name=unique_name, dims=DIMS)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def lance(tmp_path: Path) -> LanceDBStorage:
    """CrewAI's reference backend in a temp dir (no background compaction: deterministic)."""
    return LanceDBStorage(path=tmp_path / "lance", compact_every=0)


@pytest.fixture(params=["sync", "async", "thread"])
async def driver(request: pytest.FixtureRequest, core_url: str, unique_name: str) -> AsyncIterator[Driver]:
    """The same storage contract through the sync methods, the async core, and the threaded fallback,
    on every backend."""
    acore = None
    if request.param == "async":
        acore = AsyncMemoryStore.from_url(
            core_url,
            name=unique_name,
            embedder=never_embeds,
            index=IndexConfig(dims=DIMS, default_algorithm="FLAT"),  # what ValkeyStorage.from_url configures
        )
    storage = ValkeyStorage.from_url(core_url, name=unique_name, dims=DIMS)
    if acore is not None:
        storage = ValkeyStorage(storage.core, acore=acore, owns_core=True)
    try:
        yield Driver(storage, request.param)
    finally:
        storage.close()
        if acore is not None:
            await acore.close()
