"""The embedded backend's memory writes: WRITE, WRITE_MANY, DUPLICATE, UPDATE and DELETE of ``_scripts.py``.

Each handler follows its Lua step by step (the comments name the steps), on the tables of ``_schema``; the
handler table (``_ops.HANDLERS``) dispatches to them.
"""

from __future__ import annotations

import re
from typing import Any

from agentmem_core import ops
from agentmem_core._encoding import parse_id
from agentmem_core.facts import FACT_TOKEN_PREFIX
from agentmem_core.schema import F

from ._tx import Tx, parse_integer, parse_score, text, wrong_args

__all__ = ["delete", "merge", "update", "write", "write_many"]

_SEQ = re.compile(r"(\d+)\|")
"""The write sequence at the head of a stored ``opt`` field."""

_CALLER = re.compile(r"[^|]*\|[^|]*\|[^|]*\|(.+)", re.DOTALL)
"""The caller id at the tail of a stored ``opt`` field."""

_OPT_TTL = re.compile(r"([^|]*)\|[^|]*\|(.*)", re.DOTALL)
"""A stored ``opt`` field around its TTL (UPDATE replaces the TTL alone)."""


# -- memories ----------------------------------------------------------------------------------------------
class _Pending:
    """A WriteMany's count changes, applied once at its end (as WRITE_MANY's ``acc`` on Valkey).

    The next write sequence number is counted here after one read, and the kind counts are summed: nothing
    in between reads them, and each statement saved is one of a save's few dozen.
    """

    def __init__(self) -> None:
        self.seq: int | None = None
        self.first_seq = 0
        self.kinds: dict[str, int] = {}

    def next_seq(self, tx: Tx, tag: str) -> str:
        if self.seq is None:
            self.seq = self.first_seq = tx.hincrby(tag, "#seq", 0)
        self.seq += 1
        return str(self.seq)

    def flush(self, tx: Tx, tag: str) -> None:
        if self.seq is not None and self.seq != self.first_seq:
            tx.hincrby(tag, "#seq", self.seq - self.first_seq)
        for kind, n in self.kinds.items():
            tx.hincrby(tag, kind, n)


def write(tx: Tx, op: ops.Write, pending: _Pending | None = None) -> ops.WriteResult:
    parse_id(op.id)
    tag, now = op.tag, op.now
    tx.purge(tag, now)
    old = tx.memory(op.id)
    old_fields = old[0] if old is not None else {}
    old_kind = old_fields.get(F.KIND)
    keep = op.created_at == ""
    created = op.created_at
    if keep:
        kept = old_fields.get(F.CREATED_AT)
        created = kept if kept is not None else now
    # the write sequence: a re-put keeps its place
    seq: str | None = None
    opt = old_fields.get(F.OPT)
    if keep and opt is not None and (match := _SEQ.match(opt)):
        seq = match.group(1)
    if seq is None:
        seq = pending.next_seq(tx, tag) if pending is not None else str(tx.hincrby(tag, "#seq", 1))
    if old is not None:  # the old memory goes, with its fields, index entries and child vectors
        if old_kind is not None:
            if tx.zrem("z", tag, op.id):
                tx.hincrby(tag, old_kind, -1)
            tx.zrem("x", tag, f"{old_kind}|{op.id}")
        tx.destroy(op.id)
    extra = max(0, len(op.vectors) - 1)
    fields: dict[str, str] = {F.OPT: f"{seq}|{op.opt_rest}"}
    if extra:
        fields[F.NV] = str(extra)
    first = created if keep else text(op.fields[F.CREATED_AT])
    fields[F.CREATED_AT] = fields[F.X_CREATED_AT] = first
    for name, value in op.fields.items():
        if name not in (F.CREATED_AT, F.X_CREATED_AT):
            fields[name] = text(value)
    ttl = int(op.ttl_ms)
    deadline = tx.now_ms + ttl if ttl > 0 else None
    tx.save(op.id, fields, deadline)
    tx.index(op.id, fields, old=None)  # the old one (if any) was destroyed above
    for n, blob in enumerate(op.vectors):
        tx.put_vector(op.id, n, blob)
    if pending is not None:
        pending.kinds[op.kind] = pending.kinds.get(op.kind, 0) + 1
    else:
        tx.hincrby(tag, op.kind, 1)
    tx.zadd("z", tag, op.id, parse_score(created))
    tx.zadd("i", tag, op.id, parse_score(op.importance))
    if ttl > 0:
        tx.zadd("x", tag, f"{op.kind}|{op.id}", parse_score(op.expires_at))
    counters = tx.counters(op.id)  # its own hash: dropped for a new memory, else lives as long
    if counters is not None:
        if old_kind is None:
            tx.drop_counters(op.id)
        else:
            tx.save_counters(op.id, counters[0], deadline)
    size = tx.zcard("z", tag) if op.count_up_to is None else tx.zcard_up_to("z", tag, op.count_up_to)
    return ops.WriteResult(old_kind is None, size)


def write_many(tx: Tx, op: ops.WriteMany) -> tuple[ops.WriteResult, ...]:
    pending: dict[str, _Pending] = {}  # one scope per call; by tag all the same
    results = tuple(write(tx, w, pending.setdefault(w.tag, _Pending())) for w in op.writes)
    for tag, changes in pending.items():
        changes.flush(tx, tag)
    return results


