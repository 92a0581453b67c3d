"""The pure routing decisions of the Valkey sender on a cluster (no server): docs/cluster.md §4.

Which commands leave the cluster pipeline for an explicit target, in what order a mixed batch is sent, what
goes again after NOSCRIPT (EVAL on a cluster), and the checkpointer's commands in the core's types.
"""

from __future__ import annotations

import valkey.exceptions as vex

from agentmem_core._plan import Call, ScriptCall
from agentmem_core._scripts import ALL_SCRIPTS
from agentmem_core.backends.valkey_client import _first_error, _reloaded, _segments, cluster_route
from agentmem_core.errors import BackendError, translate_backend_error
from agentmem_langgraph.checkpoint import _plan as cp
from agentmem_langgraph.checkpoint._lua import PUT, SCRIPTS

SCRIPT = ALL_SCRIPTS[0]


def test_keyless_admin_commands_have_an_explicit_target() -> None:
    assert cluster_route(("SCRIPT", "LOAD", "return 1")) == "primaries"
    assert cluster_route((b"script", b"LOAD", b"return 1")) == "primaries"
    for args in [("FT._LIST",), ("MODULE", "LIST"), ("FT.CONFIG", "GET", "TIMEOUT"), ("ping",)]:
        assert cluster_route(args) == "one", args


def test_keyed_commands_stay_in_the_pipeline() -> None:
    keyed = [("HSET", "k", "f", "v"), ("EVALSHA", "0" * 40, 1, "k"), ("EVAL", "return 1", 0), ("DEL", "a")]
    indexed = [("FT.SEARCH", "idx", "*"), ("FT.CREATE", "idx"), ("FT.INFO", "idx")]  # the client routes them
    for args in keyed + indexed:
        assert cluster_route(args) is None, args


def test_a_mixed_batch_keeps_its_order() -> None:
    commands = [
        Call(("FT._LIST",)),
        Call(("HSET", "a", "f", "v")),
        ScriptCall(SCRIPT, ("b",), ()),
        Call(("SCRIPT", "LOAD", "x")),
        Call(("SCRIPT", "LOAD", "y")),
        Call(("ZADD", "c", 0, "m")),
    ]
    assert _segments(commands) == [("one", [0]), (None, [1, 2]), ("primaries", [3]), ("primaries", [4]),
                                   (None, [5])]  # fmt: skip
    assert _segments([]) == []


def test_after_noscript_a_cluster_sends_the_script_body_routed_by_its_keys() -> None:
    script_call = ScriptCall(SCRIPT, ("am:s:z:{t}", "am:s:c:{t}"), ("1", 2))
    read = Call(("HGETALL", "am:s:m:{t}1"))
    commands = [Call(("HSET", "x", "f", "v")), script_call, read]
    again = [1, 2]
    as_eval = _reloaded(commands, again, [1], as_eval=True)
    assert as_eval == [Call(("EVAL", SCRIPT.body, 2, "am:s:z:{t}", "am:s:c:{t}", "1", 2)), read]
    assert _reloaded(commands, again, [1], as_eval=False) == [script_call, read]  # after SCRIPT LOAD


def test_one_reply_for_every_primary_is_the_first_error() -> None:
    refused = vex.ResponseError("NOPERM no")
    assert _first_error(["sha", refused, vex.ResponseError("other")]) is refused
    assert _first_error(["sha", "sha"]) == "sha"
    assert _first_error([]) is None  # a cluster with no known primary: nothing answered


def test_a_cluster_client_refusal_is_translated() -> None:
    error = translate_backend_error(vex.ValkeyClusterException("Too many targets for command"))
    assert type(error) is BackendError and "cannot route" in str(error)


def test_the_checkpointer_sends_the_core_commands() -> None:
    keys = ("p:{t}:ids", "p:{t}:cp")
    converted = cp.core_commands([cp.Command(("PING",)), cp.ScriptCall(PUT, keys, (0, "m"))])
    assert converted[0] == Call(("PING",))
    script_call = converted[1]
    assert isinstance(script_call, ScriptCall)
    assert (script_call.script.sha, script_call.script.body) == (PUT.sha, PUT.body)
    assert script_call.command() == cp.ScriptCall(PUT, keys, (0, "m")).evalsha()
    assert {s.sha for s in SCRIPTS} == {c.script.sha for c in cp.core_commands(
        [cp.ScriptCall(s, keys, ()) for s in SCRIPTS]) if isinstance(c, ScriptCall)}  # fmt: skip
