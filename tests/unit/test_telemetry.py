"""Unit tests for telemetry: no-op default, OpenTelemetry spans (in-memory exporter), Prometheus metrics."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterator
from typing import Any

import pytest

from agentmem_core.errors import BackendError, ConfigurationError
from agentmem_core.telemetry import (
    CompositeTelemetry,
    NoopTelemetry,
    OpenTelemetryTelemetry,
    PrometheusTelemetry,
    Telemetry,
)


class Boom(RuntimeError):
    pass


def block_import(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


# --- no-op ---------------------------------------------------------------------------------------------


def test_noop_is_a_telemetry_and_reraises_unchanged() -> None:
    t = NoopTelemetry()
    assert isinstance(t, Telemetry)
    with t.operation("recall", store="s", k=3):
        pass
    err = Boom("x")
    with pytest.raises(Boom) as info, t.operation("recall"):
        raise err
    assert info.value is err
    # One shared context: no allocation per operation.
    assert t.operation("a") is t.operation("b")


# --- OpenTelemetry -------------------------------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[OpenTelemetryTelemetry, Any]]:
    pytest.importorskip("opentelemetry.trace")
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    # A tracer from a local provider: the global provider stays untouched.
    yield OpenTelemetryTelemetry(provider.get_tracer("agentmem")), exporter
    provider.shutdown()


def test_otel_span_name_and_attributes(otel: tuple[OpenTelemetryTelemetry, Any]) -> None:
    from opentelemetry.trace import StatusCode

    t, exporter = otel
    assert isinstance(t, Telemetry)
    with t.operation("recall", store="notes", k=5, hybrid=True, alpha=0.5):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "agentmem.recall"
    assert dict(span.attributes) == {
        "agentmem.operation": "recall",
        "agentmem.store": "notes",
        "agentmem.k": 5,
        "agentmem.hybrid": True,
        "agentmem.alpha": 0.5,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert not span.events
    assert span.end_time >= span.start_time


def test_otel_records_error_and_reraises_unchanged(otel: tuple[OpenTelemetryTelemetry, Any]) -> None:
    from opentelemetry.trace import StatusCode

    t, exporter = otel
    err = BackendError("connection reset")
    with pytest.raises(BackendError) as info, t.operation("remember"):
        raise err
    assert info.value is err
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert "connection reset" in (span.status.description or "")
    assert span.attributes["error.type"] == "BackendError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("BackendError")


def test_otel_nested_operations_are_parent_and_child(otel: tuple[OpenTelemetryTelemetry, Any]) -> None:
    t, exporter = otel
    with t.operation("consolidate"), t.operation("recall"):
        pass
    inner, outer = exporter.get_finished_spans()
    assert (inner.name, outer.name) == ("agentmem.recall", "agentmem.consolidate")
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id


def test_otel_works_across_await(otel: tuple[OpenTelemetryTelemetry, Any]) -> None:
    t, exporter = otel

    async def op() -> int:
        with t.operation("arecall"):
            await asyncio.sleep(0)
            return 7

    assert asyncio.run(op()) == 7
    assert [s.name for s in exporter.get_finished_spans()] == ["agentmem.arecall"]


def test_otel_default_tracer_uses_global_api() -> None:
    pytest.importorskip("opentelemetry.trace")
    t = OpenTelemetryTelemetry()  # no provider configured: the API's no-op/proxy tracer
    with t.operation("recall"):
        pass


def test_otel_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    block_import(monkeypatch, "opentelemetry")
    with pytest.raises(ConfigurationError, match=r"agentmem\[otel\]"):
        OpenTelemetryTelemetry()


# --- Prometheus ----------------------------------------------------------------------------------------


@pytest.fixture
def registry() -> Any:
    prometheus_client = pytest.importorskip("prometheus_client")
    return prometheus_client.CollectorRegistry()


def test_prometheus_histogram_and_error_counter(registry: Any) -> None:
    t = PrometheusTelemetry(registry)
    assert isinstance(t, Telemetry)
    with t.operation("recall", store="ignored-as-label"):
        pass
    with t.operation("recall"):
        pass
    err = Boom("nope")
    with pytest.raises(Boom) as info, t.operation("remember"):
        raise err
    assert info.value is err

    def value(name: str, **labels: str) -> float | None:
        result: float | None = registry.get_sample_value(name, labels)
        return result

    assert value("agentmem_operation_seconds_count", operation="recall") == 2
    assert value("agentmem_operation_seconds_count", operation="remember") == 1  # failures are timed too
    total = value("agentmem_operation_seconds_sum", operation="recall")
    assert total is not None and total >= 0
    assert value("agentmem_operation_errors_total", operation="remember", error="Boom") == 1
    assert value("agentmem_operation_errors_total", operation="recall", error="Boom") is None
    names = {m.name for m in registry.collect()}
    assert names == {"agentmem_operation_seconds", "agentmem_operation_errors"}
    # Attributes never become labels (cardinality).
    for metric in registry.collect():
        for sample in metric.samples:
            assert "store" not in sample.labels


def test_prometheus_instances_share_metrics_per_registry(registry: Any) -> None:
    a = PrometheusTelemetry(registry)
    b = PrometheusTelemetry(registry)  # a second store must not crash on duplicate registration
    with a.operation("x"):
        pass
    with b.operation("x"):
        pass
    assert registry.get_sample_value("agentmem_operation_seconds_count", {"operation": "x"}) == 2
    with pytest.raises(ConfigurationError, match="other buckets"):
        PrometheusTelemetry(registry, buckets=[1.0])
    custom = PrometheusTelemetry(registry, namespace="mine", buckets=[0.1, 1.0])
    with custom.operation("y"):
        pass
    assert registry.get_sample_value("mine_operation_seconds_bucket", {"operation": "y", "le": "0.1"}) == 1


def test_prometheus_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    block_import(monkeypatch, "prometheus_client")
    with pytest.raises(ConfigurationError, match=r"agentmem\[otel\]"):
        PrometheusTelemetry()


# --- composite -----------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def operation(self, name: str, **attributes: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def cm() -> Iterator[None]:
            self.log.append(f"{self.name}:enter:{name}:{sorted(attributes.items())}")
            try:
                yield
            except Exception as exc:
                self.log.append(f"{self.name}:error:{type(exc).__name__}")
                raise
            finally:
                self.log.append(f"{self.name}:exit")

        return cm()


def test_composite_enters_in_order_exits_in_reverse_and_reraises() -> None:
    log: list[str] = []
    t = CompositeTelemetry(Recorder("a", log), NoopTelemetry(), CompositeTelemetry(Recorder("b", log)))
    assert isinstance(t, Telemetry)
    assert len(t.parts) == 2
    with t.operation("recall", k=1):
        log.append("body")
    assert log == ["a:enter:recall:[('k', 1)]", "b:enter:recall:[('k', 1)]", "body", "b:exit", "a:exit"]
    log.clear()
    err = Boom("x")
    with pytest.raises(Boom) as info, t.operation("forget"):
        raise err
    assert info.value is err
    assert log == [
        "a:enter:forget:[]",
        "b:enter:forget:[]",
        "b:error:Boom",
        "b:exit",
        "a:error:Boom",
        "a:exit",
    ]


def test_composite_empty_and_single() -> None:
    assert CompositeTelemetry().operation("x") is NoopTelemetry().operation("x")
    log: list[str] = []
    with CompositeTelemetry(Recorder("only", log)).operation("x"):
        pass
    assert log == ["only:enter:x:[]", "only:exit"]


def test_composite_of_otel_and_prometheus(otel: tuple[OpenTelemetryTelemetry, Any], registry: Any) -> None:
    tracer_part, exporter = otel
    t = CompositeTelemetry(tracer_part, PrometheusTelemetry(registry))
    with pytest.raises(Boom), t.operation("recall"):
        raise Boom("x")
    (span,) = exporter.get_finished_spans()
    assert span.name == "agentmem.recall"
    assert (
        registry.get_sample_value("agentmem_operation_errors_total", {"operation": "recall", "error": "Boom"})
        == 1
    )


def test_telemetry_module_sends_nothing_by_itself() -> None:
    # No phone-home: the module imports nothing that talks to the network.
    import subprocess
    import sys

    code = (
        "import sys, agentmem_core.telemetry as t\n"
        "t.NoopTelemetry().operation('x').__enter__()\n"
        "net = {'socket', 'http.client', 'urllib.request', 'httpx', 'requests'} & set(sys.modules)\n"
        "assert not (net - {'socket'}), net\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
