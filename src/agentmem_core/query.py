"""Typed filters, rendered in one place: to an FT.SEARCH filter string and to a Python predicate.

A :class:`MemoryFilter` is what callers (and adapters) use to scope recall, list and forget. It renders to
the portable FT.SEARCH subset (encoded TAG values, fixed-point numeric ranges, at most 8 AND-ed leaves on
engines with the 16-node budget) and, for paths that do not go through the search index (listing by
scope, filters the index cannot express), to an exact Python predicate with the same semantics.

Metadata conditions: a plain value means ``$eq``; a dict may use ``$eq $ne $gt $gte $lt $lte $in $nin
$exists $contains`` (semantics in :class:`MetadataCondition`: ``$eq`` compares a list as a whole, as
LangGraph's and CrewAI's references do, and ``$contains`` is membership). Equality, membership and
presence are pushed into the query through tokens every write indexes; ranges and non-scalar equality are
checked on the client, and every read path then keeps fetching until its page is full or the candidates
are exhausted, so post-filtering never silently returns fewer than asked for. Ranges on metadata keys the
store declares numeric (``StoreConfig.numeric_fields``) are pushed down too. A key with dots is a path
into nested metadata (``"trip.city"``) unless the metadata has that exact top-level key; paths are
evaluated on the client.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from typing_extensions import TypedDict

from agentmem_core._conditions import (
    AnyOf,
    Leaf,
    MetadataCondition,
    NumRange,
    TagIn,
    leaf_size,
    parse_metadata_filter,
)
from agentmem_core._encoding import encode_tag, namespace_token
from agentmem_core._records import normalise_namespace, scope_value
from agentmem_core.config import Kind
from agentmem_core.errors import InvalidMemoryError, QueryTooComplexError
from agentmem_core.facts import FACT_TOKEN, SUPERSEDED_TOKEN, decode_state, normalise_subject, subject_token
from agentmem_core.schema import F, decode_memory, decode_metadata
from agentmem_core.types import Memory

__all__ = [
    "AnyOf",
    "FilterArgs",
    "Leaf",
    "MemoryFilter",
    "MetadataCondition",
    "NumRange",
    "TagIn",
    "leaf_size",
    "parse_metadata_filter",
    "recall_filter",
    "render_query",
    "to_filter",
]


def _opt_tuple(values: Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise InvalidMemoryError(f"{name} must be a sequence of strings, not a single string")
    out = tuple(values)
    for v in out:
        if not isinstance(v, str) or v == "":
            raise InvalidMemoryError(f"{name} values must be non-empty strings, got {v!r}")
    return out


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories an operation sees. Every field narrows; ``None`` means "any".

    Attributes:
        namespace: exact namespace path.
        namespace_prefix: the namespace path starts with this (hierarchical scopes).
        thread_id: thread / session.
        agent_id: agent.
        user_id: user.
        source: writer of the memory.
        tags: memories carrying at least one of these tags.
        kinds: memories of one of these kinds.
        created_after: ``created_at >= created_after``.
        created_before: ``created_at < created_before``.
        metadata: metadata conditions (see module docs).
        subjects: facts of one of these (normalised) subjects (``remember(..., subject=...)``).
        fact: ``True``: facts only (memories with a subject), ``False``: no facts, ``None``: both.
        current: ``True``: memories that hold now (no superseded or retracted fact), ``False``: only the
            superseded and retracted facts (history), ``None``: both. Recall defaults to ``True``.
    """

    namespace: tuple[str, ...] | None = None
    namespace_prefix: tuple[str, ...] | None = None
    thread_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    source: str | None = None
    tags: tuple[str, ...] | None = None
    kinds: tuple[Kind, ...] | None = None
    created_after: float | None = None
    created_before: float | None = None
    metadata: tuple[MetadataCondition, ...] = field(default=())
    any_of: tuple[MemoryFilter, ...] = field(default=())
    subjects: tuple[str, ...] | None = None
    current: bool | None = None
    fact: bool | None = None
    current_on_client: bool = False
    """Check ``current`` on the client, not in the index (set by :meth:`within_budget`)."""
    numeric_keys: frozenset[str] = field(default=frozenset())
    """The store's declared numeric metadata keys (bound per operation by :meth:`with_numeric`)."""

    def with_numeric(self, keys: Sequence[str]) -> MemoryFilter:
        """The filter bound to a store's declared numeric keys (their ranges are then pushed down)."""
        if not keys:
            return self
        bound = frozenset(keys)
        return replace(self, numeric_keys=bound, any_of=tuple(g.with_numeric(keys) for g in self.any_of))

    @classmethod
    def build(
        cls,
        *,
        namespace: str | Sequence[str] | None = None,
        namespace_prefix: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        source: str | None = None,
        tags: Sequence[str] | None = None,
        kinds: Sequence[Kind | str] | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        any_of: Sequence[Mapping[str, Any] | MemoryFilter] | None = None,
        subject: str | Sequence[str] | None = None,
        current: bool | None = None,
        fact: bool | None = None,
    ) -> MemoryFilter:
        """Validate user arguments into a filter.

        ``any_of`` is an OR of groups, each a mapping of the non-scope filter arguments (``source``,
        ``tags``, ``kinds``, ``created_after``, ``created_before``, ``metadata``) or a prebuilt filter
        of them: a memory matches when it matches at least one group (and everything else). For
        example CrewAI's "not private, or private and mine"::

            any_of=[{"metadata": {"private": False}}, {"source": "researcher"}]

        Raises:
            InvalidMemoryError: for invalid values.
        """
        for label, bound in (("created_after", created_after), ("created_before", created_before)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound)
            ):
                raise InvalidMemoryError(f"{label} must be a Unix timestamp, got {bound!r}")
        kind_values = None if kinds is None else tuple(Kind.parse(k) for k in _as_seq(kinds))
        for label, flag in (("current", current), ("fact", fact)):
            if flag is not None and not isinstance(flag, bool):
                raise InvalidMemoryError(f"{label} must be True, False or None, got {flag!r}")
        subjects = None
        if subject is not None:
            values = (subject,) if isinstance(subject, str) else subject
            if not isinstance(values, Sequence):
                raise InvalidMemoryError("subject must be a string or a list of strings")
            subjects = tuple(dict.fromkeys(normalise_subject(v) for v in values))
        return cls(
            subjects=subjects,
            current=current,
            fact=fact,
            namespace=None if namespace is None else normalise_namespace(namespace),
            # an empty prefix matches everything: treat it as "no prefix" (so it cannot pass for a scope)
            namespace_prefix=normalise_namespace(namespace_prefix) or None
            if namespace_prefix is not None
            else None,
            thread_id=scope_value("thread_id", thread_id),
            agent_id=scope_value("agent_id", agent_id),
            user_id=scope_value("user_id", user_id),
            source=scope_value("source", source),
            tags=_opt_tuple(tags, "tags"),
            kinds=kind_values,
            created_after=created_after,
            created_before=created_before,
            metadata=parse_metadata_filter(metadata),
            any_of=_parse_any_of(any_of),
        )

    # -- rendering -----------------------------------------------------------------------------------
    def leaves(self, now: float) -> list[Leaf]:
        """The FT leaves this filter pushes into the index, plus "not expired" at ``now``.

        The expiry leaf also makes the filter a numeric match-all when no other leaf is set, which
        filter-only queries need (valkey-search rejects a bare ``*`` without KNN).
        """
        return [NumRange(F.X_EXPIRES_AT, lo=now, lo_exclusive=True), *self.scope_leaves()]

    def scope_leaves(self) -> list[Leaf]:
        """The FT leaves of the filter's own conditions (no expiry leaf).

        KNN recall uses these: a memory past its TTL is a deleted key (PEXPIRE) or, until the server
        reclaims it, a nil row; the client drops what is left by ``expires_at``. (The expiry leaf's
        numeric range cost RediSearch about 0.1 ms per KNN query at 10k memories, ~12% of the query.)
        """
        out: list[Leaf] = []
        if self.namespace is not None:
            out.append(TagIn(F.X_NS, (namespace_token(self.namespace),)))
        if self.namespace_prefix:
            out.append(TagIn(F.X_NS_ANC, (namespace_token(self.namespace_prefix),)))
        for fname, value in ((F.X_THREAD, self.thread_id), (F.X_AGENT, self.agent_id),
                             (F.X_USER, self.user_id), (F.X_SOURCE, self.source)):  # fmt: skip
            if value is not None:
                out.append(TagIn(fname, (encode_tag(value),)))
        if self.tags is not None:
            out.append(TagIn(F.X_TAGS, tuple(dict.fromkeys(encode_tag(t) for t in self.tags))))
        if self.kinds is not None:
            out.append(TagIn(F.KIND, tuple(dict.fromkeys(k.value for k in self.kinds))))
        if self.created_after is not None or self.created_before is not None:
            out.append(
                NumRange(F.X_CREATED_AT, lo=self.created_after, hi=self.created_before, hi_exclusive=True)
            )
        out.extend(c.leaf() for c in self.metadata if c.pushable(self.numeric_keys))
        if self.any_of and self._any_of_pushable():
            out.append(AnyOf(tuple(tuple(g.scope_leaves()) for g in self.any_of)))
        if self.subjects is not None:
            out.append(TagIn(F.X_META, tuple(subject_token(s) for s in self.subjects)))
        if self.current is not None and not self.current_on_client:
            out.append(TagIn(F.X_META, (SUPERSEDED_TOKEN,), negate=self.current))
        if self.fact is not None:
            out.append(TagIn(F.X_META, (FACT_TOKEN,), negate=not self.fact))
        return out

    def within_budget(self, max_leaves: int, spare: int = 1) -> MemoryFilter:
        """The filter with ``current`` checked on the client when its leaf would not leave ``spare``.

        Recall adds ``current=True`` to every filter: it must not cost a caller's filter its place in the
        engine's predicate budget, nor the lexical channel its term predicate.
        """
        if self.current is None or self.current_on_client:
            return self
        if sum(leaf_size(leaf) for leaf in self.leaves(0.0)) + spare <= max_leaves:
            return self
        return replace(self, current_on_client=True)

    def _any_of_pushable(self) -> bool:
        return all(not g.client_conditions and g.scope_leaves() for g in self.any_of)

    @property
    def client_conditions(self) -> tuple[MetadataCondition, ...]:
        """Conditions the index cannot evaluate (checked on the client)."""
        return tuple(c for c in self.metadata if not c.pushable(self.numeric_keys))

    def is_scope_only(self) -> bool:
        """Whether only scope fields are set (namespace, thread, agent, user): it selects whole scopes."""
        return (
            not self.any_of
            and self.source is None
            and self.tags is None
            and self.kinds is None
            and self.created_after is None
            and self.created_before is None
            and not self.metadata
            and self.subjects is None
            and self.current is None
            and self.fact is None
        )

    def is_unsatisfiable(self) -> bool:
        """Whether the filter can match nothing (e.g. an empty tag list or time range)."""
        if self.tags is not None and not self.tags:
            return True
        if self.subjects is not None and not self.subjects:
            return True
        if self.kinds is not None and not self.kinds:
            return True
        rng = NumRange(F.X_CREATED_AT, lo=self.created_after, hi=self.created_before, hi_exclusive=True)
        if self.any_of and all(g.is_unsatisfiable() for g in self.any_of):
            return True
        return rng.is_empty()

    def matches(self, memory: Memory, now: float) -> bool:
        """Exact Python predicate with the same semantics as the rendered query."""
        if memory.expires_at is not None and memory.expires_at <= now:
            return False
        if self.namespace is not None and memory.namespace != self.namespace:
            return False
        if self.namespace_prefix and memory.namespace[: len(self.namespace_prefix)] != self.namespace_prefix:
            return False
        # one test per field, no tuples built: this runs for every memory a listing reads
        if self.thread_id is not None and self.thread_id != memory.thread_id:
            return False
        if self.agent_id is not None and self.agent_id != memory.agent_id:
            return False
        if self.user_id is not None and self.user_id != memory.user_id:
            return False
        if self.source is not None and self.source != memory.source:
            return False
        if self.tags is not None and not set(self.tags) & set(memory.tags):
            return False
        if self.kinds is not None and memory.kind not in self.kinds:
            return False
        if self.created_after is not None and memory.created_at < self.created_after:
            return False
        if self.created_before is not None and memory.created_at >= self.created_before:
            return False
        if self.metadata:
            metadata = memory.metadata
            for condition in self.metadata:
                if not condition.matches(metadata):
                    return False
        if self.subjects is not None and memory.subject not in self.subjects:
            return False
        if self.current is not None and memory.current != self.current:
            return False
        if self.fact is not None and (memory.subject is not None) != self.fact:
            return False
        return not self.any_of or any(g.matches(memory, now) for g in self.any_of)

    def client_fields(self) -> tuple[str, ...]:
        """The stored fields :meth:`client_predicate` reads from a search row (``()`` when it is None)."""
        groups = bool(self.any_of) and not self._any_of_pushable()
        fact = (F.FACT,) if self.current_on_client else ()
        if groups:
            return (F.METADATA, F.SOURCE, F.TAGS, F.KIND, F.CREATED_AT, *fact)
        return (F.METADATA, *fact) if self.client_conditions else fact

    def client_predicate(self) -> Callable[[Mapping[str, Any]], bool] | None:
        """Predicate on a search row's stored fields for what the index cannot evaluate.

        The row carries :meth:`client_fields`; ``None`` when the index evaluates everything.
        """
        conditions = self.client_conditions
        groups = self.any_of if self.any_of and not self._any_of_pushable() else ()
        current = self.current if self.current_on_client else None
        if not conditions and not groups and current is None:
            return None

        def check(fields: Mapping[str, Any]) -> bool:
            if current is not None:
                state = decode_state(fields.get(F.FACT))
                if (state is None or state.current) != current:
                    return False
            if conditions:
                metadata = decode_metadata(fields.get(F.METADATA))
                if not all(c.matches(metadata) for c in conditions):
                    return False
            if groups:
                row = decode_memory(_ROW_ID, fields, None)  # expiry is checked by the caller
                return any(g.matches(row, -math.inf) for g in groups)
            return True

        return check


