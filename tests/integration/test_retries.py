"""Retries on real servers the tests start and disturb: a server down and back, a server refusing while
a script runs (BUSY), and a connection that times out after a call was sent (outcome unknown).

Each test owns its server (a private port), so it may stop it, block it or kill clients on it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import valkey

from agentmem_core import AsyncMemoryStore, MemoryStore, RetryPolicy, ops
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import (
    BackendBusyError,
    BackendConnectionError,
    BackendTimeoutError,
    WriteOutcomeUnknownError,
)
from agentmem_core.testing.server import ValkeyServer

pytestmark = pytest.mark.timeout(120)

DIMS = 64
_SPIN = "while true do end"  # a read-only script: SCRIPT KILL stops it


@pytest.fixture
def server() -> Iterator[ValkeyServer]:
    s = ValkeyServer(search=True, extra_args=["--enable-debug-command", "local"]).start()
    try:
        yield s
    finally:
        s.stop()


def _store(url: str, name: str, policy: RetryPolicy, **options: object) -> MemoryStore:
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS), retry=policy, **options)
    store.setup()
    return store


def _block(url: str, ms: int, *, script: bool = False) -> threading.Thread:
    """Keep the server busy for ``ms`` from another connection; returns once it is busy.

    ``DEBUG SLEEP`` makes every other command wait (a client's socket timeout then fires after its
    command was sent); a spinning script, stopped by ``SCRIPT KILL`` after ``ms``, makes the server
    answer BUSY once ``busy-reply-threshold`` has passed.
    """
    admin = valkey.Valkey.from_url(url)

    def run() -> None:
        try:
            if script:
                try:
                    admin.eval(_SPIN, 0)
                except valkey.ResponseError as exc:
                    assert "killed" in str(exc).lower()
            else:
                admin.execute_command("DEBUG", "SLEEP", ms / 1000)
        finally:
            admin.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if script:
        killer = valkey.Valkey.from_url(url)
        timer = threading.Timer(ms / 1000, lambda: (killer.script_kill(), killer.close()))
        timer.daemon = True
        timer.start()
    time.sleep(0.1)  # the server is busy now
    return thread


def test_a_call_while_the_server_is_down_succeeds_once_it_is_back(
    server: ValkeyServer, unique_name: str
) -> None:
    store = _store(server.url, unique_name, RetryPolicy(retries=12, backoff=0.05, max_backoff=0.4))
    first = store.remember("before the outage", user_id="u")
    port = server.port
    server.stop()
    restarted_server: list[ValkeyServer] = []

    def restart() -> None:
        restarted_server.append(ValkeyServer(search=True, port=port).start())

    restarted = threading.Timer(0.6, restart)
    restarted.start()
    try:
        # the data went with the server (no persistence here); the call itself must get through
        store.setup()
        again = store.remember("after the outage", user_id="u")
        assert store.get(again) is not None
        assert store.get(first) is None
    finally:
        restarted.join()
        for s in restarted_server:
            s.stop()
        store.close()


def test_with_no_retries_the_outage_is_a_typed_retryable_error(
    server: ValkeyServer, unique_name: str
) -> None:
    store = _store(server.url, unique_name, RetryPolicy(retries=0))
    server.stop()
    with pytest.raises(BackendConnectionError) as caught:
        store.remember("x", user_id="u")
    assert caught.value.retryable
    assert not isinstance(caught.value, WriteOutcomeUnknownError)  # nothing was sent
    store.close()


def test_busy_refusals_are_retried_until_the_script_ends(server: ValkeyServer, unique_name: str) -> None:
    admin = valkey.Valkey.from_url(server.url)
    admin.config_set("busy-reply-threshold", 50)  # refuse with BUSY after 50 ms of a running script
    store = _store(server.url, unique_name, RetryPolicy(retries=10, backoff=0.05, max_backoff=0.2))
    blocker = _block(server.url, 700, script=True)
    started = time.monotonic()
    memory_id = store.remember("a memory written while the server was busy", user_id="u")
    assert time.monotonic() - started > 0.3  # it did wait for the script
    blocker.join()
    assert store.get(memory_id) is not None
    assert store.count(user_id="u") == 1

    spent = _store(server.url, unique_name, RetryPolicy(retries=1, backoff=0.01, max_backoff=0.01))
    blocker = _block(server.url, 700, script=True)
    with pytest.raises(BackendBusyError) as caught:
        spent.recall("memory", user_id="u")
    assert caught.value.retryable
    blocker.join()
    assert store.count(user_id="u") == 1
    for s in (store, spent):
        s.close()
    admin.close()


def _script_calls(server: ValkeyServer) -> int:
    """How many EVALSHA calls the server has run (INFO commandstats)."""
    admin = valkey.Valkey.from_url(server.url)
    try:
        stats = admin.info("commandstats")
    finally:
        admin.close()
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _block_before(store: MemoryStore, url: str, op_type: type, ms: int) -> list[threading.Thread]:
    """Make the server sleep just before the store first sends an operation of ``op_type``.

    The client, the server and the sleep are real; only the moment is chosen, so the operation under
    test (not an earlier round trip of the same call) is the one in flight when the socket times out.
    """
    backend = store._backend
    send = backend.execute
    started: list[threading.Thread] = []

    def execute(ops: Sequence[Any]) -> list[Any]:
        if not started and any(isinstance(op, op_type) for op in ops):
            started.append(_block(url, ms))
        return send(ops)

    backend.execute = execute
    return started


def _timing_out(server: ValkeyServer, name: str, **options: object) -> MemoryStore:
    # the default busy-reply-threshold (5 s) keeps commands waiting behind the script, so a 250 ms
    # socket timeout fires after the command was sent: the outcome is unknown
    # (no live-config read: the call under test is the first thing sent)
    return _store(
        f"{server.url}?socket_timeout=0.25",
        name,
        RetryPolicy(retries=8, backoff=0.1, max_backoff=0.3),
        live_config_seconds=None,
        **options,
    )


def test_a_write_whose_outcome_is_unknown_is_replayed_once_safely(
    server: ValkeyServer, unique_name: str
) -> None:
    store = _timing_out(server, unique_name)
    before = _script_calls(server)
    blocker = _block(server.url, 600)
    memory_id = store.remember("sent, then the connection timed out", user_id="u", importance=0.7)
    blocker.join()
    assert _script_calls(server) - before >= 2  # the write was sent again after a timeout
    # every copy ran after the sleep: a replayed write replaces the memory by itself
    assert store.count(user_id="u") == 1
    assert [m.id for m in store.list(user_id="u").memories] == [memory_id]
    store.close()


def test_a_reinforced_recall_whose_fetch_timed_out_counts_the_access_once(
    server: ValkeyServer, unique_name: str
) -> None:
    store = _timing_out(server, unique_name)
    memory_id = store.remember("the quick brown fox", user_id="u")
    vector = HashingEmbedder(DIMS).embed(["the quick brown fox"])[0]
    before = _script_calls(server)
    blockers = _block_before(store, server.url, ops.Fetch, 600)
    hits = store.recall_by_vector(vector, k=1, user_id="u")
    blockers[0].join()
    assert [h.memory.id for h in hits] == [memory_id]
    assert _script_calls(server) - before >= 2  # the fetch was sent again after a timeout
    memory = store.get(memory_id)
    assert memory is not None
    # the KNN or the fetch timed out and went again; the fetch's reinforcement ran once (its first copy,
    # after the script), and the copies sent again were plain reads
    assert memory.access_count == 1
    store.close()


def test_a_near_duplicate_merge_whose_outcome_is_unknown_is_not_sent_again(
    server: ValkeyServer, unique_name: str
) -> None:
    store = _timing_out(server, unique_name, dedup_threshold=0.05)
    original = store.remember("I like green tea", user_id="u")
    blockers = _block_before(store, server.url, ops.Merge, 600)
    with pytest.raises(WriteOutcomeUnknownError) as caught:
        store.remember("I like green tea", user_id="u")
    assert not caught.value.retryable
    blockers[0].join()
    memory = store.get(original)
    assert memory is not None
    assert memory.duplicate_count == 1  # the one copy sent ran after the sleep; none was sent again
    assert store.count(user_id="u") == 1
    store.close()


def test_the_async_store_retries_too(server: ValkeyServer, unique_name: str) -> None:
    async def run() -> None:
        store = AsyncMemoryStore.from_url(
            f"{server.url}?socket_timeout=0.25",
            name=unique_name,
            embedder=HashingEmbedder(DIMS),
            retry=RetryPolicy(retries=8, backoff=0.1, max_backoff=0.3),
        )
        await store.setup()
        blocker = _block(server.url, 600)
        memory_id = await store.remember("an async write across a blocked server", user_id="u")
        await asyncio.to_thread(blocker.join)
        assert await store.count(user_id="u") == 1
        assert await store.get(memory_id) is not None
        no_retry = AsyncMemoryStore.from_url(
            f"{server.url}?socket_timeout=0.25",
            name=unique_name,
            embedder=HashingEmbedder(DIMS),
            retry=RetryPolicy(retries=0),
        )
        blocker = _block(server.url, 600)
        with pytest.raises(BackendTimeoutError):
            await no_retry.count(user_id="u")
        await asyncio.to_thread(blocker.join)
        await store.close()
        await no_retry.close()

    asyncio.run(run())
