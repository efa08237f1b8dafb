"""The metric series of DESIGN.md section 6 that only rare paths count: fires skipped on overlap
or because their action is paused, and messages retried or dead-lettered. Each runs the app on
the fake clock (``TestScheduler``) with Prometheus metrics in a registry of its own, and checks
exact counts against what the scheduler did."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from jararaca import (
    Message,
    MessageContext,
    MessageHandler,
    Microservice,
    ScheduledAction,
    ScheduledRun,
)
from jararaca.control import Control
from jararaca.messagebus.publisher import message_envelope
from jararaca.observability.prometheus import PrometheusMetrics
from jararaca.testing import TestScheduler
from jararaca.wire import Envelope

T0 = datetime(2031, 3, 4, 10, 0, 30, tzinfo=UTC)  # half a minute past a slot
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def counted(t: TestScheduler) -> PrometheusMetrics:
    """Count what ``t`` does into a registry of its own (beat and worker share the scheduler's
    one telemetry, which reads its metrics on each event)."""
    metrics = PrometheusMetrics(CollectorRegistry())
    t.scheduler.telemetry.metrics = metrics
    return metrics


def sample(metrics: PrometheusMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def series(metrics: PrometheusMetrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of counter ``name`` (its ``_total`` samples) by label set."""
    return {
        frozenset(s.labels.items()): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


# -- fires skipped: overlap -------------------------------------------------------------------


class Blocking:
    release = asyncio.Event()
    started: list[tuple[str, int]] = []

    @classmethod
    def reset(cls) -> None:
        cls.release = asyncio.Event()
        cls.started = []

    @staticmethod
    async def body(action: str, run: ScheduledRun) -> None:
        Blocking.started.append((action, run.scheduled_at.minute))
        await Blocking.release.wait()


class Overlapping:
    @ScheduledAction("* * * * *", name="skip", overlap="skip")
    async def skip(self, run: ScheduledRun) -> None:
        await Blocking.body("skip", run)

    @ScheduledAction("* * * * *", name="buffer_one", overlap="buffer_one")
    async def buffer_one(self, run: ScheduledRun) -> None:
        await Blocking.body("buffer_one", run)


OVERLAPPING = Microservice(controllers=[Overlapping])


@pytest.fixture
def blocking() -> Iterator[None]:
    Blocking.reset()
    yield
    Blocking.reset()


def started(action: str) -> list[int]:
    return [minute for name, minute in Blocking.started if name == action]


async def outcomes(t: TestScheduler, action: str) -> dict[int, str]:
    records = await t.scheduler.backend.run_history(action, limit=100)
    return {r.scheduled_at.minute: r.outcome for r in records}


@pytest.mark.usefixtures("blocking")
async def test_fires_skipped_on_overlap_are_counted_as_fires_not_runs() -> None:
    async with TestScheduler(OVERLAPPING, start=T0, actions=["skip"]) as t:
        metrics = counted(t)
        await t.advance(3 * MINUTE)  # 10:01 runs and blocks; 10:02 and 10:03 find it alive
        assert started("skip") == [1]
        assert sample(metrics, "jararaca_fires_total", action="skip", outcome="dispatched") == 3
        skipped = sample(metrics, "jararaca_fires_total", action="skip", outcome="skipped_overlap")
        assert skipped == 2
        assert sample(metrics, "jararaca_runs_total", action="skip", outcome="succeeded") is None
        Blocking.release.set()
        await t.advance(MINUTE)  # 10:01 ends; 10:04 runs (released: it ends at once)
        assert started("skip") == [1, 4]
        assert await outcomes(t, "skip") == {
            1: "succeeded",
            2: "skipped_overlap",
            3: "skipped_overlap",
            4: "succeeded",
        }
    assert t.scheduler.worker.stats.skipped_overlap == 2
    fires = series(metrics, "jararaca_fires_total")
    assert fires == {
        frozenset({("action", "skip"), ("outcome", "dispatched")}): 4,
        frozenset({("action", "skip"), ("outcome", "skipped_overlap")}): 2,
    }
    # A skipped fire is no run: the runs counted are the two that ran, each observed once.
    runs = series(metrics, "jararaca_runs_total")
    assert runs == {frozenset({("action", "skip"), ("outcome", "succeeded")}): 2}
    assert sample(metrics, "jararaca_fire_lateness_seconds_count", action="skip") == 2
    assert sample(metrics, "jararaca_run_duration_seconds_count", action="skip") == 2


@pytest.mark.usefixtures("blocking")
async def test_a_buffered_fire_asking_again_is_not_counted_as_skipped() -> None:
    async with TestScheduler(OVERLAPPING, start=T0, actions=["buffer_one"]) as t:
        metrics = counted(t)
        # 10:01 runs; 10:02 waits (asking again every second); 10:03 and 10:04 are skipped.
        await t.advance(4 * MINUTE)  # to 10:04:30
        assert started("buffer_one") == [1]
        assert await outcomes(t, "buffer_one") == {
            1: "running",
            3: "skipped_overlap",
            4: "skipped_overlap",
        }
        skipped = ("jararaca_fires_total", {"action": "buffer_one", "outcome": "skipped_overlap"})
        assert sample(metrics, skipped[0], **skipped[1]) == 2
        Blocking.release.set()
        for _ in range(3):  # the waiting fire asks again a second later
            await t.advance(timedelta(seconds=1))
        assert started("buffer_one") == [1, 2]
        assert sample(metrics, skipped[0], **skipped[1]) == 2
        succeeded = {"action": "buffer_one", "outcome": "succeeded"}
        assert sample(metrics, "jararaca_runs_total", **succeeded) == 2
        dispatched = {"action": "buffer_one", "outcome": "dispatched"}
        assert sample(metrics, "jararaca_fires_total", **dispatched) == 4
    assert t.scheduler.worker.stats.skipped_overlap == 2


# -- fires skipped: paused --------------------------------------------------------------------


ran: list[str] = []


class Hourly:
    @ScheduledAction("0 * * * *", name="hourly")
    async def hourly(self, run: ScheduledRun) -> None:
        ran.append(run.fire_id)


HOURLY = Microservice(controllers=[Hourly])


async def test_fires_of_a_paused_action_are_counted_skipped_paused() -> None:
    ran.clear()
    store = f"series-{uuid.uuid4().hex}"
    async with (
        TestScheduler(HOURLY, start=T0, store=store) as t,
        Control(HOURLY, backend_url=f"memory://{store}", clock=t.clock) as control,
    ):
        metrics = counted(t)
        await control.pause("hourly", reason="maintenance")
        await t.advance(2 * HOUR)  # 11:00 and 12:00 are skipped
        assert ran == []
        paused = {"action": "hourly", "outcome": "skipped_paused"}
        assert sample(metrics, "jararaca_fires_total", **paused) == 2
        dispatched = {"action": "hourly", "outcome": "dispatched"}
        assert sample(metrics, "jararaca_fires_total", **dispatched) is None
        assert await control.resume("hourly") is True
        await t.advance(HOUR)  # 13:00 runs; the paused slots are not replayed
        history = await control.runs(action="hourly")
    assert len(ran) == 1
    assert [(r.scheduled_at.hour, r.outcome) for r in history] == [
        (13, "succeeded"),
        (12, "skipped_paused"),
        (11, "skipped_paused"),
    ]
    assert t.scheduler.beat_worker.beat.stats.fires_paused == 2
    assert series(metrics, "jararaca_fires_total") == {
        frozenset({("action", "hourly"), ("outcome", "skipped_paused")}): 2,
        frozenset({("action", "hourly"), ("outcome", "dispatched")}): 1,
    }
    assert series(metrics, "jararaca_runs_total") == {
        frozenset({("action", "hourly"), ("outcome", "succeeded")}): 1
    }


# -- messages retried and dead-lettered --------------------------------------------------------


class Job(Message):
    MESSAGE_TOPIC = "series.job"

    n: int


class Flaky(Message):
    MESSAGE_TOPIC = "series.flaky"

    n: int


attempts: dict[str, list[int]] = {"job": [], "flaky": []}


class Handlers:
    @MessageHandler(Job, retries=2, retry_delay=1.0)
    async def always_fails(self, job: Job, context: MessageContext) -> None:
        attempts["job"].append(context.attempt)
        raise RuntimeError("downstream is down")

    @MessageHandler(Flaky, retries=3, retry_delay=1.0)
    async def fails_once(self, flaky: Flaky, context: MessageContext) -> None:
        attempts["flaky"].append(context.attempt)
        if context.attempt == 1:
            raise RuntimeError("first try fails")


HANDLERS = Microservice(controllers=[Handlers])
ALWAYS_FAILS = f"{__name__}.Handlers.always_fails"
FAILS_ONCE = f"{__name__}.Handlers.fails_once"


def message_series(metrics: PrometheusMetrics) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["handler"], dict(labels)["outcome"]): v
        for labels, v in series(metrics, "jararaca_messages_total").items()
    }


