"""What the beat schedules: a :class:`Plan` per decorated action or dynamic schedule.

A plan is the cron with its catch-up and jitter rules, and how to build the envelope of one
fire: a decorated action's fire goes to the workers' action queue; a dynamic schedule's fire
is its stored message, published to its topic with the fire's id as message id (so handlers
see each fire once, whatever the number of beats)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jararaca import wire
from jararaca.backends.records import ScheduleRecord
from jararaca.cron import Cron
from jararaca.declarations.actions import CatchUp
from jararaca.registry import ActionDef
from jararaca.scheduler.fires import fire_envelope, fire_id


@dataclass(frozen=True, slots=True)
class Plan:
    """What the fires are built from (the decorated action, or the stored schedule) and its
    cron. A beat holds one per action: two slots, the rest read from the source (a __dict__,
    a copy of each option and a closure each were about 300 bytes an action)."""

    source: ActionDef | ScheduleRecord
    cron: Cron

    @property
    def action_id(self) -> str:
        source = self.source
        return source.action_id if isinstance(source, ActionDef) else source.schedule_id

    @property
    def catch_up(self) -> CatchUp:
        source = self.source
        if isinstance(source, ActionDef):
            return source.spec.catch_up
        if source.catch_up == "none":
            return "none"
        return "all" if source.catch_up == "all" else "latest"

    @property
    def catch_up_window(self) -> float | None:
        source = self.source
        return source.spec.catch_up_window if isinstance(source, ActionDef) else None

    @property
    def jitter(self) -> float:
        source = self.source
        return source.spec.jitter if isinstance(source, ActionDef) else source.jitter

    def envelope(self, scheduled_at: datetime, now: datetime, catch_up: bool) -> wire.Envelope:
        """The envelope of the fire at ``scheduled_at``, published at ``now``."""
        if isinstance(self.source, ActionDef):
            return fire_envelope(self.source, scheduled_at, now=now, catch_up=catch_up)
        return _message_envelope(self.source, scheduled_at, now, catch_up)


def action_plan(action: ActionDef) -> Plan:
    return Plan(action, action.spec.cron)


def schedule_plan(schedule: ScheduleRecord) -> Plan:
    """The plan of a dynamic schedule; raises ``CronError`` if its cron or zone went bad."""
    return Plan(schedule, Cron(schedule.cron, schedule.tz))


def _message_envelope(
    schedule: ScheduleRecord, scheduled_at: datetime, now: datetime, catch_up: bool
) -> wire.Envelope:
    headers = {
        wire.KIND: "message",
        wire.TOPIC: schedule.topic,
        wire.SCHEDULE: schedule.schedule_id,
        wire.SCHEDULED_AT: wire.format_instant(scheduled_at),
        wire.PUBLISHED_AT: wire.format_instant(now),
        wire.ATTEMPT: "1",
    }
    if catch_up:
        headers[wire.CATCH_UP] = "1"
    identity = fire_id(schedule.schedule_id, scheduled_at)
    return wire.Envelope(identity, schedule.topic, schedule.body.encode("utf-8"), headers)
