"""How a CrewAI ``MemoryRecord`` and CrewAI's query arguments map onto agentmem_core (pure, no I/O).

The mapping itself is documented in :mod:`agentmem_crewai.storage`; this module holds its decisions:
scope paths <-> namespaces, datetimes <-> Unix seconds, the reserved metadata keys, the filters every
protocol call sends, and the score a search reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from crewai.memory.storage.backend import EmbeddingDimensionMismatchError
from crewai.memory.types import MemoryRecord

from agentmem_core import Kind, Memory, MemoryInput
from agentmem_core.errors import InvalidMemoryError, SchemaMismatchError

__all__ = [
    "LAST_ACCESSED_KEY",
    "MATCH_ALL",
    "PRIVATE_KEY",
    "RESERVED_KEYS",
    "VISIBLE_TO_KEY",
    "PrivateRule",
    "StorageDimensionMismatchError",
    "check_dims",
    "distance_gate",
    "from_timestamp",
    "metadata_conditions",
    "namespace_to_scope",
    "record_input",
    "record_of",
    "scope_filter",
    "scope_to_namespace",
    "score_of",
    "search_filters",
    "to_timestamp",
]

PRIVATE_KEY = "crewai:private"
"""Metadata key holding ``True`` on private records (absent otherwise), so the private rule is a query."""

LAST_ACCESSED_KEY = "crewai:last_accessed"
"""Metadata key holding a record's ``last_accessed`` (ISO, naive UTC) when it differs from ``created_at``."""

VISIBLE_TO_KEY = "crewai:visible_to"
"""A ``metadata_filter`` key the storage consumes: ``{"crewai:visible_to": source}`` pushes CrewAI's
private rule into the search (public records, plus the private ones of ``source``; ``None``: public only)."""

RESERVED_KEYS = frozenset((PRIVATE_KEY, LAST_ACCESSED_KEY, VISIBLE_TO_KEY))

MATCH_ALL: Mapping[str, Any] = {"kinds": tuple(Kind)}
"""A filter every memory matches (each has a kind): the core refuses an empty ``forget_by_scope``."""


class StorageDimensionMismatchError(EmbeddingDimensionMismatchError, SchemaMismatchError):
    """CrewAI's ``EmbeddingDimensionMismatchError`` that is also an agentmem error.

    Raised when a vector's length differs from the store's dimension, or when the index on the server
    was created for another dimension (``stored_dim`` is then the server's).
    """


@dataclass(frozen=True)
class PrivateRule:
    """CrewAI's visibility rule, pushed into a search: public records, plus the private ones of ``viewer``.

    ``viewer=None`` sees public records only (``Memory.recall``'s rule for a caller without a source).
    """

    viewer: str | None = None

    def any_of(self) -> list[dict[str, Any]]:
        """The core ``any_of`` groups: not private, or written by the viewer."""
        groups: list[dict[str, Any]] = [{"metadata": {PRIVATE_KEY: {"$ne": True}}}]
        if self.viewer is not None:
            groups.append({"source": self.viewer})
        return groups


# -- scopes and times -----------------------------------------------------------------------------------
def scope_to_namespace(scope: str | None) -> tuple[str, ...]:
    """A scope path as namespace labels: ``"/crew/research"`` -> ``("crew", "research")``, ``"/"`` -> ``()``.

    Empty labels are dropped (``"crew//research/"`` is ``/crew/research``, as CrewAI's
    ``normalize_scope_path`` has it).

    Raises:
        InvalidMemoryError: for a scope that is not a string.
    """
    if scope is None:
        return ()
    if not isinstance(scope, str):
        raise InvalidMemoryError(f"a scope must be a path string such as '/crew/research', got {scope!r}")
    return tuple(label for label in scope.split("/") if label)


def namespace_to_scope(namespace: Sequence[str]) -> str:
    """The scope path of a namespace: ``("crew", "research")`` -> ``"/crew/research"``, ``()`` -> ``"/"``."""
    return "/" + "/".join(namespace)


