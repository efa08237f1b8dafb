"""The demo app: cron actions and delayed messages, run embedded with

    jararaca scheduler examples.demo_app:app

Every run prints one line with the instant it was scheduled for and how late it started.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jararaca import (
    Message,
    MessageBusController,
    MessageContext,
    MessageHandler,
    Microservice,
    ProviderSpec,
    ScheduledAction,
    ScheduledRun,
)


class ReminderMessage(Message):
    MESSAGE_TOPIC = "reminder.due"
    MESSAGE_TYPE = "task"

    user_id: str
    message: str


class Greeting:
    """A dependency injected into the controller by the app's providers."""

    def __init__(self, text: str) -> None:
        self.text = text


def _late_ms(run_at: datetime) -> float:
    return (datetime.now(UTC) - run_at).total_seconds() * 1000


@MessageBusController
class TasksController:
    def __init__(self, greeting: Greeting) -> None:
        self.greeting = greeting
        self.ticks = 0

    @ScheduledAction("*/2 * * * * *", name="tick")
    async def tick(self, run: ScheduledRun) -> None:
        self.ticks += 1
        print(
            f"[tick]     {run.scheduled_at:%H:%M:%S} started {_late_ms(run.scheduled_at):5.1f} ms "
            f"after its slot ({self.greeting.text}, run #{self.ticks})",
            flush=True,
        )
        if self.ticks % 3 == 1:
            reminder = ReminderMessage(user_id="123", message=f"reminder from tick {self.ticks}")
            await reminder.delay(1.5, idempotency_key=f"reminder:{reminder.user_id}")

    @ScheduledAction("*/5 * * * * *", allow_overlap=False, timeout=10, name="report")
    async def report(self, run: ScheduledRun) -> None:
        print(f"[report]   {run.scheduled_at:%H:%M:%S} every 5 s, fire {run.fire_id}", flush=True)

    @MessageHandler(ReminderMessage)
    async def on_reminder(self, message: ReminderMessage, context: MessageContext) -> None:
        late = _late_ms(context.due_at) if context.due_at else 0.0
        print(
            f"[reminder] user {message.user_id}: {message.message!r} delivered {late:5.1f} ms "
            "after its due time",
            flush=True,
        )


app = Microservice(
    name="demo",
    controllers=[TasksController],
    providers=[ProviderSpec(provide=Greeting, use_value=Greeting("hello from the DI container"))],
)
