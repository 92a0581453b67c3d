"""Unit tests for the LoCoMo benchmark's data handling, metrics and lexical pieces (no network, no Valkey)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _locomo_data as data  # noqa: E402
import _retrieval_lab as lab  # noqa: E402

VALID = frozenset({"D1:1", "D1:2", "D8:6", "D9:17", "D11:26", "D30:5"})


def _norm(raw: list[str]) -> tuple[tuple[str, ...], data.EvidenceStats]:
    stats = data.EvidenceStats()
    return data.normalise_evidence(raw, VALID, stats), stats


def test_plain_ids_pass_through() -> None:
    ids, stats = _norm(["D1:1", "D1:2"])
    assert ids == ("D1:1", "D1:2")
    assert stats.raw_strings == 2
    assert stats.dropped_nonexistent == stats.dropped_unparseable == stats.multi_id_strings == 0


def test_multi_id_string_is_split() -> None:
    ids, stats = _norm(["D8:6; D9:17"])
    assert ids == ("D8:6", "D9:17")
    assert stats.multi_id_strings == 1
    assert stats.ids_from_splits == 2


def test_stray_colon_and_zero_padding_are_repaired() -> None:
    ids, stats = _norm(["D:11:26", "D30:05"])
    assert ids == ("D11:26", "D30:5")
    assert stats.repaired_stray_colon == 1
    assert stats.repaired_zero_padding == 1


def test_unparseable_and_nonexistent_are_dropped_and_counted() -> None:
    ids, stats = _norm(["D", "D10:19", "D1:1", "D1:1"])
    assert ids == ("D1:1",)
    assert stats.dropped_unparseable == 1
    assert stats.dropped_nonexistent == 1
    assert stats.dropped_duplicates == 1


def test_stats_merge_sums_counts() -> None:
    _, a = _norm(["D"])
    _, b = _norm(["D", "D8:6; D9:17"])
    a.merge(b)
    assert a.dropped_unparseable == 2
    assert a.multi_id_strings == 1


def test_parse_session_datetime() -> None:
    assert data.parse_session_datetime("1:56 pm on 8 May, 2023") == datetime(
        2023, 5, 8, 13, 56, tzinfo=timezone.utc
    )
    assert data.parse_session_datetime("10:37 am on 27  June, 2023").hour == 10


def test_recall_at_k_and_mrr() -> None:
    ranked = ["a", "b", "c", "d"]
    assert data.recall_at_k(ranked, ["a"], 1) == 1.0
    assert data.recall_at_k(ranked, ["c", "z"], 5) == 0.5
    assert data.recall_at_k(ranked, ["c"], 2) == 0.0
    assert data.reciprocal_rank(ranked, ["c", "d"]) == pytest.approx(1 / 3)
    assert data.reciprocal_rank(ranked, ["z"]) == 0.0
    assert data.reciprocal_rank(ranked, ["d"], depth=3) == 0.0
    with pytest.raises(ValueError):
        data.recall_at_k(ranked, [], 1)


def test_aggregate_means_per_category() -> None:
    q1 = data.Question("c", 0, "?", 1, ("a",))
    q2 = data.Question("c", 1, "?", 2, ("b",))
    rows = [(q1, data.score_question(["a"], ["a"])), (q2, data.score_question(["a"], ["b"]))]
    agg = data.aggregate(rows)
    assert agg["questions"] == 2
    assert agg["overall"]["r@1"] == 0.5
    assert agg["per_category"]["1"]["r@10"] == 1.0
    assert agg["per_category"]["2"]["mrr"] == 0.0


def test_load_conversation(tmp_path: Path) -> None:
    conv = {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a dog."},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Nice!", "blip_caption": "a photo of a dog"},
        ],
        "session_2_date_time": "9:00 am on 1 June, 2023",
        "session_2": [],
        "session_2_summary": "LLM-written; never read",
        "qa": [
            {"question": "What did Ann adopt?", "answer": "a dog", "evidence": ["D1:1; D1:2"], "category": 4},
            {"question": "Who?", "answer": "x", "evidence": ["D"], "category": 1},
            {"question": "Adv?", "adversarial_answer": "y", "evidence": ["D1:2"], "category": 5},
        ],
    }
    path = tmp_path / "99.json"
    path.write_text(json.dumps(conv))
    c = data.load_conversation(path)
    assert c.conv_id == "99"
    assert [m.content for m in c.memories] == ["Ann: I adopted a dog.", "Bob: Nice!"]
    assert c.memories[0].created_at == datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    assert c.last_session_at == c.memories[0].created_at  # session 2 has no turns
    assert [q.evidence for q in c.recall_questions] == [("D1:1", "D1:2")]
    assert len(c.adversarial_questions) == 1
    assert c.evidence_stats.questions_without_evidence == 1
    assert data.expand_paths([tmp_path]) == [path]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("hopping", "hop"),
        ("relational", "relat"),
        ("painting", "paint"),
        ("adjustment", "adjust"),
        ("generalizations", "gener"),
        ("sky", "sky"),
    ],
)
def test_porter_stemmer(word: str, stem: str) -> None:
    assert lab.PorterStemmer().stem(word) == stem


def test_tokenize_like_redisearch() -> None:
    assert lab.tokenize("Hey Mel! I'm so_happy, foo-bar.baz") == [
        "hey",
        "mel",
        "i",
        "m",
        "so_happy",
        "foo",
        "bar",
        "baz",
    ]
    an = lab.Analyzer(lab.ENGLISH_STOPWORDS, stem=True)
    assert an("When did Caroline go to the LGBTQ support groups?") == [
        "carolin",
        "go",
        "lgbtq",
        "support",
        "group",
    ]


def test_bm25std_matches_formula() -> None:
    docs = [["dog", "cat"], ["dog"], ["bird", "bird", "fish"]]
    idx = lab.LexicalIndex(docs, variant="bm25std", k1=1.2, b=0.75)
    import math

    avgdl = 2.0
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    expect0 = idf * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / avgdl))
    assert idx.scores(["dog"])[0] == pytest.approx(expect0)
    assert idx.scores(["dog", "dog"])[0] == pytest.approx(expect0)  # query terms de-duplicated
    assert idx.scores(["zebra"]).sum() == 0.0


def test_score_fusion_minmax() -> None:
    import numpy as np

    dense = np.array([0.9, 0.5, 0.1, 0.0])
    lexical = np.array([0.0, 4.0, 2.0, 0.0])
    fused = lab.score_fusion(dense, lexical, w_dense=0.5, pool=2)
    # dense pool {0, 1}: 1.0, 0.0; lexical pool {1, 2}: 1.0, 0.0; doc 3 is in neither pool
    assert fused[0] == pytest.approx(0.5)
    assert fused[1] == pytest.approx(0.5)
    assert fused[2] == pytest.approx(0.0)
    assert fused[3] == -np.inf
