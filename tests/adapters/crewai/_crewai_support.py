"""Helpers of the CrewAI adapter tests (imported by name: this directory is on sys.path)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from crewai.memory.types import MemoryRecord

from agentmem_core.embeddings import HashingEmbedder
from agentmem_crewai import ValkeyStorage

DIMS = 32
_EMBEDDER = HashingEmbedder(DIMS)


def embed(texts: list[str]) -> list[list[float]]:
    """A deterministic CrewAI embedder callable (HashingEmbedder: unit-length rows, float32 values)."""
    return [[float(x) for x in row] for row in _EMBEDDER.embed(texts)]


def stored(vector: list[float] | None) -> list[float] | None:
    """The embedding the core keeps for ``vector``: normalised in float64, then float32."""
    if vector is None:
        return None
    v = np.asarray(vector, dtype=np.float64)
    return [float(x) for x in (v / np.linalg.norm(v)).astype(np.float32)]


def same_record(back: MemoryRecord | None, original: MemoryRecord) -> bool:
    """``back`` is ``original`` field for field, its embedding as the core stores it."""
    assert back is not None
    return back == original.model_copy(update={"embedding": stored(original.embedding)})


def vec(text: str) -> list[float]:
    return embed([text])[0]


class Driver:
    """One call style over a storage: ``sync`` (save/search/delete), ``async`` (asave/asearch/adelete on
    an AsyncMemoryStore), or ``thread`` (the async methods without one: the sync core in a worker thread).
    The other protocol methods are sync only in CrewAI's protocol."""

    def __init__(self, storage: ValkeyStorage, mode: str) -> None:
        self.storage = storage
        self.mode = mode

    async def save(self, records: list[Any]) -> None:
        if self.mode == "sync":
            self.storage.save(records)
        else:
            await self.storage.asave(records)

    async def search(self, *args: Any, **kwargs: Any) -> list[Any]:
        if self.mode == "sync":
            return self.storage.search(*args, **kwargs)
        return await self.storage.asearch(*args, **kwargs)

    async def delete(self, **kwargs: Any) -> int:
        if self.mode == "sync":
            return self.storage.delete(**kwargs)
        return await self.storage.adelete(**kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.storage, name)
        assert not inspect.iscoroutinefunction(attr)
        return attr
