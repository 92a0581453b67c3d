"""Helpers shared by the integration tests: one call style for the sync and the async store, a test clock."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder


class Facade:
    """Calls the same method on a sync or an async store; awaits when needed.

    ``backend`` names the store's backend (``"valkey"`` or ``"sqlite"``); ``url_for(name)`` is where a
    store of another name opens on the same backend (``open_like``).
    """

    def __init__(
        self,
        store: MemoryStore | AsyncMemoryStore,
        backend: str = "valkey",
        url_for: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.url_for = url_for

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
    if mem.url_for is not None:  # the same backend as mem's (an embedded store opens its own file)
        url = mem.url_for(name)
    facade = Facade(cls.from_url(url, name=name, **options), mem.backend, mem.url_for)
    await facade.setup()
    return facade


QUERY = "note about the trip"


async def ids_on_every_path(mem: Facade, scope: dict[str, Any], flt: dict[str, Any]) -> dict[str, set[str]]:
    """The ids a filter selects through every read path: hybrid and vector-only recall, and list."""
    hybrid = await mem.recall(QUERY, k=50, reinforce=False, **scope, **flt)
    vector = await mem.recall_by_vector(
        HashingEmbedder(64).embed([QUERY])[0], k=50, reinforce=False, **scope, **flt
    )
    page = await mem.list(limit=100, **scope, **flt)
    assert page.next_cursor is None
    return {
        "recall": {h.memory.id for h in hybrid},
        "recall_by_vector": {h.memory.id for h in vector},
        "list": {m.id for m in page.memories},
    }


async def check_everywhere(
    mem: Facade, user: str, seed: dict[str, dict[str, Any]], flt: dict[str, Any], expected: set[str]
) -> None:
    """Seed one scope, then: every read path selects ``expected``, and forget_by_scope deletes exactly it.

    ``seed`` maps a name to the ``remember`` keywords of one memory.
    """
    ids = {}
    for name, options in seed.items():
        ids[name] = await mem.remember(f"{QUERY} {name}", user_id=user, **options)
    want = {ids[n] for n in expected}
    for path, got in (await ids_on_every_path(mem, {"user_id": user}, flt)).items():
        assert got == want, (path, flt)
    assert await mem.forget_by_scope(user_id=user, **flt) == len(want)
    left = {m.id for m in (await mem.list(user_id=user, limit=100)).memories}
    assert left == set(ids.values()) - want


def valkey_only(mem: Facade, why: str) -> None:
    """Skip the rest of a test on other backends: it inspects Valkey's own keys or commands."""
    if mem.backend != "valkey":
        pytest.skip(f"inspects Valkey internals: {why}")
