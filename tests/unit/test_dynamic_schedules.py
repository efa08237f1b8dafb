"""Dynamic schedules: stored in the backend, fired by the beat like decorated actions (fire
identity, pause, run history), followed when created or deleted while the beat runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jararaca import Message, MessageContext, MessageHandler, Microservice
from jararaca.backends.records import ScheduleRecord
from jararaca.clock import epoch_ms
from jararaca.testing import TestScheduler

T0 = datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)


class Tick(Message):
    MESSAGE_TOPIC = "ticks.dynamic"

    n: int


seen: list[tuple[int, str]] = []


class Ticks:
    @MessageHandler(Tick)
    async def on_tick(self, message: Tick, context: MessageContext) -> None:
        seen.append((message.n, context.message_id))


app = Microservice(controllers=[Ticks])


def every_second(schedule_id: str = "ticker") -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id, "* * * * * *", "UTC", Tick.topic(), Tick(n=7).model_dump_json()
    )


async def test_a_schedule_created_while_the_beat_runs_fires_each_second_with_its_fire_ids() -> None:
    seen.clear()
    async with TestScheduler(app, start=T0) as t:
        await t.scheduler.backend.put_schedule(every_second())
        await t.advance(timedelta(seconds=1))  # the beat notices the new schedule
        first = len(seen)
        await t.advance(timedelta(seconds=3))
    fired = seen[first:]
    assert [n for n, _ in fired] == [7, 7, 7]
    ids = [fire for _, fire in fired]
    assert ids == [f"ticker@{epoch_ms(T0 + timedelta(seconds=s))}" for s in (2, 3, 4)]


async def test_deleting_a_schedule_stops_it_and_pausing_records_skipped_slots() -> None:
    seen.clear()
    async with TestScheduler(app, start=T0) as t:
        backend = t.scheduler.backend
        await backend.put_schedule(every_second())
        await t.advance(timedelta(seconds=2))
        await backend.pause("ticker", "quiet")
        before = len(seen)
        await t.advance(timedelta(seconds=2))
        assert len(seen) == before
        history = await backend.run_history("ticker", limit=10)
        assert [r.outcome for r in history[:2]] == ["skipped_paused", "skipped_paused"]
        await backend.resume("ticker")
        await t.advance(timedelta(seconds=1))
        assert len(seen) == before + 1
        succeeded = [
            r for r in await backend.run_history("ticker", limit=10) if r.outcome == "succeeded"
        ]
        assert succeeded and succeeded[0].fire_id == seen[-1][1]
        assert await backend.delete_schedule("ticker") is True
        await t.advance(timedelta(seconds=1))  # noticed after this tick's dispatch
        stopped = len(seen)
        await t.advance(timedelta(seconds=5))
        assert len(seen) == stopped
