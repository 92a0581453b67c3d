"""The audit trail on SQLite: the ``audit`` table, and the two audit operations as Valkey streams do them.

One row per entry: ``seq`` (``AUTOINCREMENT``: increasing, never reused, even once the oldest rows are
trimmed) and ``fields`` (a JSON object of text values, as stored by ``XADD``). An entry's position is its
``seq`` as a decimal string. The trim is exact (the newest ``cap`` rows stay), where Valkey's ``MAXLEN ~``
keeps a little more.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentmem_core.errors import InvalidMemoryError

if TYPE_CHECKING:  # types only: _schema imports this module for its DDL, before _tx exists
    from agentmem_core import ops

    from ._tx import Tx

__all__ = ["AUDIT_DDL", "audit_append", "audit_range"]

AUDIT_DDL = "CREATE TABLE IF NOT EXISTS {audit} (seq INTEGER PRIMARY KEY AUTOINCREMENT, fields TEXT NOT NULL)"
"""The audit table (``_schema._DDL`` creates it at setup; see :func:`_q` for files set up before it)."""

_MAX_SEQ = 2**63 - 1
"""SQLite's largest integer (a larger ``before`` would not bind as a parameter)."""
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _missing_table(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


def _q(tx: Tx, template: str, params: Sequence[Any]) -> sqlite3.Cursor:
    """One statement on the audit table, creating the table first when the file predates it.

    A store opened by name uses a file's tables without a ``setup()``, so a file written by a version
    without the audit trail may lack the table (as ``_leases._q`` does for leases).
    """
    try:
        return tx.q(template, params)
    except sqlite3.OperationalError as exc:
        if not _missing_table(exc):
            raise
        tx.q(AUDIT_DDL)
        return tx.q(template, params)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def audit_append(tx: Tx, op: ops.AuditAppend) -> list[str]:
    """:class:`~agentmem_core.ops.AuditAppend`: insert the entries, then keep only the newest ``cap``."""
    positions: list[str] = []
    for entry in op.entries:
        fields = {_text(name): _text(value) for name, value in entry.items()}
        cursor = _q(tx, "INSERT INTO {audit} (fields) VALUES (?)", (_JSON.encode(fields),))
        positions.append(str(cursor.lastrowid))
    if positions:
        # seq has no gaps (only the oldest rows are ever deleted), so this leaves exactly the newest cap
        _q(tx, "DELETE FROM {audit} WHERE seq <= ?", (int(positions[-1]) - max(1, op.cap),))
    return positions


def _bound(before: str) -> int:
    """The ``seq`` strictly below which a page starts (``before`` is one of this backend's positions)."""
    if not (before.isascii() and before.isdigit()):
        raise InvalidMemoryError(f"before={before!r} is not a position of this store (a decimal number here)")
    return min(int(before), _MAX_SEQ + 1)  # past every row; then minus one still binds


def audit_range(tx: Tx, op: ops.AuditRange) -> list[tuple[str, dict[str, str]]]:
    """:class:`~agentmem_core.ops.AuditRange`: up to ``count`` entries below ``before``, newest first."""
    if op.count <= 0:
        return []
    # "seq <= top" (not "< before"): None is then "every row", as no seq exceeds SQLite's largest integer
    top = _MAX_SEQ if op.before is None else _bound(op.before) - 1
    try:
        rows = tx.q(
            "SELECT seq, fields FROM {audit} WHERE seq <= ? ORDER BY seq DESC LIMIT ?", (top, op.count)
        ).fetchall()
    except sqlite3.OperationalError as exc:
        # a read runs in a read transaction: no table is no entry yet (the first append creates it)
        if not _missing_table(exc):
            raise
        return []
    return [(str(seq), {str(k): str(v) for k, v in json.loads(fields).items()}) for seq, fields in rows]
