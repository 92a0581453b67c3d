"""What the sync and async savers share: construction, validation and the LangGraph hooks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypedDict, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentmem_core.errors import ConfigurationError
from agentmem_langgraph.checkpoint._keys import validate_prefix
from agentmem_langgraph.checkpoint._plan import Settings, next_version

__all__ = ["DEFAULT_PREFIX", "CheckpointTTL", "ValkeySaverBase"]

DEFAULT_PREFIX = "agentmem:checkpoint"


class CheckpointTTL(TypedDict, total=False):
    """Expiry of threads, in LangGraph's convention (``ttl={"default_ttl": 60, "refresh_on_read": True}``)."""

    default_ttl: float
    """Minutes of inactivity after which a thread expires, with every key it owns."""
    refresh_on_read: bool
    """Whether ``get_tuple``/``list`` restart the countdown (default ``True``); writes always do."""


def _ttl_settings(ttl: Mapping[str, Any] | None) -> tuple[int, bool]:
    if ttl is None:
        return 0, True
    unknown = set(ttl) - {"default_ttl", "refresh_on_read"}
    if unknown:
        raise ConfigurationError(f"unknown ttl option(s) {sorted(unknown)}; use default_ttl, refresh_on_read")
    minutes = ttl.get("default_ttl")
    if minutes is None:
        return 0, bool(ttl.get("refresh_on_read", True))
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not math.isfinite(minutes):
        raise ConfigurationError(f"ttl default_ttl must be a number of minutes, got {minutes!r}")
    if minutes <= 0:
        raise ConfigurationError(f"ttl default_ttl must be positive, got {minutes!r}")
    return max(1, round(minutes * 60_000)), bool(ttl.get("refresh_on_read", True))


class ValkeySaverBase(BaseCheckpointSaver[str]):
    """Shared constructor of :class:`ValkeySaver` and :class:`AsyncValkeySaver`; no I/O happens here."""

    _client_types: tuple[type, ...] = ()
    settings: Settings

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: CheckpointTTL | Mapping[str, Any] | None = None,
        serde: SerializerProtocol | None = None,
        page_size: int = 100,
    ) -> None:
        super().__init__(serde=serde)
        if not isinstance(client, self._client_types):
            expected = " or ".join(f"{t.__module__}.{t.__qualname__}" for t in self._client_types)
            raise ConfigurationError(f"{type(self).__name__} needs a {expected} client, got {type(client)!r}")
        if cast(Any, client).get_encoder().decode_responses:
            raise ConfigurationError(
                f"{type(self).__name__} stores binary data: create the client with decode_responses=False"
            )
        try:
            validate_prefix(prefix)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(f"page_size must be a positive integer, got {page_size!r}")
        ttl_ms, refresh = _ttl_settings(ttl)
        self.client = client
        self.settings = Settings(prefix, self.serde, ttl_ms, refresh, page_size)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Next channel version: a counter plus a random suffix, unique across forks of a thread."""
        return next_version(current)

    def with_allowlist(self, extra_allowlist: Any) -> Any:
        """Clone with a derived msgpack allowlist, keeping ``settings`` on the clone's serializer."""
        clone = super().with_allowlist(extra_allowlist)
        if isinstance(clone, ValkeySaverBase) and clone is not self:
            clone.settings = clone.settings._replace(serde=clone.serde)
        return clone
