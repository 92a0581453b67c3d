"""Conformance of the memory lifecycle: facts and their history, leases, the audit log.

Scripted checks (not random sequences: each is one documented rule of a storage operation a backend must
implement) that :func:`agentmem_core.testing.conformance.run_conformance` runs on every backend, after
the reference-model machine:

* facts: ``Update.fact_tokens`` replaces a fact's tokens and a metadata change keeps them (supersession,
  history, retraction, recall of current facts only);
* leases: ``AcquireLease`` / ``ReleaseLease`` exclude other holders, renew, and release only their own;
* the audit log: ``AuditAppend`` / ``AuditRange`` keep entries newest first, page without gaps, and trim
  to the cap.

Each check opens its own store (``backend.open``) and raises ``AssertionError`` naming the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.store import MemoryStore

if TYPE_CHECKING:  # conformance.py runs these checks: a runtime import would be a cycle
    from agentmem_core.testing.conformance import ConformanceBackend

__all__ = ["check_audit_log", "check_facts", "check_leases", "run_lifecycle_conformance"]

Check = Callable[["ConformanceBackend"], None]

START = 1_800_000_000.0


class Clock:
    """The injected time of a check."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _open(backend: ConformanceBackend, **options: object) -> tuple[MemoryStore, Clock]:
    clock = Clock(START)
    store = backend.open(
        "lc" + uuid.uuid4().hex[:10], {"clock": clock, "embedder": HashingEmbedder(64), **options}
    )
    store.setup()
    return store, clock


def _close(backend: ConformanceBackend, store: MemoryStore) -> None:
    try:
        if backend.drop is not None:
            backend.drop(store)
    finally:
        store.close()


def check_facts(backend: ConformanceBackend) -> None:
    """Supersession, history, retraction and current-only recall, through the backend's Update."""
    store, _clock = _open(backend)
    try:
        ana: dict[str, Any] = {"user_id": "ana"}
        berlin = store.remember("Ana lives in Berlin", subject="home_city", created_at=START - 200, **ana)
        paris = store.remember("Ana moved to Paris", subject="home_city", created_at=START - 100, **ana)
        rome = store.remember("Ana lived in Rome", subject="home_city", created_at=START - 300, **ana)
        history = store.history("home_city", **ana)
        assert [m.id for m in history] == [rome, berlin, paris], "history is in statement order"
        assert [(m.valid_until, m.superseded_by) for m in history] == [
            (START - 200, berlin), (START - 100, paris), (None, None)
        ], "each version is superseded by the next"  # fmt: skip
        store.update(berlin, metadata={"checked": True})  # a metadata change keeps the fact's tokens
        assert store.count(current=False, **ana) == 2, "superseded versions are history after an update"
        hits = store.recall("where does Ana live", k=10, reinforce=False, **ana)
        assert [h.memory.id for h in hits] == [paris], "recall returns the current fact only"
        assert store.retract("home_city", at=START - 50, **ana) == paris, "a retraction ends what holds"
        assert store.retract("employer", **ana) is None, "an unmatched retraction is reported"
        assert store.count(current=True, fact=True, **ana) == 0, "a retracted fact is history"
    finally:
        _close(backend, store)


def check_leases(backend: ConformanceBackend) -> None:
    """A lease excludes other holders, renews for its holder, and is released only by it."""
    store, _clock = _open(backend)
    try:
        assert store.acquire_lease("job", holder="a", ttl=30), "a free lease is taken"
        assert store.acquire_lease("job", holder="a", ttl=30), "its holder renews it"
        assert not store.acquire_lease("job", holder="b", ttl=30), "another holder is refused"
        assert not store.release_lease("job", holder="b"), "another holder cannot release it"
        assert store.release_lease("job", holder="a"), "its holder releases it"
        assert store.acquire_lease("job", holder="b", ttl=30), "a released lease is free"
    finally:
        _close(backend, store)


def check_audit_log(backend: ConformanceBackend) -> None:
    """Writes log entries newest first; ``before`` pages without gaps; the log keeps its cap."""
    store, _clock = _open(backend, audit_max_entries=5)
    try:
        ids = [store.remember(f"note {i}", user_id="ana") for i in range(8)]
        store.forget(ids[0])
        entries = store.audit(limit=3)
        assert [e.action for e in entries] == ["forget", "remember", "remember"], "newest first"
        assert entries[0].ids == (ids[0],) and entries[1].ids == (ids[7],), "entries name their ids"
        more = store.audit(limit=100, before=entries[-1].position)
        assert not {e.position for e in more} & {e.position for e in entries}, "pages do not overlap"
        kept = store.audit(limit=100)
        assert 5 <= len(kept) <= 9, "the log is trimmed to about its cap"
        assert kept[0].action == "forget", "trimming drops the oldest entries"
    finally:
        _close(backend, store)


CHECKS: tuple[Check, ...] = (check_facts, check_leases, check_audit_log)


def run_lifecycle_conformance(backend: ConformanceBackend) -> None:
    """Run every lifecycle check on ``backend``."""
    for check in CHECKS:
        check(backend)
