"""The ``agentmem`` command line: inspect, search, prune, export and import a store, and read its audit trail.

Run ``agentmem --help`` (or ``python -m agentmem_core --help``). Every command opens one store
(``--url``, ``--name``), runs one operation and exits with 0 (done), 1 (the operation failed: the
message is printed on stderr, without a traceback) or 2 (bad usage).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from agentmem_core.audit import ACTIONS, AuditEntry
from agentmem_core.connection import URL_ENV, default_path, default_url, resolve_url, sqlite_path
from agentmem_core.embeddings import Embedder, HashingEmbedder, OpenAIEmbedder, SentenceTransformerEmbedder
from agentmem_core.errors import AgentMemError, ConfigurationError, DimensionMismatchError
from agentmem_core.store import MemoryStore
from agentmem_core.types import Memory

__all__ = ["build_parser", "main"]

DEFAULT_NAME = "agentmem"
"""The store name when ``--name`` is not given."""

DEFAULT_DIMS = 64
"""The hashing embedder's dimension for a new store when neither ``--dims`` nor the store says."""

_DESCRIPTION = """\
Inspect and maintain an agentmem store: stats, list, search, forget, export and import (JSON Lines),
and read its audit trail (audit).

The store is --url (default: $AGENTMEM_URL, else the embedded SQLite file {path}) and --name.

Embedders: only `search` and `inspect` (its recall playground) embed anything (export and import copy
the stored vectors). The default, `hashing`, is agentmem's dependency-free HashingEmbedder: its
dimension is --dims, else the store's own, and its results are meaningful only for a store written with
HashingEmbedder. `local` is the
sentence-transformers all-MiniLM-L6-v2 model (384 dimensions), when `pip install agentmem[local]` is
installed; `openai[:MODEL]` calls the OpenAI API (needs agentmem[openai] and OPENAI_API_KEY). Use the
embedder the store was written with.

Exit status: 0 done, 1 the operation failed (message on stderr), 2 bad usage."""