_ROW_ID = "0" * 32
_SCOPE_FIELDS = ("namespace", "namespace_prefix", "thread_id", "agent_id", "user_id")


def _parse_any_of(groups: Sequence[Mapping[str, Any] | MemoryFilter] | None) -> tuple[MemoryFilter, ...]:
    if groups is None:
        return ()
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Sequence):
        raise InvalidMemoryError("any_of must be a list of filter groups (mappings of filter arguments)")
    if not groups:
        raise InvalidMemoryError("any_of needs at least one group (an empty OR matches nothing)")
    out: list[MemoryFilter] = []
    for group in groups:
        if isinstance(group, MemoryFilter):
            built = group
        elif isinstance(group, Mapping):
            unknown = set(group) - {"source", "tags", "kinds", "created_after", "created_before", "metadata"}
            if unknown:
                raise InvalidMemoryError(
                    f"any_of groups take source, tags, kinds, created_after, created_before and metadata; "
                    f"not {sorted(map(str, unknown))} (scopes are chosen outside the OR)"
                )
            built = MemoryFilter.build(**group)
        else:
            raise InvalidMemoryError(f"an any_of group must be a mapping of filter arguments, got {group!r}")
        if any(getattr(built, name) is not None for name in _SCOPE_FIELDS) or built.any_of:
            raise InvalidMemoryError("any_of groups cannot set scope fields or nest another any_of")
        if built == MemoryFilter():
            return ()  # a group without conditions matches everything: the OR is always true
        if not built.is_unsatisfiable():  # a group that matches nothing adds nothing to the OR
            out.append(built)
    return tuple(out) or (MemoryFilter(tags=()),)  # every group empty: the OR matches nothing


