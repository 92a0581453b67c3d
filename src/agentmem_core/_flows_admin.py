"""Flows for setup (index creation/validation, engine detection) and live configuration."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._parse import as_text, has_attribute, pairs, parse_vector_algorithm, parse_vector_dim
from agentmem_core._plan import Call, Flow, batch, expect
from agentmem_core._scope_index import scope_members
from agentmem_core._scripts import ALL_SCRIPTS
from agentmem_core.config import LiveSettings, ScoringWeights, StoreConfig
from agentmem_core.engine import EngineInfo, detect_engine
from agentmem_core.errors import (
    ConfigurationError,
    DimensionMismatchError,
    SchemaMismatchError,
    SearchModuleUnavailableError,
    is_unknown_command_message,
)
from agentmem_core.ops import ReadConfig, WriteConfig
from agentmem_core.schema import F, IndexSpec, numeric_field

__all__ = ["LIVE_FIELDS", "live_config_op", "parse_live_config", "refresh_live_flow", "setup_flow"]


def _unknown_command(reply: Any) -> bool:
    return isinstance(reply, BaseException) and is_unknown_command_message(str(reply))


@dataclass(frozen=True)
class SetupResult:
    """What setup found: the engine, the index spec in force and whether hybrid recall is available."""

    engine: EngineInfo
    spec: IndexSpec
    lexical: bool


_ALGORITHMS: dict[str, Literal["HNSW", "FLAT"]] = {"HNSW": "HNSW", "FLAT": "FLAT"}


def setup_flow(spec: IndexSpec, hybrid: bool) -> Flow[SetupResult]:
    """Create the index, or validate an existing one; detect the engine; load scripts.

    Hybrid recall needs filter-only queries (to match and count terms: RediSearch, valkey-search >= 1.1)
    and an index with the term field; on other engines recall is vector-only.
    """
    replies = yield batch([
        Call(("FT._LIST",)),
        Call(("MODULE", "LIST")),
        Call(("FT.CONFIG", "GET", "TIMEOUT")),
    ])  # fmt: skip
    if _unknown_command(replies[0]):
        raise SearchModuleUnavailableError(
            "the server has no search module: agentmem needs valkey-search (e.g. valkey-bundle, "
            "ElastiCache/Memorystore for Valkey) or RediSearch loaded into the server"
        )
    names = {as_text(n) for n in expect(replies[0])}
    engine = detect_engine(expect(replies[1]), replies[2])
    lexical = hybrid and engine.filter_only_queries
    if spec.name not in names:
        (created,) = yield batch([Call(spec.create_command())])
        if isinstance(created, BaseException) and "already exists" not in str(created).lower():
            expect(created)
        if not isinstance(created, BaseException):
            yield from _load_scripts()
            yield from _index_scopes(spec.keys)
            made = replace(spec.config, algorithm=spec.config.created_algorithm)
            return SetupResult(engine, replace(spec, config=made), lexical)
    (info,) = yield batch([Call(("FT.INFO", spec.name))])
    info = expect(info)
    existing = parse_vector_dim(info)
    if existing is None:
        raise SchemaMismatchError(f"index {spec.name!r} exists but has no vector field agentmem can read")
    if existing != spec.config.dims:
        raise DimensionMismatchError(spec.name, existing, spec.config.dims)
    found = parse_vector_algorithm(info)  # None: an engine that does not say (then not checked)
    wanted = spec.config.algorithm
    if found is not None and wanted is not None and found != wanted:
        # queries are planned for the algorithm (EF_RUNTIME, the KNN plan): an exact store must not
        # search an approximate index unknowingly, nor an HNSW store send HNSW options to a FLAT one
        raise SchemaMismatchError(
            f"index {spec.name!r} on the server is {found}, but this store is configured for {wanted}: "
            f"configure IndexConfig(algorithm={found!r}) (or None: the index's own) to use it, or use "
            "another store name"
        )
    adopted = _ALGORITHMS.get(found or "")
    if wanted is None and adopted is not None:  # the store plans its queries for the index it has
        spec = replace(spec, config=replace(spec.config, algorithm=adopted))
    missing = [key for key in spec.numeric if not has_attribute(info, numeric_field(key))]
    if missing:
        raise SchemaMismatchError(
            f"index {spec.name!r} was created without the numeric metadata fields {missing}: declared "
            "numeric_fields must exist when the index is created (drop the index, or use another store name)"
        )
    yield from _load_scripts()
    yield from _index_scopes(spec.keys)
    return SetupResult(engine, spec, lexical and has_attribute(info, F.X_TERMS))


def _index_scopes(keys: Keys) -> Flow[None]:
    """Build the scope index from the registry when a store written before the index existed has none."""
    counts = yield batch([Call(("EXISTS", keys.scope_index)), Call(("HLEN", keys.scopes))])
    if int(expect(counts[0])) or not int(expect(counts[1])):
        return
    (raw,) = yield batch([Call(("HGETALL", keys.scopes))])
    members: list[str | bytes | int] = []
    for tag, descriptor in pairs(expect(raw)).items():
        scope = ScopeKey.from_descriptor(json.loads(as_text(descriptor)))
        if scope.tag == tag:
            for member in scope_members(scope):
                members += [0, member]
    if members:
        (added,) = yield batch([Call(("ZADD", keys.scope_index, *members))])
        expect(added)


def _load_scripts() -> Flow[None]:
    replies = yield batch([Call(("SCRIPT", "LOAD", s.body)) for s in ALL_SCRIPTS])
    for reply in replies:
        expect(reply)


LIVE_FIELDS = (
    "similarity_weight",
    "recency_weight",
    "importance_weight",
    "time_weight",
    "half_life_seconds",
    "threshold",
    "max_items_per_scope",
)
_NONE = "none"


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"live config {name}={value!r} is not a number") from exc
    if not math.isfinite(number):
        raise ConfigurationError(f"live config {name} must be finite")
    return number


def parse_live_config(raw: Any, base: StoreConfig) -> LiveSettings:
    """Validate the live-config hash into overrides (missing fields keep the base config).

    Raises:
        ConfigurationError: for invalid values (a broken live config fails loudly, it is not ignored).
    """
    fields = {k: as_text(v) for k, v in pairs(raw).items()}
    scoring = None
    weights = base.scoring.weights
    if {"similarity_weight", "recency_weight", "importance_weight", "time_weight", "half_life_seconds"} & (
        fields.keys()
    ):
        weights = ScoringWeights(
            similarity=_number("similarity_weight", fields.get("similarity_weight", weights.similarity)),
            recency=_number("recency_weight", fields.get("recency_weight", weights.recency)),
            importance=_number("importance_weight", fields.get("importance_weight", weights.importance)),
            time=_number("time_weight", fields.get("time_weight", weights.time)),
        )
        half_life = _number(
            "half_life_seconds", fields.get("half_life_seconds", base.scoring.half_life_seconds)
        )
        scoring = replace(base.scoring, weights=weights, half_life_seconds=half_life)
    live = LiveSettings(scoring=scoring)
    if "threshold" in fields:
        value = fields["threshold"]
        threshold = None if value == _NONE else _number("threshold", value)
        if threshold is not None and not 0 <= threshold <= 2:
            raise ConfigurationError("live config threshold must be a cosine distance in [0, 2]")
        live = LiveSettings(scoring, threshold, True)
    if "max_items_per_scope" in fields:
        value = fields["max_items_per_scope"]
        capacity = None if value == _NONE else int(_number("max_items_per_scope", value))
        if capacity is not None and capacity < 1:
            raise ConfigurationError("live config max_items_per_scope must be >= 1")
        live = LiveSettings(live.scoring, live.threshold, live.has_threshold, capacity, True)
    return live


def live_config_op(values: dict[str, Any], base: StoreConfig) -> WriteConfig | None:
    """The operation that writes live config, validated first (``None`` when there is nothing to write).

    Raises:
        ConfigurationError: for unknown fields or invalid values (nothing is written).
    """
    unknown = set(values) - set(LIVE_FIELDS)
    if unknown:
        raise ConfigurationError(f"unknown live config fields: {sorted(unknown)}; known: {LIVE_FIELDS}")
    encoded = {k: (_NONE if v is None else repr(float(v)) if k != "max_items_per_scope" else str(int(v)))
               for k, v in values.items()}  # fmt: skip
    parse_live_config(encoded, base)  # validate before writing
    return WriteConfig(encoded) if encoded else None


def refresh_live_flow(base: StoreConfig) -> Flow[LiveSettings]:
    """Read the live config."""
    (raw,) = yield batch([ReadConfig()])
    return parse_live_config(expect(raw), base)
