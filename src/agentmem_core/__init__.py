"""agentmem_core: Valkey-native long-term memory for AI agents (framework-free).

Memories are Valkey hashes recalled through the search module (HNSW KNN) and ranked by a composite
score (similarity, recency half-life decay, importance). See :class:`MemoryStore` (sync) and
:class:`AsyncMemoryStore` (async).
"""

from agentmem_core._encoding import ScopeKey
from agentmem_core._records import MemoryInput
from agentmem_core.aio import AsyncMemoryStore
from agentmem_core.config import DAY, IndexConfig, Kind, ScoringConfig, ScoringWeights, StoreConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import (
    AgentMemError,
    BackendConnectionError,
    BackendError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    IndexNotFoundError,
    InvalidMemoryError,
    InvalidVectorError,
    NotFoundError,
    QueryTooComplexError,
    SchemaMismatchError,
    SearchModuleUnavailableError,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.store import MemoryStore
from agentmem_core.types import (
    Memory,
    NearMiss,
    Page,
    RecallHit,
    RecallResult,
    ScopeStats,
    ScoreBreakdown,
    Stats,
)

__all__ = [
    "DAY",
    "AgentMemError",
    "AsyncMemoryStore",
    "BackendConnectionError",
    "BackendError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "EngineInfo",
    "IndexConfig",
    "IndexNotFoundError",
    "InvalidMemoryError",
    "InvalidVectorError",
    "Kind",
    "Memory",
    "MemoryFilter",
    "MemoryInput",
    "MemoryStore",
    "NearMiss",
    "NotFoundError",
    "Page",
    "QueryTooComplexError",
    "RecallHit",
    "RecallResult",
    "SchemaMismatchError",
    "ScopeKey",
    "ScopeStats",
    "ScoreBreakdown",
    "ScoringConfig",
    "ScoringWeights",
    "SearchModuleUnavailableError",
    "Stats",
    "StoreConfig",
]
