"""Fact consolidation: a model extracts atomic facts from memories; deterministic code reconciles them.

Per scope, the selected memories written since the last run (the facts record the write-order place they
were distilled through) are shown to the extractor in batches, numbered, together with the current facts
(numbered apart, never by id). What it returns is reconciled here, not by the model:

* a fact is dated by the newest memory it cites (numbers that match no memory are counted, not trusted);
* a restatement of the fact holding at that time changes nothing (so re-runs change nothing);
* anything else is a new version of its subject, written as a fact (``remember(subject=...)``): the
  supersession rules of ``agentmem_core.facts`` place it in the subject's history, newer wins, a later
  write wins a tie;
* a retraction ends the fact holding at its time; one that finds none is reported.

Facts are written with a key that digests subject, statement and time, before any source is deleted
(``delete_sources=True``); an interrupted run is completed by the next one (it deletes the sources already
distilled and skips them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, is_memory_id, local_id_for_caller_id
from agentmem_core._flows_consolidate import (
    THROUGH,
    Selection,
    delete_flow,
    numbered_batches,
    scope_arguments,
    select_flow,
)
from agentmem_core._flows_facts import Subjects, settle_flow
from agentmem_core._flows_read import scopes_flow
from agentmem_core._flows_update import update_flow
from agentmem_core._flows_write import remember_flow
from agentmem_core._plan import Flow, Invoke
from agentmem_core._records import MemoryInput, memory_scope
from agentmem_core.config import Kind
from agentmem_core.consolidation._types import ExtractedFact, FactExtractor, KnownFact, Numbered
from agentmem_core.errors import InvalidMemoryError, ModelError
from agentmem_core.facts import normalise_subject
from agentmem_core.query import MemoryFilter
from agentmem_core.types import Memory

__all__ = ["FactsResult", "consolidate_facts_flow", "internal_id", "same_statement"]

MAX_CITED = 32
"""Source ids a fact records at most."""


@dataclass(frozen=True)
class FactsResult:
    """What :meth:`~agentmem_core.MemoryStore.consolidate_facts` did.

    Attributes:
        scopes: scopes that had memories to distil.
        sources: memories shown to the extractor.
        written: ids of the fact versions written (new subjects, changes, and older statements that
            enter a subject's history).
        unchanged: facts the extractor restated as they already hold.
        retracted: ids of the facts that retractions ended.
        unmatched_retractions: subjects retracted when no fact of them held (nothing was changed).
        invalid_references: source numbers the extractor cited that matched no memory shown to it.
        rejected: facts dropped as unusable (a blank subject or statement).
        deleted: sources deleted (``delete_sources=True``).
        model_calls: extractor calls made.
    """

    scopes: int = 0
    sources: int = 0
    written: tuple[str, ...] = ()
    unchanged: int = 0
    retracted: tuple[str, ...] = ()
    unmatched_retractions: tuple[str, ...] = ()
    invalid_references: int = 0
    rejected: int = 0
    deleted: int = 0
    model_calls: int = 0


@dataclass
class _Tally:
    scopes: int = 0
    sources: int = 0
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    retracted: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    invalid: int = 0
    rejected: int = 0
    deleted: int = 0
    calls: int = 0

    def result(self) -> FactsResult:
        return FactsResult(
            self.scopes, self.sources, tuple(self.written), self.unchanged, tuple(self.retracted),
            tuple(self.unmatched), self.invalid, self.rejected, self.deleted, self.calls,
        )  # fmt: skip


def same_statement(a: str, b: str) -> bool:
    """Whether two statements say the same (case and spacing aside)."""
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


@dataclass
class _Line:
    """One subject's versions as this run knows them: ``(valid_from, statement or None for a retraction)``."""

    events: list[tuple[float, str | None]] = field(default_factory=list)

    def holding(self, when: float) -> str | None:
        """The statement holding at ``when`` (``None``: nothing)."""
        best: tuple[float, str | None] | None = None
        for event in self.events:
            if event[0] <= when and (best is None or event[0] >= best[0]):
                best = event
        return None if best is None else best[1]

    def current(self) -> tuple[float, str] | None:
        if not self.events:
            return None
        latest = max(self.events, key=lambda e: e[0])
        return None if latest[1] is None else (latest[0], latest[1])


def _lines(facts: Sequence[Memory]) -> dict[str, _Line]:
    lines: dict[str, _Line] = {}
    for memory in facts:
        if memory.subject is None:
            continue
        line = lines.setdefault(memory.subject, _Line())
        line.events.append((memory.created_at, memory.content))
        if memory.valid_until is not None and memory.superseded_by is None:  # a stored retraction
            line.events.append((memory.valid_until, None))
    return lines


def internal_id(memory: Memory) -> str:
    """The storage id of a memory (``Memory.id`` is the caller's id when it has one)."""
    if is_memory_id(memory.id):
        return memory.id
    return memory_scope(memory).tag + local_id_for_caller_id(memory.id)


def fact_key(subject: str, statement: str, when: float) -> str:
    """The key of a distilled fact: the same fact distilled twice is one memory."""
    digest = hashlib.blake2b(digest_size=12, person=b"agentmem-fact")
    digest.update(f"{subject}\n{' '.join(statement.casefold().split())}\n{when!r}".encode())
    return "fact:" + digest.hexdigest()


def _extract_call(
    extractor: FactExtractor, items: tuple[Numbered, ...], known: tuple[KnownFact, ...]
) -> Invoke:
    return Invoke(
        lambda: extractor.extract(items, known), lambda: extractor.aextract(items, known), "fact extractor"
    )


def _facts(reply: Any) -> list[ExtractedFact]:
    if not isinstance(reply, (list, tuple)) or not all(isinstance(f, ExtractedFact) for f in reply):
        raise ModelError(f"the fact extractor returned {type(reply).__name__}, not a list of ExtractedFact")
    return list(reply)


def _known(lines: Mapping[str, _Line]) -> tuple[KnownFact, ...]:
    out: list[KnownFact] = []
    for subject in sorted(lines):
        current = lines[subject].current()
        if current is not None:
            out.append(KnownFact(len(out) + 1, subject, current[1], current[0]))
    return tuple(out)


def consolidate_facts_flow(
    ctx: Context,
    extractor: FactExtractor,
    chosen: Selection,
    scope_args: Mapping[str, Any],
    *,
    fact_importance: float,
    delete_sources: bool,
    reprocess: bool,
    registered: set[str],
) -> Flow[FactsResult]:
    """Distil the facts of every scope the selection matches (see the module docs)."""
    budget = int(getattr(extractor, "max_input_chars", 12_000))
    if budget < 1:
        raise InvalidMemoryError("the extractor's max_input_chars must be positive")
    tally = _Tally()
    for scope in (yield from scopes_flow(ctx, chosen.filter(None, scope_args))):
        yield from _scope_flow(ctx, extractor, chosen, scope, budget, tally, fact_importance, delete_sources,
                               reprocess, registered)  # fmt: skip
    return tally.result()


def _scope_flow(
    ctx: Context,
    extractor: FactExtractor,
    chosen: Selection,
    scope: ScopeKey,
    budget: int,
    tally: _Tally,
    importance: float,
    delete_sources: bool,
    reprocess: bool,
    registered: set[str],
) -> Flow[None]:
    where = scope_arguments(scope)
    facts = yield from select_flow(ctx, MemoryFilter.build(**where, fact=True), lambda _m: True)
    through = max((int(m.metadata.get(THROUGH, -1)) for m in facts), default=-1)
    selected = yield from select_flow(ctx, chosen.filter(scope, {}), chosen.admits)
    done = [m for m in selected if m.sequence <= through]
    sources = selected if reprocess else [m for m in selected if m.sequence > through]
    if delete_sources and done and not reprocess:  # an interrupted run's sources: already distilled
        tally.deleted += yield from delete_flow(ctx, done)
    if not sources:
        return
    tally.scopes += 1
    tally.sources += len(sources)
    lines = _lines(facts)
    mark = max(m.sequence for m in sources)
    writes: list[MemoryInput] = []
    retractions: dict[tuple[str, str], list[float]] = {}
    items = [Numbered(n, m.content, m.created_at, m.kind.value) for n, m in enumerate(sources, 1)]
    for group in numbered_batches(items, budget):
        batch_items = tuple(Numbered(n, m.content, m.created_at, m.kind) for n, m in enumerate(group, 1))
        reply = yield _extract_call(extractor, batch_items, _known(lines))
        tally.calls += 1
        for fact in _facts(reply):
            refs = [n for n in fact.sources if isinstance(n, int) and 1 <= n <= len(batch_items)]
            tally.invalid += len(fact.sources) - len(refs)
            when = max(batch_items[n - 1].created_at for n in refs) if refs else batch_items[-1].created_at
            try:
                subject = normalise_subject(fact.subject)
            except InvalidMemoryError:
                tally.rejected += 1
                continue
            line = lines.setdefault(subject, _Line())
            if fact.retract:
                if (when, None) in line.events:  # this retraction is already stored
                    tally.unchanged += 1
                    continue
                retractions.setdefault((scope.tag, subject), []).append(when)
                line.events.append((when, None))
                continue
            statement = fact.statement.strip() if isinstance(fact.statement, str) else ""
            if not statement:
                tally.rejected += 1
                continue
            held = line.holding(when)
            if held is not None and same_statement(held, statement):
                tally.unchanged += 1
                continue
            line.events.append((when, statement))
            # provenance: the cited memories (group items keep their number in the whole selection)
            cited = [internal_id(sources[group[n - 1].n - 1]) for n in refs][:MAX_CITED]
            writes.append(
                MemoryInput(
                    content=statement,
                    subject=subject,
                    created_at=when,
                    importance=importance,
                    kind=Kind.SEMANTIC,
                    key=fact_key(subject, statement, when),
                    metadata={THROUGH: mark},
                    derived_from=cited,
                    **where,
                )
            )
    if writes:
        tally.written += yield from remember_flow(ctx, writes, None, registered)
    touched: Subjects = {}
    subjects = {w.subject for w in writes if w.subject is not None} | {s for _t, s in retractions}
    if subjects:
        touched[scope.tag] = (scope, subjects)
        plans = yield from settle_flow(ctx, touched, retractions)
        for (_tag, subject), (states, unmatched) in plans.items():
            times = set(retractions.get((scope.tag, subject), ()))
            tally.unmatched += [subject] * len(unmatched)
            tally.retracted += [
                i for i, st in states.items() if st.superseded_by is None and st.valid_until in times
            ]
    if not writes:  # nothing new: record how far this run read, so the next one skips these sources
        yield from _mark_flow(ctx, scope, facts, mark)
    if delete_sources:
        tally.deleted += yield from delete_flow(ctx, sources)


def _mark_flow(ctx: Context, scope: ScopeKey, facts: Sequence[Memory], mark: int) -> Flow[None]:
    """Record on the scope's newest fact that its sources were read through ``mark`` (no fact: nothing)."""
    if not facts:
        return
    newest = max(facts, key=lambda m: m.sequence)
    if int(newest.metadata.get(THROUGH, -1)) >= mark:
        return
    yield from update_flow(
        ctx, newest.id, content=None, importance=None, tags=None, metadata={**newest.metadata, THROUGH: mark},
        kind=None, ttl=None,
    )  # fmt: skip
