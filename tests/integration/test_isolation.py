"""Scope isolation under adversarial input (property tests against the real Valkey + search module).

Scope ids, namespace labels, tags, sources and metadata are user data: whatever a user writes (query
syntax, tag separators, wildcards, look-alikes of the encoded tokens, case and Unicode-normalisation
variants, prefixes of each other) must never let one scope's memories come back from, be counted by, or
be deleted through another scope's recall / list / stats / forget_by_scope.

Every example runs on a fresh store name (its keys and index are dropped afterwards), so examples cannot
see each other's data.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core._encoding import NONE_TAG, encode_tag
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import InvalidMemoryError

pytestmark = pytest.mark.integration

DIMS = 64
QUERY = "where does the traveller like to sit"
TEXTS = ("prefers the window seat", "likes to sit near the aisle", "hates the middle seat")

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- adversarial values ---------------------------------------------------------------------------------
TRICKY: tuple[str, ...] = (
    "a", "A", "a*", "*a", "ab", "a b", "a\tb", "*", "**", "%", "a%", "|", "a|b", "a||b", "{", "}",
    "{a}", "a}|{b", "@", "@a:{b}", "@x_user:{a}", "=>", "=>[KNN 1 @embedding $vec]", "-", "-a", "~a",
    "!", "(", ")", "()", "(a|b)", "[", "]", "[0 1]", "$", "$vec", ":", ";", ",", ".", "/", "a/b",
    "a.b", '"', "'", '"a"', "\\", "\\\\", "a\\", "\\*", "\\|", "\x00", " ", "  ", "\t", "\n", "\r\n",
    " a", "a ", "_", "__", NONE_TAG, NONE_TAG.upper(), "none", "None", "null", "true", "0", "-0", "1e3",
    "_" + "0" * 32, "_" + "f" * 32, encode_tag("a b"), encode_tag("A"), "\u00e9", "e\u0301", "\u00df",
    "SS", "\ufb01", "\u0130", "\u202eabc", "\u200b", "\u200ba", "\u05e9\u05dc\u05d5\u05dd",
    "\u0645\u0631\u062d\u0628\u0627", "\U0001f600", "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1eb\U0001f1f7", "\u4e2d\u6587", "a" * 32, "a" * 33, "ABC123", "abc123",
)  # fmt: skip

_unicode_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
values: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(TRICKY),
    _unicode_text,
    st.lists(st.sampled_from(TRICKY), min_size=2, max_size=3).map("".join),
)


def _variants(a: str) -> list[str]:
    """Values that are *almost* ``a``: the ones an encoding or a query parser could conflate with it."""
    out = [
        a.upper(), a.lower(), a.swapcase(), a.casefold(), a + "*", "*" + a, a + "b", a[:-1], a[1:],
        a + " ", " " + a, a.strip(), a + "\u0301", unicodedata.normalize("NFD", a),
        unicodedata.normalize("NFC", a), unicodedata.normalize("NFKC", a), a + "|" + a, "{" + a + "}",
        a + "\x00", encode_tag(a), encode_tag(a)[1:], NONE_TAG,
    ]  # fmt: skip
    return [v for v in out if v]


def _pair(a: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(st.just(a), st.sampled_from(_variants(a)))


pairs: st.SearchStrategy[tuple[str, str]] = st.one_of(
    st.tuples(values, values), values.flatmap(_pair)
).flatmap(lambda p: st.sampled_from([p, (p[1], p[0])]))
"""Two (usually distinct) non-empty values: unrelated, or one a near-variant of the other."""


# -- helpers --------------------------------------------------------------------------------------------
def _drop(client: Any, store_name: str, index: str) -> None:
    try:
        client.execute_command("FT.DROPINDEX", index)
    except Exception:  # noqa: BLE001 - cleanup only; the index may not exist
        pass
    keys = list(client.scan_iter(match=f"am:{store_name}:*", count=1000))
    if keys:
        client.unlink(*keys)


@contextmanager
def fresh_store(url: str, **options: Any) -> Iterator[MemoryStore]:
    """A set-up store on a name nobody else uses; its keys and index are removed afterwards."""
    name = "iso" + uuid.uuid4().hex[:16]
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS), **options)
    store.setup()
    try:
        yield store
    finally:
        _drop(store.client, name, store.keys.index)
        store.close()


@asynccontextmanager
async def fresh_astore(url: str) -> AsyncIterator[AsyncMemoryStore]:
    """Async twin of :func:`fresh_store`."""
    name = "iso" + uuid.uuid4().hex[:16]
    store = AsyncMemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS))
    await store.setup()
    try:
        yield store
    finally:
        try:
            await store.client.execute_command("FT.DROPINDEX", store.keys.index)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        keys = [k async for k in store.client.scan_iter(match=f"am:{name}:*", count=1000)]
        if keys:
            await store.client.unlink(*keys)
        await store.close()


def recalled(store: MemoryStore, **filters: Any) -> set[str]:
    """Ids a recall returns (k large enough for everything a test writes)."""
    return {h.memory.id for h in store.recall(QUERY, k=50, **filters)}


def listed(store: MemoryStore, **filters: Any) -> set[str]:
    page = store.list(limit=100, **filters)
    assert page.next_cursor is None
    return {m.id for m in page.memories}


def present(store: MemoryStore, ids: Sequence[str]) -> set[str]:
    return {m.id for m in store.get_many(list(ids)) if m is not None}


def store_keys(store: MemoryStore) -> dict[bytes, bytes | None]:
    """Every key of the store with its DUMP (to prove that nothing at all was written)."""
    return {
        k: store.client.dump(k) for k in store.client.scan_iter(match=f"{store.keys.prefix}*", count=1000)
    }


# -- thread / agent / user ------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["thread_id", "agent_id", "user_id"])
@PROPERTY
@given(pair=pairs)
def test_scope_ids_isolate_recall_list_stats_and_forget(
    valkey_url: str, field: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    assume(a != b)
    with fresh_store(valkey_url) as store:
        a_ids = store.remember_many([{"content": TEXTS[0], field: a}, {"content": TEXTS[1], field: a}])
        b_ids = [store.remember(TEXTS[0], **{field: b})]
        other = store.remember(TEXTS[2])  # unscoped on this field
        assert len({*a_ids, *b_ids, other}) == 4

        assert recalled(store, **{field: a}) == set(a_ids)
        assert recalled(store, **{field: b}) == set(b_ids)
        assert listed(store, **{field: a}) == set(a_ids)
        assert listed(store, **{field: b}) == set(b_ids)
        assert [getattr(m, field) for m in store.list(**{field: a}).memories] == [a, a]
        assert store.stats(**{field: a}).total == 2
        assert store.stats(**{field: b}).total == 1
        assert store.stats().total == 4

        assert store.forget_by_scope(**{field: b}) == 1
        assert present(store, [*a_ids, *b_ids, other]) == {*a_ids, other}
        assert recalled(store, **{field: a}) == set(a_ids)
        assert recalled(store, **{field: b}) == set()
        assert store.stats(**{field: a}).total == 2
        assert store.stats().total == 3

        assert store.forget_by_scope(**{field: a}) == 2
        assert present(store, [*a_ids, other]) == {other}


@PROPERTY
@given(pair=pairs, third=values)
def test_combined_scope_fields_isolate(valkey_url: str, pair: tuple[str, str], third: str) -> None:
    """The same value in different scope fields, and combinations of fields, never mix."""
    a, b = pair
    assume(a != b)
    with fresh_store(valkey_url) as store:
        both = store.remember(TEXTS[0], user_id=a, thread_id=b, agent_id=third)
        swapped = store.remember(TEXTS[0], user_id=b, thread_id=a, agent_id=third)
        user_only = store.remember(TEXTS[1], user_id=a)
        thread_only = store.remember(TEXTS[1], thread_id=a)

        assert recalled(store, user_id=a) == {both, user_only}
        assert recalled(store, thread_id=a) == {swapped, thread_only}
        assert recalled(store, user_id=a, thread_id=b) == {both}
        assert recalled(store, user_id=a, thread_id=b, agent_id=third) == {both}
        assert recalled(store, user_id=b, thread_id=b) == set()
        assert listed(store, user_id=a, thread_id=b) == {both}
        assert store.stats(user_id=a).total == 2

        assert store.forget_by_scope(user_id=a, thread_id=b) == 1
        assert present(store, [both, swapped, user_only, thread_only]) == {swapped, user_only, thread_only}


# -- source / tags / metadata ---------------------------------------------------------------------------
@PROPERTY
@given(pair=pairs)
def test_source_tags_and_metadata_values_isolate(valkey_url: str, pair: tuple[str, str]) -> None:
    a, b = pair
    assume(a != b and "common" not in (a, b))
    with fresh_store(valkey_url) as store:
        scope = {"user_id": "u1"}
        src_a = store.remember(TEXTS[0], source=a, **scope)
        src_b = store.remember(TEXTS[0], source=b, **scope)
        tag_a = store.remember(TEXTS[1], tags=[a, "common"], **scope)
        tag_b = store.remember(TEXTS[1], tags=[b, "common"], **scope)
        meta_a = store.remember(TEXTS[2], metadata={"k": a}, **scope)
        meta_b = store.remember(TEXTS[2], metadata={"k": b}, **scope)
        key_a = store.remember(TEXTS[2], metadata={a: 1}, **scope)
        key_b = store.remember(TEXTS[2], metadata={b: 1}, **scope)
        everything = {src_a, src_b, tag_a, tag_b, meta_a, meta_b, key_a, key_b}
        assert len(everything) == 8

        assert recalled(store, source=a) == {src_a}
        assert recalled(store, source=b) == {src_b}
        assert recalled(store, tags=[a]) == {tag_a}
        assert recalled(store, tags=[b]) == {tag_b}
        assert recalled(store, tags=[a, b]) == {tag_a, tag_b}
        assert recalled(store, tags=["common"]) == {tag_a, tag_b}
        assert recalled(store, metadata={"k": a}) == {meta_a}
        assert recalled(store, metadata={"k": {"$eq": b}}) == {meta_b}
        assert recalled(store, metadata={"k": {"$ne": a}}) == everything - {meta_a}
        assert recalled(store, metadata={a: 1}) == {key_a}
        assert recalled(store, metadata={b: 1}) == {key_b}
        assert listed(store, source=a) == {src_a}
        assert listed(store, tags=[b]) == {tag_b}
        assert listed(store, metadata={"k": a}) == {meta_a}
        assert listed(store, metadata={b: 1}) == {key_b}
        assert [m.tags for m in store.list(tags=[a]).memories] == [(a, "common")]
        assert [m.source for m in store.list(source=b).memories] == [b]

        assert store.forget_by_scope(tags=[b], **scope) == 1
        assert store.forget_by_scope(source=b) == 1
        assert store.forget_by_scope(metadata={"k": b}) == 1
        assert store.forget_by_scope(metadata={b: 1}) == 1
        survivors = {src_a, tag_a, meta_a, key_a}
        assert present(store, sorted(everything)) == survivors
        assert listed(store, **scope) == survivors
        assert store.stats(**scope).total == 4


# -- namespaces -----------------------------------------------------------------------------------------
@PROPERTY
@given(pair=pairs)
def test_namespace_exact_and_prefix_semantics(valkey_url: str, pair: tuple[str, str]) -> None:
    a, b = pair
    assume(a != b)
    paths = [(a,), (a, b), (a, b, a), (a + b,), (a + "*",), (b,), (b, a), ("x", a), ()]
    with fresh_store(valkey_url) as store:
        ids = store.remember_many([{"content": TEXTS[n % 3], "namespace": p} for n, p in enumerate(paths)])
        by_id = dict(zip(ids, paths))
        assert [m.namespace for m in store.get_many(ids)] == paths  # type: ignore[union-attr]

        def expected(prefix: tuple[str, ...]) -> set[str]:
            return {i for i, p in by_id.items() if p[: len(prefix)] == prefix}

        def exact(path: tuple[str, ...]) -> set[str]:
            return {i for i, p in by_id.items() if p == path}

        # ("a",) covers ("a", "b") but never ("ab",) nor ("a*",)
        assert recalled(store, namespace_prefix=(a,)) == expected((a,))
        assert expected((a,)) >= {ids[0], ids[1], ids[2]}
        assert ids[3] not in recalled(store, namespace_prefix=(a,))
        assert ids[4] not in recalled(store, namespace_prefix=(a,))
        assert recalled(store, namespace_prefix=(a, b)) == expected((a, b))
        assert recalled(store, namespace_prefix=(b,)) == expected((b,))
        assert recalled(store, namespace=(a,)) == exact((a,))
        assert recalled(store, namespace=a) == exact((a,))
        assert recalled(store, namespace=(a, b)) == exact((a, b))
        assert recalled(store, namespace=(a + "*",)) == exact((a + "*",))
        assert listed(store, namespace_prefix=(a,)) == expected((a,))
        assert listed(store, namespace=(b, a)) == exact((b, a))
        assert store.stats(namespace_prefix=(a,)).total == len(expected((a,)))
        assert store.stats(namespace=(a,)).total == len(exact((a,)))
        assert {s.namespace for s in store.scopes(namespace_prefix=(a,))} == {
            p for p in paths if p[:1] == (a,)
        }

        gone = expected((b,))
        assert store.forget_by_scope(namespace_prefix=(b,)) == len(gone)
        assert present(store, ids) == set(ids) - gone
        assert recalled(store) == set(ids) - gone
        assert store.forget_by_scope(namespace=(a,)) == len(exact((a,)) - gone)
        assert present(store, ids) == set(ids) - gone - exact((a,))


# -- async --------------------------------------------------------------------------------------------
@PROPERTY
@given(pair=pairs)
async def test_async_store_isolates_scopes_and_prefixes(valkey_url: str, pair: tuple[str, str]) -> None:
    a, b = pair
    assume(a != b)
    async with fresh_astore(valkey_url) as store:
        a_ids = await store.remember_many(
            [{"content": TEXTS[0], "user_id": a, "namespace": (a, "n")}, {"content": TEXTS[1], "user_id": a}]
        )
        b_ids = await store.remember_many(
            [
                {"content": TEXTS[0], "user_id": b, "namespace": (a + "*", "n")},
                {"content": TEXTS[2], "user_id": b},
            ]
        )
        hits = await store.recall(QUERY, k=50, user_id=a)
        assert {h.memory.id for h in hits} == set(a_ids)
        hits = await store.recall(QUERY, k=50, user_id=b)
        assert {h.memory.id for h in hits} == set(b_ids)
        hits = await store.recall(QUERY, k=50, namespace_prefix=(a,))
        assert {h.memory.id for h in hits} == {a_ids[0]}
        page = await store.list(user_id=b)
        assert {m.id for m in page.memories} == set(b_ids)
        assert (await store.stats(user_id=a)).total == 2
        assert await store.forget_by_scope(user_id=b) == 2
        assert [m is not None for m in await store.get_many([*a_ids, *b_ids])] == [True, True, False, False]
        assert (await store.stats()).total == 2


# -- explicit edge cases --------------------------------------------------------------------------------
def test_literal_none_token_is_not_the_unset_scope(store: MemoryStore) -> None:
    """``"_none_"`` is what an unset scope field is indexed as; a user's literal "_none_" is another value."""
    unset = store.remember(TEXTS[0])
    literal = store.remember(TEXTS[0], user_id=NONE_TAG, thread_id=NONE_TAG)
    lookalike = store.remember(TEXTS[0], user_id=encode_tag("x y"))
    plain = store.remember(TEXTS[0], user_id="x y")
    assert recalled(store, user_id=NONE_TAG) == {literal}
    assert recalled(store, thread_id=NONE_TAG) == {literal}
    assert recalled(store, user_id=encode_tag("x y")) == {lookalike}
    assert recalled(store, user_id="x y") == {plain}
    assert listed(store, user_id=NONE_TAG) == {literal}
    assert store.forget_by_scope(user_id=NONE_TAG) == 1
    assert present(store, [unset, literal, lookalike, plain]) == {unset, lookalike, plain}


