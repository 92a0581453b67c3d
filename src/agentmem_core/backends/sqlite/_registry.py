"""The embedded backend's operations on the scope registry, the scope index, caller ids and live config.

Each handler is what the Valkey executor sends for the same operation (``backends/valkey.py``), on the
tables of ``_schema``; the handler table (``_ops.HANDLERS``) dispatches to them.
"""

from __future__ import annotations

import json
from typing import Any

from agentmem_core import ops
from agentmem_core.errors import BackendError

from ._tx import Tx, text, wrong_args

__all__ = [
    "all_scopes", "claim", "drop_members", "index_range", "read_config", "register", "release", "resolve",
    "scope_descriptors", "unregister", "write_config",
]  # fmt: skip


# -- caller ids --------------------------------------------------------------------------------------------
def _alias(tx: Tx, caller_id: str) -> str | None:
    row = tx.q("SELECT tag FROM {aliases} WHERE ext = ?", (caller_id,)).fetchone()
    return None if row is None else str(row[0])


def resolve(tx: Tx, op: ops.ResolveIds) -> list[str | None]:
    if not op.ids:
        raise wrong_args("hmget")
    return [_alias(tx, caller_id) for caller_id in op.ids]


def claim(tx: Tx, op: ops.ClaimId) -> str:
    current = _alias(tx, op.id)
    if current is not None and current != op.tag and current != op.stale:
        return current
    tx.q("INSERT OR REPLACE INTO {aliases} (ext, tag) VALUES (?, ?)", (op.id, op.tag))
    return ""


def release(tx: Tx, op: ops.ReleaseIds) -> int:
    released = 0
    for caller_id in op.ids:
        released += tx.q("DELETE FROM {aliases} WHERE ext = ? AND tag = ?", (caller_id, op.tag)).rowcount
    return released


# -- the registry and the scope index ------------------------------------------------------------------------
def _member(raw: Any) -> bytes:
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8")


def register(tx: Tx, op: ops.Register) -> None:
    descriptor = json.dumps(op.scope.descriptor(), sort_keys=True, ensure_ascii=False)
    tx.q("INSERT OR REPLACE INTO {scopes} (tag, descriptor) VALUES (?, ?)", (op.scope.tag, descriptor))
    tx.conn.executemany(
        tx.sql("INSERT OR IGNORE INTO {scopeix} (member) VALUES (?)"), [(_member(m),) for m in op.members]
    )


def unregister(tx: Tx, op: ops.Unregister) -> None:
    tx.q("DELETE FROM {scopes} WHERE tag = ?", (op.scope.tag,))
    for member in op.members:
        tx.q("DELETE FROM {scopeix} WHERE member = ?", (_member(member),))


def all_scopes(tx: Tx, op: ops.AllScopes) -> dict[str, Any]:
    return {str(tag): json.loads(d) for tag, d in tx.q("SELECT tag, descriptor FROM {scopes}")}


def _descriptor(tx: Tx, tag: str) -> Any:
    row = tx.q("SELECT descriptor FROM {scopes} WHERE tag = ?", (tag,)).fetchone()
    return None if row is None else json.loads(row[0])


def scope_descriptors(tx: Tx, op: ops.ScopeDescriptors) -> list[dict[str, Any] | None]:
    if not op.tags:
        raise wrong_args("hmget")
    return [_descriptor(tx, tag) for tag in op.tags]


def _lex_bound(raw: Any, *, start: bool) -> tuple[str, bytes] | None:
    """SQL comparison and value of a ZRANGEBYLEX bound; ``None``: unbounded; ``("", b"")``: empty range."""
    bound = _member(raw)
    if bound == b"-":
        return None if start else ("", b"")
    if bound == b"+":
        return ("", b"") if start else None
    if bound[:1] == b"[":
        return (">=" if start else "<=", bound[1:])
    if bound[:1] == b"(":
        return (">" if start else "<", bound[1:])
    raise BackendError("min or max not valid string range item")


def index_range(tx: Tx, op: ops.ScopeIndexRange) -> list[bytes]:
    lo, hi = _lex_bound(op.start, start=True), _lex_bound(op.end, start=False)
    if (lo is not None and lo[0] == "") or (hi is not None and hi[0] == ""):
        return []
    where: list[str] = []
    params: list[Any] = []
    for bound in (lo, hi):
        if bound is not None:
            where.append(f"member {bound[0]} ?")
            params.append(bound[1])
    limit = -1 if op.limit is None or op.limit < 0 else op.limit
    rows = tx.q(
        "SELECT member FROM {scopeix}" + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY member LIMIT ?", (*params, limit),
    )  # fmt: skip
    return [bytes(r[0]) for r in rows]


def drop_members(tx: Tx, op: ops.DropScopeIndexMembers) -> int:
    if not op.members:
        raise wrong_args("zrem")
    dropped = 0
    for member in dict.fromkeys(_member(m) for m in op.members):
        dropped += tx.q("DELETE FROM {scopeix} WHERE member = ?", (member,)).rowcount
    return dropped


# -- live config ---------------------------------------------------------------------------------------------
def read_config(tx: Tx, op: ops.ReadConfig) -> dict[str, str]:
    return {str(name): str(value) for name, value in tx.q("SELECT name, value FROM {config}")}


def write_config(tx: Tx, op: ops.WriteConfig) -> None:
    tx.conn.executemany(
        tx.sql("INSERT OR REPLACE INTO {config} (name, value) VALUES (?, ?)"),
        [(name, text(value)) for name, value in op.values.items()],
    )
