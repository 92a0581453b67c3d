"""The consolidation runner: triggers, one job per scope at a time across runners, errors, stop.

Trigger decisions are checked round by round (``run_once`` with a settable clock: exact, no timing);
exclusion, lease expiry, failures and ``stop()`` with the real threads and tasks, on both backends (each
store here runs on real time, as leases expire by the backend's clock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import Clock

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.consolidation.runner import (
    AsyncConsolidationRunner,
    ConsolidationRunner,
    lease_name,
    scope_digest,
)
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import ConfigurationError

pytestmark = pytest.mark.integration

ANA = {"user_id": "ana"}
BO = {"user_id": "bo"}


def _url(backend: str, valkey_url: str, tmp_path: Path, name: str) -> str:
    return valkey_url if backend == "valkey" else f"sqlite:///{tmp_path / (name + '.db')}"


@pytest.fixture(params=["valkey", "sqlite"])
def stores(
    request: pytest.FixtureRequest, valkey_url: str, unique_name: str, tmp_path: Path
) -> Iterator[tuple[MemoryStore, MemoryStore]]:
    """Two sync store objects of one store (two processes would open these), on real time."""
    url = _url(request.param, valkey_url, tmp_path, unique_name)
    pair = [MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64)) for _ in range(2)]
    for s in pair:
        s.setup()
    try:
        yield pair[0], pair[1]
    finally:
        for s in pair:
            s.close()


@pytest.fixture
def store(stores: tuple[MemoryStore, MemoryStore]) -> MemoryStore:
    return stores[0]


@pytest.fixture(params=["valkey", "sqlite"])
async def astores(
    request: pytest.FixtureRequest, valkey_url: str, unique_name: str, tmp_path: Path
) -> AsyncIterator[tuple[AsyncMemoryStore, AsyncMemoryStore]]:
    """The async twin of ``stores``."""
    url = _url(request.param, valkey_url, tmp_path, unique_name)
    pair = [AsyncMemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64)) for _ in range(2)]
    for s in pair:
        await s.setup()
    try:
        yield pair[0], pair[1]
    finally:
        for s in pair:
            await s.close()


class Calls:
    """A stub job: records the scopes it ran for, can sleep, fail, and detects overlapping runs."""

    def __init__(self, *, sleep: float = 0.0, fail: int = 0) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.sleep = sleep
        self.fail = fail
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def _enter(self, scope: dict[str, Any]) -> bool:
        with self._lock:
            self.scopes.append(scope)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            return len(self.scopes) <= self.fail

    def _exit(self) -> None:
        with self._lock:
            self.active -= 1

    def __call__(self, store: Any, scope: dict[str, Any]) -> None:
        failing = self._enter(scope)
        try:
            time.sleep(self.sleep)
            if failing:
                raise RuntimeError(f"model down ({len(self.scopes)})")
        finally:
            self._exit()

    async def run(self, store: Any, scope: dict[str, Any]) -> None:
        failing = self._enter(scope)
        try:
            await asyncio.sleep(self.sleep)
            if failing:
                raise RuntimeError(f"model down ({len(self.scopes)})")
        finally:
            self._exit()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.scopes)


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def await_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


# -- lease names -------------------------------------------------------------------------------------------
def test_a_scope_s_lease_name_is_stable_and_ignores_spelling() -> None:
    assert lease_name(ANA) == "consolidate:" + scope_digest(ANA)
    assert len(scope_digest(ANA)) == 32
    assert scope_digest(ANA) == scope_digest({"user_id": "ana", "thread_id": None})
    assert scope_digest({"namespace": "t", "user_id": "ana"}) == scope_digest(
        {"user_id": "ana", "namespace": ["t"]}
    )
    assert scope_digest(ANA) != scope_digest(BO)
    assert scope_digest(ANA) != scope_digest({"agent_id": "ana"})
    # pinned: runners of different processes (and releases) must name one scope's lease alike
    assert scope_digest(ANA) == "b850c01d5da33efb70a9319ba04e0277"


# -- triggers, round by round ------------------------------------------------------------------------------
def test_the_schedule_runs_each_scope_once_per_period(store: MemoryStore) -> None:
    clock, job = Clock(0.0), Calls()
    runner = ConsolidationRunner(store, job, scopes=[ANA, BO], every=10, clock=clock)
    assert runner.run_once() == 0  # an interval: the first period starts when the runner sees them
    clock.now = 9.9
    assert runner.run_once() == 0
    clock.now = 10.0
    assert runner.run_once() == 2
    assert job.scopes == [ANA, BO]
    assert runner.run_once() == 0
    clock.now = 19.9
    assert runner.run_once() == 0
    clock.now = 20.0
    assert runner.run_once() == 2
    assert runner.stats.runs == 4 and runner.stats.failures == 0


def test_a_scope_list_callable_is_asked_every_round(store: MemoryStore) -> None:
    clock, job = Clock(0.0), Calls()
    listed = [[ANA], [ANA, BO], []]
    runner = ConsolidationRunner(store, job, scopes=lambda: listed.pop(0), every=0, clock=clock)
    assert runner.run_once() == 1
    assert runner.run_once() == 2  # bo appeared
    assert job.scopes == [ANA, ANA, BO]
    assert runner.run_once() == 0


def test_the_size_trigger_fires_only_above_max_items(store: MemoryStore) -> None:
    def fold(s: MemoryStore, scope: dict[str, Any]) -> None:  # a stub consolidation: n memories -> 1
        calls.append(scope)
        s.forget_by_scope(**scope)
        s.remember("summary", **scope)

    calls: list[dict[str, Any]] = []
    runner = ConsolidationRunner(store, fold, scopes=[ANA, BO], max_items=3)
    store.remember_many([{"content": f"note {i}", "user_id": "ana"} for i in range(3)])
    store.remember_many([{"content": f"note {i}", "user_id": "bo"} for i in range(5)])
    assert runner.run_once() == 1  # bo only: ana holds exactly max_items
    assert calls == [BO] and store.count(**BO) == 1
    assert runner.run_once() == 0
    store.remember("one more", user_id="ana")
    assert runner.run_once() == 1
    assert calls == [BO, ANA] and store.count(**ANA) == 1


def test_a_job_that_leaves_the_scope_over_the_bound_runs_again_only_when_it_changes(
    store: MemoryStore,
) -> None:
    job = Calls()  # consolidates nothing away
    runner = ConsolidationRunner(store, job, scopes=[ANA], max_items=1)
    store.remember_many([{"content": f"note {i}", "user_id": "ana"} for i in range(3)])
    assert runner.run_once() == 1
    assert runner.run_once() == 0  # still 3: no new run (no loop burning a model every poll)
    store.remember("more", user_id="ana")
    assert runner.run_once() == 1


def test_notify_debounces_a_burst_of_writes_into_one_run_after_the_quiet_period(store: MemoryStore) -> None:
    clock, job = Clock(0.0), Calls()
    runner = ConsolidationRunner(store, job, quiet_for=5, clock=clock)  # no scope list: notified ones
    assert runner.run_once() == 0
    for t in (0.0, 1.0, 2.0):
        clock.now = t
        runner.notify(ANA)
    clock.now = 6.9  # 4.9 s after the last write
    assert runner.run_once() == 0
    clock.now = 7.0
    assert runner.run_once() == 1
    clock.now = 100.0
    assert runner.run_once() == 0  # the burst was consumed
    assert job.scopes == [ANA]


def test_a_notification_during_a_run_keeps_the_scope_pending(store: MemoryStore) -> None:
    clock = Clock(0.0)
    runner: ConsolidationRunner

    def job(s: MemoryStore, scope: dict[str, Any]) -> None:
        calls.append(clock.now)
        if len(calls) == 1:
            clock.now += 1
            runner.notify(scope)  # a write while consolidating: not in this run's input

    calls: list[float] = []
    runner = ConsolidationRunner(store, job, quiet_for=5, clock=clock)
    runner.notify(ANA)
    clock.now = 5.0
    assert runner.run_once() == 1
    clock.now = 10.9
    assert runner.run_once() == 0
    clock.now = 11.0
    assert runner.run_once() == 1
    assert runner.run_once() == 0


def test_notify_makes_a_scope_a_candidate_for_the_size_trigger(store: MemoryStore) -> None:
    job = Calls()
    runner = ConsolidationRunner(store, job, max_items=2)  # no list: it learns scopes from notify
    store.remember_many([{"content": f"note {i}", "user_id": "ana"} for i in range(3)])
    assert runner.run_once() == 0
    runner.notify(ANA)
    assert runner.run_once() == 1
    assert runner.run_once() == 0


def test_the_lease_is_released_after_each_job(stores: tuple[MemoryStore, MemoryStore]) -> None:
    store, other = stores
    runner = ConsolidationRunner(store, Calls(fail=1), scopes=[ANA, BO], every=0)
    assert runner.run_once() == 2  # the first job failed, the second did not: both released
    for scope in (ANA, BO):
        assert other.acquire_lease(lease_name(scope), holder="other", ttl=5)


def test_a_scope_whose_lease_is_held_elsewhere_is_skipped(stores: tuple[MemoryStore, MemoryStore]) -> None:
    store, other = stores
    clock, job = Clock(0.0), Calls()
    assert other.acquire_lease(lease_name(ANA), holder="elsewhere", ttl=30)
    runner = ConsolidationRunner(store, job, scopes=[ANA, BO], every=10, clock=clock)
    assert runner.run_once() == 0
    clock.now = 10
    assert runner.run_once() == 1
    assert job.scopes == [BO]
    assert runner.stats.skipped_busy == 1
    assert other.release_lease(lease_name(ANA), holder="elsewhere")
    assert runner.run_once() == 0  # its period was another runner's: next one in 10 s
    clock.now = 20
    assert runner.run_once() == 2


def test_invalid_configurations_are_refused(store: MemoryStore) -> None:
    job = Calls()
    for options in (
        {},  # no trigger
        {"every": -1},
        {"every": float("nan")},
        {"quiet_for": "5"},
        {"max_items": 1.5},
        {"max_items": -1},
        {"every": 1, "poll": 0},
        {"every": 1, "lease_ttl": 0},
        {"every": 1, "scopes": ["ana"]},
    ):
        with pytest.raises(ConfigurationError):
            ConsolidationRunner(store, job, **options)  # type: ignore[arg-type]
    runner = ConsolidationRunner(store, job, every=1)
    with pytest.raises(ConfigurationError):
        runner.notify("ana")  # type: ignore[arg-type]


# -- the thread --------------------------------------------------------------------------------------------
def test_the_schedule_fires_in_the_background(store: MemoryStore) -> None:
    job = Calls()
    with ConsolidationRunner(store, job, scopes=[ANA], every=0.05, poll=0.01) as runner:
        wait_until(lambda: job.count >= 3)
        assert runner.running
    assert not runner.running
    assert runner.stats.runs == job.count


def test_two_runners_never_run_one_scope_at_once(stores: tuple[MemoryStore, MemoryStore]) -> None:
    job = Calls(sleep=0.03)  # shared: it sees any overlap of the two runners' jobs
    runners = [ConsolidationRunner(s, job, scopes=[ANA], every=0, poll=0.002) for s in stores]
    for runner in runners:
        runner.start()
    try:
        wait_until(lambda: job.count >= 8 and sum(r.stats.skipped_busy for r in runners) >= 3)
    finally:
        for runner in runners:
            runner.stop()
    assert job.max_active == 1
    assert all(r.stats.failures == 0 for r in runners)


def test_a_dead_holder_s_lease_expires_and_the_runner_proceeds(
    stores: tuple[MemoryStore, MemoryStore],
) -> None:
    store, other = stores
    job = Calls()
    assert other.acquire_lease(lease_name(ANA), holder="dead-process", ttl=0.3)  # never released
    taken = time.monotonic()
    with ConsolidationRunner(store, job, scopes=[ANA], every=0, poll=0.01) as runner:
        wait_until(lambda: runner.stats.skipped_busy >= 2)
        assert job.count == 0
        wait_until(lambda: job.count >= 1)
    assert time.monotonic() - taken >= 0.25  # not before the lease's end


def test_a_failing_job_is_counted_logged_and_the_runner_keeps_going(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    job = Calls(fail=2)
    with caplog.at_level(logging.ERROR, logger="agentmem.consolidation"):
        with ConsolidationRunner(store, job, scopes=[ANA], every=0, poll=0.01) as runner:
            wait_until(lambda: job.count >= 4)
            assert runner.running
    stats = runner.stats
    assert stats.failures == 2 and stats.runs >= 4
    assert isinstance(stats.last_error, RuntimeError) and "model down (2)" in str(stats.last_error)
    failed = [r for r in caplog.records if r.name == "agentmem.consolidation" and r.levelno == logging.ERROR]
    assert len(failed) == 2 and failed[0].exc_info is not None


def test_a_failing_scope_list_or_store_does_not_stop_the_runner(store: MemoryStore) -> None:
    rounds: list[int] = []

    def scopes() -> list[dict[str, Any]]:
        rounds.append(1)
        if len(rounds) == 1:
            raise OSError("registry unreachable")
        return [ANA, {"user_id": ""}]  # the second is invalid: the store refuses it each round

    job = Calls()
    with ConsolidationRunner(store, job, scopes=scopes, max_items=0, poll=0.01) as runner:
        store.remember("note", user_id="ana")
        wait_until(lambda: job.count >= 1 and runner.stats.failures >= 3)
    assert job.scopes[0] == ANA
    assert isinstance(runner.stats.last_error, Exception)


def test_stop_is_prompt_between_jobs(store: MemoryStore) -> None:
    job = Calls()
    runner = ConsolidationRunner(store, job, quiet_for=0, poll=60)
    runner.notify(ANA)
    runner.start()
    wait_until(lambda: job.count == 1)
    time.sleep(0.02)  # the thread is in its 60 s wait now
    began = time.monotonic()
    assert runner.stop() is True
    assert time.monotonic() - began < 0.5
    assert not runner.running
    with pytest.raises(RuntimeError):
        with runner:
            runner.start()  # a running runner cannot be started twice


def _lease_taken_during_a_long_job(store: MemoryStore, other: MemoryStore, *, renew: bool) -> bool:
    """Whether another holder gets the lease two lifetimes into a job three lifetimes long."""
    job = Calls(sleep=0.5)
    runner = ConsolidationRunner(store, job, scopes=[ANA], every=0, lease_ttl=0.15, renew=renew)
    worker = threading.Thread(target=runner.run_once)
    worker.start()
    wait_until(lambda: job.active == 1)
    time.sleep(0.3)
    got = other.acquire_lease(lease_name(ANA), holder="other", ttl=0.15)
    worker.join()
    assert runner.stats.runs == 1 and runner.stats.lost_leases == 0
    return got


def test_the_lease_is_renewed_while_a_long_job_runs(stores: tuple[MemoryStore, MemoryStore]) -> None:
    store, other = stores
    assert _lease_taken_during_a_long_job(store, other, renew=True) is False
    # the control: without renewal the lease ends mid-job, so another runner would get in
    assert _lease_taken_during_a_long_job(store, other, renew=False) is True


# -- the asyncio runner ------------------------------------------------------------------------------------
async def test_async_triggers_round_by_round(astores: tuple[AsyncMemoryStore, AsyncMemoryStore]) -> None:
    store, _ = astores
    clock, job = Clock(0.0), Calls()
    runner = AsyncConsolidationRunner(store, job.run, scopes=[ANA], every=10, quiet_for=5, clock=clock)
    assert await runner.run_once() == 0
    runner.notify(BO)
    assert await runner.run_once() == 0
    clock.now = 5
    assert await runner.run_once() == 1  # bo, quiet for 5 s (not yet on the 10 s schedule)
    clock.now = 10
    assert await runner.run_once() == 1  # ana's period
    assert await runner.run_once() == 0
    assert job.scopes == [BO, ANA]


async def test_two_async_runners_never_run_one_scope_at_once(
    astores: tuple[AsyncMemoryStore, AsyncMemoryStore],
) -> None:
    job = Calls(sleep=0.03)
    runners = [AsyncConsolidationRunner(s, job.run, scopes=[ANA], every=0, poll=0.002) for s in astores]
    for runner in runners:
        await runner.start()
    try:
        await await_until(lambda: job.count >= 8 and sum(r.stats.skipped_busy for r in runners) >= 3)
    finally:
        for runner in runners:
            await runner.stop()
    assert job.max_active == 1


async def test_the_async_runner_survives_failures_and_stops_promptly(
    astores: tuple[AsyncMemoryStore, AsyncMemoryStore],
) -> None:
    store, other = astores
    job = Calls(fail=1)
    async with AsyncConsolidationRunner(store, job.run, scopes=[ANA], every=0, poll=0.01) as runner:
        await await_until(lambda: job.count >= 3)
        assert runner.running
    assert runner.stats.failures == 1 and not runner.running
    assert await other.acquire_lease(lease_name(ANA), holder="other", ttl=5)  # released on the way out
    await other.release_lease(lease_name(ANA), holder="other")

    slow = AsyncConsolidationRunner(store, Calls().run, scopes=[ANA], every=3600, poll=60)
    await slow.start()
    await asyncio.sleep(0.05)
    began = time.monotonic()
    assert await slow.stop() is True
    assert time.monotonic() - began < 0.5


async def test_the_async_runner_renews_its_lease_and_a_dead_holder_s_expires(
    astores: tuple[AsyncMemoryStore, AsyncMemoryStore],
) -> None:
    store, other = astores
    assert await other.acquire_lease(lease_name(ANA), holder="dead-process", ttl=0.2)
    job = Calls(sleep=0.4)
    runner = AsyncConsolidationRunner(store, job.run, scopes=[ANA], every=0, poll=0.01, lease_ttl=0.12)
    async with runner:
        await await_until(lambda: job.active == 1)  # after the dead holder's lease ended
        await asyncio.sleep(0.25)  # two of its own lifetimes into the job
        assert not await other.acquire_lease(lease_name(ANA), holder="other", ttl=0.12)
    assert runner.stats.skipped_busy >= 1 and runner.stats.lost_leases == 0
