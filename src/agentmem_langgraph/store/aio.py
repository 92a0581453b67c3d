"""The asynchronous LangGraph store: :class:`AsyncValkeyMemoryStore` over ``AsyncMemoryStore``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import valkey.asyncio as avalkey
from langgraph.store.base import IndexConfig, Op, Result, TTLConfig

from agentmem_core import AsyncMemoryStore, EngineInfo
from agentmem_core.backends import Backend
from agentmem_core.backends.sqlite import SqliteBackend
from agentmem_core.connection import open_client, sqlite_path
from agentmem_langgraph.store._base import ValkeyMemoryStoreBase
from agentmem_langgraph.store._plan import EmbedQuery, Flow, Ranking, batch_flow

__all__ = ["AsyncValkeyMemoryStore"]

T = TypeVar("T")

_SYNC_FROM_LOOP = (
    "AsyncValkeyMemoryStore.batch runs on the event loop the store was first used on, from another "
    "thread; on that loop's own thread (or before any abatch) call `await store.abatch(...)` (or "
    "store.aget / aput / asearch) instead"
)


class AsyncValkeyMemoryStore(ValkeyMemoryStoreBase):
    """The async twin of :class:`~agentmem_langgraph.store.ValkeyMemoryStore` (same arguments).

    It takes a ``valkey.asyncio`` client. The sync methods (for sync nodes of ``graph.ainvoke``, which
    run in worker threads) hop onto the loop the store was first used on, and refuse to run on that
    loop's own thread, where they would deadlock.
    """

    def __init__(
        self,
        client: avalkey.Valkey | avalkey.ValkeyCluster | Backend,
        *,
        name: str = "langgraph",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        ranking: Ranking = "composite",
        context_fields: Sequence[str] | None = ("context",),
        core_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(index=index, ttl=ttl, ranking=ranking, context_fields=context_fields)
        self.core = AsyncMemoryStore(client, name=name, **self._core_kwargs(core_options, sync=False))
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        url: str,
        *,
        name: str = "langgraph",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        ranking: Ranking = "composite",
        context_fields: Sequence[str] | None = ("context",),
        core_options: Mapping[str, Any] | None = None,
        cluster: bool = False,
        **client_kwargs: Any,
    ) -> AsyncIterator[AsyncValkeyMemoryStore]:
        """Open ``url``, yield a store, close the connection.

        ``valkey[s]://...`` (a cluster client if ``cluster``; ``client_kwargs`` go to valkey-py over
        ``connection.CLIENT_DEFAULTS``, and the URL's query wins), or ``sqlite:///path`` for the embedded
        backend (run in worker threads).
        """
        path = sqlite_path(url)
        client: Any
        if path is not None:
            client = SqliteBackend(path, clock=dict(core_options or {}).get("clock", time.time), name=name)
        else:
            client = open_client(url, cluster=cluster, asyncio=True, **client_kwargs)
        try:
            yield cls(
                client,
                name=name,
                index=index,
                ttl=ttl,
                ranking=ranking,
                context_fields=context_fields,
                core_options=core_options,
            )
        finally:
            if isinstance(client, SqliteBackend):
                await asyncio.to_thread(client.close)
            else:
                await client.aclose()

    async def setup(self) -> EngineInfo:
        """Create the core's index (or check the existing one); idempotent."""
        self.loop = asyncio.get_running_loop()
        return await self.core.setup()

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute ops: results in op order; puts apply after the reads, the last per item winning."""
        self.loop = asyncio.get_running_loop()
        return await self._run(batch_flow(self._settings, ops))

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Sync :meth:`abatch`, from a thread other than the event loop's."""
        loop = self.loop
        if loop is None or loop.is_closed() or _on_loop_thread(loop):
            raise asyncio.InvalidStateError(_SYNC_FROM_LOOP)
        return asyncio.run_coroutine_threadsafe(self.abatch(list(ops)), loop).result()

    async def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, EmbedQuery):
                assert self.embeddings is not None  # flows embed queries only for stores with an index
                reply = await self.embeddings.aembed_query(step.text)
            else:
                reply = await getattr(self.core, step.method)(*step.args, **step.kwargs)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # the documented "no running loop in this thread" signal
        return False
