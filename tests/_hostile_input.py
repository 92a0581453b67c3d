"""Hostile user strings and the properties run on them (issue 18), shared by the embedded and Valkey modules.

``tests/`` is on ``sys.path`` (its conftest.py, rootdir import mode), so ``tests/unit`` and
``tests/integration`` both import this module by name.

Every property plants tenant A (fixed, ordinary-looking ids, plus a second tenant literally named ``*``)
once per test, then for each example takes a hostile value B and puts it where a user string enters. Two
properties are checked:

* **typed errors only**: each call succeeds or raises a subclass of
  :class:`agentmem_core.errors.AgentMemError` (LangGraph's own ``InvalidNamespaceError`` is also accepted
  from the LangGraph store: ``BaseStore`` documents it for labels with ``.`` or NUL), never a raw valkey /
  sqlite3 / other exception, and the backend still answers afterwards (PING on Valkey, ``health()``);
* **a hostile value never widens a query**: recall / search / list / count / stats / forget from B never
  returns or deletes A's data, every hit lies inside B's filter, and A's memories and counts are unchanged.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

from agentmem_core import IndexConfig, MemoryStore, ScopeKey
from agentmem_core._encoding import encode_tag, namespace_token
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import AgentMemError, BackendError

DIMS = 64
EMBEDDER = HashingEmbedder(DIMS)

# -- hostile strings -------------------------------------------------------------------------------------
SYNTAX = "@|{}()[]*-~\"'\\:;$%^,.<>=!/#&+?`_"
"""RediSearch / valkey-search query syntax (and separators agentmem or the adapters use)."""
SPACES = (" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\u00a0", "\u2028", "\u2029", "\u3000")
INVISIBLE = ("\x00", "\x01", "\x1f", "\x7f", "\u200b", "\u200d", "\ufeff", "\u202e", "\u2066", "\u180e")
UNICODE = (
    "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",  # RTL: Hebrew, Arabic
    "e\u0301", "\u00e9", "Z\u0351\u0308\u0363\u0310", "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f600", "\u212a", "\u0131", "\u017f", "\uff21", "\u0430cme", "\ud800", "\udfff", "a\udc80b",
)  # fmt: skip
"""RTL text, combining marks, emoji and ZWJ sequences, case / NFKC traps, homoglyphs, lone surrogates."""

TENANT_A = {"user_id": "acme", "agent_id": "agent-a", "thread_id": "thread-a", "namespace": ("acme-ns", "x")}
TENANT_STAR = {"user_id": "*", "thread_id": "*"}
A_TAG = "a-tag"
A_SOURCE = "a-src"
A_META = {"tenant": "acme", "n": 1}
A_KEY = "a-key"
A_CALLER_ID = "acme-id-1"
A_VALUES = frozenset({
    *[v for v in TENANT_A.values() if isinstance(v, str)], *TENANT_A["namespace"], "*", A_TAG, A_SOURCE,
    "tenant", "n", A_KEY, A_CALLER_ID, "lg", "notes", "pref", "n1", "text", "research", "b", "k",
    "hostile-writer", "ordinary",
})  # fmt: skip
"""Every string tenant A (and ``*``) holds: a hostile value equal to one of them may legitimately match."""


def _look_alikes() -> list[str]:
    """Strings that look like tenant A's ids (or like a wildcard, or like their encoded tokens)."""
    out: list[str] = []
    for v in ("acme", "agent-a", "thread-a", "acme-ns", A_TAG, A_CALLER_ID):
        out += [v.upper(), v.title(), f" {v}", f"{v} ", f"{v}\n", f"{v}\x00", f"{v}*", f"*{v}*", f"{v}|x",
                f"x|{v}", f"{{{v}}}", f"@user_id:{{{v}}}", f"-{v}", f"{v}\\", f'"{v}"', f"({v})", f"{v}%",
                f"~{v}", v[:-1], v + v[-1], encode_tag(v), "_" + v, v.replace("a", "\u0430")]  # fmt: skip
    out += [encode_tag("*"), namespace_token(("acme-ns",)), namespace_token(("acme-ns", "x")), "_none_",
            "**", "*:*", "@*", "%acme%", "$", "()", "{}", "[]", "''", '""', "\\", "acme-ns/x", "acme-ns.x",
            "/acme-ns/x", "acme*|*",
            "* | -@user_id:{x}", "@user_id:{*}", "(@user_id:{acme})|(*)"]  # fmt: skip
    return out


