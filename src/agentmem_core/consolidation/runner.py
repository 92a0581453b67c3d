"""Background consolidation: run a job per scope when a trigger fires, never twice at once for one scope.

A runner checks its triggers every ``poll`` seconds and, for each scope that is due, runs ``job(store,
scope)``: the consolidation of that scope (a summary, facts), whatever the caller's code does. Before a
job it takes the scope's lease (``consolidate:<digest of the scope>``, :func:`lease_name`) on the store,
so however many runners share a store (threads, processes, hosts), one scope is consolidated by one of
them at a time; a runner that finds the lease held skips that scope this round. The lease is renewed
while the job runs and released after it; a runner that dies loses it ``lease_ttl`` seconds later.

Triggers (any combination; a scope is due when one of them fires):

* ``every``: a schedule. A scope is due ``every`` seconds after the runner first saw it (listed or
  notified), then ``every`` seconds after its last run; a scope another runner was busy with counts as
  run (its period is done). Like an interval timer, nothing runs at start: restarted processes do not
  all consolidate at once.
* ``max_items``: a size bound. A scope is due when ``store.count(**scope) > max_items`` and its count has
  changed since this runner's last run of it (a job that keeps the scope over the bound does not run
  again until the scope changes). Costs one ``count`` per candidate scope per poll.
* ``quiet_for``: a debounce after writes, fed by :meth:`ConsolidationRunner.notify`. Call
  ``runner.notify(scope)`` after writing to a scope: it is due once no notification came for it during
  ``quiet_for`` seconds, and runs once for the whole burst. ``notify`` also makes a scope a candidate for
  the other triggers, so a runner may have no scope list at all and consolidate what it is told about.
  Only this runner's notifications count (writes by other processes are seen by ``every`` / ``max_items``).

A job that raises is logged (logger ``"agentmem.consolidation"``), counted in :attr:`stats`, and tried
again when its trigger next fires (the next period, ``quiet_for`` after the failure, or when the scope's
size changes); the runner itself never dies of an error.

Example::

    def summarise(store, scope):
        store.consolidate(summarizer, **scope)

    with ConsolidationRunner(store, summarise, scopes=[{"user_id": "ana"}], every=3600, max_items=500):
        serve()  # the runner works in a daemon thread until the block ends
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from typing_extensions import Self

from agentmem_core._flows_lease import MAX_LEASE_NAME_CHARS, MAX_LEASE_TTL_SECONDS
from agentmem_core.errors import ConfigurationError

if TYPE_CHECKING:
    from agentmem_core.aio import AsyncMemoryStore
    from agentmem_core.store import MemoryStore

__all__ = [
    "AsyncConsolidationRunner",
    "ConsolidationRunner",
    "RunnerStats",
    "lease_name",
    "scope_digest",
]

logger = logging.getLogger("agentmem.consolidation")

Scope = Mapping[str, Any]
"""A scope as the store's keyword filters: ``{"user_id": "ana"}``, ``{"namespace": ["travel"], ...}``."""
Scopes = Iterable[Scope] | Callable[[], Iterable[Scope]] | None
"""The scopes a runner watches: a fixed list, a callable asked every poll, or none (only notified ones)."""

S = TypeVar("S")


# -- scope names -------------------------------------------------------------------------------------------
def _canonical_scope(scope: Scope) -> dict[str, Any]:
    # None means "not given" in the store's filters, and a namespace label alone is a one-label path:
    # equal filters must name one lease, whatever way the caller spelled them
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if value is None:
            continue
        if key in ("namespace", "namespace_prefix") and isinstance(value, str):
            value = [value]
        elif isinstance(value, tuple):
            value = list(value)
        out[str(key)] = value
    return out


def scope_digest(scope: Scope) -> str:
    """A stable 32-hex digest of a scope, the same in every process.

    Equal filters have one digest: key order, ``None`` values and ``namespace="x"`` vs ``["x"]`` do not
    matter.
    """
    text = json.dumps(
        _canonical_scope(scope), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16, person=b"agentmem-lease").hexdigest()


