"""Cron expressions evaluated in a time zone: a pure, thin wrapper over ``cronsim``.

Syntax (guarantee 8) is checked and normalised in ``jararaca.cron_syntax``. Day-of-month and
day-of-week are OR-ed unless one of them starts with ``*`` (Vixie cron; cronsim does this).

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

import os
import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jararaca.cron_fields import next_slot, slots
from jararaca.cron_syntax import parse_expression
from jararaca.errors import CronError

__all__ = ["Cron", "resolve_timezone"]

_TIMEZONE_ENV = "JARARACA_DEFAULT_TIMEZONE"

# Zones known to have one fixed offset, where a wall time maps to an instant by subtraction.
# Anything else takes the general path, which looks the offsets up for each slot.
_FIXED_ZONE_KEY = re.compile(
    r"(Etc/)?(UTC|UCT|Universal|Zulu|Greenwich|GMT([+-]?\d{1,2})?)", re.IGNORECASE
)
_SECOND = timedelta(seconds=1)
_NO_OFFSET = timedelta(0)


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
        "_cronsim_text",
        "_expr",
        "_fixed_offset",
        "_has_seconds",
        "_tz",
        "_tz_key",
        "_wall_clock",
    )

    def __init__(self, expr: str, tz: str | tzinfo | None = None) -> None:
        if not isinstance(expr, str):
            raise CronError(f"a cron expression must be a string, got {type(expr).__name__}")
        self._expr = expr.strip()
        parts, self._cronsim_text = parse_expression(self._expr)
        self._has_seconds = len(parts) == 6
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
                slot = next_slot(self._cronsim_text, (utc + off).replace(tzinfo=None))
                if slot is not None:
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

    def iter_at_or_before(self, instant: datetime) -> Iterator[datetime]:
        """Fires at or before ``instant``, descending, as aware UTC datetimes (lazy; none
        more than 50 years before the one yielded last)."""
        utc = _as_utc(instant, "iter_at_or_before")
        if self._fixed_offset is not None:
            return self._backward(utc, self._fixed_offset)
        return self._backward_zoned(utc)

    def _backward(self, utc: datetime, off: timedelta) -> Iterator[datetime]:
        # cronsim steps a second back before matching: starting a second late makes ``utc``
        # itself a candidate (microseconds truncate: fires are whole seconds). One walk for
        # every fire yielded: building it is most of the cost.
        start = (utc + off).replace(tzinfo=None, microsecond=0) + _SECOND
        try:
            for slot in self._slots(start, reverse=True):
                yield (slot - off).replace(tzinfo=UTC)
        except OverflowError:  # walked past datetime.min
            return

    def _backward_zoned(self, utc: datetime) -> Iterator[datetime]:
        fire = self.last_at_or_before(utc)
        while fire is not None:
            yield fire
            fire = self.last_at_or_before(fire - timedelta(microseconds=1))

    def last_at_or_before(self, instant: datetime) -> datetime | None:
        """The latest fire at or before ``instant``, or None if there is none in 50 years."""
        utc = _as_utc(instant, "last_at_or_before")
        best: datetime | None = None
        try:
            if self._fixed_offset is not None:
                for fire in self._backward(utc, self._fixed_offset):
                    return fire
                return None
            local = utc.astimezone(self._tz)
            wall = local.replace(tzinfo=None, fold=0)
            if local.fold:
                # In the second pass of a repeated hour, later slots of that hour fired in the
                # first pass, up to the wall time this instant has on the first pass's offset.
                wall += _offset(local.replace(fold=0)) - _offset(local)
            for slot in self._slots(wall.replace(microsecond=0) + _SECOND, reverse=True):
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
                for slot in self._slots((utc + off).replace(tzinfo=None), reverse=False):
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
            for slot in self._slots(wall, reverse=False):
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

    def _slots(self, start: datetime, *, reverse: bool) -> Iterator[datetime]:
        # Callers pass naive wall times, so cronsim applies none of its own zone rules (see the
        # module docstring for why); _readings maps each slot to the instants it fires at.
        # Forward, from fields cronsim read once (jararaca.cron_fields): parsing was most of
        # the cost of a next fire.
        return slots(self._cronsim_text, start, reverse=reverse)

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
    if tz is UTC:  # most crons: no probe
        return _NO_OFFSET
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
