"""A short run of benchmarks/load_bench.py: concurrent agents, no errors, memory bounded by capacity/TTL.

Correctness only (no speed is asserted here): the figures of a full run are in the README's Reliability
section, with the command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import load_bench  # noqa: E402

pytestmark = pytest.mark.integration


def test_concurrent_agents_see_no_error_and_stay_within_capacity(valkey_url: str) -> None:
    report = load_bench.run(
        valkey_url, threads=4, tasks=4, seconds=4.0, max_ops=4000, scopes=20, capacity=8, ttl=1.0,
        log=lambda _text: None,
    )  # fmt: skip
    assert report["errors"] == 0, report["first_errors"]
    assert report["ops"] > 100  # the agents ran
    assert 0 < report["held"] <= report["bound"] and report["largest_scope"] <= 8
    assert report["working_left_after_ttl"] == 0
