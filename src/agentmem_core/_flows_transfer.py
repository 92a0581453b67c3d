"""Export and import of memories as JSON Lines (``MemoryStore.export`` / ``MemoryStore.import_records``).

The format (version 1) is one JSON object per line, UTF-8:

* the first line is a **header**: ``{"format": "agentmem-jsonl", "version": 1, "store": <name>,
  "dims": <vector dimension>, "vectors": "base64-float32-le", "exported_at": <Unix seconds>}``. Several
  exports concatenated are one valid input: every later header is checked like the first.
* every other line is **one memory**: every public field of :class:`~agentmem_core.types.Memory`, plus
  what a lossless re-write needs::

      {"id": <internal 32-hex id>, "caller_id": <remember(id=...) or null>, "key": <str or null>,
       "content": str, "kind": str, "importance": float, "tags": [str], "namespace": [str],
       "thread_id", "agent_id", "user_id", "source": <str or null>, "metadata": {...},
       "created_at": float, "updated_at": float, "expires_at": <float or null>,
       "ttl": <the lifetime in seconds it was last given, or null>,
       "remaining_ttl": <expires_at - exported_at, or null; read only when expires_at is absent>,
       "access_count": int, "last_accessed_at": float, "duplicate_count": int, "sequence": int,
       "embedded": bool, "from_texts": <its vectors embed remember(texts=...), not the content>,
       "vectors": [<base64 of the float32 little-endian bytes of each stored vector>],
       "lexical": <{"lex": str, "terms": str}: the stored lexical postings, or null for none>}

  Vectors are the stored bytes, base64-encoded, so they round-trip bit for bit (no re-embedding ever
  happens on import). Times are the stored decimal values (microsecond precision) as JSON numbers.

Import writes each memory back under the same internal id, with its times, counters, write sequence,
vectors, caller id, key and lexical postings, registers its scope and claims its caller id. A memory
keeps its absolute ``expires_at`` (so its remaining lifetime is ``expires_at - now`` at import time);
memories already past it are skipped and counted. Input is read ``chunk_size`` records at a time; a
chunk is validated completely (header, JSON, every field, vector dimensions) before anything of it is
written, so bad input raises :class:`~agentmem_core.errors.InvalidMemoryError` (or
:class:`~agentmem_core.errors.InvalidVectorError` for vectors) naming its line, and nothing of that
chunk (nor of any later one) is written. ``dry_run`` validates the whole input without writing.

Export walks the scopes page by page (``page_size`` memories per round trip, never the whole store in
memory); it is not a snapshot: memories written or deleted meanwhile may or may not be included.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, is_memory_id, local_id_for_caller_id
from agentmem_core._flows_read import decode_gets, get_op, scope_pages_flow
from agentmem_core._flows_write import PIPELINE_CHUNK, _claim_ids, evict_flow, register_op
from agentmem_core._parse import as_text
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._records import MAX_TEXTS, MAX_TTL_SECONDS, MemoryInput, PreparedMemory, prepare
from agentmem_core.audit import audit_op
from agentmem_core.errors import BackendError, InvalidMemoryError, InvalidVectorError
from agentmem_core.facts import FACT_TOKEN_PREFIX, FactState, encode_state, fact_tokens
from agentmem_core.ops import (
    Exists,
    ReadMemories,
    ResolveIds,
    Update,
    Write,
    WriteCounters,
    WriteResult,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import NEVER, F, format_number, opt_from_texts, pack_opt_rest
from agentmem_core.types import Memory

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "VECTOR_ENCODING",
    "ImportResult",
    "RecordSink",
    "dumps_record",
    "export_flow",
    "import_flow",
    "record_sink",
]

FORMAT = "agentmem-jsonl"
"""The ``format`` of a header line."""

FORMAT_VERSION = 1
"""The format version this agentmem writes and reads."""

VECTOR_ENCODING = "base64-float32-le"
"""How vectors are written: base64 of the float32 little-endian bytes, one string per vector."""

EXPORT_PAGE = 500
"""Memories read per round trip by an export."""

IMPORT_CHUNK = 500
"""Records validated, then written, at a time by an import."""

_NEVER = format_number(NEVER)

_HEADER_KEYS = frozenset({"format", "version", "store", "dims", "vectors", "exported_at"})
_MEMORY_KEYS = frozenset(
    {
        "id", "caller_id", "key", "content", "kind", "importance", "tags", "namespace", "thread_id",
        "agent_id", "user_id", "source", "metadata", "created_at", "updated_at", "expires_at", "ttl",
        "remaining_ttl", "access_count", "last_accessed_at", "duplicate_count", "sequence", "embedded",
        "from_texts", "vectors", "lexical", "subject", "valid_until", "superseded_by", "derived_from",
    }
)  # fmt: skip
_REQUIRED = ("id", "content", "kind", "importance", "created_at", "vectors")


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes:
        imported: memories written (with ``dry_run``: memories that would be written).
        expired: records skipped because their ``expires_at`` had passed.
    """

    imported: int
    expired: int = 0