def to_timestamp(moment: datetime) -> float:
    """Unix seconds of a datetime; naive ones are UTC (CrewAI computes them with ``utcnow()``).

    Raises:
        InvalidMemoryError: for a value that is not a datetime.
    """
    if not isinstance(moment, datetime):
        raise InvalidMemoryError(f"expected a datetime, got {moment!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def from_timestamp(seconds: float) -> datetime:
    """A naive UTC datetime (what CrewAI's records hold) from Unix seconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


# -- records ------------------------------------------------------------------------------------------------
def check_dims(vector: Sequence[float], dims: int) -> None:
    """Raise CrewAI's dimension error for a vector of another length than the store's.

    Raises:
        StorageDimensionMismatchError: the lengths differ.
    """
    if len(vector) != dims:
        raise StorageDimensionMismatchError(dims, len(vector))


def _vector(record: MemoryRecord, dims: int) -> list[float] | None:
    embedding = record.embedding
    # No embedding, or LanceDB's all-zero placeholder: stored unembedded (listed, never searched).
    if not embedding or not any(embedding):
        return None
    check_dims(embedding, dims)
    return embedding  # the core validates and normalises it (numpy), no copy here


def record_input(record: MemoryRecord, dims: int) -> tuple[MemoryInput, list[float] | None]:
    """The core memory a record is written as, and its vector (``None``: stored unembedded).

    Raises:
        InvalidMemoryError: for a record the core cannot hold, or metadata using a reserved key.
        StorageDimensionMismatchError: the embedding has another dimension than the store.
    """
    if not isinstance(record, MemoryRecord):
        raise InvalidMemoryError(f"expected a crewai MemoryRecord, got {type(record).__name__}")
    reserved = sorted(RESERVED_KEYS & set(record.metadata))
    if reserved:
        raise InvalidMemoryError(f"metadata keys {reserved} are reserved by agentmem_crewai")
    metadata: dict[str, Any] = dict(record.metadata)
    if record.private:
        metadata[PRIVATE_KEY] = True
    last_accessed = _naive_utc(record.last_accessed)
    if last_accessed != _naive_utc(record.created_at):
        metadata[LAST_ACCESSED_KEY] = last_accessed.isoformat()
    vector = _vector(record, dims)
    item = MemoryInput(
        content=record.content,
        importance=record.importance,
        tags=list(record.categories),
        kind=Kind.SEMANTIC,
        source=record.source or None,  # LanceDB stores None as "" and reads "" back as None
        metadata=metadata,
        namespace=scope_to_namespace(record.scope),
        created_at=to_timestamp(record.created_at),
        id=record.id,
        embed=vector is not None,
    )
    return item, vector


def record_of(memory: Memory) -> MemoryRecord:
    """The CrewAI record of a core memory (the inverse of :func:`record_input`).

    ``last_accessed`` is the later of the record's own (as last saved) and the core's last
    reinforcement (``touch``), so a ``touch_records`` after a save shows, and a save after a touch too.
    """
    metadata = dict(memory.metadata)
    private = metadata.pop(PRIVATE_KEY, False) is True
    saved = metadata.pop(LAST_ACCESSED_KEY, None)
    created = from_timestamp(memory.created_at)
    last_accessed = datetime.fromisoformat(saved) if isinstance(saved, str) else created
    if memory.access_count and memory.last_accessed_at is not None:  # None: read without counters
        last_accessed = max(last_accessed, from_timestamp(memory.last_accessed_at))
    return MemoryRecord(
        id=memory.id,
        content=memory.content,
        scope=namespace_to_scope(memory.namespace),
        categories=list(memory.tags),
        metadata=metadata,
        importance=memory.importance,
        created_at=created,
        last_accessed=last_accessed,
        embedding=None if memory.vector is None else list(memory.vector),
        source=memory.source,
        private=private,
    )


# -- filters ------------------------------------------------------------------------------------------------
def scope_filter(scope_prefix: str | None) -> dict[str, Any]:
    """The core filter of a scope prefix: that scope and every scope below it (``{}`` for the root).

    A namespace prefix compares whole labels, so ``/crew/research`` never matches ``/crew/researchers``.
    """
    namespace = scope_to_namespace(scope_prefix)
    return {"namespace_prefix": namespace} if namespace else {}


def metadata_conditions(
    metadata_filter: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], PrivateRule | None, dict[str, Any]]:
    """Split CrewAI's ``metadata_filter`` into core conditions, a private rule, and client-side checks.

    CrewAI compares ``record.metadata.get(key) == value`` for every key. Each pair becomes an explicit
    ``$eq`` (a value shaped like ``{"$gt": 1}`` is compared as a value, never read as an operator), except
    where the core's semantics differ: a dotted key (a nested path in the core, a plain key in CrewAI)
    or a ``None`` value (CrewAI matches a missing key too) are checked on the client instead. The
    :data:`VISIBLE_TO_KEY` pseudo-key becomes a :class:`PrivateRule`.

    Returns:
        ``(core metadata conditions, private rule or None, conditions checked on the client)``.

    Raises:
        InvalidMemoryError: for a filter that is not a mapping of string keys.
    """
    if not metadata_filter:
        return {}, None, {}
    if not isinstance(metadata_filter, Mapping):
        raise InvalidMemoryError(f"metadata_filter must be a mapping, got {type(metadata_filter).__name__}")
    pushed: dict[str, Any] = {}
    client: dict[str, Any] = {}
    rule = None
    for key, value in metadata_filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidMemoryError(f"metadata_filter keys must be non-empty strings, got {key!r}")
        if key == VISIBLE_TO_KEY:
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidMemoryError(f"{VISIBLE_TO_KEY} takes a source string or None, got {value!r}")
            rule = PrivateRule(value)
        elif key in (PRIVATE_KEY, LAST_ACCESSED_KEY):
            raise InvalidMemoryError(f"metadata key {key!r} is reserved by agentmem_crewai")
        elif "." in key or value is None:
            client[key] = value
        else:
            pushed[key] = {"$eq": value}
    return pushed, rule, client


def client_matches(record: MemoryRecord, client: Mapping[str, Any]) -> bool:
    """CrewAI's own metadata test for the conditions the core does not evaluate the same way."""
    return all(record.metadata.get(key) == value for key, value in client.items())


def search_filters(
    scope_prefix: str | None,
    categories: Sequence[str] | None,
    metadata: Mapping[str, Any],
    rule: PrivateRule | None,
) -> dict[str, Any]:
    """The core filter arguments of a search (or a delete, without ``rule``).

    ``categories`` is "any of"; an empty list means no category filter, as in CrewAI's backends.

    Raises:
        InvalidMemoryError: for categories that are not a list of strings.
    """
    args = scope_filter(scope_prefix)
    if categories:
        if isinstance(categories, str):
            raise InvalidMemoryError("categories must be a list of strings, not a single string")
        args["tags"] = list(categories)
    if metadata:
        args["metadata"] = dict(metadata)
    if rule is not None:
        args["any_of"] = rule.any_of()
    return args


def distance_gate(min_score: float) -> float | None:
    """The core's cosine-distance threshold for a minimum score (``None``: no gate).

    The score is cosine similarity clamped to ``[0, 1]`` (:func:`score_of`), so ``score >= min_score``
    is ``distance <= 1 - min_score``.

    Raises:
        InvalidMemoryError: for a min_score that is not a finite number.
    """
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score):
        raise InvalidMemoryError(f"min_score must be a finite number, got {min_score!r}")
    if min_score <= 0:
        return None
    return max(0.0, 1.0 - float(min_score))


def score_of(distance: float) -> float:
    """A search score in ``[0, 1]``, higher is better: cosine similarity ``1 - distance``, clamped at 0."""
    return min(1.0, max(0.0, 1.0 - distance))
