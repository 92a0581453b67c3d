"""The benchmark report: which suites ``run_all.py`` runs, and the tables it writes from their JSON.

Pure (no I/O but what the caller passes in), so the unit tests check the tables and the splicing.

Each suite writes its full report (stdout, markdown) and its rows (``--json``); ``run_all.py`` keeps both
under ``benchmarks/results/latest/``. From the JSON, :func:`headline` builds one table of the default
paths -- agentmem's p50 next to its raw floor and next to the peer measured in the same run -- which
goes into the README's Speed section and the generated block of ``benchmarks/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Suite:
    """One benchmark script and the arguments of the default (``quick``) and ``long`` runs."""

    name: str
    title: str
    script: str
    quick: tuple[str, ...]
    long: tuple[str, ...]


SUITES: tuple[Suite, ...] = (
    Suite("core", "Core engine (vs raw Valkey and betterdb-agent-memory)", "core_bench.py",
          ("--sizes", "10000", "--quiet"), ("--sizes", "10000,100000", "--quiet")),
    Suite("store", "LangGraph store (vs the AWS store, RedisStore, InMemoryStore)", "store_bench.py",
          ("--sizes", "10000", "--quiet"), ("--sizes", "10000,100000", "--quiet")),
    Suite("checkpoint", "LangGraph checkpointer (vs langgraph-checkpoint-aws and a PING floor)",
          "checkpoint_bench.py", (), ()),
    Suite("crewai", "CrewAI storage (vs LanceDBStorage)", "crewai_bench.py",
          ("--sizes", "10000", "--ops", "100"), ("--sizes", "10000,100000", "--ops", "100")),
    Suite("llamaindex", "LlamaIndex chat store (vs SQLAlchemyChatStore on SQLite)", "llamaindex_bench.py",
          ("--rounds", "30"), ("--rounds", "60")),
    Suite("embedded", "Embedded backend (SQLite, no server)", "embedded_bench.py",
          ("--sizes", "10000"), ("--sizes", "10000,100000")),
)  # fmt: skip


def suite(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        KeyError: no suite has that name.
    """
    for s in SUITES:
        if s.name == name:
            return s
    raise KeyError(f"no benchmark suite {name!r}; there are {[s.name for s in SUITES]}")


# -- splicing generated blocks into a markdown file ----------------------------------------------------------
def markers(block: str) -> tuple[str, str]:
    """The begin and end comment lines that delimit the generated block ``block``."""
    return (
        f"<!-- generated:{block} begin (benchmarks/run_all.py; edits here are overwritten) -->",
        f"<!-- generated:{block} end -->",
    )


def splice(text: str, block: str, body: str) -> str:
    """``text`` with the generated block ``block`` replaced by ``body`` (markers kept).

    Raises:
        ValueError: the markers are missing, repeated or out of order (nothing is guessed).
    """
    begin, end = markers(block)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"expected exactly one {begin!r} ... {end!r} pair")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body.strip()}\n{end}{tail}"


# -- the headline table --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One operation: agentmem's p50, its floor's and the peer's (ms; ``None``: not in this run)."""

    area: str
    operation: str
    ours: float | None
    floor: float | None = None
    floor_label: str = ""
    peers: tuple[tuple[str, float | None], ...] = ()  # (label, p50) of each peer in the same run
    rate: bool = False  # the values are items/s (higher is better), not ms


def _row(
    rows: Sequence[Mapping[str, Any]], size: int, system: str, op: str, parser: str | None = None
) -> Any:
    for r in rows:
        if r.get("size") == size and r.get("system") == system and r.get("op") == op:
            if parser is None or r.get("parser") == parser:
                return r
    return None


def _p50(row: Any) -> float | None:
    return None if row is None else row.get("p50")


TEXT_RECALL = "recall (text, hybrid KNN+BM25) k=10, reinforce on"
STORE_PEERS = (("AWS ValkeyStore", "langgraph-checkpoint-aws"), ("InMemoryStore", "InMemoryStore"))


