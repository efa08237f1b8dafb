"""Cron expressions evaluated in a time zone: a pure, thin wrapper over ``cronsim``.

Syntax (guarantee 8): 5 fields, or 6 with seconds first; ``@yearly @annually @monthly @weekly
@daily @midnight @hourly``; lists, ranges, steps, month and weekday names; ``L`` and ``LW`` in
day-of-month; ``nL`` (last weekday n of the month) and ``n#k`` (k-th weekday n) in day-of-week.
Day-of-month and day-of-week are OR-ed unless one of them starts with ``*`` (Vixie cron).

Time zones follow Debian cron. A *fixed-time* expression (neither minute nor hour starts with
``*``) fires once per matching wall time: a slot in a spring-forward gap at the transition, a
slot in the autumn's repeated hour at its first occurrence. Any other expression fires at each
real instant whose local time matches: ``0 * * * *`` runs every real hour, and slots in a gap
do not exist.

cronsim only ever walks naive wall time here; this module maps each matching wall time to the
instants it fires at. cronsim's own zone handling covers the fixed-time rule for 5 fields only,
and its real-time walk misses slots next to half-hour transitions (Australia/Lord_Howe).
"""

from __future__ import annotations

import functools
import os
import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jararaca.errors import CronError

__all__ = ["Cron", "resolve_timezone"]

_TIMEZONE_ENV = "JARARACA_DEFAULT_TIMEZONE"

