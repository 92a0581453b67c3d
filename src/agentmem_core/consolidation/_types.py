"""What consolidation hands to a language model and what it expects back (the provider contract).

A :class:`Summarizer` folds memories into one text; a :class:`FactExtractor` distils atomic facts keyed by
a normalised subject. Both see memories as :class:`Numbered` items: a small integer per memory (``1, 2,
...``), never an id, so a model cannot invent or corrupt ids; the code maps the integers back.
Reconciliation of what an extractor returns is deterministic code (``agentmem_core.facts``), never the
model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ExtractedFact", "FactExtractor", "KnownFact", "Numbered", "Summarizer"]


@dataclass(frozen=True)
class Numbered:
    """One memory as a model sees it.

    Attributes:
        n: its number in this request (``1..len``); the model refers to it by this.
        content: the memory's text.
        created_at: when it happened (Unix seconds).
        kind: its kind (``"episodic"``, ``"semantic"``, ``"summary"``, ...).
    """

    n: int
    content: str
    created_at: float
    kind: str = "semantic"


@dataclass(frozen=True)
class KnownFact:
    """A current fact already stored, shown to an extractor so it can restate, update or retract it.

    Attributes:
        n: its number in this request (``1..len``, numbered apart from the memories).
        subject: its normalised subject (``"home_city"``).
        statement: its text.
        valid_from: since when it holds (Unix seconds).
    """

    n: int
    subject: str
    statement: str
    valid_from: float


@dataclass(frozen=True)
class ExtractedFact:
    """One fact an extractor found.

    Attributes:
        subject: a short attribute key (``"employer"``, ``"home_city"``); normalised by the store.
        statement: the fact as a standalone sentence (empty for a retraction).
        sources: the numbers of the memories it comes from (``Numbered.n``); the store dates the fact by
            the newest of them, and reports numbers that match no memory.
        retract: ``True``: the subject no longer holds (a tombstone: "no longer works at Acme").
    """

    subject: str
    statement: str
    sources: tuple[int, ...] = ()
    retract: bool = False


@runtime_checkable
class Summarizer(Protocol):
    """Folds memories (oldest to newest) into one summary text."""

    max_input_chars: int
    """How much memory text one call may take; the store batches larger sets and summarises the
    summaries."""

    def summarize(self, memories: Sequence[Numbered]) -> str:
        """One summary of ``memories``."""
        ...

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        """The async twin of :meth:`summarize`."""
        ...


@runtime_checkable
class FactExtractor(Protocol):
    """Extracts atomic facts from memories, given the facts already known."""

    max_input_chars: int
    """How much memory text one call may take (the store batches larger sets)."""

    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The facts ``memories`` state (new, restated, changed or retracted)."""
        ...

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The async twin of :meth:`extract`."""
        ...
