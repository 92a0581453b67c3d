"""Fact reconciliation as pure functions: supersession, ties, tombstones, idempotence (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem_core.errors import InvalidMemoryError
from agentmem_core.facts import (
    FACT_TOKEN,
    SUPERSEDED_TOKEN,
    FactState,
    Version,
    changed,
    decode_state,
    encode_state,
    fact_tokens,
    normalise_subject,
    plan_history,
    subject_token,
)

S = "home_city"


def v(memory_id: str, when: float, seq: int = 0, state: FactState | None = None) -> Version:
    return Version(memory_id, when, seq, state or FactState(S))


def apply(versions: list[Version], states: dict[str, FactState]) -> list[Version]:
    return [Version(x.id, x.valid_from, x.sequence, states[x.id]) for x in versions]


def test_newer_statement_supersedes_the_older() -> None:
    states, unmatched = plan_history([v("a", 100), v("b", 200)])
    assert states["a"] == FactState(S, 200, "b")
    assert states["b"] == FactState(S)
    assert unmatched == []


def test_an_older_statement_written_later_enters_the_history_not_the_present() -> None:
    states, _ = plan_history([v("new", 200, seq=1), v("old", 100, seq=2)])
    assert states["old"] == FactState(S, 200, "new")
    assert states["new"].current


def test_backfill_between_two_versions_relinks_the_chain() -> None:
    a, c = v("a", 100, 1, FactState(S, 300, "c")), v("c", 300, 2)
    states, _ = plan_history([a, c, v("b", 200, 3)])
    assert states == {"a": FactState(S, 200, "b"), "b": FactState(S, 300, "c"), "c": FactState(S)}


def test_same_date_tie_the_later_write_wins() -> None:
    states, _ = plan_history([v("second", 100, seq=7), v("first", 100, seq=3)])
    assert states["first"] == FactState(S, 100, "second")
    assert states["second"].current


def test_tombstone_retracts_what_holds_at_its_time() -> None:
    states, unmatched = plan_history([v("a", 100), v("b", 200)], retractions=[250])
    assert states["b"] == FactState(S, 250, None)
    assert states["a"] == FactState(S, 200, "b")
    assert unmatched == []
    assert not any(s.current for s in states.values())


def test_a_stale_tombstone_ends_the_version_of_its_time_only() -> None:
    states, unmatched = plan_history([v("a", 100), v("b", 200)], retractions=[150])
    assert states["a"] == FactState(S, 150, None)  # retracted before b was stated
    assert states["b"].current
    assert unmatched == []


def test_unmatched_tombstones_are_reported() -> None:
    assert plan_history([], retractions=[10]) == ({}, [10])
    states, unmatched = plan_history([v("a", 100)], retractions=[50, 150, 160])
    assert unmatched == [50, 160]  # before anything held, and after the retraction at 150
    assert states["a"] == FactState(S, 150, None)


def test_a_version_stated_after_a_retraction_is_current() -> None:
    states, _ = plan_history([v("a", 100, state=FactState(S, 150, None)), v("b", 200)])
    assert states["a"] == FactState(S, 150, None)
    assert states["b"].current


def test_a_stored_retraction_moves_to_a_version_stated_before_it() -> None:
    retracted = v("a", 100, 1, FactState(S, 300, None))
    states, _ = plan_history([retracted, v("b", 200, 2)])
    assert states["a"] == FactState(S, 200, "b")
    assert states["b"] == FactState(S, 300, None)


def test_a_restated_retraction_changes_nothing() -> None:
    versions = [v("a", 100, state=FactState(S, 150, None))]
    states, unmatched = plan_history(versions, retractions=[150])
    assert unmatched == [] and changed(versions, states) == []


def test_changed_lists_only_what_differs() -> None:
    versions = [v("a", 100, state=FactState(S, 200, "b")), v("b", 200)]
    states, _ = plan_history(versions)
    assert changed(versions, states) == []
    states, _ = plan_history([*versions, v("c", 300)])
    assert changed([*versions, v("c", 300)], states) == [("b", FactState(S, 300, "c"))]


versions_st = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 5)), min_size=0, max_size=8, unique_by=lambda t: t
).map(lambda pairs: [v(f"m{i}", float(t), seq) for i, (t, seq) in enumerate(pairs)])


@settings(max_examples=200, deadline=None)
@given(versions_st, st.lists(st.integers(0, 25).map(float), max_size=4))
def test_plan_is_idempotent_and_leaves_at_most_one_current(
    versions: list[Version], rets: list[float]
) -> None:
    states, _ = plan_history(versions, rets)
    assert sum(1 for s in states.values() if s.current) <= 1
    after = apply(versions, states)
    again, unmatched = plan_history(after)
    assert again == states
    assert unmatched == []
    again, _ = plan_history(after, rets)  # the same retractions restated: nothing changes
    assert changed(after, again) == []
    if versions and not rets:
        latest = max(versions, key=lambda x: (x.valid_from, x.sequence, x.id))
        assert states[latest.id].current
    for memory_id, state in states.items():  # a successor is stated at the end of what it supersedes
        if state.superseded_by is not None:
            successor = next(x for x in versions if x.id == state.superseded_by)
            assert state.valid_until == successor.valid_from
            assert successor.id != memory_id


def test_subjects_fold_case_space_and_separators() -> None:
    assert (
        normalise_subject(" Home city ") == normalise_subject("home_city") == normalise_subject("HOME-CITY")
    )
    assert normalise_subject("home_city") == "home_city"
    for bad in ("", "   ", "__", "a\nb", 3, None, "x" * 200):
        with pytest.raises(InvalidMemoryError):
            normalise_subject(bad)


def test_state_round_trip_and_tokens() -> None:
    for state in (FactState(S), FactState(S, 12.5, "b" * 32), FactState(S, 7.0, None)):
        assert decode_state(encode_state(state)) == state
        assert decode_state(encode_state(state).encode()) == state
    assert decode_state(None) is None and decode_state("") is None
    assert fact_tokens(FactState(S)) == (FACT_TOKEN, subject_token(S))
    assert SUPERSEDED_TOKEN in fact_tokens(FactState(S, 1.0, None))
    # a fact's tokens cannot collide with metadata tokens (hashed: "_" + hex)
    assert all(t[0] == "f" and t.isalnum() for t in fact_tokens(FactState(S, 1.0, "x")))
    assert subject_token("a") != subject_token("b")
