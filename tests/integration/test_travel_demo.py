"""The README's first command runs examples/travel_demo.py: it must work on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "travel_demo.py"


@pytest.mark.parametrize("backend", ["embedded", "valkey"])
def test_the_travel_demo_recalls_session_one_in_session_two(backend: str, valkey_url: str) -> None:
    env = {**os.environ, "AGENTMEM_EMBEDDER": "hashing", "HF_HUB_OFFLINE": "1"}
    env.pop("AGENTMEM_URL", None)
    if backend == "valkey":
        env["AGENTMEM_URL"] = valkey_url
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("search engine: embedded" in out) == (backend == "embedded")
    assert "-> I always want a window seat on flights." in out.split("Book me a flight to Porto")[1]
    assert "5 memories for traveller-" in out
