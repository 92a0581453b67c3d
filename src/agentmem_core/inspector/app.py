"""The inspector's web app: a small local dashboard over one :class:`~agentmem_core.MemoryStore`.

Why Starlette + Jinja2 (+ uvicorn): the inspector is a handful of server-rendered, read-mostly pages
on loopback. Starlette is small, well kept, typed and async, and gives routing, forms, cookies,
static files and an in-process test client without a framework's worth of machinery; Jinja2 renders
the pages with autoescaping on, so memory content (which is caller input, and may be hostile) is
always escaped. The pages carry no JavaScript and fetch nothing external (the CSS ships in the
package). The store is the sync :class:`~agentmem_core.MemoryStore`: the endpoints are plain ``def``
functions, which Starlette runs in its threadpool, so a slow store call never blocks the event loop.

Only the core's public API is used (``stats``, ``list``, ``facets``, ``recall``, ``get``, ``audit``,
``forget``, ``config``, ``now``).

Security model:

* Read-only unless ``allow_writes=True``; even then forgetting needs a POST carrying the per-process
  CSRF token and an explicit ``confirm=yes`` field (sent by the confirmation page).
* Without a ``token`` (the loopback default) only loopback ``Host`` headers are accepted, so a web page
  elsewhere cannot reach the dashboard through DNS rebinding. With a ``token`` (required off loopback:
  :func:`access_token`) every request needs it, as the ``token`` query parameter (which then sets a
  cookie) or that cookie.
* Responses carry a strict Content-Security-Policy (no scripts at all) and ``Referrer-Policy:
  no-referrer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agentmem_core.audit import ACTIONS
from agentmem_core.config import Kind, ScoringWeights
from agentmem_core.errors import AgentMemError
from agentmem_core.inspector import views
from agentmem_core.store import MemoryStore
from agentmem_core.types import Memory, Page

__all__ = ["COOKIE", "access_token", "create_app", "is_loopback", "serve"]

COOKIE = "agentmem_inspector_token"
"""The cookie that carries the access token once a ``?token=`` request set it."""

PAGE_SIZE = 25
"""Memories per page of the memory list."""

MAX_SCAN_PAGES = 20
"""Core pages one memory-list page reads at most while client-side filters (exact scope, text) drop
memories; past it the page is shown short, with a cursor to continue."""

TIMELINE_MAX = 10_000
"""The most memories the timeline charts (the newest ones)."""

_HERE = Path(__file__).parent
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, optionally ``[...]``-bracketed) is a loopback interface."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_token(host: str, token: str | None) -> str | None:
    """The token a bind to ``host`` requires: ``token`` if given, else none on loopback, else a new one."""
    if token:
        return token
    if is_loopback(host):
        return None
    return secrets.token_urlsafe(24)


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8765`` -> ``::1``, ``localhost:80`` -> ``localhost``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Guard(BaseHTTPMiddleware):
    """Access control (token or loopback Host) and security headers on every response."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        set_cookie = False
        if self.token is None:
            if not is_loopback(_host_name(request.headers.get("host", ""))):
                return _secured(PlainTextResponse("forbidden: not a loopback Host", status_code=403))
        else:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                set_cookie = True
            elif not hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self.token.encode()):
                return _secured(
                    PlainTextResponse("unauthorized: pass ?token=... (printed at start)", status_code=401)
                )
        response = await call_next(request)
        if set_cookie:
            response.set_cookie(COOKIE, self.token or "", httponly=True, samesite="strict")
        return _secured(response)


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _qs(**params: Any) -> str:
    """``?a=1&b=2`` of the params that are not ``None`` or empty (the template escapes it)."""
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    return "?" + urlencode(clean) if clean else ""


def _float(raw: str | None, default: float | None, *, low: float, high: float, name: str) -> float | None:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: not a number: {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name}: expected {low} to {high}, got {raw!r}")
    return value


