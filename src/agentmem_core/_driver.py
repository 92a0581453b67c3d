"""The two flow drivers: they run flows, handing batches of operations to a backend. Nothing else.

A flow yields :class:`~agentmem_core._plan.Batch` (operations for the backend, executed in one round trip),
:class:`~agentmem_core._plan.Embed` (texts for the embedder) or :class:`~agentmem_core._plan.Invoke` (a
language model call). The sync and async drivers differ only by
``await``; what a batch costs is the backend's business (one pipeline on Valkey, one transaction on SQLite).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np

from agentmem_core._plan import Batch, Embed, Flow, Invoke
from agentmem_core._query_cache import QueryCache
from agentmem_core.embeddings import Embedder
from agentmem_core.errors import AgentMemError, EmbeddingError, ModelError
from agentmem_core.telemetry import NoopTelemetry, Telemetry

T = TypeVar("T")

__all__ = ["AsyncDriver", "Backend", "AsyncBackend", "SyncDriver"]


class Backend(Protocol):
    """A sync storage backend: executes a batch of :mod:`agentmem_core.ops` operations."""

    def execute(self, ops: Any) -> list[Any]:
        """One result per operation, in order, a failed operation's error in its place."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


class AsyncBackend(Protocol):
    """An asyncio storage backend."""

    async def aexecute(self, ops: Any) -> list[Any]:
        """One result per operation, in order, a failed operation's error in its place."""
        ...

    async def aclose(self) -> None:
        """Release the backend's resources."""
        ...


class SyncDriver:
    """Runs flows on a sync backend."""

    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        telemetry: Telemetry | None = None,
        queries: QueryCache | None = None,
    ) -> None:
        self.backend = backend
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()
        self.queries = queries or QueryCache(0)

    def run(self, name: str, flow: Flow[T]) -> T:
        """Drive a flow to completion and return its result."""
        with self.telemetry.operation(name):
            reply: Any = None
            try:
                while True:
                    request = flow.send(reply)
                    if isinstance(request, Batch):
                        reply = self.backend.execute(request.commands)
                    elif isinstance(request, Invoke):
                        reply = _invoked(request, request.sync)
                    else:
                        reply = self._embed(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    def _embed(self, request: Embed) -> Any:
        if (cached := _cached(self.queries, request)) is not None:
            return cached
        try:
            if request.is_query and (queries := getattr(self.embedder, "embed_queries", None)) is not None:
                raw = queries(list(request.texts))
            else:
                raw = self.embedder.embed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc
        _keep(self.queries, request, raw)
        return raw


def _invoked(request: Invoke, call: Any) -> Any:
    try:
        return call()
    except AgentMemError:
        raise
    except Exception as exc:  # user code: wrapped, chained, never swallowed
        raise ModelError(f"{request.what} failed: {type(exc).__name__}: {exc}") from exc


def _cached(cache: QueryCache, request: Embed) -> Any | None:
    """A recall's query embedding from the cache (one query text), as the embedder returns one: rows."""
    if not request.is_query or len(request.texts) != 1:
        return None
    row = cache.get(request.texts[0])
    return None if row is None else [row]


def _keep(cache: QueryCache, request: Embed, raw: Any) -> None:
    if request.is_query and len(request.texts) == 1:
        try:
            row = np.array(raw[0], copy=True)  # a copy nobody can change in place
        except (TypeError, ValueError, IndexError, KeyError):  # unusable: the flow reports it, not cached
            return
        row.setflags(write=False)
        cache.put(request.texts[0], row)


class AsyncDriver:
    """Runs flows on an asyncio backend."""

    def __init__(
        self,
        backend: AsyncBackend,
        embedder: Embedder,
        telemetry: Telemetry | None = None,
        queries: QueryCache | None = None,
    ) -> None:
        self.backend = backend
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()
        self.queries = queries or QueryCache(0)

    async def run(self, name: str, flow: Flow[T]) -> T:
        """Drive a flow to completion and return its result."""
        with self.telemetry.operation(name):
            reply: Any = None
            try:
                while True:
                    request = flow.send(reply)
                    if isinstance(request, Batch):
                        reply = await self.backend.aexecute(request.commands)
                    elif isinstance(request, Invoke):
                        try:
                            reply = await request.asynchronous()
                        except AgentMemError:
                            raise
                        except Exception as exc:  # user code: wrapped, chained, never swallowed
                            raise ModelError(f"{request.what} failed: {type(exc).__name__}: {exc}") from exc
                    else:
                        reply = await self._embed(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _embed(self, request: Embed) -> Any:
        if (cached := _cached(self.queries, request)) is not None:
            return cached
        try:
            if request.is_query and (queries := getattr(self.embedder, "aembed_queries", None)) is not None:
                raw = await queries(list(request.texts))
            else:
                raw = await self.embedder.aembed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc
        _keep(self.queries, request, raw)
        return raw
