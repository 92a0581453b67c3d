"""The retry decisions (pure): which failures are sent again, in which form, after which wait."""

from __future__ import annotations

import pytest
import valkey.exceptions as vex

from agentmem_core import ops
from agentmem_core._plan import Call, ScriptCall
from agentmem_core._retry import (
    Failure,
    RetryState,
    classify,
    primary_of,
    resend_form,
    resend_indexes,
)
from agentmem_core._scripts import READ, WRITE
from agentmem_core.config import RetryPolicy, StoreConfig
from agentmem_core.errors import (
    BackendAuthError,
    BackendBusyError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    WriteOutcomeUnknownError,
)


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (vex.ConnectionError("Error 111 connecting to 127.0.0.1:6399."), Failure.NOT_SENT),
        (vex.TimeoutError("Timeout connecting to server"), Failure.NOT_SENT),
        (vex.ConnectionError("Too many connections"), Failure.NOT_SENT),
        (vex.ConnectionError("Connection closed by server."), Failure.LOST),
        (vex.ConnectionError("Error 32 while writing to socket. Broken pipe."), Failure.LOST),
        (vex.TimeoutError("Timeout reading from socket"), Failure.LOST),
        (TimeoutError(), Failure.LOST),
        (ConnectionResetError(104, "reset"), Failure.LOST),
        (vex.BusyLoadingError("LOADING Valkey is loading the dataset in memory"), Failure.REFUSED),
        (vex.ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"), Failure.REFUSED),
        (vex.ResponseError("CLUSTERDOWN The cluster is down"), Failure.REFUSED),
        (vex.ReadOnlyError("READONLY You can't write against a read only replica."), Failure.REFUSED),
        (vex.ResponseError("BUSY Valkey is busy running a script."), Failure.REFUSED),
        (vex.ResponseError("MASTERDOWN Link with MASTER is down"), Failure.REFUSED),
        (vex.AuthenticationError("invalid username-password pair"), Failure.FINAL),
        (vex.NoPermissionError("NOPERM no permissions to run hset"), Failure.FINAL),
        (vex.ResponseError("WRONGTYPE wrong kind of value"), Failure.FINAL),
        (vex.ResponseError("ERR syntax error"), Failure.FINAL),
        (vex.DataError("Invalid input"), Failure.FINAL),
        (ValueError("not a server failure"), Failure.FINAL),
    ],
)
def test_failures_are_classified(exc: BaseException, failure: Failure) -> None:
    assert classify(exc) is failure


@pytest.mark.parametrize(
    "reply",
    [
        "READONLY You can't write against a read only replica.",
        "LOADING Valkey is loading the dataset in memory",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MASTERDOWN Link with MASTER is down",
        "BUSY Valkey is busy running a script.",
    ],
)
def test_refusals_are_classified_as_valkey_py_parses_them(reply: str) -> None:
    # valkey-py strips the code of the errors it has a class for (READONLY, LOADING, ...): the message
    # alone no longer says "READONLY", so the class must be matched too.
    from valkey._parsers.base import BaseParser

    parser = BaseParser.__new__(BaseParser)  # parse_error needs no connection
    assert classify(parser.parse_error(reply)) is Failure.REFUSED


def _fetch(reinforce: bool) -> ops.Fetch:
    return ops.Fetch(ids=("a", "b"), reinforce=reinforce, now="1")


def test_only_ops_safe_to_apply_twice_are_resent_as_they_are() -> None:
    read = ops.ReadMemories(ids=("a",), fields=("content",))
    delete = ops.Delete(tag="t", ids=("a",), now="1")
    audit = ops.AuditAppend(entries=({"a": "remember"},), cap=10)
    assert resend_form(read) is read
    assert resend_form(delete) is delete
    assert resend_form(audit) is audit  # at least once: a duplicate entry, never a lost one
    assert resend_form(_fetch(False)) == _fetch(False)
    # a reinforced fetch goes again as a plain read: the access counts at most once
    assert resend_form(_fetch(True)) == _fetch(False)
    assert resend_form(ops.Merge(id="a", now="1", tags=())) is None
    assert resend_form(Call(("FT.CREATE", "x"))) is None


def test_resend_indexes_keep_later_plain_commands_but_never_an_append_twice() -> None:
    commands = [
        Call(("HGET", "k", "f")),
        ScriptCall(WRITE, ("k",), ("1",)),
        Call(("XADD", "log", "*", "a", "b")),
        Call(("HGET", "k", "f")),
        ScriptCall(WRITE, ("k",), ("1",)),
    ]
    replies = ["v", vex.ResponseError("BUSY"), "1-0", "v", 1]
    assert resend_indexes(commands, replies, [1]) == [1, 3]  # the script that ran (4) is not run again
    assert resend_indexes(commands, replies, [1, 2]) == [1, 2, 3]
    assert resend_indexes(commands, replies, []) == []


