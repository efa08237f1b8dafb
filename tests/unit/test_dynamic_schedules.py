"""Dynamic schedules: stored in the backend, fired by the beat like decorated actions (fire
identity, pause, run history), followed when created or deleted while the beat runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from jararaca import Message, MessageContext, MessageHandler, Microservice
from jararaca.backends.records import ScheduleRecord
from jararaca.clock import epoch_ms
from jararaca.errors import BackendError
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


async def test_creating_a_schedule_leaves_the_planned_fires_of_the_others_alone() -> None:
    seen.clear()
    async with TestScheduler(app, start=T0) as t:
        backend = t.scheduler.backend
        body = Tick(n=1).model_dump_json()
        jittered = ScheduleRecord("a", "* * * * *", "UTC", Tick.topic(), body, "none", 50.0)
        await backend.put_schedule(jittered)
        await t.advance(timedelta(seconds=60.1))  # a's 12:01 slot is planned, jitter pending
        await backend.put_schedule(every_second("b"))
        await t.advance(timedelta(minutes=1))
    a_fires = {fire for _, fire in seen if fire.startswith("a@")}
    assert f"a@{epoch_ms(T0 + timedelta(minutes=1))}" in a_fires


async def test_a_failed_reload_is_read_again_at_the_next_look() -> None:
    seen.clear()
    async with TestScheduler(app, start=T0) as t:
        backend = t.scheduler.backend
        real = backend.get_last_fires
        failures = [1]

        async def flaky(action_ids: Sequence[str]) -> dict[str, datetime]:
            if failures and "ticker" in action_ids:
                failures.pop()
                raise BackendError("Redis went away for a moment")
            return await real(action_ids)

        backend.get_last_fires = flaky  # type: ignore[method-assign]
        await backend.put_schedule(every_second())
        # The harness ticks the beat directly, so the outage reaches the test (a serving beat
        # logs it and looks again after a backoff).
        with pytest.raises(BackendError):
            await t.advance(timedelta(seconds=1))
        await t.advance(timedelta(seconds=5))
    assert not failures
    assert len([f for _, f in seen if f.startswith("ticker@")]) >= 3
