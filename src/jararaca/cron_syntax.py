"""Cron expression syntax: normalising, validating and explaining errors, before evaluation.

Guarantee 8: 5 fields, or 6 with seconds first; ``@yearly @annually @monthly @weekly @daily
@midnight @hourly``; lists, ranges, steps, month and weekday names; ``L`` and ``LW`` in
day-of-month; ``nL`` (last weekday n of the month) and ``n#k`` (k-th weekday n) in day-of-week.

``cronsim`` does the parsing. This module turns an expression into the text cronsim gets,
rejects what cronsim accepts but guarantee 8 does not, and turns cronsim's "Bad <field>" into a
message naming the expression, the field and what that field allows. Evaluation (time zones,
DST) is ``jararaca.cron``'s job; this module does not import it.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import NamedTuple

from cronsim import CronSim, CronSimError

from jararaca.cron_fields import read_fields
from jararaca.errors import CronError

__all__ = ["MACROS", "ParsedExpression", "parse_expression"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_ALLOWED = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L, LW",
    "month": "1-12, JAN-DEC",
    "day-of-week": "0-7 (0 and 7 are Sunday), SUN-SAT, nL, n#k",
}
_COUNT_HINT = "expected 5 fields (or 6 with seconds first)"
_SINGLE_VALUE_RANGE_STEP = re.compile(r"(?<![^,])([0-9A-Za-z]+)-([0-9A-Za-z]+)/([0-9]+)(?![^,])")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Any start works for a probe: only whether cronsim parses is used.
_PROBE_START = datetime(2000, 1, 1)


class ParsedExpression(NamedTuple):
    """A valid expression: its fields after macro expansion, and the text to give cronsim."""

    fields: tuple[str, ...]
    """5 or 6 fields, as written (macros expanded, whitespace collapsed)."""
    cronsim_text: str
    """The fields with each single-value range's step dropped, so cronsim reads them as Vixie
    cron does."""


# Apps repeat a few expressions over many actions: each distinct expression is checked once
# (and each distinct field, in jararaca.cron_fields). Only the text is kept: a CronSim is a
# stateful iterator, so callers walk their own (jararaca.cron_fields.slots).
@functools.lru_cache(maxsize=4096)
def parse_expression(expr: str) -> ParsedExpression:
    """Validate a stripped expression; raise CronError naming the bad field if it is invalid."""
    normalized = _normalize(expr)
    fields = tuple(normalized.split())
    cronsim_text = normalized
    if "/" in normalized:  # only a step can need dropping (most expressions have none)
        cronsim_text = " ".join(_SINGLE_VALUE_RANGE_STEP.sub(_drop_step, f) for f in fields)
    if cronsim_text == expr:
        cronsim_text = expr  # usually: then a Cron holds one string, not two equal ones
    _validate(expr, normalized, cronsim_text)
    return ParsedExpression(fields, cronsim_text)


def _normalize(expr: str) -> str:
    """The 5- or 6-field text: macros expanded, field count checked."""
    if expr.startswith("@"):
        fields = MACROS.get(expr.lower())
        if fields is None:
            names = ", ".join(MACROS)
            raise CronError(f"invalid cron expression {expr!r}: unknown macro (use one of {names})")
        return fields
    parts = expr.split()
    if len(parts) not in (5, 6):
        if not parts:
            raise CronError(f"invalid cron expression {expr!r}: it is empty; {_COUNT_HINT}")
        raise CronError(f"invalid cron expression {expr!r}: {_COUNT_HINT}, got {len(parts)}")
    return " ".join(parts)


def _drop_step(match: re.Match[str]) -> str:
    # cronsim reads "a-a/s" as "a/s" (every s-th value from a to the field's end); in Vixie
    # cron it is just a. Only a valid step is dropped, so "a-a/0" is still rejected.
    first, last, step = match.groups()
    if int(step) > 0 and _token_value(first) == _token_value(last) is not None:
        return f"{first}-{last}"
    return match[0]


def _token_value(token: str) -> int | None:
    upper = token.upper()
    if upper.isdigit():
        return int(upper)
    if upper in _DAY_NAMES:
        return _DAY_NAMES.index(upper)
    if upper in _MONTH_NAMES:
        return _MONTH_NAMES.index(upper) + 1
    return None


def _validate(expr: str, normalized: str, cronsim_text: str) -> None:
    """Parse with cronsim, then reject what cronsim accepts but guarantee 8 does not."""
    try:
        date = read_fields(cronsim_text).date
    except CronSimError as exc:
        raise CronError(_explain(expr, normalized, str(exc))) from None
    except Exception as exc:  # cronsim should only raise CronSimError; be TypeError-free anyway
        raise CronError(_explain(expr, normalized, repr(exc))) from None
    fields = _fields(normalized)
    for term in fields[3].upper().split(","):
        if term.startswith("L") and "/" in term:
            # cronsim drops the step after L/LW silently; guarantee 8 says reject, never ignore.
            raise CronError(_bad_field(expr, 3, fields[3], "a step cannot follow L or LW"))
    # cronsim catches a day no listed month has, but not e.g. LW AND-ed with weekends only
    # ('* * LW * */6'): a probe of the date fields tells (once per distinct date part).
    if not date.fires:
        raise CronError(
            f"invalid cron expression {expr!r}: it never fires (no date matches day-of-month "
            f"{fields[3]!r}, month {fields[4]!r} and day-of-week {fields[5]!r} together)"
        )


def _fields(normalized: str) -> list[str]:
    """The six fields, with the 5-field form's implicit second '0' (cronsim's own layout)."""
    parts = normalized.split()
    return parts if len(parts) == 6 else ["0", *parts]


def _explain(expr: str, normalized: str, message: str) -> str:
    """One line naming the expression and the bad field, from cronsim's "Bad <field>"."""
    fields = _fields(normalized)
    name = message.removeprefix("Bad ")
    index = _FIELDS.index(name) if name in _FIELDS else _find_bad_field(fields)
    if index is None:
        return f"invalid cron expression {expr!r}: {message}"
    if index == 3 and _parses(["0", "0", "0", fields[3], "*", "*"]):
        # The day is fine alone: cronsim found no month in the month field long enough for it.
        return _bad_field(
            expr, 3, fields[3], f"no month in the month field {fields[4]!r} has that day"
        )
    return _bad_field(expr, index, fields[index], _hint(index, fields[index]))


def _find_bad_field(fields: list[str]) -> int | None:
    """The first field that fails on its own, every other field set to '*'."""
    for index, text in enumerate(fields):
        alone = ["*"] * 6
        alone[index] = text
        if not _parses(alone):
            return index
    return None


def _parses(fields: list[str]) -> bool:
    try:
        CronSim(" ".join(fields), _PROBE_START)
    except Exception:
        return False
    return True


def _hint(index: int, text: str) -> str:
    upper = text.upper()
    if "?" in upper:
        return "'?' is Quartz syntax, not cron: use '*'"
    if re.search(r"(^|[,/-])H", upper):
        return "'H' (hashed values) is not supported: give the values"
    if index == 3 and re.search(r"\dW", upper):
        return "'W' is supported only as 'LW' (last weekday of the month)"
    return f"allowed: {_ALLOWED[_FIELDS[index]]}, with lists, ranges and steps"


def _bad_field(expr: str, index: int, text: str, why: str) -> str:
    return f"invalid cron expression {expr!r}: bad {_FIELDS[index]} field {text!r} ({why})"