# -- arguments -----------------------------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _when(text: str) -> float:
    """A point in time: Unix seconds, or an ISO 8601 date/time (UTC unless it names its offset)."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected Unix seconds or an ISO 8601 time (2026-05-01T12:00:00), got {text!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite time, got {text!r}")
    return value


def _store_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The store options, on the main parser and (without defaults) on each command, so both orders work."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--url", default=default(None), help=f"store URL (default: ${URL_ENV}, else the embedded file)"
    )
    parser.add_argument("--name", default=default(DEFAULT_NAME), help=f"store name (default: {DEFAULT_NAME})")
    parser.add_argument(
        "--embedder",
        default=default("hashing"),
        metavar="SPEC",
        help="hashing[:DIMS] (default) | local | openai[:MODEL]; only `search` and `inspect` embed",
    )
    parser.add_argument(
        "--dims", type=_positive, default=default(None), help="vector dimension (default: the store's)"
    )


def _scope_options(parser: argparse.ArgumentParser, *, filters: bool = True) -> None:
    group = parser.add_argument_group("scope")
    group.add_argument("--user", dest="user_id", help="user id")
    group.add_argument("--thread", dest="thread_id", help="thread id")
    group.add_argument("--agent", dest="agent_id", help="agent id")
    group.add_argument("--namespace", help="namespace, labels separated by / (e.g. travel/2026)")
    if filters:
        group.add_argument("--tag", dest="tags", action="append", help="has this tag (repeatable: all)")
        group.add_argument("--kind", dest="kinds", action="append", help="of this kind (repeatable: any)")


def build_parser() -> argparse.ArgumentParser:
    """The ``agentmem`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="agentmem",
        description=_DESCRIPTION.format(path=default_path()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _store_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = argparse.ArgumentParser(add_help=False)
    _store_options(shared, suppress=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[shared])
        sub.set_defaults(command_parser=sub)  # usage errors found later name the command's usage
        return sub

    stats = command("stats", "memory counts per scope and kind")
    _scope_options(stats, filters=False)
    stats.add_argument("--json", action="store_true", help="print JSON")

    listing = command("list", "list memories, newest first")
    _scope_options(listing)
    listing.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    listing.add_argument("--oldest", action="store_true", help="oldest first")
    listing.add_argument("--cursor", help="continue after a previous page (printed on stderr)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    search = command("search", "recall the memories closest to a text query")
    search.add_argument("query", help="the text to search for")
    search.add_argument("-k", type=_positive, default=10, help="how many hits (default 10)")
    _scope_options(search)
    search.add_argument(
        "--reinforce", action="store_true", help="count the hits as accessed (default: read only)"
    )
    search.add_argument("--json", action="store_true", help="one JSON object per line")

    forget = command("forget", "delete memories by id, or every memory of a scope (needs --yes)")
    forget.add_argument("ids", nargs="*", metavar="ID", help="memory ids (agentmem's or your own)")
    _scope_options(forget)
    forget.add_argument("--all", action="store_true", help="every memory of the store (needs --yes)")
    forget.add_argument("--yes", action="store_true", help="confirm deleting by scope")

    export = command("export", "write memories as JSON Lines (with their vectors) to FILE or - (stdout)")
    export.add_argument("file", metavar="FILE", help="output file, or - for stdout")
    _scope_options(export)

    load = command("import", "read an export (FILE or - for stdin) back into the store")
    load.add_argument("file", metavar="FILE", help="input file, or - for stdin")
    load.add_argument("--dry-run", action="store_true", help="only validate the input")

    audit = command("audit", "the audit trail: what the store's writes did, newest first")
    _scope_options(audit, filters=False)
    audit.add_argument("--limit", type=_positive, default=20, help="how many (default 20, at most 10000)")
    audit.add_argument(
        "--action", dest="actions", action="append", choices=ACTIONS, metavar="ACTION",
        help=f"only this action (repeatable: any): {', '.join(ACTIONS)}",
    )  # fmt: skip
    audit.add_argument("--memory-id", help="only entries about this memory")
    audit.add_argument("--since", type=_when, help="from this time on (Unix seconds or ISO 8601; UTC)")
    audit.add_argument("--until", type=_when, help="up to this time (Unix seconds or ISO 8601; UTC)")
    audit.add_argument("--before", metavar="POSITION", help="continue before a previous page (see stderr)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")

    inspect = command("inspect", "serve the memory inspector, a local web dashboard (agentmem[inspector])")
    inspect.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    inspect.add_argument("--port", type=_positive, default=8765, help="TCP port (default 8765)")
    inspect.add_argument(
        "--allow-writes", action="store_true", help="offer forgetting memories (with a confirm step)"
    )
    inspect.add_argument(
        "--token", help="access token (required off loopback: generated and printed when not given)"
    )
    return parser


# -- opening the store ---------------------------------------------------------------------------------
def _embedder_factory(spec: str, dims: int | None) -> tuple[Callable[[int], Embedder], int | None]:
    """``(make(dims), fixed dims or None)`` for an ``--embedder`` spec.

    Raises:
        ConfigurationError: an unknown spec, or dimensions that disagree.
    """
    kind, _, arg = spec.partition(":")
    if kind == "hashing":
        fixed = dims
        if arg:
            try:
                fixed = int(arg)
            except ValueError:
                raise ConfigurationError(f"--embedder hashing:DIMS needs an integer, got {arg!r}") from None
            if dims is not None and dims != fixed:
                raise ConfigurationError(f"--embedder {spec} disagrees with --dims {dims}")
        return HashingEmbedder, fixed
    if kind == "local" and not arg:
        local = SentenceTransformerEmbedder()  # the model loads on first use (search only)
        if dims is not None and dims != local.dims:
            raise ConfigurationError(f"the local model has {local.dims} dimensions, not --dims {dims}")
        return (lambda _dims: local), local.dims
    if kind == "openai":
        model = arg or "text-embedding-3-small"
        return (lambda n: OpenAIEmbedder(model, dims=n)), dims
    raise ConfigurationError(f"unknown --embedder {spec!r}: use hashing[:DIMS], local or openai[:MODEL]")


def _open(args: argparse.Namespace, dims_hint: int | None = None) -> MemoryStore:
    """Open and set up the store; a dimension not fixed by the options is the existing store's."""
    make, fixed = _embedder_factory(args.embedder, args.dims)
    url = resolve_url(args.url)
    path = sqlite_path(url)
    if args.url is None and path is not None and url == default_url() and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # the default file's directory
    dims = fixed or dims_hint or DEFAULT_DIMS
    store = MemoryStore.from_url(url, name=args.name, embedder=make(dims))
    try:
        store.setup()
    except DimensionMismatchError as exc:
        store.close()
        if fixed is not None or dims_hint is not None:
            raise
        store = MemoryStore.from_url(url, name=args.name, embedder=make(exc.existing))
        try:
            store.setup()
        except AgentMemError:
            store.close()
            raise
    except AgentMemError:
        store.close()
        raise
    return store


# -- output --------------------------------------------------------------------------------------------
def _filters(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("user_id", "thread_id", "agent_id", "tags", "kinds"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    if getattr(args, "namespace", None) is not None:
        out["namespace"] = args.namespace.split("/")
    return out


def _time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _scope_text(namespace: Sequence[str], thread: str | None, agent: str | None, user: str | None) -> str:
    parts = []
    if namespace:
        parts.append("ns=" + "/".join(namespace))
    for label, value in (("thread", thread), ("agent", agent), ("user", user)):
        if value is not None:
            parts.append(f"{label}={value}")
    return " ".join(parts) or "(global)"


def _memory_json(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "content": memory.content,
        "kind": memory.kind.value,
        "importance": memory.importance,
        "tags": list(memory.tags),
        "namespace": list(memory.namespace),
        "thread_id": memory.thread_id,
        "agent_id": memory.agent_id,
        "user_id": memory.user_id,
        "source": memory.source,
        "key": memory.key,
        "metadata": dict(memory.metadata),
        "created_at": memory.created_at,
        "updated_at": memory.updated_at,
        "expires_at": memory.expires_at,
        "access_count": memory.access_count,
        "last_accessed_at": memory.last_accessed_at,
        "duplicate_count": memory.duplicate_count,
        "sequence": memory.sequence,
        "embedded": memory.embedded,
        "ttl": memory.ttl,
    }


def _line(memory: Memory, width: int = 80) -> str:
    content = " ".join(memory.content.split())
    if len(content) > width:
        content = content[: width - 1] + "…"
    scope = _scope_text(memory.namespace, memory.thread_id, memory.agent_id, memory.user_id)
    return f"{memory.id}  {_time(memory.created_at)}  {memory.kind.value:<10}  {scope}  {content}"


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "at": entry.at,
        "action": entry.action,
        "ids": list(entry.ids),
        "count": entry.count,
        "scope": dict(entry.scope),
        "actor": entry.actor,
        "detail": dict(entry.detail),
    }


def _entry_line(entry: AuditEntry, shown_ids: int = 3) -> str:
    scope = entry.scope
    where = _scope_text(
        scope.get("namespace") or (), scope.get("thread_id"), scope.get("agent_id"), scope.get("user_id")
    )
    ids = " ".join(entry.ids[:shown_ids])
    if entry.count > shown_ids:  # count: every id, listed or not
        ids += f" (+{entry.count - min(shown_ids, len(entry.ids))} more)"
    actor = entry.actor if entry.actor is not None else "-"
    line = f"{entry.position}  {_time(entry.at)}  {entry.action:<11}  {entry.count:>5}  {actor}  {where}"
    line += f"  {ids}"
    if entry.detail:
        line += "  " + json.dumps(dict(entry.detail), ensure_ascii=False, sort_keys=True)
    return line


def _dump(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, ensure_ascii=False) + "\n")


class _Progress:
    """A running count on stderr (only when stderr is a terminal)."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, count: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\ragentmem: {self.verb} {count} memories")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


# -- commands ------------------------------------------------------------------------------------------
def _stats(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args) as store:
        stats = store.stats(**_filters(args))
    if args.json:
        scopes = [
            {
                "namespace": list(s.namespace), "thread_id": s.thread_id, "agent_id": s.agent_id,
                "user_id": s.user_id, "total": s.total, "by_kind": dict(s.by_kind),
            }
            for s in stats.scopes
        ]  # fmt: skip
        _dump({"total": stats.total, "by_kind": dict(stats.by_kind), "scopes": scopes}, out)
        return 0
    kinds = " ".join(f"{k}={n}" for k, n in sorted(stats.by_kind.items())) or "-"
    out.write(f"memories: {stats.total}\nby kind: {kinds}\nscopes: {len(stats.scopes)}\n")
    for s in stats.scopes:
        detail = " ".join(f"{k}={n}" for k, n in sorted(s.by_kind.items()))
        out.write(
            f"  {s.total:>8}  {_scope_text(s.namespace, s.thread_id, s.agent_id, s.user_id)}  {detail}\n"
        )
    return 0


def _list(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args) as store:
        page = store.list(
            limit=args.limit,
            cursor=args.cursor,
            order="oldest" if args.oldest else "newest",
            **_filters(args),
        )
    for memory in page.memories:
        if args.json:
            _dump(_memory_json(memory), out)
        else:
            out.write(_line(memory) + "\n")
    if page.next_cursor is not None:
        print(f"agentmem: more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args) as store:
        hits = store.recall(args.query, k=args.k, reinforce=args.reinforce, **_filters(args))
    for hit in hits:
        if args.json:
            _dump({"score": hit.score, "distance": hit.distance, "memory": _memory_json(hit.memory)}, out)
        else:
            out.write(f"{hit.score:.3f}  {_line(hit.memory)}\n")
    return 0


def _forget(args: argparse.Namespace, out: TextIO) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    filters = _filters(args)
    if args.ids and (filters or args.all):
        parser.error("forget takes ids or a scope (--user, --namespace, ..., --all), not both")
    if not args.ids and not filters and not args.all:
        parser.error("forget needs ids, a scope (--user, --namespace, ...) or --all")
    if not args.ids and not args.yes:
        parser.error("forgetting by scope deletes every matching memory: add --yes to confirm")
    with _open(args) as store:
        if args.ids:
            count = store.forget_many(args.ids)
            out.write(f"forgot {count} of {len(args.ids)} memories\n")
        else:
            if args.all:  # every scope: forget_by_scope needs a filter, so go scope by scope
                count = sum(
                    store.forget_by_scope(
                        namespace=list(s.namespace), thread_id=s.thread_id, agent_id=s.agent_id,
                        user_id=s.user_id,
                    )
                    for s in store.scopes()
                )  # fmt: skip
            else:
                count = store.forget_by_scope(**filters)
            out.write(f"forgot {count} memories\n")
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    progress = _Progress("exported")
    with _open(args) as store:
        if args.file == "-":
            count = store.export(out, progress=progress, **_filters(args))
            out.flush()
        else:
            target = Path(args.file)
            partial = target.with_name(target.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8", newline="\n") as stream:
                    count = store.export(stream, progress=progress, **_filters(args))
                os.replace(partial, target)  # a failed export leaves no truncated file behind
            finally:
                partial.unlink(missing_ok=True)
                progress.done()
    progress.done()
    where = "stdout" if args.file == "-" else args.file
    print(f"agentmem: exported {count} memories to {where}", file=sys.stderr)
    return 0


def _header_dims(first: str | None) -> int | None:
    """The ``dims`` of an export's header line (``None`` when it has none: the import reports why)."""
    if not first:
        return None
    try:
        header = json.loads(first)
    except ValueError:
        return None
    dims = header.get("dims") if isinstance(header, dict) else None
    return dims if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0 else None


def _first_line(lines: Iterator[str]) -> tuple[str | None, Iterable[str]]:
    for line in lines:
        if line.strip():
            return line, itertools.chain([line], lines)
    return None, ()


def _import(args: argparse.Namespace, stdin: TextIO) -> int:
    progress = _Progress("read")
    if args.file == "-":
        first, lines = _first_line(iter(stdin))
        with _open(args, _header_dims(first)) as store:
            try:
                result = store.import_records(lines, dry_run=args.dry_run, progress=progress)
            finally:
                progress.done()
    else:
        path = Path(args.file)
        with path.open(encoding="utf-8") as stream:
            first, _ = _first_line(stream)
        with _open(args, _header_dims(first)) as store:
            try:
                # a file can be read twice: validate all of it first, so bad input writes nothing
                with path.open(encoding="utf-8") as stream:
                    result = store.import_records(stream, dry_run=True)
                if not args.dry_run:
                    with path.open(encoding="utf-8") as stream:
                        result = store.import_records(stream, progress=progress)
            finally:
                progress.done()
    verb = "would import" if args.dry_run else "imported"
    expired = f" ({result.expired} expired, skipped)" if result.expired else ""
    print(f"agentmem: {verb} {result.imported} memories{expired}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args) as store:
        entries = store.audit(
            limit=args.limit,
            before=args.before,
            since=args.since,
            until=args.until,
            actions=args.actions,
            memory_id=args.memory_id,
            **_filters(args),
        )
    for entry in entries:
        if args.json:
            _dump(_entry_json(entry), out)
        else:
            out.write(_entry_line(entry) + "\n")
    if len(entries) == args.limit:  # a full page: there may be more further back
        print(f"agentmem: more: --before {entries[-1].position}", file=sys.stderr)
    return 0


def _inspect(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the inspector until interrupted (the web framework is imported only here)."""
    try:
        from agentmem_core.inspector.app import serve
    except ImportError as exc:
        raise ConfigurationError(f"the inspector needs: pip install 'agentmem[inspector]' ({exc})") from None
    with _open(args) as store:
        serve(
            store, host=args.host, port=args.port, allow_writes=args.allow_writes, token=args.token,
            announce=lambda line: print(line, file=out, flush=True),
        )  # fmt: skip
    return 0


def _silence(out: TextIO) -> None:
    """Point a closed pipe's file descriptor at /dev/null, so the interpreter's final flush stays quiet."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # io.StringIO and friends have none (io.UnsupportedOperation)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(
    argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Run the ``agentmem`` command line and return its exit status (0 ok, 1 failed, 2 bad usage).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        stdin: where ``import -`` reads (default: ``sys.stdin``).
        stdout: where results go (default: ``sys.stdout``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    out = stdout if stdout is not None else sys.stdout
    source = stdin if stdin is not None else sys.stdin
    try:
        if args.command == "stats":
            return _stats(args, out)
        if args.command == "list":
            return _list(args, out)
        if args.command == "search":
            return _search(args, out)
        if args.command == "forget":
            return _forget(args, out)
        if args.command == "export":
            return _export(args, out)
        if args.command == "audit":
            return _audit(args, out)
        if args.command == "inspect":
            return _inspect(args, out)
        return _import(args, source)
    except SystemExit as exc:  # parser.error() inside a command
        return exc.code if isinstance(exc.code, int) else 2
    except AgentMemError as exc:
        print(f"agentmem: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `agentmem export - | head`: the reader left; stop quietly
        _silence(out)
        return 1
    except OSError as exc:  # files: not found, not writable
        print(f"agentmem: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("agentmem: interrupted", file=sys.stderr)
        return 130
