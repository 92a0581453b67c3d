"""Pure plans for every checkpointer operation, written once for the sync and the async saver.

Each operation is a *flow*: a generator that yields requests (a :class:`Batch` of commands to pipeline,
or a :class:`Scan` of key names), receives the replies, and either returns a result or yields
:class:`Emit` items (``list``). The executors in ``saver.py`` and ``aio.py`` only send what a flow asks
for; validation, escaping, serialization, paging and reply parsing all live here. The commands go
through the core's Valkey sender (:func:`core_commands`), so the checkpointer retries, follows a promoted
primary, recovers from NOSCRIPT and routes keyless commands on a cluster exactly as the core store does.

Round trips: ``put``, ``put_writes`` and ``get_tuple`` are one script call each; ``list`` is one call per
page of checkpoints; ``delete_thread`` is one ``DEL``. Only the cross-thread admin operations
(``list(None)``, ``delete_for_runs``) SCAN the prefix; no hot path does.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import valkey.exceptions as vex
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentmem_core import _plan as core
from agentmem_core._scripts import Script as CoreScript
from agentmem_core.errors import translate_backend_error
from agentmem_langgraph.checkpoint import _keys as k
from agentmem_langgraph.checkpoint._codec import EMPTY, decode_entry, dump, frame
from agentmem_langgraph.checkpoint._lua import (
    DELETE_RUNS,
    FETCH_MEMBERS,
    FETCH_RANGE,
    PRUNE_KEEP_LATEST,
    PUT,
    PUT_WRITES,
    RESTORE_THREAD,
    SCRIPTS,
    Script,
)
from agentmem_langgraph.checkpoint.errors import InvalidCheckpointConfigError, ThreadNotEmptyError

T = TypeVar("T")

__all__ = [
    "Batch",
    "Command",
    "Emit",
    "Flow",
    "Scan",
    "ScriptCall",
    "Settings",
    "backend_errors",
    "copy_thread_flow",
    "core_commands",
    "delete_for_runs_flow",
    "delete_thread_flow",
    "get_tuple_flow",
    "list_flow",
    "next_version",
    "prune_flow",
    "put_flow",
    "put_writes_flow",
    "setup_flow",
]

Arg = str | bytes | int


class Command(NamedTuple):
    """A plain command, e.g. ``("DEL", key, ...)``."""

    args: tuple[Arg, ...]


class ScriptCall(NamedTuple):
    """A script invocation on the keys of one thread."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Arg, ...]

    def evalsha(self) -> tuple[Arg, ...]:
        """Arguments of ``EVALSHA`` (the normal path)."""
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


class Batch(NamedTuple):
    """Commands to pipeline in one round trip; the reply is the list of their replies, in order."""

    commands: tuple[Command | ScriptCall, ...]


class Scan(NamedTuple):
    """SCAN every node for keys matching ``pattern``; the reply is the list of key names."""

    pattern: str


class Emit(NamedTuple):
    """An item a listing flow produces for its caller (the executor resumes it with ``None``)."""

    value: CheckpointTuple


Flow = Generator["Batch | Scan | Emit", Any, T]


class Settings(NamedTuple):
    """What every plan needs from the saver: naming, TTL and serialization."""

    prefix: str
    serde: SerializerProtocol
    ttl_ms: int = 0
    refresh_on_read: bool = True
    page_size: int = 100

    @property
    def read_ttl(self) -> int:
        """The TTL reads re-apply (0 when reads must not refresh it)."""
        return self.ttl_ms if self.refresh_on_read else 0


@contextlib.contextmanager
def backend_errors() -> Iterator[None]:
    """Translate valkey-py exceptions into the agentmem tree, chained (used by both executors)."""
    try:
        yield
    except vex.ValkeyError as exc:
        raise translate_backend_error(exc) from exc


