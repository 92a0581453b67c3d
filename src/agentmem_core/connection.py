"""Connection URLs: ``valkey://`` and ``valkeys://`` (TLS), with auth, db and TLS options."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import valkey
import valkey.asyncio as avalkey

from agentmem_core.errors import ConfigurationError

__all__ = ["client_options", "is_cluster"]

_SCHEMES = {"valkey", "valkeys", "redis", "rediss", "unix"}


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a cluster client, sync or async (a script call may touch one slot only)."""
    return isinstance(client, (valkey.ValkeyCluster, avalkey.ValkeyCluster))


def client_options(url: str) -> tuple[str, dict[str, Any]]:
    """Validate a URL and return it with the client options agentmem requires.

    agentmem needs RESP2 (FT.* reply shapes) and raw bytes (vectors), so ``protocol=2`` and
    ``decode_responses=False`` are forced; a URL asking otherwise is an error.

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
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    return clean, {"protocol": 2, "decode_responses": False}