_MACROS = {
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
# Zones known to have one fixed offset, where a wall time maps to an instant by subtraction.
# Anything else takes the general path, which looks the offsets up for each slot.
_FIXED_ZONE_KEY = re.compile(
    r"(Etc/)?(UTC|UCT|Universal|Zulu|Greenwich|GMT([+-]?\d{1,2})?)", re.IGNORECASE
)
_SINGLE_VALUE_RANGE_STEP = re.compile(r"(?<![^,])([0-9A-Za-z]+)-([0-9A-Za-z]+)/([0-9]+)(?![^,])")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SECOND = timedelta(seconds=1)
_PROBE_START = datetime(2000, 1, 1)

# Building a CronSim parses the expression again (about half the cost of a next_after call), so
# each Cron keeps one parsed instance and clones its state per call. The clone writes the same
# per-start attributes CronSim.__init__ does; if cronsim's layout ever changes we fall back to
# building a fresh CronSim.
_CRONSIM_STATE = frozenset(
    {"skip_initial_tick", "dt", "tick_direction", "parts", "day_and", "seconds", "minutes"}
    | {"hours", "days", "months", "weekdays", "fixup_tz"}
)
_CAN_CLONE = set(vars(CronSim("* * * * *", _PROBE_START))) == _CRONSIM_STATE


def resolve_timezone(tz: str | tzinfo | None) -> tzinfo:
    """The tzinfo for an IANA name, a tzinfo, or None (env JARARACA_DEFAULT_TIMEZONE, else UTC)."""
    if isinstance(tz, tzinfo):
        return tz
    if tz is None:
        name = os.environ.get(_TIMEZONE_ENV, "").strip()
        return _zone(name, f" (from {_TIMEZONE_ENV})") if name else UTC
    if isinstance(tz, str):
        return _zone(tz, "")
    raise CronError(
        f"time zone must be an IANA name, a tzinfo or None, got {type(tz).__name__}: {tz!r}"
    )


def _zone(name: str, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory such as "Europe"; ValueError: absolute or non-normalized paths.
        raise CronError(
            f"unknown time zone {name!r}{source}: use an IANA name such as 'Europe/Lisbon' or 'UTC'"
        ) from None


class Cron:
    """A validated cron expression in a time zone; fires are returned as aware UTC datetimes."""

    __slots__ = (
        "_expr",
        "_fixed_offset",
        "_has_seconds",
        "_normalized",
        "_state",
        "_tz",
        "_tz_key",
        "_wall_clock",
    )

    def __init__(self, expr: str, tz: str | tzinfo | None = None) -> None:
        if not isinstance(expr, str):
            raise CronError(f"a cron expression must be a string, got {type(expr).__name__}")
        self._expr = expr.strip()
        normalized = _normalize(self._expr)
        parts = normalized.split()
        self._has_seconds = len(parts) == 6
        self._normalized = _cronsim_text(parts)
        # Shared, read-only: apps repeat a few expressions over many actions, and parsing
        # (with its probe) dominated start-up at 100,000 actions.
        self._state: dict[str, Any] = _parsed_state(self._expr, normalized, self._normalized)
        self._tz = resolve_timezone(tz)
        self._tz_key = _tz_key(self._tz)
        self._fixed_offset = _fixed_offset(self._tz)
        minute, hour = parts[-5], parts[-4]
        # Debian cron's test for a "fixed-time" job: neither minute nor hour starts with '*'.
        self._wall_clock = not minute.startswith("*") and not hour.startswith("*")

    @property
    def expr(self) -> str:
        """The expression as given, stripped."""
        return self._expr

    @property
    def tz(self) -> tzinfo:
        """The resolved time zone the expression is read in."""
        return self._tz

    @property
    def has_seconds(self) -> bool:
        """True for the 6-field form (seconds first)."""
        return self._has_seconds

    def next_after(self, instant: datetime) -> datetime:
        """The first fire strictly after ``instant`` (aware), as an aware UTC datetime."""
        utc = _as_utc(instant, "next_after")
        off = self._fixed_offset
        if off is not None:  # the hot path, without a generator
            try:
                for slot in self._sim((utc + off).replace(tzinfo=None), reverse=False):
                    return (slot - off).replace(tzinfo=UTC)
            except OverflowError:
                pass
        else:
            for fire in self._forward(utc):
                return fire
        raise CronError(f"cron expression {self._expr!r} has no fire after {instant.isoformat()}")

    def iter_after(self, instant: datetime) -> Iterator[datetime]:
        """Fires strictly after ``instant``, ascending, as aware UTC datetimes (lazy, endless)."""
        # Validate now, not at the first next(): a generator body runs only when first advanced.
        return self._forward(_as_utc(instant, "iter_after"))

    def last_at_or_before(self, instant: datetime) -> datetime | None:
        """The latest fire at or before ``instant``, or None if there is none in 50 years."""
        utc = _as_utc(instant, "last_at_or_before")
        best: datetime | None = None
        try:
            if self._fixed_offset is not None:
                off = self._fixed_offset
                # cronsim steps a second back before matching: starting a second late makes
                # ``instant`` itself a candidate (microseconds truncate: fires are whole seconds).
                start = (utc + off).replace(tzinfo=None, microsecond=0) + _SECOND
                for slot in self._sim(start, reverse=True):
                    return (slot - off).replace(tzinfo=UTC)
                return None
            local = utc.astimezone(self._tz)
            wall = local.replace(tzinfo=None, fold=0)
            if local.fold:
                # In the second pass of a repeated hour, later slots of that hour fired in the
                # first pass, up to the wall time this instant has on the first pass's offset.
                wall += _offset(local.replace(fold=0)) - _offset(local)
            for slot in self._sim(wall.replace(microsecond=0) + _SECOND, reverse=True):
                readings = self._readings(slot)
                fits = [fire for fire in readings if fire <= utc]
                if fits:
                    best = fits[-1] if best is None else max(best, fits[-1])
                # Walls and instants run in the same order except in a repeated hour, where an
                # earlier slot's second-pass fire can come after this slot's first-pass one.
                if best is not None and (len(readings) < 2 or len(fits) == 2):
                    return best
        except OverflowError:  # walked past datetime.min
            pass
        return best

    def __repr__(self) -> str:
        return f"Cron({self._expr!r}, tz={self._tz_key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cron):
            return NotImplemented
        return (self._expr, self._tz_key) == (other._expr, other._tz_key)

    def __hash__(self) -> int:
        return hash((self._expr, self._tz_key))

    def _forward(self, utc: datetime) -> Iterator[datetime]:
        try:
            if self._fixed_offset is not None:
                off = self._fixed_offset
                for slot in self._sim((utc + off).replace(tzinfo=None), reverse=False):
                    yield (slot - off).replace(tzinfo=UTC)
                return
            local = utc.astimezone(self._tz)
            wall = local.replace(tzinfo=None, fold=0)
            if not self._wall_clock and not local.fold:
                # In the first pass of a repeated hour, the second pass of the slots already
                # passed is still to come: start from the wall time of the second pass.
                wall -= _offset(local) - _offset(local.replace(fold=1))
            last = utc
            # Second-pass fires of a repeated hour, held until every earlier fire is out.
            later: deque[datetime] = deque()
            for slot in self._sim(wall, reverse=False):
                readings = self._readings(slot)
                if not readings:
                    continue
                while later and later[0] < readings[0]:
                    fire = later.popleft()
                    if fire > last:
                        last = fire
                        yield fire
                # "> last" also drops a gap's slots after the first (they share the transition
                # instant) and slots read from before ``utc`` (see the starts above).
                if readings[0] > last:
                    last = readings[0]
                    yield last
                later.extend(readings[1:])
        except OverflowError:  # walked past datetime.max
            return

    def _sim(self, start: datetime, *, reverse: bool) -> CronSim:
        if not _CAN_CLONE:
            return CronSim(self._normalized, start, reverse=reverse)
        sim: CronSim = object.__new__(CronSim)
        vars(sim).update(self._state)
        # The per-start part of CronSim.__init__; fixup_tz stays None as we only pass naive
        # wall times.
        sim.skip_initial_tick = reverse and start.microsecond != 0
        sim.dt = start.replace(microsecond=0)
        sim.tick_direction = -1 if reverse else 1
        return sim

    def _readings(self, slot: datetime) -> tuple[datetime, ...]:
        """The instants, in UTC, a slot at local wall time ``slot`` fires at (Debian rules)."""
        # PEP 495: fold=0 reads a wall time on the offset in force before the nearest
        # transition, fold=1 on the one after. They differ only for a repeated time (first >
        # second) or a time in a spring-forward gap (first < second).
        first = _offset(slot.replace(tzinfo=self._tz, fold=0))
        second = _offset(slot.replace(tzinfo=self._tz, fold=1))
        if first == second:
            return ((slot - first).replace(tzinfo=UTC),)
        if first > second:
            once = (slot - first).replace(tzinfo=UTC)
            if self._wall_clock:
                return (once,)
            return (once, (slot - second).replace(tzinfo=UTC))
        if self._wall_clock:
            return (_gap_transition(self._tz, slot - second, slot - first),)
        return ()


def _as_utc(instant: datetime, method: str) -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"Cron.{method} needs a datetime, got {type(instant).__name__}")
    if instant.utcoffset() is None:
        raise ValueError(
            f"Cron.{method} needs an aware datetime, got naive {instant.isoformat()}: "
            "attach a time zone (e.g. tzinfo=datetime.UTC)"
        )
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def _offset(dt: datetime) -> timedelta:
    off = dt.utcoffset()
    assert off is not None, "checked when the Cron was built"
    return off


def _gap_transition(tz: tzinfo, low: datetime, high: datetime) -> datetime:
    """The instant a spring-forward gap starts, given naive UTC bounds ``low < it <= high``."""
    # low is a gap time read on the offset after the gap (so before the transition), high the
    # same time read on the offset before it. Bisect on whole seconds, as tzdata's are.
    lo = int(low.replace(tzinfo=UTC).timestamp())
    hi = int(high.replace(tzinfo=UTC).timestamp())
    after = _offset(datetime.fromtimestamp(hi, tz))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, tz)) == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _tz_key(tz: tzinfo) -> object:
    """What identifies a zone for equality: its IANA key, 'UTC', or the tzinfo itself."""
    if isinstance(tz, ZoneInfo) and tz.key is not None:
        return tz.key
    if tz is UTC:
        return "UTC"
    return tz


