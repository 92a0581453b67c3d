"""The LoCoMo questions whose evidence recall@k differs between two runs of ``locomo.py --per-question``.

A category's mean moves by ``(sum of the listed differences) / (its question count)``, so this shows how
many questions a change of a few points is (an open-domain point is less than half a question: 44 of them).

Usage::

    python benchmarks/locomo_diff.py A.json B.json [--category 3] [--k 10]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load(path: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The per-question rows of one run, by (conversation, question index)."""
    found = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = found.get("per_question")
    if rows is None:
        raise SystemExit(f"{path}: no per_question rows (run locomo.py with --per-question)")
    return {(row["conversation"], int(row["index"])): row for row in rows}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="the first run's JSON")
    p.add_argument("b", help="the second run's JSON")
    p.add_argument("--category", type=int, default=None, help="only this category (1-4)")
    p.add_argument("--k", type=int, default=10, help="compare recall@k (1, 5, 10 or 20)")
    args = p.parse_args(argv)
    a, b = load(args.a), load(args.b)
    if a.keys() != b.keys():
        raise SystemExit("the two runs scored different questions")
    metric = f"r@{args.k}"
    changed = []
    counts: dict[int, int] = {}
    for key, row in a.items():
        if args.category is not None and row["category"] != args.category:
            continue
        counts[row["category"]] = counts.get(row["category"], 0) + 1
        delta = b[key][metric] - row[metric]
        if delta:
            changed.append((delta, key, row, b[key]))
    changed.sort(key=lambda item: (item[0], item[1]))
    for delta, (conv, index), row, other in changed:
        where = f"cat {row['category']}  {conv}#{index}"
        print(f"{delta:+.2f}  {where}  {row['question']!r}  evidence {row['evidence']}")
        print(f"       A: {row['ranked'][: args.k]}")
        print(f"       B: {other['ranked'][: args.k]}")
    for category, n in sorted(counts.items()):
        mine = [d for d, _, row, _ in changed if row["category"] == category]
        print(
            f"category {category}: {n} questions, {len(mine)} changed, net {sum(mine):+.2f} questions' "
            f"evidence = {100 * sum(mine) / n:+.1f} points of {metric}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
