"""Validation of user input and the hash a memory is written as (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agentmem_core._encoding import (
    NONE_TAG,
    ScopeKey,
    encode_tag,
    is_memory_id,
    local_id_for_caller_id,
    local_id_for_key,
    member_token,
    metadata_token,
    namespace_token,
    namespace_tokens,
    new_local_id,
    presence_token,
)
from agentmem_core._lexical import analyze, encode_lex
from agentmem_core.config import Kind, StoreConfig
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.facts import FactState, encode_state, fact_tokens, normalise_subject
from agentmem_core.schema import NEVER, F, format_number, lookup, numeric_field, numeric_value, pack_opt_rest
from agentmem_core.types import Memory

__all__ = ["MemoryInput", "PreparedMemory", "normalise_namespace", "prepare", "scope_value"]

_MAX_SCOPE_CHARS = 512
_MAX_TAG_CHARS = 256
MAX_TTL_SECONDS = 100 * 365 * 86_400.0
"""Longest accepted TTL (about 100 years); longer ones overflow the server's millisecond expiry."""


def check_text(name: str, value: str) -> str:
    """Reject strings that cannot be stored as UTF-8 (e.g. lone surrogates).

    Raises:
        InvalidMemoryError: when ``value`` is not encodable.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMemoryError(f"{name} is not valid Unicode text: {exc.reason}") from exc
    return value


def normalise_namespace(namespace: str | Sequence[str] | None) -> tuple[str, ...]:
    """A namespace as a tuple of labels: ``"travel"`` -> ``("travel",)``, ``None`` -> ``()``.

    Raises:
        InvalidMemoryError: for non-string or empty labels.
    """
    if namespace is None:
        return ()
    if isinstance(namespace, str):
        namespace = (namespace,)
    if not isinstance(namespace, (list, tuple)):
        raise InvalidMemoryError(f"namespace must be a string or a sequence of strings, got {namespace!r}")
    labels = tuple(namespace)
    for label in labels:
        if not isinstance(label, str) or label == "":
            raise InvalidMemoryError(f"namespace labels must be non-empty strings, got {label!r}")
        if len(label) > _MAX_SCOPE_CHARS:
            raise InvalidMemoryError(f"namespace label longer than {_MAX_SCOPE_CHARS} characters")
        check_text("namespace label", label)
    return labels


def scope_value(name: str, value: str | None) -> str | None:
    """Validate one scope id (thread/agent/user/source).

    Raises:
        InvalidMemoryError: for non-strings, empty strings and oversized values.
    """
    if value is None:
        return None
    if not isinstance(value, str) or value == "":
        raise InvalidMemoryError(f"{name} must be a non-empty string or None, got {value!r}")
    if len(value) > _MAX_SCOPE_CHARS:
        raise InvalidMemoryError(f"{name} is longer than {_MAX_SCOPE_CHARS} characters")
    return check_text(name, value)


def memory_scope(memory: Memory) -> ScopeKey:
    """The scope a stored memory belongs to (its fields were validated when it was written)."""
    return ScopeKey(memory.namespace, memory.thread_id, memory.agent_id, memory.user_id)


def scope_of(
    namespace: str | Sequence[str] | None, thread_id: str | None, agent_id: str | None, user_id: str | None
) -> ScopeKey:
    """Validate the four scope fields into a :class:`ScopeKey`.

    Raises:
        InvalidMemoryError: for an invalid namespace label or scope id.
    """
    # A batch names one scope many times (a chat session's messages): the same hashable fields give the
    # same (immutable) ScopeKey, its tag computed once. Only valid fields are kept (errors are not cached).
    if namespace is None or type(namespace) in (str, tuple):
        try:
            return _scope_of_cached(namespace, thread_id, agent_id, user_id)
        except TypeError:  # an unhashable label: the uncached path says what is wrong with it
            pass
    return _scope_of(namespace, thread_id, agent_id, user_id)


@lru_cache(maxsize=1024)
def _scope_of_cached(
    namespace: str | tuple[str, ...] | None, thread_id: str | None, agent_id: str | None, user_id: str | None
) -> ScopeKey:
    return _scope_of(namespace, thread_id, agent_id, user_id)


def _scope_of(
    namespace: str | Sequence[str] | None, thread_id: str | None, agent_id: str | None, user_id: str | None
) -> ScopeKey:
    return ScopeKey(
        normalise_namespace(namespace),
        scope_value("thread_id", thread_id),
        scope_value("agent_id", agent_id),
        scope_value("user_id", user_id),
    )


def check_key(key: Any) -> str:
    """Validate a caller's key (any non-empty text up to 512 characters).

    Raises:
        InvalidMemoryError: for anything else.
    """
    if not isinstance(key, str) or key == "" or len(key) > _MAX_SCOPE_CHARS:
        raise InvalidMemoryError(f"key must be a non-empty string of at most {_MAX_SCOPE_CHARS} characters")
    return check_text("key", key)


def check_caller_id(value: Any) -> str:
    """Validate a caller's global id: any text but agentmem's own id shape (up to 512 characters).

    Ids of agentmem's shape (32 lowercase hex) are refused: a caller id that looked like another
    memory's id would shadow it for every reader (``uuid.uuid4().hex`` is such a string; use
    ``str(uuid.uuid4())``).

    Raises:
        InvalidMemoryError: for anything else.
    """
    if not isinstance(value, str) or value == "" or len(value) > _MAX_SCOPE_CHARS:
        raise InvalidMemoryError(f"id must be a non-empty string of at most {_MAX_SCOPE_CHARS} characters")
    if is_memory_id(value):
        raise InvalidMemoryError(
            f"id {value!r} has the shape of agentmem's own ids (32 lowercase hex characters); "
            "choose another form, e.g. str(uuid.uuid4()) with its dashes"
        )
    return check_text("id", value)


def keyed_id(scope: ScopeKey, key: str) -> str:
    """The id of the memory a caller's key names in a scope (deterministic: upserts and get_by_key)."""
    return scope.tag + local_id_for_key(key)


