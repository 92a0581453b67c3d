"""Summary consolidation: fold the selected memories of each scope into one summary memory.

Crash-safe by construction, on every backend:

1. The summary is written before any source is deleted, marked ``consolidation_state: "pending"`` with the
   selection it replaces (the criteria, and the last source's place in the scope's write order).
2. The sources are deleted, then the summary is marked ``"done"``.
3. Every run first finishes the pending summaries of the scope: it deletes what is left of their
   selection (memories matching the recorded criteria, written no later than the recorded place), so an
   interrupted run loses nothing and is completed by the next one, without calling the model again.

The summary's key is a digest of its sources, so a re-run over the same sources (``delete_sources=False``)
finds it and changes nothing. A selection larger than the summarizer's context is summarised in batches,
then the batch summaries are summarised (repeatedly, until one text is left).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypedDict

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_list import list_flow
from agentmem_core._flows_read import get_by_key_flow, scopes_flow
from agentmem_core._flows_update import update_flow
from agentmem_core._flows_write import forget_flow, remember_flow
from agentmem_core._plan import Flow, Invoke, batch, expect
from agentmem_core._records import MemoryInput
from agentmem_core.audit import audit_op
from agentmem_core.config import Kind
from agentmem_core.consolidation._types import Numbered, Summarizer
from agentmem_core.errors import InvalidMemoryError, ModelError
from agentmem_core.query import MemoryFilter
from agentmem_core.types import Memory

__all__ = [
    "ConsolidationResult", "Selection", "SelectionArgs", "consolidate_flow", "delete_flow",
    "numbered_batches", "scope_arguments", "select_flow", "selection",
]  # fmt: skip

PAGE = 500
"""Memories read per round trip while selecting."""

DELETE_CHUNK = 500
"""Sources deleted per round trip."""

STATE = "consolidation_state"
JOB = "consolidation_job"
SOURCES = "consolidation_sources"
THROUGH = "consolidation_through"
CRITERIA = "consolidation_criteria"
FIRST = "consolidation_from"
LAST = "consolidation_to"

_SOURCE_KINDS = (Kind.EPISODIC, Kind.SEMANTIC, Kind.PROCEDURAL)


@dataclass(frozen=True)
class ConsolidationResult:
    """What :meth:`~agentmem_core.MemoryStore.consolidate` did.

    Attributes:
        scopes: scopes that had memories to consolidate.
        sources: memories folded into summaries by this run.
        summaries: ids of the summaries written by this run.
        deleted: sources deleted (by this run, including those of interrupted runs it completed).
        resumed: interrupted runs this run completed.
        unchanged: scopes whose selection was already summarised (a re-run).
        model_calls: summarizer calls made.
    """

    scopes: int = 0
    sources: int = 0
    summaries: tuple[str, ...] = ()
    deleted: int = 0
    resumed: int = 0
    unchanged: int = 0
    model_calls: int = 0


@dataclass(frozen=True)
class Selection:
    """Which memories a consolidation folds, beyond the scope (recorded on the summary to resume a run).

    Attributes:
        tags: memories with one of these tags.
        kinds: of these kinds (default: every kind but summaries).
        source: written by this source.
        metadata: metadata conditions (the filter language's).
        created_before: stated before this time (``older_than`` made absolute).
        max_importance: importance at most this.
    """

    tags: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    source: str | None = None
    metadata: Mapping[str, Any] | None = None
    created_before: float | None = None
    max_importance: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The selection as JSON-able values."""
        out: dict[str, Any] = {}
        for name in ("tags", "kinds", "source", "metadata", "created_before", "max_importance"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        """The selection recorded by :meth:`to_json`."""
        return cls(
            tags=None if data.get("tags") is None else tuple(data["tags"]),
            kinds=None if data.get("kinds") is None else tuple(data["kinds"]),
            source=data.get("source"),
            metadata=data.get("metadata"),
            created_before=data.get("created_before"),
            max_importance=data.get("max_importance"),
        )

    def filter(self, scope: ScopeKey | None, scope_args: Mapping[str, Any]) -> MemoryFilter:
        """The filter of the sources (no facts: they are curated by ``consolidate_facts``)."""
        where: dict[str, Any] = dict(scope_args)
        if scope is not None:
            where = {
                "namespace": scope.namespace, "thread_id": scope.thread_id, "agent_id": scope.agent_id,
                "user_id": scope.user_id,
            }  # fmt: skip
        return MemoryFilter.build(
            **where, tags=self.tags, kinds=self.kinds or _SOURCE_KINDS, source=self.source,
            metadata=self.metadata, created_before=self.created_before, fact=False,
        )  # fmt: skip

    def admits(self, memory: Memory) -> bool:
        """The checks the filter leaves to the client."""
        return self.max_importance is None or memory.importance <= self.max_importance


class SelectionArgs(TypedDict, total=False):
    """Which memories ``consolidate`` / ``consolidate_facts`` take (every field narrows; at least one)."""

    namespace: str | Sequence[str] | None
    namespace_prefix: str | Sequence[str] | None
    thread_id: str | None
    agent_id: str | None
    user_id: str | None
    tags: Sequence[str] | None
    """Memories with one of these tags (a summary carries them)."""
    kinds: Sequence[Kind | str] | None
    """Memories of these kinds (default: episodic, semantic, procedural)."""
    source: str | None
    metadata: Mapping[str, Any] | None
    """Metadata conditions (the filter language's)."""
    older_than: float | None
    """Memories stated at least this many seconds ago."""
    max_importance: float | None
    """Memories with at most this importance."""


_SCOPE_ARGS = ("namespace", "namespace_prefix", "thread_id", "agent_id", "user_id")


def selection(now: float, args: Mapping[str, Any]) -> tuple[dict[str, Any], Selection]:
    """Validate what a consolidation selects: ``(scope arguments, the rest)``.

    Raises:
        InvalidMemoryError: an unknown argument, no selection criteria at all (consolidating a whole store
            by accident is refused), or invalid values.
    """
    unknown = set(args) - set(SelectionArgs.__annotations__)
    if unknown:
        raise InvalidMemoryError(f"unknown selection arguments: {sorted(unknown)}")
    if all(v is None for v in args.values()):
        raise InvalidMemoryError(
            "consolidation needs selection criteria: a scope (user_id, thread_id, agent_id, namespace), "
            "tags, source, metadata, older_than or max_importance"
        )
    where = {name: args.get(name) for name in _SCOPE_ARGS}
    older_than, max_importance = args.get("older_than"), args.get("max_importance")
    for label, number in (("older_than", older_than), ("max_importance", max_importance)):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number)
        ):
            raise InvalidMemoryError(f"{label} must be a number, got {number!r}")
    if older_than is not None and older_than < 0:
        raise InvalidMemoryError("older_than must not be negative")
    tags, kinds, metadata = args.get("tags"), args.get("kinds"), args.get("metadata")
    chosen = Selection(
        tags=None if tags is None else tuple(tags),
        kinds=None if kinds is None else tuple(Kind.parse(k).value for k in kinds),
        source=args.get("source"),
        metadata=None if metadata is None else dict(metadata),
        created_before=None if older_than is None else now - float(older_than),
        max_importance=None if max_importance is None else float(max_importance),
    )
    chosen.filter(None, where)  # validates every value before any I/O
    return where, chosen


