"""What the sync and async stores share: one generator flow per LangGraph batch, holding every decision.

A flow yields :class:`CoreCall` (a method of the core store, with its arguments) or :class:`EmbedQuery`
(a query to embed with LangChain's ``embed_query``) and receives the reply; the drivers in ``store.py``
and ``aio.py`` only send. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from agentmem_core import Kind, Memory, MemoryInput, Page, RecallResult

__all__ = [
    "MAX_DEPTH",
    "UNINDEXED_TAG",
    "CoreCall",
    "EmbedQuery",
    "Flow",
    "Ranking",
    "Settings",
    "batch_flow",
    "metadata_filter",
    "tokenized_fields",
]

T = TypeVar("T")

Ranking = Literal["composite", "similarity"]
"""How a search with a query ranks: the core's composite score, or cosine similarity alone."""

CoreMethod = Literal[
    "get_by_key", "remember_many", "forget_keys", "recall", "recall_by_vector", "list", "count",
    "list_namespaces",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class CoreCall:
    """Call ``method`` of the core store (sync or async) with ``args`` and ``kwargs``."""

    method: CoreMethod
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class EmbedQuery:
    """Embed a search query with the LangChain embeddings' ``embed_query`` (``aembed_query``)."""

    text: str


Flow = Generator[CoreCall | EmbedQuery, Any, T]

CONTEXT_CHARS = 4_000
"""The most of an item's context text the core is given (its end: the text nearest the item)."""

MAX_DEPTH = 10_000
"""The deepest the core pages: ``k + offset`` of a recall, ``limit`` and ``offset`` of a list."""

UNINDEXED_TAG = "langgraph:unindexed"
"""The core tag of items stored without a vector, so a search can fill its page with them (score None)."""

_SIMILARITY_ONLY = {"similarity": 1.0, "recency": 0.0, "importance": 0.0}
_OPERATORS = frozenset(("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains"))

FieldPath = tuple[str, str | list[str]]
"""An index field and its tokens (``"$"`` stays ``"$"``: the whole value)."""


def tokenized_fields(fields: Sequence[str] | None) -> tuple[FieldPath, ...]:
    """The index fields with their tokenized paths (``["$"]`` when none are configured)."""
    return tuple((p, p if p == "$" else tokenize_path(p)) for p in (fields or ["$"]))


@dataclass(frozen=True)
class Settings:
    """What a flow needs to know about its store.

    Attributes:
        fields: the configured index fields, or ``None`` when the store has no index (nothing is embedded
            and a query is ignored, as in ``InMemoryStore``).
        ranking: how searches with a query rank.
        context: the value paths whose text situates an item (the core's ``context``: matched by
            composite searches' lexical channel, never embedded, never returned apart from the value).
    """

    fields: tuple[FieldPath, ...] | None
    ranking: Ranking
    context: tuple[FieldPath, ...] = ()


# -- the batch -----------------------------------------------------------------------------------------
def batch_flow(settings: Settings, ops: Iterable[Op]) -> Flow[list[Result]]:
    """Run LangGraph ops: reads in op order, then the writes, the last put per (namespace, key) winning.

    Raises:
        InvalidNamespaceError: for an op whose namespace labels LangGraph refuses.
        ValueError: for an unknown op type or an unsupported filter operator.
    """
    ops = list(ops)
    for op in ops:
        if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
            raise ValueError(f"Unknown operation type: {type(op)}")
        validate_op_namespace(op)
    results: list[Result] = []
    puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for op in ops:
        if isinstance(op, GetOp):
            results.append((yield from _get_flow(op)))
        elif isinstance(op, SearchOp):
            results.append((yield from _search_flow(settings, op)))
        elif isinstance(op, ListNamespacesOp):
            results.append((yield from _list_namespaces_flow(op)))
        else:
            puts[(tuple(op.namespace), op.key)] = op
            results.append(None)
    if puts:
        yield from _write_flow(settings, list(puts.values()))
    return results


def _get_flow(op: GetOp) -> Flow[Item | None]:
    if not _storable_key(op.key):
        return None  # the core refuses such a key on put, so no item has it
    memory = yield CoreCall(
        "get_by_key",
        {"key": op.key, "namespace": tuple(op.namespace), "refresh_ttl": op.refresh_ttl, "counters": False},
    )
    return None if memory is None else to_item(memory)


def _storable_key(key: str) -> bool:
    return isinstance(key, str) and 0 < len(key) <= 512


def _write_flow(settings: Settings, puts: Sequence[PutOp]) -> Flow[None]:
    deletes = [op for op in puts if op.value is None]
    writes = [op for op in puts if op.value is not None]
    if deletes:
        by_namespace: dict[tuple[str, ...], list[str]] = {}
        for op in deletes:
            if _storable_key(op.key):  # the core refuses other keys on put, so no item has them
                by_namespace.setdefault(tuple(op.namespace), []).append(op.key)
        for namespace, keys in by_namespace.items():
            yield CoreCall("forget_keys", {"namespace": namespace}, args=(keys,))
    if writes:
        yield CoreCall("remember_many", args=([_memory_input(settings, op) for op in writes],))


def _memory_input(settings: Settings, op: PutOp) -> MemoryInput:
    assert op.value is not None
    texts = index_texts(settings, op)
    return MemoryInput(
        content="\n".join(texts),
        namespace=tuple(op.namespace),
        key=op.key,
        metadata=dict(op.value),
        ttl=None if op.ttl is None else op.ttl * 60.0,  # LangGraph minutes -> core seconds
        embed=bool(texts),
        texts=texts if len(texts) > 1 else None,
        tags=None if texts else (UNINDEXED_TAG,),
        context=context_text(settings, op) if texts else None,  # only an embedded item is recalled
    )


def context_text(settings: Settings, op: PutOp) -> str | None:
    """The text at the item's context paths (the last :data:`CONTEXT_CHARS` of it), or ``None``."""
    assert op.value is not None
    texts = [t for _, tokens in settings.context for t in get_text_at_path(op.value, tokens) if t.strip()]
    return "\n".join(texts)[-CONTEXT_CHARS:] if texts else None


def index_texts(settings: Settings, op: PutOp) -> list[str]:
    """The texts embedded for a put, one vector each; none when it is stored without a vector.

    Every text at every path is embedded (``InMemoryStore`` too), and search scores an item by its
    closest vector. Blank texts are left out (they carry no meaning, and the core refuses them).
    """
    if settings.fields is None or op.index is False or op.value is None:
        return []
    paths = settings.fields if op.index is None else tokenized_fields(op.index)
    return [t for _, tokens in paths for t in get_text_at_path(op.value, tokens) if t.strip()]


# -- search --------------------------------------------------------------------------------------------
def _search_flow(settings: Settings, op: SearchOp) -> Flow[list[SearchItem]]:
    if op.offset < 0:
        raise ValueError(f"offset must be >= 0, got {op.offset}")
    if op.limit <= 0:
        return []
    scope: dict[str, Any] = {"namespace_prefix": tuple(op.namespace_prefix)}
    metadata = metadata_filter(op.filter)
    if metadata:
        scope["metadata"] = metadata
    # facts a newer statement superseded are history: a search never returns them, with a query (recall's
    # default) or without (the listing is told so)
    listed = {**scope, "current": True}
    if not op.query or settings.fields is None:
        memories = yield from _list_flow(listed, op.offset, op.limit, op.refresh_ttl)
        return [to_search_item(m, None) for m in memories]
    k = min(op.limit, MAX_DEPTH - op.offset)
    hits: RecallResult | tuple[()] = ()
    if k > 0:
        kwargs = {
            **scope, "k": k, "offset": op.offset, "threshold": None, "refresh_ttl": op.refresh_ttl,
            "counters": False,
        }  # fmt: skip
        if settings.ranking == "similarity":
            vector = yield EmbedQuery(op.query)
            kwargs.update(weights=_SIMILARITY_ONLY, reinforce=False)
            hits = yield CoreCall("recall_by_vector", kwargs, (vector,))
        else:
            hits = yield CoreCall("recall", kwargs, (op.query,))
    scored = [
        to_search_item(h.memory, 1.0 - h.distance if settings.ranking == "similarity" else h.score)
        for h in hits
    ]
    if len(scored) == op.limit or (0 < k == len(scored)):
        return scored
    # The ranking is exhausted: items without a vector follow it (score None), in listing order.
    if scored or op.offset == 0:
        n_scored = op.offset + len(scored)
    else:  # the offset skipped past every scored item: how many were there?
        total = yield CoreCall("count", listed)
        unindexed = yield CoreCall("count", {**listed, "tags": [UNINDEXED_TAG]})
        n_scored = total - unindexed
    rest = yield from _list_flow(
        {**listed, "tags": [UNINDEXED_TAG]},
        max(0, op.offset - n_scored),
        op.limit - len(scored),
        op.refresh_ttl,
    )
    return scored + [to_search_item(m, None) for m in rest]


def _list_flow(scope: Mapping[str, Any], offset: int, limit: int, refresh_ttl: bool) -> Flow[list[Memory]]:
    """``limit`` memories oldest first after skipping ``offset``, paging past the core's depth limit."""
    cursor: str | None = None
    while offset > MAX_DEPTH:
        page: Page = yield CoreCall(
            "list", {**scope, "order": "oldest", "limit": MAX_DEPTH, "cursor": cursor, "counters": False}
        )
        if page.next_cursor is None:
            return []
        offset -= len(page.memories)
        cursor = page.next_cursor
    out: list[Memory] = []
    while len(out) < limit:
        page = yield CoreCall(
            "list",
            {**scope, "order": "oldest", "limit": min(MAX_DEPTH, limit - len(out)), "offset": offset,
             "cursor": cursor, "refresh_ttl": refresh_ttl, "counters": False},
        )  # fmt: skip
        out.extend(page.memories)
        offset, cursor = 0, page.next_cursor
        if cursor is None:
            break
    return out


def metadata_filter(flt: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """LangGraph's search filter as the core's metadata filter.

    Top-level keys compare whole values (``$eq``); a nested dict without operators matches its keys
    partially (``{"a": {"b": 1}}`` becomes ``"a.b" == 1`` plus ``"a"`` present); operator dicts map
    one to one (the core also takes ``$in $nin $exists $contains``).

    Raises:
        ValueError: for an unknown operator, or two different operands of one operator on one path.
    """
    if not flt:
        return None
    out: dict[str, dict[str, Any]] = {}
    for key, value in flt.items():
        _add_condition(out, str(key), value)
    return out


def _add_condition(out: dict[str, dict[str, Any]], path: str, value: Any) -> None:
    if isinstance(value, Mapping):
        if any(str(k).startswith("$") for k in value):
            for op, operand in value.items():
                if op not in _OPERATORS:
                    raise ValueError(f"Unsupported operator: {op}")
                _put_condition(out, path, op, operand)
            return
        # A partial match needs the parent object (LangGraph: a dict; the core can only say "present").
        _put_condition(out, path, "$exists", True)
        for key, nested in value.items():
            _add_condition(out, f"{path}.{key}", nested)
        return
    _put_condition(out, path, "$eq", list(value) if isinstance(value, tuple) else value)


def _put_condition(out: dict[str, dict[str, Any]], path: str, op: str, operand: Any) -> None:
    conditions = out.setdefault(path, {})
    if op in conditions and _canon(conditions[op]) != _canon(operand):
        raise ValueError(f"conflicting filter conditions {op} on {path!r}: {conditions[op]!r}, {operand!r}")
    conditions[op] = operand


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


# -- namespaces ----------------------------------------------------------------------------------------
def _list_namespaces_flow(op: ListNamespacesOp) -> Flow[list[tuple[str, ...]]]:
    if op.limit <= 0:
        return []
    prefixes, suffixes = [], []
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            prefixes.append(tuple(condition.path))
        elif condition.match_type == "suffix":
            suffixes.append(tuple(condition.path))
        else:
            raise ValueError(f"Unsupported match type: {condition.match_type}")
    prefix, suffix = _merge(prefixes, from_end=False), _merge(suffixes, from_end=True)
    if prefix is None or suffix is None:
        return []  # two conditions of one kind contradict each other
    namespaces: list[tuple[str, ...]] = yield CoreCall(
        "list_namespaces",
        {"prefix": prefix or None, "suffix": suffix or None, "max_depth": op.max_depth,
         "limit": min(op.limit, MAX_DEPTH), "offset": op.offset},
    )  # fmt: skip
    return namespaces


def _merge(paths: Sequence[tuple[str, ...]], *, from_end: bool) -> tuple[str, ...] | None:
    """Several prefix (or suffix) patterns as one, label by label (``None`` when they contradict)."""
    merged: list[str] = []
    for path in paths:
        for i, label in enumerate(reversed(path) if from_end else path):
            if i == len(merged):
                merged.append(label)
            elif merged[i] == "*":
                merged[i] = label
            elif label not in ("*", merged[i]):
                return None
    return tuple(reversed(merged)) if from_end else tuple(merged)


# -- results -------------------------------------------------------------------------------------------
def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def item_value(memory: Memory) -> dict[str, Any]:
    """An item's value: what was put (kept in the metadata).

    A memory this store did not put (a summary or a fact the core wrote, ``consolidate`` and
    ``remember(subject=...)``; a record another framework wrote in the same namespace, which has no
    LangGraph key) also shows its text, as ``"content"``, so an agent can read it through the store and
    the memory tools.
    """
    value = dict(memory.metadata)
    foreign = memory.key is None or memory.kind is Kind.SUMMARY or memory.subject is not None
    if foreign and "content" not in value:
        value = {"content": memory.content, **value}
    return value


def to_item(memory: Memory) -> Item:
    """A core memory as a LangGraph item."""
    return Item(
        value=item_value(memory),
        key=memory.key or memory.id,
        namespace=memory.namespace,
        created_at=_when(memory.created_at),
        updated_at=_when(memory.updated_at),
    )


def to_search_item(memory: Memory, score: float | None) -> SearchItem:
    """A core memory as a LangGraph search result."""
    return SearchItem(
        namespace=memory.namespace,
        key=memory.key or memory.id,
        value=item_value(memory),
        created_at=_when(memory.created_at),
        updated_at=_when(memory.updated_at),
        score=None if score is None else float(score),
    )
