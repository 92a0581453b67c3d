"""The single source of truth for the memory hash and its search index.

One :class:`IndexSpec` generates the FT.CREATE command, the field names used by queries, the RETURN
list of recall, and the hash encoding/decoding of memories. Only the portable subset is emitted
(``ON HASH PREFIX 1 … SCHEMA``, one FLOAT32 COSINE vector, ``TAG SEPARATOR |`` and ``NUMERIC`` fields,
no SORTABLE/TEXT), see shared/docs/valkey-search-compat.md §7.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentmem_core._encoding import Keys
from agentmem_core.config import IndexConfig, Kind
from agentmem_core.errors import BackendError
from agentmem_core.facts import decode_state
from agentmem_core.types import Memory, frozen_from

__all__ = ["CHILD_EXPIRES_AT", "DISTANCE_ALIAS", "F", "IndexSpec", "NEVER", "format_number", "rank_fields"]

NEVER = 10_000_000_000_000
"""``x_expires_at`` of a memory that never expires (year ~318857): keeps "not expired" a single leaf."""

CHILD_EXPIRES_AT = -1
"""``x_expires_at`` of a memory's child vector document (:attr:`F.VX`): long past, so a filter-only
query sees a child neither under "not expired" nor outside "expired" (``_counts`` counts the live
memories as all matches minus the expired ones; a child matching the memory's tags is among both)."""

DISTANCE_ALIAS = "am_distance"
"""KNN score alias: neither a schema attribute nor a hash field (RediSearch rejects clashes)."""


class F:
    """Hash field names (snake_case, one casing everywhere)."""

    # indexed
    EMBEDDING = "embedding"
    KIND = "kind"
    IMPORTANCE = "importance"
    X_CREATED_AT = "x_created_at"  # indexed copies: engines may return indexed numbers rounded
    X_EXPIRES_AT = "x_expires_at"
    X_NS = "x_ns"  # exact namespace token
    X_NS_ANC = "x_ns_anc"  # token of every namespace prefix
    X_THREAD = "x_thread"
    X_AGENT = "x_agent"
    X_USER = "x_user"
    X_SOURCE = "x_source"
    X_TAGS = "x_tags"
    X_META = "x_meta"
    X_TERMS = "x_terms"  # distinct analysed terms of content (the lexical channel's postings)
    # stored only
    LEX = "lex"  # analysed term sequence of content (term frequencies and length for BM25)
    CONTENT = "content"
    CREATED_AT = "created_at"
    EXPIRES_AT = "expires_at"
    NAMESPACE = "namespace"
    THREAD_ID = "thread_id"
    AGENT_ID = "agent_id"
    USER_ID = "user_id"
    SOURCE = "source"
    TAGS = "tags"
    METADATA = "metadata"
    KEY = "key"
    UPDATED_AT = "updated_at"
    VX = "vx"
    """The memory's vectors after the first (``remember(texts=...)``), concatenated float32 blobs; each is
    also indexed as a child document ``<memory key>:<n>`` (``NV`` of them) that KNN finds."""
    NV = "nv"
    FACT = "fact"
    """A fact's subject and supersession state (``agentmem_core.facts``); absent on other memories."""
    OPT = "opt"
    """``"<seq>|<ttl>|<flags>|<caller id>"``, packed into one field because every field a recall reads
    costs server time on every hit: the scope's write sequence (set by the write script; ties of
    created_at keep write order), the lifetime in seconds it was (last) given (``refresh_ttl`` restarts
    it), ``n`` in flags when it is not embedded (``t`` when its vectors are of ``texts``, not of its
    content), and the caller's global id (``remember(id=...)``; last,
    since it may hold ``|``)."""
    # counters (in the separate stats hash)
    ACCESS_COUNT = "access_count"
    LAST_ACCESSED_AT = "last_accessed_at"
    DUPLICATE_COUNT = "duplicate_count"


FieldType = Literal["VECTOR", "TAG", "NUMERIC"]

_INDEXED: tuple[tuple[str, FieldType], ...] = (
    (F.EMBEDDING, "VECTOR"),
    (F.KIND, "TAG"),
    (F.X_NS, "TAG"),
    (F.X_NS_ANC, "TAG"),
    (F.X_THREAD, "TAG"),
    (F.X_AGENT, "TAG"),
    (F.X_USER, "TAG"),
    (F.X_SOURCE, "TAG"),
    (F.X_TAGS, "TAG"),
    (F.X_META, "TAG"),
    (F.X_TERMS, "TAG"),
    (F.IMPORTANCE, "NUMERIC"),
    (F.X_CREATED_AT, "NUMERIC"),
    (F.X_EXPIRES_AT, "NUMERIC"),
)

STORED_FIELDS: tuple[str, ...] = (
    F.CONTENT,
    F.KIND,
    F.IMPORTANCE,
    F.CREATED_AT,
    F.UPDATED_AT,
    F.EXPIRES_AT,
    F.NAMESPACE,
    F.THREAD_ID,
    F.AGENT_ID,
    F.USER_ID,
    F.SOURCE,
    F.TAGS,
    F.METADATA,
    F.KEY,
    F.OPT,
    F.FACT,
)
"""Fields a read returns (never the vector blob: parsing it is most of a naive recall's cost), in the order
:func:`decode_values` unpacks them."""

_STORED_COUNT = len(STORED_FIELDS)

STATS_FIELDS: tuple[str, ...] = (F.ACCESS_COUNT, F.LAST_ACCESSED_AT, F.DUPLICATE_COUNT)


def numeric_field(key: str) -> str:
    """The NUMERIC index field that mirrors a declared metadata key (``StoreConfig.numeric_fields``).

    Named by a digest, so any key (dots, spaces, unicode) makes a valid, portable attribute name.
    """
    return "n_" + hashlib.blake2b(key.encode("utf-8"), digest_size=6, person=b"agentmem-num").hexdigest()


def numeric_value(value: Any) -> str | None:
    """The NUMERIC field text of a metadata value: numbers only (``True`` is no number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return format_number(value)


def format_number(value: float) -> str:
    """Fixed-point decimal for NUMERIC fields and ranges (scientific notation is not portable)."""
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class IndexSpec:
    """The index of one store."""

    keys: Keys
    config: IndexConfig
    numeric: tuple[str, ...] = ()
    """Metadata keys mirrored in NUMERIC fields (``StoreConfig.numeric_fields``)."""

    @property
    def name(self) -> str:
        """Index name."""
        return self.keys.index

    def create_command(self) -> tuple[str | int, ...]:
        """The FT.CREATE command (portable subset)."""
        args: list[str | int] = ["FT.CREATE", self.name, "ON", "HASH", "PREFIX", 1, self.keys.memory_prefix]
        args.append("SCHEMA")
        for name, ftype in _INDEXED:
            if ftype == "VECTOR":
                params: list[str | int] = [
                    "TYPE",
                    "FLOAT32",
                    "DIM",
                    self.config.dims,
                    "DISTANCE_METRIC",
                    "COSINE",
                ]
                if self.config.created_algorithm == "HNSW":
                    params += ["M", self.config.m, "EF_CONSTRUCTION", self.config.ef_construction]
                args += [name, "VECTOR", self.config.created_algorithm, len(params), *params]
            elif ftype == "TAG":
                args += [name, "TAG", "SEPARATOR", "|"]
            else:
                args += [name, "NUMERIC"]
        for key in self.numeric:
            args += [numeric_field(key), "NUMERIC"]
        return tuple(args)


def rank_fields(*, lexical: bool, metadata: bool = False, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The fields a recall's search returns per candidate: what ranking and filtering need, no more.

    Never the content or the vector: the engine's per-row field loading is most of a wide FT.SEARCH's
    cost, and parsing it most of a naive client's. ``expires_at`` is a stored hash field, so a logically
    expired key still comes back as a nil row (RETURN at least one real field), and the client checks it.
    ``extra`` are the stored fields a client-side filter reads (``MemoryFilter.client_fields``).
    """
    out = [F.IMPORTANCE, F.CREATED_AT, F.EXPIRES_AT, F.FACT]  # FACT: a fact stands for its sources
    if metadata and F.METADATA not in extra:
        out.append(F.METADATA)
    out.extend(f for f in extra if f not in out)
    if lexical:
        out.append(F.LEX)
    return tuple(out)


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8")
    return str(raw)


_EMPTY_JSON = (b"[]", b"{}", "[]", "{}")


def _json(raw: Any, default: Any) -> Any:
    if raw is None or raw in _EMPTY_JSON:  # the common case, without the JSON parser
        return default
    text = _text(raw)
    return default if not text else json.loads(text)


_KINDS: dict[Any, Kind] = {**{k.value: k for k in Kind}, **{k.value.encode(): k for k in Kind}}


def _opt(raw: Any) -> str | None:
    """A text field where empty means "not set"."""
    if not raw:
        return None
    return raw.decode("utf-8") if type(raw) is bytes else str(raw)


def lookup(metadata: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """``(present, value)`` of a filter key: the top-level key when there is one, else a dotted path.

    ``"a.b"`` names ``metadata["a"]["b"]`` unless the metadata has a top-level key ``"a.b"`` itself.
    """
    if key in metadata:
        return True, metadata[key]
    if "." not in key:
        return False, None
    node: Any = metadata
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def pack_opt_rest(ttl: float | None, embedded: bool, external: str | None, from_texts: bool = False) -> str:
    """The ``opt`` field without its leading sequence (the write script prepends it)."""
    flags = ("t" if from_texts else "") if embedded else "n"
    return f"{'' if ttl is None else format_number(ttl)}|{flags}|{external or ''}"


def opt_from_texts(raw: Any) -> bool:
    """Whether a stored ``opt`` field says the vectors are of ``texts`` (not of the content)."""
    if not raw:
        return False
    text = raw.decode("utf-8") if type(raw) is bytes else str(raw)
    parts = text.split("|", 3)
    return len(parts) > 2 and "t" in parts[2]


def unpack_opt(raw: Any) -> tuple[int, float | None, bool, str | None]:
    """``(sequence, ttl, embedded, caller id)`` of a stored ``opt`` field (missing: defaults)."""
    if not raw:
        return 0, None, True, None
    text = raw.decode("utf-8") if type(raw) is bytes else str(raw)
    seq, ttl, flags, external = text.split("|", 3)
    return int(seq) if seq else 0, float(ttl) if ttl else None, "n" not in flags, external or None


@functools.lru_cache(maxsize=2048)
def _labels(raw: Any) -> tuple[str, ...]:
    """A stored namespace or tag list (JSON list of labels), as a tuple.

    Memoised: a page's memories mostly share them, and a tuple of labels is immutable, so every caller
    may hold the same one.
    """
    return tuple(_json(raw, ()))


_MEMO_METADATA = 256
"""Stored metadata texts up to this length are parsed once (memoised) when their values are all scalars."""

_FLAT_MEMO: dict[str | bytes, dict[str, Any]] = {}
"""Parsed flat metadata by stored text (a chat message's status): never handed out, only copies of it."""

_FLAT_MEMO_SIZE = 1024
"""Entries :data:`_FLAT_MEMO` holds before it starts over (a page's memories mostly share a few)."""


def decode_metadata(raw: Any) -> Any:
    """A stored ``metadata`` field (JSON text, ``str`` or ``bytes``; missing or empty = ``{}``).

    Every call returns its own dict (a caller may change it). The text is parsed once: a flat one (all
    values scalars, up to :data:`_MEMO_METADATA` long) is memoised and copied, any other is returned as
    parsed.
    """
    if not isinstance(raw, (str, bytes)) or raw in _EMPTY_JSON:
        return _json(raw, {})
    flat = _FLAT_MEMO.get(raw)
    if flat is not None:
        return dict(flat)  # scalars only: a shallow copy shares nothing mutable
    value = _json(raw, {})
    if (
        len(raw) <= _MEMO_METADATA
        and isinstance(value, dict)
        and all(v is None or isinstance(v, (str, int, float, bool)) for v in value.values())
    ):
        if len(_FLAT_MEMO) >= _FLAT_MEMO_SIZE:
            _FLAT_MEMO.clear()
        _FLAT_MEMO[raw] = value
        return dict(value)
    return value


def decode_memory(memory_id: str, fields: Mapping[str, Any], stats: Sequence[Any] | None) -> Memory:
    """Build a :class:`Memory` from stored fields by name (``str`` or ``bytes`` values) and its counters.

    ``stats`` ``None``: the counters were not read, and the memory's counters are ``None``.

    Raises:
        BackendError: when the stored hash is not a memory this version can read.
    """
    get = fields.get
    return decode_values(memory_id, [get(name) for name in STORED_FIELDS], stats)


def decode_values(memory_id: str, values: Sequence[Any], stats: Sequence[Any] | None) -> Memory:
    """Build a :class:`Memory` from the values of :data:`STORED_FIELDS`, in that order, and its counters.

    What a read by field list returns (``ReadMemories``, ``ScopePage``); values past the stored fields
    (vectors) are ignored. This runs for every hit and every listed memory, so it unpacks by position,
    calls no helper per field where an expression does, and builds the instance from one dict
    (:func:`agentmem_core.types.frozen_from`: the same value, just as immutable).

    Raises:
        BackendError: when the stored hash is not a memory this version can read.
    """
    try:
        (
            content, raw_kind, importance, created, updated, expires, namespace, thread_id, agent_id,
            user_id, source, tags, metadata, key, opt, raw_fact,
        ) = values[:_STORED_COUNT]  # fmt: skip
        created = float(created) if created else 0.0  # float() reads bytes and str alike
        expires = float(expires) if expires else NEVER
        if stats is None:
            access_count = last_accessed = duplicates = None
        else:
            access, last, dup = stats
            access_count, duplicates = int(access) if access else 0, int(dup) if dup else 0
            last_accessed = float(last) if last else created
        sequence, ttl, embedded, external = unpack_opt(opt)
        fact = decode_state(raw_fact) if raw_fact else None
        kind = _KINDS.get(raw_kind) if raw_kind else Kind.SEMANTIC
        if kind is None:
            kind = Kind(_text(raw_kind))
        return frozen_from(
            Memory,
            {
                "id": external or memory_id,
                "content": _opt(content) or "",
                "kind": kind,
                "importance": float(importance) if importance else 0.5,
                "tags": _labels(tags),
                "namespace": _labels(namespace),
                "thread_id": _opt(thread_id) if thread_id else None,
                "agent_id": _opt(agent_id) if agent_id else None,
                "user_id": _opt(user_id) if user_id else None,
                "source": _opt(source) if source else None,
                "key": _opt(key) if key else None,
                "metadata": decode_metadata(metadata),
                "created_at": created,
                "updated_at": float(updated) if updated else created,
                "expires_at": None if expires >= NEVER else expires,
                "access_count": access_count,
                "last_accessed_at": last_accessed,
                "duplicate_count": duplicates,
                "sequence": sequence,
                "embedded": embedded,
                "ttl": ttl,
                "vector": None,
                "vectors": None,
                "subject": None if fact is None else fact.subject,
                "valid_until": None if fact is None else fact.valid_until,
                "superseded_by": None if fact is None else fact.superseded_by,
                "derived_from": () if fact is None else fact.sources,
            },
        )
    except (ValueError, TypeError, UnicodeDecodeError, KeyError) as exc:
        raise BackendError(f"memory {memory_id} has an unreadable field: {exc}") from exc