LOOK_ALIKES = _look_alikes()

_ANY_CHAR = st.characters(codec=None, categories=None)  # every code point Python has, surrogates included
HOSTILE = st.one_of(
    st.lists(st.sampled_from(tuple(SYNTAX) + SPACES + INVISIBLE), min_size=1, max_size=12).map("".join),
    st.sampled_from(LOOK_ALIKES),
    st.lists(
        st.sampled_from((*SYNTAX, *SPACES, *INVISIBLE, *UNICODE, "acme", "*", "a", "1")),
        min_size=1,
        max_size=8,
    ).map("".join),  # fmt: skip
    st.text(_ANY_CHAR, min_size=1, max_size=16),
    st.sampled_from(UNICODE),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(("*", "a", "\u00e9", "\U0001f600", "{", " ")),
        st.sampled_from((255, 256, 511, 512, 513, 1024, 5000)),
    ),  # fmt: skip
    st.text(st.sampled_from(string.printable), min_size=400, max_size=700),
)
"""Hostile user strings (never ``None``; may be empty, NUL-laden, over-long or unencodable)."""


def hostile() -> st.SearchStrategy[str]:
    """A hostile value that is none of tenant A's own strings (so it must never match A)."""
    return HOSTILE.filter(lambda v: v not in A_VALUES)


