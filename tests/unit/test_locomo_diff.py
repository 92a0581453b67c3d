"""benchmarks/locomo_diff.py: the questions two LoCoMo runs rank differently, and what they add up to."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import locomo_diff  # noqa: E402


def _run(path: Path, scores: dict[int, float]) -> str:
    rows: list[dict[str, Any]] = [
        {
            "conversation": "c1", "index": i, "category": 3 if i < 4 else 1, "question": f"q{i}?",
            "evidence": ["D1:1"], "ranked": [f"D1:{i}"], "r@10": r, "r@20": 1.0,
        }  # fmt: skip
        for i, r in scores.items()
    ]
    path.write_text(json.dumps({"per_question": rows}), encoding="utf-8")
    return str(path)


def test_lists_changed_questions_and_the_net_per_category(tmp_path: Path, capsys: Any) -> None:
    a = _run(tmp_path / "a.json", {0: 1.0, 1: 0.5, 2: 0.0, 3: 1.0, 4: 0.0})
    b = _run(tmp_path / "b.json", {0: 0.0, 1: 1.0, 2: 0.0, 3: 1.0, 4: 1.0})
    assert locomo_diff.main([a, b, "--category", "3"]) == 0
    out = capsys.readouterr().out
    assert "-1.00  cat 3  c1#0  'q0?'" in out and "+0.50  cat 3  c1#1" in out
    assert "c1#2" not in out and "c1#3" not in out and "c1#4" not in out  # unchanged, or another category
    assert "category 3: 4 questions, 2 changed, net -0.50 questions' evidence = -12.5 points of r@10" in out
    assert locomo_diff.main([a, b, "--k", "20"]) == 0
    assert "net +0.00" in capsys.readouterr().out.splitlines()[-1]


def test_a_run_without_rows_or_other_questions_is_refused(tmp_path: Path) -> None:
    a = _run(tmp_path / "a.json", {0: 1.0, 1: 0.5})
    fewer = _run(tmp_path / "b.json", {0: 1.0})
    bare = tmp_path / "c.json"
    bare.write_text(json.dumps({"overall": {}}), encoding="utf-8")
    with pytest.raises(SystemExit, match="different questions"):
        locomo_diff.main([a, fewer])
    with pytest.raises(SystemExit, match="--per-question"):
        locomo_diff.main([a, str(bare)])