def test_resend_indexes_run_a_read_script_again_after_a_failed_write() -> None:
    """A READ that ran before its batch's write (NOSCRIPT on the write) would return the old values."""
    commands = [
        ScriptCall(READ, ("k",), ("0", 0, "f")),
        ScriptCall(WRITE, ("k",), ("1",)),
        ScriptCall(READ, ("k",), ("0", 0, "f")),
        ScriptCall(WRITE, ("j",), ("1",)),
    ]
    replies = [[["old"]], vex.ResponseError("NOSCRIPT No matching script."), [["old"]], 1]
    assert READ.read_only and not WRITE.read_only
    assert resend_indexes(commands, replies, [1]) == [1, 2]  # the read before the failure needs no rerun


def test_a_lost_connection_resends_safe_forms_and_refuses_a_merge() -> None:
    policy = RetryPolicy(retries=2, backoff=0.1, max_backoff=1.0)
    lost = vex.ConnectionError("Connection closed by server.")
    state = RetryState(policy, [_fetch(True), ops.ReadMemories(ids=("a",), fields=())], unit=lambda: 1.0)
    assert state.after_error(lost) == pytest.approx(0.1)
    assert state.batch[0] == _fetch(False)
    assert state.after_error(lost) == pytest.approx(0.2)
    with pytest.raises(BackendConnectionError) as spent:  # the retries are spent: typed, retryable
        state.after_error(lost)
    assert spent.value.retryable and spent.value.__cause__ is lost

    merge = RetryState(policy, [ops.Merge(id="a", now="1", tags=())])
    with pytest.raises(WriteOutcomeUnknownError) as unknown:
        merge.after_error(lost)
    assert not unknown.value.retryable and isinstance(unknown.value, BackendConnectionError)
    # nothing was sent: the merge goes again as it is
    refused_connect = vex.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    assert merge.after_error(refused_connect) >= 0
    assert isinstance(merge.batch[0], ops.Merge)


def test_final_errors_are_never_retried_and_are_typed() -> None:
    state = RetryState(RetryPolicy(), [ops.ReadMemories(ids=("a",), fields=())])
    with pytest.raises(BackendAuthError):
        state.after_error(vex.NoPermissionError("NOPERM no permissions to run the 'evalsha' command"))
    with pytest.raises(BackendError):
        state.after_error(vex.ResponseError("ERR wrong"))
    assert state.attempt == 0
    with pytest.raises(BackendTimeoutError):
        RetryState(RetryPolicy(retries=0), []).after_error(vex.TimeoutError("Timeout reading from socket"))


def test_refusals_wait_then_raise_busy_when_spent() -> None:
    state = RetryState(RetryPolicy(retries=1, backoff=0.2, max_backoff=0.2), [], unit=lambda: 0.0)
    commands = [Call(("GET", "a")), Call(("SET", "a", "1"))]
    replies = ["x", vex.ReadOnlyError("You can't write against a read only replica.")]  # as parsed
    refused = state.refusals(commands, replies)
    assert refused is not None
    assert refused.indexes == [1] and refused.follow and refused.delay == pytest.approx(0.1)
    assert state.refusals(commands, ["x", "OK"]) is None
    with pytest.raises(BackendBusyError):
        state.refusals(commands, replies)
    no_follow = RetryState(RetryPolicy(follow_primary=False), [])
    again = no_follow.refusals(commands, replies)
    assert again is not None and not again.follow


def test_the_backoff_grows_with_full_jitter_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff=0.05, max_backoff=0.3)
    assert [policy.delay(k, 1.0) for k in range(4)] == pytest.approx([0.05, 0.1, 0.2, 0.3])
    assert policy.delay(0, 0.0) == pytest.approx(0.025)  # at least half the ceiling


def test_primary_is_read_from_role() -> None:
    assert primary_of([b"slave", b"127.0.0.1", 6380, b"connected", 10]) == ("127.0.0.1", 6380)
    assert primary_of([b"master", 10, []]) is None
    assert primary_of([b"slave", b"", 0, b"connect", -1]) is None
    assert primary_of(b"garbage") is None


@pytest.mark.parametrize(
    "kwargs",
    [{"retries": -1}, {"retries": True}, {"backoff": -1.0}, {"backoff": float("nan")},
     {"backoff": 1.0, "max_backoff": 0.5}, {"follow_primary": "yes"}],
)  # fmt: skip
def test_bad_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_store_config_carries_a_policy() -> None:
    from agentmem_core.config import IndexConfig

    assert StoreConfig(name="s", index=IndexConfig(dims=3)).retry == RetryPolicy()
    with pytest.raises(ConfigurationError):
        StoreConfig(name="s", index=IndexConfig(dims=3), retry=3)  # type: ignore[arg-type]
