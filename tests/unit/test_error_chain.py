"""Errors a server returns in place (a pipeline reply that is an exception) keep their cause chain.

Pure: the reply exceptions are built by valkey-py's own reply parser, as a pipeline returns them.
"""

from __future__ import annotations

from typing import Any

import pytest
import valkey.exceptions as vex
from valkey._parsers.base import BaseParser

from agentmem_core import ops
from agentmem_core._encoding import Keys
from agentmem_core._plan import expect
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import IndexConfig
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import AgentMemError, BackendAuthError, BackendError
from agentmem_core.schema import IndexSpec


def server_error(line: str) -> Any:
    """The exception valkey-py's parser makes of the error reply ``-<line>``."""
    return BaseParser.__new__(BaseParser).parse_error(line)


def translation(store: str = "chain") -> ValkeyOps:
    keys = Keys(store)
    return ValkeyOps(keys, IndexSpec(keys, IndexConfig(dims=4)), EngineInfo("redisearch", (2, 10, 5)), 1000)


def raised_by(reply: Any) -> AgentMemError:
    with pytest.raises(AgentMemError) as caught:
        expect(reply)
    return caught.value


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("NOPERM User u has no permissions to run the 'hgetall' command", BackendAuthError),
        ("ERR something the server did not like", BackendError),
    ],
)
def test_an_error_in_place_chains_to_the_backend_exception(line: str, kind: type[AgentMemError]) -> None:
    v = translation()
    op = ops.AllScopes()
    commands = v.commands(op)
    original = server_error(line)
    assert isinstance(original, vex.ResponseError)
    error = raised_by(v.result(op, commands, [original]))
    assert type(error) is kind
    assert error.__cause__ is original  # not the error itself (``raise exc from exc``)
    assert line.split(" ", 1)[1] in str(error)  # valkey-py strips the code it has a class for


def test_an_untranslated_error_reply_chains_too() -> None:
    original = server_error("ERR boom")
    assert raised_by(original).__cause__ is original


def test_a_refused_key_names_the_command_and_its_keys() -> None:
    v = translation("chain")
    op = ops.AllScopes()
    commands = v.commands(op)
    original = server_error("NOPERM No permissions to access a key")
    error = raised_by(v.result(op, commands, [original]))
    assert isinstance(error, BackendAuthError) and not error.retryable
    assert "No permissions to access a key" in str(error)
    assert f"HGETALL on keys {v.keys.scopes}" in str(error)
    assert error.__cause__ is original