SETTINGS = settings(
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


# -- calling ---------------------------------------------------------------------------------------------
class RawError(AssertionError):
    """A call raised something that is not an agentmem error."""


OUTCOMES: dict[str, int] = {}
"""Calls per outcome (``"<call> ok"`` / ``"<call> <ErrorClass>"``): shows the properties are not vacuous."""
KNOWN_BUG_HITS: dict[str, int] = {}
"""How often each known bug (pinned by a strict xfail test) was tolerated by :func:`attempt`."""


def known_bug(exc: BaseException) -> str | None:
    """The name of the known bug a raw exception is (each has a strict xfail test), else ``None``.

    Only exact signatures are tolerated, so that the properties keep looking for other failures:

    * ``surrogate-tag-filter``: a tag filter value that is not encodable UTF-8 (a lone surrogate) reaches
      ``_encoding._hashed_tag`` unvalidated and raises ``UnicodeEncodeError`` (recall / count, CrewAI
      ``search(categories=...)``), instead of ``InvalidMemoryError``.
    * ``underscore-query-term``: on Valkey (RediSearch), a text recall whose query has a lone ``_`` word
      (``recall("seat _")``) renders the lexical term predicate ``@x_terms:{_}``, which the server refuses
      ("Syntax error ... near x_terms", a ``BackendError``); the recall should simply run.
    """
    del exc  # both bugs it named are fixed (see the tests named after them); none is tolerated now
    return None


def query_rejected(exc: BaseException) -> bool:
    """Whether an error is the server refusing a query agentmem built (user input reached its syntax).

    Typed as ``BackendError`` (the "server failure" branch of the tree), but for a user's value it is an
    injection symptom, not a server failure: the properties treat it as a failure.
    """
    text = str(exc).lower()
    return isinstance(exc, BackendError) and ("syntax error" in text or "invalid query" in text)


def attempt(
    call: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...] = (), **kwargs: Any
) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, error)`` for an agentmem error; any other exception fails.

    So does a ``BackendError`` in which the server refused a query's syntax (:func:`query_rejected`). Known
    bugs (:func:`known_bug`) are tallied in :data:`KNOWN_BUG_HITS` instead.
    """
    name = getattr(call, "__qualname__", repr(call))
    try:
        result = call(*args, **kwargs)
    except AgentMemError as exc:
        if query_rejected(exc):
            bug = known_bug(exc)
            if bug is None:
                raise RawError(
                    f"{name}(args={args!r:.300}, kwargs={kwargs!r:.300}): the server refused a query built "
                    f"from user input (query syntax leaked through): {exc!s:.500}"
                ) from exc
            KNOWN_BUG_HITS[bug] = KNOWN_BUG_HITS.get(bug, 0) + 1
            return False, exc
        OUTCOMES[f"{name} {type(exc).__name__}"] = OUTCOMES.get(f"{name} {type(exc).__name__}", 0) + 1
        return False, exc
    except allowed as exc:
        OUTCOMES[f"{name} {type(exc).__name__}"] = OUTCOMES.get(f"{name} {type(exc).__name__}", 0) + 1
        return False, exc
    except Exception as exc:
        bug = known_bug(exc)
        if bug is not None:
            KNOWN_BUG_HITS[bug] = KNOWN_BUG_HITS.get(bug, 0) + 1
            return False, exc
        raise RawError(
            f"{name}(args={args!r:.300}, kwargs={kwargs!r:.300}) raised raw "
            f"{type(exc).__module__}.{type(exc).__qualname__}: {exc!s:.500}"
        ) from exc
    OUTCOMES[f"{name} ok"] = OUTCOMES.get(f"{name} ok", 0) + 1
    return True, result


def awaiting(loop: asyncio.AbstractEventLoop, method: Callable[..., Any]) -> Callable[..., Any]:
    """A sync callable that runs ``await method(...)`` on ``loop`` (for :func:`attempt`), named as it."""

    def run(*args: Any, **kwargs: Any) -> Any:
        return loop.run_until_complete(method(*args, **kwargs))

    run.__qualname__ = getattr(method, "__qualname__", "call")
    return run


def take_outcomes() -> dict[str, int]:
    """The outcome tallies since the last call (and the known-bug hits, prefixed ``known-bug``), reset."""
    out = dict(sorted(OUTCOMES.items()))
    out.update({f"known-bug {k}": v for k, v in KNOWN_BUG_HITS.items()})
    OUTCOMES.clear()
    KNOWN_BUG_HITS.clear()
    return out


def assert_exercised(outcomes: dict[str, int], *calls: str) -> None:
    """Each named call succeeded at least once and failed with a typed error at least once (not vacuous)."""
    for call in calls:
        ok = sum(n for k, n in outcomes.items() if k.startswith(call + " ") and k.endswith(" ok"))
        refused = sum(n for k, n in outcomes.items() if k.startswith(call + " ") and not k.endswith(" ok"))
        assert ok > 0 and refused > 0, f"{call}: {ok} successes, {refused} typed errors: {outcomes}"


# -- the core store --------------------------------------------------------------------------------------
@dataclass
class Planted:
    """Tenant A's memories in a store, and what every example checks of them."""

    store: MemoryStore
    ids: list[str]
    contents: dict[str, str]
    counts: dict[str, int]
    alive: Callable[[], None]

    def unchanged(self) -> None:
        """A's memories are all there, unchanged, and counted as before; the backend answers."""
        self.alive()
        got = self.store.get_many(self.ids)
        assert [None if m is None else m.content for m in got] == [self.contents[i] for i in self.ids], (
            "tenant A's memories changed"
        )
        assert a_counts(self.store) == self.counts, "tenant A's counts changed"


def a_counts(store: MemoryStore) -> dict[str, int]:
    return {
        "acme": store.count(user_id="acme"),
        "acme-scope": store.count(**TENANT_A),
        "star": store.count(user_id="*"),
        "tag": store.count(tags=[A_TAG]),
        "stats-acme": store.stats(user_id="acme").total,
    }


def plant(store: MemoryStore, alive: Callable[[], None]) -> Planted:
    """Write tenant A (three memories, one keyed, one with a caller id) and tenant ``*`` (two)."""
    common = {"tags": [A_TAG], "source": A_SOURCE, "metadata": A_META}
    ids = [
        store.remember("acme prefers the window seat", **TENANT_A, **common),
        store.remember("acme budget is tight", **TENANT_A, key=A_KEY, **common),
        store.remember("acme travels in May", **TENANT_A, id=A_CALLER_ID, **common),
        store.remember("star tenant likes tea", **TENANT_STAR, **common),
        store.remember("star tenant hates delays", **TENANT_STAR, **common),
    ]
    contents = {m.id: m.content for m in store.get_many(ids) if m is not None}
    planted = Planted(store, ids, contents, a_counts(store), alive)
    assert planted.counts == {"acme": 3, "acme-scope": 3, "star": 2, "tag": 5, "stats-acme": 3}
    return planted


