"""Pure tests of the live counts (agentmem_core._counts): all matches minus the expired ones."""

from __future__ import annotations

import pytest

from agentmem_core._conditions import NumRange, TagIn
from agentmem_core._counts import EXPIRED_LISTING, TermCounts, live_count, live_count_ops
from agentmem_core.errors import BackendError
from agentmem_core.ops import FilterSearch
from agentmem_core.schema import F

USER = TagIn(F.X_USER, ("ana",))


def test_a_filter_is_counted_whole_and_its_expired_matches_subtracted() -> None:
    total, expired = live_count_ops([USER], 100.0)
    assert total == FilterSearch((USER,), 0)  # no numeric range over every live document
    assert expired == FilterSearch((NumRange(F.X_EXPIRES_AT, hi=100.0), USER), 0)  # expires_at <= now
    assert live_count([(7, []), (2, [])]) == 5


@pytest.mark.parametrize("leaves", [[], [TagIn(F.X_META, ("superseded",), negate=True)]])
def test_no_positive_leaf_keeps_the_expiry_leaf_in_one_count(leaves: list[TagIn]) -> None:
    (only,) = live_count_ops(leaves, 100.0)
    assert only.leaves == (NumRange(F.X_EXPIRES_AT, lo=100.0, lo_exclusive=True), *leaves)
    assert live_count([(4, [])]) == 4


def test_an_error_reply_raises() -> None:
    with pytest.raises(BackendError):
        live_count([(3, []), BackendError("boom")])


def test_term_counts_are_one_count_per_term_and_one_listing_of_the_expired() -> None:
    plan = TermCounts((USER,), ("kiwi", "fig"), 100.0)
    *counts, listing = plan.ops()
    assert counts == [
        FilterSearch((USER, TagIn(F.X_TERMS, ("kiwi",))), 0),
        FilterSearch((USER, TagIn(F.X_TERMS, ("fig",))), 0),
    ]
    # from 0: a child vector document's x_expires_at is below it, and it holds no terms
    assert listing == FilterSearch(
        (NumRange(F.X_EXPIRES_AT, lo=0.0, hi=100.0), USER), EXPIRED_LISTING, (F.X_TERMS,)
    )
    expired = (2, [("a", {F.X_TERMS: b"kiwi|fig"}), ("b", {F.X_TERMS: "kiwi"})])
    assert plan.read([(9, []), (4, []), expired]) == {"kiwi": 7, "fig": 3}
    assert TermCounts((USER,), (), 100.0).ops() == [] and TermCounts((USER,), (), 1.0).read([]) == {}


def test_an_incomplete_listing_sends_the_per_term_expired_counts() -> None:
    plan = TermCounts((USER,), ("kiwi", "fig"), 100.0)
    cut = (3, [("a", {F.X_TERMS: "kiwi"})])  # one row of three: cut short, or rows reclaimed meanwhile
    assert plan.read([(9, []), (4, []), cut]) is None
    assert plan.fallback_ops() == [
        FilterSearch((NumRange(F.X_EXPIRES_AT, hi=100.0), USER, TagIn(F.X_TERMS, ("kiwi",))), 0),
        FilterSearch((NumRange(F.X_EXPIRES_AT, hi=100.0), USER, TagIn(F.X_TERMS, ("fig",))), 0),
    ]
    assert plan.read_fallback([(9, []), (4, []), cut], [(2, []), (0, [])]) == {"kiwi": 7, "fig": 4}
