"""LangGraph checkpointers on Valkey: :class:`ValkeySaver` (sync) and :class:`AsyncValkeySaver` (asyncio).

Both implement the whole ``BaseCheckpointSaver`` contract, including ``delete_for_runs``, ``copy_thread``
and ``prune``, on a plain Valkey server or cluster. See :mod:`._keys` for the storage layout.
"""

from __future__ import annotations

from agentmem_langgraph.checkpoint._base import CheckpointTTL
from agentmem_langgraph.checkpoint.aio import AsyncValkeySaver
from agentmem_langgraph.checkpoint.errors import (
    CheckpointError,
    CorruptCheckpointError,
    InvalidCheckpointConfigError,
    ThreadNotEmptyError,
)
from agentmem_langgraph.checkpoint.saver import ValkeySaver

__all__ = [
    "AsyncValkeySaver",
    "CheckpointError",
    "CheckpointTTL",
    "CorruptCheckpointError",
    "InvalidCheckpointConfigError",
    "ThreadNotEmptyError",
    "ValkeySaver",
]
