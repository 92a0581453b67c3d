"""Agent records and memory hooks over the core, for agents that use no framework.

Typed records (:class:`AgentState`, :class:`Action`, :class:`Interaction`) stored as core memories
(``agentmem_core.agents.records`` says how), one agent's log of them (:class:`AgentLog`,
:class:`AsyncAgentLog`: queries by step range, time, attribute values and similarity, recent states,
the changes of one attribute, per-agent stats), and hooks that record an agent's steps without touching
its code (:func:`remembers`, :func:`with_memory`, :func:`memory_of`). Everything goes through the public
API of :class:`~agentmem_core.MemoryStore` / :class:`~agentmem_core.AsyncMemoryStore`, so it works on
every backend.
"""

from __future__ import annotations

from agentmem_core.agents.hooks import (
    AsyncMemoryHook,
    MemoryHook,
    default_state,
    jsonable,
    memory_of,
    remembers,
    with_memory,
)
from agentmem_core.agents.log import AgentLog, AsyncAgentLog, RecordHit, Selection
from agentmem_core.agents.records import (
    ABSENT,
    PHASE_KEY,
    RECORD_KEY,
    RECORD_KINDS,
    STEP_KEY,
    Action,
    AgentState,
    AgentStats,
    AttributeChange,
    Interaction,
    Phase,
    Record,
    RecordKind,
    StateDiff,
    attribute_changes,
    diff_states,
    record_from_memory,
    record_key,
    record_text,
)

__all__ = [
    "ABSENT",
    "PHASE_KEY",
    "RECORD_KEY",
    "RECORD_KINDS",
    "STEP_KEY",
    "Action",
    "AgentLog",
    "AgentState",
    "AgentStats",
    "AsyncAgentLog",
    "AsyncMemoryHook",
    "AttributeChange",
    "Interaction",
    "MemoryHook",
    "Phase",
    "Record",
    "RecordHit",
    "RecordKind",
    "Selection",
    "StateDiff",
    "attribute_changes",
    "default_state",
    "diff_states",
    "jsonable",
    "memory_of",
    "record_from_memory",
    "record_key",
    "record_text",
    "remembers",
    "with_memory",
]