@contextmanager
def core_store(url: str, name: str) -> Iterator[MemoryStore]:
    store = MemoryStore.from_url(
        url, name=name, embedder=EMBEDDER, index=IndexConfig(dims=DIMS, algorithm="FLAT"),
        candidate_multiplier=50, live_config_seconds=None,
    )  # fmt: skip
    store.setup()
    try:
        yield store
    finally:
        store.close()


WRITE_FIELDS = (
    "user_id", "agent_id", "thread_id", "namespace", "namespace-label", "tag", "metadata-key",
    "metadata-value", "metadata-nested", "source", "key", "id", "content",
)  # fmt: skip


def write_fields(where: str, value: str) -> tuple[str, dict[str, Any]]:
    """``remember``'s content and keywords with ``value`` at ``where`` (the rest ordinary)."""
    content = "hostile tenant note"
    fields: dict[str, Any] = {"user_id": "hostile-writer"}
    if where in ("user_id", "agent_id", "thread_id", "source", "key", "id"):
        fields[where] = value
    elif where == "namespace":
        fields["namespace"] = value  # a string is a one-label namespace
    elif where == "namespace-label":
        fields["namespace"] = ("acme-ns", value)  # under A's first label: a sibling of ("acme-ns", "x")
    elif where == "tag":
        fields["tags"] = [value, "ordinary"]
    elif where == "metadata-key":
        fields["metadata"] = {value: 1, "tenant": "hostile"}
    elif where == "metadata-value":
        fields["metadata"] = {"tenant": value}
    elif where == "metadata-nested":
        fields["metadata"] = {"trip": {value: [value, {"x": value}]}}
    else:
        content = value
    return content, fields


def check_core_write(planted: Planted, where: str, value: str) -> None:
    """Writing ``value`` at ``where`` succeeds (and reads back verbatim) or raises an agentmem error."""
    store = planted.store
    content, fields = write_fields(where, value)
    ok, memory_id = attempt(store.remember, content, **fields)
    if ok:
        ok, memory = attempt(store.get, memory_id)
        assert ok and memory is not None, f"written memory {memory_id!r} not found"
        assert memory.content == content
        expect: dict[str, Any] = {
            k: v for k, v in fields.items() if k not in ("tags", "namespace", "id", "key")
        }
        for name, want in expect.items():
            assert getattr(memory, name) == want, (
                f"{name} came back {getattr(memory, name)!r}, wrote {want!r}"
            )
        if "namespace" in fields:
            want_ns = (fields["namespace"],) if isinstance(fields["namespace"], str) else fields["namespace"]
            assert memory.namespace == tuple(want_ns)
        if "tags" in fields:
            assert memory.tags == tuple(fields["tags"])
        if "key" in fields:
            assert memory.key == fields["key"]
            got = store.get_by_key(fields["key"], user_id="hostile-writer")
            assert got is not None and got.id == memory_id
        if "id" in fields:
            assert memory_id == fields["id"]
    planted.unchanged()


FILTER_PLACES = (
    "user_id", "agent_id", "thread_id", "namespace", "namespace_prefix", "prefix-label", "a-user+thread",
    "a-user+agent", "a-scope+label", "tags", "source", "metadata-eq", "metadata-in", "metadata-key-eq",
    "metadata-key-exists", "metadata-key-gt", "metadata-key-contains", "any_of",
)  # fmt: skip


def hostile_filter(where: str, value: str) -> dict[str, Any]:
    """A filter holding ``value`` at ``where``; none of them may match tenant A (``value`` is not A's)."""
    if where in ("user_id", "agent_id", "thread_id", "source"):
        return {where: value}
    if where == "namespace":
        return {"namespace": (value,)}
    if where == "namespace_prefix":
        return {"namespace_prefix": (value,)}
    if where == "prefix-label":
        return {"namespace_prefix": ("acme-ns", value)}
    if where == "a-user+thread":
        return {"user_id": "acme", "thread_id": value}
    if where == "a-user+agent":
        return {"user_id": "acme", "agent_id": value}
    if where == "a-scope+label":
        return {**TENANT_A, "namespace": ("acme-ns", "x", value)}
    if where == "tags":
        return {"tags": [value]}
    if where == "metadata-eq":
        return {"metadata": {"tenant": value}}
    if where == "metadata-in":
        return {"metadata": {"tenant": {"$in": [value, value + "2"]}}}
    if where == "metadata-key-eq":
        return {"metadata": {value: "acme"}}
    if where == "metadata-key-exists":
        return {"metadata": {value: {"$exists": True}}}
    if where == "metadata-key-gt":
        return {"metadata": {value: {"$gt": 0}}}
    if where == "metadata-key-contains":
        return {"metadata": {value: {"$contains": "acme"}}}
    return {"any_of": [{"source": value}, {"tags": [value]}]}


