"""Every seed snippet about decorators, Message.delay/schedule and use_publisher, as written,
run in embedded mode (the BeatWorker snippets run against real servers in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jararaca import Message, MessageHandler, Microservice, ScheduledAction, use_publisher
from jararaca.testing import TestScheduler

# --- seed: "Defining Scheduled Tasks" --------------------------------------------------------


class TasksController:
    @ScheduledAction("*/5 * * * *")  # Run every 5 minutes
    async def scheduled_task(self):  # type: ignore[no-untyped-def]
        # Your task implementation
        print("This runs every 5 minutes")

    @ScheduledAction("0 */2 * * *", allow_overlap=False, timeout=60)
    async def heavy_task(self):  # type: ignore[no-untyped-def]
        # A heavier task that shouldn't overlap
        print("This runs every 2 hours without overlap")


async def test_seed_decorators_run_on_their_crons(capsys: pytest.CaptureFixture[str]) -> None:
    app = Microservice(controllers=[TasksController])
    start = datetime(2031, 1, 1, 0, 0, 30, tzinfo=UTC)
    async with TestScheduler(app, start=start) as t:
        await t.advance(timedelta(hours=4))
    out = capsys.readouterr().out.splitlines()
    assert out.count("This runs every 5 minutes") == 48
    assert out.count("This runs every 2 hours without overlap") == 2
    heavy = [r.scheduled_at.hour for r in t.runs if r.action_id.endswith("heavy_task")]
    assert heavy == [2, 4]


# --- seed: "Delayed Message Queue" -----------------------------------------------------------


class ReminderMessage(Message):
    MESSAGE_TOPIC = "reminder.due"
    MESSAGE_TYPE = "task"

    user_id: str
    message: str


async def schedule_reminder() -> None:
    reminder = ReminderMessage(
        user_id="123",
        message="Don't forget your appointment!",
    )

    # Deliver one hour from now (relative delay, in seconds)
    await reminder.delay(3600)

    # Or deliver at an exact moment (absolute schedule)
    await reminder.schedule(
        datetime.now() + timedelta(hours=1),
        tz=ZoneInfo("UTC"),
    )


reminders: list[ReminderMessage] = []


class Reminders:
    @MessageHandler(ReminderMessage)
    async def on_reminder(self, message: ReminderMessage) -> None:
        reminders.append(message)


reminder_app = Microservice(controllers=[Reminders])


async def test_seed_delay_and_schedule_deliver_an_hour_later() -> None:
    reminders.clear()
    # The snippet reads the real clock (datetime.now()), so the fake one starts there too.
    start = datetime.now(UTC)
    async with TestScheduler(reminder_app, start=start) as t:
        await schedule_reminder()
        await t.advance(timedelta(minutes=59))
        assert reminders == []
        await t.advance(timedelta(minutes=2))
    assert [r.user_id for r in reminders] == ["123", "123"]


async def test_seed_use_publisher_delay_and_schedule() -> None:
    reminders.clear()
    start = datetime.now(UTC)
    async with TestScheduler(reminder_app, start=start) as t:
        reminder = ReminderMessage(user_id="9", message="hi")
        await use_publisher().delay(reminder, 60)
        await use_publisher().schedule(
            reminder, datetime.now() + timedelta(minutes=2), ZoneInfo("UTC")
        )
        await t.advance(timedelta(minutes=3))
    assert len(reminders) == 2


async def test_seed_debounce_keeps_the_soonest_time_and_the_latest_payload() -> None:
    reminders.clear()
    start = datetime(2031, 1, 1, tzinfo=UTC)
    async with TestScheduler(reminder_app, start=start) as t:
        for text, delay in (("first", 600), ("second", 300), ("third", 900)):
            reminder = ReminderMessage(user_id="123", message=text)
            # Re-arming a debounce timer: keep the soonest dispatch time, replace payload.
            await reminder.delay(
                delay,
                idempotency_key=f"reminder:{reminder.user_id}",
                payload_policy="replace",
                time_policy="lesser",
            )
        await t.advance(timedelta(seconds=299))
        assert reminders == []
        await t.advance(timedelta(seconds=1))
        await t.advance(timedelta(minutes=20))
    assert [r.message for r in reminders] == ["third"]
