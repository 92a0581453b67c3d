"""Pure reply parsers (RESP2 shapes; values may be ``bytes`` or ``str``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentmem_core.errors import BackendError
from agentmem_core.schema import DISTANCE_ALIAS

__all__ = ["SearchRow", "as_text", "pairs", "parse_search", "parse_vector_dim"]


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
    return {as_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


@dataclass(frozen=True)
class SearchRow:
    """One FT.SEARCH hit."""

    key: str
    distance: float
    fields: dict[str, Any]


def parse_search(reply: Any) -> list[SearchRow]:
    """Parse a KNN FT.SEARCH reply into rows sorted by ascending distance.

    Skips nil rows (logically expired keys), duplicate keys and non-finite distances; RediSearch does not
    sort KNN results, so sorting happens here.

    Raises:
        BackendError: for a non-list reply (valkey-search 1.0 reports timeouts as a status string).
    """
    if not isinstance(reply, (list, tuple)) or not reply:
        raise BackendError(f"FT.SEARCH failed: {as_text(reply) if reply is not None else 'no reply'}")
    rows: list[SearchRow] = []
    seen: set[str] = set()
    for i in range(1, len(reply) - 1, 2):
        key = as_text(reply[i])
        raw = reply[i + 1]
        if not raw or key in seen:
            continue
        fields = pairs(raw)
        distance_raw = fields.pop(DISTANCE_ALIAS, None)
        if distance_raw is None:
            continue
        try:
            distance = float(as_text(distance_raw))
        except ValueError:
            continue
        if not math.isfinite(distance):
            continue
        seen.add(key)
        rows.append(SearchRow(key, distance, fields))
    rows.sort(key=lambda r: (r.distance, r.key))
    return rows


def parse_vector_dim(info: Any) -> int | None:
    """The vector dimension from FT.INFO (RediSearch flat ``dim`` or valkey-search nested ``dimensions``)."""
    top = pairs(info)
    attributes = top.get("attributes") or []
    for attribute in attributes:
        if not isinstance(attribute, (list, tuple)):
            continue
        flat = [as_text(x) if isinstance(x, (bytes, str)) else x for x in attribute]
        if not any(isinstance(x, str) and x.upper() == "VECTOR" for x in flat):
            continue
        found = _find_dim(attribute)
        if found is not None:
            return found
    return None


def has_text_field(info: Any, field: str) -> bool:
    """Whether FT.INFO lists ``field`` as a TEXT attribute."""
    for attribute in pairs(info).get("attributes") or []:
        if not isinstance(attribute, (list, tuple)):
            continue
        flat = [as_text(x).lower() if isinstance(x, (bytes, str)) else x for x in attribute]
        if field.lower() in flat and "text" in flat:
            return True
    return False


def parse_text_search(reply: Any) -> list[tuple[str, float, dict[str, Any]]]:
    """Parse an FT.SEARCH ``WITHSCORES`` reply into ``(key, score, fields)``, best first.

    Raises:
        BackendError: for a non-list reply.
    """
    if not isinstance(reply, (list, tuple)) or not reply:
        raise BackendError(f"FT.SEARCH failed: {as_text(reply) if reply is not None else 'no reply'}")
    out: list[tuple[str, float, dict[str, Any]]] = []
    seen: set[str] = set()
    for i in range(1, len(reply) - 2, 3):
        key = as_text(reply[i])
        raw = reply[i + 2]
        if not raw or key in seen:
            continue
        try:
            score = float(as_text(reply[i + 1]))
        except ValueError:
            continue
        if not math.isfinite(score):
            continue
        seen.add(key)
        out.append((key, score, pairs(raw)))
    out.sort(key=lambda r: (-r[1], r[0]))
    return out


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
