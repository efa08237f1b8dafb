"""What the beat schedules: a :class:`Plan` per decorated action or dynamic schedule.

A plan is the cron with its catch-up and jitter rules, and how to build the envelope of one
fire: a decorated action's fire goes to the workers' action queue; a dynamic schedule's fire
is its stored message, published to its topic with the fire's id as message id (so handlers
see each fire once, whatever the number of beats)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jararaca import wire
from jararaca.backends.records import ScheduleRecord
from jararaca.cron import Cron
from jararaca.declarations.actions import CatchUp
from jararaca.registry import ActionDef
from jararaca.scheduler.fires import fire_envelope, fire_id

# (scheduled instant, now, catch-up) -> the fire's envelope
EnvelopeBuilder = Callable[[datetime, datetime, bool], wire.Envelope]


@dataclass(frozen=True)
class Plan:
    action_id: str
    cron: Cron
    catch_up: CatchUp
    catch_up_window: float | None
    jitter: float
    envelope: EnvelopeBuilder


def action_plan(action: ActionDef) -> Plan:
    spec = action.spec

    def build(scheduled_at: datetime, now: datetime, catch_up: bool) -> wire.Envelope:
        return fire_envelope(action, scheduled_at, now=now, catch_up=catch_up)

    return Plan(
        action.action_id, spec.cron, spec.catch_up, spec.catch_up_window, spec.jitter, build
    )


def schedule_plan(schedule: ScheduleRecord) -> Plan:
    """The plan of a dynamic schedule; raises ``CronError`` if its cron or zone went bad."""
    cron = Cron(schedule.cron, schedule.tz)
    body = schedule.body.encode("utf-8")

    def build(scheduled_at: datetime, now: datetime, catch_up: bool) -> wire.Envelope:
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
        return wire.Envelope(identity, schedule.topic, body, headers)

    catch_up: CatchUp = "latest"
    if schedule.catch_up == "none":
        catch_up = "none"
    elif schedule.catch_up == "all":
        catch_up = "all"
    return Plan(schedule.schedule_id, cron, catch_up, None, schedule.jitter, build)
