"""Tests for jararaca.cron: parsing, iteration, time zones, DST (Debian rules), oracles."""

from __future__ import annotations

import calendar
import functools
import itertools
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from jararaca.cron import Cron, resolve_timezone
from jararaca.errors import CronError, JararacaError

MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _no_default_zone_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Crons built without tz read JARARACA_DEFAULT_TIMEZONE; these tests expect UTC unless
    # they set it themselves.
    monkeypatch.delenv("JARARACA_DEFAULT_TIMEZONE", raising=False)


def utc(text: str) -> datetime:
    """An aware instant from ISO text; a missing offset means UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fires(cron: Cron, start: str, count: int) -> list[datetime]:
    return list(itertools.islice(cron.iter_after(utc(start)), count))


# --------------------------------------------------------------------------------------------
# Parsing and validation


@pytest.mark.parametrize(
    ("expr", "field", "value"),
    [
        ("60 * * * * *", "second", "60"),
        ("x * * * * *", "second", "x"),
        ("60 * * * *", "minute", "60"),
        ("*/0 * * * *", "minute", "*/0"),
        ("5-1 * * * *", "minute", "5-1"),
        ("1,,2 * * * *", "minute", "1,,2"),
        ("* 24 * * *", "hour", "24"),
        ("* -1 * * *", "hour", "-1"),
        ("* * 32 * *", "day-of-month", "32"),
        ("* * 0 * *", "day-of-month", "0"),
        ("* * 15W * *", "day-of-month", "15W"),
        ("* * L/2 * *", "day-of-month", "L/2"),
        ("* * LW/3 * *", "day-of-month", "LW/3"),
        ("* * * 13 *", "month", "13"),
        ("* * * 0 *", "month", "0"),
        ("* * * JANUARY *", "month", "JANUARY"),
        ("* * * * 8", "day-of-week", "8"),
        ("* * * * MONDAY", "day-of-week", "MONDAY"),
        ("* * * * MON#6", "day-of-week", "MON#6"),
        ("* * * * 1#0", "day-of-week", "1#0"),
        ("* * * * L", "day-of-week", "L"),
        ("* * * * FRI-MON", "day-of-week", "FRI-MON"),
        ("0 * * * * 9", "day-of-week", "9"),
    ],
)
def test_bad_field_is_named(expr: str, field: str, value: str) -> None:
    with pytest.raises(CronError) as info:
        Cron(expr)
    message = str(info.value)
    assert message.startswith(f"invalid cron expression {expr!r}: bad {field} field {value!r}")
    assert "\n" not in message


def test_error_message_matches_the_documented_shape() -> None:
    with pytest.raises(CronError, match=r"^invalid cron expression '\* \* 32 \* \*': "):
        Cron("* * 32 * *")
    with pytest.raises(CronError, match="bad day-of-month field '32' "):
        Cron("* * 32 * *")


@pytest.mark.parametrize(
    ("expr", "count"),
    [("* * * *", 4), ("* * * * * * *", 7), ("*", 1), ("0 0 * * * 2024 x", 7)],
)
def test_wrong_field_count(expr: str, count: int) -> None:
    with pytest.raises(CronError) as info:
        Cron(expr)
    assert str(info.value) == (
        f"invalid cron expression {expr!r}: expected 5 fields (or 6 with seconds first), "
        f"got {count}"
    )


@pytest.mark.parametrize("expr", ["", "   ", "\t\n"])
def test_empty_expression(expr: str) -> None:
    with pytest.raises(CronError, match="it is empty; expected 5 fields"):
        Cron(expr)


@pytest.mark.parametrize("expr", [None, 5, b"* * * * *", ["*"] * 5])
def test_non_string_expression_is_a_cron_error(expr: object) -> None:
    with pytest.raises(CronError, match="must be a string"):
        Cron(expr)  # type: ignore[arg-type]


def test_cron_error_is_a_value_error_and_a_jararaca_error() -> None:
    with pytest.raises(ValueError) as info:
        Cron("nope")
    assert isinstance(info.value, JararacaError)


@pytest.mark.parametrize("expr", ["@reboot", "@every 5m", "@", "@daily 5", "@fortnightly"])
def test_unknown_macros_are_rejected(expr: str) -> None:
    with pytest.raises(CronError, match=r"unknown macro \(use one of @yearly, "):
        Cron(expr)


@pytest.mark.parametrize(
    ("expr", "field", "hint"),
    [
        ("0 0 ? * MON", "day-of-month", "Quartz"),
        ("0 0 * * ?", "day-of-week", "Quartz"),
        ("H * * * *", "minute", "'H'"),
        ("0 H/2 * * *", "hour", "'H'"),
    ],
)
def test_quartz_and_jenkins_syntax_is_rejected_with_a_hint(
    expr: str, field: str, hint: str
) -> None:
    with pytest.raises(CronError, match=f"bad {field} field") as info:
        Cron(expr)
    assert hint in str(info.value)


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30-31 2 *"])
def test_day_that_no_listed_month_has_is_rejected(expr: str) -> None:
    with pytest.raises(CronError, match=r"bad day-of-month field .* \(no month in the month field"):
        Cron(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "* * LW * */6",  # last weekday AND-ed (a "*" field) with 0 and 6: weekends
        "0 0 */11 * 0#3",  # days 1, 12, 23 AND-ed with third Sundays (15th-21st)
    ],
)
def test_expression_that_never_fires_is_rejected(expr: str) -> None:
    with pytest.raises(CronError, match=r"it never fires \(no date matches day-of-month"):
        Cron(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "*/5 * * * *",
        "0 9 * * MON-FRI",
        "0 9 * jan-mar sun",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 1,15,L * *",
        "0 0 * * 5L",
        "0 0 * * MON#2",
        "0 0 * * 1#1,5#3",
        "0 0 * * 7",
        "5/15 * * * *",
        "1-30/7 */6 * * *",
        "0 0 29 2 *",
        "*/10 * * * * *",
        "  0 0 * * *  ",
    ],
)
def test_valid_expressions_are_accepted(expr: str) -> None:
    cron = Cron(expr)
    assert cron.expr == expr.strip()
    assert cron.has_seconds is (len(expr.split()) == 6)


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("@Weekly", "0 0 * * 0"),
    ],
)
def test_macros_fire_like_their_five_field_equivalent(macro: str, equivalent: str) -> None:
    cron = Cron(macro)
    assert cron.expr == macro
    assert not cron.has_seconds
    start = "2023-12-30T17:43:12"
    assert fires(cron, start, 5) == fires(Cron(equivalent), start, 5)


def test_queries_across_a_dst_gap_in_several_zones() -> None:
    crons = [Cron("*/5 * * * *"), Cron("30 2 * * *", "Europe/Berlin"), Cron("0 * * * *", "EST5EDT")]
    start = utc("2024-03-10T06:00")
    assert [c.next_after(start) for c in crons] == [
        utc("2024-03-10T06:05"),
        utc("2024-03-11T01:30"),
        utc("2024-03-10T07:00"),  # 03:00 EDT: 02:00 does not exist that day
    ]
    assert [c.last_at_or_before(start) for c in crons] == [
        start,
        utc("2024-03-10T01:30"),
        utc("2024-03-10T06:00"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789*/-,#LWHMONJAFRI? @\t", max_size=30))
def test_any_text_builds_or_raises_cron_error(text: str) -> None:
    try:
        cron = Cron(text)
    except CronError as exc:
        assert str(exc)
        assert "\n" not in str(exc)
    else:
        fire = cron.next_after(utc("2024-06-01T12:00"))
        assert fire > utc("2024-06-01T12:00")


# --------------------------------------------------------------------------------------------
# Iteration


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("*/5 * * * *", "2024-01-01T00:00", ["00:05", "00:10", "00:15"]),
        ("*/5 * * * *", "2024-01-01T00:03:59.999", ["00:05", "00:10", "00:15"]),
        ("0 * * * *", "2024-01-01T00:00:01", ["01:00", "02:00", "03:00"]),
        ("15,45 9-10 * * *", "2024-01-01T09:15", ["09:45", "10:15", "10:45"]),
        ("5/20 0 * * *", "2024-01-01T00:00", ["00:05", "00:25", "00:45"]),
        ("*/20 * * * * *", "2024-01-01T00:00:00.5", ["00:00:20", "00:00:40", "00:01:00"]),
        ("* * * * * *", "2024-01-01T00:00:00", ["00:00:01", "00:00:02", "00:00:03"]),
        ("* * * * * *", "2024-01-01T00:00:00.000001", ["00:00:01", "00:00:02", "00:00:03"]),
        ("30 0 * * * *", "2024-01-01T00:00:30", ["01:00:30", "02:00:30", "03:00:30"]),
    ],
)
def test_simple_iteration(expr: str, start: str, expected: list[str]) -> None:
    got = fires(Cron(expr), start, len(expected))
    assert [f.strftime("%H:%M:%S")[: len(e)] for f, e in zip(got, expected, strict=True)] == (
        expected
    )
    assert all(f.tzinfo is UTC for f in got)
    assert all(f.date() == date(2024, 1, 1) for f in got)


def test_single_value_range_with_step_is_that_value() -> None:
    # cronsim alone reads '5-5/10' as '5/10' (5, 15, ..., 55); Vixie cron reads it as 5.
    assert fires(Cron("5-5/10 * * * *"), "2024-01-01T00:00", 2) == [
        utc("2024-01-01T00:05"),
        utc("2024-01-01T01:05"),
    ]
    mondays = fires(Cron("0 0 * * mon-MON/2"), "2024-01-01T00:00", 3)
    assert [f.date().isoformat() for f in mondays] == ["2024-01-08", "2024-01-15", "2024-01-22"]
    with pytest.raises(CronError, match="bad minute field '5-5/0'"):
        Cron("5-5/0 * * * *")


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        # Day-of-month and day-of-week both restricted: OR-ed (1st of month OR any Monday).
        ("0 0 1 * MON", "2024-01-25", ["2024-01-29", "2024-02-01", "2024-02-05"]),
        # One of them starts with '*': AND-ed, as in Vixie cron (odd days that are Mondays).
        ("0 0 */2 * MON", "2024-01-01", ["2024-01-15", "2024-01-29", "2024-02-05"]),
        ("0 0 13 * 5", "2024-09-10", ["2024-09-13", "2024-09-20", "2024-09-27"]),
        ("0 0 * * 5", "2024-09-10", ["2024-09-13", "2024-09-20", "2024-09-27"]),
        ("0 0 L * *", "2024-01-31", ["2024-02-29", "2024-03-31", "2024-04-30"]),
        ("0 0 L 2 *", "2024-03-01", ["2025-02-28", "2026-02-28", "2027-02-28"]),
        # LW: last weekday; 2024-03-31 and 2024-08-31 fall on a weekend.
        ("0 0 LW * *", "2024-03-01", ["2024-03-29", "2024-04-30", "2024-05-31"]),
        ("0 0 LW 8 *", "2024-01-01", ["2024-08-30", "2025-08-29", "2026-08-31"]),
        ("0 0 * * 5L", "2024-01-01", ["2024-01-26", "2024-02-23", "2024-03-29"]),
        ("0 0 * * FRI#3", "2024-01-01", ["2024-01-19", "2024-02-16", "2024-03-15"]),
        ("0 0 * * 0#5", "2024-01-01", ["2024-03-31", "2024-06-30", "2024-09-29"]),
        ("0 0 * * 7", "2024-01-01", ["2024-01-07", "2024-01-14", "2024-01-21"]),
        ("0 0 1 jan,jul *", "2024-01-01", ["2024-07-01", "2025-01-01", "2025-07-01"]),
        ("0 0 29 2 *", "2024-03-01", ["2028-02-29", "2032-02-29", "2036-02-29"]),
        ("0 0 0 15 * *", "2024-01-15", ["2024-02-15", "2024-03-15", "2024-04-15"]),
    ],
)
def test_day_rules(expr: str, start: str, expected: list[str]) -> None:
    got = fires(Cron(expr), start, len(expected))
    assert [f.date().isoformat() for f in got] == expected
    assert all(f.time() == datetime.min.time() for f in got)


def test_next_after_is_strictly_after_a_fire() -> None:
    cron = Cron("0 12 * * *")
    noon = utc("2024-05-05T12:00")
    assert cron.next_after(noon) == utc("2024-05-06T12:00")
    assert cron.next_after(noon - timedelta(microseconds=1)) == noon


def test_five_field_crons_ignore_the_instants_seconds() -> None:
    cron = Cron("* * * * *")
    assert cron.next_after(utc("2024-05-05T12:00:59.999999")) == utc("2024-05-05T12:01")
    assert cron.next_after(utc("2024-05-05T12:00:00")) == utc("2024-05-05T12:01")


def test_results_are_aware_utc_whatever_the_instants_zone() -> None:
    cron = Cron("0 12 * * *")
    lisbon_summer = datetime(2024, 7, 1, 12, 30, tzinfo=ZoneInfo("Europe/Lisbon"))
    fire = cron.next_after(lisbon_summer)
    # 12:30 in Lisbon (WEST) is 11:30 UTC, so noon UTC the same day is next.
    assert fire == utc("2024-07-01T12:00")
    assert fire.tzinfo is UTC


@pytest.mark.parametrize(
    "method", ["next_after", "iter_after", "last_at_or_before", "iter_at_or_before"]
)
def test_naive_instants_are_refused(method: str) -> None:
    cron = Cron("* * * * *")
    with pytest.raises(ValueError, match="needs an aware datetime") as info:
        getattr(cron, method)(datetime(2024, 1, 1))
    assert not isinstance(info.value, CronError)


def test_iter_after_is_a_lazy_ascending_generator() -> None:
    cron = Cron("* * * * * *")
    stream = cron.iter_after(utc("2024-01-01T00:00"))
    assert isinstance(stream, Generator)
    taken = list(itertools.islice(stream, 5000))
    assert taken[0] == utc("2024-01-01T00:00:01")
    assert taken[-1] == utc("2024-01-01T00:00:01") + timedelta(seconds=4999)
    assert all(a < b for a, b in itertools.pairwise(taken))


def test_iter_after_matches_repeated_next_after() -> None:
    cron = Cron("7,37 */3 * * 1-5", "America/New_York")
    start = utc("2024-03-01T00:00")
    chained = [cron.next_after(start)]
    for _ in range(199):
        chained.append(cron.next_after(chained[-1]))
    assert list(itertools.islice(cron.iter_after(start), 200)) == chained


def test_no_fire_in_range_ends_iteration_and_next_after_raises() -> None:
    cron = Cron("0 0 1 1 *")
    end = datetime(9999, 6, 1, tzinfo=UTC)
    assert list(cron.iter_after(end)) == []
    with pytest.raises(CronError, match="has no fire after"):
        cron.next_after(end)


# --------------------------------------------------------------------------------------------
# last_at_or_before


@pytest.mark.parametrize(
    ("expr", "instant", "expected"),
    [
        ("*/5 * * * *", "2024-01-01T00:07", "2024-01-01T00:05"),
        ("*/5 * * * *", "2024-01-01T00:05", "2024-01-01T00:05"),
        ("*/5 * * * *", "2024-01-01T00:05:00.5", "2024-01-01T00:05"),
        ("*/5 * * * *", "2024-01-01T00:04:59.999999", "2024-01-01T00:00"),
        ("* * * * * *", "2024-01-01T00:00:07.25", "2024-01-01T00:00:07"),
        ("0 0 L * *", "2024-03-15", "2024-02-29T00:00"),
        ("0 0 * * FRI#3", "2024-03-15T00:00", "2024-03-15T00:00"),
        ("0 0 1 1 *", "2024-01-01T00:00:00.000001", "2024-01-01T00:00"),
    ],
)
def test_last_at_or_before(expr: str, instant: str, expected: str) -> None:
    got = Cron(expr).last_at_or_before(utc(instant))
    assert got == utc(expected)
    assert got is not None
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("expr", "zone"),
    [
        ("*/7 * * * * *", "UTC"),
        ("0 9 * * MON-FRI", "UTC"),
        ("30 2 * * *", "America/New_York"),  # a fixed time through both transitions
        ("*/20 * * * *", "Europe/Lisbon"),
        ("0 0 L * *", "Asia/Kolkata"),
    ],
)
def test_iter_at_or_before_matches_repeated_last_at_or_before(expr: str, zone: str) -> None:
    cron = Cron(expr, zone)
    start = utc("2024-11-04T12:00:00.5")
    chained = [cron.last_at_or_before(start)]
    for _ in range(149):
        previous = chained[-1]
        assert previous is not None
        chained.append(cron.last_at_or_before(previous - timedelta(microseconds=1)))
    assert list(itertools.islice(cron.iter_at_or_before(start), 150)) == chained


def test_last_at_or_before_is_none_when_nothing_in_fifty_years() -> None:
    cron = Cron("0 0 29 2 *")
    assert cron.last_at_or_before(utc("2000-03-01")) == utc("2000-02-29")
    assert cron.last_at_or_before(datetime(1, 6, 1, tzinfo=UTC)) is None


# --------------------------------------------------------------------------------------------
# Time zones


def test_resolve_timezone_default_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JARARACA_DEFAULT_TIMEZONE", raising=False)
    assert resolve_timezone(None) is UTC
    monkeypatch.setenv("JARARACA_DEFAULT_TIMEZONE", "  ")
    assert resolve_timezone(None) is UTC


def test_resolve_timezone_reads_the_env_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARARACA_DEFAULT_TIMEZONE", "Europe/Lisbon")
    assert resolve_timezone(None) == ZoneInfo("Europe/Lisbon")


def test_resolve_timezone_bad_env_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JARARACA_DEFAULT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(CronError, match="JARARACA_DEFAULT_TIMEZONE") as info:
        resolve_timezone(None)
    assert "'Mars/Olympus'" in str(info.value)
    assert "use an IANA name such as 'Europe/Lisbon' or 'UTC'" in str(info.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "", "../etc/passwd", "/etc/localtime"])
def test_resolve_timezone_unknown_name(name: str) -> None:
    with pytest.raises(CronError) as info:
        resolve_timezone(name)
    assert str(info.value) == (
        f"unknown time zone {name!r}: use an IANA name such as 'Europe/Lisbon' or 'UTC'"
    )


def test_resolve_timezone_passes_tzinfo_through_and_refuses_other_types() -> None:
    offset = timezone(timedelta(hours=5, minutes=30))
    assert resolve_timezone(offset) is offset
    assert resolve_timezone("Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    with pytest.raises(CronError, match="must be an IANA name, a tzinfo or None, got int"):
        resolve_timezone(3)  # type: ignore[arg-type]


def test_cron_uses_its_own_time_zone() -> None:
    start = utc("2024-01-10T00:00")
    # 09:00 in Tokyo is 00:00 UTC: the start itself, so the next day's.
    assert Cron("0 9 * * *", "Asia/Tokyo").next_after(start) == utc("2024-01-11T00:00")
    assert Cron("0 9 * * *", "Europe/Lisbon").next_after(start) == utc("2024-01-10T09:00")
    assert Cron("0 9 * * *", "America/New_York").next_after(start) == utc("2024-01-10T14:00")
    assert Cron("0 9 * * *").next_after(start) == utc("2024-01-10T09:00")


def test_cron_env_default_is_read_once_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARARACA_DEFAULT_TIMEZONE", "America/New_York")
    cron = Cron("0 9 * * *")
    monkeypatch.setenv("JARARACA_DEFAULT_TIMEZONE", "Asia/Tokyo")
    assert cron.tz == ZoneInfo("America/New_York")
    assert cron.next_after(utc("2024-01-10T00:00")) == utc("2024-01-10T14:00")


def test_cron_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="unknown time zone 'Nowhere/City'"):
        Cron("* * * * *", "Nowhere/City")


def test_day_boundaries_are_local() -> None:
    # Midnight on the 1st in Tokyo is still the previous month in UTC.
    cron = Cron("0 0 1 * *", "Asia/Tokyo")
    assert cron.next_after(utc("2024-01-15")) == utc("2024-01-31T15:00")
    fri = Cron("0 23 * * FRI", "America/Los_Angeles")
    assert fri.next_after(utc("2024-01-01")) == utc("2024-01-06T07:00")


@pytest.mark.parametrize(
    "zone",
    [
        timezone(timedelta(hours=5, minutes=30)),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("Etc/GMT-3"),
        ZoneInfo("UTC"),
        UTC,
    ],
    ids=str,
)
def test_fixed_offset_zones_match_a_hand_computed_offset(zone: tzinfo) -> None:
    offset = datetime(2024, 1, 1, tzinfo=zone).utcoffset()
    assert offset is not None
    cron = Cron("30 2 * * *", zone)
    got = cron.next_after(utc("2024-06-01T12:00"))
    assert got == datetime(2024, 6, 2, 2, 30, tzinfo=UTC) - offset
    assert cron.last_at_or_before(got) == got


def test_equality_hash_and_repr() -> None:
    assert Cron("0 0 * * *", "UTC") == Cron("0 0 * * *", UTC)
    assert Cron(" 0 0 * * * ", "Europe/Lisbon") == Cron("0 0 * * *", ZoneInfo("Europe/Lisbon"))
    assert Cron("0 0 * * *", "Europe/Lisbon") != Cron("0 0 * * *", "Europe/Berlin")
    assert Cron("@daily") != Cron("0 0 * * *")
    assert Cron("0 0 * * *") != "0 0 * * *"
    assert len({Cron("0 0 * * *", "UTC"), Cron("0 0 * * *", UTC), Cron("@daily")}) == 2
    assert repr(Cron("*/5 * * * *", "Europe/Lisbon")) == "Cron('*/5 * * * *', tz='Europe/Lisbon')"


def test_public_attributes_are_read_only() -> None:
    cron = Cron("0 0 * * *", "Europe/Lisbon")
    assert cron.tz == ZoneInfo("Europe/Lisbon")
    with pytest.raises(AttributeError):
        cron.expr = "1 1 * * *"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# DST: Debian cron rules, written out. Times are local with their offsets.
#
# Europe/Berlin 2024: 03-31 02:00 CET -> 03:00 CEST; 10-27 03:00 CEST -> 02:00 CET.
# America/New_York 2024: 03-10 02:00 EST -> 03:00 EDT; 11-03 02:00 EDT -> 01:00 EST.
# Europe/Lisbon 2024: 03-31 01:00 WET -> 02:00 WEST; 10-27 02:00 WEST -> 01:00 WET.
# Australia/Lord_Howe 2024 (30-minute DST): 04-07 02:00 -> 01:30; 10-06 02:00 -> 02:30.


@dataclass(frozen=True)
class DstCase:
    zone: str
    expr: str
    start: str
    expected: tuple[str, ...]


DST_CASES = {
    # Spring forward: a fixed-time slot in the gap runs once, at the transition.
    "berlin-spring-fixed-slot-in-gap-runs-at-transition": DstCase(
        "Europe/Berlin",
        "30 2 * * *",
        "2024-03-30T12:00+00:00",
        ("2024-03-31T03:00+02:00", "2024-04-01T02:30+02:00"),
    ),
    "berlin-spring-two-slots-in-gap-run-once": DstCase(
        "Europe/Berlin",
        "0,30 2 * * *",
        "2024-03-30T12:00+00:00",
        ("2024-03-31T03:00+02:00", "2024-04-01T02:00+02:00", "2024-04-01T02:30+02:00"),
    ),
    "berlin-spring-slot-at-gap-end-runs-once": DstCase(
        "Europe/Berlin",
        "0 2,3 * * *",
        "2024-03-31T00:00+01:00",
        ("2024-03-31T03:00+02:00", "2024-04-01T02:00+02:00"),
    ),
    "berlin-spring-seconds-form-fixed-slot-runs-at-transition": DstCase(
        "Europe/Berlin",
        "15 30 2 * * *",
        "2024-03-30T12:00+00:00",
        ("2024-03-31T03:00:00+02:00", "2024-04-01T02:30:15+02:00"),
    ),
    "berlin-spring-hourly-skips-the-missing-hour": DstCase(
        "Europe/Berlin",
        "0 * * * *",
        "2024-03-31T00:30+01:00",
        ("2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00", "2024-03-31T04:00+02:00"),
    ),
    "berlin-spring-wildcard-minute-in-missing-hour-does-not-run": DstCase(
        "Europe/Berlin",
        "*/20 2 * * *",
        "2024-03-31T00:00+01:00",
        ("2024-04-01T02:00+02:00",),
    ),
    # Fall back: fixed-time slots in the repeated hour run once (first pass); '*'-hour jobs
    # run in each real hour.
    "berlin-autumn-fixed-slot-in-repeated-hour-runs-once": DstCase(
        "Europe/Berlin",
        "30 2 * * *",
        "2024-10-26T12:00+00:00",
        ("2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"),
    ),
    "berlin-autumn-started-in-second-pass-does-not-rerun": DstCase(
        "Europe/Berlin",
        "45 2 * * *",
        "2024-10-27T02:10+01:00",
        ("2024-10-28T02:45+01:00",),
    ),
    "berlin-autumn-hourly-runs-each-real-hour": DstCase(
        "Europe/Berlin",
        "0 * * * *",
        "2024-10-27T01:30+02:00",
        ("2024-10-27T02:00+02:00", "2024-10-27T02:00+01:00", "2024-10-27T03:00+01:00"),
    ),
    "berlin-autumn-half-past-runs-each-real-hour": DstCase(
        "Europe/Berlin",
        "30 * * * *",
        "2024-10-27T01:45+02:00",
        ("2024-10-27T02:30+02:00", "2024-10-27T02:30+01:00", "2024-10-27T03:30+01:00"),
    ),
    "berlin-autumn-wildcard-minute-runs-in-both-passes": DstCase(
        "Europe/Berlin",
        "*/30 2 * * *",
        "2024-10-27T00:00+02:00",
        (
            "2024-10-27T02:00+02:00",
            "2024-10-27T02:30+02:00",
            "2024-10-27T02:00+01:00",
            "2024-10-27T02:30+01:00",
            "2024-10-28T02:00+01:00",
        ),
    ),
    "berlin-autumn-started-in-first-pass-still-gets-second-pass": DstCase(
        "Europe/Berlin",
        "*/30 2 * * *",
        "2024-10-27T02:40+02:00",
        ("2024-10-27T02:00+01:00", "2024-10-27T02:30+01:00", "2024-10-28T02:00+01:00"),
    ),
    "berlin-autumn-seconds-form-fixed-slot-runs-once": DstCase(
        "Europe/Berlin",
        "0 30 2 * * *",
        "2024-10-26T12:00+00:00",
        ("2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"),
    ),
    "new-york-spring-fixed-slot-in-gap-runs-at-transition": DstCase(
        "America/New_York",
        "30 2 * * *",
        "2024-03-09T12:00+00:00",
        ("2024-03-10T03:00-04:00", "2024-03-11T02:30-04:00"),
    ),
    "new-york-spring-hourly-skips-the-missing-hour": DstCase(
        "America/New_York",
        "0 * * * *",
        "2024-03-10T00:30-05:00",
        ("2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"),
    ),
    "new-york-spring-half-past-skips-the-missing-hour": DstCase(
        "America/New_York",
        "30 * * * *",
        "2024-03-10T00:45-05:00",
        ("2024-03-10T01:30-05:00", "2024-03-10T03:30-04:00"),
    ),
    "new-york-autumn-fixed-slot-in-repeated-hour-runs-once": DstCase(
        "America/New_York",
        "30 1 * * *",
        "2024-11-02T12:00+00:00",
        ("2024-11-03T01:30-04:00", "2024-11-04T01:30-05:00"),
    ),
    "new-york-autumn-fixed-hours-around-repeated-hour": DstCase(
        "America/New_York",
        "0 0-2 3 11 *",
        "2024-11-02T12:00+00:00",
        ("2024-11-03T00:00-04:00", "2024-11-03T01:00-04:00", "2024-11-03T02:00-05:00"),
    ),
    "new-york-autumn-hourly-runs-each-real-hour": DstCase(
        "America/New_York",
        "0 * * * *",
        "2024-11-03T00:30-04:00",
        ("2024-11-03T01:00-04:00", "2024-11-03T01:00-05:00", "2024-11-03T02:00-05:00"),
    ),
    "new-york-autumn-half-past-runs-each-real-hour": DstCase(
        "America/New_York",
        "30 * * * *",
        "2024-11-03T00:45-04:00",
        ("2024-11-03T01:30-04:00", "2024-11-03T01:30-05:00", "2024-11-03T02:30-05:00"),
    ),
    "lisbon-spring-fixed-slot-in-gap-runs-at-transition": DstCase(
        "Europe/Lisbon",
        "30 1 * * *",
        "2024-03-30T12:00+00:00",
        ("2024-03-31T02:00+01:00", "2024-04-01T01:30+01:00"),
    ),
    "lisbon-autumn-fixed-slot-in-repeated-hour-runs-once": DstCase(
        "Europe/Lisbon",
        "30 1 * * *",
        "2024-10-26T12:00+00:00",
        ("2024-10-27T01:30+01:00", "2024-10-28T01:30+00:00"),
    ),
    "santiago-spring-missing-midnight-daily-runs-at-transition": DstCase(
        "America/Santiago",
        "@daily",
        "2024-09-07T12:00-04:00",
        ("2024-09-08T01:00-03:00", "2024-09-09T00:00-03:00"),
    ),
    "santiago-spring-missing-midnight-wildcard-does-not-run": DstCase(
        "America/Santiago",
        "*/30 0 * * *",
        "2024-09-07T12:00-04:00",
        ("2024-09-09T00:00-03:00", "2024-09-09T00:30-03:00"),
    ),
    "santiago-autumn-repeated-hour-before-midnight-runs-once": DstCase(
        "America/Santiago",
        "30 23 * * *",
        "2024-04-06T12:00-03:00",
        ("2024-04-06T23:30-03:00", "2024-04-07T23:30-04:00"),
    ),
    "lord-howe-spring-half-hour-gap-runs-at-transition": DstCase(
        "Australia/Lord_Howe",
        "15 2 * * *",
        "2024-10-05T12:00+10:30",
        ("2024-10-06T02:30+11:00", "2024-10-07T02:15+11:00"),
    ),
    "lord-howe-autumn-half-hour-repeat-fixed-runs-once": DstCase(
        "Australia/Lord_Howe",
        "45 1 * * *",
        "2024-04-06T12:00+11:00",
        ("2024-04-07T01:45+11:00", "2024-04-08T01:45+10:30"),
    ),
    "lord-howe-autumn-quarter-hours-run-each-real-time": DstCase(
        "Australia/Lord_Howe",
        "*/15 * * * *",
        "2024-04-07T01:20+11:00",
        (
            "2024-04-07T01:30+11:00",
            "2024-04-07T01:45+11:00",
            "2024-04-07T01:30+10:30",
            "2024-04-07T01:45+10:30",
            "2024-04-07T02:00+10:30",
        ),
    ),
}


@pytest.mark.parametrize("case", DST_CASES.values(), ids=DST_CASES.keys())
def test_dst_table(case: DstCase) -> None:
    cron = Cron(case.expr, case.zone)
    got = fires(cron, case.start, len(case.expected))
    assert got == [utc(e) for e in case.expected]
    # Each fire read back in the zone shows the offset the table expects (which pass it is).
    assert [f.astimezone(cron.tz).isoformat(timespec="seconds") for f in got] == [
        utc(e).isoformat(timespec="seconds") for e in case.expected
    ]
    assert [cron.last_at_or_before(f) for f in got] == got


@pytest.mark.parametrize(
    ("zone", "expr", "instant", "expected"),
    [
        # Second pass of the repeated hour: the slot already ran in the first pass.
        ("Europe/Berlin", "45 2 * * *", "2024-10-27T02:10+01:00", "2024-10-27T02:45+02:00"),
        ("Europe/Berlin", "30 2 * * *", "2024-03-31T03:00+02:00", "2024-03-31T03:00+02:00"),
        # A second before the transition (00:59:59 UTC): the gap's slot has not run yet.
        ("Europe/Berlin", "30 2 * * *", "2024-03-31T01:59:59+01:00", "2024-03-30T02:30+01:00"),
        ("Europe/Berlin", "0 * * * *", "2024-10-27T02:30+01:00", "2024-10-27T02:00+01:00"),
        ("Europe/Berlin", "0 * * * *", "2024-10-27T02:59+02:00", "2024-10-27T02:00+02:00"),
        ("America/New_York", "30 1 * * *", "2024-11-03T01:00-05:00", "2024-11-03T01:30-04:00"),
        ("America/New_York", "0 * * * *", "2024-03-10T03:59-04:00", "2024-03-10T03:00-04:00"),
    ],
)
def test_dst_last_at_or_before(zone: str, expr: str, instant: str, expected: str) -> None:
    assert Cron(expr, zone).last_at_or_before(utc(instant)) == utc(expected)


# --------------------------------------------------------------------------------------------
# Property tests: next_after in UTC against croniter and a brute-force walk; DST zones against
# a brute-force reading of the Debian rules.


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]  # plain values the field allows (day-of-week 7 folded into 0)
    specials: frozenset[tuple[str, int, int]] = frozenset()  # L / LW / nL / n#k terms


@dataclass(frozen=True)
class Spec:
    minute: Field
    hour: Field
    dom: Field
    month: Field
    dow: Field

    @property
    def text(self) -> str:
        return " ".join(f.text for f in (self.minute, self.hour, self.dom, self.month, self.dow))

    @property
    def fixed_time(self) -> bool:
        return not self.minute.text.startswith("*") and not self.hour.text.startswith("*")


MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _name(value: int, names: list[str] | None, first: int) -> st.SearchStrategy[str]:
    if names is None or value - first >= len(names):
        return st.just(str(value))
    return st.sampled_from([str(value), names[value - first].lower(), names[value - first]])


@st.composite
def _term(
    draw: st.DrawFn, lo: int, hi: int, names: list[str] | None, croniter_safe: bool
) -> tuple[str, set[int]]:
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, hi))
    step = draw(st.integers(1, hi - lo + 2))
    kinds = ["single", "range", "range-step", "start-step"]
    if croniter_safe and hi == 7:
        # Day-of-week 'a/step': croniter stops at Saturday, cronsim (like Vixie's 0-7 range)
        # goes on to 7 = Sunday.
        kinds.remove("start-step")
    kind = draw(st.sampled_from(kinds))
    if croniter_safe and kind.startswith("range") and a == b:
        kind = "single"  # croniter 7 reads 'a-a' as '*' and 'a-a/s' as '*/s'; Vixie, as 'a'
    if kind == "single":
        return draw(_name(a, names, lo)), {a}
    if kind == "range":
        return f"{draw(_name(a, names, lo))}-{draw(_name(b, names, lo))}", set(range(a, b + 1))
    if kind == "range-step":
        return f"{a}-{b}/{step}", set(range(a, b + 1, step))
    return f"{a}/{step}", set(range(a, hi + 1, step))


@st.composite
def _field(
    draw: st.DrawFn,
    lo: int,
    hi: int,
    names: list[str] | None = None,
    *,
    croniter_safe: bool,
) -> Field:
    kind = draw(st.sampled_from(["star", "star-step", "list", "list"]))

    def fold(value: int) -> int:
        return value % 7 if hi == 7 else value  # day-of-week 7 is Sunday, 0

    if kind == "star":
        return Field("*", frozenset(fold(v) for v in range(lo, hi + 1)))
    if kind == "star-step":
        step = draw(st.integers(1, hi - lo + 2))
        return Field(f"*/{step}", frozenset(fold(v) for v in range(lo, hi + 1, step)))
    terms = draw(st.lists(_term(lo, hi, names, croniter_safe), min_size=1, max_size=3))
    values = frozenset(fold(v) for _, vs in terms for v in vs)
    return Field(",".join(t for t, _ in terms), values)


@st.composite
def _special_day_field(draw: st.DrawFn, base: st.SearchStrategy[Field], dow: bool) -> Field:
    field = draw(base)
    if dow:
        n = draw(st.integers(0, 7))
        options = [(f"{n}L", ("L", n % 7, 0))]
        k = draw(st.integers(1, 5))
        options.append((f"{draw(_name(n, DAYS, 0))}#{k}", ("#", n % 7, k)))
    else:
        options = [("L", ("L", 0, 0)), ("LW", ("LW", 0, 0))]
    text, special = draw(st.sampled_from(options))
    if draw(st.booleans()) or field.text.startswith("*"):
        return Field(text, frozenset(), frozenset({special}))
    return Field(f"{field.text},{text}", field.values, frozenset({special}))


# Local hours where the DST_ZONES below change offset: 0 (Santiago), 1-3 (the others), 23.
_TRANSITION_HOURS = [0, 1, 2, 3, 23]


def _hours_near_transitions() -> st.SearchStrategy[Field]:
    picks = st.lists(st.sampled_from(_TRANSITION_HOURS), min_size=1, max_size=2, unique=True)
    return picks.map(lambda hs: Field(",".join(map(str, hs)), frozenset(hs)))


def specs(*, croniter_safe: bool, dst_hours: bool = False) -> st.SearchStrategy[Spec]:
    """5-field expressions; croniter_safe leaves out L/LW/#/nL and the forms croniter misreads.

    dst_hours makes fixed hours around DST transitions likely, so that gaps and repeated hours
    are exercised often.
    """
    safe = croniter_safe
    dom: st.SearchStrategy[Field] = _field(1, 31, croniter_safe=safe)
    dow: st.SearchStrategy[Field] = _field(0, 7, DAYS, croniter_safe=safe)
    if not croniter_safe:
        dom = st.one_of(dom, _special_day_field(dom, dow=False))
        dow = st.one_of(dow, _special_day_field(dow, dow=True))
    minute, hour = _field(0, 59, croniter_safe=safe), _field(0, 23, croniter_safe=safe)
    month = _field(1, 12, MONTHS, croniter_safe=safe)
    if dst_hours:
        hour = st.one_of(hour, _hours_near_transitions())
        # Random day fields seldom match a transition day: make every day likely too.
        every = st.builds(Field, st.just("*"), st.just(frozenset(range(1, 32))))
        dom = st.one_of(every, dom)
        month = st.one_of(st.builds(Field, st.just("*"), st.just(frozenset(range(1, 13)))), month)
        dow = st.one_of(st.builds(Field, st.just("*"), st.just(frozenset(range(7)))), dow)
    return st.builds(Spec, minute, hour, dom, month, dow)


def _last_weekday(year: int, month: int) -> int:
    day = calendar.monthrange(year, month)[1]
    while calendar.weekday(year, month, day) >= 5:
        day -= 1
    return day


def dom_special_matches(special: tuple[str, int, int], d: date) -> bool:
    if special[0] == "LW":
        return d.day == _last_weekday(d.year, d.month)
    return d.day == calendar.monthrange(d.year, d.month)[1]  # L


def dow_special_matches(special: tuple[str, int, int], d: date) -> bool:
    kind, weekday, nth = special
    if (d.weekday() + 1) % 7 != weekday:
        return False
    if kind == "#":
        return (d.day - 1) // 7 + 1 == nth
    return d.day + 7 > calendar.monthrange(d.year, d.month)[1]  # nL: the last one


def day_matches(spec: Spec, d: date) -> bool:
    dom_ok = d.day in spec.dom.values or any(dom_special_matches(s, d) for s in spec.dom.specials)
    dow_ok = (d.weekday() + 1) % 7 in spec.dow.values or any(
        dow_special_matches(s, d) for s in spec.dow.specials
    )
    if spec.dom.text.startswith("*") or spec.dow.text.startswith("*"):
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def wall_matches(spec: Spec, wall: datetime) -> bool:
    return (
        wall.minute in spec.minute.values
        and wall.hour in spec.hour.values
        and wall.month in spec.month.values
        and day_matches(spec, wall.date())
    )


def brute_next_utc(spec: Spec, instant: datetime, years: int = 40) -> datetime | None:
    """Walk days, then the minutes of a matching day: the first fire strictly after instant."""
    first = instant.replace(second=0, microsecond=0) + MINUTE
    for offset in range(366 * years):
        day = first.date() + timedelta(days=offset)
        if day.month not in spec.month.values or not day_matches(spec, day):
            continue
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        for minute in range(24 * 60):
            candidate = midnight + minute * MINUTE
            if candidate >= first and wall_matches(spec, candidate):
                return candidate
    return None


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(specs(croniter_safe=True), instants)
def test_next_after_in_utc_matches_croniter_and_brute_force(spec: Spec, instant: datetime) -> None:
    try:
        cron = Cron(spec.text)
    except CronError:
        # Rejected only when it can never fire: no listed month has the listed days.
        assert brute_next_utc(spec, instant) is None
        return
    got = cron.next_after(instant)
    assert got > instant
    assert got == brute_next_utc(spec, instant)
    # Vixie cron AND-s the day fields when either starts with '*': croniter's "cron bug" mode.
    oracle = croniter(spec.text, instant, day_or=True, implement_cron_bug=True)
    assert got == oracle.get_next(datetime)


@settings(max_examples=200, deadline=None)
@given(specs(croniter_safe=False), instants)
def test_next_after_with_l_lw_and_hash_matches_brute_force(spec: Spec, instant: datetime) -> None:
    try:
        cron = Cron(spec.text)
    except CronError:
        assert brute_next_utc(spec, instant) is None
        return
    assert cron.next_after(instant) == brute_next_utc(spec, instant)


@st.composite
def _six_field(draw: st.DrawFn) -> str:
    second = draw(_field(0, 59, croniter_safe=True)).text
    return f"{second} {draw(specs(croniter_safe=True)).text}"


@settings(max_examples=100, deadline=None)
@given(_six_field(), instants)
def test_seconds_form_matches_croniter(expr: str, instant: datetime) -> None:
    try:
        cron = Cron(expr)
    except CronError:
        return
    oracle = croniter(expr, instant, day_or=True, implement_cron_bug=True, second_at_beginning=True)
    assert cron.next_after(instant) == oracle.get_next(datetime)


DST_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Europe/Lisbon",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "America/Santiago",  # changes at midnight: some days have no 00:00
]


# Minutes from a transition: often inside the hours just around it (gap, repeated hours).
NEAR_TRANSITION = st.integers(-150, 90)


@functools.cache
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """The UTC instants (to the minute) where the zone's offset changes during the year."""
    tz = ZoneInfo(zone)
    hours = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(366 * 24)]
    found = []
    for a, b in itertools.pairwise(hours):
        if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset():
            minute = next(
                a + i * MINUTE
                for i in range(1, 61)
                if (a + i * MINUTE).astimezone(tz).utcoffset() == b.astimezone(tz).utcoffset()
            )
            found.append(minute)
    return tuple(found)