def select_flow(
    ctx: Context, flt: MemoryFilter, admits: Callable[[Memory], bool], through: int | None = None
) -> Flow[list[Memory]]:
    """Every memory the filter selects in one scope, oldest first (written no later than ``through``)."""
    out: list[Memory] = []
    cursor: str | None = None
    while True:
        page = yield from list_flow(ctx, flt, PAGE, cursor, "oldest")
        out += [m for m in page.memories if admits(m) and (through is None or m.sequence <= through)]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def numbered_batches(items: Sequence[Numbered], budget: int) -> list[list[Numbered]]:
    """Consecutive batches of at most ``budget`` characters of content (at least one item each)."""
    batches: list[list[Numbered]] = []
    current: list[Numbered] = []
    size = 0
    for item in items:
        cost = len(item.content) + 32  # the per-item framing of a prompt (number, date)
        if current and size + cost > budget:
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += cost
    if current:
        batches.append(current)
    return batches


def _renumber(items: Sequence[Numbered]) -> list[Numbered]:
    return [Numbered(n, m.content, m.created_at, m.kind) for n, m in enumerate(items, 1)]


def _summary_text(reply: Any) -> str:
    if not isinstance(reply, str) or not reply.strip():
        raise ModelError(f"the summarizer returned {type(reply).__name__} {reply!r:.80}, not a summary text")
    return reply.strip()


def _summary_call(summarizer: Summarizer, group: tuple[Numbered, ...]) -> Invoke:
    return Invoke(lambda: summarizer.summarize(group), lambda: summarizer.asummarize(group), "summarizer")


def summarise_flow(summarizer: Summarizer, items: Sequence[Numbered]) -> Flow[tuple[str, int]]:
    """One summary of ``items`` (batched to the summarizer's budget, then summaries of summaries).

    Returns:
        The text and the number of model calls.
    """
    budget = int(getattr(summarizer, "max_input_chars", 12_000))
    if budget < 1:
        raise InvalidMemoryError("the summarizer's max_input_chars must be positive")
    calls = 0
    level = list(items)
    while True:
        batches = numbered_batches(_renumber(level), budget)
        texts: list[Numbered] = []
        for group in batches:
            reply = yield _summary_call(summarizer, tuple(group))
            calls += 1
            texts.append(Numbered(0, _summary_text(reply), group[-1].created_at, Kind.SUMMARY.value))
        if len(texts) == 1:
            return texts[0].content, calls
        if len(texts) >= len(level):  # no progress: every item alone overflows the budget
            raise ModelError("the summaries do not fit the summarizer's max_input_chars; raise it")
        level = texts


