"""A message delayed inside a traced request is handled, in another process and after the delayed
queue, inside the same trace: delay -> dispatch (beat) -> handle (worker) -> the handler's own
spans. Beat and worker run the OpenTelemetry SDK through the app (tests.fixtures.traced_app);
jararaca uses the API only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jararaca import connect
from tests.fixtures.traced_app import Traced, span_dict
from tests.integration.cluster import Cluster, live_cluster

APP = "tests.fixtures.traced_app:app"
Span = dict[str, Any]


@pytest.fixture(scope="module")
def exported() -> InMemorySpanExporter:
    """This process's spans (the global provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def traced(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with live_cluster("tracing", APP) as cluster:
        yield cluster


def spans_in(folder: Path) -> list[Span]:
    return [json.loads(line) for f in folder.glob("*.jsonl") for line in f.read_text().splitlines()]


def one(spans: list[Span], **match: Any) -> Span | None:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) <= 1, f"more than one span {match}: {found}"
    return found[0] if found else None


def test_a_delayed_message_is_handled_in_the_trace_it_was_delayed_in(
    traced: Cluster, exported: InMemorySpanExporter, tmp_path: Path
) -> None:
    env = {"TRACES_DIR": str(tmp_path)}
    traced.start("beat", env=env)
    traced.start("worker", env=env)

    async def delay_inside_a_request() -> str:
        async with connect(broker_url=traced.broker_url, backend_url=traced.backend_url):
            with trace.get_tracer("test").start_as_current_span("http.request"):
                return await Traced(text="later").delay(1)

    message_id = asyncio.run(delay_inside_a_request())
    mine = [span_dict(s) for s in exported.get_finished_spans()]
    request = one(mine, name="http.request")
    delay = one(mine, name="jararaca.delay")
    assert request is not None and delay is not None
    assert delay["trace_id"] == request["trace_id"]
    assert delay["parent_id"] == request["span_id"]
    assert delay["attributes"]["messaging.message.id"] == message_id

    def handled() -> Span | None:
        return one(spans_in(tmp_path), name="jararaca.handle", trace_id=request["trace_id"])

    traced.wait_until(lambda: handled() is not None, 60, "the handle span in the request's trace")
    spans = spans_in(tmp_path)
    handle = handled()
    dispatch = one(spans, name="jararaca.dispatch", trace_id=request["trace_id"])
    work = one(spans, name="user.work", trace_id=request["trace_id"])
    assert handle is not None and dispatch is not None and work is not None
    assert dispatch["parent_id"] == delay["span_id"]
    assert handle["parent_id"] == dispatch["span_id"]
    assert work["parent_id"] == handle["span_id"]
    assert handle["attributes"]["messaging.message.id"] == message_id
    assert handle["attributes"]["jararaca.outcome"] == "handled"

    # A fire starts a trace of its own, which its run continues.
    def a_run() -> Span | None:
        runs = [s for s in spans_in(tmp_path) if s["name"] == "jararaca.run"]
        return runs[0] if runs else None

    traced.wait_until(lambda: a_run() is not None, 30, "a run span")
    run = a_run()
    assert run is not None
    fire = one(spans_in(tmp_path), name="jararaca.dispatch", trace_id=run["trace_id"])
    assert fire is not None and fire["parent_id"] is None
    assert run["parent_id"] == fire["span_id"]
    assert run["attributes"]["jararaca.action"] == "tick"
    assert run["attributes"]["jararaca.outcome"] == "succeeded"
