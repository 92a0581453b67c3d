"""Bounded load test: many concurrent agents (threads and asyncio tasks) on one loopback Valkey.

Every agent is a loop of operations, each for a user drawn from ``--scopes`` users: remember (50%),
recall (35%), list (10%) and forget one of the memories it wrote (5%; it may be evicted already); a
fifth of the remembers are working memories with a ``--ttl`` second TTL.
Threads share one ``MemoryStore``; tasks share one ``AsyncMemoryStore`` (each store has its own
connection pool, as an application would). The run stops at ``--seconds`` or ``--max-ops``, whichever
comes first. The store has ``max_items_per_scope=--capacity``.

Reported (and written to ``--json``): operations, throughput, p50/p99 per operation and over all, the
errors (any exception is one; the run fails when there is any), the memories held at the end against the
bound ``scopes x capacity``, the largest scope, working memories still there ``--ttl`` + 1 s after the
run (0 when TTLs hold), and the server's ``used_memory`` at the half-time mark, at the end, and after the
TTLs ran out (bounded: the store does not grow once every scope is full).

Usage::

    python benchmarks/load_bench.py [--valkey-url URL] [--threads 16] [--tasks 16] [--seconds 30]
        [--max-ops 200000] [--scopes 50] [--capacity 20] [--ttl 2] [--json OUT.json]

Without ``--valkey-url`` it starts a throwaway ``valkey-server`` with the search module on loopback.
Embeddings are a keyless hashing embedder (64 dims), so the figures measure agentmem and Valkey only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import valkey

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.server import ValkeyServer

WORDS = (
    "trip flight hotel window aisle seat vegan budget lisbon porto oslo tokyo museum beach train "
    "loyalty upgrade breakfast quiet room late checkout early boarding visa passport"
).split()


@dataclass
class Tally:
    """Latencies (seconds) per operation and the errors, shared by every agent (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    ops: int = 0

    def add(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.ops += 1

    def fail(self, op: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            self.ops += 1


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))


def _choose(rng: random.Random) -> str:
    r = rng.random()
    return "remember" if r < 0.50 else "recall" if r < 0.85 else "list" if r < 0.95 else "forget"


class Plan:
    """The shared stop condition: a deadline and an operation budget."""

    def __init__(self, seconds: float, max_ops: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.budget = max_ops
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.budget <= 0 or time.monotonic() >= self.deadline:
                return False
            self.budget -= 1
            return True


def _step(store: Any, op: str, user: str, rng: random.Random, mine: list[str], ttl: float) -> Any:
    if op == "remember":
        working = rng.random() < 0.2
        return store.remember(
            _text(rng), user_id=user, importance=rng.random(), tags=["working"] if working else ["fact"],
            ttl=ttl if working else None,
        )  # fmt: skip
    if op == "recall":
        return store.recall(_text(rng), user_id=user, k=5)
    if op == "list":
        return store.list(user_id=user, limit=10)
    return store.forget(mine.pop(rng.randrange(len(mine)))) if mine else store.count(user_id=user)


def _thread_agent(store: MemoryStore, index: int, scopes: int, plan: Plan, tally: Tally, ttl: float) -> None:
    rng, mine = random.Random(index), []
    while plan.take():
        op, user = _choose(rng), f"u{rng.randrange(scopes)}"
        started = time.perf_counter()
        try:
            result = _step(store, op, user, rng, mine, ttl)
        except Exception as exc:  # counted and reported: the run fails on any
            tally.fail(op, exc)
            continue
        tally.add(op, time.perf_counter() - started)
        if op == "remember":
            mine.append(result)


async def _task_agent(
    store: AsyncMemoryStore, index: int, scopes: int, plan: Plan, tally: Tally, ttl: float
) -> None:
    rng, mine = random.Random(10_000 + index), []
    while plan.take():
        op, user = _choose(rng), f"u{rng.randrange(scopes)}"
        started = time.perf_counter()
        try:
            result = await _step(store, op, user, rng, mine, ttl)
        except Exception as exc:  # counted and reported: the run fails on any
            tally.fail(op, exc)
            continue
        tally.add(op, time.perf_counter() - started)
        if op == "remember":
            mine.append(result)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0 if ordered else 0.0


def _ms(values: list[float], q: float) -> float:
    return round(_percentile(values, q), 2)


def _used_memory(url: str) -> int:
    client = valkey.Valkey.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def run(
    url: str, *, threads: int, tasks: int, seconds: float, max_ops: int, scopes: int, capacity: int,
    ttl: float, log: Callable[[str], object] = print,
) -> dict[str, Any]:  # fmt: skip
    """Run the load against ``url`` and return the report (see the module docs)."""
    name = "load_" + uuid.uuid4().hex[:8]
    options: dict[str, Any] = {"max_items_per_scope": capacity}
    sync_store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(64), **options)
    sync_store.setup()
    plan, tally = Plan(seconds, max_ops), Tally()
    half: dict[str, int] = {}

    async def async_side() -> None:
        store = AsyncMemoryStore.from_url(url, name=name, embedder=HashingEmbedder(64), **options)
        await store.setup()
        try:
            await asyncio.gather(*(_task_agent(store, i, scopes, plan, tally, ttl) for i in range(tasks)))
        finally:
            await store.close()

    def sample_half() -> None:
        time.sleep(seconds / 2)
        half["used_memory"] = _used_memory(url)

    started = time.perf_counter()
    workers = [
        threading.Thread(target=_thread_agent, args=(sync_store, i, scopes, plan, tally, ttl))
        for i in range(threads)
    ]
    workers.append(threading.Thread(target=lambda: asyncio.run(async_side())))
    sampler = threading.Thread(target=sample_half, daemon=True)
    for worker in (*workers, sampler):
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    end_memory = _used_memory(url)
    try:
        held = sync_store.count()
        largest = max((s.total for s in sync_store.stats().scopes), default=0)
        time.sleep(ttl + 1.0)
        working_left = sync_store.count(tags=["working"])
        after_ttl_memory = _used_memory(url)
    finally:
        sync_store.close()
    every = [x for values in tally.latencies.values() for x in values]
    report: dict[str, Any] = {
        "threads": threads, "tasks": tasks, "seconds": round(elapsed, 2), "ops": tally.ops,
        "ops_per_second": round(tally.ops / elapsed, 1), "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "p50_ms": round(_percentile(every, 0.50), 2), "p99_ms": round(_percentile(every, 0.99), 2),
        "per_op": {
            op: {"n": len(v), "p50_ms": _ms(v, 0.5), "p99_ms": _ms(v, 0.99)}
            for op, v in sorted(tally.latencies.items())
        },
        "scopes": scopes, "capacity": capacity, "held": held, "bound": scopes * capacity,
        "largest_scope": largest, "working_left_after_ttl": working_left,
        "used_memory_half": half.get("used_memory"), "used_memory_end": end_memory,
        "used_memory_after_ttl": after_ttl_memory,
    }  # fmt: skip
    log(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--valkey-url")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-ops", type=int, default=200_000)
    parser.add_argument("--scopes", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url = args.valkey_url or stack.enter_context(ValkeyServer()).url
        report = run(
            url, threads=args.threads, tasks=args.tasks, seconds=args.seconds, max_ops=args.max_ops,
            scopes=args.scopes, capacity=args.capacity, ttl=args.ttl,
        )  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
    bounded = report["held"] <= report["bound"] and report["largest_scope"] <= args.capacity
    return 0 if report["errors"] == 0 and bounded and report["working_left_after_ttl"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
