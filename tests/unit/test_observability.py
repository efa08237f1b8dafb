"""Log lines, metrics, probes and tracing in one process, on the memory engines."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from jararaca import Message, MessageHandler, Microservice, ScheduledAction, Scheduler
from jararaca.backends.records import Outcome
from jararaca.errors import ConfigError
from jararaca.loopback import is_loopback
from jararaca.microservice import ProviderSpec
from jararaca.observability.endpoint import MetricsConfig
from jararaca.observability.logs import JsonFormatter, TurnBufferedHandler, configure_logging
from jararaca.observability.probes import LoopBridge
from jararaca.observability.prometheus import PrometheusMetrics
from jararaca.observability.telemetry import Telemetry
from tests.integration.probes import Samples, get, scrape, value

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- logs -------------------------------------------------------------------------------------


def test_a_json_line_has_the_standard_keys_and_the_structured_fields() -> None:
    record = logging.LogRecord("jararaca.runs", logging.INFO, __file__, 1, "ran %s", ("x",), None)
    record.fields = {"fire_id": "tick:1", "outcome": "succeeded", "message": "not overwritten"}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO"
    assert line["logger"] == "jararaca.runs"
    assert line["message"] == "ran x"
    assert line["fire_id"] == "tick:1"
    assert line["outcome"] == "succeeded"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_a_json_line_carries_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), exc_info)
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


class _Writes:
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("jararaca.worker", logging.INFO, __file__, 1, message, (), None)


async def test_the_lines_of_one_loop_turn_go_out_in_one_write_at_its_end() -> None:
    stream = _Writes()
    handler = TurnBufferedHandler()
    handler.setStream(stream)  # type: ignore[arg-type]
    for n in range(3):
        handler.handle(_record(f"line {n}"))
    assert stream.writes == []  # still this turn
    await asyncio.sleep(0)
    assert stream.writes == ["line 0\nline 1\nline 2\n"]
    handler.handle(_record("next turn"))
    await asyncio.sleep(0)
    assert stream.writes[1:] == ["next turn\n"]


async def test_a_line_from_another_thread_goes_out_at_once_after_the_loops_lines() -> None:
    stream = _Writes()
    handler = TurnBufferedHandler()
    handler.setStream(stream)  # type: ignore[arg-type]
    handler.handle(_record("on the loop"))
    thread = threading.Thread(target=handler.handle, args=(_record("from a thread"),))
    thread.start()
    thread.join()
    assert stream.writes == ["on the loop\nfrom a thread\n"]
    await asyncio.sleep(0)  # the loop's scheduled flush finds nothing left
    assert len(stream.writes) == 1


def test_a_loop_stopped_before_its_flush_does_not_hold_back_the_next_loops_lines() -> None:
    stream = _Writes()
    handler = TurnBufferedHandler()
    handler.setStream(stream)  # type: ignore[arg-type]
    first = asyncio.new_event_loop()

    def log_and_stop() -> None:
        handler.handle(_record("last of the first loop"))
        first.stop()  # ends this turn before the flush it scheduled runs

    first.call_soon(log_and_stop)
    first.run_forever()
    first.close()
    assert stream.writes == []

    async def log_one() -> None:
        handler.handle(_record("on the second loop"))
        await asyncio.sleep(0)

    asyncio.run(log_one())
    assert stream.writes == ["last of the first loop\non the second loop\n"]


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    stream = _Writes()
    handler = TurnBufferedHandler()
    handler.setStream(stream)  # type: ignore[arg-type]
    handler.handle(_record("starting"))
    assert stream.writes == ["starting\n"]


def test_configuring_twice_replaces_our_handler_and_keeps_the_others() -> None:
    root = logging.getLogger()
    theirs = logging.NullHandler()
    root.addHandler(theirs)
    before = list(root.handlers)
    try:
        configure_logging("INFO", "json")
        configure_logging("DEBUG", "text")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        assert not isinstance(added[0].formatter, JsonFormatter)
        assert theirs in root.handlers
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.removeHandler(theirs)


def test_each_run_is_one_info_line_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry()
    with caplog.at_level(logging.INFO, logger="jararaca.runs"):
        telemetry.run_ended(
            fire_id="tick:1",
            action="tick",
            outcome="failed",
            scheduled_at=T0,
            started_at=T0 + timedelta(milliseconds=3),
            finished_at=T0 + timedelta(milliseconds=53),
            attempt=2,
        )
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert "tick:1" in record.getMessage() and "failed" in record.getMessage()
    fields = record.__dict__["fields"]
    assert fields["lateness_seconds"] == pytest.approx(0.003)
    assert fields["duration_seconds"] == pytest.approx(0.05)
    assert fields["attempt"] == 2


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_count_by_action_and_outcome() -> None:
    metrics = PrometheusMetrics(CollectorRegistry())
    telemetry = Telemetry(metrics)
    telemetry.fires("tick", "dispatched", 3)
    telemetry.fires("tick", "missed", 0)  # nothing to say: no series
    outcomes: list[Outcome] = ["succeeded", "succeeded", "timed_out"]
    for outcome in outcomes:
        telemetry.run_ended(
            fire_id="f",
            action="tick",
            outcome=outcome,
            scheduled_at=T0,
            started_at=T0 + timedelta(seconds=0.004),
            finished_at=T0 + timedelta(seconds=1),
            attempt=1,
        )
    telemetry.delayed_published(seconds for seconds in (0.001, 0.2))  # as the beat: lazily
    sample = metrics.registry.get_sample_value
    assert sample("jararaca_fires_total", {"action": "tick", "outcome": "dispatched"}) == 3
    assert sample("jararaca_fires_total", {"action": "tick", "outcome": "missed"}) is None
    assert sample("jararaca_runs_total", {"action": "tick", "outcome": "succeeded"}) == 2
    assert sample("jararaca_runs_total", {"action": "tick", "outcome": "timed_out"}) == 1
    assert sample("jararaca_fire_lateness_seconds_bucket", {"action": "tick", "le": "0.005"}) == 3
    assert sample("jararaca_run_duration_seconds_count", {"action": "tick"}) == 3
    assert sample("jararaca_delayed_lateness_seconds_count") == 2


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True)],
        *[("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("metrics.internal", False)],
    ],
)
def test_only_loopback_is_served_without_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        MetricsConfig(9100, host)
    else:
        with pytest.raises(ConfigError, match=f"{host!r} without a token"):
            MetricsConfig(9100, host)
        MetricsConfig(9100, host, token="s3cret")


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError, match=f"metrics port {port} is not a TCP port"):
        MetricsConfig(port)


async def test_the_watchdog_says_when_the_loop_is_stuck() -> None:
    bridge = LoopBridge(asyncio.get_running_loop())
    assert await asyncio.to_thread(bridge.turns, 5.0)
    answers: list[bool] = []
    gave_up = threading.Event()

    def probe() -> None:
        answers.append(bridge.turns(0.2))
        gave_up.set()

    threading.Thread(target=probe).start()
    gave_up.wait(10)  # blocks the loop, as a blocking call in user code would
    assert answers == [False]


class Ping(Message):
    MESSAGE_TOPIC = "observed.ping"

    n: int


class Jobs:
    def __init__(self) -> None:
        self.handled = asyncio.Event()

    @ScheduledAction("0 0 1 1 *")
    async def yearly(self) -> None:
        """Declared so the app has an action; never due during the test."""

    @MessageHandler(Ping)
    async def on_ping(self, ping: Ping) -> None:
        self.handled.set()


async def test_the_embedded_scheduler_serves_metrics_and_probes_with_a_token() -> None:
    jobs = Jobs()
    app = Microservice(controllers=[Jobs], providers=[ProviderSpec(provide=Jobs, use_value=jobs)])
    config = MetricsConfig(0, token="s3cret")
    scheduler = Scheduler(app, backend_url="memory://obs-unit", metrics=config)
    await scheduler.start()
    try:
        [record] = await scheduler.backend.processes()
        address = record.metrics_address
        assert address is not None and address.startswith("http://127.0.0.1:")
        status, _ = await asyncio.to_thread(get, address + "/metrics")
        assert status == 401
        status, _ = await asyncio.to_thread(get, address + "/healthz", "wrong")
        assert status == 401
        for path in ("/healthz", "/readyz"):
            status, body = await asyncio.to_thread(get, address + path, "s3cret")
            assert (status, body.strip()) == (200, "ok" if path == "/healthz" else "ready")
        await scheduler.worker.publisher.delay(Ping(n=1), 3600)
        await scheduler.worker.publisher.publish(Ping(n=2))
        await asyncio.wait_for(jobs.handled.wait(), 10)
        handler = "tests.unit.test_observability.Jobs.on_ping"

        async def scraped() -> Samples:
            return await asyncio.to_thread(scrape, address, "s3cret")

        samples = await scraped()
        assert value(samples, "jararaca_delayed_pending") == 1
        for _ in range(100):  # the count follows the handler's return
            if value(samples, "jararaca_messages_total", handler=handler, outcome="handled"):
                break
            await asyncio.sleep(0.05)
            samples = await scraped()
        assert value(samples, "jararaca_messages_total", handler=handler, outcome="handled") == 1
        assert value(samples, "jararaca_running") == 0
    finally:
        await scheduler.stop()


def test_without_opentelemetry_nothing_of_it_is_imported() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        import asyncio
        from jararaca import Message, MessageHandler, Microservice, Scheduler, use_publisher

        class Ping(Message):
            MESSAGE_TOPIC = "ping"
            n: int

        done = asyncio.Event()

        class Jobs:
            @MessageHandler(Ping)
            async def on_ping(self, ping: Ping) -> None:
                if ping.n < 2:
                    await use_publisher().delay(Ping(n=ping.n + 1), 0.01)
                else:
                    done.set()

        async def main() -> None:
            scheduler = Scheduler(Microservice(controllers=[Jobs]), interval=0.05)
            stop = asyncio.Event()
            serving = asyncio.create_task(scheduler.serve(stop))
            while not scheduler.started:
                await asyncio.sleep(0.01)
            await scheduler.worker.publisher.publish(Ping(n=0))
            await asyncio.wait_for(done.wait(), 10)
            stop.set()
            await serving

        asyncio.run(main())
        loaded = [m for m, module in sys.modules.items() if module and "opentelemetry" in m]
        print(sorted(loaded + [m for m in sys.modules if m.endswith("observability.otel")]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_an_sdk_the_trace_context_is_passed_on_without_spans() -> None:
    """opentelemetry-api installed, no SDK: a message carrying a trace is handled with that
    trace current, and what its handler delays carries it on (no span is made)."""
    code = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import trace
        from jararaca import Message, MessageHandler, Microservice, Scheduler, use_publisher
        from jararaca.messagebus.publisher import message_envelope
        from jararaca.clock import SystemClock

        TRACE = "0af7651916cd43dd8448eb211c80319c"

        class Ping(Message):
            MESSAGE_TOPIC = "ping"
            n: int

        seen = []
        done = asyncio.Event()

        class Jobs:
            @MessageHandler(Ping)
            async def on_ping(self, ping: Ping) -> None:
                seen.append(f"{trace.get_current_span().get_span_context().trace_id:032x}")
                if ping.n == 0:
                    await use_publisher().delay(Ping(n=1), 0.01)
                else:
                    done.set()

        async def main() -> None:
            scheduler = Scheduler(Microservice(controllers=[Jobs]), interval=0.05)
            stop = asyncio.Event()
            serving = asyncio.create_task(scheduler.serve(stop))
            while not scheduler.started:
                await asyncio.sleep(0.01)
            envelope = message_envelope(Ping(n=0), now=SystemClock().now())
            headers = {**envelope.headers, "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
            await scheduler.broker.publish([type(envelope)(
                envelope.message_id, envelope.routing_key, envelope.body, headers
            )])
            await asyncio.wait_for(done.wait(), 10)
            stop.set()
            await serving
            print(" ".join(seen), trace.get_tracer_provider().__class__.__name__)

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    assert result.stdout.split() == [trace_id, trace_id, "ProxyTracerProvider"]


def test_an_sdk_installed_after_start_is_seen_within_the_recheck_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether spans are recorded is asked of OpenTelemetry at most every RECHECK seconds
    while no SDK is installed, and never again once one is."""
    from opentelemetry import trace

    from jararaca.observability import otel

    asked: list[object] = []
    provider: object = trace.NoOpTracerProvider()

    def get_provider() -> object:
        asked.append(provider)
        return provider

    monkeypatch.setattr(trace, "get_tracer_provider", get_provider)
    now = [100.0]
    watch = otel._SdkWatch(clock=lambda: now[0])
    assert watch() is False
    provider = object()  # an SDK's provider: neither the proxy nor the no-op one
    now[0] += otel._SdkWatch.RECHECK / 2
    assert watch() is False  # not asked again yet
    now[0] += otel._SdkWatch.RECHECK / 2
    assert watch() is True
    now[0] += 10 * otel._SdkWatch.RECHECK
    assert watch() is True
    assert len(asked) == 2
