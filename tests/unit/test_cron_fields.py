"""Tests for jararaca.cron_fields: the slots found from cronsim's field readings are the ones
CronSim walks to, and reading the fields apart fails as reading them together does."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import given, settings
from hypothesis import strategies as st

from jararaca import cron_fields
from jararaca.cron_fields import next_slot, read_fields, slots

EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "0 9 * * MON-FRI",
    "0 9 * jan-mar sun",
    "0 0 L * *",
    "0 0 LW * *",
    "0 0 1,15,L * *",
    "0 0 * * 5L",
    "0 0 * * MON#2",
    "0 0 13 * 5",
    "0 0 29 2 *",
    "1-30/7 */6 * * *",
    "*/10 * * * * *",
    "5 30 4 * * 1-5",
    "0 15,45 8,17 * * sat,sun",
    "59 59 23 31 12 *",
]
STARTS = [
    datetime(2024, 1, 1),
    datetime(2024, 2, 28, 23, 59, 59, 500_000),
    datetime(2023, 12, 31, 12, 30, 15),
]


def test_cronsim_keeps_the_fields_read_off_it() -> None:
    # If this fails, cronsim keeps its parsed fields under other names: next fires are asked of
    # CronSim itself (slow, still right) until cron_fields is updated for it.
    assert cron_fields.READABLE


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("start", STARTS)
def test_slots_forward_are_the_ones_cronsim_yields(expr: str, start: datetime) -> None:
    # Backward, slots() is cronsim's own walk.
    built = CronSim(expr, start)
    found = slots(expr, start, reverse=False)
    assert list(itertools.islice(found, 20)) == list(itertools.islice(built, 20))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["0", "*/15", "7,59"]),
    st.sampled_from(["0", "30", "*/20", "5-10"]),
    st.sampled_from(["*", "0", "3", "23", "4,17", "9-12", "*/5", "22-23"]),
    st.sampled_from(["*", "1", "29", "L", "LW", "*/10"]),
    st.sampled_from(["*", "2", "6,12"]),
    st.sampled_from(["*", "1-5", "0,6", "3", "5L", "1#2"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_slots_and_next_slot_yield_cronsims_fires(
    second: str,
    minute: str,
    hour: str,
    day_of_month: str,
    month: str,
    day_of_week: str,
    start: datetime,
) -> None:
    text = f"{second} {minute} {hour} {day_of_month} {month} {day_of_week}"
    expected = list(itertools.islice(CronSim(text, start), 5))
    assert list(itertools.islice(slots(text, start, reverse=False), 5)) == expected
    assert next_slot(text, start) == (expected[0] if expected else None)


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize(
    "start",
    # A Saturday evening and a Sunday noon: a weekday cron's next fire is days away, found by
    # asking cronsim for the next date its date fields allow rather than by walking.
    [*STARTS, datetime(2026, 11, 28, 21, 0, 0), datetime(2026, 11, 29, 12, 0, 0, 1)],
)
def test_next_slot_is_cronsims_first_fire(expr: str, start: datetime) -> None:
    assert next_slot(expr, start) == next(CronSim(expr, start), None)


def test_walks_do_not_share_their_place() -> None:
    first = slots("0 0 * * *", datetime(2024, 1, 1), reverse=False)
    second = slots("0 0 * * *", datetime(2024, 1, 1), reverse=False)
    assert next(first) == next(second) == datetime(2024, 1, 2)
    assert next(first) == datetime(2024, 1, 3)
    assert next(second) == datetime(2024, 1, 3)


def _cronsim_error(text: str) -> str | None:
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as exc:
        return str(exc)
    return None


def _fields_error(text: str) -> str | None:
    try:
        read_fields(text)
    except CronSimError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "text",
    [
        "60 * * * *",
        "* 24 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "0 0 30 2 *",
        "61 25 0 0 9",
        "* * 31 4,6 */0",
        "0 0 */0 * *",
        "0 0 * * 1#6",
    ],
)
def test_a_bad_field_fails_as_cronsim_fails(text: str) -> None:
    assert _cronsim_error(text) is not None
    assert _fields_error(text) == _cronsim_error(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="0123456789*/-,#LW", min_size=1, max_size=6), min_size=5, max_size=6)
)
def test_reading_fields_apart_fails_as_reading_them_together(fields: list[str]) -> None:
    text = " ".join(fields)
    try:
        expected = _cronsim_error(text)
    except Exception as exc:  # cronsim's rare non-CronSimError: the same must escape
        with pytest.raises(type(exc)):
            read_fields(text)
        return
    assert _fields_error(text) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["*", "1", "*/11", "13", "29", "30", "31", "L", "LW", "1,L", "28-31"]),
    st.sampled_from(["*", "2", "4,6", "2,4", "12"]),
    st.sampled_from(["*", "*/6", "5", "0,6", "1#5", "0#3", "5L", "MON#1", "1-5"]),
)
def test_the_date_probe_tells_what_a_whole_expression_probe_tells(
    day_of_month: str, month: str, day_of_week: str
) -> None:
    text = f"7 5 3 {day_of_month} {month} {day_of_week}"
    if _cronsim_error(text) is not None:
        return
    try:
        next(CronSim(text, datetime(2000, 1, 1)))
    except StopIteration:
        fires = False
    else:
        fires = True
    assert read_fields(text).date.fires is fires
