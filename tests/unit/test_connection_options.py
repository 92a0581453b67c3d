"""Client options: agentmem's timeouts unless the caller or the URL sets them; RESP2 and bytes forced."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import valkey.asyncio as avalkey
import valkey.exceptions as valkey_exceptions

from agentmem_core import MemoryStore, RetryPolicy
from agentmem_core.aio import AsyncMemoryStore
from agentmem_core.connection import CLIENT_DEFAULTS, client_options, open_client
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import BackendTimeoutError, ConfigurationError


def test_defaults_bound_every_wait() -> None:
    _, options = client_options("valkey://localhost:6379")
    assert options["socket_connect_timeout"] == 5.0
    assert options["socket_timeout"] == 10.0
    assert options["health_check_interval"] == 30
    assert options["protocol"] == 2 and options["decode_responses"] is False


def test_keywords_beat_defaults_and_the_url_beats_both() -> None:
    url, options = client_options("valkey://localhost:6379?socket_timeout=0.5", socket_timeout=3.0)
    assert options["socket_timeout"] == 3.0  # the URL's value is applied by valkey-py itself
    client = open_client(url, socket_timeout=3.0, socket_connect_timeout=1.0)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.5 and kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == CLIENT_DEFAULTS["health_check_interval"]
    client.close()


def test_async_clients_get_the_same_defaults() -> None:
    client = open_client("valkey://localhost:6379", asyncio=True)
    assert isinstance(client, avalkey.Valkey)
    kwargs = client.connection_pool.connection_kwargs
    assert {k: kwargs[k] for k in CLIENT_DEFAULTS} == CLIENT_DEFAULTS


@pytest.mark.parametrize(
    "overrides", [{"decode_responses": True}, {"protocol": 3}], ids=["decode_responses", "resp3"]
)
def test_options_agentmem_cannot_work_with_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        client_options("valkey://localhost:6379", **overrides)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a hung or partitioned Valkey)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_raises_a_timeout_instead_of_hanging(silent_server: int) -> None:
    url = f"valkey://127.0.0.1:{silent_server}?socket_timeout=0.2"
    store = MemoryStore.from_url(
        url, name="t", embedder=HashingEmbedder(8), retry=RetryPolicy(retries=1, backoff=0.01)
    )
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        store.setup()
    assert time.monotonic() - started < 5
    store.close()


def test_the_async_store_times_out_too(silent_server: int) -> None:
    async def main() -> None:
        url = f"valkey://127.0.0.1:{silent_server}?socket_timeout=0.2"
        store = AsyncMemoryStore.from_url(
            url, name="t", embedder=HashingEmbedder(8), retry=RetryPolicy(retries=1, backoff=0.01)
        )
        with pytest.raises(BackendTimeoutError):
            await asyncio.wait_for(store.setup(), timeout=5)
        await store.aclose()

    asyncio.run(main())


PACKED_ARGS = [
    ("SET", "k", "v"),
    ("EVALSHA", "0" * 40, 2, b"\x00\xff\r\n", 1.5, 0.1, 1e300, -3, 10**20, "é中🙂", ""),
    ("CONFIG GET", "maxmemory"),
    (b"FT.SEARCH", memoryview(b"ab"), b"x" * 10_000),
]


@pytest.mark.parametrize("url", ["valkey://localhost:6379", "valkeys://localhost:6379", "unix:///tmp/x.sock"])
def test_async_clients_pack_commands_in_c_with_the_same_bytes(url: str) -> None:
    pytest.importorskip("libvalkey")
    client = open_client(url, asyncio=True)
    pool = client.connection_pool
    connection = pool.make_connection()
    python_packer = avalkey.connection.AbstractConnection  # valkey-py's own, pure Python
    assert type(connection).pack_command is not python_packer.pack_command
    kind = {"valkeys": avalkey.SSLConnection, "unix": avalkey.UnixDomainSocketConnection}.get(
        url.split(":")[0], avalkey.Connection
    )
    assert isinstance(connection, kind)  # the URL's connection class is kept (TLS stays TLS)
    for args in PACKED_ARGS:
        packed = connection.pack_command(*args)
        assert len(packed) == 1  # one C call, one buffer
        assert packed[0] == b"".join(bytes(p) for p in python_packer.pack_command(connection, *args))
    for bad in (None, object(), True):
        with pytest.raises(valkey_exceptions.DataError):
            connection.pack_command("SET", "k", bad)
    with pytest.raises(UnicodeEncodeError):
        connection.pack_command("SET", "k", "\ud800")
