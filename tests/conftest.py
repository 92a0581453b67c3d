"""Session-wide Valkey fixture: one throwaway ``valkey-server`` + search module for the whole run.

Tests isolate themselves by store name / key prefix (``unique_name``), never by flushing the server.
``--valkey-url valkey://host:port`` reuses a running server instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from agentmem_core.testing.server import ValkeyServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--valkey-url",
        action="store",
        default=os.environ.get("AGENTMEM_TEST_VALKEY_URL"),
        help="reuse a running Valkey (with a search module) instead of starting one",
    )


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
