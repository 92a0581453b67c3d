"""Helpers shared by the integration tests: one call style for the sync and the async store, a test clock."""

from __future__ import annotations

import inspect
from typing import Any

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder


class Facade:
    """Calls the same method on a sync or an async store; awaits when needed."""

    def __init__(self, store: MemoryStore | AsyncMemoryStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return call


class Clock:
    """A settable clock for stores (``clock=``)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def open_like(mem: Facade, url: str, name: str, **options: Any) -> Facade:
    """A set-up store of the same colour (sync or async) as ``mem``'s, with its own name and options."""
    cls = type(mem.store)
    options.setdefault("embedder", HashingEmbedder(64))
    facade = Facade(cls.from_url(url, name=name, **options))
    await facade.setup()
    return facade
