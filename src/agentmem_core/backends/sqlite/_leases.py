"""Leases on SQLite: the ``lease`` table, and the two lease operations as ``_lease_scripts.py`` does them.

One row per lease: ``name`` (primary key), ``holder`` and ``deadline`` (ms since the epoch by the
transaction's clock, ``Tx.now_ms``); a row whose deadline has passed is no lease, as an expired key.
Both operations write, so they run in a ``BEGIN IMMEDIATE`` transaction: the read and the write that
follows it are atomic against every other process on the file, as a Lua script is on the server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: _schema imports this module for its DDL, before _tx exists
    from agentmem_core import ops

    from ._tx import Tx

__all__ = ["LEASE_DDL", "acquire_lease", "release_lease"]

LEASE_DDL = (
    "CREATE TABLE IF NOT EXISTS {lease} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
    "deadline INTEGER NOT NULL) WITHOUT ROWID"
)
"""The lease table (``_schema._DDL`` creates it at setup; see :func:`_q` for files set up before it)."""


def _q(tx: Tx, template: str, params: Sequence[Any]) -> sqlite3.Cursor:
    """One statement on the lease table, creating the table first when the file predates it.

    A store opened by name uses a file's tables without a ``setup()``, so a file written by a version
    without leases may lack the table; creating it here (inside the operation's transaction) spares the
    caller a setup run. The check costs nothing once the table exists: the statement simply succeeds.
    """
    try:
        return tx.q(template, params)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        tx.q(LEASE_DDL)
        return tx.q(template, params)


def acquire_lease(tx: Tx, op: ops.AcquireLease) -> bool:
    """:class:`~agentmem_core.ops.AcquireLease`: take a free or expired lease, or extend one's own."""
    row = _q(tx, "SELECT holder, deadline FROM {lease} WHERE name = ?", (op.name,)).fetchone()
    if row is not None and int(row[1]) > tx.now_ms and str(row[0]) != op.holder:
        return False  # another holder's live lease
    _q(
        tx,
        "INSERT INTO {lease} (name, holder, deadline) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "holder = excluded.holder, deadline = excluded.deadline",
        (op.name, op.holder, tx.now_ms + int(op.ttl_ms)),
    )
    return True


def release_lease(tx: Tx, op: ops.ReleaseLease) -> bool:
    """:class:`~agentmem_core.ops.ReleaseLease`: delete the lease only if ``holder`` holds it, alive."""
    released = _q(
        tx,
        "DELETE FROM {lease} WHERE name = ? AND holder = ? AND deadline > ?",
        (op.name, op.holder, tx.now_ms),
    ).rowcount
    # an expired row is no lease (as an expired key is gone): reclaim it whoever held it
    _q(tx, "DELETE FROM {lease} WHERE name = ? AND deadline <= ?", (op.name, tx.now_ms))
    return released > 0
