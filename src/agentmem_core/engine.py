"""Search-engine detection: valkey-search (by version) or RediSearch.

Both modules register as ``search``, so the name proves nothing. RediSearch has ``FT.CONFIG``;
valkey-search does not. The version comes from ``MODULE LIST``: RediSearch 2.10.5 reports ``21005``;
valkey-search 1.0.x reports ``10000``/``10003`` and 1.1+ encodes ``major<<16 | minor<<8 | patch``.
Until an engine is detected, the core sticks to the portable subset.

An ACL refusal of ``FT.CONFIG`` says nothing about the engine (the server refuses it before any module
sees it), so the detection says which permission it needs instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agentmem_core._parse import as_text, pairs
from agentmem_core.errors import BackendAuthError, translate_backend_error

__all__ = ["PORTABLE", "EngineInfo", "detect_engine"]


@dataclass(frozen=True)
class EngineInfo:
    """What the server's search module can do.

    Attributes:
        kind: ``valkey-search``, ``redisearch``, ``embedded`` (the SQLite backend; it accepts the filters
            RediSearch accepts, so both backends take and rank the same queries) or ``unknown``
            (portable subset only).
        version: ``(major, minor, patch)``; ``(0, 0, 0)`` when unknown.
        max_leaves: AND-ed predicates a query may carry.
        full_text: TEXT fields and full-text queries are available.
        filter_only_queries: queries without a KNN clause are accepted.
    """

    kind: Literal["valkey-search", "redisearch", "embedded", "unknown"] = "unknown"
    version: tuple[int, int, int] = (0, 0, 0)

    @property
    def max_leaves(self) -> int:
        """Predicate budget (8 AND-ed leaves = 15 nodes fits valkey-search 1.1's 16-node default)."""
        if self.kind in ("redisearch", "embedded") or (
            self.kind == "valkey-search" and self.version >= (1, 2, 0)
        ):
            return 64
        return 8

    @property
    def full_text(self) -> bool:
        """TEXT fields: RediSearch, valkey-search >= 1.2."""
        return self.kind == "redisearch" or (self.kind == "valkey-search" and self.version >= (1, 2, 0))

    @property
    def filter_only_queries(self) -> bool:
        """Non-KNN queries: RediSearch, valkey-search >= 1.1, the embedded backend."""
        return self.kind in ("redisearch", "embedded") or (
            self.kind == "valkey-search" and self.version >= (1, 1, 0)
        )


PORTABLE = EngineInfo()


def _decode_version(kind: str, ver: int) -> tuple[int, int, int]:
    if kind == "redisearch":
        return (ver // 10000, (ver // 100) % 100, ver % 100)
    if ver < 65536:  # valkey-search 1.0.x: 10000 / 10003
        return (ver // 10000, (ver // 100) % 100, ver % 100)
    return (ver >> 16, (ver >> 8) & 0xFF, ver & 0xFF)


def detect_engine(module_list: Any, ft_config_reply: Any) -> EngineInfo:
    """Classify the search engine from ``MODULE LIST`` and the reply to ``FT.CONFIG GET TIMEOUT``.

    Args:
        module_list: the MODULE LIST reply.
        ft_config_reply: the FT.CONFIG reply, or the exception it raised (valkey-search has no FT.CONFIG).

    Raises:
        BackendAuthError: FT.CONFIG was refused for want of a permission (``+ft.config|get``), which
            says nothing about the engine.
    """
    version = None
    for module in module_list or []:
        info = pairs(module) if not isinstance(module, dict) else {as_text(k): v for k, v in module.items()}
        name = as_text(info.get("name", "")).lower()
        if name in ("search", "ft", "redisearch", "valkey-search"):
            try:
                version = int(as_text(info.get("ver", 0)))
            except ValueError:
                version = 0
    if version is None:
        return PORTABLE
    if isinstance(ft_config_reply, BaseException):
        refusal = translate_backend_error(ft_config_reply)
        if isinstance(refusal, BackendAuthError):
            raise BackendAuthError(
                "the Valkey user may not run FT.CONFIG GET, which tells RediSearch from valkey-search: grant "
                f"it +ft.config|get; the server said: {refusal}"
            ) from ft_config_reply
    kind: Literal["valkey-search", "redisearch"] = (
        "valkey-search" if isinstance(ft_config_reply, BaseException) else "redisearch"
    )
    return EngineInfo(kind, _decode_version(kind, version))
