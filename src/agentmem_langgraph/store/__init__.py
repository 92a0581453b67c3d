"""LangGraph long-term memory on agentmem: ``ValkeyMemoryStore`` / ``AsyncValkeyMemoryStore`` (``BaseStore``).

Both translate LangGraph's ops onto agentmem_core's public API (``MemoryStore`` / ``AsyncMemoryStore``)::

    from agentmem_langgraph import ValkeyMemoryStore

    with ValkeyMemoryStore.from_url("valkey://localhost:6379", name="agent",
                                    index={"dims": 384, "embed": embed_fn, "fields": ["text"]}) as store:
        store.setup()
        graph = builder.compile(store=store)

Mapping onto the core:

* namespace tuple -> the memory's ``namespace`` (a path of labels: ``("a.b",)`` and ``("a", "b")`` are
  different namespaces, and the prefix ``("a", "b")`` never matches ``("a", "bc")``);
* key -> the memory's ``key`` (an upsert within the namespace; a re-put keeps ``created_at``);
* value -> the memory's ``metadata`` (a JSON object; keys come back sorted, equal as a dict);
* the texts at the index fields -> what is embedded, one vector each (``remember(texts=...)``): with the
  field ``"$"`` the JSON of the whole value; several fields, or paths matching several texts
  (``"a[*].b"``), give one vector per text, and search scores the item by its closest one, as
  ``InMemoryStore`` does. The memory's ``content`` is the texts joined by newlines (hybrid recall matches
  its words). Blank texts are not embedded. Puts with ``index=False``, puts without any text at the
  fields and every put of a store without ``index`` are stored unembedded (``remember(embed=False)``)
  with the core tag ``langgraph:unindexed``;
* ``ttl`` (minutes) -> the core ``ttl`` in seconds; reads with ``refresh_ttl`` restart it (the core's
  ``refresh_ttl=``); Valkey expires items itself;
* ``created_at`` / ``updated_at`` -> the memory's, as aware UTC datetimes.

Batches: results come in op order; every put (and delete) applies after the batch's reads, and the last
put per (namespace, key) wins, as in ``InMemoryStore``. Namespaces of ops passed straight to ``batch`` are
validated with LangGraph's ``validate_op_namespace``.

Search:

* without a query (or without ``index``): oldest first by ``created_at`` (a re-put keeps its place, a
  deleted and re-put item moves to the end), ties in one namespace in write order. ``InMemoryStore``
  agrees within a namespace but groups namespaces in the order its dict first saw them;
* with a query and ``ranking="similarity"``: cosine similarity (``1 - distance``), best first, as
  ``InMemoryStore``; with ``ranking="composite"`` (default) ``score`` is the core's composite score
  (similarity, recency, importance; hybrid lexical relevance when the core has it on), in ``[0, 1]``. Items
  without a vector follow the ranked ones with ``score=None`` (offset counts through both);
* ``filter``: top-level keys compare whole values, nested dicts match partially (``{"a": {"b": 1}}``
  becomes the core path ``"a.b"``), operators ``$eq $ne $gt $gte $lt $lte`` (and the core's ``$in $nin
  $exists $contains``). Ranges compare numbers with numbers and strings with strings; a missing key
  never matches a range (``InMemoryStore`` raises ``TypeError`` there).

``list_namespaces`` is the core's (namespaces holding live items, sorted, ``"*"`` wildcards).
"""

from __future__ import annotations

from agentmem_langgraph.store._plan import Ranking
from agentmem_langgraph.store.aio import AsyncValkeyMemoryStore
from agentmem_langgraph.store.store import ValkeyMemoryStore

__all__ = ["AsyncValkeyMemoryStore", "Ranking", "ValkeyMemoryStore"]