class _Writable(Protocol):
    def write(self, text: str, /) -> object: ...


RecordSink = Callable[[dict[str, Any]], object] | _Writable
"""Where an export goes: a text stream (JSON Lines are written to it; a binary stream gets them UTF-8
encoded) or a callable that receives each record as a dict (the header first)."""


# -- records -------------------------------------------------------------------------------------------
def dumps_record(record: Mapping[str, Any]) -> str:
    """One record as its JSON line (without the newline; UTF-8 text, no NaN)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def record_sink(sink: RecordSink) -> Callable[[dict[str, Any]], object]:
    """The function an export calls per record for ``sink`` (a stream or a callable).

    Raises:
        InvalidMemoryError: ``sink`` is neither.
    """
    if isinstance(sink, (io.RawIOBase, io.BufferedIOBase)):
        binary = sink
        return lambda record: binary.write((dumps_record(record) + "\n").encode("utf-8"))
    write = getattr(sink, "write", None)
    if callable(write):
        return lambda record: write(dumps_record(record) + "\n")
    if callable(sink):
        return sink
    raise InvalidMemoryError(f"export needs a writable text stream or a callable, got {type(sink).__name__}")


def header_record(ctx: Context) -> dict[str, Any]:
    """The header line of an export taken now."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "store": ctx.config.name,
        "dims": ctx.spec.config.dims,
        "vectors": VECTOR_ENCODING,
        "exported_at": ctx.now,
    }


