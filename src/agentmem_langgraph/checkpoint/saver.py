"""``ValkeySaver``: the LangGraph checkpointer on a synchronous valkey client (standalone or cluster)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import valkey
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentmem_core.backends.valkey_client import ValkeySender
from agentmem_core.config import RetryPolicy
from agentmem_core.connection import open_client
from agentmem_langgraph.checkpoint import _plan as plan
from agentmem_langgraph.checkpoint._base import DEFAULT_PREFIX, CheckpointTTL, ValkeySaverBase

__all__ = ["ValkeySaver"]

T = TypeVar("T")


class _Driver:
    """Sends what a flow asks for over a sync client: the core's sender does the sending."""

    def __init__(self, client: Any, retry: RetryPolicy | None) -> None:
        # a script the server lacks goes again as EVAL, which the documented grant has (+eval)
        self.sender = ValkeySender(client, retry, eval_on_noscript=True)

    def _send(self, request: plan.Batch | plan.Scan) -> Any:
        with plan.backend_errors():
            if isinstance(request, plan.Scan):
                return list(self.sender.client.scan_iter(match=request.pattern, count=1000))
            return self.sender.send(plan.core_commands(request.commands))

    def iterate(self, flow: plan.Flow[Any]) -> Iterator[CheckpointTuple]:
        reply: Any = None
        while True:
            try:
                request = flow.send(reply)
            except StopIteration:
                return
            if isinstance(request, plan.Emit):
                yield request.value
                reply = None
            else:
                reply = self._send(request)

    def run(self, flow: plan.Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                request = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = None if isinstance(request, plan.Emit) else self._send(request)


class ValkeySaver(ValkeySaverBase):
    """LangGraph checkpointer storing threads in Valkey (plain server; no module needed).

    Every key of a thread shares one hash tag, so the saver works unchanged on a Valkey cluster. A
    ``put``, ``put_writes`` or ``get_tuple`` is one server-side script call (one round trip).

    Args:
        client: a ``valkey.Valkey`` or ``valkey.ValkeyCluster`` created with ``decode_responses=False``.
        prefix: key prefix, to share a server between applications or tests.
        ttl: ``{"default_ttl": minutes, "refresh_on_read": bool}``; every key of a thread expires together.
        serde: serializer (LangGraph's ``JsonPlusSerializer`` by default; ``EncryptedSerializer`` works).
        page_size: checkpoints fetched per round trip by ``list``.
        retry: how a call the server could not serve is retried (the core's
            :class:`~agentmem_core.config.RetryPolicy`; default ``RetryPolicy()``): a refused or unsent call
            is sent again, and after ``READONLY`` (a failover) the saver follows the new primary; a call
            whose connection was lost after sending is not (it raises the typed error).

    The constructor does no I/O. The async methods run the sync ones in a worker thread; for asyncio
    applications prefer :class:`AsyncValkeySaver`.

    Example:
        ```python
        with ValkeySaver.from_url("valkey://localhost:6379") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})
        ```
    """

    _client_types = (valkey.Valkey, valkey.ValkeyCluster)

    def __init__(
        self,
        client: valkey.Valkey | valkey.ValkeyCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: CheckpointTTL | None = None,
        serde: SerializerProtocol | None = None,
        page_size: int = 100,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(client, prefix=prefix, ttl=ttl, serde=serde, page_size=page_size)
        self._driver = _Driver(client, retry)

    @classmethod
    @contextmanager
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        prefix: str = DEFAULT_PREFIX,
        ttl: CheckpointTTL | None = None,
        serde: SerializerProtocol | None = None,
        retry: RetryPolicy | None = None,
        **client_kwargs: Any,
    ) -> Iterator[ValkeySaver]:
        """Create a client from ``url`` (a cluster client if ``cluster``), yield a saver, close the client.

        ``retry``: the saver's :class:`~agentmem_core.RetryPolicy`; ``client_kwargs`` go to valkey-py over
        ``agentmem_core.connection.CLIENT_DEFAULTS`` (bounded connect and reply timeouts), and options in
        the URL's query win over both.
        """
        client = open_client(url, cluster=cluster, **client_kwargs)
        try:
            yield cls(client, prefix=prefix, ttl=ttl, serde=serde, retry=retry)
        finally:
            client.close()

    def setup(self) -> None:
        """Check the server answers and preload the Lua scripts (optional; idempotent)."""
        self._driver.run(plan.setup_flow(self.settings))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch the checkpoint named by ``config`` (or its namespace's newest); ``None`` if absent."""
        return self._driver.run(plan.get_tuple_flow(self.settings, config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first; ``config=None`` lists every thread (SCANs the prefix)."""
        return self._driver.iterate(
            plan.list_flow(self.settings, config, filter=filter, before=before, limit=limit)
        )

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values atomically; return its config."""
        return self._driver.run(plan.put_flow(self.settings, config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically, idempotent per (task_id, idx)."""
        self._driver.run(plan.put_writes_flow(self.settings, config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every key of the thread."""
        self._driver.run(plan.delete_thread_flow(self.settings, thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints written by these runs, with their writes and unshared blobs."""
        self._driver.run(plan.delete_for_runs_flow(self.settings, run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread into a new (empty) thread."""
        self._driver.run(plan.copy_thread_flow(self.settings, source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's newest checkpoint (``keep_latest``) or delete the threads (``delete``)."""
        self._driver.run(plan.prune_flow(self.settings, thread_ids, strategy))

    # The async API runs the sync methods in a worker thread.

    async def _in_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple` (runs in a worker thread)."""
        result: CheckpointTuple | None = await self._in_thread(self.get_tuple, config)
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list` (the listing runs in a worker thread)."""
        items = await self._in_thread(lambda: [*self.list(config, filter=filter, before=before, limit=limit)])
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put` (runs in a worker thread)."""
        result: RunnableConfig = await self._in_thread(self.put, config, checkpoint, metadata, new_versions)
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes` (runs in a worker thread)."""
        await self._in_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread` (runs in a worker thread)."""
        await self._in_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs` (runs in a worker thread)."""
        await self._in_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread` (runs in a worker thread)."""
        await self._in_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune` (runs in a worker thread)."""
        await self._in_thread(self.prune, thread_ids, strategy=strategy)
