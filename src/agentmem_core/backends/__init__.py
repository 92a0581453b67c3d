"""Storage backends: each executes the typed operations of :mod:`agentmem_core.ops`.

``valkey`` / ``valkey_client``: Valkey or Redis with a search module (valkey-search or RediSearch).
``sqlite``: the embedded backend (one SQLite file, no server). :class:`Backend` / :class:`AsyncBackend`
are the protocols a store drives; any object with ``execute`` (or ``aexecute``) can be passed to
``MemoryStore(...)`` in place of a valkey client.
"""

from agentmem_core._driver import AsyncBackend, Backend

__all__ = ["AsyncBackend", "Backend"]
