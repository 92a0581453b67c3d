"""agentmem for LangGraph: the Valkey checkpointer (short-term thread state).

``ValkeySaver`` / ``AsyncValkeySaver`` implement LangGraph's ``BaseCheckpointSaver`` on a plain Valkey
server or cluster::

    from agentmem_langgraph import ValkeySaver

    with ValkeySaver.from_url("valkey://localhost:6379") as saver:
        graph = builder.compile(checkpointer=saver)
"""

from __future__ import annotations

from agentmem_langgraph.checkpoint import (
    AsyncValkeySaver,
    CheckpointError,
    CheckpointTTL,
    CorruptCheckpointError,
    InvalidCheckpointConfigError,
    ThreadNotEmptyError,
    ValkeySaver,
)

__all__ = [
    "AsyncValkeySaver",
    "CheckpointError",
    "CheckpointTTL",
    "CorruptCheckpointError",
    "InvalidCheckpointConfigError",
    "ThreadNotEmptyError",
    "ValkeySaver",
]
