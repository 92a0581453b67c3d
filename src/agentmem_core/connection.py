"""Connection URLs, and the default when a program gives none.

``valkey://`` and ``valkeys://`` (TLS), with auth, db and TLS options; ``sqlite:///path`` for the embedded
backend.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import valkey
import valkey.asyncio as avalkey
from valkey.connection import LibvalkeyRespSerializer
from valkey.utils import LIBVALKEY_AVAILABLE

from agentmem_core.errors import ConfigurationError, translate_backend_error

__all__ = [
    "CLIENT_DEFAULTS",
    "client_options",
    "default_url",
    "is_cluster",
    "open_client",
    "resolve_url",
    "sqlite_path",
]

CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 10.0,
    "health_check_interval": 30,
}
"""Client options agentmem sets unless the caller or the URL sets them.

valkey-py waits forever by default: a server that stops answering (a network partition, a host that
went away without a reset) would hang an agent's turn for good. With these, a connect gives up after 5 s
and a reply after 10 s (each then classified and retried by :class:`~agentmem_core.config.RetryPolicy`),
and a connection idle for 30 s is checked with a PING before it is used again (a dead one is replaced
instead of failing the call). Override per URL (``?socket_timeout=2``) or per keyword argument; the URL
wins, as in valkey-py.
"""

_SCHEMES = {"valkey", "valkeys", "redis", "rediss", "unix"}


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a cluster client, sync or async (a script call may touch one slot only)."""
    return isinstance(client, (valkey.ValkeyCluster, avalkey.ValkeyCluster))


_PACKED: dict[type[Any], type[Any]] = {}


class _CPackedCommands:
    """``pack_command`` in C (libvalkey) for an asyncio connection.

    valkey-py's sync client packs commands with libvalkey when it is installed; its asyncio client always
    packs in Python, which was 40% of a 50-message LlamaIndex ``add_messages`` (50 WRITE calls of about 55
    arguments). Same bytes as the Python packer (a unit test compares them); arguments it treats
    specially (``bool``: refused) and non-UTF-8 encoders go to the Python packer.
    """

    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        encoder = self.encoder
        if (
            encoder.encoding.lower().replace("-", "") != "utf8"
            or encoder.encoding_errors != "strict"
            or bool in map(type, args)
        ):
            return super().pack_command(*args)  # type: ignore[misc, no-any-return]
        return _C_PACKER.pack(*args)


_C_PACKER = LibvalkeyRespSerializer()
"""valkey-py's own libvalkey packer (its sync client's): the command-name split and DataError included."""


def _packed_in_c(client: Any) -> Any:
    """Give an asyncio client's pool a connection class that packs commands in C (when libvalkey is here)."""
    pool = getattr(client, "connection_pool", None)
    if not LIBVALKEY_AVAILABLE or pool is None:
        return client
    base = pool.connection_class
    packed = _PACKED.get(base)
    if packed is None:
        packed = _PACKED[base] = type(base.__name__, (_CPackedCommands, base), {})
    pool.connection_class = packed
    return client


def client_options(url: str, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Validate a URL and return it with the client options agentmem requires.

    agentmem needs RESP2 (FT.* reply shapes) and raw bytes (vectors), so ``protocol=2`` and
    ``decode_responses=False`` are forced; a URL or an override asking otherwise is an error. The
    options are :data:`CLIENT_DEFAULTS`, then ``overrides``; options in the URL's query win over both
    (valkey-py reads them from the URL).

    Raises:
        ConfigurationError: for an unsupported scheme or conflicting options.
    """
    if not isinstance(url, str):
        raise ConfigurationError("url must be a string such as valkey://localhost:6379")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(f"unsupported URL scheme {parts.scheme!r}; use valkey:// or valkeys://")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigurationError(f"URL {url!r} has no host")
    query = dict(parse_qsl(parts.query))
    if query.pop("decode_responses", "false").lower() in ("1", "true", "yes"):
        raise ConfigurationError("agentmem needs decode_responses=False (vectors are binary)")
    if query.pop("protocol", "2") != "2":
        raise ConfigurationError("agentmem needs RESP2 (protocol=2)")
    if overrides.pop("decode_responses", False):
        raise ConfigurationError("agentmem needs decode_responses=False (vectors are binary)")
    if overrides.pop("protocol", 2) not in (2, "2"):
        raise ConfigurationError("agentmem needs RESP2 (protocol=2)")
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    return clean, {**CLIENT_DEFAULTS, **overrides, "protocol": 2, "decode_responses": False}


def open_client(url: str, *, cluster: bool = False, asyncio: bool = False, **overrides: Any) -> Any:
    """A valkey-py client for ``url`` with :func:`client_options` (sync or asyncio, plain or cluster).

    The sync cluster client connects here (valkey-py reads the slot map in its constructor); the others
    connect on their first command.

    Raises:
        ConfigurationError: see :func:`client_options`.
        BackendError: the sync cluster client could not reach any node (translated).
    """
    clean, options = client_options(url, **overrides)
    if asyncio:
        if cluster:
            return avalkey.ValkeyCluster.from_url(clean, **options)
        return _packed_in_c(avalkey.Valkey.from_url(clean, **options))
    if not cluster:
        return valkey.Valkey.from_url(clean, **options)
    try:
        return valkey.ValkeyCluster.from_url(clean, **options)  # type: ignore[no-untyped-call]
    except valkey.ValkeyError as exc:
        raise translate_backend_error(exc) from exc


URL_ENV = "AGENTMEM_URL"
"""The environment variable naming the store URL when a program gives none."""


def default_path() -> str:
    """The embedded store's default file: ``agentmem/agentmem.db`` in the user's data directory.

    ``$XDG_DATA_HOME`` (else ``~/.local/share``) on Linux, ``~/Library/Application Support`` on macOS,
    ``%LOCALAPPDATA%`` on Windows.
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(base / "agentmem" / "agentmem.db")


def default_url() -> str:
    """``$AGENTMEM_URL`` when set, else the embedded store at :func:`default_path`."""
    return os.environ.get(URL_ENV) or f"sqlite:///{default_path()}"


def resolve_url(url: str | None) -> str:
    """The URL a store opens: ``url``, or :func:`default_url` when it is ``None``."""
    return default_url() if url is None else url


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///path/to/file.db`` URL (``None`` for any other scheme).

    ``sqlite:////abs/path.db`` and ``sqlite:///relative.db`` follow SQLAlchemy's convention;
    ``sqlite:///:memory:`` is a private in-memory database (one process, gone on close).

    Raises:
        ConfigurationError: a ``sqlite:`` URL without a path.
    """
    if not isinstance(url, str) or not url.startswith("sqlite:"):
        return None
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(f"URL {url!r}: use sqlite:///path/to/file.db (three slashes, no host)")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigurationError(f"URL {url!r} names no file: use sqlite:///path/to/file.db")
    return path