def _tags(tags: Sequence[str] | None, config: StoreConfig) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise InvalidMemoryError(f"tags must be a sequence of strings, got {tags!r}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or tag == "":
            raise InvalidMemoryError(f"tags must be non-empty strings, got {tag!r}")
        if len(tag) > _MAX_TAG_CHARS:
            raise InvalidMemoryError(f"tag longer than {_MAX_TAG_CHARS} characters")
        check_text("tag", tag)
        if tag not in out:
            out.append(tag)
    if len(out) > config.max_tags:
        raise InvalidMemoryError(f"at most {config.max_tags} tags per memory")
    return tuple(out)


_SCALARS = (str, int, float, bool, type(None))


def _metadata(metadata: Mapping[str, Any] | None, config: StoreConfig) -> tuple[dict[str, Any], str]:
    if metadata is None:
        return {}, "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidMemoryError("metadata must be a mapping")
    # A batch often carries the same small metadata on every item (a chat message's status): a dict of
    # scalars is encoded once per distinct content. The key holds each value's type and, for a float, its
    # repr (1 == True == 1.0 and 0.0 == -0.0 hash alike but encode differently); the checks are on the
    # text, so a cached text passed them (a failed check raises and is not cached).
    if len(metadata) <= 8 and all(type(v) in _SCALARS for v in metadata.values()):
        key = tuple((k, type(v), v, repr(v) if type(v) is float else None) for k, v in metadata.items())
        decoded, text = _flat_metadata_text(key, config.max_metadata_bytes)
        return dict(decoded), text
    return _metadata_text(metadata, config.max_metadata_bytes)


@lru_cache(maxsize=256)
def _flat_metadata_text(key: tuple[tuple[Any, ...], ...], max_bytes: int) -> tuple[dict[str, Any], str]:
    return _metadata_text({k: v for k, _, v, _ in key}, max_bytes)


def _metadata_text(metadata: Mapping[str, Any], max_bytes: int) -> tuple[dict[str, Any], str]:
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidMemoryError(f"metadata keys must be strings, got {key!r}")
    try:
        text = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMemoryError(f"metadata must be JSON-serialisable: {exc}") from exc
    check_text("metadata", text)
    if len(text.encode("utf-8")) > max_bytes:
        raise InvalidMemoryError(f"metadata larger than {max_bytes} bytes")
    decoded: dict[str, Any] = json.loads(text)
    return decoded, text


# json.dumps(..., ensure_ascii=False) builds a new encoder on every call; one shared encoder writes the
# same text (json.dumps' defaults otherwise) for a fraction of the cost, on every write.
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False)
_NEVER_TEXT = format_number(NEVER)