def lease_name(scope: Scope) -> str:
    """The lease a runner takes to consolidate ``scope``: ``"consolidate:<scope_digest(scope)>"``.

    Code that consolidates a scope outside a runner can take the same lease to stay out of its way.
    """
    return f"consolidate:{scope_digest(scope)}"


def _new_holder() -> str:
    # readable in the storage when debugging (which host and process holds a scope), unique by the token
    host = "".join(c for c in socket.gethostname() if c.isprintable())[:64] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(8)}"[:MAX_LEASE_NAME_CHARS]


# -- stats -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunnerStats:
    """What a runner did so far (a snapshot).

    Attributes:
        runs: jobs started (successful or not).
        failures: jobs that raised, and rounds for a scope that failed before its job (the scope list
            callable, ``count`` or the lease raised: the store unreachable, say).
        skipped_busy: due scopes skipped because another holder had their lease.
        lost_leases: renewals that found the lease taken by another holder while a job still ran (the
            job outlived its lease: a stall longer than ``lease_ttl``).
        last_error: the latest of those errors, or ``None``.
    """

    runs: int = 0
    failures: int = 0
    skipped_busy: int = 0
    lost_leases: int = 0
    last_error: BaseException | None = None


class _Counters:
    """The runner's mutable counters, behind a lock (jobs, heartbeats and readers may be on any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = RunnerStats()

    def add(self, **changes: int) -> None:
        with self._lock:
            values = {name: getattr(self._stats, name) + n for name, n in changes.items()}
            self._stats = replace(self._stats, **values)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._stats = replace(self._stats, failures=self._stats.failures + 1, last_error=exc)

    def snapshot(self) -> RunnerStats:
        with self._lock:
            return self._stats


# -- triggers (pure: the sync and async runners share every decision) -------------------------------------
@dataclass
class _ScopeState:
    scope: dict[str, Any]
    period_start: float
    """When this runner first saw it, last started a job for it, or found another runner on it."""
    size_seen: int | None = None
    """Its count after the last run (before it, when the job failed): ``max_items`` fires on a change."""
    dirty_at: float | None = None
    """The latest notification not yet consumed by a run (``None``: none pending)."""


@dataclass
class _Triggers:
    every: float | None
    max_items: int | None
    quiet_for: float | None
    clock: Callable[[], float]
    states: dict[str, _ScopeState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notify(self, scope: Scope) -> None:
        key, now = scope_digest(scope), self.clock()
        with self.lock:
            state = self.states.setdefault(key, _ScopeState(dict(scope), now))
            state.dirty_at = now

    def candidates(self, listed: list[dict[str, Any]] | None) -> list[tuple[str, dict[str, Any]]]:
        """The listed scopes, then the notified ones not listed; each once. Forgets the others' state.

        ``listed=None``: the list is unknown this round (its callable failed): only notified scopes are
        candidates, and nothing is forgotten (a listed scope's schedule must survive a failed listing).
        """
        with self.lock:
            if listed is None:
                return [(k, st.scope) for k, st in self.states.items() if st.dirty_at is not None]
            out: dict[str, dict[str, Any]] = {}
            for scope in listed:
                out.setdefault(scope_digest(scope), scope)
            for key, state in self.states.items():
                if state.dirty_at is not None:
                    out.setdefault(key, state.scope)
            # a scope neither listed nor notified any more is no candidate: drop what was kept of it
            for key in [k for k in self.states if k not in out]:
                del self.states[key]
            now = self.clock()
            for key, scope in out.items():
                self.states.setdefault(key, _ScopeState(scope, now))
            return list(out.items())

    def due_without_count(self, key: str) -> str | None:
        """``"schedule"`` or ``"quiet"`` when one of them fires now, else ``None``."""
        now = self.clock()
        with self.lock:
            state = self.states[key]
            if self.every is not None and now - state.period_start >= self.every:
                return "schedule"
            if self.quiet_for is not None and state.dirty_at is not None:
                if now - state.dirty_at >= self.quiet_for:
                    return "quiet"
            return None

    def due_by_size(self, key: str, count: int) -> bool:
        assert self.max_items is not None
        with self.lock:
            return count > self.max_items and count != self.states[key].size_seen

    def checked(self, key: str) -> None:
        """A notified scope was checked and is not due: without ``quiet_for`` its notification is spent."""
        if self.quiet_for is None:
            with self.lock:
                self.states[key].dirty_at = None

    def busy(self, key: str) -> None:
        """Another holder is consolidating it: this period of the schedule is done (notifications wait)."""
        with self.lock:
            self.states[key].period_start = self.clock()

    def started(self, key: str) -> float:
        now = self.clock()
        with self.lock:
            self.states[key].period_start = now
        return now

    def finished(self, key: str, started: float, *, ok: bool, size: int | None) -> None:
        with self.lock:
            state = self.states[key]
            if size is not None:
                state.size_seen = size
            if state.dirty_at is not None and state.dirty_at <= started:
                # consumed by this run (a notification during it stays pending); after a failure, try
                # again quiet_for from now: a backoff, not a retry every poll
                state.dirty_at = None if ok else self.clock()


# -- the shared configuration ------------------------------------------------------------------------------
class _RunnerBase(Generic[S]):
    """Configuration, triggers and stats shared by the two runners."""

    def __init__(
        self,
        store: S,
        *,
        scopes: Scopes,
        every: float | None,
        max_items: int | None,
        quiet_for: float | None,
        poll: float,
        lease_ttl: float,
        renew: bool,
        clock: Callable[[], float],
    ) -> None:
        if every is None and max_items is None and quiet_for is None:
            raise ConfigurationError("a consolidation runner needs a trigger: every, max_items or quiet_for")
        for what, value in (("every", every), ("quiet_for", quiet_for)):
            if value is not None and not (_is_number(value) and 0 <= value < float("inf")):
                raise ConfigurationError(f"{what} must be a number of seconds >= 0, got {value!r}")
        if max_items is not None and (not isinstance(max_items, int) or isinstance(max_items, bool)):
            raise ConfigurationError(f"max_items must be an int, got {max_items!r}")
        if max_items is not None and max_items < 0:
            raise ConfigurationError(f"max_items must be >= 0, got {max_items!r}")
        if not (_is_number(poll) and 0 < poll < float("inf")):
            raise ConfigurationError(f"poll must be a positive number of seconds, got {poll!r}")
        if not (_is_number(lease_ttl) and 0 < lease_ttl <= MAX_LEASE_TTL_SECONDS):
            raise ConfigurationError(
                f"lease_ttl must be in (0, {MAX_LEASE_TTL_SECONDS:g}], got {lease_ttl!r}"
            )
        self.store = store
        self.poll = float(poll)
        self.lease_ttl = float(lease_ttl)
        self.renew = renew
        self.holder = _new_holder()
        """This runner's lease holder id (host, process, random token)."""
        self._scopes: Callable[[], Iterable[Scope]] | None
        if scopes is None or callable(scopes):
            self._scopes = scopes
        else:
            fixed = [_checked_scope(s) for s in scopes]  # a bad list fails now, not every poll
            self._scopes = lambda: fixed
        self._triggers = _Triggers(every, max_items, quiet_for, clock)
        self._counters = _Counters()

    @property
    def stats(self) -> RunnerStats:
        """What this runner did so far (a consistent snapshot)."""
        return self._counters.snapshot()

    def notify(self, scope: Scope) -> None:
        """Tell the runner that ``scope`` was written to (call it after writes; cheap, any thread).

        With ``quiet_for``, the scope is due once no notification came for it during ``quiet_for``
        seconds; in any case it is a candidate for the other triggers at the next poll, listed or not.
        """
        self._triggers.notify(_checked_scope(scope))

    def _listed(self) -> list[dict[str, Any]] | None:
        if self._scopes is None:
            return []
        try:
            return [_checked_scope(s) for s in self._scopes()]
        except Exception as exc:  # the caller's callable: counted, and this round checks notified scopes
            self._failed("listing the scopes", exc)
            return None

    def _failed(self, what: str, exc: BaseException) -> None:
        self._counters.failed(exc)
        logger.error("consolidation runner %s: %s failed: %r", self.holder, what, exc, exc_info=exc)

    def _lost(self, scope: Scope) -> None:
        self._counters.add(lost_leases=1)
        logger.warning(
            "consolidation runner %s lost the lease of %s while its job ran (a job longer than lease_ttl "
            "without renewal, or a stall): another runner may consolidate it too",
            self.holder,
            dict(scope),
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _checked_scope(scope: Any) -> dict[str, Any]:
    if not isinstance(scope, Mapping):
        raise ConfigurationError(
            f"a scope is a mapping of the store's filters (e.g. {{'user_id': 'ana'}}), got {scope!r}"
        )
    return dict(scope)


# -- the sync runner ---------------------------------------------------------------------------------------
class ConsolidationRunner(_RunnerBase["MemoryStore"]):
    """Runs a consolidation job per scope in a daemon thread, when its triggers fire (see the module).

    Use :meth:`start` / :meth:`stop`, or ``with runner:``. :meth:`run_once` runs one round in the calling
    thread (for a scheduler of your own, or tests).
    """

    def __init__(
        self,
        store: MemoryStore,
        job: Callable[[MemoryStore, dict[str, Any]], Any],
        *,
        scopes: Scopes = None,
        every: float | None = None,
        max_items: int | None = None,
        quiet_for: float | None = None,
        poll: float = 5.0,
        lease_ttl: float = 60.0,
        renew: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        """Create a runner (nothing runs before :meth:`start` or :meth:`run_once`).

        Args:
            store: the store the jobs consolidate (and the leases live in).
            job: ``job(store, scope)``: consolidates one scope (a dict of the store's scope filters).
            scopes: the scopes to watch: a list of dicts, a callable returning them (asked every poll),
                or ``None``: only the scopes passed to :meth:`notify`.
            every: run each scope every so many seconds (the first time ``every`` after the runner
                first sees it; ``0``: every poll).
            max_items: run a scope when it holds more memories than this (and changed since its last run).
            quiet_for: run a notified scope once it had no notification for this many seconds.
            poll: seconds between two rounds of checks.
            lease_ttl: the lease's lifetime in seconds: how long a dead runner keeps a scope from the
                others. Renewed every ``lease_ttl / 3`` while a job runs (``renew=True``); with
                ``renew=False`` it must exceed the longest job.
            renew: renew the lease from a heartbeat thread while a job runs.
            clock: the runner's clock for its triggers (seconds; monotonic by default).
            sleep: waits ``poll`` seconds between rounds; default: a wait that :meth:`stop` interrupts.

        Raises:
            ConfigurationError: no trigger, or an invalid interval, bound, ttl or scope list.
        """
        super().__init__(
            store,
            scopes=scopes,
            every=every,
            max_items=max_items,
            quiet_for=quiet_for,
            poll=poll,
            lease_ttl=lease_ttl,
            renew=renew,
            clock=clock,
        )
        self.job = job
        self._stopping = threading.Event()
        self._sleep = sleep if sleep is not None else self._stopping.wait
        self._thread: threading.Thread | None = None
        self._round = threading.Lock()  # one round at a time: one holder id must never run a scope twice

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (a daemon: it does not keep the process alive).

        Raises:
            RuntimeError: it is already running.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the consolidation runner is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="agentmem-consolidation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread and wait for it: at once between jobs, after the job that is running otherwise.

        Args:
            timeout: wait at most this many seconds (``None``: until it ended).

        Returns:
            Whether the thread has ended (``False``: a job still runs past ``timeout``).
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            if self._stopping.is_set():
                break
            try:
                self._sleep(self.poll)
            except Exception as exc:  # an injected sleep: never a reason for the runner to die
                self._failed("sleeping", exc)
                self._stopping.wait(self.poll)

    # -- one round ------------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Check every trigger once and run the jobs that are due, in the calling thread.

        Returns:
            How many jobs ran (successful or not).
        """
        with self._round:
            ran = 0
            for key, scope in self._triggers.candidates(self._listed()):
                if self._stopping.is_set():
                    break
                try:
                    ran += self._check(key, scope)
                except Exception as exc:  # the store's count or lease: this scope waits for next round
                    self._failed(f"checking {scope}", exc)
            return ran

    def _check(self, key: str, scope: dict[str, Any]) -> int:
        triggers = self._triggers
        size: int | None = None
        reason = triggers.due_without_count(key)
        if reason is None and triggers.max_items is not None:
            size = self.store.count(**scope)
            if triggers.due_by_size(key, size):
                reason = "size"
        if reason is None:
            triggers.checked(key)
            return 0
        name = lease_name(scope)
        if not self.store.acquire_lease(name, holder=self.holder, ttl=self.lease_ttl):
            self._counters.add(skipped_busy=1)
            triggers.busy(key)
            logger.debug("consolidation of %s skipped: another runner holds %s", scope, name)
            return 0
        started = triggers.started(key)
        self._counters.add(runs=1)
        logger.debug("consolidating %s (%s)", scope, reason)
        ok = False
        heartbeat = _Heartbeat(self, name, scope) if self.renew else None
        try:
            self.job(self.store, dict(scope))
            ok = True
        except Exception as exc:  # the caller's job: logged and counted, the runner goes on
            self._failed(f"the job for {scope}", exc)
        finally:
            if heartbeat is not None:
                heartbeat.finish()
            self._release(name, scope)
        if ok and triggers.max_items is not None:
            size = self._count_after(scope)
        triggers.finished(key, started, ok=ok, size=size)
        return 1

    def _release(self, name: str, scope: Scope) -> None:
        try:
            self.store.release_lease(name, holder=self.holder)
        except Exception as exc:  # it expires by itself lease_ttl later
            logger.warning(
                "consolidation runner %s could not release %s (%r): it expires", self.holder, name, exc
            )

    def _count_after(self, scope: dict[str, Any]) -> int | None:
        try:
            return self.store.count(**scope)
        except Exception as exc:
            self._failed(f"counting {scope}", exc)
            return None


class _Heartbeat:
    """Renews a lease every ``lease_ttl / 3`` from its own thread while a sync job runs."""

    def __init__(self, runner: ConsolidationRunner, name: str, scope: Scope) -> None:
        self._runner, self._name, self._scope = runner, name, scope
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="agentmem-lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        runner = self._runner
        while not self._done.wait(runner.lease_ttl / 3):
            try:
                held = runner.store.acquire_lease(self._name, holder=runner.holder, ttl=runner.lease_ttl)
            except Exception as exc:  # the store unreachable for now: the lease may still be ours
                logger.warning(
                    "consolidation runner %s could not renew %s: %r", runner.holder, self._name, exc
                )
                continue
            if not held:
                runner._lost(self._scope)
                return

    def finish(self) -> None:
        self._done.set()
        self._thread.join()


# -- the asyncio runner ------------------------------------------------------------------------------------
class AsyncConsolidationRunner(_RunnerBase["AsyncMemoryStore"]):
    """The asyncio twin of :class:`ConsolidationRunner`: an asyncio task, an async job.

    ``await runner.start()`` / ``await runner.stop()``, or ``async with runner:``; :meth:`notify` is
    a plain method (cheap, callable from any thread).
    """

    def __init__(
        self,
        store: AsyncMemoryStore,
        job: Callable[[AsyncMemoryStore, dict[str, Any]], Awaitable[Any]],
        *,
        scopes: Scopes = None,
        every: float | None = None,
        max_items: int | None = None,
        quiet_for: float | None = None,
        poll: float = 5.0,
        lease_ttl: float = 60.0,
        renew: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        """Create a runner (nothing runs before :meth:`start` or :meth:`run_once`).

        Args:
            store: the async store the jobs consolidate (and the leases live in).
            job: ``await job(store, scope)``: consolidates one scope.
            scopes: as :class:`ConsolidationRunner` (a callable is called, not awaited).
            every: as :class:`ConsolidationRunner`.
            max_items: as :class:`ConsolidationRunner`.
            quiet_for: as :class:`ConsolidationRunner`.
            poll: seconds between two rounds of checks.
            lease_ttl: as :class:`ConsolidationRunner` (renewed by a task while a job runs).
            renew: renew the lease from a heartbeat task while a job runs.
            clock: the runner's clock for its triggers (seconds; monotonic by default).
            sleep: ``await sleep(poll)`` between rounds; default: a wait that :meth:`stop` interrupts.

        Raises:
            ConfigurationError: no trigger, or an invalid interval, bound, ttl or scope list.
        """
        super().__init__(
            store,
            scopes=scopes,
            every=every,
            max_items=max_items,
            quiet_for=quiet_for,
            poll=poll,
            lease_ttl=lease_ttl,
            renew=renew,
            clock=clock,
        )
        self.job = job
        self._custom_sleep = sleep
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._round: asyncio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the runner's task on the running event loop.

        Raises:
            RuntimeError: it is already running.
        """
        if self._task is not None and not self._task.done():
            raise RuntimeError("the consolidation runner is already running")
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="agentmem-consolidation")

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop the task and wait for it: at once between jobs, after the job that is running otherwise.

        Args:
            timeout: wait at most this many seconds, then cancel the task (and the job it runs).

        Returns:
            Whether the task ended on its own (``False``: it was cancelled after ``timeout``).
        """
        if self._stopping is not None:
            self._stopping.set()
        task = self._task
        if task is None or task.done():
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            return True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False

    @property
    def running(self) -> bool:
        """Whether the runner's task is alive."""
        return self._task is not None and not self._task.done()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def _sleep(self, seconds: float) -> None:
        if self._custom_sleep is not None:
            await self._custom_sleep(seconds)
            return
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _loop(self) -> None:
        while not self._is_stopping():
            await self.run_once()
            if self._is_stopping():
                break
            try:
                await self._sleep(self.poll)
            except Exception as exc:  # an injected sleep: never a reason for the runner to die
                self._failed("sleeping", exc)
                await asyncio.sleep(self.poll)

    # -- one round ------------------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Check every trigger once and run the jobs that are due, in the calling task.

        Returns:
            How many jobs ran (successful or not).
        """
        if self._round is None:
            self._round = asyncio.Lock()
        async with self._round:
            ran = 0
            for key, scope in self._triggers.candidates(self._listed()):
                if self._is_stopping():
                    break
                try:
                    ran += await self._check(key, scope)
                except Exception as exc:  # the store's count or lease: this scope waits for next round
                    self._failed(f"checking {scope}", exc)
            return ran

    async def _check(self, key: str, scope: dict[str, Any]) -> int:
        triggers = self._triggers
        size: int | None = None
        reason = triggers.due_without_count(key)
        if reason is None and triggers.max_items is not None:
            size = await self.store.count(**scope)
            if triggers.due_by_size(key, size):
                reason = "size"
        if reason is None:
            triggers.checked(key)
            return 0
        name = lease_name(scope)
        if not await self.store.acquire_lease(name, holder=self.holder, ttl=self.lease_ttl):
            self._counters.add(skipped_busy=1)
            triggers.busy(key)
            logger.debug("consolidation of %s skipped: another runner holds %s", scope, name)
            return 0
        started = triggers.started(key)
        self._counters.add(runs=1)
        logger.debug("consolidating %s (%s)", scope, reason)
        ok = False
        heartbeat = asyncio.get_running_loop().create_task(self._beat(name, scope)) if self.renew else None
        try:
            await self.job(self.store, dict(scope))
            ok = True
        except Exception as exc:  # the caller's job: logged and counted, the runner goes on
            self._failed(f"the job for {scope}", exc)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
            await self._release(name)
        if ok and triggers.max_items is not None:
            size = await self._count_after(scope)
        triggers.finished(key, started, ok=ok, size=size)
        return 1

    async def _beat(self, name: str, scope: Scope) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                held = await self.store.acquire_lease(name, holder=self.holder, ttl=self.lease_ttl)
            except Exception as exc:  # the store unreachable for now: the lease may still be ours
                logger.warning("consolidation runner %s could not renew %s: %r", self.holder, name, exc)
                continue
            if not held:
                self._lost(scope)
                return

    async def _release(self, name: str) -> None:
        try:
            await self.store.release_lease(name, holder=self.holder)
        except Exception as exc:  # it expires by itself lease_ttl later
            logger.warning(
                "consolidation runner %s could not release %s (%r): it expires", self.holder, name, exc
            )

    async def _count_after(self, scope: dict[str, Any]) -> int | None:
        try:
            return int(await self.store.count(**scope))
        except Exception as exc:
            self._failed(f"counting {scope}", exc)
            return None