def _scope_key(scope: dict[str, Any]) -> ScopeKey:
    return ScopeKey(
        tuple(scope.get("namespace", ())), scope.get("thread_id"), scope.get("agent_id"), scope.get("user_id")
    )


def _selects(flt: dict[str, Any], memory: Any) -> bool:
    """Whether a memory lies inside the hostile filter's scope fields (the ones checkable on any hit)."""
    for name in ("user_id", "agent_id", "thread_id", "source"):
        if name in flt and getattr(memory, name) != flt[name]:
            return False
    if "namespace" in flt and memory.namespace != tuple(flt["namespace"]):
        return False
    if "namespace_prefix" in flt:
        prefix = tuple(flt["namespace_prefix"])
        if memory.namespace[: len(prefix)] != prefix:
            return False
    if "tags" in flt and not set(flt["tags"]) & set(memory.tags):
        return False
    return True


def check_core_reads(planted: Planted, where: str, value: str, seed_b: bool) -> None:
    """With ``value`` in a filter: reads and deletes never see or touch tenant A; all errors typed."""
    store = planted.store
    flt = hostile_filter(where, value)
    if seed_b and not where.startswith("a-"):  # B's own data, where the filter points (if storable)
        b_fields = {k: v for k, v in flt.items() if k in ("user_id", "agent_id", "thread_id", "source")}
        if "namespace" in flt:
            b_fields["namespace"] = flt["namespace"]
        if "tags" in flt:
            b_fields["tags"] = flt["tags"]
        attempt(store.remember, "hostile tenant b note about the window seat", **b_fields)
    protected = set(planted.ids)
    calls: list[tuple[str, Callable[[], Any]]] = [
        (
            "recall",
            lambda: store.recall(value if value.strip() else "window seat", k=20, reinforce=False, **flt),
        ),
        ("recall-q", lambda: store.recall("acme window seat", k=20, reinforce=False, **flt)),
        ("recall_by_vector", lambda: store.recall_by_vector(EMBEDDER.embed(["window seat"])[0], k=20, **flt)),
        ("list", lambda: store.list(limit=100, **flt)),
        ("count", lambda: store.count(**flt)),
        ("facets", lambda: store.facets(**flt)),
    ]
    for name, call in calls:
        call.__qualname__ = f"MemoryStore.{name}"
        ok, result = attempt(call)
        if not ok:
            continue
        if name.startswith("recall"):
            memories = [h.memory for h in result]
        elif name == "list":
            memories = list(result.memories)
        else:
            memories = []
        leaked = [m.id for m in memories if m.id in protected]
        assert not leaked, f"{name} with {flt!r} returned tenant A's {leaked}"
        outside = [m.id for m in memories if not _selects(flt, m)]
        assert not outside, f"{name} with {flt!r} returned memories outside the filter: {outside}"
        if name == "count":
            assert result <= store.count() - len(protected), f"count with {flt!r} counts tenant A"
    scope_only = {k: v for k, v in flt.items() if k in ("user_id", "agent_id", "thread_id", "namespace")}
    if scope_only:
        ok, stats = attempt(store.stats, **scope_only)
        if ok:
            a_scopes = {_scope_key(TENANT_A), _scope_key(TENANT_STAR)}
            for s in stats.scopes:
                key = ScopeKey(s.namespace, s.thread_id, s.agent_id, s.user_id)
                assert key not in a_scopes, f"stats({scope_only!r}) counts tenant A: {s}"
        ok, scopes = attempt(store.scopes, **scope_only)
        if ok:
            assert not {_scope_key(TENANT_A), _scope_key(TENANT_STAR)} & set(scopes), (
                f"scopes({scope_only!r})"
            )
    attempt(store.list_namespaces, prefix=(value,))
    ok, spaces = attempt(store.list_namespaces, prefix=("acme-ns", value))
    if ok:
        assert ("acme-ns", "x") not in spaces, f"list_namespaces(prefix=('acme-ns', {value!r})) lists A's"
    attempt(store.get, value)
    attempt(store.get_by_key, value, **TENANT_A)
    attempt(store.forget, value)
    attempt(store.forget_many, [value, value + "x"])
    attempt(store.forget_keys, [value], **TENANT_A)
    attempt(store.touch, [value])
    attempt(store.forget_by_scope, **flt)
    planted.unchanged()


