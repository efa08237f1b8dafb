"""``Control`` over the memory backend, sharing its store with a ``TestScheduler``: what an
operator does (trigger, backfill, pause, resume, cancel) changes what the scheduler runs, and
what the scheduler ran shows in ``runs()``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jararaca import (
    Message,
    MessageContext,
    MessageHandler,
    Microservice,
    ScheduledAction,
    ScheduledRun,
)
from jararaca.clock import epoch_ms
from jararaca.control import MAX_BACKFILL, Control, RunInfo, schedules_from_app
from jararaca.errors import ConfigError, CronError
from jararaca.testing import FakeClock, TestScheduler

T0 = datetime(2031, 3, 4, 10, 0, 30, tzinfo=UTC)  # half a minute past a slot
HOUR = timedelta(hours=1)

ran: list[ScheduledRun] = []
handled: list[str] = []


class Jobs:
    @ScheduledAction("0 * * * *", name="hourly", group="reports")
    async def hourly(self, run: ScheduledRun) -> None:
        ran.append(run)

    @ScheduledAction("0 0 1 1 *", name="yearly", tz="Europe/Lisbon")
    async def yearly(self, run: ScheduledRun) -> None:
        ran.append(run)

    @ScheduledAction("*/10 * * * *", name="fails")
    async def fails(self) -> None:
        raise RuntimeError("boom\nsecond line")

    @ScheduledAction("0 0 * * *", name="hangs", timeout=0.01)
    async def hangs(self) -> None:
        await asyncio.Event().wait()

    @ScheduledAction("0 0 * * *")  # no name=: known by its method name
    async def vacuum(self) -> None:
        return None


class Reminder(Message):
    MESSAGE_TOPIC = "control.reminder"
    MESSAGE_TYPE = "task"

    text: str


class Reminders:
    @MessageHandler(Reminder)
    async def remind(self, message: Reminder, context: MessageContext) -> None:
        handled.append(message.text)


app = Microservice(controllers=[Jobs, Reminders])


@pytest.fixture
def store() -> str:
    ran.clear()
    handled.clear()
    return f"control-{uuid.uuid4().hex}"


def harness(store: str, *actions: str, start: datetime = T0) -> TestScheduler:
    return TestScheduler(app, start=start, store=store, actions=list(actions) or None)


def control(store: str, clock: Any = None, **kwargs: Any) -> Control:
    return Control(app, backend_url=f"memory://{store}", clock=clock, **kwargs)


@pytest.fixture
async def scheduler(store: str) -> AsyncIterator[TestScheduler]:
    async with harness(store, "hourly", "yearly", "fails") as t:
        yield t


async def test_schedules_list_every_action_with_its_next_fires(store: str) -> None:
    async with control(store, FakeClock(T0)) as c:
        found = {s.id: s for s in await c.schedules()}
    assert set(found) == {"hourly", "yearly", "fails", "hangs", f"{__name__}.Jobs.vacuum"}
    hourly = found["hourly"]
    assert (hourly.name, hourly.group, hourly.cron, hourly.tz) == (
        "hourly",
        "reports",
        "0 * * * *",
        "UTC",
    )
    assert hourly.next_fires == [datetime(2031, 3, 4, 11 + h, tzinfo=UTC) for h in range(5)]
    assert hourly.paused is False and hourly.last_run is None and hourly.running == 0
    # Lisbon is on UTC in winter: midnight there is midnight UTC on 1 January.
    assert found["yearly"].next_fires[0] == datetime(2032, 1, 1, tzinfo=UTC)
    assert found[f"{__name__}.Jobs.vacuum"].name == "vacuum"
    # The app alone gives the same declarations, with nothing known about pauses.
    local = {s.id: s for s in schedules_from_app(app, T0)}
    assert local["hourly"].next_fires == hourly.next_fires and local["hourly"].paused is None


async def test_an_unknown_action_lists_the_known_names(store: str) -> None:
    async with control(store) as c:
        with pytest.raises(ConfigError) as caught:
            await c.pause("nope")
    message = str(caught.value)
    assert "'nope'" in message
    for name in ("hourly", "yearly", "fails", "hangs", "vacuum"):
        assert name in message


async def test_an_action_is_found_by_id_name_or_method_name(store: str) -> None:
    async with control(store) as c:
        assert c.action(f"{__name__}.Jobs.vacuum") is c.action("vacuum")
        assert c.action("hourly").action_id == "hourly"


async def test_trigger_runs_the_action_once_now(scheduler: TestScheduler, store: str) -> None:
    async with control(store, scheduler.clock) as c:
        identity = await c.trigger("yearly")
        assert identity == f"yearly@manual-{epoch_ms(T0)}"
        await scheduler.advance(timedelta(seconds=1))
        await scheduler.advance(timedelta(seconds=1))  # nothing more: it ran once
        [run] = await c.runs(action="yearly")
    assert [(r.action_id, r.fire_id) for r in ran] == [("yearly", identity)]
    assert ran[0].scheduled_at == T0
    assert (run.fire_id, run.outcome, run.scheduled_at) == (identity, "succeeded", T0)
    assert run.lateness_seconds is not None and 0 <= run.lateness_seconds <= 1


async def test_backfill_runs_each_slot_once_and_again_queues_nothing(
    scheduler: TestScheduler, store: str
) -> None:
    start, end = datetime(2031, 3, 3, 6, tzinfo=UTC), datetime(2031, 3, 3, 9, tzinfo=UTC)
    async with control(store, scheduler.clock) as c:
        queued = await c.backfill("hourly", start, end)
        slots = [start + h * HOUR for h in range(3)]  # 06:00, 07:00, 08:00: end is excluded
        assert queued == [f"hourly@{epoch_ms(at)}" for at in slots]
        await scheduler.advance(timedelta(seconds=5))
        assert sorted(r.scheduled_at for r in ran) == slots
        assert await c.backfill("hourly", start, end) == []
        # Overlapping windows share slots: only the new ones are queued.
        assert await c.backfill("hourly", start - HOUR, start + HOUR) == [
            f"hourly@{epoch_ms(start - HOUR)}"
        ]
        await scheduler.advance(timedelta(seconds=5))
    assert sorted(r.scheduled_at for r in ran) == [start - HOUR, *slots]
    assert len({r.fire_id for r in ran}) == 4


class Blocked:
    gate = asyncio.Event()

    @ScheduledAction("0 * * * *", name="blocked")
    async def blocked(self) -> None:
        await Blocked.gate.wait()


async def test_a_backfill_repeated_while_its_slots_wait_queues_nothing(store: str) -> None:
    Blocked.gate = asyncio.Event()
    blocked = Microservice(controllers=[Blocked])
    start, end = T0 - 5 * HOUR, T0 - 2 * HOUR
    async with (
        TestScheduler(blocked, start=T0, store=store) as t,
        Control(blocked, backend_url=f"memory://{store}", clock=t.clock) as c,
    ):
        assert len(await c.backfill("blocked", start, end)) == 3
        await t.advance(timedelta(seconds=2))  # the first runs, the two others wait for it
        again = await c.backfill("blocked", start, end)
        Blocked.gate.set()
        await t.advance(timedelta(seconds=10))
    assert again == []


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        (T0 - HOUR, T0 - 2 * HOUR, "is not after start"),
        (T0 - HOUR, T0 - HOUR, "is not after start"),
        (datetime(2031, 3, 1), T0 - HOUR, "has no time zone"),
        (T0 - HOUR, T0 + HOUR, "in the future"),
        (T0 - timedelta(days=500), T0 - HOUR, f"more than {MAX_BACKFILL:,} slots"),
    ],
)
async def test_bad_backfill_windows_are_refused_naming_the_values(
    store: str, start: datetime, end: datetime, fragment: str
) -> None:
    async with control(store, FakeClock(T0)) as c:
        with pytest.raises(ConfigError, match=fragment) as caught:
            await c.backfill("hourly", start, end)
        assert await c.delayed() == []  # nothing queued
    assert end.isoformat() in str(caught.value) or start.isoformat() in str(caught.value)


async def test_pause_skips_the_next_slot_and_resume_brings_fires_back(
    scheduler: TestScheduler, store: str
) -> None:
    async with control(store, scheduler.clock) as c:
        await c.pause("hourly", reason="maintenance")
        info = await c.describe("hourly")
        assert (info.paused, info.paused_reason) == (True, "maintenance")
        await scheduler.advance(HOUR)  # 11:00 is skipped
        assert ran == []
        assert await c.resume("hourly") is True
        assert await c.resume("hourly") is False
        await scheduler.advance(HOUR)  # 12:00 runs; 11:00 is not replayed
        assert [r.scheduled_at.hour for r in ran] == [12]
        history = await c.runs(action="hourly")
        info = await c.describe("hourly", next=2)
    assert [(r.scheduled_at.hour, r.outcome) for r in history] == [
        (12, "succeeded"),
        (11, "skipped_paused"),
    ]
    assert info.paused is False and info.last_run == history[0] and len(info.next_fires) == 2
    assert info.runs == history


async def test_a_paused_action_still_runs_when_triggered(
    scheduler: TestScheduler, store: str
) -> None:
    async with control(store, scheduler.clock) as c:
        await c.pause("hourly")
        identity = await c.trigger("hourly")
        await scheduler.advance(timedelta(seconds=1))
    assert [r.fire_id for r in ran] == [identity]


async def test_runs_show_succeeded_failed_with_error_and_timed_out(store: str) -> None:
    async with harness(store, "hourly", "fails", "hangs") as t, control(store, t.clock) as c:
        await t.advance(timedelta(minutes=10))  # fails at 10:10
        await t.advance_to(datetime(2031, 3, 5, 0, 0, 1, tzinfo=UTC))  # hangs at midnight
        # Timeouts run on the event loop's real clock: wait for that run to time out.
        await t.scheduler.worker.idle()
        everything = await c.runs(limit=1000)
        failed = await c.runs(outcome="failed", limit=3)
        timed_out = await c.runs(outcome="timed_out")
        newest = await c.runs(limit=2)
        with pytest.raises(ConfigError, match="unknown outcome 'nope'"):
            await c.runs(outcome="nope")
    outcomes = {r.outcome for r in everything}
    assert outcomes == {"succeeded", "failed", "timed_out"}
    assert [r.scheduled_at for r in failed] == [
        datetime(2031, 3, 5, 0, 0, tzinfo=UTC) - timedelta(minutes=10 * n) for n in range(3)
    ]
    assert all(r.action_id == "fails" for r in failed)
    assert failed[0].error == "RuntimeError: boom second line"  # one line
    [hung] = timed_out
    assert hung.action_id == "hangs" and hung.duration_seconds is not None
    assert [r.scheduled_at for r in newest] == sorted(
        (r.scheduled_at for r in everything), reverse=True
    )[:2]
    assert all(isinstance(r, RunInfo) for r in everything)


async def test_cancel_delayed_removes_a_pending_message_that_then_never_runs(
    scheduler: TestScheduler, store: str
) -> None:
    publisher = scheduler.publisher
    keyed = await publisher.delay(Reminder(text="keyed"), 60, idempotency_key="k1")
    plain = await publisher.delay(Reminder(text="plain"), 120)
    kept = await publisher.delay(Reminder(text="kept"), 180)
    async with control(store, scheduler.clock) as c:
        pending = await c.delayed()
        assert [(d.message_id, d.idempotency_key, d.topic) for d in pending] == [
            (keyed, "k1", "control.reminder"),
            (plain, None, "control.reminder"),
            (kept, None, "control.reminder"),
        ]
        assert pending[0].due_at == T0 + timedelta(seconds=60)
        assert await c.delayed(topic="other.topic") == []
        assert len(await c.delayed(limit=2)) == 2
        assert await c.cancel_delayed(idempotency_key="k1") is True
        assert await c.cancel_delayed(idempotency_key="k1") is False
        assert await c.cancel_delayed(message_id=plain) is True
        with pytest.raises(ConfigError, match="exactly one"):
            await c.cancel_delayed()
        with pytest.raises(ConfigError, match="exactly one"):
            await c.cancel_delayed(idempotency_key="k", message_id="m")
        await scheduler.advance(timedelta(minutes=5))
        assert await c.delayed() == []
    assert handled == ["kept"]


async def test_dead_letters_need_a_broker(store: str) -> None:
    async with control(store) as c:
        for call in (c.dead_letters(), c.replay_dead_letters(), c.purge_dead_letters()):
            with pytest.raises(ConfigError, match="broker_url"):
                await call


async def test_processes_are_alive_until_silent_for_three_leases(store: str) -> None:
    from jararaca.backends.memory import MemoryBackend
    from jararaca.backends.records import ProcessRecord

    backend = MemoryBackend(store)
    for pid, seen in ((1, T0 - timedelta(seconds=89)), (2, T0 - timedelta(seconds=91))):
        record = ProcessRecord(f"w{pid}", "worker", "host", pid, "1.0", T0 - HOUR, seen, ("a",))
        await backend.heartbeat(record, keep=timedelta(days=1))
    async with control(store, FakeClock(T0)) as c:
        found = {p.id: p for p in await c.processes()}
    assert found["w1"].alive is True  # 30 s leases: gone after 90 s
    assert found["w2"].alive is False
    assert found["w1"].names == ["a"] and found["w1"].kind == "worker"


async def test_a_heartbeat_lists_the_first_hundred_names_and_counts_the_rest(store: str) -> None:
    from jararaca.backends.memory import MemoryBackend
    from jararaca.control.text import processes
    from jararaca.observability.heartbeats import HEARTBEAT_NAMES, Heartbeat

    backend = MemoryBackend(store)
    names = [f"jobs.Nightly.action_{i:03d}" for i in range(HEARTBEAT_NAMES + 150)]
    beat = Heartbeat(backend, FakeClock(T0), process_id="b1", kind="beat", names=names, period=HOUR)
    await backend.heartbeat(beat.record, keep=timedelta(days=1))
    async with control(store, FakeClock(T0)) as c:
        [found] = await c.processes()
    assert found.names == names[:HEARTBEAT_NAMES]
    assert found.more_names == 150
    assert processes([found], T0).rstrip().endswith("action_099 and 150 more")


async def test_a_dynamic_schedule_fires_its_message_is_listed_and_steered(store: str) -> None:
    async with harness(store, "yearly") as t, control(store, t.clock) as c:
        info = await c.create_schedule(
            "nightly-reminder", "0 3 * * *", Reminder(text="night"), tz="Europe/Lisbon"
        )
        assert (info.id, info.group, info.topic, info.tz) == (
            "nightly-reminder",
            "dynamic",
            "control.reminder",
            "Europe/Lisbon",
        )
        listed = {s.id for s in await c.schedules()}
        assert {"nightly-reminder", "yearly"} <= listed
        await t.advance(timedelta(days=2))
        assert handled == ["night", "night"]
        runs = await c.runs(action="nightly-reminder")
        assert [r.outcome for r in runs] == ["succeeded", "succeeded"]
        await c.pause("nightly-reminder")
        await t.advance(timedelta(days=1))
        assert handled == ["night", "night"]
        assert (await c.runs(action="nightly-reminder"))[0].outcome == "skipped_paused"
        await c.resume("nightly-reminder")
        fire = await c.trigger("nightly-reminder")
        assert fire.startswith("nightly-reminder@manual-")
        await t.advance(timedelta(seconds=1))
        assert handled == ["night", "night", "night"]
        assert await c.delete_schedule("nightly-reminder") is True
        assert await c.delete_schedule("nightly-reminder") is False
        await t.advance(timedelta(days=2))
        assert handled == ["night", "night", "night"]


async def test_a_bad_dynamic_schedule_is_refused_before_anything_is_stored(store: str) -> None:
    async with control(store) as c:
        with pytest.raises(CronError, match="61"):
            await c.create_schedule("x", "61 * * * *", Reminder(text="r"))
        with pytest.raises(CronError, match="Mars/Olympus"):
            await c.create_schedule("x", "* * * * *", Reminder(text="r"), tz="Mars/Olympus")
        with pytest.raises(ConfigError, match="is the id of a decorated action"):
            await c.create_schedule("hourly", "* * * * *", Reminder(text="r"))
        with pytest.raises(ConfigError, match="catch_up"):
            await c.create_schedule("x", "* * * * *", Reminder(text="r"), catch_up="some")
        with pytest.raises(ConfigError, match="expected a jararaca Message"):
            await c.create_schedule("x", "* * * * *", "not a message")  # type: ignore[arg-type]
        assert [s.id for s in await c.schedules() if s.group == "dynamic"] == []
