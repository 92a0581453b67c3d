"""The embedded backend: one store in one SQLite file, no server (standard library ``sqlite3`` + numpy).

:class:`SqliteBackend` executes the typed operations of :mod:`agentmem_core.ops` with the results the
Valkey backend gives for the same sequence of operations (its Lua scripts, its key lifetimes, its search
semantics), so both rank identically. See :mod:`._schema` for the tables.
"""

from __future__ import annotations

from ._backend import SqliteBackend

__all__ = ["SqliteBackend"]