# -- LangGraph -------------------------------------------------------------------------------------------
def lg_embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in EMBEDDER.embed(texts)]


LG_A = ("lg", "acme")
LG_STAR = ("lg", "*")


def lg_plant(lg: Any) -> dict[tuple[tuple[str, ...], str], dict[str, Any]]:
    items = {
        (LG_A, "pref"): {"text": "acme likes the window seat", "tenant": "acme"},
        ((*LG_A, "notes"), "n1"): {"text": "acme budget note", "tenant": "acme"},
        (LG_STAR, "pref"): {"text": "star tenant likes tea", "tenant": "*"},
    }
    for (namespace, key), value in items.items():
        lg.put(namespace, key, value)
    return items


def lg_unchanged(lg: Any, items: dict[tuple[tuple[str, ...], str], dict[str, Any]]) -> None:
    for (namespace, key), value in items.items():
        item = lg.get(namespace, key)
        assert item is not None and item.value == value, (
            f"tenant A's LangGraph item {namespace}/{key} changed"
        )
    assert len(lg.search(("lg", "acme"), limit=100)) == 2
    assert len(lg.search(("lg", "*"), limit=100)) == 1


def check_langgraph(
    lg: Any, items: Any, where: str, value: str, allowed: tuple[type[BaseException], ...]
) -> None:
    """LangGraph put / get / search / list_namespaces / delete with ``value`` as a label, key or filter."""
    namespace: tuple[str, ...] = (
        ("lg", value) if where in ("label", "key", "filter", "query") else ("lg", "b")
    )
    key = value if where == "key" else "k"
    if where == "deep-label":
        namespace = ("lg", "acme", value)  # under tenant A's namespace: a child, never A's own items
    put_value: dict[str, Any] = {"text": f"hostile {value}"}
    if where == "field":
        put_value = {value: "acme", "text": "hostile field"}
    attempt(lg.put, namespace, key, put_value, allowed=allowed)
    attempt(lg.get, namespace, key, allowed=allowed)
    own = {(LG_A, "pref"), ((*LG_A, "notes"), "n1"), (LG_STAR, "pref")}
    searches: list[dict[str, Any]] = [
        {"namespace_prefix": namespace, "limit": 50},
        {"namespace_prefix": namespace, "query": value, "limit": 50},
        {"namespace_prefix": ("lg",), "filter": {"tenant": value}, "limit": 50},
        {"namespace_prefix": ("lg",), "filter": {value: "acme"}, "limit": 50},
        {
            "namespace_prefix": ("lg",),
            "filter": {"tenant": {"$eq": value}},
            "query": "window seat",
            "limit": 50,
        },
    ]
    for kwargs in searches:
        prefix = kwargs.pop("namespace_prefix")
        ok, found = attempt(lg.search, prefix, allowed=allowed, **kwargs)
        if not ok:
            continue
        for item in found:
            assert tuple(item.namespace[: len(prefix)]) == tuple(prefix), f"search {prefix} returned {item}"
            # no search here may see A's items: another namespace, a child of A's, or a filter A fails
            assert (tuple(item.namespace), item.key) not in own, (
                f"search {prefix} {kwargs} returned A's {item}"
            )
    ok, spaces = attempt(lg.list_namespaces, prefix=namespace, allowed=allowed)
    if ok:
        assert all(tuple(s[: len(namespace)]) == namespace for s in spaces), (
            f"list_namespaces {namespace}: {spaces}"
        )
    attempt(lg.list_namespaces, prefix=("lg", value), suffix=(value,), allowed=allowed)
    attempt(lg.delete, namespace, key, allowed=allowed)
    attempt(lg.delete, LG_A, value, allowed=allowed)  # a hostile key in A's namespace is not one of A's keys
    lg_unchanged(lg, items)


