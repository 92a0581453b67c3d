"""What every flow needs to know about its store (immutable, per operation)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._knn_plan import KnnPlanner
from agentmem_core.config import StoreConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.rerank import Reranker
from agentmem_core.schema import IndexSpec

__all__ = ["CommonTerms", "Context", "ScopeCache"]


class ScopeCache:
    """The scopes a store has read, by tag (bounded, least recently used out).

    A tag is a hash of its scope, so what a tag stands for never changes: a read that found a tag in the
    scope index need not read its descriptor again. Whether the scope still exists is always the index's
    answer, never this cache's: which scopes a filter matched last time is only a guess a read sends its
    next requests ahead on, in the same round trip as the index read that checks it.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        # shared by a store's threads: a lookup and its move to the end must not race an eviction
        self._lock = threading.Lock()
        self._scopes: OrderedDict[str, ScopeKey] = OrderedDict()
        # selection -> (the scopes it matched, the index read's members they came from, or None)
        self._selections: OrderedDict[Hashable, tuple[tuple[ScopeKey, ...], tuple[object, ...] | None]] = (
            OrderedDict()
        )

    def get(self, tag: str) -> ScopeKey | None:
        """The scope of ``tag``, if read before."""
        with self._lock:
            scope = self._scopes.get(tag)
            if scope is not None:
                self._scopes.move_to_end(tag)
            return scope

    def peek(self, tag: str) -> ScopeKey | None:
        """The scope of ``tag``, if held (without marking it used)."""
        return self._scopes.get(tag)

    def put(self, scope: ScopeKey) -> None:
        """Remember a scope read from the registry."""
        with self._lock:
            self._scopes[scope.tag] = scope
            self._scopes.move_to_end(scope.tag)
            while len(self._scopes) > self._size:
                self._scopes.popitem(last=False)

    def guess(self, selection: Hashable) -> tuple[ScopeKey, ...] | None:
        """The scopes a scope selection matched last time (a guess to read ahead with; never an answer)."""
        with self._lock:
            found = self._selections.get(selection)
            if found is None:
                return None
            self._selections.move_to_end(selection)
            return found[0]

    def same_read(self, selection: Hashable, members: tuple[object, ...]) -> tuple[ScopeKey, ...] | None:
        """The scopes of the last index read of ``selection`` when this read returned the same members.

        A tag always stands for the same scope, so the same members give the same scopes: a recall whose
        scopes did not change skips decoding and matching them again (100 scopes: about 0.15 ms).
        """
        found = self._selections.get(selection)
        if found is None or found[1] is None or found[1] != members:
            return None
        return found[0]

    def seed(self, selection: Hashable, scope: ScopeKey) -> None:
        """Guess that ``selection`` matches ``scope`` alone, unless a read already told what it matches.

        A store that just wrote a scope guesses so for the selection naming exactly that scope, so its
        first read of it (a chat session just written, then read) sends its requests with the index read.
        """
        with self._lock:
            if selection in self._selections:
                return
            self._remember(selection, (scope,), None)

    def matched(
        self, selection: Hashable, scopes: Sequence[ScopeKey], members: tuple[object, ...] | None = None
    ) -> None:
        """Remember which scopes a selection matched (and the index read's members, when all were read)."""
        with self._lock:
            self._remember(selection, tuple(scopes), members)

    def _remember(
        self, selection: Hashable, scopes: tuple[ScopeKey, ...], members: tuple[object, ...] | None
    ) -> None:
        self._selections[selection] = (scopes, members)
        self._selections.move_to_end(selection)
        while len(self._selections) > self._size:
            self._selections.popitem(last=False)


class CommonTerms:
    """The query terms a store last found common under a filter (bounded, least recently used out).

    A term more memories hold than ``lexical_term_pool`` is only counted by the lexical channel: its
    rows would be an arbitrary sample of its postings, so they are never candidates. Knowing which terms
    were common lets the next recall ask for their counts without rows. A guess only: a term found no
    longer common is asked for its rows in one more round trip, so a recall's result never depends on it.
    """

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._df: OrderedDict[tuple[Hashable, str], int] = OrderedDict()
        self._lock = threading.Lock()  # shared by a store's threads (and its async tasks' worker threads)

    def common(self, selection: Hashable, terms: Iterable[str], pool: int) -> frozenset[str]:
        """Which of ``terms`` more than ``pool`` memories under ``selection`` held when last counted."""
        out = []
        with self._lock:
            for term in terms:
                df = self._df.get((selection, term))
                if df is not None and df > pool:
                    self._df.move_to_end((selection, term))
                    out.append(term)
        return frozenset(out)

    def counted(self, selection: Hashable, counts: Iterable[tuple[str, int]]) -> None:
        """Remember the document frequencies just counted under ``selection``."""
        with self._lock:
            for term, df in counts:
                self._df[(selection, term)] = df
                self._df.move_to_end((selection, term))
            while len(self._df) > self._size:
                self._df.popitem(last=False)


@dataclass(frozen=True)
class Context:
    """Store facts for one operation: key layout, index, effective config, engine and the time."""

    keys: Keys
    spec: IndexSpec
    config: StoreConfig
    engine: EngineInfo
    now: float
    lexical: bool = False
    """Whether recall may use the lexical channel (engine support + the terms field in the index)."""
    cluster: bool = False
    """Whether the client is a cluster client (a script call may then touch one hash slot only)."""
    knn_plan: KnnPlanner | None = None
    """Chooses how a filtered KNN runs, where the engine needs telling (RediSearch, HNSW); else ``None``."""
    reranker: Reranker | None = None
    """Reorders a text recall's best candidates (the store's ``reranker=``); ``None``: no reranking."""
    scopes: ScopeCache | None = None
    """The scopes this store has read (saves reading a known scope's descriptor); ``None``: none kept."""
    terms: CommonTerms | None = None
    """The query terms this store found common (their counts are sent without rows); ``None``: none kept."""
