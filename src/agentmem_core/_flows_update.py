"""Flows that change memories in place: one (``update``) or many with one change (``update_many``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentmem_core._context import Context
from agentmem_core._flows_read import decode_gets, get_op, resolve_flow
from agentmem_core._lexical import context_terms
from agentmem_core._parse import as_text
from agentmem_core._plan import Embed, Flow, batch, expect
from agentmem_core._records import PreparedPatch, check_content, content_fields, memory_scope, prepare_patch
from agentmem_core.audit import Logged, audit_op
from agentmem_core.embeddings import validate_vectors, vector_to_bytes
from agentmem_core.errors import InvalidMemoryError, NotFoundError
from agentmem_core.ops import ReadMemories, Update
from agentmem_core.schema import F, format_number, opt_from_texts, unpack_opt
from agentmem_core.types import Memory

__all__ = ["update_flow", "update_many_flow"]

MAX_UPDATE_MANY = 10_000
"""The most ids one ``update_many`` takes (its writes and reads go in one round trip)."""


def _change(
    ctx: Context,
    memory_id: str,
    patch: PreparedPatch,
    fields: Mapping[str, str],
    removed: Sequence[str],
    vector: bytes | None = None,
) -> Update:
    """The ``Update`` op of one memory (the patch validated once, for every memory it applies to)."""
    return Update(
        id=memory_id, now=format_number(ctx.now), kind=patch.kind.value if patch.kind else "",
        importance=patch.importance or "", ttl_ms=patch.ttl_ms, expires_at=patch.expires_text or "",
        ttl_seconds="" if patch.ttl_ms is None else format_number(patch.ttl_ms / 1000),
        set_fields=dict(fields), removed=tuple(removed), vector=vector,
    )  # fmt: skip


def _changed(**values: Any) -> list[str]:
    return sorted(name for name, value in values.items() if value is not None)


def update_flow(
    ctx: Context,
    memory_id: str,
    *,
    content: str | None,
    importance: float | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    kind: str | None,
    ttl: float | None,
) -> Flow[Memory]:
    """Change a memory in place (scope and id unchanged), atomically; re-embeds only when content changes.

    The change is applied by one script that checks the memory still exists: two writers changing
    different attributes both keep their change, and a concurrent delete is a clean "not found". The
    updated memory comes back in the same round trip.

    Raises:
        NotFoundError: when the memory does not exist (or expired).
    """
    (internal,) = yield from resolve_flow(ctx, [memory_id])
    if internal is None:
        raise NotFoundError(f"memory {memory_id} does not exist")
    caller_id, memory_id = memory_id, internal
    patch = prepare_patch(
        ctx.config,
        ctx.now,
        content=content,
        importance=importance,
        tags=tags,
        metadata=metadata,
        kind=kind,
        ttl=ttl,
    )  # fmt: skip  (validates everything before any I/O)
    fields = dict(patch.set_fields)
    removed = list(patch.removed)
    vector: bytes | None = None
    if patch.content is not None:
        (current,) = yield batch([ReadMemories((memory_id,), (F.CONTENT, F.OPT, F.LEX))])
        ((values, _),) = expect(current)
        content_now, opt, lex = values or (None, None, None)
        if content_now is None:
            raise NotFoundError(f"memory {caller_id} does not exist")
        embedded = unpack_opt(opt)[2]
        from_texts = opt_from_texts(opt)  # its vectors are of texts: the content's words change alone
        check_content(patch.content, ctx.config, embedded=embedded and not from_texts)
        if as_text(content_now) != patch.content:  # the same text keeps its vector and terms
            # its context still situates it: the context's terms stay
            context = context_terms(as_text(lex)) if lex is not None else []
            part, gone = content_fields(patch.content, embedded=embedded, context=context)
            fields.update(part)
            removed.extend(gone)
            if embedded and not from_texts:
                raw = yield Embed((patch.content,))
                vector = vector_to_bytes(validate_vectors(raw, ctx.spec.config.dims, expected=1)[0])
    change = _change(ctx, memory_id, patch, fields, removed, vector)
    # one scope: the read runs after the change, in order (on Valkey: the same hash slot and node)
    updated, read = yield batch([change, get_op([memory_id])])
    if not expect(updated):
        raise NotFoundError(f"memory {caller_id} does not exist")
    (memory,) = decode_gets(ctx, [memory_id], read)
    if memory is None:
        raise NotFoundError(f"memory {caller_id} was deleted while it was being updated")
    changes = _changed(
        content=content, importance=importance, tags=tags, metadata=metadata, kind=kind, ttl=ttl
    )
    audit = audit_op(ctx, [("update", memory_scope(memory), [memory_id], {"changed": changes})])
    if audit is not None:
        (logged,) = yield batch([audit])
        expect(logged)
    return memory


def update_many_flow(
    ctx: Context,
    memory_ids: Sequence[str],
    *,
    importance: float | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    kind: str | None,
    ttl: float | None,
) -> Flow[list[Memory | None]]:
    """Apply one change to many memories: the same script per memory as ``update``, all in one round trip.

    Each memory changes atomically on its own (a memory deleted meanwhile is skipped, never recreated);
    the change is validated once, before any I/O. Content is per memory, so it is not a bulk change.

    Returns:
        Per given id, in order, the memory as updated, or ``None`` where it does not exist.
    """
    if isinstance(memory_ids, str) or not isinstance(memory_ids, Sequence):
        raise InvalidMemoryError(f"memory_ids must be a sequence of ids, got {type(memory_ids).__name__}")
    if len(memory_ids) > MAX_UPDATE_MANY:
        raise InvalidMemoryError(f"update_many takes at most {MAX_UPDATE_MANY} ids, got {len(memory_ids)}")
    patch = prepare_patch(
        ctx.config, ctx.now, importance=importance, tags=tags, metadata=metadata, kind=kind, ttl=ttl
    )  # validates everything before any I/O
    if not memory_ids:
        return []
    internal = yield from resolve_flow(ctx, list(memory_ids))
    known = list(dict.fromkeys(i for i in internal if i is not None))
    if not known:
        return [None] * len(memory_ids)
    changes = [_change(ctx, memory_id, patch, patch.set_fields, patch.removed) for memory_id in known]
    # each memory's read follows its own change, in order (on Valkey: the same hash slot and node)
    *updated, read = yield batch([*changes, get_op(known)])
    by_id: dict[str, Memory] = {}
    for memory_id, done, memory in zip(known, updated, decode_gets(ctx, known, read)):
        if expect(done) and memory is not None:
            by_id[memory_id] = memory
    names = _changed(importance=importance, tags=tags, metadata=metadata, kind=kind, ttl=ttl)
    by_scope: dict[str, list[str]] = {}  # one audit entry per scope, as forget_many logs
    for memory_id in by_id:
        by_scope.setdefault(memory_id[:16], []).append(memory_id)
    entries: list[Logged] = [
        ("update", memory_scope(by_id[ids[0]]), ids, {"changed": names}) for ids in by_scope.values()
    ]
    audit = audit_op(ctx, entries)
    if audit is not None:
        (logged,) = yield batch([audit])
        expect(logged)
    return [None if i is None else by_id.get(i) for i in internal]
