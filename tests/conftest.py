"""Session-wide Valkey fixture: one throwaway ``valkey-server`` + search module for the whole run.

Tests isolate themselves by store name / key prefix (``unique_name``), never by flushing the server.
``--valkey-url valkey://host:port`` reuses a running server instead.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import valkey

# CrewAI's anonymous telemetry would export spans to its collector from a background thread: no test may
# reach the network, and that thread's retry backoff draws from the global ``random`` at arbitrary times,
# which Hypothesis reports as a strategy using ``random`` (a flaky failure in another test). Set before any
# test module imports crewai. (OTEL_SDK_DISABLED would also silence our own OpenTelemetry tests.)
os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_DISABLE_TRACKING"] = "true"

from agentmem_core.errors import ConfigurationError
from agentmem_core.testing.server import ValkeyServer, find_valkey_server, free_port, server_version


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--valkey-url",
        action="store",
        default=os.environ.get("AGENTMEM_TEST_VALKEY_URL"),
        help="reuse a running Valkey (with a search module) instead of starting one",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which Valkey the session's servers run (``make test`` runs the suite on two versions)."""
    url = config.getoption("--valkey-url")
    try:
        binary = find_valkey_server()
        started = f"valkey-server {server_version(binary)} ({binary})"
    except ConfigurationError as exc:
        started = f"valkey-server: none found ({exc})"
    if url:
        return [f"valkey: reusing {url}; servers this session starts itself: {started}"]
    return [f"valkey: {started}"]


@pytest.fixture(scope="session")
def valkey_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = request.config.getoption("--valkey-url")
    if url:
        yield str(url)
        return
    server = ValkeyServer(search=True).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def plain_valkey_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server without the search module (for the "no search module" error path and checkpointers)."""
    server = ValkeyServer(search=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique_name() -> str:
    """A store name / key prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


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


_CORE_BACKENDS = [b for b in os.environ.get("AGENTMEM_TEST_BACKENDS", "valkey,sqlite").split(",") if b]


@pytest.fixture(params=_CORE_BACKENDS)
def core_url(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> str:
    """A core store URL on every backend (adapters run their tests on each): Valkey, or an embedded file."""
    if request.param == "valkey":
        return valkey_url
    return f"sqlite:///{tmp_path / 'core.db'}"
