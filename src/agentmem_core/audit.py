"""The audit trail: what an entry is, and how it is stored (pure; the flows append, the backends keep).

Every write a store makes appends one entry per action and scope: ``remember`` (new memories), ``merge``
(write-time dedup folded a write into an existing memory), ``update``, ``forget``, ``evict`` (capacity),
``supersede`` / ``retract`` (a fact's history changed), ``consolidate`` (a summary replaced memories),
``import``. An entry records when (the store's clock), what, which ids (at most :data:`MAX_IDS` listed;
``count`` has them all), the scope, the store's ``actor`` and a small ``detail``. The log is capped
(``StoreConfig.audit_max_entries``), newest kept.

Memories that expire are not logged: Valkey drops them by itself (PEXPIRE), with no hook a client sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey
from agentmem_core.ops import AuditAppend
from agentmem_core.schema import format_number

__all__ = [
    "ACTIONS", "MAX_IDS", "Action", "AuditEntry", "Logged", "audit_op", "decode_entry", "encode_entry",
    "entry_op",
]  # fmt: skip

Logged = tuple[str, "ScopeKey | None", Sequence[str], "Mapping[str, Any] | None"]
"""One entry to log: ``(action, scope, ids, detail)``."""

Action = Literal[
    "remember", "merge", "update", "forget", "evict", "supersede", "retract", "consolidate", "import"
]
ACTIONS: tuple[str, ...] = (
    "remember", "merge", "update", "forget", "evict", "supersede", "retract", "consolidate", "import",
)  # fmt: skip

MAX_IDS = 100
"""Ids listed in one entry (``count`` holds the total)."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log entry.

    Attributes:
        position: its place in the log (increasing; pass as ``before=`` to page further back).
        at: when (Unix seconds, the store's clock).
        action: what happened (see the module docs).
        ids: the memories it concerns (at most :data:`MAX_IDS`).
        count: how many memories it concerns.
        scope: the scope's fields (``namespace``, ``thread_id``, ``agent_id``, ``user_id``; unset omitted).
        actor: the writing store's ``actor``, if set.
        detail: action-specific facts (e.g. a supersession's ``subject``, a consolidation's ``summary``).
    """

    position: str
    at: float
    action: str
    ids: tuple[str, ...]
    count: int
    scope: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def concerns(self, memory_id: str) -> bool:
        """Whether ``memory_id`` is among its listed ids (or its detail's)."""
        return memory_id in self.ids or memory_id in self.detail.values()


def _scope(scope: ScopeKey | None) -> dict[str, Any]:
    if scope is None:
        return {}
    return {k: v for k, v in scope.descriptor().items() if v not in (None, [], ())}


def encode_entry(
    *,
    at: float,
    action: str,
    ids: Sequence[str],
    scope: ScopeKey | None,
    actor: str | None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The stored fields of an entry (text values)."""
    fields = {
        "at": format_number(at),
        "action": action,
        "ids": json.dumps(list(ids[:MAX_IDS]), separators=(",", ":")),
        "count": str(len(ids)),
        "scope": json.dumps(_scope(scope), separators=(",", ":"), ensure_ascii=False, sort_keys=True),
    }
    if actor is not None:
        fields["actor"] = actor
    if detail:
        fields["detail"] = json.dumps(dict(detail), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return fields


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_entry(position: str | bytes, fields: Mapping[Any, Any]) -> AuditEntry:
    """An entry from its position and stored fields (``str`` or ``bytes``)."""
    get = {_text(k): _text(v) for k, v in fields.items()}.get
    actor = get("actor")
    return AuditEntry(
        position=_text(position),
        at=float(get("at") or 0),
        action=get("action") or "",
        ids=tuple(json.loads(get("ids") or "[]")),
        count=int(get("count") or 0),
        scope=json.loads(get("scope") or "{}"),
        actor=actor,
        detail=json.loads(get("detail") or "{}"),
    )


def entry_op(
    *,
    enabled: bool,
    cap: int,
    at: float,
    actor: str | None,
    entries: Sequence[tuple[str, ScopeKey | None, Sequence[str], Mapping[str, Any] | None]],
) -> AuditAppend | None:
    """The append of ``entries`` (``(action, scope, ids, detail)``; empty id lists skipped).

    ``None`` when the audit trail is off or there is nothing to log.
    """
    if not enabled:
        return None
    encoded = tuple(
        encode_entry(at=at, action=action, ids=ids, scope=scope, actor=actor, detail=detail)
        for action, scope, ids, detail in entries
        if ids
    )
    return AuditAppend(encoded, cap) if encoded else None


def audit_op(ctx: Context, entries: Sequence[Logged]) -> AuditAppend | None:
    """The append of ``entries`` under the store's audit settings (``None``: off, or nothing to log)."""
    config = ctx.config
    return entry_op(
        enabled=config.audit, cap=config.audit_max_entries, at=ctx.now, actor=config.actor, entries=entries
    )
