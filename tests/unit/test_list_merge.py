"""Listing over several scopes: which listed memories are read whole (``_flows_list``)."""

from __future__ import annotations

from agentmem_core._flows_list import _first_written, _merged


def test_only_the_first_fetch_across_scopes_are_read_and_the_cut_is_where_they_stop() -> None:
    a = [("a3", 30.0), ("a2", 20.0), ("a1", 10.0)]
    b = [("b3", 25.0), ("b2", 15.0), ("b1", 5.0)]
    c = [("c1", 28.0)]
    assert _merged([a, b, c], 3, newest=True) == (["a3", "c1", "b3"], 25.0, [])
    assert _merged([a, b, c], 3, newest=False) == (["b1", "a1", "b2"], 15.0, [])


def test_memories_tied_at_the_cut_are_read_together() -> None:
    a = [("a2", 20.0), ("a1", 10.0)]
    b = [("b2", 20.0), ("b1", 20.0)]
    ids, cut, tied = _merged([a, b], 2, newest=True)
    assert sorted(ids) == ["a2", "b1", "b2"] and cut == 20.0 and tied == []
    ids, cut, tied = _merged([[("x", 1.0), ("y", 1.0)], [("z", 1.0)]], 2, newest=True)
    assert sorted(ids) == ["x", "y", "z"] and cut is None  # nothing listed was left out


def test_many_tied_at_the_cut_are_left_to_their_write_order() -> None:
    a = [("a9", 9.0)] + [(f"a{i}", 5.0) for i in range(4)]
    b = [(f"b{i}", 5.0) for i in range(4)] + [("b0x", 1.0)]
    ids, cut, tied = _merged([a, b], 2, newest=True)
    assert (
        ids == ["a9"]
        and cut == 5.0
        and sorted(tied) == sorted([f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)])
    )


def test_the_first_written_of_a_tie_come_first_by_sequence_then_by_the_callers_id() -> None:
    tied = ["m1", "m2", "m3", "m4", "gone"]
    opts = [(["2|||"], None), (["1|||"], None), (["2|||caller-a"], None), (["3|||"], None), (None, None)]
    # keys: m1 (2, m1), m2 (1, m2), m3 (2, caller-a), m4 (3, m4)
    assert _first_written(tied, opts, 2, newest=False, created=5.0, position=None) == ["m2", "m3"]
    assert _first_written(tied, opts, 3, newest=True, created=5.0, position=None) == ["m4", "m1", "m3"]
    # a cursor at this instant: only what lies past it
    assert _first_written(tied, opts, 9, newest=True, created=5.0, position=(5.0, 2, "caller-a")) == ["m2"]
    assert _first_written(tied, opts, 1, newest=True, created=5.0, position=(6.0, 0, "x")) == ["m4"]


def test_no_cut_when_every_listed_memory_is_read() -> None:
    assert _merged([[("a", 2.0)], [("b", 1.0)]], 5, newest=True) == (["a", "b"], None, [])
    assert _merged([[], []], 5, newest=False) == ([], None, [])
