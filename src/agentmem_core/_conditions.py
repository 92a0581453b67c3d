"""The metadata condition language and the FT leaves it renders to (pure).

One meaning everywhere (see :class:`MetadataCondition`): recall pushes what the index can evaluate into
the query through the leaves here, and every path evaluates the rest with :meth:`MetadataCondition.matches`.
:mod:`agentmem_core.query` builds whole filters (scopes, tags, kinds, time, OR groups) on top of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentmem_core._encoding import member_token, metadata_token, normalise_scalar, presence_token
from agentmem_core._records import check_text
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.schema import F, format_number, lookup, numeric_field

__all__ = [
    "AnyOf",
    "Leaf",
    "MetadataCondition",
    "NumRange",
    "TagIn",
    "leaf_size",
    "parse_metadata_filter",
]

MetaOp = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains"]
_OPS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains")
_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


@dataclass(frozen=True)
class TagIn:
    """``@field:{t1|t2|…}`` (any of the encoded tokens), or its negation."""

    field: str
    tokens: tuple[str, ...]
    negate: bool = False

    def render(self) -> str:
        """FT syntax."""
        return f"{'-' if self.negate else ''}@{self.field}:{{{'|'.join(self.tokens)}}}"


@dataclass(frozen=True)
class NumRange:
    """``@field:[lo hi]`` with optional exclusive bounds (``None`` is unbounded)."""

    field: str
    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False
    hi_exclusive: bool = False

    def render(self) -> str:
        """FT syntax (fixed-point numbers only)."""
        lo = "-inf" if self.lo is None else ("(" if self.lo_exclusive else "") + format_number(self.lo)
        hi = "+inf" if self.hi is None else ("(" if self.hi_exclusive else "") + format_number(self.hi)
        return f"@{self.field}:[{lo} {hi}]"

    def is_empty(self) -> bool:
        """Whether no value can match (valkey-search errors on empty ranges, so we never send one)."""
        if self.lo is None or self.hi is None:
            return False
        if self.lo > self.hi:
            return True
        return self.lo == self.hi and (self.lo_exclusive or self.hi_exclusive)


@dataclass(frozen=True)
class AnyOf:
    """``((g1) | (g2) | …)``: an OR of AND-groups of leaves (every group non-empty)."""

    groups: tuple[tuple[Leaf, ...], ...]

    def render(self) -> str:
        """FT syntax (AND binds tighter than OR; the parentheses make the grouping explicit anyway)."""
        return "(" + " | ".join("(" + " ".join(leaf.render() for leaf in g) + ")" for g in self.groups) + ")"

    @property
    def size(self) -> int:
        """Predicates it spends of the engine's budget (each leaf, plus one per OR join)."""
        return sum(leaf_size(leaf) for g in self.groups for leaf in g) + len(self.groups) - 1


Leaf = TagIn | NumRange | AnyOf


def leaf_size(leaf: Leaf) -> int:
    """Predicates a leaf spends of the engine's budget."""
    return leaf.size if isinstance(leaf, AnyOf) else 1


