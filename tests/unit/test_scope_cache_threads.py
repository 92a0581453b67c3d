"""The scope cache is shared by a store's threads: a full cache under concurrent use never raises.

A lookup moves its entry to the end of the LRU order; without one lock around both, another thread's
eviction between the lookup and the move made ``get`` / ``put`` / ``guess`` raise ``KeyError`` out of a
recall or a write (a store with more scopes than the cache holds, used from several threads).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from agentmem_core._context import ScopeCache
from agentmem_core._encoding import ScopeKey


@pytest.fixture
def preemptive() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a second
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_a_full_cache_used_by_threads_never_raises(preemptive: None) -> None:
    cache = ScopeCache(size=2)
    scopes = [ScopeKey(user_id=f"u{i}") for i in range(4)]
    selections = [("selection", i) for i in range(4)]
    errors: list[Exception] = []

    def work(n: int) -> None:
        try:
            for j in range(60_000):
                scope = scopes[(j + n) % 4]
                cache.put(scope)
                cache.get(scope.tag)
                cache.matched(selections[(j + n) % 4], [scope])
                cache.guess(selections[(j + n + 1) % 4])
                cache.seed(selections[(j + n + 2) % 4], scope)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache._scopes) <= 2 and len(cache._selections) <= 2  # still bounded