def next_version(current: str | int | float | None) -> str:
    """Next channel version: a zero-padded counter plus a random suffix, as the reference savers use.

    The suffix keeps versions unique across forks of a thread (time travel), so a fork never overwrites
    the blob an older branch still references.
    """
    if current is None:
        number = 0
    elif isinstance(current, (int, float)):
        number = int(current)
    else:
        number = int(current.split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


# --- input validation -------------------------------------------------------------------------------


def _configurable(config: Any) -> Mapping[str, Any]:
    conf = config.get("configurable") if isinstance(config, Mapping) else None
    if not isinstance(conf, Mapping):
        raise InvalidCheckpointConfigError("the config has no 'configurable' section (need thread_id)")
    return conf


def _id_string(value: Any, name: str) -> str:
    if isinstance(value, (str, int, uuid.UUID)) and not isinstance(value, bool) and str(value) != "":
        return str(value)
    raise InvalidCheckpointConfigError(f"configurable.{name} must be a non-empty string, got {value!r}")


def thread_id_of(config: Any) -> str:
    """``configurable.thread_id`` as a string, or a clear error when it is missing or unusable."""
    conf = _configurable(config)
    if conf.get("thread_id") is None:
        raise InvalidCheckpointConfigError(
            "the checkpointer needs configurable.thread_id, e.g. {'configurable': {'thread_id': 'abc'}}"
        )
    return _id_string(conf["thread_id"], "thread_id")


def ns_of(config: Any, default: str | None = "") -> str | None:
    """``configurable.checkpoint_ns`` (``default`` when absent)."""
    ns = _configurable(config).get("checkpoint_ns", default)
    if ns is not None and not isinstance(ns, str):
        raise InvalidCheckpointConfigError(f"configurable.checkpoint_ns must be a string, got {ns!r}")
    return ns


def checkpoint_id_of(config: Any) -> str | None:
    """``configurable.checkpoint_id`` or ``None``."""
    cid = _configurable(config).get("checkpoint_id")
    return None if cid is None or cid == "" else _id_string(cid, "checkpoint_id")


def _keys_of(s: Settings, thread_id: str) -> tuple[str, ...]:
    return tuple(k.thread_keys(s.prefix, thread_id))


def _check(reply: Any) -> Any:
    if isinstance(reply, vex.ValkeyError):
        raise translate_backend_error(reply) from reply
    if isinstance(reply, Exception):
        raise reply
    return reply


_CORE_SCRIPTS = {script.sha: CoreScript(script.name, script.body) for script in SCRIPTS}


def core_commands(commands: Sequence[Command | ScriptCall]) -> list[core.Command]:
    """A batch in the core's command types, for its Valkey sender.

    Raw commands are never sent again after a lost connection (see
    :meth:`agentmem_core.backends.valkey_client.ValkeySender.send`), so a checkpoint write whose outcome
    is unknown fails with the typed error rather than being applied twice; refused or unsent ones are.
    """
    out: list[core.Command] = []
    for command in commands:
        if isinstance(command, ScriptCall):
            known = _CORE_SCRIPTS.get(command.script.sha)
            script = known or CoreScript(command.script.name, command.script.body)
            out.append(core.ScriptCall(script, command.keys, command.args))
        else:
            out.append(core.Call(command.args))
    return out


def _decode_all(s: Settings, thread_id: str, entries: Sequence[Any]) -> list[CheckpointTuple]:
    return [decode_entry(s.serde, thread_id, e) for e in entries if e is not None and len(e) == 5]


def _matches(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    return not filter or all(metadata.get(key) == value for key, value in filter.items())


# --- flows ------------------------------------------------------------------------------------------


def setup_flow(s: Settings) -> Flow[None]:
    """Check the server answers and preload the scripts (optional: scripts also load on first use)."""
    commands = (Command(("PING",)), *(Command(("SCRIPT", "LOAD", sc.body)) for sc in SCRIPTS))
    for reply in (yield Batch(commands)):
        _check(reply)


def put_flow(
    s: Settings,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Flow[RunnableConfig]:
    """Store a checkpoint, its new channel blobs and its run membership in one script call."""
    thread_id = thread_id_of(config)
    ns = ns_of(config) or ""
    parent = checkpoint_id_of(config) or ""
    cid = _id_string(checkpoint.get("id"), "checkpoint id") if isinstance(checkpoint, Mapping) else ""
    if not cid:
        raise InvalidCheckpointConfigError("the checkpoint has no id")
    stored: dict[str, Any] = dict(checkpoint)
    values: dict[str, Any] = stored.pop("channel_values", None) or {}
    md = get_checkpoint_metadata(config, metadata)
    cp_type, cp_data = dump(s.serde, stored)
    md_type, md_data = dump(s.serde, md)
    blob_args: list[Arg] = []
    for channel, version in new_versions.items():
        typed = dump(s.serde, values[channel]) if channel in values else EMPTY
        blob_args += [k.blob_field(ns, channel, version), frame(typed)]
    referenced = {k.blob_field(ns, ch, v) for ch, v in checkpoint.get("channel_versions", {}).items()}
    referenced |= {k.blob_field(ns, ch, v) for ch, v in new_versions.items()}
    run_id = md.get("run_id")
    run = str(run_id) if isinstance(run_id, (str, uuid.UUID)) else ""
    delta = "1" if md.get("counters_since_delta_snapshot") else "0"
    call = ScriptCall(
        PUT,
        _keys_of(s, thread_id),
        (
            s.ttl_ms,
            k.member(ns, cid),
            frame([cp_type, cp_data, md_type, md_data, parent]),
            "\x01".join(sorted(referenced)),
            f"{k.escape(parent)}\x01{run}\x01{delta}",
            run,
            *blob_args,
        ),
    )
    _check((yield Batch((call,)))[0])
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}


def put_writes_flow(
    s: Settings,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str = "",
) -> Flow[None]:
    """Store a task's writes atomically; idempotent per (task_id, idx), special channels overwrite."""
    thread_id = thread_id_of(config)
    ns = ns_of(config) or ""
    cid = checkpoint_id_of(config)
    if cid is None:
        raise InvalidCheckpointConfigError("put_writes needs configurable.checkpoint_id")
    task = _id_string(task_id, "task_id")
    args: list[Arg] = [s.ttl_ms, k.member(ns, cid)]
    for idx, (channel, value) in enumerate(writes):
        widx = WRITES_IDX_MAP.get(channel, idx)
        typed = dump(s.serde, value)
        args += [
            k.write_field(ns, cid, task, widx),
            frame([task, str(widx), channel, typed[0], typed[1], task_path]),
            "o" if widx < 0 else "n",
        ]
    if len(args) == 2:
        return
    _check((yield Batch((ScriptCall(PUT_WRITES, _keys_of(s, thread_id), tuple(args)),)))[0])


def get_tuple_flow(s: Settings, config: RunnableConfig) -> Flow[CheckpointTuple | None]:
    """The checkpoint named by the config, or the newest of its namespace; ``None`` if there is none."""
    thread_id = thread_id_of(config)
    ns = ns_of(config) or ""
    cid = checkpoint_id_of(config)
    keys = _keys_of(s, thread_id)
    if cid is None:
        low, high = k.ns_range(ns)
        call = ScriptCall(FETCH_RANGE, keys, (s.read_ttl, low, high, 1))
    else:
        call = ScriptCall(FETCH_MEMBERS, keys, (s.read_ttl, k.member(ns, cid)))
    found = _decode_all(s, thread_id, _check((yield Batch((call,)))[0]))
    return found[0] if found else None


def list_flow(
    s: Settings,
    config: RunnableConfig | None,
    *,
    filter: Mapping[str, Any] | None = None,
    before: RunnableConfig | None = None,
    limit: int | None = None,
) -> Flow[None]:
    """Emit matching checkpoints newest first: per thread, within a namespace, or across namespaces."""
    if limit is not None and limit <= 0:
        return
    before_id = checkpoint_id_of(before) if before is not None else None
    if config is None:
        keys = _check((yield Scan(k.thread_scan_pattern(s.prefix, "ids"))))
        threads = sorted({k.thread_from_key(s.prefix, _text(key)) for key in keys})
        ns: str | None = None
        cid = None
    else:
        threads = [thread_id_of(config)]
        ns = ns_of(config, None)
        cid = checkpoint_id_of(config)
    remaining = [limit]
    for thread_id in threads:
        if ns is not None and cid is None:
            pages = _range_pages(s, thread_id, ns, before_id, filter, remaining)
        else:
            pages = _member_pages(s, thread_id, ns, cid, before_id, filter, remaining)
        done = yield from pages
        if done:
            return


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _emit_page(
    s: Settings,
    thread_id: str,
    entries: Sequence[Any],
    filter: Mapping[str, Any] | None,
    remaining: list[int | None],
) -> Flow[bool]:
    for tup in _decode_all(s, thread_id, entries):
        if not _matches(tup.metadata, filter):
            continue
        yield Emit(tup)
        if remaining[0] is not None:
            remaining[0] -= 1
            if remaining[0] <= 0:
                return True
    return False


def _page_size(s: Settings, filter: Mapping[str, Any] | None, remaining: list[int | None]) -> int:
    left = remaining[0]
    return s.page_size if filter or left is None else max(1, min(left, s.page_size))


def _range_pages(
    s: Settings,
    thread_id: str,
    ns: str,
    before_id: str | None,
    filter: Mapping[str, Any] | None,
    remaining: list[int | None],
) -> Flow[bool]:
    keys = _keys_of(s, thread_id)
    low, high = k.ns_range(ns, before_id)
    while True:
        size = _page_size(s, filter, remaining)
        entries = _check((yield Batch((ScriptCall(FETCH_RANGE, keys, (s.read_ttl, low, high, size)),)))[0])
        if (yield from _emit_page(s, thread_id, entries, filter, remaining)):
            return True
        if len(entries) < size:
            return False
        high = "(" + _text(entries[-1][0])


def _member_pages(
    s: Settings,
    thread_id: str,
    ns: str | None,
    cid: str | None,
    before_id: str | None,
    filter: Mapping[str, Any] | None,
    remaining: list[int | None],
) -> Flow[bool]:
    keys = _keys_of(s, thread_id)
    if ns is not None and cid is not None:
        members = [k.member(ns, cid)] if before_id is None or cid < before_id else []
    else:
        raw = _check((yield Batch((Command(("ZRANGE", keys[0], 0, -1)),)))[0])
        parsed = [k.split_member(_text(m)) for m in raw]
        chosen = [
            (c, n)
            for n, c in parsed
            if (ns is None or n == ns) and (cid is None or c == cid) and (before_id is None or c < before_id)
        ]
        members = [k.member(n, c) for c, n in sorted(chosen, reverse=True)]
    for start in range(0, len(members), s.page_size):
        chunk = members[start : start + s.page_size]
        entries = _check((yield Batch((ScriptCall(FETCH_MEMBERS, keys, (s.read_ttl, *chunk)),)))[0])
        if (yield from _emit_page(s, thread_id, entries, filter, remaining)):
            return True
    return False


def delete_thread_flow(s: Settings, thread_id: str) -> Flow[None]:
    """Delete every key of the thread (one ``DEL``: they share a slot)."""
    keys = _keys_of(s, _id_string(thread_id, "thread_id"))
    _check((yield Batch((Command(("DEL", *keys)),)))[0])


def delete_for_runs_flow(s: Settings, run_ids: Sequence[str]) -> Flow[None]:
    """Delete the checkpoints (and their writes and unshared blobs) written by the given runs."""
    runs = [_id_string(r, "run_id") for r in run_ids]
    if not runs:
        return
    keys = _check((yield Scan(k.thread_scan_pattern(s.prefix, "runs"))))
    threads = sorted({k.thread_from_key(s.prefix, _text(key)) for key in keys})
    for start in range(0, len(threads), 50):
        calls = tuple(
            ScriptCall(DELETE_RUNS, _keys_of(s, t), (s.ttl_ms, *runs)) for t in threads[start : start + 50]
        )
        for reply in (yield Batch(calls)):
            _check(reply)


def copy_thread_flow(s: Settings, source_thread_id: str, target_thread_id: str) -> Flow[None]:
    """Copy a thread's keys byte for byte (DUMP, then RESTORE into an empty target in one script)."""
    source = _keys_of(s, _id_string(source_thread_id, "source_thread_id"))
    target = _keys_of(s, _id_string(target_thread_id, "target_thread_id"))
    if source == target:
        raise InvalidCheckpointConfigError("copy_thread: source and target are the same thread")
    dumps = [_check(r) for r in (yield Batch(tuple(Command(("DUMP", key)) for key in source)))]
    if dumps[0] is None:  # no checkpoints: nothing to copy
        return
    call = ScriptCall(RESTORE_THREAD, target, (s.ttl_ms, *(d if d is not None else b"" for d in dumps)))
    if _check((yield Batch((call,)))[0]) != 1:
        raise ThreadNotEmptyError(
            f"copy_thread: target thread {target_thread_id!r} already has data; delete it first"
        )


def prune_flow(s: Settings, thread_ids: Sequence[str], strategy: str = "keep_latest") -> Flow[None]:
    """``keep_latest``: keep each namespace's newest checkpoint (and delta ancestors); ``delete``: all."""
    if strategy not in ("keep_latest", "delete"):
        raise InvalidCheckpointConfigError(
            f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'"
        )
    threads = [_id_string(t, "thread_id") for t in thread_ids]
    for start in range(0, len(threads), 50):
        chunk = threads[start : start + 50]
        if strategy == "delete":
            calls: tuple[Command | ScriptCall, ...] = tuple(Command(("DEL", *_keys_of(s, t))) for t in chunk)
        else:
            calls = tuple(ScriptCall(PRUNE_KEEP_LATEST, _keys_of(s, t), (s.ttl_ms,)) for t in chunk)
        for reply in (yield Batch(calls)):
            _check(reply)
