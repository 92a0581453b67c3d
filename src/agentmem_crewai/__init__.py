"""agentmem for CrewAI: ``ValkeyStorage``, a ``crewai.Memory`` storage backend on agentmem_core.

::

    from crewai import Memory
    from agentmem_crewai import ValkeyStorage

    memory = Memory(storage=ValkeyStorage.from_url("valkey://localhost:6379", name="crew", dims=1536),
                    embedder=my_embedder)

``register_valkey_storage()`` makes ``Memory(storage="valkey://host:6379/0?name=crew&dims=1536")`` work
(CrewAI's ``set_memory_storage_factory``). How records map onto core memories, scores and the private
rule: see :mod:`agentmem_crewai.storage`.
"""

from __future__ import annotations

from agentmem_crewai._mapping import (
    LAST_ACCESSED_KEY,
    PRIVATE_KEY,
    VISIBLE_TO_KEY,
    PrivateRule,
    StorageDimensionMismatchError,
)
from agentmem_crewai.factory import ValkeyStorageFactory, register_valkey_storage
from agentmem_crewai.storage import ValkeyStorage

__all__ = [
    "LAST_ACCESSED_KEY",
    "PRIVATE_KEY",
    "VISIBLE_TO_KEY",
    "PrivateRule",
    "StorageDimensionMismatchError",
    "ValkeyStorage",
    "ValkeyStorageFactory",
    "register_valkey_storage",
]
