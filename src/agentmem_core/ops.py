"""The storage seam: typed operations every backend executes, and what each returns.

Flows (``agentmem_core._flows_*``) hold every decision (validation, filters, scoring, ranking, eviction
policy, dedup and TTL rules) and yield batches of these operations; a backend executes a batch (one round
trip on Valkey, one transaction on SQLite) and answers one result per operation, in order, with a failed
operation's :class:`~agentmem_core.errors.AgentMemError` in its place. Backends decide nothing: they
translate each operation to their storage and its reply back into the result documented here. Ranking
never happens in a backend, so every backend ranks alike.

Vocabulary shared by the operations:

* **id**: an internal memory id (32 hex: the scope tag, then the local id), never a caller's id.
* **tag**: a scope tag (16 hex, ``ScopeKey.tag``); the scope's **bookkeeping** is its members ordered by
  ``created_at`` and by ``importance``, its per-kind counts, its write sequence, and its expiring members.
* **fields**: a memory's stored fields, by the names of :class:`agentmem_core.schema.F`, text values (the
  vectors ``embedding`` / ``vx`` are bytes). Indexed fields (``F.X_*``, ``kind``, ``importance``, numeric
  mirrors) hold the tokens and numbers filters match: a backend indexes TAG fields as ``|``-separated
  tokens and NUMERIC fields as numbers, exactly as :class:`agentmem_core.schema.IndexSpec` declares.
* **leaves**: a filter as :data:`agentmem_core._conditions.Leaf` values (AND of leaves; ``TagIn``: the
  field holds one of the tokens; ``NumRange``: the number lies in the range; ``AnyOf``: an OR of
  AND-groups). The backend renders them to its query language.
* **live**: a memory is live until its ``expires_at``; the clock is the flow's ``now`` (passed in), so an
  injected clock decides, not the server's. Expired memories leave the bookkeeping when an operation that
  purges (the ones that say so) next touches their scope.
* **counters**: ``(access_count, last_accessed_at, duplicate_count)`` as stored text or ``None``.

A second or later vector of a memory (``remember(texts=...)``) is searchable by :class:`Knn` only: a
search row always names its memory, once, at its closest vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from agentmem_core._conditions import Leaf
from agentmem_core._encoding import ScopeKey
from agentmem_core._parse import SearchRow
from agentmem_core.schema import IndexSpec

__all__ = [
    "AcquireLease",
    "AllScopes",
    "ClaimId",
    "Delete",
    "Deleted",
    "DropScopeIndexMembers",
    "EvictionSample",
    "Exists",
    "Fetch",
    "Fetched",
    "FilterSearch",
    "Knn",
    "KnnResult",
    "LeaseOp",
    "AuditAppend",
    "AuditOp",
    "AuditRange",
    "Merge",
    "Op",
    "Probe",
    "Probed",
    "ReadConfig",
    "ReadCounters",
    "ReadMemories",
    "Refresh",
    "Register",
    "ReleaseIds",
    "ReleaseLease",
    "ResolveIds",
    "ScopeCounts",
    "TermStats",
    "ScopeDescriptors",
    "ScopeIndexRange",
    "ScopeMembers",
    "ScopeSize",
    "ScopeByTime",
    "ScopePage",
    "SearchRow",
    "Setup",
    "Unregister",
    "Update",
    "Write",
    "WriteConfig",
    "WriteMany",
    "WriteCounters",
    "WriteResult",
]


# -- search ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Knn:
    """The ``pool`` nearest memories to ``vector`` among those matching ``leaves``.

    ``vector``: little-endian float32 bytes of a unit vector. Rows carry the named ``fields`` (those a
    memory has). Memories past their TTL may still come back (the flow drops them by ``expires_at``).

    ``batches``: a planning hint (``agentmem_core._knn_plan``): the filter matches a large share of the
    index, so an engine that would compute a distance per match (RediSearch's ad hoc plan) should walk
    its graph in batches instead; backends that plan their own searches ignore it.

    Result: :class:`KnnResult`.
    """

    leaves: tuple[Leaf, ...]
    vector: bytes
    pool: int
    fields: tuple[str, ...]
    batches: bool = False


@dataclass(frozen=True, slots=True)
class KnnResult:
    """What a :class:`Knn` found.

    Rows closest first (ties by id), one per memory; ``returned``: rows the search produced before
    dropping unreadable ones and collapsing several vectors of a memory (``returned < pool`` means the
    matches are exhausted).
    """

    rows: list[SearchRow]
    returned: int


@dataclass(frozen=True, slots=True)
class FilterSearch:
    """Memories matching ``leaves`` (a filter-only search): how many, and up to ``limit`` of them.

    ``leaves`` hold the expiry leaf (``x_expires_at`` after now), except in a count of every match that
    is paired with a count of the expired ones (``_counts``). Result: ``(total, rows)``, rows
    as ``(id, fields)`` with the named ``fields``, in no particular order; ``limit=0`` counts only.
    """

    leaves: tuple[Leaf, ...]
    limit: int
    fields: tuple[str, ...] = ()


# -- memories --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Write:
    """Write one memory (insert, or replace the memory of the same id), atomically.

    Purges the scope first. Replacing drops the old memory's fields, bookkeeping entries and extra
    vectors. ``created_at`` empty keeps the replaced memory's creation time (in ``created_at`` and
    ``x_created_at``; ``now`` when there was none); the write sequence is kept too, else the scope's next.
    The stored ``opt`` is ``"<sequence>|" + opt_rest``. ``vectors``: the first is ``embedding``, the rest
    extra vectors (``vx``, ``nv``). ``ttl_ms > 0``: the memory (and its counters, when they exist) expire
    then, and it is an expiring member until ``expires_at``; a new memory's counters are reset.

    ``count_up_to``: the result's ``scope_size`` need only be exact up to this many; past it any number
    above it will do (a backend whose count is linear in the scope stops there). ``None``: exact.

    Result: :class:`WriteResult`.
    """

    id: str
    tag: str
    now: str
    created_at: str
    ttl_ms: int
    expires_at: str
    kind: str
    importance: str
    opt_rest: str
    fields: Mapping[str, str]
    vectors: tuple[bytes, ...] = ()
    count_up_to: int | None = None


@dataclass(frozen=True, slots=True)
class WriteMany:
    """Several writes (:class:`Write`) of ONE scope (one ``tag``), applied in order, each atomically.

    Exactly what the same writes do one after another; a backend may send them as one call (on Valkey one
    script call, which saves each memory's own command on the client and the server). Result: one
    :class:`WriteResult` per write, in order.
    """

    writes: tuple[Write, ...]

    def __post_init__(self) -> None:
        if not self.writes or any(w.tag != self.writes[0].tag for w in self.writes):
            raise ValueError("WriteMany takes one or more writes of one scope")


class WriteResult(NamedTuple):
    """``is_new``: no memory of that id existed; ``scope_size``: memories in the scope after the write."""

    is_new: bool
    scope_size: int


@dataclass(frozen=True, slots=True)
class Merge:
    """A near-duplicate write into memory ``id``.

    ``duplicate_count + 1``, last access now, and the new ``tags`` (``(json text, token)`` pairs) appended
    when missing (``updated_at`` = now then).

    Result: the new duplicate count, or ``-1`` when the memory is gone.
    """

    id: str
    now: str
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Update:
    """Change memory ``id`` in place, atomically; nothing when it is gone or past its ``expires_at``.

    ``set_fields`` are written and ``removed`` deleted; ``kind`` / ``importance`` (``""`` = keep) move its
    bookkeeping; ``ttl_ms`` (``None`` = keep) restarts its lifetime until ``expires_at`` and writes
    ``ttl_seconds`` into ``opt``; ``vector`` replaces its first vector. Extra vectors follow the change.

    ``x_meta`` holds two token families: the metadata's (``set_fields``/``removed`` replace them) and a
    fact's (those starting with ``f``, see ``agentmem_core.facts``), which a metadata change keeps;
    ``fact_tokens`` (``None`` = keep) replaces the fact's family alone. ``x_meta`` left empty is deleted.

    Result: ``True``, or ``False`` when the memory does not exist.
    """

    id: str
    now: str
    kind: str
    importance: str
    ttl_ms: int | None
    expires_at: str
    ttl_seconds: str
    set_fields: Mapping[str, str]
    removed: tuple[str, ...] = ()
    vector: bytes | None = None
    fact_tokens: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete memories of scope ``tag``, atomically.

    In the given order while more than ``keep`` remain (``-1``: all), at most ``limit`` of them (``-1``: no
    limit); purges first. Ids that are gone are still dropped from the bookkeeping.

    Result: :class:`Deleted`.
    """

    tag: str
    ids: tuple[str, ...]
    now: str
    keep: int = -1
    limit: int = -1


class Deleted(NamedTuple):
    """``remaining``: memories left in the scope; ``removed``: ids deleted; ``external``: their caller ids."""

    remaining: int
    removed: list[str]
    external: list[str]


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read memories for recall, and reinforce them.

    Their counters as they were, and ``fields``; when ``reinforce``, also ``access_count + 1`` and
    ``last_accessed_at = now`` (atomic per memory, exact under concurrency).

    Result: :data:`Fetched` per id found (memories that are gone are left out).
    """

    ids: tuple[str, ...]
    reinforce: bool
    now: str
    fields: tuple[str, ...] = ()


Fetched = dict[str, tuple[list[Any], list[Any]]]
"""``id -> (counters before the call, field values in the order asked)``."""


@dataclass(frozen=True, slots=True)
class Refresh:
    """Restart the lifetime of memories that still exist.

    Per entry ``(id, kind, expires_at, ttl_ms)``; ``expires_at`` and ``x_expires_at`` are rewritten (extra
    vectors and counters follow).

    Result: how many were refreshed.
    """

    entries: tuple[tuple[str, str, str, int], ...]


@dataclass(frozen=True, slots=True)
class ReadMemories:
    """Read stored fields of memories.

    Per id: the named ``fields`` (``None`` where missing; ``None`` for the whole memory when it does not
    exist) and, when ``counters``, its counters. Expired memories are returned as stored (the flow decides).

    Result: ``list[tuple[list | None, list | None]]`` in order.
    """

    ids: tuple[str, ...]
    fields: tuple[str, ...]
    counters: bool = False


@dataclass(frozen=True, slots=True)
class ReadCounters:
    """All counters of memory ``id`` as a ``{name: text}`` dict (empty when it has none)."""

    id: str


@dataclass(frozen=True, slots=True)
class WriteCounters:
    """Set counters of memory ``id`` (a moved memory keeps its access history). Result: ``None``."""

    id: str
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Exists:
    """Whether memory ``id`` exists (its key, expired or not, until the backend reclaims it). Result: bool."""

    id: str


# -- caller ids --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResolveIds:
    """The scope tag holding each caller id (``None``: unclaimed). Result: ``list[str | None]``."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClaimId:
    """Claim caller id ``id`` for scope ``tag``: taken when unclaimed, held by ``tag`` or by ``stale``.

    Result: ``""`` when claimed, else the tag of the scope holding it.
    """

    id: str
    tag: str
    stale: str = ""


@dataclass(frozen=True, slots=True)
class ReleaseIds:
    """Release caller ids held by scope ``tag`` (not the ones another scope claimed since). Result: count."""

    tag: str
    ids: tuple[str, ...]


# -- scopes ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScopeCounts:
    """Purge scope ``tag``, then: ``(live memories, {kind: count})`` (kinds with a zero count may appear)."""

    tag: str
    now: str


@dataclass(frozen=True, slots=True)
class TermStats:
    """The lexical channel's statistics over whole scopes (live memories, and those holding each term).

    The live memories of scopes ``tags`` at ``now``, and how many of them hold each of ``terms`` in
    ``x_terms``. ``leaves``: the filter leaves (no expiry leaf) that select exactly the memories of
    these scopes, for a backend that counts them from its postings rather than from counts kept at
    write time.

    Result: ``(live memories, [count per term, in order])``, exactly what :class:`FilterSearch` counts
    of the same selection give, or ``None`` when the backend's kept counts cannot tell (the caller
    counts with :class:`FilterSearch` then).
    """

    tags: tuple[str, ...]
    leaves: tuple[Leaf, ...]
    terms: tuple[str, ...]
    now: float


@dataclass(frozen=True, slots=True)
class ScopeSize:
    """How many memories scope ``tag``'s bookkeeping holds (no purge). Result: int."""

    tag: str


@dataclass(frozen=True, slots=True)
class ScopeMembers:
    """Ids of scope ``tag`` by ``created_at`` (ties by id), ranks ``start .. stop`` inclusive. Result: ids."""

    tag: str
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class ScopeByTime:
    """A scope's memories by creation time.

    Up to ``limit`` ``(id, created_at)`` of scope ``tag`` from ``bound`` (inclusive; ``None``: the end)
    towards older (``newest``) or newer memories, by ``created_at`` (ties by id, reversed when newest).
    """

    tag: str
    newest: bool
    bound: float | None
    limit: int


@dataclass(frozen=True, slots=True)
class ScopePage:
    """:class:`ScopeByTime` and a :class:`ReadMemories` of what it lists, in one step (a page read).

    Result: per listed memory, in :class:`ScopeByTime`'s order, ``(id, created_at, values, counters)``:
    ``values`` the named ``fields`` (``None`` for a memory that no longer exists), ``counters`` its
    counters when ``counters`` (else ``None``), as :class:`ReadMemories` gives them.
    """

    tag: str
    newest: bool
    bound: float | None
    limit: int
    fields: tuple[str, ...]
    counters: bool = False


@dataclass(frozen=True, slots=True)
class EvictionSample:
    """The sample capacity eviction reads.

    ``(memories, memories ranked by importance, the n oldest as (id, created_at),
    the n least important as (id, importance))`` of scope ``tag``.
    """

    tag: str
    n: int


# -- the scope registry and its index -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Register:
    """Put a scope in the registry (tag -> descriptor) and its members in the scope index. Result: None."""

    scope: ScopeKey
    members: tuple[bytes, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Unregister:
    """Remove a scope from the registry and its members from the scope index. Result: None."""

    scope: ScopeKey
    members: tuple[bytes, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AllScopes:
    """The whole registry: ``{tag: descriptor dict}``."""


@dataclass(frozen=True, slots=True)
class ScopeDescriptors:
    """The registry's descriptor of each tag (``None``: not registered). Result: ``list[dict | None]``."""

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScopeIndexRange:
    """A range of the scope index.

    Members (bytes, sorted bytewise) in a lexicographic range, as Valkey's ZRANGEBYLEX takes
    it (``start`` / ``end`` begin with ``[`` inclusive, ``(`` exclusive, or are ``-`` / ``+``); at most
    ``limit`` (``None``: all). Result: ``list[bytes]``.
    """

    start: bytes
    end: bytes
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class DropScopeIndexMembers:
    """Remove members from the scope index. Result: how many were there."""

    members: tuple[bytes, ...]


# -- setup and live config ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Setup:
    """Create the store's storage (or validate what exists) for ``spec``, alone in its batch.

    ``hybrid``: the config asks for the lexical channel. Result:
    :class:`agentmem_core._flows_admin.SetupResult` (the engine, the spec in force, whether hybrid
    recall is available); ``DimensionMismatchError`` / ``SchemaMismatchError`` when what exists disagrees.
    """

    spec: IndexSpec
    hybrid: bool


@dataclass(frozen=True, slots=True)
class ReadConfig:
    """The live-config values as ``{name: text}``."""


@dataclass(frozen=True, slots=True)
class WriteConfig:
    """Set live-config values (``{name: text}``). Result: None."""

    values: Mapping[str, str]


# -- health --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Probe:
    """Check that the storage answers and the store's index is there and serving. Result: :class:`Probed`.

    An index that was never set up comes back as ``IndexNotFoundError`` in place.
    """


class Probed(NamedTuple):
    """What a :class:`Probe` found.

    ``ready``: the index serves every document it holds (False while it backfills after a create or a
    restart: searches then see a subset). ``documents``: how many the index holds (on a cluster, the
    node asked; ``None`` when the engine does not say). ``failures``: records the index could not take.
    """

    ready: bool
    documents: int | None
    failures: int


Op = (
    Knn | FilterSearch | Write | WriteMany | Merge | Update | Delete | Fetch | Refresh | ReadMemories
    | ReadCounters | WriteCounters | Exists | ResolveIds | ClaimId | ReleaseIds | ScopeCounts | TermStats
    | ScopeSize | ScopeMembers
    | ScopeByTime | ScopePage | EvictionSample | Register | Unregister | AllScopes | ScopeDescriptors
    | ScopeIndexRange | DropScopeIndexMembers | Setup | ReadConfig | WriteConfig | Probe
)  # fmt: skip
"""Every storage operation."""


# -- leases --------------------------------------------------------------------------------------------------
# A lease is a lock with an expiry: whoever holds it may run something no other process may run at the same
# time (consolidating one scope), and it ends by itself when its holder dies. It expires by the BACKEND's
# clock (Valkey: the server's, by PX; SQLite: the store's clock, real time unless one was injected), never
# by a flow's ``now``: every process that shares the storage must see the same holder at the same instant.
@dataclass(frozen=True, slots=True)
class AcquireLease:
    """Take lease ``name`` for ``holder`` for ``ttl_ms`` milliseconds, atomically.

    Taken when nobody holds it (never taken, released, or expired); when ``holder`` already holds it, its
    expiry is pushed back to ``ttl_ms`` from now (a renewal). Never taken from another live holder.
    ``name`` and ``holder`` are validated by the flow; ``ttl_ms >= 1``.

    Result: ``True`` when ``holder`` holds the lease after the call, ``False`` when another holder does.
    """

    name: str
    holder: str
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class ReleaseLease:
    """Release lease ``name`` if ``holder`` holds it (compare-and-delete, atomically).

    Another holder's lease is never released; an expired lease is no longer anyone's.

    Result: ``True`` when ``holder`` held the lease and it is now free, else ``False``.
    """

    name: str
    holder: str


LeaseOp = AcquireLease | ReleaseLease
"""The lease operations (storage operations as those of :data:`Op`)."""


# -- the audit trail -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditAppend:
    """Append ``entries`` to the store's audit log, then trim it to about ``cap`` entries (oldest first).

    Each entry is a mapping of text fields (``agentmem_core.audit.encode_entry``), stored as given. The
    backend assigns each entry a position that increases with every append (Valkey: the stream id; SQLite:
    a counter), unique in the store. Valkey trims approximately (``MAXLEN ~``), never below ``cap``.

    Result: the positions assigned, in order.
    """

    entries: tuple[Mapping[str, str], ...]
    cap: int


@dataclass(frozen=True, slots=True)
class AuditRange:
    """Up to ``count`` audit entries, newest first, strictly before position ``before``.

    ``before=None`` starts from the newest entry.

    Result: ``[(position, {field: text})]``, newest first; fewer than ``count`` means the log is exhausted.
    """

    before: str | None
    count: int


AuditOp = AuditAppend | AuditRange
"""The audit-trail operations (storage operations as those of :data:`Op`)."""