def _b64(vector: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def memory_record(
    ctx: Context, internal_id: str, memory: Memory, opt: Any, lex: Any, terms: Any
) -> dict[str, Any]:
    """The export record of one memory (``memory`` read with its vectors; the raw ``opt``/lexical fields)."""
    return {
        "id": internal_id,
        "caller_id": None if memory.id == internal_id else memory.id,
        "key": memory.key,
        "content": memory.content,
        "kind": memory.kind.value,
        "importance": memory.importance,
        "tags": list(memory.tags),
        "namespace": list(memory.namespace),
        "thread_id": memory.thread_id,
        "agent_id": memory.agent_id,
        "user_id": memory.user_id,
        "source": memory.source,
        "metadata": dict(memory.metadata),
        "created_at": memory.created_at,
        "updated_at": memory.updated_at,
        "expires_at": memory.expires_at,
        "ttl": memory.ttl,
        "remaining_ttl": None if memory.expires_at is None else max(0.0, memory.expires_at - ctx.now),
        "access_count": memory.access_count,
        "last_accessed_at": memory.last_accessed_at,
        "duplicate_count": memory.duplicate_count,
        "sequence": memory.sequence,
        "embedded": memory.embedded,
        "from_texts": opt_from_texts(opt),
        "vectors": [_b64(v) for v in memory.vectors or ()],
        "lexical": None if lex is None or terms is None else {"lex": as_text(lex), "terms": as_text(terms)},
        "subject": memory.subject,
        "valid_until": memory.valid_until,
        "superseded_by": memory.superseded_by,
        "derived_from": list(memory.derived_from),
    }


# -- export --------------------------------------------------------------------------------------------
def _successor(line: int, raw: Mapping[str, Any]) -> str | None:
    value = raw.get("superseded_by")
    if value is None:
        return None
    if not isinstance(value, str) or not is_memory_id(value):
        raise InvalidMemoryError(f"line {line}: superseded_by must be a memory id, got {value!r}")
    return value


def _derived(line: int, raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("derived_from") or []
    if not isinstance(value, list) or not all(isinstance(i, str) and is_memory_id(i) for i in value):
        raise InvalidMemoryError(f"line {line}: derived_from must be a list of memory ids")
    return tuple(value)


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise InvalidMemoryError(f"{name} must be an int in 1..10000, got {value!r}")
    return value


def export_flow(
    ctx: Context,
    flt: MemoryFilter,
    emit: Callable[[dict[str, Any]], object],
    page_size: int = EXPORT_PAGE,
    progress: Callable[[int], object] | None = None,
) -> Flow[int]:
    """Emit the header, then every live memory matching ``flt``, scope by scope, oldest first per scope.

    ``page_size`` memories are read per round trip (their fields, vectors, counters and lexical
    postings) and emitted before the next page is read; ``progress`` gets the running count after each
    page. Returns how many memories were emitted.
    """
    page_size = _check_size("page_size", page_size)
    emit(header_record(ctx))
    count = 0

    def emit_page(ids: list[str]) -> Flow[None]:
        nonlocal count
        read, words = yield batch([
            get_op(ids, vectors=True),
            ReadMemories(tuple(ids), (F.OPT, F.LEX, F.X_TERMS)),
        ])  # fmt: skip
        memories = decode_gets(ctx, ids, read)
        for internal, memory, (raw, _) in zip(ids, memories, expect(words)):
            if memory is None or not flt.matches(memory, ctx.now):
                continue
            opt, lex, terms = raw or (None, None, None)
            emit(memory_record(ctx, internal, memory, opt, lex, terms))
            count += 1
        if progress is not None:
            progress(count)

    yield from scope_pages_flow(ctx, flt, emit_page, page_size)
    return count


# -- reading input -------------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _records(source: Iterable[str | bytes | Mapping[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of each non-blank line (or mapping) of ``source``.

    Raises:
        InvalidMemoryError: a line is not UTF-8, not JSON, or not a JSON object.
    """
    if isinstance(source, (str, bytes, Mapping)):
        raise InvalidMemoryError(
            "import needs an iterable of JSON lines or records (e.g. an open file), not one string or record"
        )
    for line, raw in enumerate(source, start=1):
        if isinstance(raw, Mapping):
            yield line, dict(raw)
            continue
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidMemoryError(f"line {line}: not UTF-8 text: {exc}") from exc
        if not isinstance(raw, str):
            raise InvalidMemoryError(
                f"line {line}: expected a JSON line or a mapping, got {type(raw).__name__}"
            )
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise InvalidMemoryError(f"line {line}: malformed JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InvalidMemoryError(f"line {line}: expected a JSON object, got {type(value).__name__}")
        yield line, value


def _is_header(record: Mapping[str, Any]) -> bool:
    return "format" in record


def check_header(ctx: Context, line: int, header: Mapping[str, Any]) -> None:
    """Validate a header against this agentmem and this store.

    Raises:
        InvalidMemoryError: not an agentmem export, an unknown format version or vector encoding.
        InvalidVectorError: its vectors have another dimension than the store's.
    """
    where = f"line {line}"
    if header.get("format") != FORMAT:
        raise InvalidMemoryError(f"{where}: not an agentmem export (format {header.get('format')!r})")
    version = header.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise InvalidMemoryError(
            f"{where}: unsupported export format version {version!r} (this agentmem reads {FORMAT_VERSION})"
        )
    unknown = set(header) - _HEADER_KEYS
    if unknown:
        raise InvalidMemoryError(f"{where}: unknown header fields {sorted(unknown)}")
    if header.get("vectors") != VECTOR_ENCODING:
        raise InvalidMemoryError(f"{where}: unsupported vector encoding {header.get('vectors')!r}")
    dims, want = header.get("dims"), ctx.spec.config.dims
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise InvalidMemoryError(f"{where}: dims must be a positive integer, got {dims!r}")
    if dims != want:
        raise InvalidVectorError(
            f"{where}: the export's vectors have {dims} dimensions, this store's have {want} "
            "(import into a store of the same dimension)"
        )


# -- validating one memory -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Parsed:
    """A validated memory record: what its import writes."""

    line: int
    item: PreparedMemory
    write: Write
    counters: dict[str, str] | None
    """Its counters to write (``None``: all at their defaults)."""
    opt: str
    updated: str
    ttl_ms: int


def _number(line: int, raw: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = raw.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidMemoryError(f"line {line}: {name} must be a finite number, got {value!r}")
    return float(value)


def _optional_number(line: int, raw: Mapping[str, Any], name: str) -> float | None:
    return None if raw.get(name) is None else _number(line, raw, name)


def _count(line: int, raw: Mapping[str, Any], name: str) -> int:
    value = raw.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidMemoryError(f"line {line}: {name} must be an integer >= 0, got {value!r}")
    return value


def _flag(line: int, raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise InvalidMemoryError(f"line {line}: {name} must be true or false, got {value!r}")
    return value


def _vectors(line: int, raw: Any, dims: int) -> list[bytes]:
    if not isinstance(raw, list):
        raise InvalidVectorError(f"line {line}: vectors must be a list of base64 strings")
    blobs: list[bytes] = []
    for n, text in enumerate(raw):
        if not isinstance(text, str):
            raise InvalidVectorError(f"line {line}: vector {n} is not a base64 string")
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidVectorError(f"line {line}: vector {n} is not valid base64: {exc}") from exc
        if len(blob) != 4 * dims:
            raise InvalidVectorError(
                f"line {line}: vector {n} has {len(blob) / 4:g} dimensions, this store's have {dims}"
            )
        vector = np.frombuffer(blob, dtype="<f4")
        if not np.all(np.isfinite(vector)):
            raise InvalidVectorError(f"line {line}: vector {n} holds NaN or infinite values")
        norm = float(np.linalg.norm(vector.astype(np.float64)))
        if norm == 0.0:
            raise InvalidVectorError(f"line {line}: vector {n} is a zero vector")
        if abs(norm - 1.0) > 1e-3:  # stored vectors are unit length; a hand-made one is normalised
            blob = (vector.astype(np.float64) / norm).astype("<f4").tobytes()
        blobs.append(blob)
    return blobs


def _lexical(line: int, raw: Any) -> tuple[str, str] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or set(raw) != {"lex", "terms"}
        or not all(isinstance(raw[k], str) and raw[k] for k in ("lex", "terms"))
    ):
        raise InvalidMemoryError(f'line {line}: lexical must be null or {{"lex": str, "terms": str}}')
    return raw["lex"], raw["terms"]


def parse_memory(ctx: Context, line: int, raw: Mapping[str, Any]) -> _Parsed | None:
    """Validate one memory record and build its writes (``None``: it has expired).

    Raises:
        InvalidMemoryError: for any invalid field (the line is named).
        InvalidVectorError: for vectors of the wrong dimension, count or content.
    """
    try:
        return _parse_memory(ctx, line, raw)
    except InvalidMemoryError as exc:
        if str(exc).startswith(f"line {line}:"):
            raise
        raise type(exc)(f"line {line}: {exc}") from exc


def _parse_memory(ctx: Context, line: int, raw: Mapping[str, Any]) -> _Parsed | None:
    unknown = set(raw) - _MEMORY_KEYS
    if unknown:
        raise InvalidMemoryError(f"line {line}: unknown fields {sorted(unknown)}")
    missing = [name for name in _REQUIRED if name not in raw]
    if missing:
        raise InvalidMemoryError(f"line {line}: missing fields {missing}")
    internal = raw["id"]
    if not is_memory_id(internal):
        raise InvalidMemoryError(f"line {line}: id must be agentmem's internal id (32 hex), got {internal!r}")
    embedded = _flag(line, raw, "embedded", True)
    from_texts = _flag(line, raw, "from_texts", False)
    if from_texts and not embedded:
        raise InvalidMemoryError(f"line {line}: from_texts needs embedded")
    created = _number(line, raw, "created_at")
    updated = _number(line, raw, "updated_at", created)
    last = _number(line, raw, "last_accessed_at", created)
    expires = _optional_number(line, raw, "expires_at")
    if "expires_at" not in raw and raw.get("remaining_ttl") is not None:  # a hand-written record
        expires = ctx.now + _number(line, raw, "remaining_ttl")
    ttl = _optional_number(line, raw, "ttl")
    if ttl is not None and not 0 < ttl <= MAX_TTL_SECONDS:
        raise InvalidMemoryError(
            f"line {line}: ttl must be in (0, {MAX_TTL_SECONDS:.0f}] seconds, got {ttl!r}"
        )
    access, duplicates, sequence = (
        _count(line, raw, n) for n in ("access_count", "duplicate_count", "sequence")
    )
    caller = raw.get("caller_id")
    dims = ctx.spec.config.dims
    blobs = _vectors(line, raw["vectors"], dims)
    lexical = _lexical(line, raw.get("lexical")) if "lexical" in raw else None
    item = prepare(
        MemoryInput(
            content=raw["content"],
            importance=raw["importance"],
            tags=raw.get("tags"),
            kind=raw["kind"],
            source=raw.get("source"),
            metadata=raw.get("metadata"),
            thread_id=raw.get("thread_id"),
            agent_id=raw.get("agent_id"),
            namespace=raw.get("namespace"),
            user_id=raw.get("user_id"),
            created_at=created,
            key=raw.get("key"),
            id=caller,
            embed=embedded,
            texts=("imported",) if from_texts else None,  # (its vectors come along; nothing is embedded)
            subject=raw.get("subject"),
            derived_from=_derived(line, raw),
        ),
        ctx.config,
        ctx.now,
    )  # fmt: skip  (validates content, kind, importance, scope, tags, metadata, key and caller id)
    if caller is not None or item.fields.get(F.KEY) is not None:
        if internal != item.id:
            named = "caller id" if caller is not None else "key"
            raise InvalidMemoryError(f"line {line}: id {internal} is not the id its scope and {named} name")
    elif internal[:16] != item.scope.tag:
        raise InvalidMemoryError(f"line {line}: id {internal} does not belong to the record's scope")
    wanted = 0 if not embedded else (len(blobs) if from_texts else 1)
    if len(blobs) != wanted or (from_texts and not 1 <= len(blobs) <= MAX_TEXTS):
        raise InvalidVectorError(
            f"line {line}: a memory that is {'not ' if not embedded else ''}embedded"
            f"{' of texts' if from_texts else ''} cannot have {len(blobs)} vectors"
        )
    if expires is not None and expires <= ctx.now:
        return None
    remaining = None if expires is None else expires - ctx.now
    if remaining is not None and remaining > MAX_TTL_SECONDS:
        raise InvalidMemoryError(f"line {line}: expires_at is more than 100 years away")
    expires_text = _NEVER if expires is None else format_number(expires)
    fields = dict(item.fields)
    if item.subject is not None:  # a fact keeps its place in its subject's history
        state = FactState(
            item.subject,
            _optional_number(line, raw, "valid_until"),
            _successor(line, raw),
            _derived(line, raw),
        )
        held = (fields.get(F.X_META) or "").split("|")
        own = [t for t in held if t and not t.startswith(FACT_TOKEN_PREFIX)]
        fields[F.FACT] = encode_state(state)
        fields[F.X_META] = "|".join(own + list(fact_tokens(state)))
    fields[F.UPDATED_AT] = updated_text = format_number(updated)
    fields[F.EXPIRES_AT] = fields[F.X_EXPIRES_AT] = expires_text
    if "lexical" in raw:  # the stored postings, as they were (a memory of texts has its texts' words)
        fields.pop(F.LEX, None)
        fields.pop(F.X_TERMS, None)
        if lexical is not None:
            fields[F.LEX], fields[F.X_TERMS] = lexical
    ttl_ms = 0 if remaining is None else max(1, int(round(remaining * 1000)))
    opt_rest = pack_opt_rest(ttl, embedded, caller, from_texts)
    item = replace(
        item, id=internal, fields=fields, expires_at=expires, ttl_ms=ttl_ms, opt_rest=opt_rest,
        keeps_created=False,
    )  # fmt: skip
    write = Write(
        id=internal, tag=item.scope.tag, now=format_number(ctx.now), created_at=fields[F.CREATED_AT],
        ttl_ms=ttl_ms, expires_at=expires_text if expires is not None else "0", kind=item.kind.value,
        importance=fields[F.IMPORTANCE], opt_rest=opt_rest, fields=fields, vectors=tuple(blobs),
    )  # fmt: skip
    last_text = format_number(last)
    counters = None
    if access or duplicates or last_text != fields[F.CREATED_AT]:
        counters = {
            F.ACCESS_COUNT: str(access),
            F.LAST_ACCESSED_AT: last_text,
            F.DUPLICATE_COUNT: str(duplicates),
        }
    return _Parsed(line, item, write, counters, f"{sequence}|{opt_rest}", updated_text, ttl_ms)


# -- import --------------------------------------------------------------------------------------------
def _default_counters(parsed: _Parsed) -> dict[str, str]:
    return {
        F.ACCESS_COUNT: "0",
        F.LAST_ACCESSED_AT: parsed.write.fields[F.CREATED_AT],
        F.DUPLICATE_COUNT: "0",
    }


def _check_claims(ctx: Context, items: Sequence[PreparedMemory]) -> Flow[None]:
    """Read-only twin of ``_claim_ids`` for a dry run: a caller id a live memory of another scope holds.

    Raises:
        InvalidMemoryError: such an id.
    """
    wanted = {item.external_id: item.scope.tag for item in items if item.external_id is not None}
    if not wanted:
        return
    (holders,) = yield batch([ResolveIds(tuple(wanted))])
    others = [
        (ext, tag) for (ext, want), tag in zip(wanted.items(), expect(holders)) if tag not in (None, want)
    ]
    if not others:
        return
    alive = yield batch([Exists(tag + local_id_for_caller_id(ext)) for ext, tag in others])
    for (ext, _), reply in zip(others, alive):
        if expect(reply):
            raise InvalidMemoryError(
                f"id {ext!r} already names a memory in another scope; forget it first (ids are global)"
            )


def _write_chunk(ctx: Context, chunk: Sequence[_Parsed], registered: set[str]) -> Flow[None]:
    """Write validated memories: registry, memories, counters; then fix sequences and counter lifetimes."""
    yield from _claim_ids(ctx, [p.item for p in chunk])
    requests: list[Any] = []
    registering: dict[int, str] = {}
    scopes: dict[str, ScopeKey] = {}
    for parsed in chunk:
        tag = parsed.item.scope.tag
        if tag not in registered and tag not in scopes:
            registering[len(requests)] = tag
            requests.append(register_op(parsed.item.scope))
        scopes.setdefault(tag, parsed.item.scope)
        requests.append(parsed.write)
        if parsed.counters is not None:
            requests.append(WriteCounters(parsed.write.id, parsed.counters))
        requests.append(ReadMemories((parsed.write.id,), (F.OPT,)))  # the sequence the backend gave it
    replies: list[Any] = []
    for start in range(0, len(requests), PIPELINE_CHUNK):
        replies += yield batch(requests[start : start + PIPELINE_CHUNK])
    results: dict[int, WriteResult] = {}
    stored_opt: dict[int, str | None] = {}
    position = 0
    for index, (request, reply) in enumerate(zip(requests, replies)):
        value = expect(reply)
        if index in registering:
            registered.add(registering[index])
        elif isinstance(request, Write):
            results[position] = value
        elif isinstance(request, ReadMemories):
            ((values, _),) = value
            stored_opt[position] = None if values is None or values[0] is None else as_text(values[0])
            position += 1
    # The write script gives a memory the scope's next sequence; its own is set back here, and counters
    # created after the write get the memory's lifetime (Update restarts both, atomically).
    fixes: list[Any] = []
    sizes: dict[str, int] = {}
    for n, parsed in enumerate(chunk):
        result = results[n]
        sizes[parsed.item.scope.tag] = result.scope_size
        counters_written = parsed.counters is not None
        if parsed.counters is None and not result.is_new:  # a replaced memory's counters stayed: reset
            fixes.append(WriteCounters(parsed.write.id, _default_counters(parsed)))
            counters_written = True
        wrong_sequence = stored_opt[n] != parsed.opt
        lifetime = parsed.ttl_ms > 0 and counters_written
        if wrong_sequence or lifetime:
            set_fields = {F.UPDATED_AT: parsed.updated}
            if wrong_sequence:
                set_fields[F.OPT] = parsed.opt
            fixes.append(
                Update(
                    id=parsed.write.id, now=format_number(ctx.now), kind="", importance="",
                    ttl_ms=parsed.ttl_ms if lifetime else None,
                    expires_at=parsed.write.fields[F.EXPIRES_AT] if lifetime else "",
                    ttl_seconds="", set_fields=set_fields,
                )
            )  # fmt: skip
    for start in range(0, len(fixes), PIPELINE_CHUNK):
        part = fixes[start : start + PIPELINE_CHUNK]
        for request, reply in zip(part, (yield batch(part))):
            if isinstance(request, Update) and not expect(reply):
                raise BackendError(f"memory {request.id} was deleted while it was being imported")
            expect(reply)
    by_scope: dict[str, list[str]] = {}
    for parsed in chunk:
        by_scope.setdefault(parsed.item.scope.tag, []).append(parsed.write.id)
    audit = audit_op(ctx, [("import", scopes[tag], ids, None) for tag, ids in by_scope.items()])
    if audit is not None:
        (logged,) = yield batch([audit])
        expect(logged)
    capacity = ctx.config.max_items_per_scope
    if capacity is not None:
        for tag, size in sizes.items():
            if size > capacity:
                yield from evict_flow(ctx, scopes[tag], capacity)


def import_flow(
    ctx: Context,
    source: Iterable[str | bytes | Mapping[str, Any]],
    registered: set[str],
    chunk_size: int = IMPORT_CHUNK,
    dry_run: bool = False,
    progress: Callable[[int], object] | None = None,
) -> Flow[ImportResult]:
    """Import JSON Lines (or records) ``chunk_size`` at a time: validate a whole chunk, then write it.

    ``progress`` gets the running count of records read after each chunk. ``dry_run`` validates
    everything (and checks caller ids against the store) without writing.

    Raises:
        InvalidMemoryError: malformed input (no header first, bad JSON, an invalid field), naming the line.
        InvalidVectorError: vectors of another dimension than the store's, or otherwise unusable.
    """
    chunk_size = _check_size("chunk_size", chunk_size)
    records = _records(source)
    first = next(records, None)
    if first is None:
        raise InvalidMemoryError("empty input: an agentmem export starts with its header line")
    line, header = first
    if not _is_header(header):
        raise InvalidMemoryError(f"line {line}: an agentmem export starts with its header line")
    check_header(ctx, line, header)
    imported = expired = seen = 0
    done = False
    while not done:
        chunk: list[_Parsed] = []
        taken = 0
        while taken < chunk_size:
            item = next(records, None)
            if item is None:
                done = True
                break
            line, record = item
            if _is_header(record):  # concatenated exports
                check_header(ctx, line, record)
                continue
            taken += 1
            parsed = parse_memory(ctx, line, record)
            if parsed is None:
                expired += 1
            else:
                chunk.append(parsed)
        seen += taken
        if chunk:
            if dry_run:
                yield from _check_claims(ctx, [p.item for p in chunk])
            else:
                yield from _write_chunk(ctx, chunk, registered)
            imported += len(chunk)
        if progress is not None and taken:
            progress(seen)
    return ImportResult(imported, expired)
