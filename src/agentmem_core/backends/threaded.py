"""An asyncio face for a sync backend: each batch runs in a worker thread (the embedded SQLite backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["ThreadedBackend"]


class _SyncBackend(Protocol):
    def execute(self, ops: Sequence[Any]) -> list[Any]: ...

    def close(self) -> None: ...


class ThreadedBackend:
    """Runs a sync backend's ``execute`` in a worker thread, so the event loop never blocks on it."""

    def __init__(self, backend: _SyncBackend) -> None:
        """Wrap ``backend`` (it must be safe to call from worker threads, one batch at a time)."""
        self.backend = backend
        self.kind: str = getattr(backend, "kind", type(backend).__name__)
        self._lock = asyncio.Lock()

    async def aexecute(self, ops: Sequence[Any]) -> list[Any]:
        """Execute a batch in a worker thread; one result per operation, errors in place."""
        async with self._lock:  # one batch at a time: a batch is one transaction
            return await asyncio.to_thread(self.backend.execute, ops)

    async def aclose(self) -> None:
        """Close the wrapped backend."""
        await asyncio.to_thread(self.backend.close)
