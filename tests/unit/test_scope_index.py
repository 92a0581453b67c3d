"""The scope index's member encoding (pure): order, prefix ranges on label boundaries, round trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem_core._encoding import ScopeKey
from agentmem_core._scope_index import (
    decode_namespace_member,
    dimension_range,
    matches_pattern,
    namespace_range,
    scope_members,
    skip_past,
)

alphabet = st.sampled_from(["a", "b", ".", "\x00", "\x01", "\x02", "/", "é", "\U0001f600"])
labels = st.text(alphabet=alphabet, min_size=1, max_size=3)
namespaces = st.lists(labels, max_size=3).map(tuple)


def _member(namespace: tuple[str, ...]) -> bytes:
    return scope_members(ScopeKey(namespace))[0]


def _in(member: bytes, bounds: tuple[bytes, bytes]) -> bool:
    start, end = bounds
    lo_ok = member >= start[1:] if start[:1] == b"[" else member > start[1:]
    hi_ok = member < end[1:] if end[:1] == b"(" else member <= end[1:]
    return lo_ok and hi_ok


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(namespaces, min_size=2, max_size=8, unique=True))
def test_members_sort_like_label_tuples(values: list[tuple[str, ...]]) -> None:
    by_member = sorted(values, key=_member)
    assert by_member == sorted(values)  # code-point order of labels, a parent before its children
    for namespace in values:
        assert decode_namespace_member(_member(namespace)) == (namespace, ScopeKey(namespace).tag)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(namespaces, namespaces)
def test_prefix_ranges_stop_on_label_boundaries(namespace: tuple[str, ...], prefix: tuple[str, ...]) -> None:
    member = _member(namespace)
    assert _in(member, namespace_range(prefix)) == (namespace[: len(prefix)] == prefix)
    if len(namespace) >= len(prefix) > 0 and namespace[: len(prefix)] == prefix:
        assert member < skip_past(prefix)[1:]  # the jump lands after every namespace below the prefix


def test_look_alikes_never_meet() -> None:
    assert not _in(_member(("a", "bc")), namespace_range(("a", "b")))
    assert not _in(_member(("a.b",)), namespace_range(("a", "b")))
    assert not _in(_member(("a", "b")), namespace_range(("a.b",)))
    assert not _in(_member(("a\x00b",)), namespace_range(("a", "b")))
    user = scope_members(ScopeKey(user_id="alice\n"))[1]
    assert not _in(user, dimension_range("user_id", "alice"))
    assert _in(user, dimension_range("user_id", "alice\n"))


def test_wildcard_patterns() -> None:
    assert matches_pattern(("users", "ana", "prefs"), ("users", "*"))
    assert matches_pattern(("users", "ana", "prefs"), ("*", "prefs"), suffix=True)
    assert not matches_pattern(("users",), ("users", "*"))
    assert not matches_pattern(("a", "b"), ("a", "c"))