def test_whitespace_values_are_distinct_scopes(store: MemoryStore) -> None:
    ids = {v: store.remember(TEXTS[0], user_id=v, tags=[v]) for v in (" ", "\t", "  ", "\n")}
    unset = store.remember(TEXTS[0])
    for v, memory_id in ids.items():
        assert recalled(store, user_id=v) == {memory_id}, repr(v)
        assert recalled(store, tags=[v]) == {memory_id}, repr(v)
        assert store.stats(user_id=v).total == 1
    assert store.forget_by_scope(user_id="\t") == 1
    assert present(store, [*ids.values(), unset]) == {ids[" "], ids["  "], ids["\n"], unset}


FILTER_FIELDS = ["thread_id", "agent_id", "user_id", "source"]


@pytest.mark.parametrize(
    "kwargs",
    [
        *({f: ""} for f in FILTER_FIELDS),
        {"namespace": ""},
        {"namespace": ("a", "")},
        {"namespace": ("",)},
        {"tags": [""]},
        {"tags": ["a", ""]},
        {"key": ""},
    ],
    ids=repr,
)
def test_empty_strings_are_rejected_on_write(store: MemoryStore, kwargs: dict[str, Any]) -> None:
    store.remember(TEXTS[0], user_id="keep")
    before = store_keys(store)
    with pytest.raises(InvalidMemoryError):
        store.remember(TEXTS[1], **kwargs)
    with pytest.raises(InvalidMemoryError):
        store.remember_many([TEXTS[1], {"content": TEXTS[2], **kwargs}])
    assert store_keys(store) == before
    assert store.stats().total == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        *({f: ""} for f in FILTER_FIELDS),
        {"namespace": ""},
        {"namespace": ("a", "")},
        {"namespace_prefix": ""},
        {"namespace_prefix": ("a", "")},
        {"tags": [""]},
        {"tags": ["a", ""]},
        {"metadata": {"": 1}},
    ],
    ids=repr,
)
def test_empty_strings_are_rejected_in_filters(store: MemoryStore, kwargs: dict[str, Any]) -> None:
    store.remember(TEXTS[0], user_id="keep", namespace=("a",), tags=["a"], metadata={"x": 1})
    before = store_keys(store)
    with pytest.raises(InvalidMemoryError):
        store.recall(QUERY, **kwargs)
    with pytest.raises(InvalidMemoryError):
        store.list(**kwargs)
    with pytest.raises(InvalidMemoryError):
        store.stats(**kwargs)
    with pytest.raises(InvalidMemoryError):
        store.forget_by_scope(**kwargs)
    assert store_keys(store) == before


@pytest.mark.parametrize("prefix", [(), []], ids=["tuple", "list"])
def test_forget_by_scope_with_an_empty_prefix_does_not_wipe_the_store(
    store: MemoryStore, prefix: Sequence[str]
) -> None:
    ids = [store.remember(TEXTS[0], user_id="u1"), store.remember(TEXTS[1], namespace=("a",))]
    try:
        with pytest.raises(InvalidMemoryError):
            store.forget_by_scope(namespace_prefix=prefix)
    finally:
        assert present(store, ids) == set(ids)
