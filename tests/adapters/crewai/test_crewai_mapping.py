"""Pure parts of the adapter: the record mapping, filters, scores, configuration and the factory's URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import valkey
from crewai.memory.types import MemoryRecord

from agentmem_core import AsyncMemoryStore, IndexConfig, InvalidMemoryError, Kind, MemoryStore
from agentmem_core.errors import ConfigurationError, EmbeddingError
from agentmem_crewai import LAST_ACCESSED_KEY, PRIVATE_KEY, VISIBLE_TO_KEY, PrivateRule, ValkeyStorage
from agentmem_crewai._mapping import (
    distance_gate,
    from_timestamp,
    metadata_conditions,
    namespace_to_scope,
    record_input,
    scope_filter,
    scope_to_namespace,
    score_of,
    search_filters,
    to_timestamp,
)
from agentmem_crewai.factory import ValkeyStorageFactory
from agentmem_crewai.storage import never_embeds


@pytest.mark.parametrize(
    ("scope", "namespace", "back"),
    [
        ("/", (), "/"),
        (None, (), "/"),
        ("", (), "/"),
        ("/crew/research", ("crew", "research"), "/crew/research"),
        ("crew//research/", ("crew", "research"), "/crew/research"),
        ("/a.b/*/c d", ("a.b", "*", "c d"), "/a.b/*/c d"),
    ],
)
def test_scopes_are_label_paths(scope: str | None, namespace: tuple[str, ...], back: str) -> None:
    assert scope_to_namespace(scope) == namespace
    assert namespace_to_scope(namespace) == back


def test_scope_filter_and_bad_scopes() -> None:
    assert scope_filter("/") == {} and scope_filter(None) == {}
    assert scope_filter("/crew/research/") == {"namespace_prefix": ("crew", "research")}
    with pytest.raises(InvalidMemoryError):
        scope_to_namespace(42)  # type: ignore[arg-type]


def test_times_are_naive_utc_to_the_microsecond() -> None:
    naive = datetime(2026, 7, 8, 9, 10, 11, 999999)
    assert from_timestamp(to_timestamp(naive)) == naive
    aware = datetime(2026, 7, 8, 11, 10, 11, 1, tzinfo=timezone(timedelta(hours=2)))
    assert from_timestamp(to_timestamp(aware)) == datetime(2026, 7, 8, 9, 10, 11, 1)
    with pytest.raises(InvalidMemoryError):
        to_timestamp("2026-01-01")  # type: ignore[arg-type]


def test_record_input_maps_every_field() -> None:
    created = datetime(2026, 1, 1, 0, 0, 0, 5)
    record = MemoryRecord(
        id="rec-1",
        content="c",
        scope="/x/y",
        categories=["a", "b"],
        metadata={"k": [1]},
        importance=0.25,
        created_at=created,
        last_accessed=created + timedelta(hours=1),
        embedding=[0.0, 2.0],
        source="",
        private=True,
    )
    item, vector = record_input(record, 2)
    assert vector == [0.0, 2.0]
    assert (item.id, item.content, item.namespace, item.tags, item.importance) == (
        "rec-1",
        "c",
        ("x", "y"),
        ["a", "b"],
        0.25,
    )
    assert item.source is None and item.kind == Kind.SEMANTIC and item.embed is True
    assert item.created_at == to_timestamp(created)
    assert item.metadata == {"k": [1], PRIVATE_KEY: True, LAST_ACCESSED_KEY: "2026-01-01T01:00:00.000005"}
    plain, none = record_input(
        record.model_copy(update={"private": False, "last_accessed": created, "embedding": [0.0, 0.0]}), 2
    )
    assert plain.metadata == {"k": [1]} and none is None and plain.embed is False
    for key in (PRIVATE_KEY, LAST_ACCESSED_KEY, VISIBLE_TO_KEY):
        with pytest.raises(InvalidMemoryError, match="reserved"):
            record_input(record.model_copy(update={"metadata": {key: 1}}), 2)
    with pytest.raises(InvalidMemoryError):
        record_input({"content": "not a record"}, 2)  # type: ignore[arg-type]


def test_metadata_filters_keep_crewai_equality() -> None:
    pushed, rule, client = metadata_conditions(
        {"a": 1, "op": {"$gt": 1}, "d.e": 2, "n": None, VISIBLE_TO_KEY: "me"}
    )
    assert pushed == {"a": {"$eq": 1}, "op": {"$eq": {"$gt": 1}}}
    assert client == {"d.e": 2, "n": None} and rule == PrivateRule("me")
    assert metadata_conditions(None) == ({}, None, {}) and metadata_conditions({}) == ({}, None, {})
    for bad in ({PRIVATE_KEY: True}, {VISIBLE_TO_KEY: 3}, {VISIBLE_TO_KEY: ""}, {1: 2}, {"": 1}):
        with pytest.raises(InvalidMemoryError):
            metadata_conditions(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidMemoryError):
        metadata_conditions([("a", 1)])  # type: ignore[arg-type]
    assert PrivateRule(None).any_of() == [{"metadata": {PRIVATE_KEY: {"$ne": True}}}]
    assert search_filters("/s", [], {}, None) == {"namespace_prefix": ("s",)}
    with pytest.raises(InvalidMemoryError):
        search_filters(None, "abc", {}, None)  # type: ignore[arg-type]


def test_scores_and_the_min_score_gate() -> None:
    assert score_of(0.0) == 1.0 and score_of(0.25) == 0.75 and score_of(1.5) == 0.0 and score_of(-1e-9) == 1.0
    assert distance_gate(0.0) is None and distance_gate(-3) is None
    assert distance_gate(0.75) == 0.25 and distance_gate(2.0) == 0.0
    for bad in (float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(InvalidMemoryError):
            distance_gate(bad)  # type: ignore[arg-type]


def test_storage_configuration_is_checked_without_io() -> None:
    client = valkey.Valkey(host="127.0.0.1", port=1)  # never connected: nothing here does I/O
    core = MemoryStore(client, name="cfg", embedder=never_embeds, dims=8)
    assert ValkeyStorage(core).settings.dims == 8
    with pytest.raises(ConfigurationError):
        ValkeyStorage(core, dims=9)
    with pytest.raises(ConfigurationError):
        ValkeyStorage(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ValkeyStorage(core, private_view="me")  # type: ignore[arg-type]
    unknown = MemoryStore(client, name="cfg", embedder=never_embeds)  # a function without dims=
    with pytest.raises(ConfigurationError):
        ValkeyStorage(unknown)
    assert ValkeyStorage(unknown, dims=4).settings.dims == 4
    assert ValkeyStorage(core).for_viewer("me").settings.private_rule == PrivateRule("me")
    with pytest.raises(ConfigurationError):
        ValkeyStorage.from_url("valkey://127.0.0.1:1", dims=8, core_options={"name": "x"})
    with pytest.raises(ConfigurationError):
        ValkeyStorage.from_url("http://127.0.0.1:1", dims=8)
    with pytest.raises(EmbeddingError, match="does not embed"):
        never_embeds(["text"])


def test_factory_urls() -> None:
    factory = ValkeyStorageFactory(dims=16, name="dflt")
    assert factory.parse("valkeys://u:p@h:1/3?ssl_cert_reqs=none") == (
        "valkeys://u:p@h:1/3?ssl_cert_reqs=none",
        "dflt",
        16,
    )
    assert factory.parse("redis://h:1?dims=4&name=n") == ("redis://h:1", "n", 4)
    assert factory("lancedb") is None and factory("./memory-dir") is None
    with pytest.raises(ConfigurationError):
        ValkeyStorageFactory().parse("valkey://h:1")
    # index= picks the vector index algorithm and never reaches the core URL
    assert factory.parse("valkey://h:1?index=hnsw&dims=4") == ("valkey://h:1", "dflt", 4)
    assert factory.algorithm("valkey://h:1?index=HNSW") == "HNSW"
    assert factory.algorithm("valkey://h:1?index=flat") == "FLAT"
    assert factory.algorithm("valkey://h:1") is None
    with pytest.raises(ConfigurationError, match="flat or hnsw"):
        factory.algorithm("valkey://h:1?index=ivf")


def test_the_default_index_is_exact_and_hnsw_is_an_option() -> None:
    """A new index is FLAT (exact like LanceDB's scan, saves without a graph insertion); HNSW on request."""
    chosen = IndexConfig(dims=8, algorithm="HNSW", m=24)
    default = ValkeyStorage.from_url("valkey://127.0.0.1:1", dims=8)  # no I/O until the first call
    storage = ValkeyStorage.from_url("valkey://127.0.0.1:1", dims=8, core_options={"index": chosen})
    by_url = ValkeyStorageFactory(dims=8)("valkey://127.0.0.1:1?index=hnsw")
    assert by_url is not None
    try:
        assert default.core.config.index == IndexConfig(dims=8, default_algorithm="FLAT")
        assert storage.core.config.index == chosen
        assert by_url.core.config.index.algorithm == "HNSW"
    finally:
        for each in (default, storage, by_url):
            each.close()


def test_an_async_core_of_another_store_or_index_is_refused() -> None:
    sync = ValkeyStorage.from_url("valkey://127.0.0.1:1", name="s", dims=8)
    url = "valkey://127.0.0.1:1"
    hnsw = AsyncMemoryStore.from_url(
        url, name="s", embedder=never_embeds, index=IndexConfig(dims=8, algorithm="HNSW")
    )
    other = AsyncMemoryStore.from_url(url, name="t", embedder=never_embeds, dims=8)
    unsaid = AsyncMemoryStore.from_url(url, name="s", embedder=never_embeds, dims=8)  # setup order decides
    flat = AsyncMemoryStore.from_url(
        url, name="s", embedder=never_embeds, index=IndexConfig(dims=8, default_algorithm="FLAT")
    )
    try:
        for wrong in (hnsw, other, unsaid):
            with pytest.raises(ConfigurationError, match="same name and index"):
                ValkeyStorage(sync.core, acore=wrong)
        assert ValkeyStorage(sync.core, acore=flat).acore is flat
    finally:
        sync.close()
