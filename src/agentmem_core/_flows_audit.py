"""Reading the audit trail: the newest entries first, filtered on the client.

The log is one capped sequence per store (a stream on Valkey, a table on SQLite; see
:mod:`agentmem_core.audit`), with no index but its positions, so every filter (time window, actions,
memory, scope) is applied here, page by page, newest first, until ``limit`` entries match or the log
runs out. A ``since`` bound also ends the scan once entries are older than it (by a margin, see
:data:`CLOCK_SKEW_SECONDS`), so a recent window never reads the whole log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agentmem_core._context import Context
from agentmem_core._encoding import is_memory_id, local_id_for_caller_id
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._records import scope_of, scope_value
from agentmem_core.audit import ACTIONS, AuditEntry, decode_entry
from agentmem_core.errors import BackendError, InvalidMemoryError
from agentmem_core.ops import AuditRange

__all__ = ["AUDIT_PAGE", "CLOCK_SKEW_SECONDS", "MAX_AUDIT_LIMIT", "audit_flow"]

MAX_AUDIT_LIMIT = 10_000
"""Most entries one ``audit()`` call returns (page further back with ``before=``)."""
AUDIT_PAGE = 500
"""Entries read per round trip while filtering."""
CLOCK_SKEW_SECONDS = 300.0
"""How far an entry's time may run behind a later entry's before ``since`` ends the scan.

Entries are in write order, but their times come from each writing store's clock: several processes (or
a clock set back) may write an entry that looks older than one before it. The scan stops only at an entry
this much older than ``since``, so such small disorders lose nothing.
"""

_SCOPE_FIELDS = ("namespace", "thread_id", "agent_id", "user_id")
# a Valkey stream id (``<ms>-<seq>``) or an SQLite counter (``<seq>``); each part an unsigned 64-bit int
_POSITION = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_U64 = 2**64 - 1


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidMemoryError(f"limit must be an int, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise InvalidMemoryError(f"limit must be in 1..{MAX_AUDIT_LIMIT}, got {limit}")
    return limit


def _position(before: Any) -> tuple[str | None, bool]:
    """``(before, nothing precedes it)``: a validated position, and whether it is the very first one."""
    if before is None:
        return None, False
    if not isinstance(before, str):
        raise InvalidMemoryError(f"before must be a position string (AuditEntry.position), got {before!r}")
    match = _POSITION.fullmatch(before)
    parts = [int(p) for p in match.groups() if p is not None] if match else []
    if not parts or any(p > _U64 for p in parts):
        raise InvalidMemoryError(f"before={before!r} is not an audit position (AuditEntry.position)")
    # 0 / 0-0: no entry lies before it (and Valkey refuses an exclusive range ending there)
    return before, not any(parts)


def _time(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidMemoryError(f"{name} must be a number (Unix seconds) or None, got {value!r}")
    if not math.isfinite(value):
        raise InvalidMemoryError(f"{name} must be finite, got {value!r}")
    return float(value)


def _actions(actions: Any) -> frozenset[str] | None:
    if actions is None:
        return None
    names = (actions,) if isinstance(actions, str) else actions
    if not isinstance(names, Iterable):
        raise InvalidMemoryError(f"actions must be a sequence of action names, got {actions!r}")
    chosen = tuple(names)
    if not chosen:
        raise InvalidMemoryError("actions must name at least one action (None: every action)")
    unknown = [a for a in chosen if a not in ACTIONS]
    if unknown:
        raise InvalidMemoryError(f"unknown audit action(s) {unknown!r}: use {', '.join(ACTIONS)}")
    return frozenset(chosen)


def _scope_filter(scope_fields: Mapping[str, Any]) -> dict[str, Any]:
    """The scope fields given (``None``: any), as an entry's ``scope`` holds them (namespace as a list)."""
    unknown = set(scope_fields) - set(_SCOPE_FIELDS)
    if unknown:
        names = ", ".join(_SCOPE_FIELDS)
        raise InvalidMemoryError(f"unknown scope field(s) {sorted(unknown)!r}: use {names}")
    get = scope_fields.get
    scope = scope_of(get("namespace"), get("thread_id"), get("agent_id"), get("user_id"))  # validates
    wanted: dict[str, Any] = {}
    if get("namespace") is not None:  # exact, as the memory filters' namespace=; [] is the root namespace
        wanted["namespace"] = list(scope.namespace)
    for name in ("thread_id", "agent_id", "user_id"):
        if get(name) is not None:
            wanted[name] = getattr(scope, name)
    return wanted


