"""Pure reply parsers (RESP2 shapes; values may be ``bytes`` or ``str``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from agentmem_core.errors import BackendError
from agentmem_core.schema import DISTANCE_ALIAS

__all__ = [
    "SearchRow",
    "as_text",
    "index_health",
    "pairs",
    "parse_search",
    "parse_vector_algorithm",
    "parse_vector_dim",
    "returned_rows",
]


def as_text(value: Any) -> str:
    """Decode a reply value to ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def pairs(reply: Any) -> dict[str, Any]:
    """A flat ``[k, v, k, v]`` reply (or an already-parsed mapping) as a ``str``-keyed dict."""
    if reply is None:
        return {}
    if isinstance(reply, Mapping):
        return {as_text(k): v for k, v in reply.items()}
    if not isinstance(reply, (list, tuple)):
        raise BackendError(f"expected a list of field/value pairs, got {type(reply).__name__}")
    it = iter(reply)
    # hot path of every search reply: no per-name function call
    return {(k.decode() if type(k) is bytes else as_text(k)): v for k, v in zip(it, it)}


class SearchRow(NamedTuple):
    """One search hit: the memory ``id``, its cosine ``distance`` (KNN; ``0.0`` otherwise) and ``fields``."""

    id: str
    distance: float
    fields: dict[str, Any]


_LOCAL_LEN = 16
"""Characters of a memory key after its ``{scope tag}`` (the local id; ``_encoding.new_local_id``)."""


def parse_search(reply: Any, prefix_len: int) -> list[SearchRow]:
    """Parse a KNN FT.SEARCH reply into rows sorted by ascending distance (ties by id).

    Skips nil rows (logically expired keys), duplicate keys and non-finite distances; RediSearch does not
    sort KNN results, so sorting happens here. The row of a child vector document (``<memory key>:<n>``,
    a memory's second and later vectors) counts for its memory: one row per memory, its closest.

    Args:
        reply: the FT.SEARCH reply.
        prefix_len: the length of the store's memory key prefix (``Keys.memory_prefix``): a memory's id is
            read from its key (``<prefix>{<tag>}<local>``) at fixed offsets.

    Raises:
        BackendError: for a non-list reply (valkey-search 1.0 reports timeouts as a status string).
    """
    if not isinstance(reply, (list, tuple)) or not reply:
        raise BackendError(f"FT.SEARCH failed: {as_text(reply) if reply is not None else 'no reply'}")
    rows: list[SearchRow] = []
    seen: dict[str, int] = {}
    tag_at, local_at = prefix_len + 1, prefix_len + 2 + _LOCAL_LEN  # "{" tag "}" local [":" n]
    for i in range(1, len(reply) - 1, 2):
        raw_key = reply[i]
        key = raw_key.decode() if type(raw_key) is bytes else as_text(raw_key)
        raw = reply[i + 1]
        if not raw:
            continue
        memory_id = key[tag_at : tag_at + _LOCAL_LEN] + key[local_at : local_at + _LOCAL_LEN]
        fields = pairs(raw)
        distance_raw = fields.pop(DISTANCE_ALIAS, None)
        if distance_raw is None:
            continue
        try:
            distance = float(distance_raw)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(distance):
            continue
        at = seen.get(memory_id)
        if at is None:
            seen[memory_id] = len(rows)
            rows.append(SearchRow(memory_id, distance, fields))
        elif distance < rows[at].distance:
            rows[at] = SearchRow(memory_id, distance, fields)
    rows.sort(key=lambda r: (r.distance, r.id))
    return rows


def returned_rows(reply: Any) -> int:
    """How many rows a search reply carried, nil rows (logically expired keys) included.

    Whether a search came back full is decided on this count, never on the parsed rows: a page whose
    rows were dropped as expired was still full, and the next page may hold live matches.
    """
    return (len(reply) - 1) // 2 if isinstance(reply, (list, tuple)) and reply else 0


def _vector_attributes(info: Any) -> list[Sequence[Any]]:
    """The FT.INFO attribute arrays of vector fields (either engine's layout)."""
    out: list[Sequence[Any]] = []
    for attribute in pairs(info).get("attributes") or []:
        if not isinstance(attribute, (list, tuple)):
            continue
        if any(isinstance(x, (bytes, str)) and as_text(x).upper() == "VECTOR" for x in attribute):
            out.append(attribute)
    return out


def parse_vector_dim(info: Any) -> int | None:
    """The vector dimension from FT.INFO (RediSearch flat ``dim`` or valkey-search nested ``dimensions``)."""
    for attribute in _vector_attributes(info):
        found = _find_dim(attribute)
        if found is not None:
            return found
    return None


