"""The Valkey translation of ``TermStats``: one script call for every scope on a standalone server, one
per scope (its slot) on a cluster; the result sums the calls' rows, and any call that cannot tell makes
the whole answer ``None`` (the recall then counts with the index)."""

from __future__ import annotations

from agentmem_core import ops
from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._plan import ScriptCall
from agentmem_core._scripts import TERM_STATS
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import IndexConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.schema import IndexSpec

TAGS = tuple(ScopeKey(("ns", str(i))).tag for i in range(3))
OP = ops.TermStats(TAGS, (), ("appl", "banana"), 1000.0)


def _ops(cluster: bool) -> ValkeyOps:
    keys = Keys("t")
    engine = EngineInfo("redisearch", (2, 10, 5))
    return ValkeyOps(keys, IndexSpec(keys, IndexConfig(dims=4)), engine, 1000, cluster)


def test_a_standalone_server_gets_one_call_naming_every_scopes_four_keys() -> None:
    (call,) = _ops(False).commands(OP)
    assert isinstance(call, ScriptCall) and call.script is TERM_STATS
    keys = Keys("t")
    per_scope = [(keys.created(t), keys.expiring(t), keys.terms(t), keys.expiring_terms(t)) for t in TAGS]
    assert call.keys == tuple(k for four in per_scope for k in four)
    assert call.args[2:] == ("appl", "banana")


def test_a_cluster_gets_one_call_per_scope_and_the_rows_are_summed() -> None:
    v = _ops(True)
    commands = v.commands(OP)
    assert [c.keys[0] for c in commands] == [Keys("t").created(tag) for tag in TAGS]  # type: ignore[union-attr]
    assert v.result(OP, commands, [[1, 10, 2, 0], [1, 5, 1, 1], [1, 0, 0, 0]]) == (15, [3, 1])
    assert v.result(OP, commands, [[1, 10, 2, 0], [0], [1, 0, 0, 0]]) is None