def _in_scope(entry: AuditEntry, wanted: Mapping[str, Any]) -> bool:
    for name, value in wanted.items():
        held = entry.scope.get(name)
        if name == "namespace":
            held = list(held or [])  # an entry omits the root namespace
        if held != value:
            return False
    return True


def audit_flow(
    ctx: Context,
    *,
    limit: int,
    before: str | None,
    since: float | None,
    until: float | None,
    actions: Iterable[str] | str | None,
    memory_id: str | None,
    scope_fields: Mapping[str, Any],
) -> Flow[list[AuditEntry]]:
    """The newest ``limit`` audit entries matching every filter given, newest first.

    Validates now, when the flow is built, so bad input raises before anything is sent. ``ctx`` is taken
    for the store's checks (an unusable store refuses it earlier); the log needs no key of it.

    Args:
        ctx: the store's context.
        limit: most entries returned (``1..10000``).
        before: only entries strictly before this position (an ``AuditEntry.position``; paging).
        since: only entries at or after this time (Unix seconds).
        until: only entries at or before this time.
        actions: only these actions (see ``agentmem_core.audit.ACTIONS``).
        memory_id: only entries that concern this memory (``AuditEntry.concerns``).
        scope_fields: ``namespace`` / ``thread_id`` / ``agent_id`` / ``user_id``: only entries whose scope
            has each given one (``None``: any); ``namespace`` is exact.

    Raises:
        InvalidMemoryError: for any invalid argument, or ``since`` after ``until``.
    """
    del ctx  # the log is per store: the backend's translation already names it
    count = _limit(limit)
    start, at_start = _position(before)
    low, high = _time("since", since), _time("until", until)
    if low is not None and high is not None and low > high:
        raise InvalidMemoryError(f"since ({low!r}) is after until ({high!r})")
    wanted_actions = _actions(actions)
    wanted_id = scope_value("memory_id", memory_id)
    wanted_scope = _scope_filter(scope_fields)
    filtering = bool(wanted_scope) or any(x is not None for x in (low, high, wanted_actions, wanted_id))

    # Entries name memories by their storage id; a caller's own id (remember(id=...), every CrewAI record)
    # is the storage id's local part (a digest of it), whatever the scope, and after a forget as before.
    local = None if wanted_id is None or is_memory_id(wanted_id) else local_id_for_caller_id(wanted_id)

    def concerns(entry: AuditEntry) -> bool:
        if wanted_id is None or entry.concerns(wanted_id):
            return True
        return local is not None and any(len(i) == 32 and i[16:] == local for i in entry.ids)

    def keep(entry: AuditEntry) -> bool:
        return (
            (low is None or entry.at >= low)
            and (high is None or entry.at <= high)
            and (wanted_actions is None or entry.action in wanted_actions)
            and concerns(entry)
            and _in_scope(entry, wanted_scope)
        )

    return _scan(start, count, AUDIT_PAGE if filtering else min(count, AUDIT_PAGE), keep, low, at_start)


def _scan(
    before: str | None,
    limit: int,
    page: int,
    keep: Callable[[AuditEntry], bool],
    since: float | None,
    at_start: bool,
) -> Flow[list[AuditEntry]]:
    found: list[AuditEntry] = []
    if at_start:
        return found
    stop_below = None if since is None else since - CLOCK_SKEW_SECONDS
    while True:
        (reply,) = yield batch([AuditRange(before, page)])
        rows = expect(reply)
        for position, fields in rows:
            try:
                entry = decode_entry(position, fields)
            except (ValueError, TypeError) as exc:  # json errors are ValueErrors
                raise BackendError(f"unreadable audit entry at position {position!r}: {exc}") from exc
            if stop_below is not None and entry.at < stop_below:
                return found  # everything further back is older still (up to the clocks' skew)
            if keep(entry):
                found.append(entry)
                if len(found) == limit:
                    return found
        if len(rows) < page:
            return found  # the log is exhausted
        before = rows[-1][0]  # exclusive: the next page starts right after this one
