"""Select :class:`ValkeyStorage` by a string: CrewAI's ``set_memory_storage_factory`` hook.

After ``register_valkey_storage(dims=1536)``, ``Memory(storage="valkey://localhost:6379/0?name=crew")``
is a :class:`ValkeyStorage` on the store ``crew``. ``name``, ``dims`` and ``index`` (``flat``, the default,
or ``hnsw``: the vector index algorithm) are read from the URL's query (and removed from it); the rest of
the URL goes to the core store. With ``default=url``, CrewAI's
default spec (``"lancedb"``, what ``Crew(memory=True)`` and agents use) is routed to Valkey too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crewai.memory.storage.factory import set_memory_storage_factory

from agentmem_core import IndexConfig
from agentmem_core.errors import ConfigurationError
from agentmem_crewai.storage import ValkeyStorage

__all__ = ["SCHEMES", "ValkeyStorageFactory", "register_valkey_storage"]

SCHEMES = frozenset(("valkey", "valkeys", "redis", "rediss"))
"""URL schemes the factory answers; it returns ``None`` for every other spec (CrewAI's own then)."""

_DEFAULT_SPEC = "lancedb"


@dataclass(frozen=True)
class ValkeyStorageFactory:
    """A CrewAI ``MemoryStorageFactory``: storage spec string -> :class:`ValkeyStorage`, or ``None``.

    Attributes:
        dims: the embedding dimension when the URL has no ``dims=``.
        name: the core store name when the URL has no ``name=``.
        default: a URL used for CrewAI's default spec ``"lancedb"`` (``None``: leave it to LanceDB).
        core_options: more core store options (see :meth:`ValkeyStorage.from_url`).
    """

    dims: int | None = None
    name: str = "crewai"
    default: str | None = None
    core_options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, spec: str) -> ValkeyStorage | None:
        """The storage for ``spec``, or ``None`` for a spec this factory does not handle.

        Raises:
            ConfigurationError: a Valkey URL without a usable ``dims`` (here or in the URL).
        """
        if spec == _DEFAULT_SPEC and self.default is not None:
            spec = self.default
        if not isinstance(spec, str) or urlsplit(spec).scheme not in SCHEMES:
            return None
        url, name, dims = self.parse(spec)
        options = dict(self.core_options)
        algorithm = self.algorithm(spec)
        if algorithm is not None:
            options["index"] = IndexConfig(dims=dims, algorithm=algorithm)
        return ValkeyStorage.from_url(url, dims=dims, name=name, core_options=options)

    @staticmethod
    def algorithm(spec: str) -> Literal["FLAT", "HNSW"] | None:
        """The ``index=`` of a spec's query (``None`` when it has none).

        Raises:
            ConfigurationError: a value other than ``flat`` or ``hnsw``.
        """
        raw = dict(parse_qsl(urlsplit(spec).query, keep_blank_values=True)).get("index")
        if raw is None:
            return None
        if raw.lower() == "flat":
            return "FLAT"
        if raw.lower() == "hnsw":
            return "HNSW"
        raise ConfigurationError(f"index in the storage URL must be flat or hnsw, got {raw!r}")

    def parse(self, spec: str) -> tuple[str, str, int]:
        """Split a spec into the core URL, the store name and the dimension.

        Raises:
            ConfigurationError: no dimension, or one that is not a positive integer.
        """
        parts = urlsplit(spec)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        name = query.pop("name", self.name)
        query.pop("index", None)  # the algorithm (see algorithm())
        raw = query.pop("dims", None)
        dims: int | None = self.dims
        if raw is not None:
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigurationError(f"dims in the storage URL must be a positive integer, got {raw!r}")
            dims = int(raw)
        if dims is None:
            raise ConfigurationError(
                "the Valkey storage needs the embedding dimension: add dims=<n> to the URL or pass "
                "register_valkey_storage(dims=<n>)"
            )
        return urlunsplit(parts._replace(query=urlencode(query))), name, dims


def register_valkey_storage(
    *,
    dims: int | None = None,
    name: str = "crewai",
    default: str | None = None,
    core_options: Mapping[str, Any] | None = None,
) -> ValkeyStorageFactory:
    """Register the factory process-wide, so ``Memory(storage="valkey://...")`` is a ValkeyStorage.

    CrewAI keeps one factory; ``crewai.memory.storage.factory.set_memory_storage_factory(None)``
    restores its default selection. Returns the registered factory.
    """
    factory = ValkeyStorageFactory(
        dims=dims, name=name, default=default, core_options=dict(core_options or {})
    )
    set_memory_storage_factory(factory)
    return factory
