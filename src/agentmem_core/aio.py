"""The asynchronous memory store (same API as :class:`~agentmem_core.store.MemoryStore`, awaitable).

Example::

    from agentmem_core import AsyncMemoryStore
    from agentmem_core.embeddings import SentenceTransformerEmbedder

    async with AsyncMemoryStore.from_url("valkey://localhost:6379", name="travel",
                              embedder=SentenceTransformerEmbedder()) as store:
        await store.asetup()
        await store.aremember("Prefers window seats", user_id="ana", importance=0.8)
        for hit in await store.arecall("seat preference", user_id="ana", k=5):
            print(hit.memory.content, hit.scores)
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import valkey.asyncio as avalkey
from typing_extensions import Self, Unpack

from agentmem_core._base import (
    DEFAULT,
    MemoryLike,
    StoreBase,
    _Default,
    as_input,
    memory_input,
    with_neighbour_context,
)
from agentmem_core._driver import AsyncBackend, AsyncDriver, Backend
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_audit import audit_flow
from agentmem_core._flows_consolidate import ConsolidationResult, SelectionArgs
from agentmem_core._flows_distil import FactsResult
from agentmem_core._flows_lease import acquire_lease_flow, release_lease_flow
from agentmem_core._flows_list import Order
from agentmem_core._flows_transfer import EXPORT_PAGE, IMPORT_CHUNK, ImportResult, RecordSink
from agentmem_core._records import scope_of
from agentmem_core.audit import AuditEntry
from agentmem_core.backends.threaded import ThreadedBackend
from agentmem_core.backends.valkey_client import AsyncValkeyBackend
from agentmem_core.config import Kind, ScoringWeights
from agentmem_core.connection import open_client, resolve_url, sqlite_path
from agentmem_core.embeddings import EmbedderLike
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import AgentMemError
from agentmem_core.query import FilterArgs, recall_filter, to_filter
from agentmem_core.types import Facets, Health, Memory, Page, RecallResult, Stats

__all__ = ["AsyncMemoryStore"]


class AsyncMemoryStore(StoreBase):
    """Long-term memory on Valkey (async).

    Same methods as :class:`~agentmem_core.store.MemoryStore`, awaitable; each is also available with an
    ``a`` prefix (``asetup``, ``arecall``, ...) for LangGraph-style code. The embedder may be an ``async
    def`` batch function; a sync one runs in a worker thread, so it never blocks the event loop.
    """

    # The async driver awaits aembed: an async embedding function is fine here (MemoryStore refuses one).
    _embeds_async = True

    def __init__(
        self, client: avalkey.Valkey | avalkey.ValkeyCluster | AsyncBackend | Backend, **kwargs: Any
    ) -> None:
        """Create a store over an existing client; see :class:`~agentmem_core._base.StoreBase` for options."""
        super().__init__(client, **kwargs)
        backend = self._given_backend
        if backend is not None and not callable(getattr(backend, "aexecute", None)):
            backend = ThreadedBackend(backend)  # a sync backend (SQLite) runs in worker threads
        self._backend: Any = backend or AsyncValkeyBackend(client, self._valkey_ops, self._retry_policy())
        self._driver = AsyncDriver(self._backend, self.embedder, self.telemetry, self._queries)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        name: str,
        embedder: EmbedderLike,
        cluster: bool = False,
        **kwargs: Any,
    ) -> AsyncMemoryStore:
        """Open a store by URL; the store owns and closes its connection (or file).

        Args:
            url: ``valkey[s]://[user:password@]host:port[/db]``, or ``sqlite:///path/to/file.db`` for the
                embedded backend (no server; its calls run in worker threads); ``None``:
                ``$AGENTMEM_URL``, else the embedded store in the user's data directory.
            name: the store name.
            embedder: an embedder, or a sync or async batch function (see ``dims=``).
            cluster: connect with the cluster client (Valkey).
            **kwargs: store options (see :class:`~agentmem_core._base.StoreBase`).
        """
        url = resolve_url(url)
        path = sqlite_path(url)
        if path is not None:
            from agentmem_core.backends.sqlite import SqliteBackend  # stdlib sqlite3 only when asked

            backend = SqliteBackend(path, clock=kwargs.get("clock", time.time), name=name)
            return cls(backend, name=name, embedder=embedder, owns_client=True, **kwargs)
        client = open_client(url, cluster=cluster, asyncio=True)  # timeouts: connection.CLIENT_DEFAULTS
        return cls(client, name=name, embedder=embedder, owns_client=True, **kwargs)

    async def _run(self, name: str, flow: Any) -> Any:
        if self._live_due():
            self._live_loaded(await self._driver.run("live_config", self._refresh_flow()))
        return await self._driver.run(name, flow)

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def setup(self) -> EngineInfo:
        """Create the index (or validate the existing one) and detect the search engine.

        Call it in every process, also on an index another one created: text recall's lexical channel
        needs the detected engine (before it, ``hybrid_enabled`` is ``False`` and recall is vector-only).
        An embedding function given without ``dims=`` is first called once, to learn the dimension.

        Raises:
            SearchModuleUnavailableError: the server has no search module.
            DimensionMismatchError: the existing index has another vector dimension.
            EmbeddingError: the dimension probe failed.
        """
        return await self._driver.run("setup", self._setup())

    async def close(self) -> None:
        """Close the client (or the embedded database) if this store opened it."""
        if self._owns_client:
            await self._backend.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writes ------------------------------------------------------------------------------------------
    async def remember(
        self,
        content: str,
        *,
        importance: float = 0.5,
        tags: Sequence[str] | None = None,
        kind: Kind | str = Kind.SEMANTIC,
        source: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        namespace: str | Sequence[str] | None = None,
        user_id: str | None = None,
        created_at: float | None = None,
        key: str | None = None,
        id: str | None = None,  # the caller's global id
        embed: bool = True,
        texts: Sequence[str] | None = None,
        subject: str | None = None,
        context: str | None = None,
    ) -> str:
        """Store one memory and return its id.

        Args:
            content: the text (embedded and stored).
            importance: ``0..1``; weighs in recall and capacity eviction.
            tags: labels for filtering.
            kind: :class:`Kind` (decides the default TTL).
            source: who wrote it.
            metadata: JSON-able dict; scalar values are filterable.
            ttl: seconds until it expires (default: the kind's TTL).
            thread_id: thread/session scope.
            agent_id: agent scope.
            namespace: hierarchical namespace (a string or a path of labels).
            user_id: user scope.
            created_at: when it happened (Unix seconds; default now).
            key: a stable key within the scope: writing the same key again replaces the memory (it
                keeps its ``created_at``); :meth:`get_by_key` finds it.
            id: a global id of your own (any text but agentmem's 32-hex shape, e.g. a UUID string):
                ``get``, ``update`` and ``forget`` then find the memory by it without its scope, and
                writing it again replaces the memory. An id held by a live memory of another scope is
                an error.
            embed: ``False`` stores it without embedding it (content may then be empty): it is listed,
                counted, filtered and got, but never recalled (LangGraph's ``index=False``, chat messages).
            texts: texts to embed instead of the content, one vector each (at most 256; LangGraph's
                ``fields``): recall scores the memory by its closest vector and returns it once, and
                hybrid recall matches the words of the content (of the texts when the content is empty).
                Such a memory is never merged by write-time dedup, and ``update(content=...)`` keeps its
                vectors (write it again by key or id to change them).
            subject: makes it a fact about this subject (``"employer"``, ``"home_city"``; case and
                separators are folded) that holds from ``created_at``: the newest statement of a subject in
                a scope is current, the older ones are kept as history (``superseded_by``,
                ``valid_until``; :meth:`history`), and recall returns current facts unless asked for
                history. Facts are never merged by write-time dedup.
            context: text that situates the memory (the turns around it, the speaker, the session
                date): hybrid recall also matches its words, at half a content word's weight, so a
                short reply ("Yes, twice!") is found by the question it answers. It is not embedded,
                not returned, and an update of the content keeps it.

        Returns:
            The id: yours when given, else agentmem's (the existing memory's when write-time dedup
            merged it).
        """
        item = memory_input(
            content, importance=importance, tags=tags, kind=kind, source=source, metadata=metadata, ttl=ttl,
            thread_id=thread_id, agent_id=agent_id, namespace=namespace, user_id=user_id,
            created_at=created_at, key=key, id=id, embed=embed, texts=texts, subject=subject,
            context=context,
        )  # fmt: skip
        (memory_id,) = await self._run("remember", self._remember([item]))
        return str(memory_id)

    async def remember_many(
        self,
        items: Sequence[MemoryLike],
        *,
        vectors: Sequence[Sequence[float]] | np.ndarray | None = None,
        context_window: int = 0,
    ) -> builtins.list[str]:
        """Store many memories: one embedding call, pipelined writes. All are validated before any write.

        Args:
            items: :class:`MemoryInput` objects, mappings of :meth:`remember` keywords, or strings.
            vectors: precomputed vectors instead of calling the embedder: one per embedded text, in order
                (an item's ``texts`` each, else its content).
            context_window: for a conversation given in order, one item per turn: each item without a
                ``context`` gets the contents of the ``context_window`` items before it in its scope
                (``1``: the previous turn), as :meth:`remember`'s ``context``.
        """
        inputs = with_neighbour_context([as_input(i) for i in items], context_window)
        return list(await self._run("remember_many", self._remember(inputs, vectors)))

    async def update(
        self,
        memory_id: str,
        *,
        content: str | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        kind: Kind | str | None = None,
        ttl: float | None = None,
        scope: ScopeKey | None = None,
    ) -> Memory:
        """Change a memory (its scope and id stay), atomically; re-embeds only if the content changed.

        Attributes left ``None`` are not touched, so concurrent updates of different attributes both
        stick; ``ttl`` restarts the memory's lifetime from now. ``scope`` moves it to another scope
        (written there first, then deleted here; its vector, times, counters and caller id move along):
        agentmem's ids name their scope, so the returned memory's ``id`` is then new, while a caller's
        id stays.

        Returns:
            The memory as updated.

        Raises:
            NotFoundError: the memory does not exist (also when it was deleted concurrently).
        """
        flow = self._update(
            memory_id, scope, content=content, importance=importance, tags=tags, metadata=metadata,
            kind=kind, ttl=ttl,
        )  # fmt: skip
        memory: Memory = await self._run("update", flow)
        return memory

    async def update_many(
        self,
        memory_ids: Sequence[str],
        *,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        kind: Kind | str | None = None,
        ttl: float | None = None,
    ) -> list[Memory | None]:
        """Apply one change to many memories in one round trip (each memory changes atomically).

        The attributes work as in :meth:`update` (content is per memory: use :meth:`update` for it).
        The change is validated once, before anything is written; a memory deleted meanwhile is
        skipped, never recreated; one audit entry is logged per scope.

        Returns:
            Per given id, in order, the memory as updated, or ``None`` where it does not exist.

        Raises:
            InvalidMemoryError: an invalid change or id list (nothing is written).
        """
        flow = self._update_many(
            memory_ids, importance=importance, tags=tags, metadata=metadata, kind=kind, ttl=ttl
        )
        return list(await self._run("update", flow))

    async def forget(self, memory_id: str) -> bool:
        """Delete one memory; ``False`` if it did not exist."""
        return bool(await self._run("forget", self._forget([memory_id])))

    async def forget_many(self, memory_ids: Sequence[str]) -> int:
        """Delete memories by id; returns how many existed."""
        return int(await self._run("forget", self._forget(memory_ids)))

    async def forget_each(self, memory_ids: Sequence[str]) -> builtins.list[bool]:
        """Delete memories by id, in one round trip per step like :meth:`forget_many`.

        Returns:
            Per id, whether this call deleted it (``False``: it did not exist, or another call deleted it
            first; an id given twice counts at its first place).
        """
        return list(await self._run("forget", self._forget_each(memory_ids)))

    async def forget_by_scope(self, **filters: Unpack[FilterArgs]) -> int:
        """Delete every memory matching the filters (batched per scope, cluster-slot safe).

        Returns:
            How many memories were deleted.
        """
        return int(await self._run("forget_by_scope", self._forget_by_scope(to_filter(filters))))

    async def set_live_config(self, **values: float | int | None) -> None:
        """Write live config that every store on this name picks up within ``live_config_seconds``.

        Fields: ``similarity_weight``, ``recency_weight``, ``importance_weight``, ``time_weight``,
        ``half_life_seconds``, ``threshold``, ``max_items_per_scope``; ``None`` clears a threshold / capacity.
        """
        await self._driver.run("set_live_config", self._set_live(dict(values)))

    # -- reads -------------------------------------------------------------------------------------------
    async def recall(
        self,
        query: str,
        *,
        k: int = 10,
        threshold: float | None | _Default = DEFAULT,
        weights: ScoringWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        reinforce: bool = True,
        offset: int = 0,
        refresh_ttl: bool = False,
        counters: bool = True,
        history: bool = False,
        rerank: bool = True,
        **filters: Unpack[FilterArgs],
    ) -> RecallResult:
        """Recall the ``k`` best memories for a text query.

        Args:
            query: the text to search for.
            k: how many hits.
            threshold: maximum cosine distance (default: the store's, ``None`` = no gate).
            weights: override the composite weights for this call.
            half_life_seconds: override the recency half-life for this call.
            reinforce: bump ``access_count``/``last_accessed_at`` of the hits (one round trip).
            offset: skip this many of the best hits (pages through the ranking; ``k + offset <= 10000``).
            refresh_ttl: restart the lifetime of the returned memories that have a TTL.
            counters: ``False`` returns the hits without their counters (``access_count``,
                ``last_accessed_at`` and ``duplicate_count`` are ``None``); ranked by similarity alone and
                not reinforced, the search's own rows are then the hits: one round trip fewer.
            history: also return facts that no longer hold (superseded or retracted); by default recall
                returns current facts only (``current=False`` returns only the history).
            rerank: ``False`` skips the store's reranker for this call (hits in composite order).
            **filters: scope and filters (``thread_id``, ``agent_id``, ``namespace``, ``namespace_prefix``,
                ``user_id``, ``source``, ``tags``, ``kinds``, ``created_after``, ``created_before``,
                ``metadata``, ``any_of``; see :class:`~agentmem_core.query.MemoryFilter`). Conditions the
                index cannot evaluate run on the client, and recall widens its search until ``k`` hits pass;
                past 10,000 nearest memories it reads the matching scopes instead (exact, but slow on
                large scopes: declare a metadata key ranged on in ``numeric_fields`` to push it down).

        Returns:
            Hits best first, each with ``distance`` and the score breakdown.
        """
        flow = self._recall(
            query, k=k, threshold=threshold, weights=weights, half_life_seconds=half_life_seconds,
            reinforce=reinforce, flt=recall_filter(filters, history), offset=offset,
            refresh_ttl=refresh_ttl, rerank=rerank, counters=counters,
        )  # fmt: skip
        result: RecallResult = await self._run("recall", flow)
        return result

    async def recall_by_vector(
        self,
        vector: Sequence[float] | np.ndarray,
        *,
        k: int = 10,
        threshold: float | None | _Default = DEFAULT,
        weights: ScoringWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        reinforce: bool = True,
        offset: int = 0,
        refresh_ttl: bool = False,
        counters: bool = True,
        history: bool = False,
        **filters: Unpack[FilterArgs],
    ) -> RecallResult:
        """Like :meth:`recall` with a precomputed query vector (validated and normalised)."""
        flow = self._recall(
            vector, k=k, threshold=threshold, weights=weights, half_life_seconds=half_life_seconds,
            reinforce=reinforce, flt=recall_filter(filters, history), offset=offset,
            refresh_ttl=refresh_ttl, counters=counters,
        )  # fmt: skip
        result: RecallResult = await self._run("recall", flow)
        return result

    async def get(
        self, memory_id: str, *, refresh_ttl: bool = False, with_vector: bool = False, counters: bool = True
    ) -> Memory | None:
        """One memory by id (agentmem's or yours), or ``None`` if it does not exist (or expired).

        ``refresh_ttl`` restarts its lifetime when it has a TTL (LangGraph's refresh on read);
        ``with_vector`` also returns its stored embedding (``Memory.vector``); ``counters=False`` leaves its
        counters unread (``None``).
        """
        (memory,) = await self._run("get", self._get_many([memory_id], refresh_ttl, with_vector, counters))
        return memory  # type: ignore[no-any-return]

    async def get_many(
        self,
        memory_ids: Sequence[str],
        *,
        refresh_ttl: bool = False,
        with_vector: bool = False,
        counters: bool = True,
    ) -> builtins.list[Memory | None]:
        """Memories by id (``None`` where missing), one round trip (two with caller ids); as :meth:`get`."""
        flow = self._get_many(memory_ids, refresh_ttl, with_vector, counters)
        return list(await self._run("get_many", flow))

    async def touch(self, memory_ids: Sequence[str]) -> int:
        """Reinforce memories as if a recall had returned them (``access_count``, ``last_accessed_at``).

        Returns:
            How many of them exist.
        """
        return int(await self._run("touch", self._touch(memory_ids)))

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "newest",
        offset: int = 0,
        refresh_ttl: bool = False,
        counters: bool = True,
        **filters: Unpack[FilterArgs],
    ) -> Page:
        """Memories matching the filters, ``limit`` per page.

        Args:
            limit: the page size.
            cursor: ``page.next_cursor`` of the previous page (of the same order).
            order: ``"newest"`` first (default) or ``"oldest"`` first; ties of ``created_at`` keep the
                order the memories were written in (exact, for chat histories).
            offset: skip this many first (after the cursor, if one is given).
            refresh_ttl: restart the lifetime of the listed memories that have a TTL.
            counters: ``False`` lists the memories without their counters (``None``): less to read.
            **filters: as :meth:`recall`; a page is never short because a filter ran on the client.
        """
        page: Page = await self._run(
            "list", self._list(to_filter(filters), limit, cursor, order, offset, refresh_ttl, counters)
        )
        return page

    async def get_by_key(
        self,
        key: str,
        *,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        refresh_ttl: bool = False,
        counters: bool = True,
    ) -> Memory | None:
        """The memory written with ``remember(..., key=key)`` in this scope, or ``None`` (as :meth:`get`)."""
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        flow = self._get_by_key(key, scope, refresh_ttl, counters)
        memory: Memory | None = await self._run("get_by_key", flow)
        return memory

    async def get_many_by_key(
        self,
        keys: Sequence[str],
        *,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        refresh_ttl: bool = False,
        counters: bool = True,
    ) -> builtins.list[Memory | None]:
        """The memories written with these keys in this scope, in order (``None`` where missing).

        One round trip whatever the number of keys (LlamaIndex message ids, a LangGraph batch of gets).
        """
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        flow = self._get_many_by_key(keys, scope, refresh_ttl, counters)
        return list(await self._run("get_many_by_key", flow))

    async def forget_keys(
        self,
        keys: Sequence[str],
        *,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
    ) -> int:
        """Delete the memories written with these keys in this scope; returns how many existed."""
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        return int(await self._run("forget_keys", self._forget_keys(keys, scope)))

    # -- consolidation -----------------------------------------------------------------------------------
    async def consolidate(
        self,
        summarizer: Any,
        *,
        delete_sources: bool = True,
        summary_importance: float = 0.7,
        min_sources: int = 2,
        **selection: Unpack[SelectionArgs],
    ) -> ConsolidationResult:
        """Fold the selected memories of each scope, oldest to newest, into one summary memory.

        The summary (kind ``summary``) records what it replaces in its metadata (``consolidation_*``:
        how many sources, their time span, the selection) and is written before any source is deleted;
        an interrupted run is completed by the next one. A selection larger than the summarizer's
        ``max_input_chars`` is summarised in batches, then the batch summaries are summarised. Summaries
        and facts are never sources (unless ``kinds`` asks for summaries); a re-run over the same
        sources changes nothing.

        Args:
            summarizer: a :class:`~agentmem_core.consolidation.Summarizer` (see
                :mod:`agentmem_core.consolidation.providers`).
            delete_sources: delete the sources once the summary is written (``False`` keeps them).
            summary_importance: the summary's importance.
            min_sources: scopes with fewer selected memories are left alone.
            **selection: which memories (:class:`~agentmem_core._flows_consolidate.SelectionArgs`: the
                scope fields, ``tags`` (the summary carries them), ``kinds``, ``source``, ``metadata``,
                ``older_than`` seconds, ``max_importance``); at least one criterion is required.

        Raises:
            InvalidMemoryError: no selection criteria, or invalid values (nothing is written).
            ModelError: the summarizer failed (nothing is deleted).
        """
        flow = self._consolidate(
            summarizer, selection, delete_sources=delete_sources, summary_importance=summary_importance,
            min_sources=min_sources,
        )  # fmt: skip
        result: ConsolidationResult = await self._run("consolidate", flow)
        return result

    async def consolidate_facts(
        self,
        extractor: Any,
        *,
        fact_importance: float = 0.8,
        delete_sources: bool = False,
        reprocess: bool = False,
        **selection: Unpack[SelectionArgs],
    ) -> FactsResult:
        """Distil atomic facts from the selected memories of each scope; reconcile them by subject.

        The extractor sees the memories written since the last run (numbered, never by id) and the
        current facts; deterministic code decides: a fact is dated by the newest memory it cites, a
        restatement of what holds changes nothing, a new statement becomes a new version of its subject
        (the older one is kept as history, see :meth:`history`), a retraction ends what holds and one that
        matches nothing is reported. Facts are ordinary memories with a ``subject``: recall returns the
        current ones.

        Args:
            extractor: a :class:`~agentmem_core.consolidation.FactExtractor`.
            fact_importance: the importance of the facts written.
            delete_sources: delete the sources once their facts are written.
            reprocess: show every selected memory again, not only those since the last run.
            **selection: which memories, as for :meth:`consolidate`.

        Raises:
            InvalidMemoryError: no selection criteria, or invalid values (nothing is written).
            ModelError: the extractor failed or returned something unusable.
        """
        flow = self._consolidate_facts(
            extractor, selection, fact_importance=fact_importance, delete_sources=delete_sources,
            reprocess=reprocess,
        )  # fmt: skip
        result: FactsResult = await self._run("consolidate_facts", flow)
        return result

    # -- facts -------------------------------------------------------------------------------------------
    async def retract(
        self,
        subject: str,
        *,
        at: float | None = None,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
    ) -> str | None:
        """End the fact of ``subject`` holding at ``at`` (a tombstone: nothing replaces it).

        The fact is kept as history (``valid_until = at``). A statement of the subject dated after ``at``
        is unaffected; one dated before it is ended by it.

        Args:
            subject: the subject (folded as in ``remember(subject=...)``).
            at: when it stopped holding (Unix seconds; default now).
            namespace: the scope's namespace.
            thread_id: the scope's thread.
            agent_id: the scope's agent.
            user_id: the scope's user.

        Returns:
            The id of the fact it ended, or ``None`` when no fact of the subject held at ``at`` (reported,
            never silently dropped).
        """
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        return await self._run("retract", self._retract(subject, scope, at))  # type: ignore[no-any-return]

    async def history(
        self,
        subject: str,
        *,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
    ) -> builtins.list[Memory]:
        """Every statement of ``subject`` in this scope, oldest first (the current fact, if any, last).

        Each superseded version has ``valid_until`` and ``superseded_by``; a retracted one ``valid_until``
        alone.
        """
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        return list(await self._run("history", self._history(subject, scope)))

    async def count(self, **filters: Unpack[FilterArgs]) -> int:
        """How many live memories match the filters, exactly (any filter, unlike :meth:`stats`)."""
        return int(await self._run("count", self._count(to_filter(filters))))

    async def facets(self, **filters: Unpack[FilterArgs]) -> Facets:
        """Counts per tag and kind, and the oldest / newest creation time, of the matching memories."""
        facets: Facets = await self._run("facets", self._facets(to_filter(filters)))
        return facets

    async def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[tuple[str, ...]]:
        """Distinct namespaces that hold live memories, sorted (LangGraph's ``list_namespaces``).

        Args:
            prefix: labels a namespace starts with; ``"*"`` matches any one label.
            suffix: labels a namespace ends with; ``"*"`` matches any one label.
            max_depth: list deeper namespaces cut to this many labels (each once).
            limit: the most namespaces returned.
            offset: how many to skip first.
        """
        flow = self._list_namespaces(prefix, suffix, max_depth, limit, offset)
        return builtins.list(await self._run("list_namespaces", flow))

    # -- export / import (JSON Lines) --------------------------------------------------------------------
    async def export(
        self,
        sink: RecordSink,
        *,
        page_size: int = EXPORT_PAGE,
        progress: Callable[[int], object] | None = None,
        **filters: Unpack[FilterArgs],
    ) -> int:
        """Export the live memories matching the filters (all when none) as JSON Lines.

        The first record is a header (format version, vector dimension, store name); then one record per
        memory with every field of :class:`~agentmem_core.types.Memory`, its internal id, caller id and
        vectors (base64 of the stored float32 little-endian bytes: exact). The format is described in
        :mod:`agentmem_core._flows_transfer`. Scopes are read page by page, so memory use stays flat.

        Args:
            sink: a text stream (e.g. ``open("backup.jsonl", "w")`` or ``sys.stdout``) the lines are
                written to, a binary stream (UTF-8), or a callable receiving each record as a dict
                (called on the event loop, between round trips).
            page_size: memories read per round trip.
            progress: called with the running count of exported memories after each page.
            **filters: as :meth:`list` (scope, tags, kinds, metadata, ...).

        Returns:
            How many memories were exported (the header not counted).
        """
        return int(await self._run("export", self._export(sink, to_filter(filters), page_size, progress)))

    async def import_records(
        self,
        records: Iterable[str | bytes | Mapping[str, Any]],
        *,
        chunk_size: int = IMPORT_CHUNK,
        dry_run: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> ImportResult:
        """Import an :meth:`export`: each memory is written back exactly as it was exported.

        The same internal id, key and caller id, times, counters, write sequence, remaining lifetime
        (its ``expires_at`` is kept; memories already past it are skipped) and vectors (nothing is
        re-embedded); scopes are registered. An existing memory of the same id is replaced. Input is
        validated ``chunk_size`` records at a time before that chunk is written, so bad input raises
        before anything of its chunk (or later) is written; ``dry_run=True`` validates everything
        without writing. The store's capacity (``max_items_per_scope``) applies as to any write.

        Args:
            records: JSON lines (an open text or binary file, ``sys.stdin``, a list of strings) or
                record dicts, the header first: a sync iterable, read on the event loop.
            chunk_size: records validated, then written, at a time.
            dry_run: only validate (also checks caller ids against the store).
            progress: called with the running count of records read after each chunk.

        Returns:
            How many memories were imported, and how many had expired.

        Raises:
            InvalidMemoryError: malformed input (no header, bad JSON, an unknown format version, an
                invalid field; the message names the line), or a caller id another scope holds.
            InvalidVectorError: vectors of another dimension than the store's (or unusable ones).
        """
        result: ImportResult = await self._run("import", self._import(records, chunk_size, dry_run, progress))
        return result

    async def health(self) -> Health:
        """Check that the store can serve calls now: the backend answers and the index is serving.

        One round trip (Valkey: FT.INFO, which needs no key permission; SQLite: a count of the memories
        table), with the store's retries. It does not raise for the backend: an unreachable server,
        refused credentials or a timeout come back as ``ok=False`` with the typed ``error``; an index
        that is missing (``setup()`` not run) or still backfilling comes back as ``ok=False`` with
        ``index`` / ``ready`` saying which. Use it for readiness probes and start-up checks.
        """
        started = time.perf_counter()
        try:
            probed = await self._driver.run("health", self._health())
        except AgentMemError as exc:  # reported, not swallowed: it is the answer to the question
            return self._health_report(None, started, exc)
        return self._health_report(probed, started, None)

    async def stats(self, **filters: Unpack[FilterArgs]) -> Stats:
        """Counts per scope and kind (optionally for the scopes a filter matches)."""
        stats: Stats = await self._run("stats", self._stats(to_filter(filters) if filters else None))
        return stats

    async def scopes(self, **filters: Unpack[FilterArgs]) -> builtins.list[ScopeKey]:
        """The scopes (namespace, thread, agent, user) that hold memories."""
        return list(await self._run("scopes", self._scopes(to_filter(filters) if filters else None)))

    # -- a-prefixed twins (LangGraph style) ----------------------------------------------------------------
    # Assigned in the class body, so type checkers and IDEs see each twin with its twin's signature and
    # docstring (tests/unit/test_async_api.py checks every public coroutine has one). They are the same
    # function objects: a subclass that overrides ``recall`` should rebind ``arecall = recall`` too.
    asetup = setup
    aclose = close
    aremember = remember
    aremember_many = remember_many
    aupdate = update
    aupdate_many = update_many
    aforget = forget
    aforget_many = forget_many
    aforget_each = forget_each
    aforget_by_scope = forget_by_scope
    aset_live_config = set_live_config
    arecall = recall
    arecall_by_vector = recall_by_vector
    aget = get
    aget_many = get_many
    alist = list
    astats = stats
    ahealth = health
    ascopes = scopes
    aget_by_key = get_by_key
    aget_many_by_key = get_many_by_key
    aforget_keys = forget_keys
    acount = count
    afacets = facets
    alist_namespaces = list_namespaces
    atouch = touch
    aexport = export
    aimport_records = import_records
    aconsolidate = consolidate
    aconsolidate_facts = consolidate_facts
    aretract = retract
    ahistory = history

    # -- leases (agentmem_core._flows_lease) -------------------------------------------------------------
    async def acquire_lease(self, name: str, *, holder: str, ttl: float = 30.0) -> bool:
        """Take the lease ``name`` for ``holder`` for ``ttl`` seconds, or extend it if ``holder`` holds it.

        A lease is a lock with an expiry, shared by every process on this store's storage: while it
        holds one, no other holder gets it; it ends by itself ``ttl`` seconds after the last acquire
        (by the Valkey server's clock, or the embedded store's clock), so a holder that dies never blocks
        the others for longer. Renew it (acquire again) before ``ttl`` runs out while working.

        Args:
            name: the lease's name (1 to 256 characters, no control characters), e.g. one derived from a
                scope: ``"consolidate:<digest>"``.
            holder: who takes it: an id unique to this process or task (a random one).
            ttl: its lifetime in seconds (up to 30 days); millisecond resolution.

        Returns:
            ``True`` if ``holder`` holds the lease now, ``False`` if another holder does.

        Raises:
            InvalidMemoryError: an invalid name, holder or ttl (nothing was sent).
        """
        return bool(await self._run("acquire_lease", acquire_lease_flow(name, holder, ttl)))

    async def release_lease(self, name: str, *, holder: str) -> bool:
        """Release the lease ``name`` if ``holder`` holds it; another holder's lease is never touched.

        Returns:
            ``True`` if ``holder`` held it (it is now free), ``False`` otherwise (held by another holder,
            expired, or never taken).

        Raises:
            InvalidMemoryError: an invalid name or holder (nothing was sent).
        """
        return bool(await self._run("release_lease", release_lease_flow(name, holder)))

    aacquire_lease = acquire_lease
    arelease_lease = release_lease

    # -- the audit trail (agentmem_core._flows_audit) ------------------------------------------------------
    async def audit(
        self,
        *,
        limit: int = 100,
        before: str | None = None,
        since: float | None = None,
        until: float | None = None,
        actions: Sequence[str] | None = None,
        memory_id: str | None = None,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
    ) -> builtins.list[AuditEntry]:
        """The store's audit trail: the newest entries matching every filter given, newest first.

        Every write appends entries (see :mod:`agentmem_core.audit`; ``StoreConfig.audit`` turns it off,
        ``audit_max_entries`` caps the log, oldest dropped first). The log has no index: filters are
        applied while reading it newest first, so a narrow filter over a long log reads more of it;
        ``since`` ends the read once entries are older than it (by up to 5 minutes of clock skew).

        Args:
            limit: most entries returned (1 to 10000).
            before: only entries before this one (pass the last entry's ``position`` to page back).
            since: only entries written at or after this time (Unix seconds, the writing store's clock).
            until: only entries written at or before this time.
            actions: only these actions (``"remember"``, ``"forget"``, ...; ``audit.ACTIONS``).
            memory_id: only entries that concern this memory.
            namespace: only entries of exactly this namespace (``[]``: the root namespace).
            thread_id: only entries of this thread.
            agent_id: only entries of this agent.
            user_id: only entries of this user.

        Returns:
            Up to ``limit`` :class:`~agentmem_core.audit.AuditEntry`, newest first.

        Raises:
            InvalidMemoryError: an invalid argument, or ``since`` after ``until`` (nothing was sent).
        """
        scope = {"namespace": namespace, "thread_id": thread_id, "agent_id": agent_id, "user_id": user_id}
        flow = audit_flow(
            self._context(), limit=limit, before=before, since=since, until=until, actions=actions,
            memory_id=memory_id, scope_fields=scope,
        )  # fmt: skip
        return list(await self._run("audit", flow))

    aaudit = audit
