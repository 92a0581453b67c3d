"""Scope isolation under adversarial input (property tests against the real Valkey + search module).

Scope ids, namespace labels, tags, sources, metadata keys and values and caller keys are user data:
whatever a user writes (query syntax, tag separators, wildcards, look-alikes of the encoded tokens, case
and Unicode-normalisation variants, prefixes of each other, control characters and leading/trailing
whitespace that the engine may trim) must never let one scope's memories come back from, be counted by,
or be deleted through another scope's recall / list / stats / scopes / forget_by_scope, and two caller
keys that differ in any character are two memories.

Every example runs on a fresh store name (its keys and index are dropped afterwards), so examples cannot
see each other's data.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core._encoding import NONE_TAG, encode_tag
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.types import Memory

pytestmark = pytest.mark.integration

DIMS = 64
QUERY = "where does the traveller like to sit"
TEXTS = ("prefers the window seat", "likes to sit near the aisle", "hates the middle seat")

# Reproducibility: failing examples are saved to Hypothesis' local example database (no ``database=``
# here, so the default DirectoryBasedExampleDatabase under ``.hypothesis/`` in the working directory, or
# $HYPOTHESIS_STORAGE_DIRECTORY; ``.hypothesis/`` is git-ignored) and replayed first on the next run, and
# ``print_blob=True`` prints a ``@reproduce_failure`` blob for failures on machines whose database is
# thrown away (CI). We do not derandomize: a fixed seed would replay the same few hundred inputs forever,
# while random generation keeps exploring new adversarial values run after run; the explicit
# ``@example`` pairs below pin the known-dangerous cases so that they run every time regardless.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FIELD_PROPERTY = settings(PROPERTY, max_examples=100)
"""For the per-field tests (parametrised over many fields, sync and async)."""

# -- adversarial values ---------------------------------------------------------------------------------
CONTROL_CHARS: tuple[str, ...] = (
    "\n", "\r", "\t", "\x0b", "\x0c", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029",
)  # fmt: skip
"""What Python's ``str.isspace`` / ``splitlines``, regex ``$`` or the engine treat as line or space breaks."""
EDGE_SPACES: tuple[str, ...] = (" ", "\u00a0", "\u3000", "\r\n", "  ", "\u200b", "\ufeff", "\u180e")
"""Whitespace (and invisible characters) that trimming or normalisation could remove."""
SEPARATORS: tuple[str, ...] = tuple(dict.fromkeys(CONTROL_CHARS + EDGE_SPACES))

VERBATIM_BASES: tuple[str, ...] = ("alice", "vip", "u1", "a", "0", "k", "abc123", "a" * 32)
"""Values ``encode_tag`` keeps verbatim (``[a-z0-9]{1,32}``): the ones a near-variant could be conflated
with if it were kept verbatim too (the engine trims and may case-fold TAG values; a digest never can)."""

_HOMOGLYPHS = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "o": "\u043e", "p": "\u0440",
    "x": "\u0445", "y": "\u0443", "l": "\u04cf", "k": "\u03ba", "0": "\u041e", "1": "\u0661",
}  # fmt: skip
"""Cyrillic / Greek / Arabic-Indic look-alikes of ASCII letters and digits."""
_COMPAT = {"i": "\u0131", "k": "\u212a", "s": "\u017f", "1": "\u00b9", "0": "\u2070", "a": "\u00aa"}
"""Characters that case-map or NFKC-normalise to an ASCII one (dotless i, Kelvin sign, long s, ...)."""


def _wrapped(a: str) -> list[str]:
    """``a`` with each separator appended, prepended, around it and embedded in it."""
    out: list[str] = []
    for c in SEPARATORS:
        embedded = a[:1] + c + a[1:] if len(a) > 1 else a + c + a
        out += [a + c, c + a, c + a + c, embedded]
    return out


def _lookalikes(a: str) -> list[str]:
    """Case variants, homoglyph and compatibility-character spellings, normalisation forms of ``a``."""
    out = [a.upper(), a.lower(), a.swapcase(), a.casefold(), a.title(), a.capitalize()]
    out += [unicodedata.normalize(form, a) for form in ("NFC", "NFD", "NFKC", "NFKD")]
    out.append("".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in a))  # fullwidth
    for table in (_HOMOGLYPHS, _COMPAT):
        for n, ch in enumerate(a):
            if ch in table:
                out.append(a[:n] + table[ch] + a[n + 1 :])
                break
    out += [a + "\u0301", a[:1] + "\u0307" + a[1:], "\u202e" + a, a + "\u200d"]
    return out


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
    *CONTROL_CHARS, *EDGE_SPACES, *VERBATIM_BASES,
    *(v for base in ("alice", "vip") for v in _wrapped(base) + _lookalikes(base)),
)  # fmt: skip
TRICKY = tuple(dict.fromkeys(TRICKY))

