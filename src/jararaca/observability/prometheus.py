"""The metrics of DESIGN.md section 6 with prometheus-client (the ``metrics`` extra).

Each service gets a registry of its own (not the library's global one), so several services in
one process (tests, the embedded scheduler's beat and worker sharing one) never collide, and an
app's own metrics on the global registry stay apart. Gauges whose value lives elsewhere (runs in
user code, the delayed queue's length) are read when scraped, never polled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jararaca.backends.records import Outcome
from jararaca.observability.telemetry import FireOutcome, MessageOutcome, Metrics

# Lateness is the scheduler's own precision, in milliseconds when all is well; a long tail
# (seconds, minutes) means a beat or worker fell behind or was down.
LATENESS_BUCKETS = (
    0.001,
    0.002,
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
    60.0,
    300.0,
)
# Runs last from milliseconds to an hour: the same steps from 5 ms, on to an hour.
DURATION_BUCKETS = (*LATENESS_BUCKETS[2:], 900.0, 3600.0)


class PrometheusMetrics(Metrics):
    """Counts into ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._fires = Counter(
            "jararaca_fires_total",
            "Fires of each action by what became of them.",
            ["action", "outcome"],
            registry=r,
        )
        self._runs = Counter(
            "jararaca_runs_total",
            "Runs of each action by outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self._duration = Histogram(
            "jararaca_run_duration_seconds",
            "How long each run of an action took.",
            ["action"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._lateness = Histogram(
            "jararaca_fire_lateness_seconds",
            "Start of each run minus its scheduled instant.",
            ["action"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self._messages = Counter(
            "jararaca_messages_total",
            "Message deliveries to each handler by outcome.",
            ["handler", "outcome"],
            registry=r,
        )
        self._delayed_lateness = Histogram(
            "jararaca_delayed_lateness_seconds",
            "Publish of each delayed message minus its due instant.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self._running: Gauge | None = None

    def fires(self, action: str, outcome: FireOutcome, count: int = 1) -> None:
        self._fires.labels(action, outcome).inc(count)

    def run_ended(self, action: str, outcome: Outcome, duration: float, lateness: float) -> None:
        self._runs.labels(action, outcome).inc()
        self._duration.labels(action).observe(duration)
        self._lateness.labels(action).observe(lateness)

    def message(self, handler: str, outcome: MessageOutcome) -> None:
        self._messages.labels(handler, outcome).inc()

    def delayed_published(self, lateness: Iterable[float]) -> None:
        observe = self._delayed_lateness.observe
        for seconds in lateness:
            observe(seconds)

    def watch_running(self, count: Callable[[], int]) -> None:
        if self._running is None:
            self._running = Gauge(
                "jararaca_running", "Runs and handlers in user code now.", registry=self.registry
            )
        self._running.set_function(count)

    def watch_pending(self, read: Callable[[], int | None]) -> None:
        """``read()`` gives the delayed queue's length when scraped (None: unknown now)."""
        self.registry.register(_PendingCollector(read))


class _PendingCollector(Collector):
    def __init__(self, read: Callable[[], int | None]) -> None:
        self._read = read

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe, registering would call collect() (a backend round trip) at once.
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        value = self._read()
        if value is not None:  # unreachable backend: no sample rather than a false zero
            family.add_metric([], value)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "jararaca_delayed_pending", "Messages waiting in the delayed queue for their due time."
        )