def _json_list(values: Sequence[str]) -> str:
    return _JSON_TEXT.encode(list(values)) if values else "[]"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def metadata_tokens(metadata: Mapping[str, Any]) -> set[str]:
    """The indexed tokens of a memory's metadata (what the filter language pushes into a query).

    Per top-level key: its presence (``$exists``); its value when scalar (``$eq``/``$ne``/``$in``/``$nin``
    compare whole values); each scalar element when the value is a list (``$contains``).
    """
    tokens: set[str] = set()
    for key, value in metadata.items():
        tokens.add(presence_token(key))
        if _is_scalar(value):
            tokens.add(metadata_token(key, value))
        elif isinstance(value, list):
            tokens.update(member_token(key, x) for x in value if _is_scalar(x))
    return tokens


@dataclass(frozen=True)
class MemoryInput:
    """What a caller asked to remember (validated by :func:`prepare`)."""

    content: str
    importance: float = 0.5
    tags: Sequence[str] | None = None
    kind: Kind | str = Kind.SEMANTIC
    source: str | None = None
    metadata: Mapping[str, Any] | None = None
    ttl: float | None = None
    thread_id: str | None = None
    agent_id: str | None = None
    namespace: str | Sequence[str] | None = None
    user_id: str | None = None
    created_at: float | None = None
    key: str | None = None
    embed: bool = True
    """``False``: store, list and filter it, but never embed it or recall it (content may be empty)."""
    id: str | None = None
    """A caller-chosen global id (any text but agentmem's own id shape): get / update / forget find the
    memory by it without its scope, and ``Memory.id`` is this id."""
    texts: Sequence[str] | None = None
    """Texts to embed instead of the content, one vector each (LangGraph's ``fields``): recall scores the
    memory by its closest vector and returns it once. The content may then be empty."""
    subject: str | None = None
    """A fact's subject (``agentmem_core.facts``): a newer statement of it supersedes the older ones."""
    derived_from: Sequence[str] = ()
    """A fact's sources: the internal ids of the memories it was distilled from (``consolidate_facts``)."""
    context: str | None = None
    """Text that situates the memory (the surrounding turns, the speaker, the date): hybrid recall matches
    its words at half a content word's weight; it is neither embedded nor returned."""


MAX_TEXTS = 256
"""The most texts (vectors) one memory may have."""


@dataclass(frozen=True)
class PreparedMemory:
    """A validated memory, ready to be written (everything but the vector)."""

    id: str
    scope: ScopeKey
    kind: Kind
    content: str
    tags: tuple[str, ...]
    created_at: float
    expires_at: float | None
    ttl_ms: int
    fields: dict[str, str] = field(default_factory=dict)
    keeps_created: bool = False
    """Re-putting a key keeps the replaced memory's ``created_at`` (the caller gave none)."""
    external_id: str | None = None
    """The caller's global id (``remember(id=...)``), if one was given."""
    embedded: bool = True
    """Whether the content is embedded (``False``: stored, listed and filtered, never recalled)."""
    opt_rest: str = "||"
    """The ``opt`` field but its sequence (``schema.F.OPT``), which the write script prepends."""
    texts: tuple[str, ...] = ()
    """What is embedded, one vector each: ``(content,)``, the caller's ``texts``, or ``()``."""
    from_texts: bool = False
    """Whether the vectors are of the caller's ``texts`` (then ``update(content=...)`` keeps them)."""
    subject: str | None = None
    """A fact's normalised subject (facts are never merged by write-time dedup)."""


def check_content(content: Any, config: StoreConfig, *, embedded: bool = True) -> str:
    """Validate memory content (it may be empty only when it is not embedded).

    Raises:
        InvalidMemoryError: for empty (when embedded), non-text or oversized content.
    """
    if not isinstance(content, str) or (embedded and not content.strip()):
        raise InvalidMemoryError(
            "content must be a non-empty string" if embedded else "content must be a string"
        )
    check_text("content", content)
    if len(content) > config.max_content_chars:
        raise InvalidMemoryError(
            f"content is {len(content)} characters; the limit is {config.max_content_chars}"
        )
    return content


