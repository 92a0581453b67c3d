"""The two flow drivers: they run flows, handing batches of operations to a backend. Nothing else.

A flow yields :class:`~agentmem_core._plan.Batch` (operations for the backend, executed in one round trip),
:class:`~agentmem_core._plan.Embed` (texts for the embedder) or :class:`~agentmem_core._plan.Invoke` (a
language model call). The sync and async drivers differ only by
``await``; what a batch costs is the backend's business (one pipeline on Valkey, one transaction on SQLite).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from agentmem_core._plan import Batch, Embed, Flow, Invoke
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

    def __init__(self, backend: Backend, embedder: Embedder, telemetry: Telemetry | None = None) -> None:
        self.backend = backend
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()

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
        try:
            if request.is_query and (queries := getattr(self.embedder, "embed_queries", None)) is not None:
                return queries(list(request.texts))
            return self.embedder.embed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc


def _invoked(request: Invoke, call: Any) -> Any:
    try:
        return call()
    except AgentMemError:
        raise
    except Exception as exc:  # user code: wrapped, chained, never swallowed
        raise ModelError(f"{request.what} failed: {type(exc).__name__}: {exc}") from exc


class AsyncDriver:
    """Runs flows on an asyncio backend."""

    def __init__(self, backend: AsyncBackend, embedder: Embedder, telemetry: Telemetry | None = None) -> None:
        self.backend = backend
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()

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
        try:
            if request.is_query and (queries := getattr(self.embedder, "aembed_queries", None)) is not None:
                return await queries(list(request.texts))
            return await self.embedder.aembed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc
