"""FT.INFO readiness, parsed defensively for both engines (valkey-search-compat.md section 3, item 16)."""

from __future__ import annotations

import pytest

from agentmem_core._parse import index_health


def test_redisearch_ready_and_backfilling() -> None:
    # RediSearch 2.10: integers for num_docs / indexing / failures, percent_indexed a string
    ready = [b"index_name", b"i", b"num_docs", 3, b"indexing", 0, b"percent_indexed", b"1",
             b"hash_indexing_failures", 0, b"attributes", [[b"identifier", b"tags"]]]  # fmt: skip
    assert index_health(ready) == (True, 3, 0)
    backfilling = [b"num_docs", 120, b"indexing", 1, b"percent_indexed", b"0.4", b"hash_indexing_failures", 2]
    assert index_health(backfilling) == (False, 120, 2)
    # indexing already 0 but the percentage not yet 1: still not ready
    assert index_health([b"num_docs", 1, b"indexing", 0, b"percent_indexed", b"0.99"])[0] is False


@pytest.mark.parametrize(
    ("state", "backfill", "ready"),
    [
        (b"ready", b"0", True),
        (b"backfill_in_progress", b"1", False),
        (b"backfill_paused_by_oom", b"1", False),
    ],
)
def test_valkey_search_states(state: bytes, backfill: bytes, ready: bool) -> None:
    # valkey-search 1.0: strings for the counts, backfill_in_progress and state instead of indexing
    reply = [b"num_docs", b"12", b"num_records", b"12", b"hash_indexing_failures", b"1",
             b"backfill_in_progress", backfill, b"backfill_complete_percent", b"100.000000",
             b"state", state]  # fmt: skip
    assert index_health(reply) == (ready, 12, 1)


def test_an_engine_that_reports_nothing_is_taken_as_ready_with_unknown_counts() -> None:
    assert index_health([b"index_name", b"i"]) == (True, None, 0)
