"""The metadata filter language: one meaning pushed down or evaluated in Python (pure tests).

A condition the index evaluates (``pushable``) renders to a TAG predicate over the tokens a write indexes
(``metadata_tokens``); the same condition evaluated in Python must agree with "the memory's tokens satisfy
that predicate" for every value, or recall (pushed down) and list / forget_by_scope (Python) would disagree.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem_core._records import metadata_tokens
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.query import MetadataCondition, parse_metadata_filter

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -2.0]),
    st.sampled_from(["x", "y", "X", "x ", "1", ""]),
)  # fmt: skip
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from("ab"), scalars, max_size=2)
)
metadata = st.dictionaries(st.sampled_from(["k", "j"]), values, max_size=2)
operators = st.sampled_from(["$eq", "$ne", "$in", "$nin", "$exists", "$contains"])


def _operand(op: str, draw: Any) -> Any:
    if op == "$exists":
        return draw(st.booleans())
    if op in ("$in", "$nin"):
        return draw(st.lists(scalars, min_size=1, max_size=3))
    return draw(values)


def _index_says(condition: MetadataCondition, meta: dict[str, Any]) -> bool:
    leaf = condition.leaf()
    hit = bool(metadata_tokens(meta) & set(leaf.tokens))
    return not hit if leaf.negate else hit


@settings(max_examples=400, deadline=None, derandomize=True)
@given(meta=metadata, data=st.data())
def test_pushed_down_conditions_agree_with_python(meta: dict[str, Any], data: st.DataObject) -> None:
    op = data.draw(operators)
    operand = _operand(op, data.draw)
    (condition,) = parse_metadata_filter({"k": {op: operand}})
    if condition.pushable():
        assert _index_says(condition, meta) == condition.matches(meta), (meta, op, operand)


@pytest.mark.parametrize(
    ("flt", "meta", "expected"),
    [
        ({"k": "x"}, {"k": ["x", "y"]}, False),  # $eq compares a list as a whole
        ({"k": {"$contains": "x"}}, {"k": ["x", "y"]}, True),
        ({"k": {"$contains": "x"}}, {"k": "x"}, False),  # membership needs a list
        ({"k": ["x", "y"]}, {"k": ["x", "y"]}, True),
        ({"k": 1}, {"k": 1.0}, True),
        ({"k": 1}, {"k": True}, False),
        ({"k": {"$ne": "x"}}, {}, True),
        ({"k": {"$nin": ["x"]}}, {}, True),
        ({"k": {"$in": ["x"]}}, {}, False),
        ({"k": None}, {}, False),  # a missing key is not a null value
        ({"k": None}, {"k": None}, True),
        ({"k": {"$exists": False}}, {"k": None}, False),
        ({"k": {"$gt": 1}}, {"k": "2"}, False),  # numbers compare with numbers only
        ({"k": {"$gte": 2, "$lte": 2}}, {"k": 2.0}, True),
        ({"k": {"a": 1}}, {"k": {"a": 1.0}}, True),
    ],
)
def test_semantics(flt: dict[str, Any], meta: dict[str, Any], expected: bool) -> None:
    assert all(c.matches(meta) for c in parse_metadata_filter(flt)) is expected


@pytest.mark.parametrize(
    "flt",
    [
        {"k": {"$in": "x"}},
        {"k": {"$exists": "yes"}},
        {"k": {"$gt": None}},
        {"k": {"$lt": [1]}},
        {"k": {"$regex": "x"}},
        {"": 1},
        {"k": {"$in": [object()]}},
    ],  # fmt: skip
)
def test_bad_operands_are_typed_errors(flt: dict[str, Any]) -> None:
    with pytest.raises(InvalidMemoryError):
        parse_metadata_filter(flt)


def test_ranges_on_declared_numeric_keys_are_pushed_down() -> None:
    from agentmem_core.query import MemoryFilter, NumRange, render_query
    from agentmem_core.schema import numeric_field

    flt = MemoryFilter.build(metadata={"n": {"$gt": 5, "$lte": 9.5}, "s": {"$gte": "a"}, "m": {"$lt": 1}})
    assert len(flt.client_conditions) == 4  # nothing declared: every range runs on the client
    bound = flt.with_numeric(["n"])
    pushed = [leaf for leaf in bound.scope_leaves() if isinstance(leaf, NumRange)]
    assert [(p.field, p.lo, p.lo_exclusive, p.hi, p.hi_exclusive) for p in pushed] == [
        (numeric_field("n"), 5.0, True, None, False),
        (numeric_field("n"), None, False, 9.5, False),
    ]
    assert {(c.key, c.op) for c in bound.client_conditions} == {("s", "$gte"), ("m", "$lt")}
    assert f"@{numeric_field('n')}:[(5 +inf]" in render_query(bound.scope_leaves(), max_leaves=64)
    # a string operand on a declared key is no numeric range: it stays on the client
    (text,) = MemoryFilter.build(metadata={"n": {"$gte": "5"}}).with_numeric(["n"]).client_conditions
    assert text.value == "5"


def test_the_string_fast_path_of_equality_agrees_with_canonical_json() -> None:
    import itertools

    from agentmem_core._conditions import _canon, _same

    values = ["a", "1", 1, 1.0, True, False, 0, None, [1], ["a"], {"a": 1}, "é", '"a"', "null", "true", ""]
    for a, b in itertools.product(values, values):
        assert _same(a, b) == (_canon(a) == _canon(b)), (a, b)
