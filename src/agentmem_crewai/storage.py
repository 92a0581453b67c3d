"""``ValkeyStorage``: a CrewAI memory ``StorageBackend`` on agentmem_core (Valkey, or any core backend).

Usage::

    from crewai import Memory
    from agentmem_crewai import ValkeyStorage

    storage = ValkeyStorage.from_url("valkey://localhost:6379", name="crew", dims=1536)
    memory = Memory(storage=storage, embedder=my_embedder)

or by a string, after ``agentmem_crewai.register_valkey_storage()``:
``Memory(storage="valkey://localhost:6379/0?name=crew&dims=1536")``.

Mapping of a ``MemoryRecord`` onto one core memory (``agentmem_core.Memory``), so the same memories
are visible through the core API and the other adapters:

* ``id`` -> the core caller id (``remember(id=...)``): ``get``/``update``/``forget`` find it without its
  scope; ``Memory.id`` is the same uuid string. (agentmem's own id shape, 32 lowercase hex characters,
  is refused as a caller id: use ``str(uuid4())``, as CrewAI does.) Memories written through the core
  without a caller id show their agentmem id.
* ``scope`` -> ``namespace``, one label per path segment: ``"/crew/research"`` is ``("crew", "research")``
  and ``"/"`` is ``()``. A scope prefix is a namespace prefix: it matches that scope and the scopes
  below it, whole labels only, so ``/crew/research`` never matches ``/crew/researchers`` (LanceDB's
  ``LIKE 'prefix%'`` does). Scopes come back normalised (``"crew//research/"`` -> ``"/crew/research"``,
  CrewAI's ``normalize_scope_path``); a namespace label holding ``/`` (written by another adapter)
  shows as two segments.
* ``categories`` -> ``tags`` (in order; a repeated category is kept once). "Any of" filters are tag
  filters; ``list_categories`` and ``get_scope_info`` are the core's ``facets``.
* ``metadata`` -> ``metadata`` (JSON; a filter ``{"k": v}`` is the core's ``{"k": {"$eq": v}}``, pushed
  into the query: JSON equality, so ``1 == 1.0`` but ``True != 1``; a ``None`` value, which CrewAI
  also matches on a missing key, and a dotted key, a plain key in CrewAI but a path in the core, are
  checked on the client). Two reserved keys ride along and are removed on read: ``"crewai:private": true`` on
  private records, and ``"crewai:last_accessed"`` (ISO, naive UTC) when it differs from ``created_at``.
  A record's metadata may not use them (nor ``"crewai:visible_to"``, see below).
* ``importance`` -> ``importance`` (stored to 6 decimals); ``source`` -> ``source`` (``""`` reads back
  as ``None``, as in LanceDB); ``private`` -> the reserved metadata key above.
* ``created_at`` -> ``created_at`` (Unix seconds, microsecond exact; naive datetimes are UTC and
  come back naive UTC). ``last_accessed`` -> the later of the saved value and the core's
  ``last_accessed_at``, which ``touch_records`` (the core's ``touch``) sets to now.
* ``embedding`` -> the memory's vector, which the core keeps normalised: ``get_record`` returns
  ``v / |v|`` in float32 precision (the direction, all that cosine search and CrewAI's re-saves use;
  within one float32 ulp of ``v`` for a unit vector). A record without one, or with LanceDB's all-zero
  placeholder, is stored unembedded (listed, counted, never searched) and reads back ``None``.
  ``get_record`` returns the embedding; ``search`` and ``list_records`` return records without it.
* every memory is of core kind ``semantic`` (no TTL unless the core store configures one).

Index: a storage that creates the store's index makes it exact (``FLAT``), as LanceDB's scan is:
searches return the true nearest records (the differential tests compare orders), and a save costs no
graph insertion (``benchmarks/crewai_bench.py``: at 100k records a FLAT search is about 10x faster than
LanceDB's and a save of 10 at least as fast, where an HNSW insertion alone costs more than LanceDB's
whole save). An index that exists (made by another adapter or the core) is used with the algorithm it
has. Past a few hundred thousand records per store, pass ``core_options={"index": IndexConfig(dims,
algorithm="HNSW")}`` (or ``?index=hnsw`` in a factory URL) for approximate, sub-linear search; an
algorithm given explicitly must be the existing index's (``setup()`` raises ``SchemaMismatchError``).

Search: the core's KNN over the vectors, ranked by cosine similarity only (Memory applies its own
recency and importance on top), with the scope prefix, categories, metadata filter and ``min_score``
inside the query. The score is cosine similarity clamped to ``[0, 1]`` (``1 - cosine distance``), so
``min_score`` is the core threshold ``distance <= 1 - min_score``. LanceDB's score is
``1 / (1 + L2 distance)``: the order is the same for unit vectors, the values are not.

Private records: CrewAI's ``Memory`` drops private records of other sources after ``search`` returns,
so they can crowd visible ones out of a page. Push the rule into the query with a storage bound to a
viewer (``storage.for_viewer("researcher")``, ``private_view=PrivateRule(...)``), or per call with the
filter key ``metadata_filter={"crewai:visible_to": "researcher"}`` (``None``: public records only).

Deletes take every criterion together (AND); ``record_ids=[]`` deletes nothing, and no criterion at
all deletes every record. ``update`` replaces the record (a new scope moves it: the core's
``update(scope=...)``), creating it when missing, as LanceDB does.

Limits: a storage bound to a viewer applies the private rule to every search, also for
``Memory.recall(include_private=True)`` (use the unbound storage there); records written through the
core without a caller id (agentmem's 32-hex ids) can be read, searched, touched and deleted, not
replaced; saving an id that lives in another scope is an error (``update`` moves it); a repeated
category is stored once; the core's predicate budget bounds how many filters one
search combines (``QueryTooComplexError`` beyond it, 8 predicates on valkey-search 1.1, 64 on
RediSearch); ``list_scopes`` lists at most 20,000 children of one scope.

The storage needs the embedding dimension (``dims``); a vector of another length, or an index on the
server made for another dimension, raises CrewAI's ``EmbeddingDimensionMismatchError`` (as
:class:`StorageDimensionMismatchError`, also an agentmem error). The constructor does no I/O; the
first call runs the core's ``setup()`` (or call :meth:`ValkeyStorage.setup`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from crewai.memory.types import MemoryRecord, ScopeInfo
from typing_extensions import Self

from agentmem_core import AsyncMemoryStore, DimensionMismatchError, EngineInfo, IndexConfig, MemoryStore
from agentmem_core.errors import ConfigurationError, EmbeddingError
from agentmem_crewai._mapping import PrivateRule, StorageDimensionMismatchError
from agentmem_crewai._plan import (
    Flow,
    Settings,
    count_flow,
    delete_flow,
    get_record_flow,
    list_categories_flow,
    list_records_flow,
    list_scopes_flow,
    reset_flow,
    save_flow,
    scope_info_flow,
    search_flow,
    touch_flow,
    update_flow,
)

__all__ = ["ValkeyStorage", "never_embeds"]

T = TypeVar("T")

_RESERVED_OPTIONS = ("name", "embedder", "dims", "owns_client")


def _check_same_store(core: MemoryStore, acore: AsyncMemoryStore) -> None:
    """``acore`` must be the async view of ``core``'s store: the same name and the same index config.

    The same config, not only a compatible one: with ``algorithm=None`` on one side, which algorithm the
    index gets would depend on which of the two ran ``setup()`` first.
    """
    try:
        theirs = (acore.config.name, acore.config.index)
    except ConfigurationError:  # its dims are known after its setup(), which checks them then
        return
    ours = (core.config.name, core.config.index)
    if theirs != ours:
        raise ConfigurationError(
            f"acore (store {theirs[0]!r}, {theirs[1]}) is not the same store as core ({ours[0]!r}, "
            f"{ours[1]}): give both the same name and index (ValkeyStorage.from_url's default index is "
            "IndexConfig(dims, default_algorithm='FLAT'))"
        )


def never_embeds(texts: list[str]) -> list[list[float]]:
    """An embedder for a core store used by the storage: CrewAI passes every vector, so none is needed.

    Build an ``AsyncMemoryStore`` for ``acore=`` with it (and ``dims=``). It raises if called.

    Raises:
        EmbeddingError: always.
    """
    raise EmbeddingError("ValkeyStorage does not embed text: CrewAI's Memory passes the vectors")


class ValkeyStorage:
    """CrewAI's memory ``StorageBackend`` over an agentmem core store (mapping in the module docs).

    Args:
        core: the core store (:class:`~agentmem_core.MemoryStore`, any backend).
        dims: the embedding dimension; default: the core store's.
        acore: an :class:`~agentmem_core.AsyncMemoryStore` on the same store for ``asave`` /
            ``asearch`` / ``adelete`` (its client is bound to your event loop); without it they run
            the sync methods in a worker thread.
        private_view: push CrewAI's private rule into every search (see :meth:`for_viewer`).
        owns_core: :meth:`close` closes ``core`` (set by :meth:`from_url`).

    Raises:
        ConfigurationError: ``dims`` disagrees with the core store's, or neither knows it.
    """

    def __init__(
        self,
        core: MemoryStore,
        *,
        dims: int | None = None,
        acore: AsyncMemoryStore | None = None,
        private_view: PrivateRule | None = None,
        owns_core: bool = False,
    ) -> None:
        if not isinstance(core, MemoryStore):
            raise ConfigurationError(f"core must be an agentmem_core.MemoryStore, got {type(core).__name__}")
        if acore is not None and not isinstance(acore, AsyncMemoryStore):
            raise ConfigurationError(f"acore must be an AsyncMemoryStore, got {type(acore).__name__}")
        if private_view is not None and not isinstance(private_view, PrivateRule):
            raise ConfigurationError("private_view must be a PrivateRule")
        try:
            core_dims: int | None = core.config.index.dims
        except ConfigurationError:  # a function embedder without dims: known after the core's setup()
            core_dims = None
        if dims is None:
            dims = core_dims
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigurationError(f"dims must be a positive int (the embedding dimension), got {dims!r}")
        if core_dims is not None and core_dims != dims:
            raise ConfigurationError(f"dims={dims} differs from the core store's dimension {core_dims}")
        if acore is not None and core_dims is not None:
            _check_same_store(core, acore)
        self.core = core
        self.acore = acore
        self.settings = Settings(dims=dims, private_rule=private_view)
        self._owns_core = owns_core
        self._ready = False
        self._aready = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        dims: int,
        name: str = "crewai",
        private_view: PrivateRule | None = None,
        core_options: Mapping[str, Any] | None = None,
    ) -> ValkeyStorage:
        """A storage on a core store built by ``MemoryStore.from_url`` (closed by :meth:`close`).

        Args:
            url: the core store URL (``valkey://host:port/db``, ``valkeys://`` for TLS).
            dims: the embedding dimension of CrewAI's embedder.
            name: the core store name (``[A-Za-z0-9_-]{1,48}``).
            private_view: push the private rule into every search.
            core_options: more ``MemoryStore.from_url`` options (``cluster=True``, ``max_content_chars``,
                ``index=IndexConfig(dims, algorithm="HNSW")``...; by default a new index is ``FLAT``).
        """
        options = dict(core_options or {})
        reserved = sorted(set(options) & set(_RESERVED_OPTIONS))
        if reserved:
            raise ConfigurationError(f"core_options cannot set {reserved}: the storage sets them")
        # exact, as LanceDB is, when this storage creates the index; an existing one is used as it is
        options.setdefault("index", IndexConfig(dims=dims, default_algorithm="FLAT"))
        core = MemoryStore.from_url(url, name=name, embedder=never_embeds, dims=dims, **options)
        return cls(core, dims=dims, private_view=private_view, owns_core=True)

    def for_viewer(self, source: str | None) -> ValkeyStorage:
        """A view of the same core store whose searches return only what ``source`` may see.

        Public records, plus the private records written by ``source`` (``None``: public only), decided
        inside the query: private records of others never take a place in a page.
        """
        view = ValkeyStorage(
            self.core, dims=self.settings.dims, acore=self.acore, private_view=PrivateRule(source)
        )
        view._ready, view._aready = self._ready, self._aready
        return view

    # -- lifecycle -------------------------------------------------------------------------------------
    def setup(self) -> EngineInfo:
        """Create the core's index, or check the existing one (also run by the first call).

        Raises:
            StorageDimensionMismatchError: the index on the server has another dimension.
        """
        try:
            info = self.core.setup()
        except DimensionMismatchError as exc:
            raise StorageDimensionMismatchError(exc.existing, exc.configured) from exc
        self._ready = True
        return info

    async def asetup(self) -> EngineInfo:
        """:meth:`setup` on the async core store (or in a worker thread without one)."""
        if self.acore is None:
            return await asyncio.to_thread(self.setup)
        try:
            info = await self.acore.setup()
        except DimensionMismatchError as exc:
            raise StorageDimensionMismatchError(exc.existing, exc.configured) from exc
        self._aready = True
        return info

    def close(self) -> None:
        """Close the core store if this storage created it (``Memory.close()`` calls this)."""
        if self._owns_core:
            self.core.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # A storage is a handle on shared state (a connection pool): copies of a Memory share it.
        return self

    # -- drivers -----------------------------------------------------------------------------------------
    def _run(self, flow: Flow[T]) -> T:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.setup()
        reply: Any = None
        while True:
            try:
                call = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = getattr(self.core, call.method)(*call.args, **call.kwargs)

    async def _arun(self, flow: Flow[T]) -> T:
        if self.acore is None:
            return await asyncio.to_thread(self._run, flow)
        if not self._aready:
            await self.asetup()
        reply: Any = None
        while True:
            try:
                call = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = await getattr(self.acore, call.method)(*call.args, **call.kwargs)

    # -- the StorageBackend protocol -----------------------------------------------------------------
    def save(self, records: list[MemoryRecord]) -> None:
        """Write records (validated all before any write; a record's id replaces its earlier version)."""
        self._run(save_flow(self.settings, records))

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """The ``limit`` nearest records with their scores in ``[0, 1]``, best first."""
        flow = search_flow(
            self.settings, query_embedding, scope_prefix, categories, metadata_filter, limit, min_score
        )
        return self._run(flow)

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Delete the records matching every given criterion (all records without any); how many."""
        return self._run(delete_flow(scope_prefix, categories, record_ids, older_than, metadata_filter))

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with the same id (moving it if its scope changed)."""
        self._run(update_flow(self.settings, record))

    def touch_records(self, record_ids: list[str]) -> None:
        """Set ``last_accessed`` of the records to now (``Memory.recall`` calls this on its results)."""
        self._run(touch_flow(record_ids))

    def get_record(self, record_id: str) -> MemoryRecord | None:
        """The record with this id, with its embedding, or ``None``."""
        return self._run(get_record_flow(record_id))

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records in the scope and below, newest first, ``offset`` skipped, at most ``limit``."""
        return self._run(list_records_flow(scope_prefix, limit, offset))

    def get_scope_info(self, scope: str) -> ScopeInfo:
        """Record count, categories, date range and immediate children of the scope (and below)."""
        return self._run(scope_info_flow(scope))

    def list_scopes(self, parent: str = "/") -> list[str]:
        """The immediate child scopes of ``parent`` that hold records, sorted."""
        return self._run(list_scopes_flow(parent))

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        """Categories of the records in the scope (and below) with their record counts."""
        return self._run(list_categories_flow(scope_prefix))

    def count(self, scope_prefix: str | None = None) -> int:
        """How many records the scope and the scopes below it hold (all records for ``None``)."""
        return self._run(count_flow(scope_prefix))

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every record of the scope and below (every record for ``None`` or ``"/"``)."""
        self._run(reset_flow(scope_prefix))

    async def asave(self, records: list[MemoryRecord]) -> None:
        """:meth:`save`, on the async core store when one was given."""
        await self._arun(save_flow(self.settings, records))

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """:meth:`search`, on the async core store when one was given."""
        flow = search_flow(
            self.settings, query_embedding, scope_prefix, categories, metadata_filter, limit, min_score
        )
        return await self._arun(flow)

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """:meth:`delete`, on the async core store when one was given."""
        return await self._arun(
            delete_flow(scope_prefix, categories, record_ids, older_than, metadata_filter)
        )
