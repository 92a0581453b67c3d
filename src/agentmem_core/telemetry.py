"""Optional tracing and metrics around store operations: OpenTelemetry spans, Prometheus metrics, or nothing.

The store wraps each operation in ``with telemetry.operation("recall", store=name):``. The default,
:class:`NoopTelemetry`, costs one method call. The other implementations need the ``agentmem[otel]``
extra, imported when they are constructed. None of them sends anything anywhere by itself: spans go
to whatever tracer provider the application configured (none: the OpenTelemetry API drops them), and
metrics sit in a Prometheus registry until the application exposes it.

Every implementation re-raises the operation's exception unchanged; telemetry only observes it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from agentmem_core.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "AttributeValue",
    "CompositeTelemetry",
    "NoopTelemetry",
    "OpenTelemetryTelemetry",
    "PrometheusTelemetry",
    "Telemetry",
]

AttributeValue = str | bool | int | float
"""A span attribute value (Prometheus ignores attributes: they would explode label cardinality)."""

_OTEL_MISSING = "OpenTelemetry tracing needs opentelemetry-api: pip install agentmem[otel]"
_PROM_MISSING = "Prometheus metrics need prometheus-client: pip install agentmem[otel]"


@runtime_checkable
class Telemetry(Protocol):
    """Observes store operations."""

    def operation(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[None]:
        """A context manager around one operation.

        It times the block and records an exception raised in it, then lets the exception propagate
        unchanged.

        Args:
            name: the operation, e.g. ``"remember"`` or ``"recall"`` (a short, fixed set of names).
            **attributes: extra details for tracing backends, e.g. ``store="notes"``, ``k=5``.
        """
        ...


_NULL: AbstractContextManager[None] = nullcontext()


class NoopTelemetry:
    """Records nothing (the default): :meth:`operation` returns one shared, reusable null context."""

    def operation(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[None]:
        """A context manager that does nothing."""
        return _NULL

    def __repr__(self) -> str:
        return "NoopTelemetry()"


class OpenTelemetryTelemetry:
    """One OpenTelemetry span per operation, named ``agentmem.<operation>``.

    Attributes are set as ``agentmem.<key>`` (plus ``agentmem.operation``). A failing operation records
    the exception on the span, sets ``error.type`` and an error status, and re-raises it.

    Args:
        tracer: the tracer to use (``None``: ``opentelemetry.trace.get_tracer("agentmem")``, which follows
            the application's global tracer provider, even one set later).

    Raises:
        ConfigurationError: ``opentelemetry-api`` is not installed.
    """

    def __init__(self, tracer: Tracer | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ConfigurationError(_OTEL_MISSING) from exc
        self._trace = trace
        self._tracer: Tracer = tracer if tracer is not None else trace.get_tracer("agentmem")

    def __repr__(self) -> str:
        return f"OpenTelemetryTelemetry(tracer={self._tracer!r})"

    def operation(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[None]:
        """A context manager that runs the block inside a span ``agentmem.<name>``."""
        return self._span(name, attributes)

    @contextmanager
    def _span(self, name: str, attributes: dict[str, AttributeValue]) -> Iterator[None]:
        attrs: dict[str, AttributeValue] = {"agentmem.operation": name}
        attrs.update((f"agentmem.{key}", value) for key, value in attributes.items())
        # Exceptions are recorded here rather than by the SDK so that ``error.type`` is set too.
        with self._tracer.start_as_current_span(
            f"agentmem.{name}", attributes=attrs, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield
            except Exception as exc:
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(
                    self._trace.Status(self._trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                )
                raise


# Metrics are registered once per (registry, namespace): Prometheus refuses a second registration of the
# same name, and applications may well build several stores, each with its own PrometheusTelemetry.
_METRICS: weakref.WeakKeyDictionary[
    CollectorRegistry, dict[tuple[str, tuple[float, ...]], tuple[Histogram, Counter]]
]
_METRICS = weakref.WeakKeyDictionary()
_METRICS_LOCK = threading.Lock()


class PrometheusTelemetry:
    """Prometheus metrics per operation.

    - ``<namespace>_operation_seconds{operation}``: a histogram of durations (failed operations included).
    - ``<namespace>_operation_errors_total{operation,error}``: failures by exception class name.

    Instances that share a registry and namespace share the metrics. Exposing them (an HTTP endpoint,
    a push gateway) is up to the application.

    Args:
        registry: the ``prometheus_client.CollectorRegistry`` (``None``: the global ``REGISTRY``).
        namespace: the metric name prefix.
        buckets: histogram bucket upper bounds in seconds (``None``: from 0.5 ms to 30 s).

    Raises:
        ConfigurationError: ``prometheus-client`` is not installed.
    """

    _DEFAULT_BUCKETS = (
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
    )

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "agentmem",
        *,
        buckets: Sequence[float] | None = None,
    ) -> None:
        try:
            import prometheus_client
        except ImportError as exc:
            raise ConfigurationError(_PROM_MISSING) from exc
        if registry is None:
            registry = prometheus_client.REGISTRY
        bounds = tuple(float(b) for b in buckets) if buckets is not None else self._DEFAULT_BUCKETS
        with _METRICS_LOCK:
            per_registry = _METRICS.setdefault(registry, {})
            metrics = per_registry.get((namespace, bounds))
            if metrics is None:
                if any(key[0] == namespace for key in per_registry):
                    raise ConfigurationError(
                        f"metrics {namespace}_operation_* are already registered with other buckets"
                    )
                histogram = prometheus_client.Histogram(
                    "operation_seconds",
                    "Duration of agentmem operations in seconds.",
                    ["operation"],
                    namespace=namespace,
                    registry=registry,
                    buckets=bounds,
                )
                errors = prometheus_client.Counter(
                    "operation_errors",
                    "agentmem operations that raised, by exception class.",
                    ["operation", "error"],
                    namespace=namespace,
                    registry=registry,
                )
                metrics = per_registry[(namespace, bounds)] = (histogram, errors)
        self._histogram, self._errors = metrics
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"PrometheusTelemetry(namespace={self._namespace!r})"

    def operation(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[None]:
        """A context manager that observes the block's duration, and counts it if it raises."""
        return self._observe(name)

    @contextmanager
    def _observe(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self._errors.labels(operation=name, error=type(exc).__name__).inc()
            raise
        finally:
            self._histogram.labels(operation=name).observe(time.perf_counter() - start)


class CompositeTelemetry:
    """Sends every operation to several telemetry implementations, e.g. spans and metrics together.

    Parts are entered in order and exited in reverse. Nested composites are flattened and no-op parts
    dropped.

    Args:
        *parts: the implementations to combine.
    """

    def __init__(self, *parts: Telemetry) -> None:
        flat: list[Telemetry] = []
        for part in parts:
            if isinstance(part, CompositeTelemetry):
                flat.extend(part.parts)
            elif not isinstance(part, NoopTelemetry):
                flat.append(part)
        self._parts = tuple(flat)

    @property
    def parts(self) -> tuple[Telemetry, ...]:
        """The combined implementations, flattened."""
        return self._parts

    def __repr__(self) -> str:
        return f"CompositeTelemetry{self._parts!r}"

    def operation(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[None]:
        """A context manager that enters each part's :meth:`~Telemetry.operation`."""
        if not self._parts:
            return _NULL
        if len(self._parts) == 1:
            return self._parts[0].operation(name, **attributes)
        return self._all(name, attributes)

    @contextmanager
    def _all(self, name: str, attributes: dict[str, AttributeValue]) -> Iterator[None]:
        with ExitStack() as stack:
            for part in self._parts:
                stack.enter_context(part.operation(name, **attributes))
            yield
