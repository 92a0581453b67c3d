"""Pure encoding of checkpoints, channel blobs and pending writes, and decoding of script replies.

Values go through the saver's ``serde`` (``dumps_typed``/``loads_typed``), so whatever LangGraph can
checkpoint round-trips exactly, encrypted serializers included. Around the serde output this module adds a
small framing: a format byte, then length-prefixed parts. Anything that fails to decode raises
:class:`CorruptCheckpointError` naming the thread and checkpoint.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, PendingWrite, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentmem_langgraph.checkpoint._keys import blob_field, split_member
from agentmem_langgraph.checkpoint.errors import CorruptCheckpointError

__all__ = ["EMPTY", "decode_entry", "dump", "frame", "unframe"]

_FORMAT = b"\x01"
_LEN = struct.Struct(">I")
EMPTY = ("empty", b"")
"""The typed value stored for a channel that has a new version but no value (as the reference savers do)."""


def frame(parts: Sequence[bytes | str]) -> bytes:
    """Concatenate ``parts`` as length-prefixed fields behind a format byte."""
    out = [_FORMAT]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(_LEN.pack(len(data)))
        out.append(data)
    return b"".join(out)


def unframe(data: bytes, count: int, where: str) -> list[bytes]:
    """Invert :func:`frame`, expecting exactly ``count`` parts; raise on any damage."""
    if not isinstance(data, bytes) or data[:1] != _FORMAT:
        raise CorruptCheckpointError(f"{where}: unknown record format")
    parts: list[bytes] = []
    pos = 1
    while pos < len(data):
        if pos + 4 > len(data):
            raise CorruptCheckpointError(f"{where}: truncated record")
        (size,) = _LEN.unpack_from(data, pos)
        pos += 4
        if pos + size > len(data):
            raise CorruptCheckpointError(f"{where}: truncated record")
        parts.append(data[pos : pos + size])
        pos += size
    if len(parts) != count:
        raise CorruptCheckpointError(f"{where}: expected {count} fields, found {len(parts)}")
    return parts


def dump(serde: SerializerProtocol, value: Any) -> tuple[str, bytes]:
    """Serialize one value with the saver's serializer."""
    return serde.dumps_typed(value)


def _load(serde: SerializerProtocol, type_: bytes, data: bytes, where: str) -> Any:
    try:
        return serde.loads_typed((type_.decode(), data))
    except Exception as exc:  # any serializer failure means the stored bytes are unusable
        raise CorruptCheckpointError(f"{where}: cannot deserialize ({type(exc).__name__}: {exc})") from exc


def _decode_writes(serde: SerializerProtocol, raw: Sequence[bytes | None], where: str) -> list[PendingWrite]:
    decoded: list[tuple[tuple[str, str, int], PendingWrite]] = []
    for item in raw:
        if item is None:  # listed but gone (a concurrent delete); nothing to return
            continue
        task_id, idx, channel, type_, data, task_path = unframe(item, 6, f"{where} write")
        try:
            key = writes_sort_key(task_path.decode(), task_id.decode(), int(idx))
            value = (task_id.decode(), channel.decode(), _load(serde, type_, data, f"{where} write"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptCheckpointError(f"{where}: bad write header ({exc})") from exc
        decoded.append((key, value))
    decoded.sort(key=lambda kv: kv[0])
    return [w for _, w in decoded]


def decode_entry(serde: SerializerProtocol, thread_id: str, entry: Sequence[Any]) -> CheckpointTuple:
    """Build a :class:`CheckpointTuple` from one ``fetch`` reply (member, record, fields, blobs, writes)."""
    member_raw, record, fields_raw, blob_values, write_values = entry
    ns, checkpoint_id = split_member(member_raw.decode())
    where = f"checkpoint {checkpoint_id!r} (thread {thread_id!r}, namespace {ns!r})"
    cp_type, cp_data, md_type, md_data, parent = unframe(record, 5, where)
    checkpoint = _load(serde, cp_type, cp_data, where)
    metadata = _load(serde, md_type, md_data, f"{where} metadata")
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("channel_versions"), Mapping):
        raise CorruptCheckpointError(f"{where}: the stored checkpoint is not a checkpoint")
    blobs: dict[bytes, bytes | None] = dict(zip(fields_raw.split(b"\x01") if fields_raw else [], blob_values))
    values: dict[str, Any] = {}
    for channel, version in checkpoint["channel_versions"].items():
        raw = blobs.get(blob_field(ns, channel, version).encode())
        if raw is None:
            continue
        type_, data = unframe(raw, 2, f"{where} channel {channel!r}")
        if type_ == EMPTY[0].encode():
            continue
        values[channel] = _load(serde, type_, data, f"{where} channel {channel!r}")
    parent_id = parent.decode()
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
    }
    parent_config: RunnableConfig | None = (
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
        if parent_id
        else None
    )
    return CheckpointTuple(
        config=config,
        checkpoint={**checkpoint, "channel_values": values},  # type: ignore[typeddict-item]
        metadata=metadata,
        parent_config=parent_config,
        pending_writes=_decode_writes(serde, write_values, where),
    )