def _int(raw: str | None, default: int, *, low: int, high: int, name: str) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: not an integer: {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: expected {low} to {high}, got {raw!r}")
    return value


def create_app(store: MemoryStore, *, allow_writes: bool = False, token: str | None = None) -> Starlette:
    """The inspector as a Starlette app over ``store`` (already set up; the caller closes it).

    Args:
        store: the store to inspect.
        allow_writes: offer forgetting a memory (after a confirmation step); read-only otherwise.
        token: require this token on every request (``?token=`` or its cookie); ``None``: no login, and
            only loopback ``Host`` headers are served (see :func:`access_token`).

    Returns:
        The ASGI app (serve it with uvicorn, or test it with ``starlette.testclient.TestClient``).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["qs"] = _qs
    env.globals["allow_writes"] = allow_writes
    env.globals["actions"] = ACTIONS
    env.globals["kinds"] = [k.value for k in Kind]
    templates = Jinja2Templates(env=env)
    csrf = secrets.token_urlsafe(32)

    def render(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(request, name, dict(context), status_code=status)

    def error(request: Request, message: str, status: int = 400) -> Response:
        return render(request, "error.html", {"title": "Error", "message": message}, status)

    def scope_of(request: Request, required: bool = True) -> views.Scope | None:
        raw = request.query_params.get("scope")
        if raw is None or raw == "":
            if required:
                raise ValueError("scope: missing")
            return None
        return views.Scope.from_param(raw)

    def guarded(
        endpoint: Callable[[Request], Response],
    ) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return endpoint(request)
            except ValueError as exc:
                return error(request, str(exc))
            except AgentMemError as exc:
                return error(request, f"{type(exc).__name__}: {exc}")

        run.__name__ = endpoint.__name__
        return run

    # -- pages -----------------------------------------------------------------------------------------
    def home(request: Request) -> Response:
        stats = store.stats()
        tree = views.scope_tree(stats)
        return render(
            request,
            "index.html",
            {"title": "Scopes", "tree": tree, "stats": stats, "name": store.config.name},
        )

    def read_page(
        scope: views.Scope, cursor: str | None, kind: str, tag: str, text: str
    ) -> tuple[list[Memory], str | None, int]:
        filters = scope.filters()
        if kind:
            filters["kinds"] = [kind]
        if tag:
            filters["tags"] = [tag]
        needle = text.casefold()
        found: list[Memory] = []
        scanned = 0
        for _ in range(MAX_SCAN_PAGES):
            page: Page = store.list(limit=PAGE_SIZE, cursor=cursor, refresh_ttl=False, **filters)
            scanned += len(page.memories)
            found.extend(
                m
                for m in page.memories
                if views.matches_scope(m, scope) and (not needle or needle in m.content.casefold())
            )
            cursor = page.next_cursor
            if cursor is None or len(found) >= PAGE_SIZE:
                break
        return found, cursor, scanned

    def scope_page(request: Request) -> Response:
        scope = scope_of(request)
        assert scope is not None
        params = request.query_params
        kind = params.get("kind", "")
        if kind and kind not in {k.value for k in Kind}:
            raise ValueError(f"kind: unknown {kind!r}")
        tag = params.get("tag", "")
        text = params.get("text", "")
        memories, cursor, scanned = read_page(scope, params.get("cursor") or None, kind, tag, text)
        now = store.now()
        facets = store.facets(**scope.filters())
        return render(
            request,
            "scope.html",
            {
                "title": scope.label,
                "scope": scope,
                "memories": [views.memory_view(m, now) for m in memories],
                "next_cursor": cursor,
                "scanned": scanned,
                "kind": kind,
                "tag": tag,
                "text": text,
                "facets": facets,
                "notice": params.get("done", ""),
            },
        )

    def timeline_page(request: Request) -> Response:
        scope = scope_of(request)
        assert scope is not None
        points: list[tuple[float, str]] = []
        cursor: str | None = None
        while len(points) < TIMELINE_MAX:
            page = store.list(limit=500, cursor=cursor, **scope.filters())
            points.extend(
                (m.created_at, m.kind.value) for m in page.memories if views.matches_scope(m, scope)
            )
            cursor = page.next_cursor
            if cursor is None:
                break
        chart = views.timeline(points[:TIMELINE_MAX])
        return render(
            request,
            "timeline.html",
            {
                "title": f"Timeline · {scope.label}",
                "scope": scope,
                "chart": chart,
                "truncated": cursor is not None,
            },
        )

    def audit_page(request: Request) -> Response:
        params = request.query_params
        action = params.get("action", "")
        if action and action not in ACTIONS:
            raise ValueError(f"action: unknown {action!r}")
        limit = _int(params.get("limit"), 50, low=1, high=1000, name="limit")
        entries = store.audit(
            limit=limit, before=params.get("before") or None, actions=[action] if action else None
        )
        return render(
            request,
            "audit.html",
            {
                "title": "Audit trail",
                "rows": views.audit_rows(entries),
                "action": action,
                "limit": limit,
                "before": entries[-1].position if len(entries) == limit else None,
            },
        )

    def recall_page(request: Request) -> Response:
        params = request.query_params
        defaults = store.config.scoring.weights
        query = params.get("q", "")
        scope = scope_of(request, required=False)
        k = _int(params.get("k"), 5, low=1, high=100, name="k")
        threshold = _float(params.get("threshold"), None, low=0.0, high=2.0, name="threshold")
        ws = _float(params.get("ws"), defaults.similarity, low=0, high=100, name="similarity weight")
        wr = _float(params.get("wr"), defaults.recency, low=0, high=100, name="recency weight")
        wi = _float(params.get("wi"), defaults.importance, low=0, high=100, name="importance weight")
        assert ws is not None and wr is not None and wi is not None
        scopes = [
            views.Scope(tuple(s.namespace), s.thread_id, s.agent_id, s.user_id) for s in store.stats().scopes
        ]
        context: dict[str, Any] = {
            "title": "Recall playground",
            "q": query,
            "scope": scope,
            "scopes": scopes,
            "k": k,
            "threshold": threshold,
            "ws": ws,
            "wr": wr,
            "wi": wi,
            "result": None,
            "bar_width": views.BAR_WIDTH,
        }
        if query.strip():
            weights = ScoringWeights(similarity=ws, recency=wr, importance=wi)
            filters = scope.filters() if scope is not None else {}
            wide_k = min(max(4 * k, 20), 200)
            wide = store.recall(query, k=wide_k, threshold=None, weights=weights, reinforce=False, **filters)
            gated = None
            if threshold is not None:
                gated = store.recall(
                    query, k=k, threshold=threshold, weights=weights, reinforce=False, **filters
                )
            context["result"] = views.playground_view(
                wide, k=k, weights=weights, threshold=threshold, now=store.now(), gated=gated
            )
        return render(request, "recall.html", context)

    def memory_page(request: Request) -> Response:
        memory_id = request.query_params.get("id", "")
        memory = store.get(memory_id) if memory_id else None
        if memory is None:
            return error(request, f"no memory {memory_id!r}", 404)
        history = (
            store.history(
                memory.subject,
                namespace=list(memory.namespace),
                thread_id=memory.thread_id,
                agent_id=memory.agent_id,
                user_id=memory.user_id,
            )
            if memory.subject
            else []
        )
        now = store.now()
        return render(
            request,
            "memory.html",
            {
                "title": f"Memory {memory.id}",
                "m": views.memory_view(memory, now),
                "memory": memory,
                "history": [views.memory_view(h, now) for h in history],
            },
        )

    def forget_confirm(request: Request) -> Response:
        if not allow_writes:
            return error(request, "read-only: start the inspector with --allow-writes to forget", 403)
        memory_id = request.query_params.get("id", "")
        memory = store.get(memory_id) if memory_id else None
        if memory is None:
            return error(request, f"no memory {memory_id!r}", 404)
        return render(
            request,
            "forget.html",
            {"title": "Forget?", "m": views.memory_view(memory, store.now()), "csrf": csrf},
        )

    async def forget_post(request: Request) -> Response:
        if not allow_writes:
            return error(request, "read-only: start the inspector with --allow-writes to forget", 403)
        form = await request.form()
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given.encode(), csrf.encode()):
            return error(request, "forbidden: missing or wrong confirmation token", 403)
        if form.get("confirm") != "yes":
            return error(request, "not confirmed: the form needs confirm=yes", 400)
        memory_id = str(form.get("id", ""))
        memory = store.get(memory_id) if memory_id else None
        if memory is None:
            return error(request, f"no memory {memory_id!r}", 404)
        store.forget(memory_id)
        scope = views.Scope(tuple(memory.namespace), memory.thread_id, memory.agent_id, memory.user_id)
        return RedirectResponse("/scope" + _qs(scope=scope.to_param(), done="forgotten"), status_code=303)

    def forget_refused(request: Request) -> Response:  # the POST route when writes are off
        return error(request, "read-only: start the inspector with --allow-writes to forget", 403)

    routes = [
        Route("/", guarded(home), name="home"),
        Route("/scope", guarded(scope_page), name="scope"),
        Route("/timeline", guarded(timeline_page), name="timeline"),
        Route("/audit", guarded(audit_page), name="audit"),
        Route("/recall", guarded(recall_page), name="recall"),
        Route("/memory", guarded(memory_page), name="memory"),
        Route("/forget", guarded(forget_confirm), methods=["GET"], name="forget_confirm"),
        Route("/forget", forget_post if allow_writes else guarded(forget_refused), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token)])


def serve(
    store: MemoryStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_writes: bool = False,
    token: str | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    """Serve the inspector with uvicorn until interrupted (blocks).

    Args:
        store: the store to inspect (set up; the caller closes it).
        host: the interface to bind (loopback by default; anything else requires a token).
        port: the TCP port.
        allow_writes: offer forgetting (see :func:`create_app`).
        token: the access token; generated when ``host`` is not loopback and none is given.
        announce: called with the URL to open (it holds the token, when one is required).
    """
    import uvicorn

    required = access_token(host, token)
    app = create_app(store, allow_writes=allow_writes, token=required)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (_qs(token=required) if required else "")
    mode = "read-write (forget allowed)" if allow_writes else "read-only"
    announce(f"agentmem inspector ({mode}) on {url}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
