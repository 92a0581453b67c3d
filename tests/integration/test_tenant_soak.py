"""Tenant-isolation soak (issue 18): randomized multi-tenant traffic on one store, checked against a model.

About a hundred scopes (tenants and their agents / threads / namespaces, with look-alike ids such as
``acme`` / ``Acme`` / ``acme `` / ``acme*`` / ``acme-1`` / ``acme-10``) share ONE store name, and so do a
LangGraph ``ValkeyMemoryStore`` (namespaces ``("lg", <tenant>, ...)``) and a LlamaIndex ``ValkeyChatStore``
(session ids per tenant). A seeded ``random.Random`` drives writes (``remember`` / ``remember_many``, with
keys, caller ids and attempts to steal another tenant's caller id), recalls (reinforced or not), forgets by
id and by scope, capacity evictions (``max_items_per_scope``), consolidations of single scopes, LangGraph
put / get / search / delete and chat add / get / count / delete.

The oracle is the core's own reference model (``agentmem_core.testing.model.ReferenceModel``, the one the
conformance suite uses), which also decides capacity evictions; consolidations are mirrored into it from the
summary the store wrote. LangGraph items and chat messages have plain dict / list models here. Checked on
every read: no hit, item or message outside the asked scope (zero cross-scope results), recall pages as the
model ranks them (``recall_page_problems``), lists and counts equal to the model's; every
``CHECK_EVERY`` steps and at the end, ``stats()`` per scope (every core, LangGraph and chat scope) and the
total equal the models', and every scope lists exactly the model's ids.

Runs on the session's Valkey (a store name of its own; the keys are left for the throwaway server) and on
the embedded backend (a temporary SQLite file). Reproduce a failure with ``AGENTMEM_SOAK_SEED=<seed>``
(the seed is printed, and named in every assertion message); ``AGENTMEM_SOAK_STEPS`` changes the length.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import MessageStatus

from agentmem_core import (
    AsyncMemoryStore,
    IndexConfig,
    InvalidMemoryError,
    Kind,
    MemoryInput,
    MemoryStore,
    ScopeKey,
)
from agentmem_core.consolidation import Numbered
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.model import ReferenceModel, recall_page_problems
from agentmem_langgraph import ValkeyMemoryStore
from agentmem_llamaindex import CHAT_NAMESPACE, ValkeyChatStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIMS = 64
EMBEDDER = HashingEmbedder(DIMS)
CAPACITY = 6
STEPS = int(os.environ.get("AGENTMEM_SOAK_STEPS", "1400"))
CHECK_EVERY = 150

# -- tenants ---------------------------------------------------------------------------------------------
USERS = (
    "acme", "Acme", "ACME", "acme ", " acme", "acme*", "*", "acme-1", "acme-10", "acme-1-0", "acme:1",
    "acme|beta", "{acme}", "acme\tx", "ácme", "acme\u200b", "beta", "beta-acme", "globex", "initech",
    "u1", "u10", "u11", "0", "@user_id:{acme}",
)  # fmt: skip
"""Tenant user ids: many are prefixes, case or Unicode variants, or query syntax looking like another."""
LG_LABELS = (
    "acme",
    "Acme",
    "acme ",
    "acme*",
    "*",
    "acme-1",
    "acme-10",
    "beta",
    "{acme}",
    "ácme",
    "u1",
    "u10",
)
"""LangGraph tenant labels (LangGraph refuses ``.`` and NUL in labels)."""
SESSIONS = (
    "acme",
    "Acme",
    "acme ",
    "acme*",
    "*",
    "acme-1",
    "acme-10",
    "beta",
    "{acme}",
    "ácme",
    "s:1",
    "s|2",
)


def _scopes() -> list[dict[str, Any]]:
    """About a hundred distinct scopes: every user alone, with an agent, a thread, a namespace, all four."""
    out: list[dict[str, Any]] = []
    for i, user in enumerate(USERS):
        out.append({"user_id": user})
        out.append({"user_id": user, "agent_id": f"agent-{i % 3}"})
        out.append({"user_id": user, "thread_id": "t1" if i % 2 else "t10"})
        full = {
            "user_id": user,
            "agent_id": "agent-0",
            "thread_id": "t1",
            "namespace": ("org", f"team{i % 4}"),
        }
        out.append(full)
    return out


SCOPES = _scopes()
"""Scopes the core traffic writes to (each a dict of ``remember`` keywords)."""
assert len({ScopeKey(tuple(s.get("namespace", ())), s.get("thread_id"), s.get("agent_id"), s.get("user_id"))
            for s in SCOPES}) == len(SCOPES) == 100  # fmt: skip

WORDS = ("window", "aisle", "seat", "tea", "coffee", "trip", "Lisbon", "delay", "invoice", "budget", "the")


def scope_key(scope: dict[str, Any]) -> ScopeKey:
    return ScopeKey(
        tuple(scope.get("namespace", ())), scope.get("thread_id"), scope.get("agent_id"), scope.get("user_id")
    )


def key_of(memory: Any) -> ScopeKey:
    return ScopeKey(memory.namespace, memory.thread_id, memory.agent_id, memory.user_id)


def matches(scope: dict[str, Any], memory: Any) -> bool:
    """Whether a memory lies in what a scope filter selects (each given field equal; namespace exact)."""
    return all(
        getattr(memory, name) == (tuple(value) if name == "namespace" else value)
        for name, value in scope.items()
    )


class Clock:
    """The injected clock the store and the model share (advanced by the soak)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class Summarizer:
    """A deterministic stand-in summarizer (no model call)."""

    max_input_chars = 100_000

    def summarize(self, memories: Any) -> str:
        items: list[Numbered] = list(memories)
        return f"summary of {len(items)}: " + " ".join(m.content for m in items)[:200]

    async def asummarize(self, memories: Any) -> str:
        return self.summarize(memories)


