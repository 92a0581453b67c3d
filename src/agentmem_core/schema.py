"""The single source of truth for the memory hash and its search index.

One :class:`IndexSpec` generates the FT.CREATE command, the field names used by queries, the RETURN
list of recall, and the hash encoding/decoding of memories. Only the portable subset is emitted
(``ON HASH PREFIX 1 … SCHEMA``, one FLOAT32 COSINE vector, ``TAG SEPARATOR |`` and ``NUMERIC`` fields,
no SORTABLE/TEXT), see shared/docs/valkey-search-compat.md §7.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentmem_core._encoding import Keys
from agentmem_core.config import IndexConfig, Kind
from agentmem_core.errors import BackendError
from agentmem_core.types import Memory

__all__ = ["DISTANCE_ALIAS", "F", "IndexSpec", "NEVER", "format_number"]

NEVER = 10_000_000_000_000
"""``x_expires_at`` of a memory that never expires (year ~318857): keeps "not expired" a single leaf."""

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
)
"""Fields a read returns (never the vector blob: parsing it is most of a naive recall's cost)."""

STATS_FIELDS: tuple[str, ...] = (F.ACCESS_COUNT, F.LAST_ACCESSED_AT, F.DUPLICATE_COUNT)


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
                if self.config.algorithm == "HNSW":
                    params += ["M", self.config.m, "EF_CONSTRUCTION", self.config.ef_construction]
                args += [name, "VECTOR", self.config.algorithm, len(params), *params]
            elif ftype == "TAG":
                args += [name, "TAG", "SEPARATOR", "|"]
            else:
                args += [name, "NUMERIC"]
        return tuple(args)

    @property
    def return_fields(self) -> tuple[str, ...]:
        """RETURN list of a recall's KNN channel: the distance alias, the stored fields and the terms."""
        return (DISTANCE_ALIAS, *STORED_FIELDS, F.LEX)

    @property
    def term_return_fields(self) -> tuple[str, ...]:
        """RETURN list of a recall's per-term lexical queries (no distance: they carry no KNN clause)."""
        return (*STORED_FIELDS, F.LEX)


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8")
    return str(raw)


def _float(raw: Any, default: float = 0.0) -> float:
    text = _text(raw)
    return default if text is None or text == "" else float(text)


def _json(raw: Any, default: Any) -> Any:
    text = _text(raw)
    return default if not text else json.loads(text)


def decode_memory(memory_id: str, fields: Mapping[str, Any], stats: Sequence[Any] | None) -> Memory:
    """Build a :class:`Memory` from stored fields (``str`` or ``bytes`` values) and its counters.

    Raises:
        BackendError: when the stored hash is not a memory this version can read.
    """
    try:
        created = _float(fields.get(F.CREATED_AT))
        expires = _float(fields.get(F.EXPIRES_AT), NEVER)
        access = last = dup = None
        if stats is not None:
            access, last, dup = (_text(v) for v in stats)
        kind_text = _text(fields.get(F.KIND)) or Kind.SEMANTIC.value
        return Memory(
            id=memory_id,
            content=_text(fields.get(F.CONTENT)) or "",
            kind=Kind(kind_text),
            importance=_float(fields.get(F.IMPORTANCE), 0.5),
            tags=tuple(_json(fields.get(F.TAGS), [])),
            namespace=tuple(_json(fields.get(F.NAMESPACE), [])),
            thread_id=_text(fields.get(F.THREAD_ID)) or None,
            agent_id=_text(fields.get(F.AGENT_ID)) or None,
            user_id=_text(fields.get(F.USER_ID)) or None,
            source=_text(fields.get(F.SOURCE)) or None,
            key=_text(fields.get(F.KEY)) or None,
            metadata=_json(fields.get(F.METADATA), {}),
            created_at=created,
            updated_at=_float(fields.get(F.UPDATED_AT), created),
            expires_at=None if expires >= NEVER else expires,
            access_count=int(access) if access else 0,
            last_accessed_at=float(last) if last else created,
            duplicate_count=int(dup) if dup else 0,
        )
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BackendError(f"memory {memory_id} has an unreadable field: {exc}") from exc