def parse_vector_algorithm(info: Any) -> str | None:
    """The vector index algorithm (``"HNSW"``, ``"FLAT"``...) from FT.INFO; ``None`` when it says none.

    RediSearch lists ``algorithm HNSW`` flat in the attribute; valkey-search nests it:
    ``index [... algorithm [name HNSW m 16 ...]]``.
    """
    for attribute in _vector_attributes(info):
        found = _find_algorithm(attribute)
        if found is not None:
            return found
    return None


def _find_algorithm(node: Sequence[Any]) -> str | None:
    for j in range(len(node) - 1):
        name = node[j]
        if not (isinstance(name, (bytes, str)) and as_text(name).lower() == "algorithm"):
            continue
        value = node[j + 1]
        if isinstance(value, (bytes, str)):
            return as_text(value).upper()
        if isinstance(value, (list, tuple)):
            for k in range(len(value) - 1):
                key, named = value[k], value[k + 1]
                if isinstance(key, (bytes, str)) and as_text(key).lower() == "name":
                    if isinstance(named, (bytes, str)):
                        return as_text(named).upper()
    for child in node:
        if isinstance(child, (list, tuple)):
            found = _find_algorithm(child)
            if found is not None:
                return found
    return None


def has_attribute(info: Any, field: str) -> bool:
    """Whether FT.INFO lists an attribute named ``field`` (either engine's attribute layout)."""
    for attribute in pairs(info).get("attributes") or []:
        if not isinstance(attribute, (list, tuple)):
            continue
        flat = [as_text(x).lower() if isinstance(x, (bytes, str)) else x for x in attribute]
        if field.lower() in flat:
            return True
    return False


def parse_filter_search(reply: Any) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """Parse a filter-only FT.SEARCH reply into ``(total matches, [(key, fields)])``.

    Skips nil rows (logically expired keys) and duplicate keys; the total is the engine's count of every
    match, not only of the rows returned (``LIMIT 0 0`` makes it a pure count).

    Raises:
        BackendError: for a non-list reply or a non-integer total.
    """
    if not isinstance(reply, (list, tuple)) or not reply:
        raise BackendError(f"FT.SEARCH failed: {as_text(reply) if reply is not None else 'no reply'}")
    try:
        total = int(as_text(reply[0]))
    except (TypeError, ValueError) as exc:
        raise BackendError(f"FT.SEARCH returned an unreadable total: {reply[0]!r}") from exc
    rows: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for i in range(1, len(reply) - 1, 2):
        key = as_text(reply[i])
        raw = reply[i + 1]
        if not raw or key in seen:
            continue
        seen.add(key)
        rows.append((key, pairs(raw)))
    return total, rows


def _find_dim(node: Sequence[Any]) -> int | None:
    for j in range(len(node) - 1):
        name = node[j]
        if isinstance(name, (bytes, str)) and as_text(name).lower() in ("dim", "dimensions"):
            try:
                return int(float(as_text(node[j + 1])))
            except ValueError:
                continue
    for child in node:
        if isinstance(child, (list, tuple)):
            found = _find_dim(child)
            if found is not None:
                return found
    return None


def _count(value: Any) -> int | None:
    # numbers come as integers on one engine and strings on the other ("12", "12.0"); parse as int(float())
    try:
        return int(float(as_text(value)))
    except (TypeError, ValueError):
        return None


def index_health(reply: Any) -> tuple[bool, int | None, int]:
    """``(ready, documents, failures)`` from an FT.INFO reply, on either engine (parsed defensively).

    RediSearch says ``indexing`` (0/1) and ``percent_indexed``; valkey-search says
    ``backfill_in_progress`` ("0"/"1") and ``state`` (``ready``, ``backfill_in_progress``,
    ``backfill_paused_by_oom``). An index that reports none of them is taken as ready. ``num_docs`` and
    ``hash_indexing_failures`` are integers or strings depending on the engine and version.
    """
    info = pairs(reply)
    ready = True
    if "indexing" in info:
        ready = _count(info["indexing"]) == 0
    if "percent_indexed" in info:
        percent = _count(float(as_text(info["percent_indexed"])) * 100)
        ready = ready and percent is not None and percent >= 100
    if "backfill_in_progress" in info:
        ready = ready and _count(info["backfill_in_progress"]) == 0
    if "state" in info:
        ready = ready and as_text(info["state"]).lower() == "ready"
    failures = _count(info.get("hash_indexing_failures", 0))
    return ready, _count(info["num_docs"]) if "num_docs" in info else None, failures or 0