def _core(data: Mapping[str, Any]) -> list[Line]:
    rows = data.get("rows", [])
    out: list[Line] = []
    for size in sorted({int(r["size"]) for r in rows}):
        n = f"{size // 1000}k"
        parser = "libvalkey" if _row(rows, size, "agentmem", "remember (1 memory)") else None
        peer = "betterdb 0.7.0"
        vec = "recall_by_vector k=10, reinforce on"
        out.append(Line(
            "core", f"recall_by_vector, k=10, reinforced ({n}, async)",
            _p50(_row(rows, size, "agentmem (async)", vec, "libvalkey")),
            _p50(_row(rows, size, "floor (async)",
                      "FT.SEARCH KNN-10 + tag filter (recall floor)", "libvalkey")), "one FT.SEARCH KNN-10",
            (("betterdb-agent-memory", _p50(_row(rows, size, peer, vec, "libvalkey"))),),
        ))  # fmt: skip
        out.append(Line(
            "core", f"recall_by_vector, k=10, reinforced ({n})",
            _p50(_row(rows, size, "agentmem", vec, "libvalkey")),
            _p50(_row(rows, size, "floor", "recall floor + 1 pipelined round trip reading and bumping the "
                      "10 hits' counters", "libvalkey")), "KNN + the counters round trip",
        ))  # fmt: skip
        out.append(Line(
            "core", f"recall(text), hybrid KNN + BM25, k=10 ({n})",
            _p50(_row(rows, size, "agentmem", TEXT_RECALL, "libvalkey")),
            _p50(_row(rows, size, "floor", "FT.SEARCH KNN-10 + tag filter (recall floor)", "libvalkey")),
            "one FT.SEARCH KNN-10",
        ))  # fmt: skip
        out.append(Line(
            "core", f"remember, 1 memory ({n})",
            _p50(_row(rows, size, "agentmem", "remember (1 memory)", parser)),
            _p50(_row(rows, size, "floor", "HSET (1 memory, indexed)", parser)), "one indexed HSET",
            (("betterdb-agent-memory", _p50(_row(rows, size, peer, "remember (1 memory)", parser))),),
        ))  # fmt: skip
    return out


def _store(data: Mapping[str, Any]) -> list[Line]:
    rows = data.get("rows", [])
    out: list[Line] = []
    for size in sorted({int(r["size"]) for r in rows}):
        n = f"{size // 1000}k"
        for op, floor, what in (
            ("search (prefix, query)", "FT.SEARCH KNN-10, agentmem's filter (prefix)", "search"),
            ("search (prefix, query, filter)", "FT.SEARCH KNN-10, agentmem's filter (prefix + value)",
             "filtered search"),
        ):  # fmt: skip
            base = _p50(_row(rows, size, "floor", floor))
            peers = tuple((label, _p50(_row(rows, size, peer, op))) for peer, label in STORE_PEERS)
            for system, ranking in (
                ("ValkeyMemoryStore", "ranking=similarity"),
                ("ValkeyMemoryStore (composite)", "composite ranking, the default"),
            ):
                ours = _p50(_row(rows, size, system, op))
                out.append(Line(
                    "LangGraph store", f"{what}, limit 10, {ranking} ({n})", ours, base,
                    "one FT.SEARCH KNN-10, same filter", peers,
                ))  # fmt: skip
    return out


def _checkpoint(data: Mapping[str, Any]) -> list[Line]:
    turns = data.get("turns", {})
    out: list[Line] = []
    for mode, ours, aws, ping in (
        ("sync", "agentmem ValkeySaver", "aws ValkeySaver", "floor: InMemorySaver + 1 PING per call"),
        ("async", "agentmem AsyncValkeySaver", "aws AsyncValkeySaver",
         "floor: InMemorySaver + 1 PING per call (async)"),
    ):  # fmt: skip
        if ours not in turns:
            continue
        out.append(Line(
            "checkpointer", f"per-turn overhead, 2-node graph ({mode})", turns[ours]["overhead_ms"],
            turns.get(ping, {}).get("overhead_ms"), "InMemorySaver + 1 PING per call",
            (("langgraph-checkpoint-aws", turns.get(aws, {}).get("overhead_ms")),),
        ))  # fmt: skip
    return out