def brute_fires_in_zone(spec: Spec, tz: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """Debian rules read literally, minute by minute in real (UTC) time.

    A wildcard job fires at each real minute whose local wall time matches. A fixed-time job
    fires at the first real minute whose wall time reaches each matching wall time: a repeated
    wall time is reached once (the first pass) and a wall time in a gap is reached at the
    transition.
    """

    def wall(u: datetime) -> datetime:
        return u.astimezone(tz).replace(tzinfo=None)

    first = start.replace(second=0, microsecond=0) + MINUTE
    minutes = [first + i * MINUTE for i in range(int((end - first) / MINUTE) + 1)]
    if not spec.fixed_time:
        return [u for u in minutes if wall_matches(spec, wall(u))]
    reached = max(wall(first - i * MINUTE) for i in range(1, 4 * 60))
    out = []
    for u in minutes:
        now = wall(u)
        newly = []
        while reached < now:
            reached += MINUTE
            newly.append(reached)
        if any(wall_matches(spec, w) for w in newly):
            out.append(u)
    return out


@settings(max_examples=150, deadline=None)
@given(
    specs(croniter_safe=False, dst_hours=True),
    st.sampled_from(DST_ZONES),
    st.sampled_from([0, 1]),
    st.one_of(st.integers(-10 * 60, 8 * 60), NEAR_TRANSITION),
    st.integers(0, 59),
)
def test_dst_zones_follow_debian_rules(
    spec: Spec, zone: str, which: int, minutes_from_transition: int, second: int
) -> None:
    try:
        cron = Cron(spec.text, zone)
    except CronError:
        return
    transition = transitions(zone, 2024)[which]
    start = transition + minutes_from_transition * MINUTE + timedelta(seconds=second)
    end = transition + timedelta(hours=10)
    expected = brute_fires_in_zone(spec, cron.tz, start, end)
    got = list(itertools.takewhile(lambda f: f <= end, cron.iter_after(start)))
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(
    specs(croniter_safe=False, dst_hours=True),
    st.sampled_from([*DST_ZONES, "UTC"]),
    st.integers(0, 1),
    st.one_of(st.integers(-3 * 24 * 60, 3 * 24 * 60), NEAR_TRANSITION),
    st.integers(0, 59),
)
def test_last_at_or_before_and_next_after_round_trip(
    spec: Spec, zone: str, which: int, minutes_from_transition: int, second: int
) -> None:
    try:
        cron = Cron(spec.text, zone)
    except CronError:
        return
    transition = transitions("Europe/Berlin" if zone == "UTC" else zone, 2024)[which]
    instant = transition + minutes_from_transition * MINUTE + timedelta(seconds=second)
    after = cron.next_after(instant)
    before = cron.last_at_or_before(instant)
    assert after > instant
    assert cron.last_at_or_before(after) == after
    # Every accepted expression fires within 40 years, so there is always a previous fire.
    assert before is not None
    assert before <= instant
    # Nothing fires between the two: the next fire after `before` is `after`.
    assert cron.next_after(before) == after
