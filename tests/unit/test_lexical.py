"""The lexical channel's pure pieces: analysis, BM25, the write-side fields and the setup decision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmem_core._base import with_neighbour_context
from agentmem_core._encoding import Keys
from agentmem_core._flows_admin import setup_flow
from agentmem_core._lexical import (
    CONTEXT_ONLY_WEIGHT,
    CONTEXT_WEIGHT,
    MAX_TERMS,
    analyze,
    bm25_scores,
    context_terms,
    encode_lex,
    lex_doc,
    query_terms,
)
from agentmem_core._records import MemoryInput, prepare
from agentmem_core._stem import stem
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.schema import F, IndexSpec


def test_analyze_lowercases_drops_stopwords_and_stems() -> None:
    assert analyze("I LOVED hiking in the Alps, and hikes!") == ["love", "hike", "alp", "hike"]
    assert analyze("What did she do?") == []


def test_stemmer_agrees_on_inflections() -> None:
    assert stem("running") == stem("runs") == "run"
    assert stem("connections") == stem("connected") == "connect"
    assert stem("2023") == "2023" and stem("x_y") == "x_y"  # non-alphabetic tokens are kept


@given(st.text())
def test_terms_are_portable_tag_values(text: str) -> None:
    for term in analyze(text):
        assert term and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in term)
        assert len(term) <= 40


def test_query_terms_are_distinct_and_bounded() -> None:
    assert query_terms("hike hiking hikes alps") == ["hike", "alp"]
    many = " ".join(f"word{i}" for i in range(100))
    assert len(query_terms(many)) == MAX_TERMS


def test_bm25_matches_the_bm25std_formula() -> None:
    q = {"pasta", "rome"}
    docs = {"a": lex_doc("pasta pasta rome", q), "b": lex_doc("rome", q), "c": lex_doc("paris", q)}
    scores = bm25_scores(["pasta", "rome"], docs, {"pasta": 1, "rome": 2}, n_docs=3, avgdl=5 / 3)

    def term(tf: int, dl: int, n: int) -> float:
        idf = math.log(1 + (3 - n + 0.5) / (n + 0.5))
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / (5 / 3)))

    assert scores["a"] == pytest.approx(term(2, 3, 1) + term(1, 3, 2))
    assert scores["b"] == pytest.approx(term(1, 1, 2))
    assert "c" not in scores  # no query term: not a lexical candidate
    assert scores["a"] > scores["b"]


def test_bm25_survives_counts_taken_at_different_moments() -> None:
    # a write between the count queries can make a term's df exceed the filter's size
    scores = bm25_scores(["x"], {"a": ({"x": 1.0}, 1.0)}, {"x": 5}, n_docs=3, avgdl=1.0)
    assert scores["a"] > 0
    assert bm25_scores(["x"], {"a": ({"x": 1.0}, 1.0)}, {"x": 0}, n_docs=3, avgdl=1.0) == {}


def test_context_terms_count_at_their_weight_in_tf_and_length() -> None:
    lex = encode_lex(["yes", "twice"], ["kyoto", "kyoto", "yes"])
    assert lex == "yes twice | kyoto kyoto yes"
    assert context_terms(lex) == ["kyoto", "kyoto", "yes"] and context_terms("yes twice") == []
    weights, length = lex_doc(lex, {"yes", "twice", "kyoto", "paris"})
    assert weights == {"yes": 1 + CONTEXT_WEIGHT, "twice": 1.0, "kyoto": 2 * CONTEXT_WEIGHT}
    assert length == 2 + 3 * CONTEXT_WEIGHT
    assert encode_lex(["a", "b"]) == "a b" and lex_doc("a b a", {"a", "b"}) == ({"a": 2.0, "b": 1.0}, 3.0)
    # the lab's definition (benchmarks/locomo.py _WeightedLexicalIndex): tf and length both weighted;
    # a memory whose own content holds no query term has its context terms at CONTEXT_ONLY_WEIGHT
    assert lex_doc(lex, {"kyoto"}) == ({"kyoto": 2 * CONTEXT_ONLY_WEIGHT}, 2 + 3 * CONTEXT_WEIGHT)
    supported = ({"twice": 1.0, "kyoto": 2 * CONTEXT_WEIGHT}, 2 + 3 * CONTEXT_WEIGHT)
    assert lex_doc(lex, {"kyoto", "twice"}) == supported
    avgdl = 2.0
    for query, tf in (({"kyoto", "twice"}, 2 * CONTEXT_WEIGHT), ({"kyoto"}, 2 * CONTEXT_ONLY_WEIGHT)):
        docs = {"d": lex_doc(lex, query)}
        score = bm25_scores(["kyoto"], docs, {"kyoto": 1}, n_docs=4, avgdl=avgdl)["d"]
        idf = math.log(1 + (4 - 1 + 0.5) / 1.5)
        dl = 2 + 3 * CONTEXT_WEIGHT
        assert score == pytest.approx(idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl)))


def test_prepare_indexes_context_terms_after_the_content() -> None:
    config = StoreConfig("s", IndexConfig(8))
    item = prepare(MemoryInput(content="Yes, twice!", context="Been to Kyoto? Twice?"), config, 1.0)
    assert item.fields[F.X_TERMS] == "ye|twice|kyoto"
    assert item.fields[F.LEX] == "ye twice | kyoto twice"
    assert item.fields[F.CONTENT] == "Yes, twice!"
    only_context = prepare(MemoryInput(content="!!", context="Kyoto"), config, 1.0)
    assert only_context.fields[F.LEX] == "| kyoto"
    assert lex_doc(only_context.fields[F.LEX], {"kyoto"}) == ({"kyoto": CONTEXT_ONLY_WEIGHT}, CONTEXT_WEIGHT)


def test_neighbour_context_is_the_previous_items_of_the_same_scope() -> None:
    items = [
        MemoryInput("one", namespace="a"),
        MemoryInput("two", namespace="b"),
        MemoryInput("three", namespace="a"),
        MemoryInput("four", namespace="a", context="given"),
        MemoryInput("five", namespace="a"),
        MemoryInput("hidden", namespace="a", embed=False),
        MemoryInput("six", namespace="a"),
    ]
    contexts = [i.context for i in with_neighbour_context(items, 2)]
    assert contexts == [None, None, "one", "given", "three\nfour", None, "four\nfive"]
    assert [i.context for i in with_neighbour_context(items, 0)] == [i.context for i in items]


def test_prepare_writes_terms_and_sequence() -> None:
    item = prepare(
        MemoryInput(content="Prefers window seats on long flights"), StoreConfig("s", IndexConfig(8)), 1.0
    )
    assert item.fields[F.X_TERMS] == "prefer|window|seat|long|flight"
    assert item.fields[F.LEX] == "prefer window seat long flight"
    only_stopwords = prepare(MemoryInput(content="it is what it is"), StoreConfig("s", IndexConfig(8)), 1.0)
    assert F.X_TERMS not in only_stopwords.fields and F.LEX not in only_stopwords.fields  # no empty TAG


def test_index_has_the_term_tag_field() -> None:
    spec = IndexSpec(Keys("s"), IndexConfig(8))
    cmd = list(spec.create_command())
    at = cmd.index(F.X_TERMS)
    assert cmd[at : at + 4] == [F.X_TERMS, "TAG", "SEPARATOR", "|"]


@pytest.mark.parametrize(
    ("module", "lexical"),
    [
        pytest.param([b"name", b"search", b"ver", 21005], True, id="redisearch-2.10"),
        pytest.param([b"name", b"search", b"ver", 65792], True, id="valkey-search-1.1"),
        pytest.param([b"name", b"search", b"ver", 10003], False, id="valkey-search-1.0"),
    ],
)
def test_hybrid_needs_filter_only_queries(module: list[object], lexical: bool) -> None:
    flow = setup_flow(IndexSpec(Keys("s"), IndexConfig(8)), hybrid=True)
    next(flow)
    ft_config = [[b"TIMEOUT", b"500"]] if module[3] == 21005 else Exception("unknown command")
    flow.send([[], [module], ft_config])  # FT._LIST, MODULE LIST, FT.CONFIG -> FT.CREATE
    with pytest.raises(StopIteration) as done:
        flow.send([b"OK"])  # FT.CREATE -> SCRIPT LOAD
        flow.send([b"sha"] * 16)  # -> does the scope index exist / does the registry hold scopes
        flow.send([1, 0])
    assert done.value.value.lexical is lexical


def test_common_terms_are_the_ones_counted_above_the_pool_and_the_cache_is_bounded() -> None:
    from agentmem_core._context import CommonTerms

    terms = CommonTerms(size=3)
    terms.counted(("u1",), [("rain", 51), ("hail", 50), ("fog", 2)])
    assert terms.common(("u1",), ["rain", "hail", "fog", "snow"], 50) == {"rain"}
    assert terms.common(("u1",), ["rain", "hail"], 20) == {"rain", "hail"}
    assert terms.common(("u2",), ["rain"], 20) == frozenset()  # per selection
    terms.counted(("u1",), [("rain", 3)])  # counted again: rare now
    assert terms.common(("u1",), ["rain"], 20) == frozenset()
    small = CommonTerms(size=2)
    small.counted(("u1",), [("a", 99), ("b", 99)])
    assert small.common(("u1",), ["a"], 20) == {"a"}  # used: b is now the least recent
    small.counted(("u1",), [("c", 99)])
    assert small.common(("u1",), ["a", "b", "c"], 20) == {"a", "c"}
