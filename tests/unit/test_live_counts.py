"""Pure tests of the live counts (agentmem_core._counts): all matches minus the expired ones."""

from __future__ import annotations

import pytest

from agentmem_core._conditions import NumRange, TagIn
from agentmem_core._counts import live_count, live_count_ops
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
