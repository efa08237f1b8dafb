"""Cron expressions evaluated in a time zone: a pure, thin wrapper over ``cronsim``.

Syntax (guarantee 8): 5 fields, or 6 with seconds first; ``@yearly @annually @monthly @weekly
@daily @midnight @hourly``; lists, ranges, steps, month and weekday names; ``L`` and ``LW`` in
day-of-month; ``nL`` (last weekday n of the month) and ``n#k`` (k-th weekday n) in day-of-week.
Day-of-month and day-of-week are OR-ed unless one of them starts with ``*`` (Vixie cron).

Time zones follow Debian cron. A *fixed-time* expression (neither minute nor hour starts with
``*``) is read on the wall clock: a slot in a spring-forward gap fires once, at the transition,
and a slot in the autumn's repeated hour fires once, at its first occurrence. Any other
expression fires at each real instant whose local time matches, so ``0 * * * *`` runs every
real hour. cronsim applies these rules only to 5-field expressions; here they also cover the
seconds form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jararaca.errors import CronError

__all__ = ["TIMEZONE_ENV", "Cron", "resolve_timezone"]

TIMEZONE_ENV = "JARARACA_DEFAULT_TIMEZONE"

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
# Zones known to have one fixed offset: evaluating them on naive wall time is exact and skips
# cronsim's slower aware arithmetic. Anything not listed takes the general (DST-aware) path.
_FIXED_ZONE_KEY = re.compile(
    r"(Etc/)?(UTC|UCT|Universal|Zulu|Greenwich|GMT([+-]?\d{1,2})?)", re.IGNORECASE
)
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
        name = os.environ.get(TIMEZONE_ENV, "").strip()
        return _zone(name, f" (from {TIMEZONE_ENV})") if name else UTC
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
        self._normalized = _normalize(self._expr)
        parts = self._normalized.split()
        self._has_seconds = len(parts) == 6
        template = _parse(self._expr, self._normalized)
        self._state: dict[str, Any] = dict(vars(template))
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
        for fire in self._forward(_as_utc(instant, "next_after")):
            return fire
        raise CronError(f"cron expression {self._expr!r} has no fire after {instant.isoformat()}")

    def iter_after(self, instant: datetime) -> Iterator[datetime]:
        """Fires strictly after ``instant``, ascending, as aware UTC datetimes (lazy, endless)."""
        # Validate now, not at the first next(): a generator body runs only when first advanced.
        return self._forward(_as_utc(instant, "iter_after"))

    def last_at_or_before(self, instant: datetime) -> datetime | None:
        """The latest fire at or before ``instant``, or None if there is none in 50 years."""
        utc = _as_utc(instant, "last_at_or_before")
        # cronsim steps one second back before matching; starting a second late makes
        # ``instant`` itself a candidate (microseconds truncate: fires are whole seconds).
        start = utc.replace(microsecond=0) + _SECOND
        try:
            if self._fixed_offset is not None:
                off = self._fixed_offset
                for wall in self._sim((start + off).replace(tzinfo=None), reverse=True):
                    return (wall - off).replace(tzinfo=UTC)
            elif self._wall_clock:
                local = utc.astimezone(self._tz)
                wall = local.replace(tzinfo=None, fold=0)
                if local.fold:
                    # In the second pass of a repeated hour, slots up to the same instant read
                    # on the first pass's offset already fired (each at its first occurrence).
                    wall += _offset(local.replace(fold=0)) - _offset(local)
                wall = wall.replace(microsecond=0) + _SECOND
                for wall_fire in self._sim(wall, reverse=True):
                    fire = self._localize(wall_fire)
                    if fire <= utc:
                        return fire
            else:
                for local_fire in self._sim(start.astimezone(self._tz), reverse=True):
                    fire = local_fire.astimezone(UTC)
                    if fire <= utc:
                        return fire
        except OverflowError:  # walked past datetime.min
            pass
        return None

    def __repr__(self) -> str:
        return f"Cron({self._expr!r}, tz={self._tz_key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cron):
            return NotImplemented
        return (self._expr, self._tz_key) == (other._expr, other._tz_key)

    def __hash__(self) -> int:
        return hash((self._expr, self._tz_key))

    def _forward(self, utc: datetime) -> Iterator[datetime]:
        last = utc
        try:
            if self._fixed_offset is not None:
                off = self._fixed_offset
                for wall in self._sim((utc + off).replace(tzinfo=None), reverse=False):
                    yield (wall - off).replace(tzinfo=UTC)
            elif self._wall_clock:
                local = utc.astimezone(self._tz)
                for wall in self._sim(local.replace(tzinfo=None, fold=0), reverse=False):
                    fire = self._localize(wall)
                    # Skips slots already fired: a gap's slots share the transition instant,
                    # and a repeated hour's second pass starts after its first-pass slots.
                    if fire > last:
                        last = fire
                        yield fire
            else:
                for local_fire in self._sim(utc.astimezone(self._tz), reverse=False):
                    fire = local_fire.astimezone(UTC)
                    if fire > last:
                        last = fire
                        yield fire
        except OverflowError:  # walked past datetime.max
            return

    def _sim(self, start: datetime, *, reverse: bool) -> CronSim:
        if not _CAN_CLONE:
            return CronSim(self._normalized, start, reverse=reverse)
        sim: CronSim = object.__new__(CronSim)
        vars(sim).update(self._state)
        # The per-start part of CronSim.__init__ (fixup_tz stays None: we never hand cronsim an
        # aware datetime with a fixed-time expression, the one case where it would set it).
        sim.skip_initial_tick = reverse and start.microsecond != 0
        sim.dt = start.replace(microsecond=0)
        sim.tick_direction = -1 if reverse else 1
        return sim

    def _localize(self, wall: datetime) -> datetime:
        """The instant a fixed-time slot at local ``wall`` time fires, in UTC."""
        # PEP 495: fold=0 reads a time on the offset in force before the nearest transition,
        # fold=1 on the one after. The offsets differ only for a repeated time (before > after:
        # fold=0 is its first occurrence) or a time in a gap (before < after).
        before = _offset(wall.replace(tzinfo=self._tz, fold=0))
        after = _offset(wall.replace(tzinfo=self._tz, fold=1))
        if before >= after:
            return (wall - before).replace(tzinfo=UTC)
        return _gap_transition(self._tz, wall - after, wall - before)


def _as_utc(instant: datetime, method: str) -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"Cron.{method} needs a datetime, got {type(instant).__name__}")
    if instant.utcoffset() is None:
        raise ValueError(
            f"Cron.{method} needs an aware datetime, got naive {instant.isoformat()}: "
            "attach a time zone (e.g. tzinfo=datetime.UTC)"
        )
    return instant.astimezone(UTC)


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


def _parse(expr: str, normalized: str) -> CronSim:
    """Parse once with cronsim, then reject what cronsim accepts but guarantee 8 does not."""
    try:
        sim = CronSim(normalized, _PROBE_START)
    except CronSimError as exc:
        raise CronError(_explain(expr, normalized, str(exc))) from None
    except Exception as exc:  # cronsim should only raise CronSimError; be TypeError-free anyway
        raise CronError(_explain(expr, normalized, repr(exc))) from None
    fields = _fields(normalized)
    for term in fields[3].upper().split(","):
        if term.startswith("L") and "/" in term:
            # cronsim drops the step after L/LW silently; guarantee 8 says reject, never ignore.
            raise CronError(_bad_field(expr, 3, fields[3], "a step cannot follow L or LW"))
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
