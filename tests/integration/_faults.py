"""Helpers for the fault tests: a valkey-server that can be SIGKILLed and restarted on its port and data
directory, a writer thread that records what was acknowledged, and consistency checks of a store's keys.

Everything here runs real processes: no mocks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import valkey

from agentmem_core import MemoryStore
from agentmem_core._encoding import Keys
from agentmem_core.errors import AgentMemError, BackendError
from agentmem_core.schema import F
from agentmem_core.testing.server import find_search_module, find_valkey_server, free_port

AOF = ("--appendonly", "yes", "--appendfsync", "always")
"""Every acknowledged write is on disk before its reply: a SIGKILL loses none of them."""


@dataclass
class FaultServer:
    """A ``valkey-server`` on a fixed port with its data in ``dir``, which survives :meth:`kill`.

    Args:
        dir: the data directory (AOF files, ``valkey.log``); kept across restarts, owned by the test.
        search: load the search module.
        aof: start with :data:`AOF` (otherwise no persistence at all).
        extra_args: more ``valkey-server`` arguments.
        port: the port (a free one by default); every restart reuses it.
    """

    dir: Path
    search: bool = True
    aof: bool = True
    extra_args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    starts: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def args(self) -> list[str]:
        args = [
            find_valkey_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.dir / "valkey.log"),
        ]  # fmt: skip
        args += list(AOF) if self.aof else ["--appendonly", "no"]
        if self.search:
            args += ["--loadmodule", find_search_module()]
        return args + list(self.extra_args)

    def start(self, timeout: float = 20.0) -> FaultServer:
        """Start (or restart) the server; return once it answers PING with PONG (its data loaded)."""
        assert not self.running, "already running"
        self.dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:  # the port may still be held for a moment after a kill
            self._proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while time.monotonic() < deadline and self._proc.poll() is None and not self.ping():
                time.sleep(0.02)
            if self.running and self.ping():
                self.starts += 1
                return self
            if self.running or time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"valkey-server did not start on {self.port}: {self.log_tail()}")
            self._discard()  # exited early (port in use?): try again until the deadline
            time.sleep(0.1)

    def ping(self) -> bool:
        """Whether the server answers PONG (not LOADING) right now."""
        try:
            client = valkey.Valkey(host="127.0.0.1", port=self.port, socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except valkey.ValkeyError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no final fsync) and reap it."""
        assert self._proc is not None and self.running, "not running"
        os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._discard()

    def stop(self) -> None:
        """Terminate the server if it runs (the data directory stays; the test's tmp_path owns it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._discard()

    def _discard(self) -> None:
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def log_tail(self) -> str:
        log = self.dir / "valkey.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def client(self) -> valkey.Valkey:
        """A fresh raw client (for checks from outside the code under test)."""
        return valkey.Valkey(host="127.0.0.1", port=self.port, socket_timeout=5)


class Writer(threading.Thread):
    """Calls ``write(i)`` for i = 0, 1, ... until stopped; remembers what was acknowledged.

    A call that returns is acknowledged (``acked[i]`` holds its result). A call that raises an agentmem
    error is recorded in ``failed`` / ``errors`` (it may or may not have applied), the writer pauses
    briefly and goes on with the next i, on the same objects. Anything else ends the thread and is kept
    in ``escaped``.
    """

    def __init__(self, write: Callable[[int], Any], *, pause: float = 0.02, limit: int = 100_000) -> None:
        super().__init__(daemon=True, name="fault-writer")
        self._write = write
        self._pause = pause
        self._limit = limit
        self._halt = threading.Event()
        self._cond = threading.Condition()
        self.acked: dict[int, Any] = {}
        self.failed: list[int] = []
        self.errors: list[AgentMemError] = []
        self.escaped: list[BaseException] = []

    def run(self) -> None:
        try:
            for i in range(self._limit):
                if self._halt.is_set():
                    return
                try:
                    result = self._write(i)
                except AgentMemError as exc:
                    with self._cond:
                        self.failed.append(i)
                        self.errors.append(exc)
                    time.sleep(self._pause)
                    continue
                with self._cond:
                    self.acked[i] = result
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - a raw exception escaping is what the tests look for
            self.escaped.append(exc)
        finally:
            with self._cond:
                self._halt.set()
                self._cond.notify_all()

    def wait_acked(self, n: int, timeout: float = 30.0) -> None:
        """Block until ``n`` writes are acknowledged (fails if the writer stops or time runs out)."""
        with self._cond:
            done = self._cond.wait_for(lambda: len(self.acked) >= n or self._halt.is_set(), timeout)
        assert not self.escaped, f"a non-agentmem exception escaped: {self.escaped[0]!r}"
        assert done and len(self.acked) >= n, (
            f"only {len(self.acked)} of {n} writes acknowledged; last errors: {self.errors[-3:]!r}"
        )

    def finish(self, timeout: float = 30.0) -> None:
        self._halt.set()
        self.join(timeout)
        assert not self.is_alive(), "the writer did not stop"


@dataclass
class Outage:
    """What a kill-and-restart run observed."""

    acked_before_kill: int
    acked_at_restart: int


def kill_restart_during(
    server: FaultServer, writer: Writer, *, kill_after: int, more: int = 15, outage: float = 0.3
) -> Outage:
    """Start ``writer``, SIGKILL ``server`` after ``kill_after`` acknowledged writes, keep it down for
    ``outage`` seconds, restart it (same port, same data), and stop the writer once it acknowledged
    ``more`` writes after the restart: the same objects carried on, no new client."""
    writer.start()
    try:
        writer.wait_acked(kill_after)
        before = len(writer.acked)
        server.kill()
        time.sleep(outage)
        server.start()
        at_restart = len(writer.acked)
        writer.wait_acked(at_restart + more)
    finally:
        writer.finish()
    assert not writer.escaped, f"a non-agentmem exception escaped: {writer.escaped[0]!r}"
    assert_typed(writer.errors)
    return Outage(before, at_restart)


def client_cause(exc: BaseException) -> valkey.ValkeyError | None:
    """The valkey-py exception an agentmem error was translated from (following ``__cause__``)."""
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, valkey.ValkeyError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__
    return None


def assert_typed(errors: Sequence[BaseException]) -> None:
    """Every error a caller saw during an outage is a backend error of the agentmem tree with a
    ``retryable`` flag, chained (``raise ... from``) to the client error it translates."""
    for exc in errors:
        assert isinstance(exc, BackendError), f"not a typed backend error: {exc!r}"
        assert isinstance(exc.retryable, bool), repr(exc)
        assert client_cause(exc) is not None, f"not chained to the client error: {exc!r}"


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode()


REQUIRED = (
    F.CONTENT, F.KIND, F.IMPORTANCE, F.CREATED_AT, F.X_CREATED_AT, F.UPDATED_AT, F.EXPIRES_AT,
    F.X_EXPIRES_AT, F.NAMESPACE, F.X_NS, F.X_THREAD, F.X_AGENT, F.X_USER, F.X_SOURCE, F.TAGS, F.METADATA,
    F.OPT,
)  # fmt: skip


def check_store_consistent(store: MemoryStore, raw: valkey.Valkey, name: str, dims: int) -> dict[str, str]:
    """Every memory hash of store ``name`` is whole and its scope bookkeeping agrees with it.

    For each memory hash on the server (read raw, not through the store): every required field is
    there, the vector has ``dims`` float32s, ``store.get`` returns it with the same content, and it is
    in its scope's created ZSET; per scope, the live count per kind, the ZSET and the hashes agree, and
    the scope is registered; ``count()``, ``stats()`` and a full ``list()`` see exactly these memories.

    Returns:
        id -> content of every memory.
    """
    keys = Keys(name)
    found: dict[str, str] = {}
    per_scope: dict[str, set[str]] = {}
    children: set[str] = set()
    parents: dict[str, int] = {}  # memory key -> its number of extra vectors (children)
    for key in raw.scan_iter(match=f"{keys.memory_prefix}*", count=1000):
        text = key.decode()
        if text.count(":") > 3:  # a child document (one more vector) of a memory of several texts
            children.add(text)
            vector = raw.hget(key, F.EMBEDDING)
            assert vector is not None and len(vector) == 4 * dims, f"child {text} has a bad vector"
            continue
        fields = raw.hgetall(key)
        if F.NV.encode() in fields:
            parents[text] = int(fields[F.NV.encode()])
            assert len(fields.get(F.VX.encode(), b"")) == 4 * dims * parents[text], f"{text}: bad vx"
        memory_id = keys.id_from_memory_key(text)
        missing = [f for f in REQUIRED if f.encode() not in fields]
        assert not missing, f"memory {memory_id} is missing {missing}: {fields!r}"
        flags = _text(fields[F.OPT.encode()]).split("|")[2]
        if "n" not in flags:
            vector = fields.get(F.EMBEDDING.encode())
            assert vector is not None and len(vector) == 4 * dims, f"memory {memory_id} has a bad vector"
        got = store.get(memory_id)
        assert got is not None, f"memory {memory_id} is on the server but get() does not return it"
        assert got.content == _text(fields[F.CONTENT.encode()])
        found[memory_id] = got.content
        per_scope.setdefault(memory_id[:16], set()).add(memory_id)
    expected = {f"{parent}:{j}" for parent, n in parents.items() for j in range(1, n + 1)}
    assert children == expected, f"orphan children {children - expected}, missing {expected - children}"
    registered = {k.decode() for k in raw.hkeys(keys.scopes)}
    for tag, ids in per_scope.items():
        members = {m.decode() for m in raw.zrange(keys.created(tag), 0, -1)}
        assert members == ids, f"scope {tag}: ZSET {sorted(members - ids)} vs hashes {sorted(ids - members)}"
        counts = {k.decode(): int(v) for k, v in raw.hgetall(keys.counts(tag)).items()}
        live = sum(v for k, v in counts.items() if not k.startswith("#"))
        assert live == len(ids), f"scope {tag}: counted {counts}, {len(ids)} memories"
        assert tag in registered, f"scope {tag} holds memories but is not registered"
    assert store.count() == len(found)
    assert store.stats().total == len(found)
    listed: set[str] = set()
    cursor: str | None = None
    while True:
        page = store.list(limit=200, cursor=cursor)
        listed.update(m.id for m in page.memories)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert listed == set(found), "list() disagrees with the memory hashes on the server"
    return found
