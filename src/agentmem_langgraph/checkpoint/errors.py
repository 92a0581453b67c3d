"""Errors raised by the checkpointer, all below :class:`agentmem_core.errors.AgentMemError`.

The tree::

    AgentMemError
    ├── CheckpointError                   root of the checkpointer's own errors
    │   ├── InvalidCheckpointConfigError  bad input: config without thread_id, wrong types (ValueError)
    │   ├── CorruptCheckpointError        a stored record, blob or write cannot be decoded
    │   └── ThreadNotEmptyError           copy_thread into a thread that already has checkpoints
    └── BackendError                      server / connection failures (translated from valkey-py)

Nothing is written when one of these is raised by a write: inputs are validated and serialized before the
single server-side script that stores them runs.
"""

from __future__ import annotations

from agentmem_core.errors import AgentMemError

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "InvalidCheckpointConfigError",
    "ThreadNotEmptyError",
]


class CheckpointError(AgentMemError):
    """Root of the errors raised by :class:`ValkeySaver` and :class:`AsyncValkeySaver`."""


class InvalidCheckpointConfigError(CheckpointError, ValueError):
    """The ``RunnableConfig`` (or another argument) cannot address a checkpoint; nothing was written."""


class CorruptCheckpointError(CheckpointError):
    """Stored data exists but cannot be decoded (truncated, tampered with, or wrong serializer/key)."""


class ThreadNotEmptyError(CheckpointError):
    """``copy_thread`` refused to merge into a target thread that already holds data."""