def lg_embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in EMBEDDER.embed(texts)]


# -- the soak ----------------------------------------------------------------------------------------------
class Soak:
    """One store name on one backend: the core store, the LangGraph store, the chat store, and the models."""

    def __init__(self, url: str, name: str, seed: int, stack: ExitStack) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.clock = Clock()
        options: dict[str, Any] = dict(
            embedder=EMBEDDER, clock=self.clock, index=IndexConfig(dims=DIMS, algorithm="FLAT"), hybrid=False,
            candidate_multiplier=50, live_config_seconds=None, max_items_per_scope=CAPACITY,
        )  # fmt: skip
        self.core = MemoryStore.from_url(url, name=name, **options)
        stack.callback(self.core.close)
        self.core.setup()
        self.lg = stack.enter_context(
            ValkeyMemoryStore.from_url(
                url, name=name, index={"dims": DIMS, "embed": lg_embed, "fields": ["text"]},
                ranking="similarity",
                core_options={"index": IndexConfig(dims=DIMS, algorithm="FLAT"), "live_config_seconds": None},
            )
        )  # fmt: skip
        self.lg.setup()
        self.achat_core = AsyncMemoryStore.from_url(
            url, name=name, embedder=EMBEDDER, index=IndexConfig(dims=DIMS, algorithm="FLAT"),
            live_config_seconds=None,
        )  # fmt: skip
        self.chat = ValkeyChatStore(self.achat_core)
        self.generated: list[str] = []
        self.model = ReferenceModel(
            embedder=EMBEDDER, clock=self.clock, max_items_per_scope=CAPACITY, id_source=self._next_id
        )
        self.lg_model: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
        self.chat_model: dict[str, list[str]] = {}
        self.caller_ids: dict[str, int] = {}  # every caller id ever used -> the scope index it was given in
        self.ids_seen: list[str] = []
        self.counter = 0
        self.step = 0
        self.tally: dict[str, int] = {}

    def ctx(self, what: str) -> str:
        return f"seed={self.seed} step={self.step} {what}"

    def _next_id(self, scope: ScopeKey) -> str:
        assert self.generated, self.ctx("the model wrote a memory the store did not")
        memory_id = self.generated.pop(0)
        assert memory_id[:16] == scope.tag, self.ctx(f"id {memory_id} is not of scope {scope}")
        return memory_id

    # -- core writes -------------------------------------------------------------------------------------
    def _item(self) -> MemoryInput:
        index = self.rng.randrange(len(SCOPES))
        scope = SCOPES[index]
        self.counter += 1
        identity = self.rng.choices(("none", "key", "id", "steal"), (12, 4, 4, 1))[0]
        key = caller = None
        if identity == "key":
            key = f"k{self.rng.randrange(4)}"
        elif identity == "id":
            caller = f"c{index}-{self.rng.randrange(3)}"
            self.caller_ids.setdefault(caller, index)
        elif identity == "steal" and self.caller_ids:
            caller = self.rng.choice(sorted(self.caller_ids))  # maybe another tenant's: must be refused
        words = self.rng.sample(WORDS, self.rng.randint(1, 4))
        return MemoryInput(
            content=" ".join(words) + f" #{self.counter}",
            importance=self.rng.choice((0.0, 0.2, 0.5, 0.8, 1.0)),
            kind=self.rng.choice((Kind.SEMANTIC, Kind.PROCEDURAL, Kind.EPISODIC)),
            tags=self.rng.sample(("a", "b", "vip", "*"), self.rng.randint(0, 2)),
            metadata={"tenant": index, "n": self.counter, "who": scope["user_id"]},
            key=key,
            id=caller,
            **scope,
        )

    def write(self, items: list[MemoryInput]) -> None:
        before = {m.id for m in self.model.memories()}
        got: list[str] | None
        try:
            got = self.core.remember_many(items)
        except InvalidMemoryError:
            got = None
        if got is not None:
            self.generated = [g for g, i in zip(got, items) if i.key is None and i.id is None]
        try:
            want: list[str] | None = self.model.remember_many(items)
        except InvalidMemoryError:
            want = None
        assert (got is None) == (want is None), self.ctx(f"store wrote {got}, model wrote {want}: {items}")
        if got is None:
            self.tally["refused_write"] = self.tally.get("refused_write", 0) + 1
            return
        assert got == want, self.ctx("ids differ")
        evicted = before - {m.id for m in self.model.memories()}
        self.tally["evicted"] = self.tally.get("evicted", 0) + len(evicted)
        assert all(m is None for m in self.core.get_many(sorted(evicted))), self.ctx(f"not evicted {evicted}")
        self.ids_seen.extend(got)
        last = dict(zip(got, items))  # a key or caller id written twice in a batch: the later item wins
        for memory_id, item in last.items():
            memory = self.core.get(memory_id)
            model = self.model.get(memory_id)
            assert (memory is None) == (model is None), self.ctx(
                f"{memory_id}: store {memory}, model {model}"
            )
            if memory is not None:  # (None: evicted by a later item of the same batch)
                assert key_of(memory) == scope_key(_scope_of_input(item)), self.ctx(memory_id)
                assert memory.content == item.content, self.ctx(memory_id)

    # -- core reads ----------------------------------------------------------------------------------------
    def _filter(self) -> dict[str, Any]:
        scope = self.rng.choice(SCOPES)
        if self.rng.random() < 0.25:
            return {"user_id": scope["user_id"]}  # the whole tenant: every scope of this user
        return dict(scope)

    def recall(self) -> None:
        flt = self._filter()
        if self.rng.random() < 0.2:
            flt["tags"] = [self.rng.choice(("a", "vip", "*"))]
        k = self.rng.randint(1, 5)
        reinforce = self.rng.random() < 0.5
        text = " ".join(self.rng.sample(WORDS, 2))
        ranking = self.model.rank(text, **flt)
        if self.rng.random() < 0.5:
            result = self.core.recall(text, k=k, reinforce=reinforce, **flt)
        else:
            result = self.core.recall_by_vector(EMBEDDER.embed([text])[0], k=k, reinforce=reinforce, **flt)
        for hit in result:
            assert matches({n: v for n, v in flt.items() if n != "tags"}, hit.memory), self.ctx(
                f"CROSS-SCOPE recall hit {hit.memory.id} of {key_of(hit.memory)} for {flt}"
            )
        page = [(h.memory.id, h.score, h.distance) for h in result]
        problems = recall_page_problems(ranking, page, offset=0, k=k)
        assert not problems, self.ctx(f"recall {flt} k={k}: {problems}")
        if reinforce:
            self.model.reinforce([h.memory.id for h in result])

    def list_scope(self) -> None:
        flt = self._filter()
        page = self.core.list(limit=100, **flt)
        assert page.next_cursor is None
        for memory in page.memories:
            assert matches(flt, memory), self.ctx(f"CROSS-SCOPE list item {memory.id} for {flt}")
        want = {m.id for m in self.model.list(limit=100, **flt).memories}
        assert {m.id for m in page.memories} == want, self.ctx(f"list {flt}")
        assert self.core.count(**flt) == len(want), self.ctx(f"count {flt}")

    # -- core deletes --------------------------------------------------------------------------------------
    def forget_one(self) -> None:
        live = [m.id for m in self.model.memories()]
        pool = live if live and self.rng.random() < 0.7 else self.ids_seen or ["nobody"]
        memory_id = self.rng.choice(sorted(pool))
        before = self.model.get(memory_id)
        others = self.model.count() - (before is not None)
        assert self.core.forget(memory_id) == self.model.forget(memory_id), self.ctx(f"forget {memory_id}")
        assert self.core.count() - self._foreign() == others, self.ctx(f"forget {memory_id} deleted others")

    def forget_scope(self) -> None:
        flt = self._filter()
        if self.rng.random() < 0.3:
            flt["tags"] = [self.rng.choice(("a", "b", "*"))]
        outside = [
            m.id
            for m in self.model.memories()
            if not matches({n: v for n, v in flt.items() if n != "tags"}, m)
        ]
        got, want = self.core.forget_by_scope(**flt), self.model.forget_by_scope(**flt)
        assert got == want, self.ctx(f"forget_by_scope {flt}: store {got}, model {want}")
        alive = self.core.get_many(outside)
        assert all(m is not None for m in alive), self.ctx(f"forget_by_scope {flt} deleted another scope's")

    def consolidate(self) -> None:
        # a full scope (all four fields) selects exactly itself; consolidation is mirrored into the model
        # from the summary the store wrote, so only while the scope has room for it (no eviction involved)
        candidates = [s for s in SCOPES if "namespace" in s]
        scope = self.rng.choice(candidates)
        sources = [m for m in self.model.list(limit=100, **scope).memories if m.kind is not Kind.SUMMARY]
        if self.model.count(**scope) + 1 > CAPACITY:
            return
        others = {m.id for m in self.model.memories() if key_of(m) != scope_key(scope)}
        result = self.core.consolidate(Summarizer(), **scope)
        if len(sources) < 2:
            assert result.summaries == (), self.ctx(f"consolidate {scope}: {result}")
            return
        assert len(result.summaries) == 1 and result.deleted == len(sources), self.ctx(f"{scope}: {result}")
        summary = self.core.get(result.summaries[0])
        assert summary is not None and key_of(summary) == scope_key(scope), self.ctx(f"summary {summary}")
        for m in sources:
            assert self.model.forget(m.id)
        self.generated = [summary.id]
        self.model.remember_many([
            MemoryInput(
                content=summary.content, kind=Kind.SUMMARY, importance=summary.importance, tags=summary.tags,
                source=summary.source, metadata=summary.metadata, created_at=summary.created_at, **scope,
            )
        ])  # fmt: skip
        assert all(m is not None for m in self.core.get_many(sorted(others))), self.ctx("consolidate leaked")
        self.tally["consolidated"] = self.tally.get("consolidated", 0) + 1

    # -- LangGraph -----------------------------------------------------------------------------------------
    def _lg_namespace(self) -> tuple[str, ...]:
        label = self.rng.choice(LG_LABELS)
        return (
            ("lg", label) if self.rng.random() < 0.5 else ("lg", label, self.rng.choice(("notes", "prefs")))
        )

    def lg_step(self) -> None:
        namespace = self._lg_namespace()
        key = f"item-{self.rng.randrange(5)}"
        action = self.rng.random()
        if action < 0.45:
            value = {"text": " ".join(self.rng.sample(WORDS, 3)), "tenant": namespace[1]}
            self.lg.put(namespace, key, value)
            self.lg_model.setdefault(namespace, {})[key] = value
        elif action < 0.6:
            self.lg.delete(namespace, key)
            self.lg_model.get(namespace, {}).pop(key, None)
        elif action < 0.75:
            item = self.lg.get(namespace, key)
            want = self.lg_model.get(namespace, {}).get(key)
            assert (None if item is None else (tuple(item.namespace), item.value)) == (
                None if want is None else (namespace, want)
            ), self.ctx(f"lg get {namespace} {key}")
        else:
            prefix = namespace[:2]
            query = " ".join(self.rng.sample(WORDS, 2)) if self.rng.random() < 0.6 else None
            items = self.lg.search(prefix, query=query, limit=100)
            for item in items:
                assert tuple(item.namespace[:2]) == prefix, self.ctx(
                    f"CROSS-TENANT lg item {item} for {prefix}"
                )
            want = {(ns, k) for ns, kv in self.lg_model.items() if ns[:2] == prefix for k in kv}
            assert {(tuple(i.namespace), i.key) for i in items} == want, self.ctx(
                f"lg search {prefix} {query}"
            )

    # -- LlamaIndex chat -----------------------------------------------------------------------------------
    async def chat_step(self) -> None:
        session = self.rng.choice(SESSIONS)
        action = self.rng.random()
        if action < 0.5:
            texts = [
                f"{session} says {self.rng.choice(WORDS)} #{self.counter}-{j}"
                for j in range(self.rng.randint(1, 3))
            ]
            self.counter += 1
            await self.chat.add_messages(session, [ChatMessage(content=t) for t in texts])
            self.chat_model.setdefault(session, []).extend(texts)
        elif action < 0.6:
            await self.chat.delete_messages(session)
            self.chat_model.pop(session, None)
        else:
            got = [m.content for m in await self.chat.get_messages(session, status=MessageStatus.ACTIVE)]
            assert got == self.chat_model.get(session, []), self.ctx(f"chat {session!r}")
            assert await self.chat.count_messages(session) == len(got), self.ctx(f"chat count {session!r}")

    # -- whole-store checks --------------------------------------------------------------------------------
    def _foreign(self) -> int:
        """How many memories of the store are LangGraph items or chat messages (not the core model's)."""
        return sum(len(kv) for kv in self.lg_model.values()) + sum(len(v) for v in self.chat_model.values())

    async def check_all(self) -> None:
        stats = self.core.stats()
        got = {ScopeKey(s.namespace, s.thread_id, s.agent_id, s.user_id): s.total for s in stats.scopes}
        want = {
            ScopeKey(s.namespace, s.thread_id, s.agent_id, s.user_id): s.total
            for s in self.model.stats().scopes
        }
        for namespace, kv in self.lg_model.items():
            if kv:
                want[ScopeKey(namespace, None, None, None)] = len(kv)
        for session, messages in self.chat_model.items():
            if messages:
                want[ScopeKey((*CHAT_NAMESPACE, session), None, None, None)] = len(messages)
        assert got == want, self.ctx(
            f"stats per scope: extra {set(got) - set(want)}, missing {set(want) - set(got)}"
        )
        assert stats.total == sum(want.values()), self.ctx("stats total")
        for scope in SCOPES:
            page = self.core.list(limit=100, **scope)
            exact = {m.id for m in page.memories if key_of(m) == scope_key(scope)}
            want_ids = {m.id for m in self.model.memories() if key_of(m) == scope_key(scope)}
            assert exact == want_ids, self.ctx(f"list of {scope}")
            assert all(matches(scope, m) for m in page.memories), self.ctx(f"CROSS-SCOPE list of {scope}")
        keys = await self.chat.get_keys()
        assert sorted(keys) == sorted(s for s, v in self.chat_model.items() if v), self.ctx("chat keys")
        lg_spaces = self.lg.list_namespaces(prefix=("lg",), limit=1000)
        assert sorted(lg_spaces) == sorted(ns for ns, kv in self.lg_model.items() if kv), self.ctx(
            "lg namespaces"
        )

    async def run(self, steps: int) -> dict[str, int]:
        ops = (
            ("remember", 20), ("remember_many", 10), ("recall", 20), ("list", 10), ("forget", 7),
            ("forget_by_scope", 3), ("consolidate", 3), ("lg", 15), ("chat", 10),
        )  # fmt: skip
        names = [n for n, _ in ops]
        weights = [w for _, w in ops]
        for self.step in range(1, steps + 1):
            op = self.rng.choices(names, weights)[0]
            self.tally[op] = self.tally.get(op, 0) + 1
            self.clock.now += self.rng.choice((0.0, 1.0, 30.0, 600.0))
            if op == "remember":
                self.write([self._item()])
            elif op == "remember_many":
                self.write([self._item() for _ in range(self.rng.randint(2, 8))])
            elif op == "recall":
                self.recall()
            elif op == "list":
                self.list_scope()
            elif op == "forget":
                self.forget_one()
            elif op == "forget_by_scope":
                self.forget_scope()
            elif op == "consolidate":
                self.consolidate()
            elif op == "lg":
                self.lg_step()
            else:
                await self.chat_step()
            if self.step % CHECK_EVERY == 0:
                await self.check_all()
        await self.check_all()
        self.tally["live_memories"] = self.model.count()
        return self.tally


