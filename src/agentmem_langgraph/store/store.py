"""The synchronous LangGraph store: :class:`ValkeyMemoryStore` over :class:`agentmem_core.MemoryStore`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import valkey
from langgraph.store.base import IndexConfig, Op, Result, TTLConfig

from agentmem_core import EngineInfo, MemoryStore
from agentmem_core.backends import Backend
from agentmem_core.backends.sqlite import SqliteBackend
from agentmem_core.connection import open_client, sqlite_path
from agentmem_langgraph.store._base import ValkeyMemoryStoreBase
from agentmem_langgraph.store._plan import EmbedQuery, Flow, Ranking, batch_flow

__all__ = ["ValkeyMemoryStore"]

T = TypeVar("T")


class ValkeyMemoryStore(ValkeyMemoryStoreBase):
    """LangGraph long-term memory (``BaseStore``) on Valkey, through agentmem's :class:`MemoryStore`.

    Args:
        client: a ``valkey.Valkey`` or ``valkey.ValkeyCluster`` (``decode_responses=False``, RESP2).
        name: the core store name (``[A-Za-z0-9_-]{1,48}``); give the LangGraph store its own.
        index: LangGraph's ``IndexConfig`` (``dims``, ``embed``, ``fields``); without it nothing is
            embedded and a search's ``query`` is ignored, as in ``InMemoryStore``.
        ttl: LangGraph's ``TTLConfig``: ``default_ttl`` (minutes) and ``refresh_on_read``; Valkey
            expires items itself, so ``sweep_interval_minutes`` is not needed.
        ranking: ``"composite"`` (the core's score; default) or ``"similarity"`` (cosine similarity
            only: ``InMemoryStore``'s scores and order).
        context_fields: value paths whose text situates an item (e.g. the message that prompted it:
            the memory tools write it at ``"context"``): composite searches also match its words, at half
            a content word's weight; it is not embedded and stays in the value as written. ``None``: none.
        core_options: more :class:`~agentmem_core.MemoryStore` options, e.g.
            ``{"index": agentmem_core.IndexConfig(dims=384, algorithm="FLAT"), "max_metadata_bytes": ...}``.

    The constructor does no I/O: call :meth:`setup` once. The async methods run the sync ones in a
    worker thread; asyncio applications should prefer :class:`AsyncValkeyMemoryStore`.
    """

    def __init__(
        self,
        client: valkey.Valkey | valkey.ValkeyCluster | Backend,
        *,
        name: str = "langgraph",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        ranking: Ranking = "composite",
        context_fields: Sequence[str] | None = ("context",),
        core_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(index=index, ttl=ttl, ranking=ranking, context_fields=context_fields)
        self.core = MemoryStore(client, name=name, **self._core_kwargs(core_options, sync=True))

    @classmethod
    @contextmanager
    def from_url(
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
    ) -> Iterator[ValkeyMemoryStore]:
        """Open ``url``, yield a store, close the connection.

        ``valkey[s]://...`` (a cluster client if ``cluster``; ``client_kwargs`` go to valkey-py over
        ``connection.CLIENT_DEFAULTS``, and the URL's query wins), or ``sqlite:///path`` for the embedded
        backend.
        """
        path = sqlite_path(url)
        client: Any
        if path is not None:
            client = SqliteBackend(path, clock=dict(core_options or {}).get("clock", time.time), name=name)
        else:
            client = open_client(url, cluster=cluster, **client_kwargs)
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
            client.close()

    def setup(self) -> EngineInfo:
        """Create the core's index (or check the existing one); idempotent."""
        return self.core.setup()

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute ops: results in op order; puts apply after the reads, the last per item winning."""
        return self._run(batch_flow(self._settings, ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(None, self.batch, list(ops))

    def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, EmbedQuery):
                assert self.embeddings is not None  # flows embed queries only for stores with an index
                reply = self.embeddings.embed_query(step.text)
            else:
                reply = getattr(self.core, step.method)(*step.args, **step.kwargs)
