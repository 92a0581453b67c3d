"""The memory inspector: a small local web dashboard over a store (``agentmem inspect``).

Install the extra (``pip install agentmem[inspector]``: Starlette, Jinja2, uvicorn), then::

    agentmem --url sqlite:///travel.db --name travel inspect          # http://127.0.0.1:8765/

or, from Python, ``create_app(store)`` (an ASGI app) / ``serve(store)``. It shows the scopes and
namespaces as a tree with counts, a filterable, paged memory list per scope, a timeline per scope, the
audit trail and a recall playground with each hit's score breakdown. It is read-only unless started
with ``allow_writes=True`` (``--allow-writes``). See :mod:`agentmem_core.inspector.app` for the
security model.

The web framework is imported only when :func:`create_app` or :func:`serve` is first used, so
``agentmem_core.inspector.views`` (the pure view models) imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentmem_core.inspector.app import access_token, create_app, serve

__all__ = ["access_token", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agentmem_core.inspector import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