def _scope_of_input(item: MemoryInput) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": item.user_id}
    for name in ("agent_id", "thread_id"):
        if getattr(item, name) is not None:
            out[name] = getattr(item, name)
    if item.namespace:
        out["namespace"] = tuple(item.namespace)
    return out


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("AGENTMEM_SOAK_SEED", random.SystemRandom().randrange(2**32)))
    print(f"tenant soak seed: {value} (AGENTMEM_SOAK_SEED={value} reproduces this run)")
    return value


@pytest.fixture(params=["valkey", "sqlite"])
def soak_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "valkey":
        yield request.getfixturevalue("valkey_url")
    else:
        yield f"sqlite:///{tmp_path / 'soak.db'}"


@pytest.mark.timeout(120)
async def test_multi_tenant_soak_matches_the_model(soak_url: str, unique_name: str, seed: int) -> None:
    with ExitStack() as stack:
        soak = Soak(soak_url, unique_name, seed, stack)
        try:
            tally = await soak.run(STEPS)
        finally:
            await soak.achat_core.close()
    print(f"seed {seed}: {tally}")
    assert tally.get("recall", 0) > 50 and tally.get("forget_by_scope", 0) > 5
    assert tally.get("evicted", 0) > 10 and tally.get("consolidated", 0) > 0  # both were exercised


def test_the_scope_matcher_rejects_a_cross_scope_memory() -> None:
    """The soak's isolation check is not vacuous: a memory of a look-alike tenant fails it."""

    class Fake:
        namespace: tuple[str, ...] = ()
        thread_id = None
        agent_id = None
        user_id = "acme "

    assert not matches({"user_id": "acme"}, Fake())
    assert matches({"user_id": "acme "}, Fake())
    assert not matches({"user_id": "acme ", "thread_id": "t1"}, Fake())
    assert np.isfinite(EMBEDDER.embed(["x"])[0]).all()
