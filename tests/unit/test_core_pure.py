"""Pure (no network) tests of encoding, filters, scoring, schema, parsing and engine detection."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys

import pytest

from agentmem_core import ScoringConfig, ScoringWeights
from agentmem_core._encoding import NONE_TAG, Keys, ScopeKey, encode_tag, namespace_tokens, parse_id
from agentmem_core._parse import parse_search, parse_vector_algorithm, parse_vector_dim
from agentmem_core.config import DAY, IndexConfig, Kind, StoreConfig
from agentmem_core.engine import detect_engine
from agentmem_core.errors import BackendError, ConfigurationError, InvalidMemoryError, QueryTooComplexError
from agentmem_core.query import MemoryFilter, NumRange, TagIn, render_query
from agentmem_core.schema import STORED_FIELDS, F, IndexSpec, decode_memory, decode_values, format_number
from agentmem_core.scoring import composite, recency, similarity_from_distance
from agentmem_core.types import Memory

TAG_VALUE = re.compile(r"^[a-z0-9_]+$")


@pytest.mark.parametrize(
    "value",
    ["abc", "ABC", "a|b", "x}y", "*", "=>[KNN 10]", "@f:{x}", "é", " ", "a b", "_none_", "-1", "a" * 40],
)
def test_encode_tag_is_portable_and_injective(value: str) -> None:
    token = encode_tag(value)
    assert TAG_VALUE.match(token)
    assert token != NONE_TAG
    assert encode_tag(value) == token
    # case-variants must not collide (RediSearch folds case of tag values)
    if value.lower() != value:
        assert encode_tag(value.lower()) != token


def test_short_lowercase_values_stay_readable() -> None:
    assert encode_tag("travel") == "travel"
    assert encode_tag("travel_x").startswith("_")


def test_namespace_tokens_are_prefixes() -> None:
    a = namespace_tokens(("a", "b"))
    assert a[0] == namespace_tokens(("a",))[0]
    assert namespace_tokens(("ab",))[0] != a[0]
    assert namespace_tokens(("a*",))[0] != a[0]


def test_memoised_encodings_keep_the_stored_format() -> None:
    # Scope tags, tag tokens and namespace tokens are part of stored keys and fields: memoising them
    # must not change a single byte (known answers recomputed here from the documented formula).
    import hashlib
    import json

    def canonical(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    for _ in range(2):  # the second round is served from the caches
        scope = ScopeKey(("trips", "Été"), "t-1", None, "Ana")
        descriptor = {"namespace": ["trips", "Été"], "thread_id": "t-1", "agent_id": None, "user_id": "Ana"}
        expected = hashlib.blake2b(canonical(descriptor).encode(), digest_size=8).hexdigest()
        assert scope.tag == expected
        assert encode_tag("Ana") == "_" + hashlib.blake2b(b"Ana", digest_size=16).hexdigest()
        tokens = namespace_tokens(("trips", "Été"))
        assert tokens == [encode_tag(canonical(["trips"])), encode_tag(canonical(["trips", "Été"]))]
        tokens.append("mutated")  # callers get their own list, never the cached value
    assert ScopeKey((), "t-1", None, None).tag != ScopeKey((), None, "t-1", None).tag


def test_prepared_fields_and_write_arguments_keep_their_stored_text() -> None:
    # prepare formats each timestamp once and encodes lists with one shared JSON encoder; the WRITE call
    # reuses those texts. Known answers from json.dumps and format_number: not one stored byte may change.
    import json

    from agentmem_core._context import Context
    from agentmem_core._flows_write import write_op
    from agentmem_core._records import MemoryInput, prepare
    from agentmem_core.backends.valkey import ValkeyOps
    from agentmem_core.engine import EngineInfo

    keys = Keys("kf")
    config = StoreConfig(name="kf", index=IndexConfig(dims=4))
    ctx = Context(keys, IndexSpec(keys, config.index), config, EngineInfo("redisearch", (2, 10, 5)), 1000.25)
    tags, namespace = ["Été", 'say "hi"', "b"], ("trips", "Été")
    for ttl, expires in ((None, None), (60.5, 1060.75)):
        item = prepare(MemoryInput("x", tags=tags, namespace=namespace, created_at=12.5, ttl=ttl), config,
                       ctx.now)  # fmt: skip
        fields = item.fields
        assert fields[F.TAGS] == json.dumps(tags, ensure_ascii=False) == '["Été", "say \\"hi\\"", "b"]'
        assert fields[F.NAMESPACE] == json.dumps(list(namespace), ensure_ascii=False)
        assert fields[F.CREATED_AT] == fields[F.X_CREATED_AT] == format_number(12.5) == "12.5"
        assert fields[F.UPDATED_AT] == format_number(1000.25)
        never_or_expiry = format_number(expires if expires is not None else 10_000_000_000_000)
        assert fields[F.EXPIRES_AT] == fields[F.X_EXPIRES_AT] == never_or_expiry
        valkey = ValkeyOps(keys, ctx.spec, ctx.engine, 1000)
        (call,) = valkey.commands(write_op(item, [b"\0" * 16]))
        args = call.args
        assert args[:8] == ("1000.25", item.id, "12.5", item.ttl_ms,
                            "0" if expires is None else "1060.75", "semantic", "0.5",
                            "||" if ttl is None else "60.5||")  # fmt: skip
        assert args[8:10] == (0, b"")  # no vectors after the first
        # created_at and x_created_at lead (the script may keep a replaced memory's time in their place)
        assert args[10:14] == (F.CREATED_AT, "12.5", F.X_CREATED_AT, "12.5")
        assert sorted(args[10:-2:2]) == sorted(fields) and args[-2:] == (F.EMBEDDING, b"\0" * 16)
        (many,) = valkey.commands(write_op(item, [b"\1" * 16, b"\2" * 16, b"\3" * 16]))
        several = many.args
        assert several[8:10] == (2, b"\2" * 16 + b"\3" * 16) and several[-2:] == (F.EMBEDDING, b"\1" * 16)
    untagged = prepare(MemoryInput("x"), config, ctx.now).fields
    assert untagged[F.TAGS] == untagged[F.NAMESPACE] == "[]"


def test_ids_and_keys_roundtrip() -> None:
    keys = Keys("s1")
    scope = ScopeKey(("x",), "t", None, "u")
    memory_id = scope.tag + "0123456789abcdef"
    key = keys.memory(memory_id)
    assert key == f"am:s1:m:{{{scope.tag}}}0123456789abcdef"
    assert keys.id_from_memory_key(key) == memory_id
    assert keys.stats(memory_id).startswith("am:s1:s:{")
    with pytest.raises(InvalidMemoryError):
        parse_id("not-an-id")


def test_filter_renders_portable_query() -> None:
    flt = MemoryFilter.build(user_id="Ana*", tags=["x|y", "z"], kinds=["episodic"], created_after=10.5)
    text = render_query(flt.leaves(now=100.0), max_leaves=8)
    assert text.startswith("(") and text.endswith(")")
    assert "*" not in text.replace("-inf", "").replace("+inf", "")
    assert "=>" not in text
    assert "@x_expires_at:[(100 +inf]" in text
    assert "@x_created_at:[10.5 (+inf]" not in text  # hi is unbounded, never "(+inf"
    assert "@kind:{episodic}" in text


def test_query_budget() -> None:
    leaves = [TagIn("f", (str(i),)) for i in range(9)]
    with pytest.raises(QueryTooComplexError):
        render_query(leaves, max_leaves=8)
    assert render_query([], max_leaves=8) == "*"


def test_numrange_never_scientific() -> None:
    assert NumRange("n", lo=1e-7, hi=1e12).render() == "@n:[0 1000000000000]"
    assert format_number(1795303546.736039) == "1795303546.736039"
    assert NumRange("n", lo=5, hi=1).is_empty()


def test_metadata_filter_semantics() -> None:
    flt = MemoryFilter.build(metadata={"a": 1, "b": {"$gt": 2}, "c": {"$ne": "x"}})
    pushed = [c for c in flt.metadata if c.pushable()]
    assert {c.key for c in pushed} == {"a", "c"}
    (cond,) = flt.client_conditions
    assert cond.matches({"b": 3}) and not cond.matches({"b": 2}) and not cond.matches({})
    with pytest.raises(InvalidMemoryError):
        MemoryFilter.build(metadata={"a": {"$regex": "x"}})


def test_scoring() -> None:
    assert similarity_from_distance(0.0) == 1.0
    assert similarity_from_distance(2.0) == 0.0
    assert recency(now=100.0, last_accessed_at=100.0, half_life_seconds=10) == 1.0
    assert math.isclose(recency(now=110.0, last_accessed_at=100.0, half_life_seconds=10), 0.5)
    assert math.isclose(recency(now=120.0, last_accessed_at=100.0, half_life_seconds=10), 0.25)
    cfg = ScoringConfig(ScoringWeights(0.6, 0.25, 0.15), 7 * DAY)
    assert math.isclose(composite(1.0, 1.0, 1.0, cfg), 1.0)
    assert math.isclose(composite(0.5, 0.0, 0.0, cfg), 0.3)
    defaults = ScoringConfig()
    assert defaults.weights.similarity > 10 * defaults.weights.recency


def test_config_validation() -> None:
    with pytest.raises(ConfigurationError):
        StoreConfig(name="bad name", index=IndexConfig(dims=4))
    with pytest.raises(ConfigurationError):
        IndexConfig(dims=40000)
    with pytest.raises(ConfigurationError):
        ScoringWeights(-1, 0, 0)
    with pytest.raises(ConfigurationError):
        StoreConfig(name="ok", index=IndexConfig(dims=4), threshold=3.0)


def test_create_command_is_portable_subset() -> None:
    spec = IndexSpec(Keys("s"), IndexConfig(dims=384))
    cmd = spec.create_command()
    assert cmd[:7] == ("FT.CREATE", "am_s_v2", "ON", "HASH", "PREFIX", 1, "am:s:m:")
    text = " ".join(map(str, cmd))
    for banned in ("SORTABLE", "TEXT", "NOINDEX", "JSON", "CASESENSITIVE", "{", "}"):
        assert banned not in text
    assert text.count("SEPARATOR |") == text.count(" TAG ")
    vec = cmd.index("VECTOR")
    n = cmd[vec + 2]
    assert isinstance(n, int) and cmd[vec + 3 + n] in ("kind",)


def test_parse_search_sorts_and_skips_nil_rows() -> None:
    keys = Keys("s1")
    one, two, three = ("a" * 16 + f"{n:016x}" for n in (1, 2, 3))
    reply = [
        5,
        keys.memory(two).encode(),
        [b"am_distance", b"0.5", b"content", b"b"],
        keys.memory(one).encode(),
        [b"am_distance", b"0.1"],
        keys.memory(three).encode(),
        None,
        (keys.memory(two) + ":1").encode(),  # its second vector: closer, so the row is that one
        [b"am_distance", b"0.3"],
        (keys.memory(one) + ":2").encode(),  # farther than its first: ignored
        [b"am_distance", b"0.9"],
    ]
    rows = parse_search(reply, len(keys.memory_prefix))
    assert [(r.id, r.distance) for r in rows] == [(one, 0.1), (two, 0.3)]
    with pytest.raises(Exception, match="FT.SEARCH failed"):
        parse_search(b"Request timed out", 8)


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "str"])
def test_decode_memory_equals_the_dataclass_built_the_slow_way(as_bytes: bool) -> None:
    """decode_memory skips Memory.__init__ for speed; the result must be the same value, every field set."""
    raw = {
        F.CONTENT: "Prefers window seats", F.KIND: "episodic", F.IMPORTANCE: "0.7",
        F.CREATED_AT: "100.5", F.UPDATED_AT: "", F.EXPIRES_AT: "900", F.NAMESPACE: '["a", "b"]',
        F.THREAD_ID: "t", F.AGENT_ID: "", F.USER_ID: "ana", F.SOURCE: "", F.TAGS: '["x"]',
        F.METADATA: '{"n": 1}', F.KEY: "",
    }  # fmt: skip
    fields = {k: v.encode() if as_bytes else v for k, v in raw.items()}
    memory = decode_memory("0123456789abcdef0123456789abcdef", fields, (b"3", b"200.25", None))
    expected = Memory(
        id="0123456789abcdef0123456789abcdef", content="Prefers window seats", kind=Kind.EPISODIC,
        importance=0.7, tags=("x",), namespace=("a", "b"), thread_id="t", agent_id=None, user_id="ana",
        source=None, key=None, metadata={"n": 1}, created_at=100.5, updated_at=100.5, expires_at=900.0,
        access_count=3, last_accessed_at=200.25, duplicate_count=0,
    )  # fmt: skip
    assert memory == expected
    assert set(vars(memory)) == {f.name for f in dataclasses.fields(Memory)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        memory.content = "changed"  # type: ignore[misc]
    empty = decode_memory("0123456789abcdef0123456789abcdef", {F.CREATED_AT: b"1"}, None)
    assert (empty.kind, empty.tags, empty.metadata, empty.expires_at) == (Kind.SEMANTIC, (), {}, None)
    with pytest.raises(BackendError):
        decode_memory("0123456789abcdef0123456789abcdef", {F.KIND: b"no-such-kind"}, None)


def test_decode_values_reads_the_stored_fields_by_position() -> None:
    """decode_values (what reads by field list use) equals decode_memory by name, field for field."""
    raw = {
        F.CONTENT: b"Prefers aisle seats", F.KIND: b"procedural", F.IMPORTANCE: b"0.2",
        F.CREATED_AT: b"10", F.UPDATED_AT: b"12", F.EXPIRES_AT: b"", F.NAMESPACE: b'["n"]',
        F.THREAD_ID: None, F.AGENT_ID: b"bot", F.USER_ID: None, F.SOURCE: b"planner", F.TAGS: b'["a", "b"]',
        F.METADATA: b'{"status": "active"}', F.KEY: b"seat", F.OPT: b"7|60|n|caller-id", F.FACT: None,
    }  # fmt: skip
    values = [raw[name] for name in STORED_FIELDS]
    by_name = decode_memory("0123456789abcdef0123456789abcdef", raw, None)
    by_position = decode_values("0123456789abcdef0123456789abcdef", [*values, b"vector", b""], None)
    assert by_position == by_name
    assert (by_position.id, by_position.kind, by_position.agent_id, by_position.source, by_position.key) == (
        "caller-id", Kind.PROCEDURAL, "bot", "planner", "seat",
    )
    assert (by_position.sequence, by_position.ttl, by_position.embedded, by_position.updated_at) == (
        7, 60.0, False, 12.0,
    )
    assert set(vars(by_position)) == {f.name for f in dataclasses.fields(Memory)}
    with pytest.raises(BackendError):  # a reply that is not a whole memory
        decode_values("0123456789abcdef0123456789abcdef", values[:-1], None)


def test_parse_vector_dim_both_layouts() -> None:
    redisearch = [b"attributes", [[b"identifier", b"v", b"type", b"VECTOR", b"dim", 4]]]
    valkey_search = ["attributes", [["identifier", "v", "type", "VECTOR", "index", ["dimensions", "8"]]]]
    assert parse_vector_dim(redisearch) == 4
    assert parse_vector_dim(valkey_search) == 8


def test_parse_vector_algorithm_both_layouts() -> None:
    # RediSearch 2.10 lists it flat; valkey-search nests it: index [... algorithm [name HNSW m 16 ...]]
    vector = [b"identifier", b"v", b"type", b"VECTOR", b"algorithm", b"FLAT", b"dim", 4]
    redisearch = [b"attributes", [[b"identifier", b"t", b"type", b"TAG"], vector]]
    valkey_search = ["attributes", [["identifier", "v", "type", "VECTOR", "index",
                                     ["capacity", 10, "dimensions", "8", "algorithm",
                                      ["name", "HNSW", "m", 16, "ef_construction", 200]]]]]
    assert parse_vector_algorithm(redisearch) == "FLAT"
    assert parse_vector_algorithm(valkey_search) == "HNSW"
    # an engine that does not say: not known (setup then does not check it)
    unsaid = [b"identifier", b"v", b"type", b"VECTOR", b"dim", 4]
    assert parse_vector_algorithm([b"attributes", [unsaid]]) is None
    assert parse_vector_algorithm([b"attributes", [[b"identifier", b"a", b"type", b"TAG",
                                                    b"algorithm", b"HNSW"]]]) is None  # not a vector field


def test_engine_detection() -> None:
    rs = detect_engine([[b"name", b"search", b"ver", 21005]], [[b"TIMEOUT", b"500"]])
    assert rs.kind == "redisearch" and rs.version == (2, 10, 5) and rs.full_text
    vs10 = detect_engine([[b"name", b"search", b"ver", 10003]], Exception("unknown command"))
    assert vs10.kind == "valkey-search" and vs10.version == (1, 0, 3) and vs10.max_leaves == 8
    vs12 = detect_engine([[b"name", b"search", b"ver", 66049]], Exception("unknown command"))
    assert vs12.version == (1, 2, 1) and vs12.full_text
    assert detect_engine([], None).kind == "unknown"


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, agentmem_core, agentmem_core.store, agentmem_core.aio, agentmem_core.embeddings;"
        "bad=[m for m in sys.modules if m.split('.')[0] in "
        "('langchain','langchain_core','langgraph','crewai','llama_index','openai','torch','sentence_transformers')];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"agentmem_core imported frameworks: {result.stdout} {result.stderr}"


def test_public_exports_are_pinned() -> None:
    import agentmem_core

    assert sorted(agentmem_core.__all__) == sorted(
        [
            "DAY", "AgentMemError", "AsyncMemoryStore", "AuditEntry", "BackendConnectionError",
            "BackendError", "ConfigurationError", "ConsolidationResult", "DimensionMismatchError",
            "EmbeddingError", "EngineInfo", "FactsResult", "ImportResult", "ModelError",
            "IndexConfig",
            "IndexNotFoundError", "InvalidMemoryError", "InvalidVectorError", "Kind", "Memory",
            "MemoryFilter", "MemoryInput", "MemoryStore", "NearMiss", "NotFoundError", "Page",
            "QueryTooComplexError",
            "RecallHit", "RecallResult", "SchemaMismatchError", "ScopeKey", "ScopeStats", "ScoreBreakdown",
            "ScoringConfig", "ScoringWeights", "SearchModuleUnavailableError", "Stats", "StoreConfig",
            "BackendAuthError", "BackendBusyError", "BackendTimeoutError", "RetryPolicy",
            "WriteOutcomeUnknownError", "Health", "RedactionError",
        ]
    )  # fmt: skip
    for name in agentmem_core.__all__:
        assert getattr(agentmem_core, name) is not None


def test_server_errors_are_typed_as_valkey_py_parses_them() -> None:
    from valkey._parsers.base import BaseParser

    from agentmem_core.errors import BackendAuthError, BackendBusyError, translate_backend_error

    parser = BaseParser.__new__(BaseParser)  # parse_error needs no connection
    busy = [
        "READONLY You can't write against a read only replica.",
        "LOADING Valkey is loading the dataset in memory",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MASTERDOWN Link with MASTER is down",
        "BUSY Valkey is busy running a script.",
    ]
    for text in busy:
        error = translate_backend_error(parser.parse_error(text))
        assert isinstance(error, BackendBusyError) and error.retryable, text
    refused = [
        "NOPERM User u has no permissions to run the 'hset' command",
        "ERR Error running script (call to f_1): @user_script:1: ACL failure in script: User u has no "
        "permissions to run the 'hincrby' command",
    ]
    for text in refused:
        error = translate_backend_error(parser.parse_error(text))
        assert isinstance(error, BackendAuthError) and not error.retryable, text