def _as_seq(values: Sequence[Kind | str]) -> Sequence[Kind | str]:
    if isinstance(values, (str, Kind)):
        return (values,)
    return values


def render_query(leaves: Sequence[Leaf], *, max_leaves: int) -> str:
    """Render AND-ed leaves as the filter part of a KNN query (``*`` when empty).

    Raises:
        QueryTooComplexError: more leaves than the engine's predicate budget allows.
    """
    if not leaves:
        return "*"
    size = sum(leaf_size(leaf) for leaf in leaves)
    if size > max_leaves:
        raise QueryTooComplexError(
            f"this filter needs {size} predicates; the portable FT.SEARCH budget is {max_leaves}. "
            "Combine tag alternatives into one list or drop a condition"
        )
    return "(" + " ".join(leaf.render() for leaf in leaves) + ")"


class FilterArgs(TypedDict, total=False):
    """Keyword filters accepted by ``recall``, ``list``, ``forget_by_scope``, ``stats`` and ``scopes``."""

    namespace: str | Sequence[str] | None
    namespace_prefix: str | Sequence[str] | None
    thread_id: str | None
    agent_id: str | None
    user_id: str | None
    source: str | None
    tags: Sequence[str] | None
    kinds: Sequence[Kind | str] | None
    created_after: float | None
    created_before: float | None
    metadata: Mapping[str, Any] | None
    any_of: Sequence[Mapping[str, Any] | MemoryFilter] | None
    subject: str | Sequence[str] | None
    current: bool | None
    fact: bool | None
    filter: MemoryFilter | None


