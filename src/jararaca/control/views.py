"""From declarations, backend entries and dead letters to the control plane's models.

Pure functions: no I/O, no clock (``now`` is passed in). ``schedules_from_app`` is what
``jararaca schedules list`` shows without a backend: the app's declarations alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jararaca import wire
from jararaca.backends.base import DelayedEntry
from jararaca.backends.records import ScheduleRecord
from jararaca.control.models import DeadLetterInfo, DelayedInfo, ScheduleInfo
from jararaca.cron import Cron
from jararaca.errors import ConfigError
from jararaca.microservice import Microservice
from jararaca.registry import ActionDef, build_registry
from jararaca.scheduler.plans import Plan, action_plan, schedule_plan

if TYPE_CHECKING:
    from jararaca.brokers.base import DeadLetter

KEY_PREFIX = "key:"  # task ids of messages published with an idempotency key
DYNAMIC_GROUP = "dynamic"  # what `schedules list` shows as the group of a dynamic schedule
INTERNAL_PREFIXES = ("recheck:",)  # the worker's own re-checks, not messages anyone published
MAX_BACKFILL = 10_000  # slots per backfill call: a typo in a window must not flood the queue


def short_name(action: ActionDef) -> str:
    return action.spec.name or action.attribute


def resolve_action(actions: Sequence[ActionDef], name: str) -> ActionDef:
    """The action whose id, ``name=`` or method name is ``name``."""
    wanted = name.strip()
    exact = [a for a in actions if a.action_id == wanted]
    found = exact or [a for a in actions if wanted in a.names()]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(
            f"{name!r} names several actions ({', '.join(sorted(a.action_id for a in found))}): "
            "use the action id"
        )
    known = ", ".join(sorted(short_name(a) for a in actions)) or "none"
    raise ConfigError(f"no action named {name!r}: the app's actions are {known}")


def schedule_info(action: ActionDef, now: datetime, count: int) -> ScheduleInfo:
    """An action's declaration and its next ``count`` fires after ``now``; what only the
    backend knows (pause, runs) is left unset."""
    cron = action.spec.cron
    return ScheduleInfo(
        id=action.action_id,
        name=short_name(action),
        group=action.group,
        cron=cron.expr,
        tz=str(cron.tz),
        next_fires=list(itertools.islice(cron.iter_after(now), count)),
    )


def dynamic_schedule_info(schedule: ScheduleRecord, now: datetime, count: int) -> ScheduleInfo:
    """A dynamic schedule as :func:`schedule_info` shows an action (group ``dynamic``)."""
    cron = Cron(schedule.cron, schedule.tz)
    return ScheduleInfo(
        id=schedule.schedule_id,
        name=schedule.schedule_id,
        group=DYNAMIC_GROUP,
        cron=cron.expr,
        tz=str(cron.tz),
        next_fires=list(itertools.islice(cron.iter_after(now), count)),
        topic=schedule.topic,
    )


def schedules_from_app(app: Microservice, now: datetime, count: int = 5) -> list[ScheduleInfo]:
    """Every action of the app with its next fires, computed locally (no backend)."""
    return [schedule_info(a, now, count) for a in build_registry(app).actions]


def is_internal_task(task_id: str) -> bool:
    return task_id.startswith(INTERNAL_PREFIXES)


def delayed_info(entry: DelayedEntry) -> DelayedInfo:
    envelope = entry.envelope
    key = entry.task_id[len(KEY_PREFIX) :] if entry.task_id.startswith(KEY_PREFIX) else None
    return DelayedInfo(
        message_id=envelope.message_id,
        idempotency_key=key,
        topic=envelope.headers.get(wire.TOPIC, envelope.routing_key),
        due_at=entry.due_at,
        task_id=entry.task_id,
    )


def dead_letter_info(dead: DeadLetter) -> DeadLetterInfo:
    envelope = dead.envelope
    headers = envelope.headers
    return DeadLetterInfo(
        id=envelope.message_id,
        topic_or_action=headers.get(wire.ACTION) or headers.get(wire.TOPIC) or envelope.routing_key,
        reason=dead.reason,
        failed_at=dead.failed_at,
        source=dead.source,
    )


def backfill_slots(
    action_id: str, cron: Cron, start: datetime, end: datetime, *, now: datetime
) -> list[datetime]:
    """The action's cron slots in ``[start, end)``; ``ConfigError`` for a window that is not
    aware, empty, in the future or larger than :data:`MAX_BACKFILL` slots."""
    for label, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(
                f"backfill {label} {value.isoformat()} has no time zone: give an aware "
                "datetime, e.g. 2024-05-01T00:00:00+00:00"
            )
    if end <= start:
        raise ConfigError(
            f"backfill end {end.isoformat()} is not after start {start.isoformat()}: the window "
            "is [start, end)"
        )
    if end > now:
        raise ConfigError(
            f"backfill end {end.isoformat()} is in the future (now {now.isoformat()}): backfill "
            "replays past slots, the beat fires the coming ones"
        )
    # iter_after is strict: a microsecond earlier makes a slot exactly at ``start`` count.
    try:
        upcoming = cron.iter_after(start - timedelta(microseconds=1))
    except OverflowError:
        raise ConfigError(
            f"backfill start {start.isoformat()} is out of range: pick a start after year 1"
        ) from None
    slots = list(
        itertools.islice(itertools.takewhile(lambda at: at < end, upcoming), MAX_BACKFILL + 1)
    )
    if len(slots) > MAX_BACKFILL:
        raise ConfigError(
            f"backfill of {action_id} from {start.isoformat()} to {end.isoformat()} "
            f"covers more than {MAX_BACKFILL:,} slots of {cron.expr!r}, the cap per call: "
            "split the window"
        )
    return slots


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ConfigError(f"limit must be a positive number, got {limit}")


def target_id(target: ActionDef | ScheduleRecord) -> str:
    """The id of a declared action or a dynamic schedule."""
    return target.schedule_id if isinstance(target, ScheduleRecord) else target.action_id


def target_plan(target: ActionDef | ScheduleRecord) -> Plan:
    return schedule_plan(target) if isinstance(target, ScheduleRecord) else action_plan(target)
