"""Unit tests of the benchmarks' timing order (benchmarks/_order.py): every series meets each query cold."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _order import staggered  # noqa: E402


def test_each_series_times_every_argument_once() -> None:
    args = list(range(300))
    steps = list(staggered(args, 7))
    assert len(steps) == len(args)
    assert all(sorted(n for n, _ in step) == list(range(7)) for step in steps)
    for s in range(7):
        assert sorted(a for step in steps for n, a in step if n == s) == args


def test_no_two_series_time_one_argument_in_a_step_or_soon_after_each_other() -> None:
    args = list(range(300))
    steps = list(staggered(args, 6))
    assert all(len({a for _, a in step}) == 6 for step in steps)
    last: dict[int, int] = {}
    gaps = []
    for n, step in enumerate(steps):
        for _, a in step:
            if a in last:
                gaps.append(n - last[a])
            last[a] = n
    assert min(gaps) >= len(args) // 6  # a query comes back only after a stride of others


def test_every_series_is_first_and_follows_each_other_about_equally_often() -> None:
    steps = list(staggered(list(range(3000)), 4, seed=3))
    first = Counter(step[0][0] for step in steps)
    assert all(600 <= first[s] <= 900 for s in range(4))
    after = Counter((a[0], b[0]) for step in steps for a, b in zip(step, step[1:]))
    assert all(after[(x, y)] > 500 for x in range(4) for y in range(4) if x != y)
    assert list(staggered(list(range(50)), 4, seed=3)) == list(staggered(list(range(50)), 4, seed=3))


def test_more_series_than_arguments_still_covers_them() -> None:
    steps = list(staggered(["a", "b"], 3))
    assert [Counter(a for step in steps for n, a in step if n == s) for s in range(3)] == [Counter("ab")] * 3
    assert list(staggered([], 3)) == [] and list(staggered([1], 0)) == []