def check_importance(importance: Any) -> float:
    """Validate an importance in ``[0, 1]``.

    Raises:
        InvalidMemoryError: for anything else.
    """
    if isinstance(importance, bool) or not isinstance(importance, (int, float)):
        raise InvalidMemoryError(f"importance must be a number in [0, 1], got {importance!r}")
    if not math.isfinite(importance) or not 0.0 <= importance <= 1.0:
        raise InvalidMemoryError(f"importance must be in [0, 1], got {importance!r}")
    return float(importance)


def check_ttl(ttl: Any) -> float:
    """Validate a TTL in seconds.

    Raises:
        InvalidMemoryError: for a non-positive, non-finite or too long TTL.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise InvalidMemoryError(f"ttl must be a positive number of seconds, got {ttl!r}")
    if ttl > MAX_TTL_SECONDS:
        raise InvalidMemoryError(
            f"ttl must be at most {MAX_TTL_SECONDS:.0f} seconds (100 years), got {ttl!r}"
        )
    return float(ttl)


def content_fields(
    content: str, *, embedded: bool = True, context: Sequence[str] = ()
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The hash fields that follow from the content, and the ones to remove when it has no terms.

    ``context`` is the analysed terms of the memory's context (:func:`check_context`). Content that is not
    embedded is not searchable at all: no vector and no lexical terms either.
    """
    fields = {F.CONTENT: content}
    terms = analyze(content) if embedded else []
    context = context if embedded else ()
    if not terms and not context:
        return fields, (F.X_TERMS, F.LEX)
    # the lexical channel: distinct terms are matched and counted by the index, tf/length read here
    fields[F.X_TERMS] = "|".join(dict.fromkeys([*terms, *context]))
    fields[F.LEX] = encode_lex(terms, context)
    return fields, ()


def check_context(context: Any, config: StoreConfig, *, embedded: bool) -> list[str]:
    """Validate a memory's context and return its analysed terms (``[]`` for none).

    Raises:
        InvalidMemoryError: for non-text or oversized context, or context on a memory that is not embedded
            (it is never recalled, so its context could never be matched).
    """
    if context is None:
        return []
    if not isinstance(context, str):
        raise InvalidMemoryError(f"context must be a string, got {type(context).__name__}")
    check_text("context", context)
    if len(context) > config.max_content_chars:
        raise InvalidMemoryError(
            f"context is {len(context)} characters; the limit is {config.max_content_chars}"
        )
    if not embedded and context.strip():
        raise InvalidMemoryError(
            "context helps recall find a memory; a memory with embed=False is never recalled"
        )
    return analyze(context)


