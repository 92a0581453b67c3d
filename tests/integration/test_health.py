"""``health()``: the same answer on every backend, sync and async; failures reported, typed, not raised."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from _support import Facade, open_like  # tests/integration is on sys.path

from agentmem_core import AsyncMemoryStore, BackendConnectionError, Health, MemoryStore, RetryPolicy
from agentmem_core.embeddings import HashingEmbedder

pytestmark = pytest.mark.integration


async def _ready(store: Facade, within: float = 30.0) -> Health:
    """The first report that says ready: a new index scans the server's keyspace for its prefix first
    (RediSearch ``indexing=1``), longer on a server that holds many other keys, as the test server does."""
    deadline = time.monotonic() + within
    while True:
        report: Health = await store.health()
        if report.ready or time.monotonic() > deadline:
            return report
        assert report.index and report.error is None and not report.ok  # backfilling, and says so
        await asyncio.sleep(0.05)


async def test_a_set_up_store_is_healthy_and_counts_its_documents(mem: Facade) -> None:
    before = await _ready(mem)
    assert before.ok and before.index and before.ready and before.error is None
    assert before.backend == mem.backend
    assert before.documents == 0 and before.indexing_failures == 0
    assert before.latency_ms > 0
    trips = ["a trip to Lisbon", "a trip to Oslo", "window seats"]
    await mem.remember_many([{"content": c, "user_id": "h"} for c in trips])
    after = await mem.health()
    assert after.ok and after.documents == 3


async def test_a_store_that_was_never_set_up_says_so(mem: Facade, unique_name: str) -> None:
    assert mem.url_for is not None
    name = unique_name + "_nosetup"
    cls = type(mem.store)
    other = Facade(cls.from_url(mem.url_for(name), name=name, embedder=HashingEmbedder(64)), mem.backend)
    try:
        report = await other.health()
        assert not report.ok and not report.index and not report.ready and report.error is None
        await other.setup()
        assert (await _ready(other)).ok
    finally:
        await other.close()


async def test_health_reports_its_own_store(mem: Facade, unique_name: str) -> None:
    # one store's documents are not another's: the count is per store (its own index or file tables)
    assert mem.url_for is not None
    other = await open_like(mem, mem.url_for(unique_name + "_b"), unique_name + "_b")
    try:
        await other.remember("only in b", user_id="h")
        assert (await _ready(mem)).documents == 0
        assert (await _ready(other)).documents == 1
    finally:
        await other.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_reported_with_its_typed_error() -> None:
    url = f"valkey://127.0.0.1:{_closed_port()}"
    with MemoryStore.from_url(
        url, name="h", embedder=HashingEmbedder(8), retry=RetryPolicy(retries=1, backoff=0.01)
    ) as store:
        report = store.health()
    assert not report.ok and report.backend == "valkey" and not report.index
    assert isinstance(report.error, BackendConnectionError)


async def test_the_async_store_reports_an_unreachable_server_too() -> None:
    url = f"valkey://127.0.0.1:{_closed_port()}"
    store = AsyncMemoryStore.from_url(
        url, name="h", embedder=HashingEmbedder(8), retry=RetryPolicy(retries=1, backoff=0.01)
    )
    try:
        report = await store.ahealth()
    finally:
        await store.close()
    assert not report.ok and isinstance(report.error, BackendConnectionError)
