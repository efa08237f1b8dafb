"""cronsim's reading of each cron field, done once per distinct field and shared.

Building a ``CronSim`` is mostly parsing its six fields (about 55 µs, three times the walk to
the next fire), and it was paid for every expression twice at start-up (validation, then the
first fire), and again for every fire after. Apps repeat fields far more than expressions: at
100,000 distinct expressions there are still only 60 seconds, 60 minutes, 24 hours and a few
date parts. So cronsim reads each time field alone (the others ``*``) and each date part
(day-of-month, month, day-of-week, which cronsim checks together) once, and a next fire is
found from those readings when the first time of day the fields allow falls on a date they
allow (``next_slot``, most next fires); cronsim itself is asked for the date in between, and
walks whatever else (``slots``).

The readings are the time-field sets a ``CronSim`` keeps as attributes after parsing (the date
fields are only ever asked of cronsim); nothing is written into a ``CronSim``. cronsim parses
the fields one after the other and raises at the first bad one, so reading them apart fails on
the same field, with the same message, as reading them together.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from cronsim import CronSim

__all__ = ["DatePart", "date_part", "next_slot", "read_fields", "slots"]

# Any start works for reading: only the parsed fields, or whether a fire exists at all, are used.
_PROBE_START = datetime(2000, 1, 1)
# The parsed time fields a CronSim keeps, read by read_fields. Should a cronsim release keep
# them under other names, every next fire is asked of CronSim itself (slower, still right;
# tests/unit/test_cron_fields.py fails to say so).
_READ = ("seconds", "minutes", "hours")
READABLE = all(hasattr(CronSim("* * * * *", _PROBE_START), name) for name in _READ)
_SECOND = timedelta(seconds=1)
_DAY_LESS_A_SECOND = timedelta(days=1, seconds=-1)


class DatePart(NamedTuple):
    """Day-of-month, month and day-of-week together, as cronsim checks them."""

    fires: bool
    """Some date matches within cronsim's 50-year search (so, as dates recur, ever)."""
    text: str
    """The three fields as written, space-separated."""


class Fields(NamedTuple):
    """cronsim's reading of a whole expression."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    date: DatePart


def read_fields(cronsim_text: str) -> Fields:
    """Read a 5- or 6-field expression; raise what ``CronSim(cronsim_text, ...)`` raises."""
    parts = cronsim_text.split()
    if len(parts) == 5:
        parts.insert(0, "0")
    if len(parts) != 6:  # cronsim's own check and message, for a text normalised elsewhere
        CronSim(cronsim_text, _PROBE_START)
    return Fields(
        _time_field(0, parts[0]),
        _time_field(1, parts[1]),
        _time_field(2, parts[2]),
        date_part(parts[3], parts[4], parts[5]),
    )


def next_slot(cronsim_text: str, start: datetime) -> datetime | None:
    """``next(CronSim(cronsim_text, start))`` for a valid text and a naive ``start``, or None
    where cronsim stops: the first slot strictly after ``start``."""
    if READABLE and start.tzinfo is None:
        fields = read_fields(cronsim_text)
        before = _before_next_time(start, fields)
        slot = before + _SECOND
        # The first time of day the time fields allow, on a date the date fields allow: the
        # answer, without a walk (most next fires of a cron that fires daily or on weekdays);
        # on a later date when that day has no fire (a weekday cron on a weekend).
        first = _first_date(fields.date.text, slot.date())
        if first == slot.date():
            return slot
        if first is not None:
            return datetime.combine(first, _first_time(fields))
        start = before
    for slot in CronSim(cronsim_text, start):
        return slot
    return None


def _first_time(fields: Fields) -> time:
    """The first time of day the time fields allow."""
    return time(_sorted(fields.hours)[0], _sorted(fields.minutes)[0], _sorted(fields.seconds)[0])


@functools.lru_cache(maxsize=4096)
def _first_date(date_text: str, day: date) -> date | None:
    """The first date, ``day`` or later, on which cronsim fires for these date fields (asked of
    cronsim itself, once per date fields and day), or None where cronsim stops looking (then
    the caller's walk finds none either)."""
    for slot in CronSim(f"0 0 0 {date_text}", datetime.combine(day, time()) - _SECOND):
        return slot.date()
    return None


def slots(cronsim_text: str, start: datetime, *, reverse: bool) -> Iterator[datetime]:
    """The slots ``CronSim(cronsim_text, start, reverse=reverse)`` yields, for a valid text
    and a naive ``start``: forward, each found by :func:`next_slot` from the one before."""
    if reverse or not READABLE or start.tzinfo is not None:
        return iter(CronSim(cronsim_text, start, reverse=reverse))
    return _forward(cronsim_text, start)


def _forward(cronsim_text: str, start: datetime) -> Iterator[datetime]:
    slot = next_slot(cronsim_text, start)
    while slot is not None:
        yield slot
        slot = next_slot(cronsim_text, slot)


def _before_next_time(start: datetime, fields: Fields) -> datetime:
    """The second before the first time of day on the time fields' grid from cronsim's first
    candidate (the whole second after ``start``) on, today or tomorrow. Nothing in between can
    fire, and cronsim walks there an hour, a minute or a second at a time: for a cron that
    fires once a day, most of a next fire's cost."""
    first = start.replace(microsecond=0) + _SECOND
    hours, minutes = _sorted(fields.hours), _sorted(fields.minutes)
    seconds = _sorted(fields.seconds)
    if first.hour in fields.hours:
        if first.minute in fields.minutes:
            at = bisect.bisect_left(seconds, first.second)
            if at < len(seconds):
                return first.replace(second=seconds[at]) - _SECOND
        at = bisect.bisect_right(minutes, first.minute)
        if at < len(minutes):
            return first.replace(minute=minutes[at], second=seconds[0]) - _SECOND
    at = bisect.bisect_right(hours, first.hour)
    if at < len(hours):
        return first.replace(hour=hours[at], minute=minutes[0], second=seconds[0]) - _SECOND
    return first.replace(hour=hours[0], minute=minutes[0], second=seconds[0]) + _DAY_LESS_A_SECOND


@functools.lru_cache(maxsize=4096)
def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


@functools.lru_cache(maxsize=4096)
def _time_field(index: int, text: str) -> frozenset[int]:
    """Second (0), minute (1) or hour (2), read alone."""
    alone = ["*"] * 6
    alone[index] = text
    sim = CronSim(" ".join(alone), _PROBE_START)
    return frozenset((sim.seconds, sim.minutes, sim.hours)[index])


@functools.lru_cache(maxsize=4096)
def date_part(day_of_month: str, month: str, day_of_week: str) -> DatePart:
    """The date fields read together (cronsim checks that a day exists in a listed month)."""
    text = f"{day_of_month} {month} {day_of_week}"
    sim = CronSim(f"0 0 0 {text}", _PROBE_START)
    # Only the date fields can starve a cron (every day has every time of day), and a date
    # that matches at all recurs within the search, so one probe tells whether it ever fires.
    try:
        next(sim)
    except StopIteration:
        return DatePart(False, text)
    return DatePart(True, text)
