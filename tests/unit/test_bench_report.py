"""Unit tests of the benchmark report (benchmarks/_report.py): the headline table and the splicing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _report as report  # noqa: E402


def _core_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def add(system: str, op: str, p50: float, parser: str = "libvalkey") -> None:
        rows.append({"size": 10000, "system": system, "op": op, "parser": parser, "p50": p50})

    add("floor (async)", "FT.SEARCH KNN-10 + tag filter (recall floor)", 1.0)
    add("agentmem (async)", "recall_by_vector k=10, reinforce on", 2.0)
    add("betterdb 0.7.0", "recall_by_vector k=10, reinforce on", 50.0)
    add("agentmem", "recall_by_vector k=10, reinforce on", 1.6)
    add("agentmem", "recall_by_vector k=10, reinforce on", 9.9, parser="python")  # not the headline's parser
    add("floor", "FT.SEARCH KNN-10 + tag filter (recall floor)", 0.8)
    add("agentmem", report.TEXT_RECALL, 2.4)
    add("floor", "HSET (1 memory, indexed)", 2.0)
    add("agentmem", "remember (1 memory)", 3.0)
    add("betterdb 0.7.0", "remember (1 memory)", 3.3)
    return rows


def test_headline_puts_floor_and_peer_ratios_next_to_each_operation() -> None:
    table = report.headline({"core": {"rows": _core_rows()}})
    lines = {line.split(" | ")[1]: line for line in table.splitlines()[2:]}
    assert lines["recall_by_vector, k=10, reinforced (10k, async)"].endswith(
        "| 2.00 ms | 1.00 ms (one FT.SEARCH KNN-10) | 2.00x | betterdb-agent-memory 50.00 ms (25.00x) |"
    )
    # a floor row this run did not measure is a dash, never a guess
    assert lines["recall_by_vector, k=10, reinforced (10k)"].endswith("| 1.60 ms | – | – | – |")
    text = lines["recall(text), hybrid KNN + BM25, k=10 (10k)"]
    assert "| 2.40 ms | 0.80 ms (one FT.SEARCH KNN-10) | 3.00x |" in text
    assert lines["remember, 1 memory (10k)"].endswith("| 1.50x | betterdb-agent-memory 3.30 ms (1.10x) |")


def test_headline_reads_every_suites_json() -> None:
    results = {
        "store": {"rows": [
            {"size": 10000, "system": "ValkeyMemoryStore", "op": "search (prefix, query)", "p50": 1.2},
            {"size": 10000, "system": "floor", "op": "FT.SEARCH KNN-10, agentmem's filter (prefix)",
             "p50": 1.0},
            {"size": 10000, "system": "AWS ValkeyStore", "op": "search (prefix, query)", "p50": 3.6},
        ]},
        "checkpoint": {"turns": {
            "agentmem ValkeySaver": {"overhead_ms": 2.2},
            "aws ValkeySaver": {"overhead_ms": 2.0},
            "floor: InMemorySaver + 1 PING per call": {"overhead_ms": 1.1},
        }},
        "crewai": {"rows": {"10000": {
            "ValkeyStorage (Valkey, FLAT)": {"save_batch_10": {"p50": 2.5}, "search": {"p50": 1.0},
                                             "save_floor_10": {"p50": 0.5}},
            "LanceDBStorage (local disk)": {"save_batch_10": {"p50": 3.0}, "search": {"p50": 6.0}},
        }}},
        "llamaindex": {"results": {"valkey": {"get 50 again": {"p50_ms": 2.0}},
                                   "sqlite file": {"get 50 again": {"p50_ms": 1.8}},
                                   "sqlite memory": {"get 50 again": {"p50_ms": 1.6}}}},
    }  # fmt: skip
    table = report.headline(results)
    peers = "langgraph-checkpoint-aws 3.60 ms (3.00x); InMemoryStore – (–)"  # the second did not run
    assert "| search, limit 10, ranking=similarity (10k) | 1.20 ms | 1.00 ms (one FT.SEARCH KNN-10, same " \
           f"filter) | 1.20x | {peers} |" in table  # fmt: skip
    assert "composite" not in table  # a row the run did not measure is left out
    assert "| per-turn overhead, 2-node graph (sync) | 2.20 ms | 1.10 ms (InMemorySaver + 1 PING per call) " \
           "| 2.00x | langgraph-checkpoint-aws 2.00 ms (0.91x) |" in table  # fmt: skip
    assert "| save, batches of 10 (Valkey, FLAT, 10k) | 2.50 ms | 0.50 ms (10 indexed HSETs) | 5.00x " \
           "| LanceDBStorage 3.00 ms (1.20x) |" in table  # fmt: skip
    assert "| search (Valkey, FLAT, 10k) | 1.00 ms | – | – | LanceDBStorage 6.00 ms (6.00x) |" in table
    assert "| get 50 again (50-message session) | 2.00 ms | – | – | SQLAlchemyChatStore, SQLite :memory: " \
           "1.60 ms (0.80x); SQLAlchemyChatStore, SQLite file 1.80 ms (0.90x) |" in table  # fmt: skip
    assert "async" not in table  # rows of a run that did not measure them are left out
    assert report.headline({}).count("\n") == 1  # nothing run: the header only


def test_splice_replaces_only_its_block_and_is_idempotent() -> None:
    begin, end = report.markers("speed")
    text = f"intro\n{begin}\nold table\n{end}\noutro\n"
    once = report.splice(text, "speed", "| new |\n")
    assert once == f"intro\n{begin}\n| new |\n{end}\noutro\n"
    assert report.splice(once, "speed", "| new |") == once
    with pytest.raises(ValueError, match="exactly one"):
        report.splice(text, "latest", "x")  # another block's markers are not this one's
    with pytest.raises(ValueError, match="exactly one"):
        report.splice(text + begin, "speed", "x")


def test_both_readmes_hold_their_generated_block_and_every_suite_exists() -> None:
    for path, block in ((ROOT / "README.md", "speed"), (ROOT / "benchmarks" / "README.md", "latest")):
        report.splice(path.read_text(), block, "x")  # raises when the markers are gone
    for s in report.SUITES:
        assert (ROOT / "benchmarks" / s.script).exists()
        assert report.suite(s.name) is s
    with pytest.raises(KeyError, match="no benchmark suite"):
        report.suite("nope")


def test_demote_moves_a_reports_headings_below_the_suites_heading() -> None:
    assert report.demote("# bench\n\n### N = 10,000\nrow # not a heading", 2) == (
        "### bench\n\n##### N = 10,000\nrow # not a heading"
    )
