"""Fixtures for the checkpointer tests: savers on the session's plain Valkey, and a 3-node cluster.

Every saver gets its own key prefix (``unique_name``), so tests never flush or share keys.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey

from agentmem_core.testing.server import ValkeyServer, free_port
from agentmem_langgraph import AsyncValkeySaver, ValkeySaver

SLOTS = 16384


def _start_cluster(base: Path, nodes: int = 3) -> list[ValkeyServer]:
    servers: list[ValkeyServer] = []
    bus_ports: list[int] = []
    try:
        for i in range(nodes):
            bus_ports.append(free_port())
            conf = base / f"nodes-{i}.conf"
            servers.append(
                ValkeyServer(
                    search=False,
                    extra_args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(conf),
                        "--cluster-node-timeout", "5000",
                        # the bus port defaults to port + 10000, which overflows for high free ports
                        "--cluster-port", str(bus_ports[i]),
                    ],
                ).start()
            )  # fmt: skip
        clients = [valkey.Valkey(host="127.0.0.1", port=s.port) for s in servers]
        per = SLOTS // nodes
        for i, client in enumerate(clients):
            start = i * per
            end = SLOTS - 1 if i == nodes - 1 else start + per - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
        for server, bus in zip(servers[1:], bus_ports[1:]):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, bus)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
            if all("cluster_state:ok" in t and f"cluster_known_nodes:{nodes}" in t for t in texts):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cluster did not converge: {texts}")
        for client in clients:
            client.close()
        return servers
    except BaseException:
        for server in servers:
            server.stop()
        raise


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Valkey cluster on loopback ports, started for this session."""
    servers = _start_cluster(tmp_path_factory.mktemp("valkey-cluster"))
    try:
        yield f"valkey://127.0.0.1:{servers[0].port}"
    finally:
        for server in servers:
            server.stop()


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