_unicode_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
values: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(TRICKY),
    _unicode_text,
    st.lists(st.sampled_from(TRICKY), min_size=2, max_size=3).map("".join),
)


def _variants(a: str) -> list[str]:
    """Values that are *almost* ``a``: the ones an encoding or a query parser could conflate with it."""
    out = [
        a + "*", "*" + a, a + "b", a[:-1], a[1:], a.strip(), a + "|" + a, "{" + a + "}", a + "\x00",
        encode_tag(a), encode_tag(a)[1:], NONE_TAG, *_wrapped(a), *_lookalikes(a),
    ]  # fmt: skip
    return list(dict.fromkeys(v for v in out if v and v != a))


def _pair(a: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(st.just(a), st.sampled_from(_variants(a)))


NEAR_PAIRS: tuple[tuple[str, str], ...] = tuple((a, v) for a in VERBATIM_BASES for v in _variants(a))
"""Every verbatim-encoded base against each of its control / whitespace / case / look-alike variants."""

_EDITS: dict[str, Callable[[str, str], str]] = {
    "append": lambda a, c: a + c,
    "prepend": lambda a, c: c + a,
    "around": lambda a, c: c + a + c,
    "embed": lambda a, c: a[:1] + c + a[1:] if len(a) > 1 else a + c + a,
}
edge_pairs: st.SearchStrategy[tuple[str, str]] = st.builds(
    lambda a, c, edit: (a, _EDITS[edit](a, c)),
    st.sampled_from(VERBATIM_BASES),
    st.sampled_from(SEPARATORS),
    st.sampled_from(["append", "append", "prepend", "around", "embed"]),  # a trailing char: the "$" trap
)
"""A verbatim value against itself with a control / whitespace character added (what an engine trims)."""

_PAIR_SOURCES: tuple[st.SearchStrategy[tuple[str, str]], ...] = (
    edge_pairs, edge_pairs, st.sampled_from(NEAR_PAIRS), values.flatmap(_pair), st.tuples(values, values),
)  # fmt: skip
pairs: st.SearchStrategy[tuple[str, str]] = (
    st.sampled_from(_PAIR_SOURCES)
    .flatmap(lambda source: source)
    .flatmap(lambda p: st.sampled_from([p, (p[1], p[0])]))
)
"""Two (usually distinct) non-empty values, in either order: 40% a verbatim value against itself plus a
control / whitespace character, 20% a verbatim value against any near-variant (case, look-alike, ...),
20% any value against a near-variant of it, 20% two unrelated values. (``sampled_from`` of sources rather
than ``one_of``, whose branches are not drawn evenly: the weights above are what they say.)"""

REPORTED_PAIRS: tuple[tuple[str, str], ...] = (
    ("alice", "alice\n"), ("alice\n", "alice"), ("alice", " alice"), ("alice", "alice\u00a0"),
    ("alice", "\talice"), ("alice", "Alice"), ("vip", "vip\n"), ("vip\n", "vip"), ("vip", "VIP"),
    ("vip", "vip\r\n"), ("vip", "vip\u3000"), ("u1", "u1\x00"), ("u1", "u1\u2028"), ("0", "0\x85"),
)  # fmt: skip
"""Run on every property test every time (as ``@example``): the trailing-newline hole and its cousins."""

_F = TypeVar("_F", bound=Callable[..., Any])


def with_reported_pairs(**other: Any) -> Callable[[_F], _F]:
    """Add every :data:`REPORTED_PAIRS` as an explicit ``@example(pair=..., **other)``."""

    def decorate(test: _F) -> _F:
        for p in REPORTED_PAIRS:
            test = example(pair=p, **other)(test)
        return test

    return decorate


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


async def arecalled(store: AsyncMemoryStore, **filters: Any) -> set[str]:
    return {h.memory.id for h in await store.recall(QUERY, k=50, **filters)}


async def alisted(store: AsyncMemoryStore, **filters: Any) -> set[str]:
    page = await store.list(limit=100, **filters)
    assert page.next_cursor is None
    return {m.id for m in page.memories}


async def apresent(store: AsyncMemoryStore, ids: Sequence[str]) -> set[str]:
    return {m.id for m in await store.get_many(list(ids)) if m is not None}


def store_keys(store: MemoryStore) -> dict[bytes, bytes | None]:
    """Every key of the store with its DUMP (to prove that nothing at all was written)."""
    return {
        k: store.client.dump(k) for k in store.client.scan_iter(match=f"{store.keys.prefix}*", count=1000)
    }


def scope_tags(ids: set[str]) -> set[str]:
    """The scope tags of memory ids (their first 16 characters)."""
    return {i[:16] for i in ids}


# -- every field a user string enters -------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One place a user string goes: how to write a memory with it, how to select by it, how it reads back."""

    name: str
    write: Callable[[str], dict[str, Any]]
    select: Callable[[str], dict[str, Any]]
    read: Callable[[Memory], object]
    stored: Callable[[str], object]
    scope: bool
    """A scope field: ``stats()`` and ``scopes()`` accept it (they count and list whole scopes)."""
    avoid: tuple[str, ...] = ()
    """Values the field's own fixed companions use (a pair containing one is skipped)."""


FIELDS: tuple[Field, ...] = (
    *(
        Field(f, lambda v, f=f: {f: v}, lambda v, f=f: {f: v}, lambda m, f=f: getattr(m, f), str, True)
        for f in ("thread_id", "agent_id", "user_id")
    ),
    Field("source", lambda v: {"source": v}, lambda v: {"source": v}, lambda m: m.source, lambda v: v, False),
    Field("tag", lambda v: {"tags": [v]}, lambda v: {"tags": [v]}, lambda m: m.tags, lambda v: (v,), False),
    Field(
        "tag_among_others", lambda v: {"tags": ["t0", v, "t1"]}, lambda v: {"tags": [v]},
        lambda m: m.tags, lambda v: ("t0", v, "t1"), False, ("t0", "t1"),
    ),
    Field(
        "metadata_value", lambda v: {"metadata": {"k": v}}, lambda v: {"metadata": {"k": v}},
        lambda m: dict(m.metadata), lambda v: {"k": v}, False,
    ),
    Field(
        "metadata_value_eq", lambda v: {"metadata": {"k": v, "n": 1}},
        lambda v: {"metadata": {"k": {"$eq": v}}}, lambda m: dict(m.metadata), lambda v: {"k": v, "n": 1},
        False,
    ),
    Field(
        "metadata_key", lambda v: {"metadata": {v: 1}}, lambda v: {"metadata": {v: 1}},
        lambda m: dict(m.metadata), lambda v: {v: 1}, False,
    ),
    Field(
        "metadata_key_str_value", lambda v: {"metadata": {v: "x"}}, lambda v: {"metadata": {v: "x"}},
        lambda m: dict(m.metadata), lambda v: {v: "x"}, False,
    ),
    Field(
        "metadata_value_in", lambda v: {"metadata": {"k": v}}, lambda v: {"metadata": {"k": {"$in": [v]}}},
        lambda m: dict(m.metadata), lambda v: {"k": v}, False,
    ),
    Field(
        "metadata_list_element", lambda v: {"metadata": {"k": ["x", v]}},
        lambda v: {"metadata": {"k": {"$contains": v}}}, lambda m: dict(m.metadata),
        lambda v: {"k": ["x", v]}, False, ("x",),
    ),
    Field(
        "metadata_key_exists", lambda v: {"metadata": {v: None}},
        lambda v: {"metadata": {v: {"$exists": True}}}, lambda m: dict(m.metadata), lambda v: {v: None},
        False,
    ),
    Field(
        "namespace", lambda v: {"namespace": (v,)}, lambda v: {"namespace": v},
        lambda m: m.namespace, lambda v: (v,), True,
    ),
    Field(
        "namespace_prefix", lambda v: {"namespace": (v, "leaf")}, lambda v: {"namespace_prefix": (v,)},
        lambda m: m.namespace, lambda v: (v, "leaf"), True,
    ),
    Field(
        "namespace_inner_label", lambda v: {"namespace": ("root", v, "leaf")},
        lambda v: {"namespace": ("root", v, "leaf")}, lambda m: m.namespace, lambda v: ("root", v, "leaf"),
        True,
    ),
    Field(
        "namespace_inner_prefix", lambda v: {"namespace": ("root", v, "leaf")},
        lambda v: {"namespace_prefix": ("root", v)}, lambda m: m.namespace,
        lambda v: ("root", v, "leaf"), True,
    ),
    Field(
        "namespace_last_label_prefix", lambda v: {"namespace": ("root", v)},
        lambda v: {"namespace_prefix": ("root", v)}, lambda m: m.namespace, lambda v: ("root", v), True,
    ),
)  # fmt: skip
FIELD_IDS = [f.name for f in FIELDS]


def read_back(field: Field, memories: Sequence[Memory | None]) -> list[object]:
    """The field as each memory reads back (every memory must exist)."""
    assert all(m is not None for m in memories)
    return [field.read(m) for m in memories if m is not None]


def _field_writes(field: Field, a: str, b: str) -> list[dict[str, Any]]:
    """Two memories under ``a``, one under ``b``, one with the field unset."""
    return [
        {"content": TEXTS[0], **field.write(a)},
        {"content": TEXTS[1], **field.write(a)},
        {"content": TEXTS[0], **field.write(b)},
        {"content": TEXTS[2]},
    ]


@pytest.mark.parametrize("field", FIELDS, ids=FIELD_IDS)
@FIELD_PROPERTY
@given(pair=pairs)
@with_reported_pairs()
def test_each_field_isolates_recall_list_stats_scopes_and_forget(
    valkey_url: str, field: Field, pair: tuple[str, str]
) -> None:
    """Memories written under value A are seen under A and never under B (B != A), and vice versa."""
    a, b = pair
    assume(a != b and a not in field.avoid and b not in field.avoid)
    fa, fb = field.select(a), field.select(b)
    with fresh_store(valkey_url) as store:
        *a_ids, b_id, other = store.remember_many(_field_writes(field, a, b))
        a_set, b_set = set(a_ids), {b_id}
        assert len({*a_set, *b_set, other}) == 4
        assert read_back(field, store.get_many([*a_ids, b_id])) == [field.stored(v) for v in (a, a, b)]

        assert recalled(store, **fa) == a_set
        assert recalled(store, **fb) == b_set
        assert listed(store, **fa) == a_set
        assert listed(store, **fb) == b_set
        assert store.stats().total == 4
        if field.scope:
            assert store.stats(**fa).total == 2
            assert store.stats(**fb).total == 1
            assert {s.tag for s in store.scopes(**fa)} == scope_tags(a_set)
            assert {s.tag for s in store.scopes(**fb)} == scope_tags(b_set)

        assert store.forget_by_scope(**fb) == 1
        assert present(store, [*a_ids, b_id, other]) == {*a_set, other}
        assert recalled(store, **fa) == a_set
        assert recalled(store, **fb) == set()
        assert listed(store, **fa) == a_set
        if field.scope:
            assert store.stats(**fa).total == 2
            assert store.stats(**fb).total == 0
        assert store.stats().total == 3

        assert store.forget_by_scope(**fb) == 0
        assert store.forget_by_scope(**fa) == 2
        assert present(store, [*a_ids, other]) == {other}
        assert store.stats().total == 1


@pytest.mark.parametrize("field", FIELDS, ids=FIELD_IDS)
@FIELD_PROPERTY
@given(pair=pairs)
@with_reported_pairs()
async def test_each_field_isolates_on_the_async_store(
    valkey_url: str, field: Field, pair: tuple[str, str]
) -> None:
    """The async twin of :func:`test_each_field_isolates_recall_list_stats_scopes_and_forget`."""
    a, b = pair
    assume(a != b and a not in field.avoid and b not in field.avoid)
    fa, fb = field.select(a), field.select(b)
    async with fresh_astore(valkey_url) as store:
        *a_ids, b_id, other = await store.remember_many(_field_writes(field, a, b))
        a_set, b_set = set(a_ids), {b_id}
        assert len({*a_set, *b_set, other}) == 4
        got = await store.get_many([*a_ids, b_id])
        assert read_back(field, got) == [field.stored(v) for v in (a, a, b)]

        assert await arecalled(store, **fa) == a_set
        assert await arecalled(store, **fb) == b_set
        assert await alisted(store, **fa) == a_set
        assert await alisted(store, **fb) == b_set
        assert (await store.stats()).total == 4
        if field.scope:
            assert (await store.stats(**fa)).total == 2
            assert (await store.stats(**fb)).total == 1
            assert {s.tag for s in await store.scopes(**fa)} == scope_tags(a_set)
            assert {s.tag for s in await store.scopes(**fb)} == scope_tags(b_set)

        assert await store.forget_by_scope(**fb) == 1
        assert await apresent(store, [*a_ids, b_id, other]) == {*a_set, other}
        assert await arecalled(store, **fa) == a_set
        assert await arecalled(store, **fb) == set()
        if field.scope:
            assert (await store.stats(**fb)).total == 0

        assert await store.forget_by_scope(**fa) == 2
        assert await apresent(store, [*a_ids, other]) == {other}


# -- caller keys ----------------------------------------------------------------------------------------
@FIELD_PROPERTY
@given(pair=pairs)
@with_reported_pairs()
def test_caller_keys_that_differ_are_different_memories(valkey_url: str, pair: tuple[str, str]) -> None:
    """``remember(key=A)`` upserts A's memory only: a key B != A (even by one space) is another memory."""
    a, b = pair
    assume(a != b and "key-owner" not in (a, b))
    scope = {"user_id": "key-owner"}
    with fresh_store(valkey_url) as store:
        id_a = store.remember(TEXTS[0], key=a, **scope)
        id_b = store.remember(TEXTS[1], key=b, **scope)
        assert id_a != id_b
        assert store.remember(TEXTS[2], key=a, **scope) == id_a  # upsert of A only
        got = {m.id: (m.key, m.content) for m in store.get_many([id_a, id_b]) if m is not None}
        assert got == {id_a: (a, TEXTS[2]), id_b: (b, TEXTS[1])}
        assert store.remember(TEXTS[0], key=b, **scope) == id_b  # upsert of B only
        got = {m.id: (m.key, m.content) for m in store.get_many([id_a, id_b]) if m is not None}
        assert got == {id_a: (a, TEXTS[2]), id_b: (b, TEXTS[0])}
        assert listed(store, **scope) == {id_a, id_b}
        assert store.stats(**scope).total == 2

        # the same key under scope values that differ only like a and b: different memories too
        in_a = store.remember(TEXTS[1], key="same", user_id=a)
        in_b = store.remember(TEXTS[1], key="same", user_id=b)
        assert len({id_a, id_b, in_a, in_b}) == 4
        assert recalled(store, user_id=a) == {in_a}

        assert store.forget(id_b)
        assert present(store, [id_a, id_b, in_a, in_b]) == {id_a, in_a, in_b}
        assert store.remember(TEXTS[1], key=a, **scope) == id_a  # does not resurrect B
        assert present(store, [id_a, id_b]) == {id_a}
        assert store.stats(**scope).total == 1


@FIELD_PROPERTY
@given(pair=pairs)
@with_reported_pairs()
async def test_async_caller_keys_that_differ_are_different_memories(
    valkey_url: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    assume(a != b)
    async with fresh_astore(valkey_url) as store:
        id_a = await store.remember(TEXTS[0], key=a, user_id="key-owner")
        id_b = await store.remember(TEXTS[1], key=b, user_id="key-owner")
        assert id_a != id_b
        assert await store.remember(TEXTS[2], key=a, user_id="key-owner") == id_a
        got = {m.id: (m.key, m.content) for m in await store.get_many([id_a, id_b]) if m is not None}
        assert got == {id_a: (a, TEXTS[2]), id_b: (b, TEXTS[1])}
        assert (await store.stats(user_id="key-owner")).total == 2


# -- the reported hole (trailing newline kept verbatim) ----------------------------------------------------
NEWLINE_CASES = [("user_id", "alice\n", "alice"), ("tags", "vip\n", "vip")]


def _kw(name: str, value: str) -> dict[str, Any]:
    return {name: [value] if name == "tags" else value}


@pytest.mark.parametrize(("name", "written", "asked"), NEWLINE_CASES, ids=["user_id", "tag"])
def test_regression_trailing_newline_is_not_another_tenants_value(
    valkey_url: str, name: str, written: str, asked: str
) -> None:
    """``user_id="alice\\n"`` was indexed as the TAG "alice\\n", which the engine trims to "alice"."""
    with fresh_store(valkey_url) as store:
        sneaky = store.remember(TEXTS[0], **_kw(name, written))
        assert recalled(store, **_kw(name, asked)) == set()
        assert listed(store, **_kw(name, asked)) == set()
        if name == "user_id":
            assert store.stats(**_kw(name, asked)).total == 0
            assert store.scopes(**_kw(name, asked)) == []
        assert store.forget_by_scope(**_kw(name, asked)) == 0
        assert present(store, [sneaky]) == {sneaky}
        assert recalled(store, **_kw(name, written)) == {sneaky}

        honest = store.remember(TEXTS[1], **_kw(name, asked))
        assert recalled(store, **_kw(name, asked)) == {honest}
        assert recalled(store, **_kw(name, written)) == {sneaky}
        assert store.forget_by_scope(**_kw(name, asked)) == 1
        assert present(store, [sneaky, honest]) == {sneaky}
    # the cause: the encoding must leave nothing for the engine to trim (portable charset only)
    assert re.fullmatch(r"[a-z0-9_]+", encode_tag(written)), repr(encode_tag(written))


async def test_regression_trailing_newline_on_the_async_store(valkey_url: str) -> None:
    async with fresh_astore(valkey_url) as store:
        sneaky = await store.remember(TEXTS[0], user_id="alice\n", tags=["vip\n"])
        assert await arecalled(store, user_id="alice") == set()
        assert await arecalled(store, tags=["vip"]) == set()
        assert await store.forget_by_scope(user_id="alice") == 0
        assert await store.forget_by_scope(tags=["vip"]) == 0
        assert await arecalled(store, user_id="alice\n", tags=["vip\n"]) == {sneaky}


@settings(PROPERTY, max_examples=1000)
@given(pair=pairs)
@with_reported_pairs()
def test_encoded_tags_are_portable_and_injective(pair: tuple[str, str]) -> None:
    """Pure: every encoding is in the portable charset (nothing the engine could trim or fold), and
    distinct values never share one."""
    a, b = pair
    for v in (a, b):
        assert re.fullmatch(r"[a-z0-9_]+", encode_tag(v)), (v, encode_tag(v))
    assert (encode_tag(a) == encode_tag(b)) == (a == b)


# -- several fields at once ----------------------------------------------------------------------------
@PROPERTY
@given(pair=pairs, third=values)
@with_reported_pairs(third="alice")
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
@with_reported_pairs()
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
@with_reported_pairs()
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
@with_reported_pairs()
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
    ids = {v: store.remember(TEXTS[0], user_id=v, tags=[v]) for v in SEPARATORS}
    unset = store.remember(TEXTS[0])
    for v, memory_id in ids.items():
        assert recalled(store, user_id=v) == {memory_id}, repr(v)
        assert recalled(store, tags=[v]) == {memory_id}, repr(v)
        assert store.stats(user_id=v).total == 1
    assert store.forget_by_scope(user_id="\t") == 1
    assert present(store, [*ids.values(), unset]) == {*ids.values(), unset} - {ids["\t"]}


SWEEP_BASES = ("alice", "vip")


@pytest.mark.parametrize("field", FIELDS, ids=FIELD_IDS)
def test_every_near_variant_is_its_own_value(valkey_url: str, field: Field) -> None:
    """Deterministic sweep (no sampling): each verbatim base and *all* of its near-variants, in one store,
    are pairwise distinct values of the field: each is recalled, listed, counted and forgotten alone."""
    vals = list(dict.fromkeys(v for base in SWEEP_BASES for v in (base, *_variants(base))))
    vals = [v for v in vals if v not in field.avoid]
    with fresh_store(valkey_url) as store:
        ids = dict(zip(vals, store.remember_many([{"content": TEXTS[0], **field.write(v)} for v in vals])))
        assert len(set(ids.values())) == len(vals)
        for v, memory_id in ids.items():
            assert recalled(store, **field.select(v)) == {memory_id}, repr(v)
        for base in SWEEP_BASES:
            assert listed(store, **field.select(base)) == {ids[base]}
            if field.scope:
                assert store.stats(**field.select(base)).total == 1
                assert {s.tag for s in store.scopes(**field.select(base))} == scope_tags({ids[base]})
            assert store.forget_by_scope(**field.select(base)) == 1, repr(base)
        gone = {ids[base] for base in SWEEP_BASES}
        assert present(store, list(ids.values())) == set(ids.values()) - gone
        for v in vals:
            if v not in SWEEP_BASES:
                assert recalled(store, **field.select(v)) == {ids[v]}, repr(v)
        assert store.stats().total == len(vals) - len(SWEEP_BASES)


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
