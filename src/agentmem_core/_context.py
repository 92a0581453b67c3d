"""What every flow needs to know about its store (immutable, per operation)."""

from __future__ import annotations

from dataclasses import dataclass

from agentmem_core._encoding import Keys
from agentmem_core._knn_plan import KnnPlanner
from agentmem_core.config import StoreConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.rerank import Reranker
from agentmem_core.schema import IndexSpec

__all__ = ["Context"]


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
