"""Every notebook in notebooks/ runs top to bottom (its cells assert what they show), outputs stripped.

The notebooks run on the embedded backend with the replayed LLM (no key, no network); the LangGraph one
runs on Valkey too (``AGENTMEM_URL``), as a reader with a server would run it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def _run(path: Path, env: dict[str, str]) -> None:
    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)
    for key in ("OPENAI_API_KEY", "AGENTMEM_RECORD"):
        if key not in env:
            os.environ.pop(key, None)
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_there_are_notebooks() -> None:
    assert ALL, "no notebooks found"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_runs_on_the_embedded_backend(path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    os.environ.pop("AGENTMEM_URL", None)
    _run(path, env)


@pytest.mark.parametrize("name", ["langgraph_travel", "cross_framework"])
def test_runs_on_valkey(name: str, valkey_url: str) -> None:
    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"{path.name} is missing")
    _run(path, {"HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "AGENTMEM_URL": valkey_url})
