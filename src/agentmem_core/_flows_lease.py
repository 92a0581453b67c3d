"""Leases: a lock with an expiry, shared by every process on the store's storage.

A caller that must be alone doing something (consolidating one scope) takes the lease of a name for a
while, renews it while it works and releases it after; a holder that dies loses it when its time runs out,
by the backend's clock (Valkey's server, or the embedded store's clock), so no process waits forever on a
dead one. A holder is any string the caller picks, unique per process or runner (a random id): the
backend never releases or extends another holder's lease.
"""

from __future__ import annotations

import math
from typing import Any

from agentmem_core._plan import Flow, batch, expect
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.ops import AcquireLease, ReleaseLease

__all__ = [
    "MAX_LEASE_NAME_CHARS",
    "MAX_LEASE_TTL_SECONDS",
    "acquire_lease_flow",
    "check_lease_text",
    "lease_ttl_ms",
    "release_lease_flow",
]

MAX_LEASE_NAME_CHARS = 256
"""Longest lease name and holder (a key name on Valkey: short by design)."""
MAX_LEASE_TTL_SECONDS = 30 * 86_400.0
"""Longest lease (30 days): a lease is renewed while its work runs, never meant to outlive a process."""


def check_lease_text(what: str, value: Any) -> str:
    """Validate a lease name or holder: non-empty text without control characters, at most 256 characters.

    Raises:
        InvalidMemoryError: for anything else.
    """
    if not isinstance(value, str):
        raise InvalidMemoryError(f"lease {what} must be a string, got {type(value).__name__}")
    if value == "" or len(value) > MAX_LEASE_NAME_CHARS:
        raise InvalidMemoryError(f"lease {what} must be 1 to {MAX_LEASE_NAME_CHARS} characters")
    # control characters would make key names and logs ambiguous (a newline in a key, a NUL on SQLite)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise InvalidMemoryError(f"lease {what} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be stored
        raise InvalidMemoryError(f"lease {what} is not valid Unicode text: {exc.reason}") from exc
    return value


def lease_ttl_ms(ttl: Any) -> int:
    """A lease duration in seconds as whole milliseconds (at least 1).

    Raises:
        InvalidMemoryError: for a non-number, a non-finite or non-positive one, or one over 30 days.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidMemoryError(f"lease ttl must be a number of seconds, got {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0 or ttl > MAX_LEASE_TTL_SECONDS:
        raise InvalidMemoryError(f"lease ttl must be in (0, {MAX_LEASE_TTL_SECONDS:g}] seconds, got {ttl!r}")
    return max(1, round(ttl * 1000))


def acquire_lease_flow(name: str, holder: str, ttl: float) -> Flow[bool]:
    """Take lease ``name`` for ``holder`` (or extend it, when ``holder`` holds it) for ``ttl`` seconds.

    Validates now, when the flow is built, so bad input raises before anything is sent. Result: whether
    ``holder`` holds the lease now.

    Raises:
        InvalidMemoryError: for an invalid name, holder or ttl.
    """
    return _one(
        AcquireLease(check_lease_text("name", name), check_lease_text("holder", holder), lease_ttl_ms(ttl))
    )


def release_lease_flow(name: str, holder: str) -> Flow[bool]:
    """Release lease ``name`` if ``holder`` holds it. Result: whether it did (the lease is now free).

    Raises:
        InvalidMemoryError: for an invalid name or holder (when the flow is built).
    """
    return _one(ReleaseLease(check_lease_text("name", name), check_lease_text("holder", holder)))


def _one(op: AcquireLease | ReleaseLease) -> Flow[bool]:
    (reply,) = yield batch([op])
    return bool(expect(reply))