def merge(tx: Tx, op: ops.Merge) -> int:
    parse_id(op.id)
    held = tx.memory(op.id)
    if held is None:
        return -1
    fields, deadline = held
    if op.tags:
        tags = fields.get(F.TAGS)
        tags = "[]" if tags is None else tags
        tokens = fields.get(F.X_TAGS) or ""
        have = {t for t in tokens.split("|") if t}
        changed = False
        for json_tag, token in op.tags:
            if token not in have:
                have.add(token)
                changed = True
                tags = f"[{json_tag}]" if tags == "[]" else f"{tags[:-1]},{json_tag}]"
                tokens = token if tokens == "" else f"{tokens}|{token}"
        if changed:
            before = dict(fields)
            fields.update({F.TAGS: tags, F.X_TAGS: tokens, F.UPDATED_AT: op.now})
            tx.save(op.id, fields, deadline)
            tx.index(op.id, fields, (F.X_TAGS,), old=before)
    counters = tx.counters(op.id)
    data, own = counters if counters is not None else ({}, None)
    count = parse_integer(data.get(F.DUPLICATE_COUNT)) + 1
    data[F.DUPLICATE_COUNT] = str(count)
    data[F.LAST_ACCESSED_AT] = op.now
    tx.save_counters(op.id, data, deadline if deadline is not None else own)
    return count


def update(tx: Tx, op: ops.Update) -> bool:
    parse_id(op.id)
    tag = op.id[:16]
    held = tx.memory(op.id)
    if held is None or held[0].get(F.KIND) is None:
        return False
    fields, deadline = held
    before = dict(fields)
    current = fields[F.KIND]
    expires = fields.get(F.EXPIRES_AT)
    if expires is not None and parse_score(expires) <= parse_score(op.now):
        return False
    changes: list[tuple[str, Any]] = [(name, value) for name, value in op.set_fields.items()]
    if op.vector is not None:
        changes.append((F.EMBEDDING, op.vector))
    opt = fields.get(F.OPT)
    if op.ttl_seconds != "" and opt is not None and (match := _OPT_TTL.fullmatch(opt)):
        changes.append((F.OPT, f"{match.group(1)}|{op.ttl_seconds}|{match.group(2)}"))
    if not changes:
        raise wrong_args("hset")
    for name, value in changes:
        if name == F.EMBEDDING:
            tx.put_vector(op.id, 0, value)
        else:
            fields[name] = text(value)
    for name in op.removed:
        if name == F.EMBEDDING:
            tx.drop_vectors(op.id, extra=False)
        elif name == F.VX:
            tx.drop_vectors(op.id, first=False)
        fields.pop(name, None)
    meta_touched = op.fact_tokens is not None or F.X_META in op.set_fields or F.X_META in op.removed
    if meta_touched:  # x_meta: the metadata's tokens and a fact's ("f...") change apart
        held_tokens = [t for t in (before.get(F.X_META) or "").split("|") if t]
        own = [t for t in held_tokens if not t.startswith(FACT_TOKEN_PREFIX)]
        fact = [t for t in held_tokens if t.startswith(FACT_TOKEN_PREFIX)]
        if F.X_META in op.set_fields or F.X_META in op.removed:
            own = [t for t in (op.set_fields.get(F.X_META) or "").split("|") if t]
        if op.fact_tokens is not None:
            fact = list(op.fact_tokens)
        if own or fact:
            fields[F.X_META] = "|".join(own + fact)
        else:
            fields.pop(F.X_META, None)
    ttl = op.ttl_ms
    if ttl is not None:
        deadline = tx.now_ms + int(ttl)
    tx.save(op.id, fields, deadline)
    touched = [n for n, _ in changes] + list(op.removed) + ([F.X_META] if meta_touched else [])
    tx.index(op.id, fields, touched, old=before)
    if op.kind != "" and op.kind != current:
        if tx.zscore("z", tag, op.id) is not None:
            tx.hincrby(tag, current, -1)
            tx.hincrby(tag, op.kind, 1)
        score = tx.zscore("x", tag, f"{current}|{op.id}")
        if score is not None:
            tx.zrem("x", tag, f"{current}|{op.id}")
            tx.zadd("x", tag, f"{op.kind}|{op.id}", score)
        current = op.kind
    if op.importance != "":
        tx.zadd("i", tag, op.id, parse_score(op.importance))
    if ttl is not None:
        tx.zadd("x", tag, f"{current}|{op.id}", parse_score(op.expires_at))
        tx.expire_counters(op.id, deadline)
    return True


def delete(tx: Tx, op: ops.Delete) -> ops.Deleted:
    for memory_id in op.ids:
        parse_id(memory_id)
    tag = op.tag
    tx.purge(tag, op.now)
    n = tx.zcard("z", tag)
    removed: list[str] = []
    external: list[str] = []
    for memory_id in op.ids:
        if op.keep >= 0 and n <= op.keep:
            break
        if op.limit >= 0 and len(removed) >= op.limit:
            break
        held = tx.memory(memory_id)
        fields = held[0] if held is not None else {}
        kind, opt = fields.get(F.KIND), fields.get(F.OPT)
        caller = match.group(1) if opt is not None and (match := _CALLER.fullmatch(opt)) else None
        member = tx.zrem("z", tag, memory_id)
        tx.zrem("i", tag, memory_id)
        if kind is not None:
            if member:
                tx.hincrby(tag, kind, -1)
            tx.zrem("x", tag, f"{kind}|{memory_id}")
        existed = held is not None and tx.destroy(memory_id)
        tx.drop_counters(memory_id)
        if existed or member:
            n -= member
            removed.append(memory_id)
            if caller:
                external.append(caller)
    return ops.Deleted(n, removed, external)