async def test_retries_and_exhausted_retries_are_counted_per_handler() -> None:
    attempts["job"].clear()
    attempts["flaky"].clear()
    async with TestScheduler(HANDLERS, start=T0) as t:
        metrics = counted(t)
        await Job(n=1).publish()
        await Flaky(n=1).publish()
        # Retries wait at most 1 s, then 2 s, then 4 s (backoff, jitter below it).
        await t.advance(timedelta(seconds=10))
        letters = await t.scheduler.broker.dead_letters(limit=10)
    assert attempts == {"job": [1, 2, 3], "flaky": [1, 2]}
    assert [letter.reason for letter in letters] == [
        f"handler {ALWAYS_FAILS} failed after 3 attempt(s): RuntimeError('downstream is down')"
    ]
    assert message_series(metrics) == {
        (ALWAYS_FAILS, "failed"): 3,
        (ALWAYS_FAILS, "retried"): 2,
        (ALWAYS_FAILS, "dead_lettered"): 1,
        (FAILS_ONCE, "failed"): 1,
        (FAILS_ONCE, "retried"): 1,
        (FAILS_ONCE, "handled"): 1,
    }
    stats = t.scheduler.worker.stats
    assert (stats.retried, stats.dead_lettered) == (3, 1)


async def test_undeliverable_messages_are_counted_dead_lettered_by_handler() -> None:
    """A body its handler cannot read is counted under that handler; a topic no handler takes,
    under "(none)": never a message id or a topic as a label."""
    attempts["job"].clear()
    async with TestScheduler(HANDLERS, start=T0) as t:
        metrics = counted(t)
        good = message_envelope(Job(n=1), now=t.clock.now())
        unreadable = Envelope("bad-body", good.routing_key, b'{"n": "not a number"}', good.headers)
        unknown = Envelope("no-taker", "series.nobody", good.body, {})
        await t.scheduler.broker.publish([unreadable, unknown])
        await t.advance(timedelta(seconds=1))
        letters = await t.scheduler.broker.dead_letters(limit=10)
    assert attempts["job"] == []  # the handler never ran
    assert sorted(letter.envelope.message_id for letter in letters) == ["bad-body", "no-taker"]
    assert message_series(metrics) == {
        (ALWAYS_FAILS, "dead_lettered"): 1,
        ("(none)", "dead_lettered"): 1,
    }
