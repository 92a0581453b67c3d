"""``AsyncValkeySaver``: the LangGraph checkpointer on an asyncio valkey client (standalone or cluster).

Same plans as :mod:`.saver`; this module only awaits the sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import valkey.asyncio as avalkey
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentmem_core.backends.valkey_client import AsyncValkeySender
from agentmem_core.config import RetryPolicy
from agentmem_core.connection import open_client
from agentmem_langgraph.checkpoint import _plan as plan
from agentmem_langgraph.checkpoint._base import DEFAULT_PREFIX, CheckpointTTL, ValkeySaverBase

__all__ = ["AsyncValkeySaver"]

T = TypeVar("T")

_SYNC_FROM_LOOP = (
    "Synchronous calls to AsyncValkeySaver are only allowed from a thread other than the event loop's; "
    "from async code use the async method instead, e.g. `await saver.{name}(...)` or "
    "`await graph.ainvoke(...)`."
)


class _Driver:
    """Sends what a flow asks for over an asyncio client: the core's sender does the sending."""

    def __init__(self, client: Any, retry: RetryPolicy | None) -> None:
        # a script the server lacks goes again as EVAL, which the documented grant has (+eval)
        self.sender = AsyncValkeySender(client, retry, eval_on_noscript=True)

    async def _send(self, request: plan.Batch | plan.Scan) -> Any:
        with plan.backend_errors():
            if isinstance(request, plan.Scan):
                return [key async for key in self.sender.client.scan_iter(match=request.pattern, count=1000)]
            return await self.sender.send(plan.core_commands(request.commands))

    async def iterate(self, flow: plan.Flow[Any]) -> AsyncIterator[CheckpointTuple]:
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
                reply = await self._send(request)

    async def run(self, flow: plan.Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                request = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = None if isinstance(request, plan.Emit) else await self._send(request)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # the documented "no running loop in this thread" signal
        return False


class AsyncValkeySaver(ValkeySaverBase):
    """Async LangGraph checkpointer storing threads in Valkey (plain server; no module needed).

    The same storage layout and server-side scripts as :class:`ValkeySaver`, sent over an asyncio client.
    The sync methods (for ``graph.invoke`` from another thread) hop onto the loop the saver was first
    used on, and refuse to run on that loop's own thread, where they would deadlock.

    Args:
        client: a ``valkey.asyncio.Valkey`` or ``valkey.asyncio.ValkeyCluster`` (``decode_responses=False``).
        prefix: key prefix, to share a server between applications or tests.
        ttl: ``{"default_ttl": minutes, "refresh_on_read": bool}``; every key of a thread expires together.
        serde: serializer (LangGraph's ``JsonPlusSerializer`` by default; ``EncryptedSerializer`` works).
        page_size: checkpoints fetched per round trip by ``alist``.
        retry: how a call the server could not serve is retried (the core's
            :class:`~agentmem_core.config.RetryPolicy`; default ``RetryPolicy()``): a refused or unsent call
            is sent again, and after ``READONLY`` (a failover) the saver follows the new primary; a call
            whose connection was lost after sending is not (it raises the typed error).

    Example:
        ```python
        async with AsyncValkeySaver.from_url("valkey://localhost:6379") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "t1"}})
        ```
    """

    _client_types = (avalkey.Valkey, avalkey.ValkeyCluster)

    def __init__(
        self,
        client: avalkey.Valkey | avalkey.ValkeyCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: CheckpointTTL | None = None,
        serde: SerializerProtocol | None = None,
        page_size: int = 100,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(client, prefix=prefix, ttl=ttl, serde=serde, page_size=page_size)
        self._driver = _Driver(client, retry)
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        prefix: str = DEFAULT_PREFIX,
        ttl: CheckpointTTL | None = None,
        serde: SerializerProtocol | None = None,
        retry: RetryPolicy | None = None,
        **client_kwargs: Any,
    ) -> AsyncIterator[AsyncValkeySaver]:
        """Create a client from ``url`` (a cluster client if ``cluster``), yield a saver, close the client.

        ``retry``: the saver's :class:`~agentmem_core.RetryPolicy`; ``client_kwargs`` go to valkey-py over
        ``agentmem_core.connection.CLIENT_DEFAULTS`` (bounded connect and reply timeouts), and options in
        the URL's query win over both.
        """
        client = open_client(url, cluster=cluster, asyncio=True, **client_kwargs)
        try:
            yield cls(client, prefix=prefix, ttl=ttl, serde=serde, retry=retry)
        finally:
            await client.aclose()

    async def _run(self, flow: plan.Flow[T]) -> T:
        self.loop = asyncio.get_running_loop()
        return await self._driver.run(flow)

    async def setup(self) -> None:
        """Check the server answers and preload the Lua scripts (optional; idempotent)."""
        await self._run(plan.setup_flow(self.settings))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch the checkpoint named by ``config`` (or its namespace's newest); ``None`` if absent."""
        return await self._run(plan.get_tuple_flow(self.settings, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """List checkpoints newest first; ``config=None`` lists every thread (SCANs the prefix)."""
        self.loop = asyncio.get_running_loop()
        flow = plan.list_flow(self.settings, config, filter=filter, before=before, limit=limit)
        async for item in self._driver.iterate(flow):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values atomically; return its config."""
        return await self._run(plan.put_flow(self.settings, config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically, idempotent per (task_id, idx)."""
        await self._run(plan.put_writes_flow(self.settings, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every key of the thread."""
        await self._run(plan.delete_thread_flow(self.settings, thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints written by these runs, with their writes and unshared blobs."""
        await self._run(plan.delete_for_runs_flow(self.settings, run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread into a new (empty) thread."""
        await self._run(plan.copy_thread_flow(self.settings, source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's newest checkpoint (``keep_latest``) or delete the threads (``delete``)."""
        await self._run(plan.prune_flow(self.settings, thread_ids, strategy))

    # Sync bridge: run the coroutine on the saver's loop from another thread.

    def _sync(self, name: str, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        if loop is None or loop.is_closed() or _on_loop_thread(loop):
            coro.close()
            raise asyncio.InvalidStateError(_SYNC_FROM_LOOP.format(name=name))
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync :meth:`aget_tuple`, from a thread other than the event loop's."""
        return self._sync("aget_tuple", self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync :meth:`alist`, from a thread other than the event loop's."""

        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        return iter(self._sync("alist", collect()))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync :meth:`aput`, from a thread other than the event loop's."""
        return self._sync("aput", self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync :meth:`aput_writes`, from a thread other than the event loop's."""
        self._sync("aput_writes", self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync :meth:`adelete_thread`, from a thread other than the event loop's."""
        self._sync("adelete_thread", self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync :meth:`adelete_for_runs`, from a thread other than the event loop's."""
        self._sync("adelete_for_runs", self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync :meth:`acopy_thread`, from a thread other than the event loop's."""
        self._sync("acopy_thread", self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync :meth:`aprune`, from a thread other than the event loop's."""
        self._sync("aprune", self.aprune(thread_ids, strategy=strategy))