def recall_filter(args: FilterArgs, history: bool) -> MemoryFilter:
    """The filter of a recall: :func:`to_filter`, current memories only.

    Unless ``history`` or the filter's ``current`` says otherwise (a superseded fact is history). A
    ``current`` the caller gives is pushed into the index (``current=False`` selects the few facts that
    are history).
    """
    flt = to_filter(args)
    if history or flt.current is not None:
        return flt
    # Checked on the client, from a field every candidate row carries: as a leaf it would turn an
    # unfiltered KNN into a filtered one (RediSearch then scans the index), for the few facts that are
    # history; the KNN widens when they leave fewer than k.
    return replace(flt, current=True, current_on_client=True)


def to_filter(args: FilterArgs) -> MemoryFilter:
    """Build a :class:`MemoryFilter` from keyword filters (or pass ``filter=`` a prebuilt one).

    Raises:
        InvalidMemoryError: for invalid values or unknown filter names.
    """
    values = dict(args)
    prebuilt = values.pop("filter", None)
    known = set(FilterArgs.__annotations__) - {"filter"}
    unknown = set(values) - known
    if unknown:
        raise InvalidMemoryError(f"unknown filter arguments: {sorted(unknown)}")
    if prebuilt is not None:
        if values:
            raise InvalidMemoryError("pass either filter= or keyword filters, not both")
        if not isinstance(prebuilt, MemoryFilter):
            raise InvalidMemoryError("filter must be a MemoryFilter")
        return prebuilt
    return MemoryFilter.build(**values)  # type: ignore[arg-type]
