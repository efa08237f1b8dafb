"""Checking a dynamic schedule before it is stored: everything that can be wrong with it is
refused here, naming the bad value, so a beat never meets a schedule it cannot run."""

from __future__ import annotations

import math
import re
from datetime import datetime

from jararaca.backends.records import ScheduleRecord
from jararaca.cron import Cron
from jararaca.declarations.actions import CATCH_UP_POLICIES
from jararaca.errors import ConfigError
from jararaca.messagebus.message import Message
from jararaca.messagebus.publisher import message_envelope

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def new_schedule(
    schedule_id: str,
    cron: str,
    message: Message,
    *,
    tz: str | None,
    catch_up: str,
    jitter: float,
    now: datetime,
    action_ids: set[str],
) -> ScheduleRecord:
    if not isinstance(schedule_id, str) or not _ID.match(schedule_id):
        raise ConfigError(
            f"bad schedule id {schedule_id!r}: use 1-200 letters, digits, '.', '_', ':' or '-'"
        )
    if schedule_id in action_ids:
        raise ConfigError(
            f"schedule id {schedule_id!r} is the id of a decorated action: pick another id"
        )
    parsed = Cron(cron, tz)  # CronError names the expression and the bad field or zone
    if catch_up not in CATCH_UP_POLICIES:
        raise ConfigError(
            f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}, got {catch_up!r}"
        )
    if (
        isinstance(jitter, bool)
        or not isinstance(jitter, int | float)
        or not math.isfinite(jitter)
        or jitter < 0
    ):
        raise ConfigError(f"jitter must be a number of seconds >= 0, got {jitter!r}")
    # Built as a publish would be: the same checks (a Message, a topic, the size limit).
    envelope = message_envelope(message, now=now)
    return ScheduleRecord(
        schedule_id=schedule_id,
        cron=parsed.expr,
        tz=tz if isinstance(tz, str) else str(parsed.tz),
        topic=envelope.routing_key,
        body=envelope.body.decode("utf-8"),
        catch_up=catch_up,
        jitter=float(jitter),
        created_at=now,
    )