def tag_fields(tags: tuple[str, ...]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The hash fields that follow from the tags (an empty TAG value is never written: it is removed)."""
    fields = {F.TAGS: _json_list(tags)}
    if not tags:
        return fields, (F.X_TAGS,)
    fields[F.X_TAGS] = "|".join(encode_tag(t) for t in tags)
    return fields, ()


def join_meta_tokens(existing: str | None, extra: Sequence[str]) -> str:
    """The metadata TAG field with ``extra`` tokens (a fact's) added to the metadata's own."""
    return "|".join([*(existing.split("|") if existing else ()), *extra])


def metadata_fields(
    metadata: Mapping[str, Any], text: str, numeric: Sequence[str] = ()
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The hash fields that follow from the metadata: its JSON text and its indexed tokens.

    Declared numeric keys (``numeric``) that hold a number get their NUMERIC mirror; the others lose it.
    """
    fields = {F.METADATA: text}
    removed: list[str] = []
    for key in numeric:
        number = numeric_value(lookup(metadata, key)[1])
        if number is None:
            removed.append(numeric_field(key))
        else:
            fields[numeric_field(key)] = number
    tokens = sorted(metadata_tokens(metadata))
    if not tokens:
        removed.append(F.X_META)
    else:
        fields[F.X_META] = "|".join(tokens)
    return fields, tuple(removed)


_MEMO_TEXT = 512
"""Metadata texts up to this length have their fields memoised (a batch's memories often share one)."""


@lru_cache(maxsize=256)
def _memo_metadata_fields(text: str, numeric: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(metadata_fields(json.loads(text), text, numeric)[0].items())


@lru_cache(maxsize=256)
def _scope_fields(scope: ScopeKey) -> tuple[tuple[str, str], ...]:
    """The index and stored fields a scope gives each of its memories (pure: memoised)."""
    namespace = scope.namespace
    return (
        (F.NAMESPACE, _json_list(namespace)),
        (F.X_NS, namespace_token(namespace)),
        (F.X_THREAD, encode_tag(scope.thread_id) if scope.thread_id is not None else NONE_TAG),
        (F.X_AGENT, encode_tag(scope.agent_id) if scope.agent_id is not None else NONE_TAG),
        (F.X_USER, encode_tag(scope.user_id) if scope.user_id is not None else NONE_TAG),
    )


@lru_cache(maxsize=256)
def _ancestry(namespace: tuple[str, ...]) -> str:
    return "|".join(namespace_tokens(namespace))


def prepare(item: MemoryInput, config: StoreConfig, now: float) -> PreparedMemory:
    """Validate a :class:`MemoryInput` and build its hash fields.

    Raises:
        InvalidMemoryError: for any invalid input (nothing is written then).
    """
    if not isinstance(item.embed, bool):
        raise InvalidMemoryError(f"embed must be True or False, got {item.embed!r}")
    texts = _texts(item.texts, item.embed, config)
    check_content(item.content, config, embedded=item.embed and texts is None)
    importance = check_importance(item.importance)
    kind = Kind.parse(item.kind)
    scope = scope_of(item.namespace, item.thread_id, item.agent_id, item.user_id)
    namespace = scope.namespace
    source = scope_value("source", item.source)
    tags = _tags(item.tags, config)
    metadata, metadata_text = _metadata(item.metadata, config)
    created_at = now if item.created_at is None else item.created_at
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, (int, float))
        or not math.isfinite(created_at)
    ):
        raise InvalidMemoryError(f"created_at must be a Unix timestamp, got {item.created_at!r}")
    ttl = item.ttl if item.ttl is not None else config.ttl_by_kind.get(kind)
    if ttl is not None:
        ttl = check_ttl(ttl)
    # A TTL counts from the write, not from a back-dated created_at (importing history must not expire it).
    expires_at = None if ttl is None else now + float(ttl)
    key = None if item.key is None else check_key(item.key)
    external = None if item.id is None else check_caller_id(item.id)
    if external is not None and key is not None:
        raise InvalidMemoryError(
            "give a memory either a key (unique in its scope) or an id (global), not both"
        )
    if external is not None:
        memory_id = scope.tag + local_id_for_caller_id(external)
    else:
        memory_id = keyed_id(scope, key) if key is not None else scope.tag + new_local_id()

    created_text = format_number(float(created_at))
    expires_text = format_number(expires_at) if expires_at is not None else _NEVER_TEXT
    fields: dict[str, str] = {
        F.KIND: kind.value,
        F.IMPORTANCE: format_number(float(importance)),
        F.CREATED_AT: created_text,
        F.UPDATED_AT: format_number(now),
        F.EXPIRES_AT: expires_text,
        F.X_CREATED_AT: created_text,
        F.X_EXPIRES_AT: expires_text,
    }
    fields.update(_scope_fields(scope))
    fields[F.X_SOURCE] = encode_tag(source) if source is not None else NONE_TAG
    # Omit a field rather than writing an empty string (portable-subset rule for TAG fields).
    if namespace:
        fields[F.X_NS_ANC] = _ancestry(namespace)
    # The lexical channel reads the content; a memory of texts alone is found by the words of its texts.
    lexical_text = item.content if texts is None or item.content.strip() else "\n".join(texts)
    context = check_context(item.context, config, embedded=item.embed)
    content_part, _gone = content_fields(lexical_text, embedded=item.embed, context=context)
    content_part[F.CONTENT] = item.content
    fields.update(content_part)
    fields.update(tag_fields(tags)[0])
    if len(metadata_text) <= _MEMO_TEXT:  # metadata is json.loads(metadata_text): the text decides
        fields.update(_memo_metadata_fields(metadata_text, config.numeric_fields))
    else:
        fields.update(metadata_fields(metadata, metadata_text, config.numeric_fields)[0])

    for name, value in ((F.THREAD_ID, scope.thread_id), (F.AGENT_ID, scope.agent_id),
                        (F.USER_ID, scope.user_id), (F.SOURCE, source), (F.KEY, key)):  # fmt: skip
        if value is not None:
            fields[name] = value
    subject = None
    if item.subject is not None:
        subject = normalise_subject(item.subject)
        if texts is not None:
            raise InvalidMemoryError("a fact (subject=) is one statement: it cannot have texts")
        sources = tuple(item.derived_from)
        if not all(isinstance(i, str) and is_memory_id(i) for i in sources):
            raise InvalidMemoryError("derived_from takes memory ids")
        state = FactState(subject, sources=sources)
        fields[F.FACT] = encode_state(state)
        fields[F.X_META] = join_meta_tokens(fields.get(F.X_META), fact_tokens(state))
    elif item.derived_from:
        raise InvalidMemoryError("only a fact (subject=) records the memories it was derived from")
    ttl_ms = 0 if expires_at is None else max(1, int(round(float(ttl or 0) * 1000)))

    return PreparedMemory(
        id=memory_id,
        scope=scope,
        kind=kind,
        content=item.content,
        tags=tags,
        created_at=float(created_at),
        expires_at=expires_at,
        ttl_ms=ttl_ms,
        fields=fields,
        keeps_created=(key is not None or external is not None) and item.created_at is None,
        external_id=external,
        embedded=item.embed,
        opt_rest=pack_opt_rest(
            float(ttl) if ttl_ms and ttl is not None else None, item.embed, external, texts is not None
        ),
        texts=(texts or (item.content,)) if item.embed else (),
        from_texts=texts is not None,
        subject=subject,
    )


def _texts(texts: Any, embed: bool, config: StoreConfig) -> tuple[str, ...] | None:
    """Validate ``remember(texts=...)``: ``None``, or 1..MAX_TEXTS non-empty strings.

    Raises:
        InvalidMemoryError: a single string, an empty or oversized list, a non-text or blank entry, or
            texts for a memory that is not embedded.
    """
    if texts is None:
        return None
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidMemoryError("texts must be a list of strings (one vector each), not one string")
    if not embed:
        raise InvalidMemoryError("texts are what is embedded: they cannot go with embed=False")
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise InvalidMemoryError(f"texts must hold 1..{MAX_TEXTS} strings, got {len(texts)}")
    for text in texts:
        check_content(text, config)
    return tuple(texts)


@dataclass(frozen=True)
class PreparedPatch:
    """A validated partial change of one memory: the hash fields to set and remove, and the bookkeeping.

    Each changed attribute maps to hash fields computed from that attribute alone, so the server applies
    the patch atomically without the client reading the memory first: two writers changing different
    attributes never lose each other's change.
    """

    set_fields: dict[str, str]
    removed: tuple[str, ...]
    kind: Kind | None
    importance: str | None
    ttl_ms: int | None
    expires_text: str | None
    content: str | None


def prepare_patch(
    config: StoreConfig,
    now: float,
    *,
    content: str | None = None,
    importance: float | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    kind: Kind | str | None = None,
    ttl: float | None = None,
) -> PreparedPatch:
    """Validate the changes of an ``update`` (``None`` leaves an attribute as it is).

    Raises:
        InvalidMemoryError: for any invalid change (nothing is written then).
    """
    fields: dict[str, str] = {F.UPDATED_AT: format_number(now)}
    removed: list[str] = []
    parts: list[tuple[dict[str, str], tuple[str, ...]]] = []
    if content is not None:  # its fields follow once the memory is known to be embedded or not
        check_content(content, config, embedded=False)
    if tags is not None:
        parts.append(tag_fields(_tags(tags, config)))
    if metadata is not None:
        parts.append(metadata_fields(*_metadata(metadata, config), config.numeric_fields))
    for part, gone in parts:
        fields.update(part)
        removed.extend(gone)
    importance_text = None
    if importance is not None:
        importance_text = fields[F.IMPORTANCE] = format_number(check_importance(importance))
    parsed_kind = None
    if kind is not None:
        parsed_kind = Kind.parse(kind)
        fields[F.KIND] = parsed_kind.value
    ttl_ms = expires_text = None
    if ttl is not None:
        seconds = check_ttl(ttl)
        ttl_ms = max(1, int(round(seconds * 1000)))
        expires_text = fields[F.EXPIRES_AT] = fields[F.X_EXPIRES_AT] = format_number(now + seconds)
    return PreparedPatch(fields, tuple(removed), parsed_kind, importance_text, ttl_ms, expires_text, content)
