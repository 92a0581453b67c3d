"""Leases (``acquire_lease`` / ``release_lease``): the same contract on every backend, sync and async.

A lease expires by the backend's clock: Valkey's server (real time) or the embedded store's clock (the
``mem`` fixture's settable one). ``expire`` below advances both: it sleeps past the lease and moves
``mem.clock`` on by as much, so one test body checks expiry on both backends.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from _support import Facade, open_like, valkey_only

from agentmem_core import MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import InvalidMemoryError

pytestmark = pytest.mark.integration

TTL = 0.2


async def expire(mem: Facade, seconds: float) -> None:
    """Let ``seconds`` pass for the lease, on Valkey's clock (real time) and on the store's (embedded)."""
    await asyncio.sleep(seconds)
    mem.clock.now += seconds  # type: ignore[attr-defined]


async def test_a_lease_has_one_holder_until_it_is_released(mem: Facade) -> None:
    assert await mem.acquire_lease("job", holder="a", ttl=30) is True
    assert await mem.acquire_lease("job", holder="a", ttl=30) is True  # its holder again: still held
    assert await mem.acquire_lease("job", holder="b", ttl=30) is False
    assert await mem.release_lease("job", holder="b") is False  # never another holder's
    assert await mem.acquire_lease("job", holder="b", ttl=30) is False  # ... so a still holds it
    assert await mem.release_lease("job", holder="a") is True
    assert await mem.release_lease("job", holder="a") is False  # released once
    assert await mem.acquire_lease("job", holder="b", ttl=30) is True
    assert await mem.acquire_lease("job", holder="a", ttl=30) is False


async def test_leases_of_different_names_are_independent(mem: Facade) -> None:
    assert await mem.acquire_lease("consolidate:one", holder="a", ttl=30)
    assert await mem.acquire_lease("consolidate:two", holder="b", ttl=30)
    assert not await mem.acquire_lease("consolidate:one", holder="b", ttl=30)
    assert await mem.release_lease("consolidate:two", holder="b")
    assert not await mem.acquire_lease("consolidate:one", holder="b", ttl=30)


async def test_an_expired_lease_lets_another_holder_in(mem: Facade) -> None:
    assert await mem.acquire_lease("job", holder="dead", ttl=TTL)
    assert not await mem.acquire_lease("job", holder="b", ttl=TTL)
    await expire(mem, TTL + 0.1)
    assert await mem.acquire_lease("job", holder="b", ttl=30)
    # the dead holder's late release finds nothing of its own: b keeps the lease
    assert await mem.release_lease("job", holder="dead") is False
    assert not await mem.acquire_lease("job", holder="c", ttl=30)


async def test_acquiring_again_extends_the_lease(mem: Facade) -> None:
    assert await mem.acquire_lease("job", holder="a", ttl=0.3)
    await expire(mem, 0.2)
    assert await mem.acquire_lease("job", holder="a", ttl=0.3)  # renewed: 0.3 s from now
    await expire(mem, 0.2)  # 0.4 s after the first acquire, past its original end
    assert not await mem.acquire_lease("job", holder="b", ttl=30)
    await expire(mem, 0.2)
    assert await mem.acquire_lease("job", holder="b", ttl=30)


async def test_two_stores_on_the_same_storage_exclude_each_other(mem: Facade, valkey_url: str) -> None:
    # two store objects of one name (two processes would open exactly these) share the leases
    other = await open_like(mem, valkey_url, mem.store.keys.store, clock=mem.clock)  # type: ignore[attr-defined]
    try:
        assert await mem.acquire_lease("job", holder="p1", ttl=TTL)
        assert not await other.acquire_lease("job", holder="p2", ttl=TTL)
        assert not await other.release_lease("job", holder="p2")
        assert await mem.release_lease("job", holder="p1")
        assert await other.acquire_lease("job", holder="p2", ttl=TTL)
        assert not await mem.acquire_lease("job", holder="p1", ttl=TTL)
        await expire(mem, TTL + 0.1)  # p2 "dies": its lease ends for both stores
        assert await mem.acquire_lease("job", holder="p1", ttl=30)
        assert not await other.acquire_lease("job", holder="p2", ttl=30)
    finally:
        await other.close()


async def test_a_store_of_another_name_has_its_own_leases(mem: Facade, valkey_url: str) -> None:
    other = await open_like(mem, valkey_url, mem.store.keys.store + "_b", clock=mem.clock)  # type: ignore[attr-defined]
    try:
        assert await mem.acquire_lease("job", holder="p1", ttl=30)
        assert await other.acquire_lease("job", holder="p2", ttl=30)
    finally:
        await other.close()


_HOLDER = textwrap.dedent(
    """
    import sys
    from agentmem_core import MemoryStore
    from agentmem_core.embeddings import HashingEmbedder

    store = MemoryStore.from_url(sys.argv[1], name=sys.argv[2], embedder=HashingEmbedder(64))
    print(store.acquire_lease("job", holder="child", ttl=float(sys.argv[3])), flush=True)
    # exits without releasing: a holder that dies
    """
)


@pytest.mark.parametrize("backend", ["valkey", "sqlite"])
def test_a_process_that_dies_holding_a_lease_blocks_others_only_until_it_expires(
    backend: str, valkey_url: str, unique_name: str, tmp_path: Any
) -> None:
    url = valkey_url if backend == "valkey" else f"sqlite:///{tmp_path / 'leases.db'}"
    store = MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64))  # real clock
    try:
        store.setup()
        ttl = 0.5
        child = subprocess.run(
            [sys.executable, "-c", _HOLDER, url, unique_name, str(ttl)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        done = time.time()
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "True"
        if time.time() - done < ttl / 2:  # (still well within the child's lease)
            assert store.acquire_lease("job", holder="parent", ttl=30) is False
        deadline = time.time() + 5
        while not store.acquire_lease("job", holder="parent", ttl=30):
            assert time.time() < deadline, "the dead holder's lease never expired"
            time.sleep(0.05)
    finally:
        store.close()


@pytest.mark.parametrize(
    "name",
    ["", "x" * 257, "a\nb", "tab\there", "nul\x00", "del\x7f", "c1\x85", "\ud800", 42, None],
    ids=["empty", "oversized", "newline", "tab", "nul", "del", "c1", "surrogate", "int", "none"],
)
async def test_invalid_names_and_holders_are_refused_before_anything_is_sent(mem: Facade, name: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        await mem.acquire_lease(name, holder="a", ttl=1)
    with pytest.raises(InvalidMemoryError):
        await mem.acquire_lease("job", holder=name, ttl=1)
    with pytest.raises(InvalidMemoryError):
        await mem.release_lease(name, holder="a")
    with pytest.raises(InvalidMemoryError):
        await mem.release_lease("job", holder=name)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), 31 * 86_400.0, "1", True, None])
async def test_invalid_ttls_are_refused(mem: Facade, ttl: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        await mem.acquire_lease("job", holder="a", ttl=ttl)
    assert await mem.acquire_lease("job", holder="b", ttl=30)  # nothing was taken by the refused call


async def test_names_of_any_text_are_usable(mem: Facade) -> None:
    for name in ("x" * 256, "consolidate:{user}ana", "ünïcode lease", "a:b:c", "*"):
        assert await mem.acquire_lease(name, holder="a", ttl=30), name
        assert not await mem.acquire_lease(name, holder="b", ttl=30), name
        assert await mem.release_lease(name, holder="a"), name


async def test_on_valkey_a_lease_is_one_key_with_the_server_s_expiry(mem: Facade) -> None:
    valkey_only(mem, "reads the lease's key")
    client = mem.store._backend.client  # type: ignore[union-attr]
    key = f"{mem.store.keys.prefix}lease:job"
    assert await mem.acquire_lease("job", holder="a", ttl=30)
    value, pttl = client.get(key), client.pttl(key)
    if asyncio.iscoroutine(value):
        value, pttl = await value, await pttl
    assert value == b"a"
    assert 29_000 < pttl <= 30_000


async def test_on_valkey_the_lease_scripts_are_loaded_on_noscript(mem: Facade) -> None:
    valkey_only(mem, "flushes the server's script cache")
    flushed = mem.store._backend.client.script_flush()  # type: ignore[union-attr]
    if asyncio.iscoroutine(flushed):
        await flushed
    assert await mem.acquire_lease("job", holder="a", ttl=30)
    flushed = mem.store._backend.client.script_flush()  # type: ignore[union-attr]
    if asyncio.iscoroutine(flushed):
        await flushed
    assert await mem.release_lease("job", holder="a")


def test_on_sqlite_a_file_without_the_lease_table_gains_it(tmp_path: Any, unique_name: str) -> None:
    # a file set up by a version without leases, opened by name without setup(): the table is created
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64)) as store:
        store.setup()
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute(f'DROP TABLE "am_{unique_name}_lease"')
    conn.commit()
    conn.close()
    with MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64)) as store:
        assert store.release_lease("job", holder="a") is False
        assert store.acquire_lease("job", holder="a", ttl=30) is True
        assert store.acquire_lease("job", holder="b", ttl=30) is False