def job_key(scope: ScopeKey, sources: Sequence[Memory]) -> str:
    """The summary's key: a digest of its sources (a re-run over the same sources finds it)."""
    digest = hashlib.blake2b(digest_size=12, person=b"agentmem-cons")
    digest.update(scope.tag.encode())
    for memory in sorted(sources, key=lambda m: m.id):
        digest.update(memory.id.encode())
    return "consolidation:" + digest.hexdigest()


@dataclass
class _Tally:
    scopes: int = 0
    sources: int = 0
    summaries: list[str] = field(default_factory=list)
    deleted: int = 0
    resumed: int = 0
    unchanged: int = 0
    calls: int = 0

    def result(self) -> ConsolidationResult:
        return ConsolidationResult(
            self.scopes, self.sources, tuple(self.summaries), self.deleted, self.resumed, self.unchanged,
            self.calls,
        )  # fmt: skip


def scope_arguments(scope: ScopeKey) -> dict[str, Any]:
    """The scope fields of ``scope`` as filter / remember keyword arguments."""
    return {
        "namespace": scope.namespace, "thread_id": scope.thread_id, "agent_id": scope.agent_id,
        "user_id": scope.user_id,
    }  # fmt: skip


def delete_flow(ctx: Context, memories: Sequence[Memory]) -> Flow[int]:
    """Forget ``memories``, ``DELETE_CHUNK`` per round trip; how many existed."""
    deleted = 0
    ids = [m.id for m in memories]
    for start in range(0, len(ids), DELETE_CHUNK):
        deleted += yield from forget_flow(ctx, ids[start : start + DELETE_CHUNK])
    return deleted


def finish_flow(
    ctx: Context, scope: ScopeKey, summary: Memory, known: Sequence[Memory] | None = None
) -> Flow[int]:
    """Delete what is left of the summary's selection (``known``: it, as this run selected it), mark it done.

    Without ``known`` (an interrupted run) the selection is read again from the recorded criteria.
    """
    if known is None:
        chosen = Selection.from_json(summary.metadata.get(CRITERIA) or {})
        through = int(summary.metadata.get(THROUGH, -1))
        known = yield from select_flow(ctx, chosen.filter(scope, {}), chosen.admits, through)
    left = [m for m in known if m.id != summary.id]
    deleted = yield from delete_flow(ctx, left)
    metadata = {**summary.metadata, STATE: "done"}
    yield from update_flow(
        ctx, summary.id, content=None, importance=None, tags=None, metadata=metadata, kind=None, ttl=None
    )
    return deleted


def _pending_flow(ctx: Context, scope: ScopeKey) -> Flow[list[Memory]]:
    flt = MemoryFilter.build(**scope_arguments(scope), kinds=[Kind.SUMMARY], metadata={STATE: "pending"})
    return (yield from select_flow(ctx, flt, lambda _m: True))


def consolidate_flow(
    ctx: Context,
    summarizer: Summarizer,
    chosen: Selection,
    scope_args: Mapping[str, Any],
    *,
    delete_sources: bool,
    summary_importance: float,
    min_sources: int,
    registered: set[str],
) -> Flow[ConsolidationResult]:
    """Consolidate every scope the selection matches (see the module docs)."""
    tally = _Tally()
    flt = chosen.filter(None, scope_args)
    scopes = yield from scopes_flow(ctx, flt)
    for scope in scopes:
        for pending in (yield from _pending_flow(ctx, scope)):
            tally.deleted += yield from finish_flow(ctx, scope, pending)
            tally.resumed += 1
        sources = yield from select_flow(ctx, chosen.filter(scope, {}), chosen.admits)
        if len(sources) < max(1, min_sources):
            continue
        tally.scopes += 1
        key = job_key(scope, sources)
        existing = yield from get_by_key_flow(ctx, key, scope)
        if existing is not None:  # this very selection was summarised: a re-run changes nothing
            tally.unchanged += 1
            continue
        items = [Numbered(n, m.content, m.created_at, m.kind.value) for n, m in enumerate(sources, 1)]
        text, calls = yield from summarise_flow(summarizer, items)
        tally.calls += calls
        metadata = {
            STATE: "pending" if delete_sources else "done",
            SOURCES: len(sources),
            THROUGH: max(m.sequence for m in sources),
            CRITERIA: chosen.to_json(),
            FIRST: sources[0].created_at,
            LAST: sources[-1].created_at,
        }
        summary = MemoryInput(
            content=text, importance=summary_importance, kind=Kind.SUMMARY, metadata=metadata,
            tags=chosen.tags, key=key, created_at=sources[-1].created_at, **scope_arguments(scope),
        )  # fmt: skip
        (summary_id,) = yield from remember_flow(ctx, [summary], None, registered)
        tally.summaries.append(summary_id)
        tally.sources += len(sources)
        detail = {"summary": summary_id, "calls": calls}
        audit = audit_op(ctx, [("consolidate", scope, [m.id for m in sources], detail)])
        if audit is not None:
            (logged,) = yield batch([audit])
            expect(logged)
        if delete_sources:
            written = yield from get_by_key_flow(ctx, key, scope)
            if written is not None:
                tally.deleted += yield from finish_flow(ctx, scope, written, sources)
    return tally.result()