# -- CrewAI ----------------------------------------------------------------------------------------------
CREW_A_SCOPE = "/acme/research"
CREW_STAR_SCOPE = "/*"


def crew_plant(storage: Any) -> list[str]:
    from crewai.memory.types import MemoryRecord

    records = [
        MemoryRecord(
            content=text,
            scope=scope,
            categories=[A_TAG],
            metadata={"tenant": "acme"},
            source=A_SOURCE,
            embedding=lg_embed([text])[0],
        )  # fmt: skip
        for text, scope in (
            ("acme likes the window seat", CREW_A_SCOPE),
            ("acme budget note", CREW_A_SCOPE),
            ("star tenant likes tea", CREW_STAR_SCOPE),
        )
    ]
    storage.save(records)
    return [r.id for r in records]


def crew_unchanged(storage: Any, ids: Sequence[str]) -> None:
    for record_id in ids:
        assert storage.get_record(record_id) is not None, f"tenant A's CrewAI record {record_id} is gone"
    assert storage.count(CREW_A_SCOPE) == 2 and storage.count(CREW_STAR_SCOPE) == 1
    assert storage.list_categories(CREW_A_SCOPE) == {A_TAG: 2}


def crew_labels(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def crew_overlaps_a(path: str) -> bool:
    """Whether a scope path is a planted scope, one of its ancestors (``/`` included) or below one."""
    b = crew_labels(path)
    for planted in (CREW_A_SCOPE, CREW_STAR_SCOPE):
        a = crew_labels(planted)
        if a[: len(b)] == b or b[: len(a)] == a:
            return True
    return False


CREW_PLACES = ("scope", "deep-scope", "category", "metadata-key", "metadata-value", "source", "record-id")


def check_crewai(storage: Any, ids: Sequence[str], where: str, value: str) -> None:
    """CrewAI save / search / list / count / scopes / delete / reset with ``value`` in a path or filter."""
    from crewai.memory.types import MemoryRecord

    path = "/" + value if where == "scope" else "/b"
    if where == "deep-scope":
        path = "/acme/" + value  # a sibling of /acme/research under A's top scope (never research itself)
        assume(crew_labels(path)[:2] != ["acme", "research"] and len(crew_labels(path)) > 1)
    assume(where == "deep-scope" or not crew_overlaps_a(path))
    fields: dict[str, Any] = {"scope": path}
    if where == "category":
        fields["categories"] = [value]
    if where in ("metadata-key", "metadata-value"):
        fields["metadata"] = {value: "acme"} if where == "metadata-key" else {"tenant": value}
    if where == "source":
        fields["source"] = value
    try:
        record = MemoryRecord(content=f"hostile {value}", embedding=lg_embed(["hostile note"])[0], **fields)
    except Exception:  # pydantic refusing the record is CrewAI's own validation, before the storage
        record = None
    if record is not None:
        attempt(storage.save, [record])
    query = lg_embed(["acme likes the window seat"])[0]
    flt = {value: "acme"} if where == "metadata-key" else {"tenant": value}
    searches = [
        {"scope_prefix": path},
        {"scope_prefix": path, "categories": [value]},
        {"scope_prefix": None, "categories": [value]},
        {"scope_prefix": None, "metadata_filter": flt},
        {"scope_prefix": path, "metadata_filter": flt, "categories": [value]},
    ]
    for kwargs in searches:
        ok, found = attempt(storage.search, query, limit=50, **kwargs)
        if ok:
            leaked = [r.id for r, _ in found if r.id in ids]
            assert not leaked, f"search {kwargs} returned tenant A's records {leaked}"
    for call in (
        storage.list_records,
        storage.count,
        storage.get_scope_info,
        storage.list_scopes,
        storage.list_categories,
    ):
        ok, result = attempt(call, path)
        if ok and call == storage.list_records:
            assert not [r.id for r in result if r.id in ids], f"list_records({path!r}) returned tenant A's"
        if ok and call == storage.count:
            assert result <= storage.count() - len(ids), f"count({path!r}) counts tenant A"
    attempt(storage.get_record, value)
    attempt(storage.touch_records, [value])
    attempt(storage.delete, record_ids=[value])
    attempt(storage.delete, categories=[value])
    attempt(storage.delete, metadata_filter=flt)
    attempt(storage.delete, scope_prefix=path)
    attempt(storage.reset, path)
    crew_unchanged(storage, ids)


# -- LlamaIndex chat -------------------------------------------------------------------------------------
CHAT_A = {"acme": ["acme: book the window seat", "acme: and a taxi"], "*": ["star: tea please"]}


async def chat_plant(chat: Any) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    for session, texts in CHAT_A.items():
        await chat.add_messages(session, [ChatMessage(content=t) for t in texts])


async def chat_unchanged(chat: Any) -> None:
    for session, texts in CHAT_A.items():
        assert [m.content for m in await chat.get_messages(session)] == texts, (
            f"chat session {session!r} changed"
        )
        assert await chat.count_messages(session) == len(texts)
    keys = await chat.get_keys()
    assert {"acme", "*"} <= set(keys), f"chat keys lost tenant A: {keys}"


def check_chat(loop: asyncio.AbstractEventLoop, chat: Any, value: str, content: str) -> None:
    """Every chat call with ``value`` as the session key (and a hostile message text)."""
    from llama_index.core.base.llms.types import ChatMessage

    a_texts = {t for texts in CHAT_A.values() for t in texts}

    def call(method: Any, *args: Any) -> tuple[bool, Any]:
        return attempt(awaiting(loop, method), *args)

    call(chat.add_message, value, ChatMessage(content=content))
    call(chat.add_messages, value, [ChatMessage(content=content), ChatMessage(content="second")])
    for method, args in (
        (chat.get_messages, ()), (chat.get_messages_with_ids, ()), (chat.count_messages, ()),
        (chat.archive_oldest_messages, (1,)), (chat.delete_oldest_messages, (1,)),
        (chat.delete_message, (1,)), (chat.delete_message, (2,)), (chat.delete_messages, ()),
    ):  # fmt: skip
        ok, result = call(method, value, *args)
        if ok and isinstance(result, list):
            texts = [(m[1] if isinstance(m, tuple) else m).content for m in result]
            assert not a_texts & set(texts), f"{method.__name__}({value!r}) returned tenant A's {texts}"
        if ok and isinstance(result, ChatMessage):
            assert result.content not in a_texts, f"{method.__name__}({value!r}) deleted tenant A's message"
    call(chat.set_messages, value, [ChatMessage(content=content)])
    call(chat.delete_messages, value)
    loop.run_until_complete(chat_unchanged(chat))


# -- the known bugs, minimal ------------------------------------------------------------------------------
SURROGATE = "\ud800"
SURROGATE_BUG = (
    "bug: a tag filter value that is not valid Unicode text (a lone surrogate, tags=['\\ud800']) is not "
    "validated: _encoding._hashed_tag raises a raw UnicodeEncodeError from recall / recall_by_vector / count "
    "and CrewAI search(categories=['\\ud800']) (writes refuse the same tag with InvalidMemoryError)"
)
SURROGATE_CALLS = ("recall", "recall_by_vector", "count", "crewai-search")


def check_surrogate_tag_filter(url: str, name: str, call: str) -> None:
    """The minimal reproduction of ``surrogate-tag-filter``: one memory, one filtered read."""
    from agentmem_core.errors import InvalidMemoryError

    if call == "crewai-search":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            from agentmem_crewai import ValkeyStorage

        storage = ValkeyStorage.from_url(url, name=name, dims=DIMS)
        try:
            crew_plant(storage)
            try:
                storage.search(lg_embed(["tea"])[0], categories=[SURROGATE])
            except InvalidMemoryError:
                return
        finally:
            storage.close()
        raise AssertionError("search(categories=[lone surrogate]) did not raise InvalidMemoryError")
    with core_store(url, name) as store:
        store.remember("window seat", user_id="acme", tags=["t"])
        calls = {
            "recall": lambda: store.recall("window seat", tags=[SURROGATE]),
            "recall_by_vector": lambda: store.recall_by_vector(EMBEDDER.embed(["seat"])[0], tags=[SURROGATE]),
            "count": lambda: store.count(tags=[SURROGATE]),
        }
        try:
            calls[call]()
        except InvalidMemoryError:
            return
        # the store writes refuse the same value as a tag, typed:
        raise AssertionError(f"{call}(tags=[lone surrogate]) did not raise InvalidMemoryError")
