"""agentmem_core: long-term memory for AI agents (framework-free), on Valkey or embedded (SQLite).

Memories are recalled by meaning (KNN, plus a BM25 lexical channel) and ranked by a composite score
(similarity, recency half-life decay, importance). See :class:`MemoryStore` (sync) and
:class:`AsyncMemoryStore` (async); ``MemoryStore.from_url("valkey://...")`` or ``("sqlite:///file.db")``.
"""

from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_consolidate import ConsolidationResult
from agentmem_core._flows_distil import FactsResult
from agentmem_core._flows_transfer import ImportResult
from agentmem_core._records import MemoryInput
from agentmem_core.aio import AsyncMemoryStore
from agentmem_core.audit import AuditEntry
from agentmem_core.config import (
    DAY,
    IndexConfig,
    Kind,
    RetryPolicy,
    ScoringConfig,
    ScoringWeights,
    StoreConfig,
)
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import (
    AgentMemError,
    BackendAuthError,
    BackendBusyError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    IndexNotFoundError,
    InvalidMemoryError,
    InvalidVectorError,
    ModelError,
    NotFoundError,
    QueryTooComplexError,
    RedactionError,
    SchemaMismatchError,
    SearchModuleUnavailableError,
    WriteOutcomeUnknownError,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.store import MemoryStore
from agentmem_core.types import (
    Health,
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
    "AuditEntry",
    "ConsolidationResult",
    "BackendAuthError",
    "BackendBusyError",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "FactsResult",
    "EngineInfo",
    "ImportResult",
    "IndexConfig",
    "IndexNotFoundError",
    "InvalidMemoryError",
    "InvalidVectorError",
    "Kind",
    "Memory",
    "MemoryFilter",
    "MemoryInput",
    "MemoryStore",
    "ModelError",
    "NearMiss",
    "NotFoundError",
    "Page",
    "QueryTooComplexError",
    "RecallHit",
    "RecallResult",
    "RetryPolicy",
    "SchemaMismatchError",
    "ScopeKey",
    "ScopeStats",
    "ScoreBreakdown",
    "ScoringConfig",
    "ScoringWeights",
    "SearchModuleUnavailableError",
    "Stats",
    "Health",
    "RedactionError",
    "StoreConfig",
    "WriteOutcomeUnknownError",
]