def _fixed_offset(tz: tzinfo) -> timedelta | None:
    """The zone's one UTC offset if it never changes, else None; checks the zone is usable."""
    probe = datetime(2000, 1, 1, tzinfo=tz)
    try:
        offset = probe.utcoffset()
    except Exception as exc:
        raise CronError(f"time zone {tz!r} cannot be used: {exc}") from None
    if offset is None:
        raise CronError(f"time zone {tz!r} gives no UTC offset: use an IANA name such as 'UTC'")
    if isinstance(tz, timezone):
        return offset
    if isinstance(tz, ZoneInfo) and tz.key and _FIXED_ZONE_KEY.fullmatch(tz.key):
        return offset
    return None


def _normalize(expr: str) -> str:
    """The 5- or 6-field text cronsim gets: macros expanded, field count checked."""
    if expr.startswith("@"):
        fields = _MACROS.get(expr.lower())
        if fields is None:
            names = ", ".join(_MACROS)
            raise CronError(f"invalid cron expression {expr!r}: unknown macro (use one of {names})")
        return fields
    parts = expr.split()
    if len(parts) not in (5, 6):
        if not parts:
            raise CronError(f"invalid cron expression {expr!r}: it is empty; {_COUNT_HINT}")
        raise CronError(f"invalid cron expression {expr!r}: {_COUNT_HINT}, got {len(parts)}")
    return " ".join(parts)


def _cronsim_text(parts: list[str]) -> str:
    """The fields as cronsim should get them: single-value ranges with a step made plain."""
    return " ".join(_SINGLE_VALUE_RANGE_STEP.sub(_drop_step, field) for field in parts)


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


@functools.lru_cache(maxsize=4096)
def _parsed_state(expr: str, normalized: str, cronsim_text: str) -> dict[str, Any]:
    """cronsim's parsed fields for an expression; never mutated by the callers (``_sim``
    copies them into each new iterator)."""
    return dict(vars(_parse(expr, normalized, cronsim_text)))


def _parse(expr: str, normalized: str, cronsim_text: str) -> CronSim:
    """Parse once with cronsim, then reject what cronsim accepts but guarantee 8 does not."""
    try:
        sim = CronSim(cronsim_text, _PROBE_START)
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
    # ('* * LW * */6'). Only the date fields can starve a cron, and a date that fires at all
    # recurs within cronsim's 50-year search, so one probe tells.
    try:
        next(sim)
    except StopIteration:
        raise CronError(
            f"invalid cron expression {expr!r}: it never fires (no date matches day-of-month "
            f"{fields[3]!r}, month {fields[4]!r} and day-of-week {fields[5]!r} together)"
        ) from None
    return sim


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
