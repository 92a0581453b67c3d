"""Fact flows: write-time supersession, retraction and history (the rules are ``agentmem_core.facts``).

A fact write is an ordinary write followed by one settle round: the versions of the subjects it touched are
read (one filter search per scope) and every version whose state the plan changes is updated (one
pipelined round trip). The new version is written current first, so a crash between the two rounds leaves
at worst two current versions of a subject, never a lost one; the next write, retraction or
``consolidate_facts`` of that subject repairs the history (the plan is recomputed from what is stored).
Two writers of one subject at once can leave the same state, repaired the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_read import get_many_flow, scope_pages_flow
from agentmem_core._flows_write import PIPELINE_CHUNK, remember_flow
from agentmem_core._limits import MAX_K
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._records import MemoryInput, scope_of
from agentmem_core.audit import Logged, audit_op
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.facts import (
    FactState,
    Version,
    changed,
    decode_state,
    encode_state,
    fact_tokens,
    normalise_subject,
    plan_history,
)
from agentmem_core.ops import FilterSearch, Update
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import NEVER, F, format_number, unpack_opt
from agentmem_core.types import Memory

__all__ = ["history_flow", "remember_facts_flow", "retract_flow", "settle_flow"]

_VERSION_FIELDS = (F.FACT, F.CREATED_AT, F.OPT, F.EXPIRES_AT)

Subjects = dict[str, tuple[ScopeKey, set[str]]]
"""Scope tag -> (scope, normalised subjects)."""


def subjects_of(inputs: Sequence[MemoryInput]) -> Subjects:
    """The subjects a batch of writes states, by scope."""
    out: Subjects = {}
    for item in inputs:
        if item.subject is not None:
            scope = scope_of(item.namespace, item.thread_id, item.agent_id, item.user_id)
            out.setdefault(scope.tag, (scope, set()))[1].add(normalise_subject(item.subject))
    return out


def remember_facts_flow(
    ctx: Context,
    inputs: Sequence[MemoryInput],
    vectors: Sequence[Sequence[float]] | None,
    registered: set[str],
) -> Flow[list[str]]:
    """``remember_flow``, then the settle round for the subjects the writes stated (none: nothing more)."""
    touched = subjects_of(inputs)  # validates the subjects before anything is written
    ids = yield from remember_flow(ctx, inputs, vectors, registered)
    if touched:
        yield from settle_flow(ctx, touched)
    return ids


def _scope_filter(scope: ScopeKey, subjects: Iterable[str]) -> MemoryFilter:
    return MemoryFilter(
        namespace=scope.namespace, thread_id=scope.thread_id, agent_id=scope.agent_id,
        user_id=scope.user_id, subjects=tuple(sorted(subjects)),
    )  # fmt: skip


def _version(memory_id: str, fields: Mapping[str, Any], now: float) -> Version | None:
    state = decode_state(fields.get(F.FACT))
    if state is None:
        return None
    expires = fields.get(F.EXPIRES_AT)
    if expires and float(expires) <= now:
        return None
    return Version(memory_id, float(fields.get(F.CREATED_AT) or 0), unpack_opt(fields.get(F.OPT))[0], state)


def versions_flow(ctx: Context, touched: Subjects) -> Flow[dict[tuple[str, str], list[Version]]]:
    """Every stored version of the touched subjects, by ``(scope tag, subject)``.

    One round trip where the engine takes filter-only queries; otherwise the scopes are read.
    """
    out: dict[tuple[str, str], list[Version]] = {}
    groups = list(touched.values())
    if ctx.engine.filter_only_queries:
        searches = [
            FilterSearch(tuple(_scope_filter(scope, subjects).leaves(ctx.now)), MAX_K, _VERSION_FIELDS)
            for scope, subjects in groups
        ]
        replies = yield batch(searches)
        for (scope, _subjects), reply in zip(groups, replies):
            _total, rows = expect(reply)
            for memory_id, fields in rows:
                version = _version(memory_id, fields, ctx.now)
                if version is not None:
                    out.setdefault((scope.tag, version.state.subject), []).append(version)
        return out
    for scope, subjects in groups:
        flt = _scope_filter(scope, subjects)

        def keep(ids: list[str], tag: str = scope.tag, flt: MemoryFilter = flt) -> Flow[None]:
            memories = yield from get_many_flow(ctx, ids)
            for memory_id, memory in zip(ids, memories):
                if memory is not None and memory.subject is not None and flt.matches(memory, ctx.now):
                    state = FactState(memory.subject, memory.valid_until, memory.superseded_by)
                    version = Version(memory_id, memory.created_at, memory.sequence, state)
                    out.setdefault((tag, memory.subject), []).append(version)

        yield from scope_pages_flow(ctx, flt, keep)
    return out


def _state_update(ctx: Context, memory_id: str, state: FactState) -> Update:
    return Update(
        id=memory_id, now=format_number(ctx.now), kind="", importance="", ttl_ms=None, expires_at="",
        ttl_seconds="", set_fields={F.FACT: encode_state(state), F.UPDATED_AT: format_number(ctx.now)},
        fact_tokens=fact_tokens(state),
    )  # fmt: skip


def settle_flow(
    ctx: Context, touched: Subjects, retractions: Mapping[tuple[str, str], Sequence[float]] | None = None
) -> Flow[dict[tuple[str, str], tuple[dict[str, FactState], list[float]]]]:
    """Recompute the history of the touched subjects (placing ``retractions``) and store what changed.

    Returns:
        By ``(scope tag, subject)``: the planned state of every version, and the retractions that matched
        no fact.
    """
    versions = yield from versions_flow(ctx, touched)
    plans: dict[tuple[str, str], tuple[dict[str, FactState], list[float]]] = {}
    updates: list[Update] = []
    entries: list[Logged] = []
    keys = {(tag, s) for tag, (_scope, subjects) in touched.items() for s in subjects}
    for key in sorted(keys):
        held = versions.get(key, [])
        states, unmatched = plan_history(held, (retractions or {}).get(key, ()))
        plans[key] = (states, unmatched)
        moved = changed(held, states)
        updates += [_state_update(ctx, memory_id, state) for memory_id, state in moved]
        scope = touched[key[0]][0]
        ended = [(i, st) for i, st in moved if not st.current]
        superseded = [i for i, st in ended if st.superseded_by is not None]
        retracted = [i for i, st in ended if st.superseded_by is None]
        entries += [("supersede", scope, superseded, {"subject": key[1]}),
                    ("retract", scope, retracted, {"subject": key[1]})]  # fmt: skip
    for start in range(0, len(updates), PIPELINE_CHUNK):
        for reply in (yield batch(updates[start : start + PIPELINE_CHUNK])):
            expect(reply)  # False: the version expired or was forgotten meanwhile (nothing to repair)
    audit = audit_op(ctx, entries)
    if audit is not None:
        (logged,) = yield batch([audit])
        expect(logged)
    return plans


def retract_flow(ctx: Context, scope: ScopeKey, subject: str, at: float | None) -> Flow[str | None]:
    """End the fact of ``subject`` holding at ``at`` (default now); its id, or ``None`` if none held."""
    subject = normalise_subject(subject)
    when = ctx.now if at is None else _check_time(at)
    touched: Subjects = {scope.tag: (scope, {subject})}
    plans = yield from settle_flow(ctx, touched, {(scope.tag, subject): (when,)})
    states, unmatched = plans[(scope.tag, subject)]
    if unmatched:
        return None
    for memory_id, state in states.items():
        if state.valid_until == when and state.superseded_by is None:
            return memory_id
    return None  # pragma: no cover - a matched retraction always ends one version


def history_flow(ctx: Context, scope: ScopeKey, subject: str) -> Flow[list[Memory]]:
    """Every version of ``subject`` in ``scope``, oldest statement first (the current one last)."""
    subject = normalise_subject(subject)
    versions = yield from versions_flow(ctx, {scope.tag: (scope, {subject})})
    held = sorted(versions.get((scope.tag, subject), []), key=lambda v: (v.valid_from, v.sequence, v.id))
    memories = yield from get_many_flow(ctx, [v.id for v in held])
    return [m for m in memories if m is not None]


def _check_time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidMemoryError(f"at must be a Unix timestamp, got {value!r}")
    if value >= NEVER:
        raise InvalidMemoryError("at is too far in the future")
    return float(value)
