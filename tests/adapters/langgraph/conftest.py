"""Fixtures for the checkpointer tests: savers on the session's plain Valkey and cluster (tests/conftest.py).

Every saver gets its own key prefix (``unique_name``), so tests never flush or share keys.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey

from agentmem_langgraph import AsyncValkeySaver, ValkeySaver


@pytest.fixture(scope="session")
def sync_client(plain_valkey_url: str) -> Iterator[valkey.Valkey]:
    client = valkey.Valkey.from_url(plain_valkey_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cluster_client(cluster_url: str) -> Iterator[valkey.ValkeyCluster]:
    client = valkey.ValkeyCluster.from_url(cluster_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
async def async_client(plain_valkey_url: str) -> AsyncIterator[avalkey.Valkey]:
    client = avalkey.Valkey.from_url(plain_valkey_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def async_cluster_client(cluster_url: str) -> AsyncIterator[avalkey.ValkeyCluster]:
    client = avalkey.ValkeyCluster.from_url(cluster_url)
    yield client
    await client.aclose()


async def _keys_under(client: Any, prefix: str) -> list[bytes]:
    """Every key under ``prefix`` (SCAN on every node), for "nothing left behind" checks."""
    if isinstance(client, (avalkey.Valkey, avalkey.ValkeyCluster)):
        return sorted([k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)])
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


@pytest.fixture
def keys_under() -> Callable[[Any, str], Awaitable[list[bytes]]]:
    return _keys_under


@pytest.fixture
def prefix() -> str:
    return "lg" + uuid.uuid4().hex[:12]


@pytest.fixture
def saver(sync_client: valkey.Valkey, prefix: str) -> ValkeySaver:
    return ValkeySaver(sync_client, prefix=prefix)


@pytest.fixture
def asaver(async_client: avalkey.Valkey, prefix: str) -> AsyncValkeySaver:
    return AsyncValkeySaver(async_client, prefix=prefix)
