"""Words for people: instants in UTC and relative to now, lengths of time, and the common cron
forms read aloud ("every 5 minutes", "every day at 02:30").

Pure functions of their arguments (``now`` is passed in). A cron expression this module does not
recognise reads as ``None``, and the page shows the expression alone: a wrong reading would be
worse than none.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jararaca.control.text import relative, seconds
from jararaca.cron_syntax import MACROS

__all__ = ["cron_in_words", "relative", "seconds", "utc"]

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_ABBREVIATIONS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_ABBREVIATIONS = tuple(m[:3].upper() for m in _MONTHS)


def utc(at: datetime) -> str:
    """``2024-05-01 12:00:00 UTC``: whole seconds, which is what a person compares."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(field: str, low: int, high: int) -> int | None:
    """The field's value when it is one plain number within [low, high]."""
    if field.isdigit() and low <= int(field) <= high:
        return int(field)
    return None


def _step(field: str) -> int | None:
    """N for ``*/N`` (N >= 2)."""
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) >= 2:
        return int(field[2:])
    return None


def _plural(count: int, unit: str) -> str:
    return f"every {unit}" if count == 1 else f"every {count} {unit}s"


def _weekday(field: str) -> str | None:
    upper = field.upper()
    if upper in _DAY_ABBREVIATIONS:
        return _DAYS[_DAY_ABBREVIATIONS.index(upper)]
    day = _number(field, 0, 7)
    return None if day is None else _DAYS[day]


def _month(field: str) -> str | None:
    upper = field.upper()
    if upper in _MONTH_ABBREVIATIONS:
        return _MONTHS[_MONTH_ABBREVIATIONS.index(upper)]
    month = _number(field, 1, 12)
    return None if month is None else _MONTHS[month - 1]


def _sub_daily(second: int, minute: str, hour: str) -> str | None:
    """Forms that fire several times a day (the date fields are all ``*``)."""
    if hour == "*":
        if minute == "*":
            return "every minute" if second == 0 else None
        step = _step(minute)
        if step is not None and second == 0:
            return _plural(step, "minute")
        at = _number(minute, 0, 59)
        if at is not None:
            return f"every hour at minute {at}" + (f", second {second}" if second else "")
        return None
    step = _step(hour)
    at = _number(minute, 0, 59)
    if step is not None and at is not None and second == 0:
        return f"{_plural(step, 'hour')} at minute {at}"
    return None


def cron_in_words(expression: str) -> str | None:
    """The common forms of a 5- or 6-field cron expression in words, or ``None``."""
    fields = MACROS.get(expression.strip().lower(), expression).split()
    if len(fields) == 6:
        second_field, rest = fields[0], fields[1:]
        if all(f == "*" for f in rest):
            if second_field == "*":
                return "every second"
            step = _step(second_field)
            return None if step is None else _plural(step, "second")
        second = _number(second_field, 0, 59)
        if second is None:
            return None
    elif len(fields) == 5:
        second, rest = 0, fields
    else:
        return None
    minute, hour, day, month, weekday = rest
    if day == month == weekday == "*":
        several = _sub_daily(second, minute, hour)
        if several is not None or hour == "*" or _step(hour) is not None:
            return several
    at_minute, at_hour = _number(minute, 0, 59), _number(hour, 0, 23)
    if at_minute is None or at_hour is None:
        return None
    clock = f"{at_hour:02d}:{at_minute:02d}" + (f":{second:02d}" if second else "")
    if day == "*" and month == "*":
        if weekday == "*":
            return f"every day at {clock}"
        if weekday.upper() in ("1-5", "MON-FRI"):
            return f"every weekday (Monday to Friday) at {clock}"
        name = _weekday(weekday)
        return None if name is None else f"every {name} at {clock}"
    if weekday != "*":
        return None
    day_of_month = _number(day, 1, 31)
    if day_of_month is None:
        last_day = day.upper() == "L" and month == "*"
        return f"on the last day of every month at {clock}" if last_day else None
    if month == "*":
        return f"on day {day_of_month} of every month at {clock}"
    month_name = _month(month)
    return None if month_name is None else f"every year on {day_of_month} {month_name} at {clock}"
