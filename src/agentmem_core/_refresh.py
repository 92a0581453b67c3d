"""TTL refresh on read (``refresh_ttl=True`` on get, list and recall): restart what was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import overload

from agentmem_core._context import Context
from agentmem_core._plan import Flow, batch, expect
from agentmem_core.ops import Refresh
from agentmem_core.schema import format_number
from agentmem_core.types import Memory

__all__ = ["refresh_flow", "refreshed"]


def refresh_flow(
    ctx: Context, memories: Sequence[Memory | None], internal: Sequence[str | None]
) -> Flow[None]:
    """Restart the lifetime of the read memories that have a TTL (``refresh_ttl=True``), in one round trip.

    ``internal`` are the memories' internal ids (their ``Memory.id`` may be a caller id). The memories
    are immutable: the caller reads the new expiry from :func:`refreshed`.
    """
    entries = tuple(
        (
            memory_id,
            memory.kind.value,
            format_number(ctx.now + memory.ttl),
            max(1, int(round(memory.ttl * 1000))),
        )
        for memory, memory_id in zip(memories, internal)
        if memory is not None and memory_id is not None and memory.ttl is not None
    )
    if entries:
        (refreshed_count,) = yield batch([Refresh(entries)])
        expect(refreshed_count)


@overload
def refreshed(ctx: Context, memory: Memory) -> Memory: ...
@overload
def refreshed(ctx: Context, memory: Memory | None) -> Memory | None: ...
def refreshed(ctx: Context, memory: Memory | None) -> Memory | None:
    """A memory as a read with ``refresh_ttl=True`` left it (its new ``expires_at``)."""
    if memory is None or memory.ttl is None:
        return memory
    return replace(memory, expires_at=ctx.now + memory.ttl)