_SQLITE_FLOOR = "10 memories' rows copied, one SQLite commit"


def _crewai(data: Mapping[str, Any]) -> list[Line]:
    out: list[Line] = []
    for size, per in data.get("rows", {}).items():
        n = f"{int(size) // 1000}k"
        lance = next((r for label, r in per.items() if label.startswith("LanceDB")), None)
        for label, r in per.items():
            if not label.startswith("ValkeyStorage"):
                continue
            which = label[len("ValkeyStorage ") :].strip("()")
            floor = r.get("save_floor_10")
            for metric, what in (("save_batch_10", "save, batches of 10"), ("search", "search")):
                out.append(Line(
                    "CrewAI storage", f"{what} ({which}, {n})", r[metric]["p50"],
                    floor["p50"] if floor and metric == "save_batch_10" else None,
                    (_SQLITE_FLOOR if which == "embedded" else "10 indexed HSETs")
                    if floor and metric == "save_batch_10" else "",
                    (("LanceDBStorage", None if lance is None else lance[metric]["p50"]),),
                ))  # fmt: skip
    return out


def _llamaindex(data: Mapping[str, Any]) -> list[Line]:
    results = data.get("results", {})
    ours, sqlite = results.get("valkey", {}), results.get("sqlite file", {})
    memory = results.get("sqlite memory", {})
    # :memory: first: it is SQLAlchemyChatStore's default, and like the benchmark's Valkey (no RDB, no AOF)
    # it writes nothing to disk; the file syncs every commit
    return [
        Line("LlamaIndex chat store", f"{row} (50-message session)", ours[row]["p50_ms"],
             peers=(("SQLAlchemyChatStore, SQLite :memory:", memory.get(row, {}).get("p50_ms")),
                    ("SQLAlchemyChatStore, SQLite file", sqlite.get(row, {}).get("p50_ms"))))
        for row in ("add_messages(50)", "get 50", "get 50 again", "archive 10")
        if row in ours
    ]  # fmt: skip


HEADLINES: dict[str, Callable[[Mapping[str, Any]], list[Line]]] = {
    "core": _core, "store": _store, "checkpoint": _checkpoint, "crewai": _crewai,
    "llamaindex": _llamaindex,
}  # fmt: skip


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} ms"


def _x(num: float | None, den: float | None) -> str:
    return "–" if num is None or den is None or not den else f"{num / den:.2f}x"


def headline(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The Speed table: per operation agentmem's p50, ``ours / floor`` and each ``peer / ours`` (> 1: faster).

    ``results`` maps a suite name to its JSON; suites not in it (not run yet) are left out, and a cell of
    a row a run did not measure is ``–``.
    """
    lines = [
        "| area | operation | agentmem p50 | floor p50 | agentmem ÷ floor | peers: p50 (peer ÷ agentmem) |",
        "|---|---|--:|--:|--:|---|",
    ]
    for name, build in HEADLINES.items():
        if name not in results:
            continue
        for line in build(results[name]):
            if line.ours is None:
                continue
            floor = f"{_ms(line.floor)} ({line.floor_label})" if line.floor is not None else "–"
            cells = [line.area, line.operation, _ms(line.ours), floor, _x(line.ours, line.floor)]
            peers = [f"{label} {_ms(p50)} ({_x(p50, line.ours)})" for label, p50 in line.peers]
            cells.append("; ".join(peers) or "–")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_HEADING = re.compile(r"^(#+) ", re.MULTILINE)


def demote(report: str, below: int) -> str:
    """A suite's markdown report with its headings moved under a heading of level ``below``."""
    return _HEADING.sub(lambda m: "#" * min(6, max(len(m.group(1)), 1) + below) + " ", report)