def _canon(value: Any) -> str:
    """The one equality every path uses: canonical JSON with integral floats as ints.

    So ``1 == 1.0`` and ``True != 1``; lists compare element by element in order, objects by keys and values.
    """
    return json.dumps(_normalised(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    """``_canon(a) == _canon(b)``, without serialising the common case of a string on either side."""
    if isinstance(a, str) or isinstance(b, str):  # a string's JSON equals only the same string's
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _canon(a) == _canon(b)


def _normalised(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalised(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class MetadataCondition:
    """One condition on a top-level metadata key.

    Semantics (identical in recall, list, stats-free counts and forget_by_scope, pushed down or not):

    * ``$eq`` / ``$ne``: whole-value equality (a list equals only the same list; ``1 == 1.0``;
      ``True != 1``). ``$ne`` also matches memories without the key.
    * ``$in`` / ``$nin``: equal to one of / none of the given values (``$nin`` matches a missing key).
    * ``$exists``: the key is present (``True``) or absent (``False``).
    * ``$contains``: the value is a list holding an element equal to the given value.
    * ``$gt $gte $lt $lte``: numbers with numbers, strings with strings; a missing key never matches.
    """

    key: str
    op: MetaOp
    value: Any

    def pushable(self, numeric: frozenset[str] = frozenset()) -> bool:
        """Whether the index evaluates it exactly.

        Equality, membership and presence go through the tokens every write indexes; a range on a
        declared numeric key (``numeric``) through that key's NUMERIC mirror.
        """
        if self.op in _RANGE_OPS:
            return self.key in numeric and not isinstance(self.value, (bool, str))
        if "." in self.key:  # a nested path: the indexed tokens are of top-level keys only
            return False
        if self.op in ("$eq", "$ne", "$contains"):
            return _is_scalar(self.value)
        if self.op in ("$in", "$nin"):
            return bool(self.value) and all(_is_scalar(v) for v in self.value)
        return self.op == "$exists"

    def leaf(self) -> TagIn | NumRange:
        """The FT leaf for a pushable condition."""
        if self.op in _RANGE_OPS:
            bound = float(self.value)
            if self.op in ("$gt", "$gte"):
                return NumRange(numeric_field(self.key), lo=bound, lo_exclusive=self.op == "$gt")
            return NumRange(numeric_field(self.key), hi=bound, hi_exclusive=self.op == "$lt")
        if self.op == "$exists":
            return TagIn(F.X_META, (presence_token(self.key),), negate=not self.value)
        if self.op == "$contains":
            return TagIn(F.X_META, (member_token(self.key, self.value),))
        values = self.value if self.op in ("$in", "$nin") else (self.value,)
        tokens = tuple(dict.fromkeys(metadata_token(self.key, v) for v in values))
        return TagIn(F.X_META, tokens, negate=self.op in ("$ne", "$nin"))

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """The exact Python predicate (the semantics in the class docstring)."""
        present, actual = lookup(metadata, self.key)
        op = self.op
        if op == "$exists":
            return present == bool(self.value)
        if op in ("$eq", "$ne"):
            equal = present and _same(actual, self.value)
            return equal if op == "$eq" else not equal
        if op in ("$in", "$nin"):
            found = present and _canon(actual) in {_canon(v) for v in self.value}
            return found if op == "$in" else not found
        if op == "$contains":
            return isinstance(actual, list) and _canon(self.value) in {_canon(x) for x in actual}
        if not present or not _comparable(actual, self.value):
            return False
        if op == "$gt":
            return bool(actual > self.value)
        if op == "$gte":
            return bool(actual >= self.value)
        if op == "$lt":
            return bool(actual < self.value)
        return bool(actual <= self.value)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _comparable(a: object, b: object) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numeric) and isinstance(b, numeric)) or (isinstance(a, str) and isinstance(b, str))


def parse_metadata_filter(raw: Mapping[str, Any] | None) -> tuple[MetadataCondition, ...]:
    """Parse ``{"key": value | {"$op": value, …}}`` (a plain value means ``$eq``).

    Raises:
        InvalidMemoryError: for unknown operators, operands of the wrong type, non-string keys or
            non-finite numbers.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise InvalidMemoryError(f"metadata filter must be a mapping, got {type(raw).__name__}")
    conditions: list[MetadataCondition] = []
    for key, spec in raw.items():
        if not isinstance(key, str) or not key:
            raise InvalidMemoryError(f"metadata filter keys must be non-empty strings, got {key!r}")
        check_text("metadata filter key", key)
        if isinstance(spec, Mapping) and spec and all(isinstance(k, str) and k.startswith("$") for k in spec):
            for op, value in spec.items():
                conditions.append(_condition(key, op, value))
        else:
            conditions.append(MetadataCondition(key, "$eq", _check_value(spec)))
    return tuple(conditions)


def _condition(key: str, op: str, value: Any) -> MetadataCondition:
    if op not in _OPS:
        raise InvalidMemoryError(f"unknown filter operator {op!r}; use one of {', '.join(_OPS)}")
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidMemoryError(f"$exists takes true or false, got {value!r}")
        return MetadataCondition(key, "$exists", value)
    if op in ("$in", "$nin"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise InvalidMemoryError(f"{op} takes a list of values, got {value!r}")
        return MetadataCondition(key, op, tuple(_check_value(v) for v in value))  # type: ignore[arg-type]
    if op in _RANGE_OPS and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise InvalidMemoryError(f"{op} compares with a number or a string, got {value!r}")
    return MetadataCondition(key, op, _check_value(value))  # type: ignore[arg-type]


def _check_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMemoryError("filter values must be finite")
    if isinstance(value, list | tuple):
        return [_check_value(v) for v in value]
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise InvalidMemoryError(f"filter object keys must be strings, got {k!r}")
        return {k: _check_value(v) for k, v in value.items()}
    if not _is_scalar(value):
        raise InvalidMemoryError(f"filter values must be JSON values, got {type(value).__name__}")
    if isinstance(value, str):
        check_text("metadata filter value", value)
    return normalise_scalar(value)
