"""Pure planning: catch-up policies, windows, the cap, first fires and jitter bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jararaca.cron import Cron
from jararaca.scheduler.planning import CATCH_UP_CAP, first_fires, jitter_offset, missed_fires

EVERY_10_MIN = Cron("*/10 * * * *")
NOW = datetime(2031, 1, 1, 12, 5, tzinfo=UTC)
LAST = datetime(2031, 1, 1, 11, 0, tzinfo=UTC)


def at(hour: int, minute: int) -> datetime:
    return datetime(2031, 1, 1, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "window", "expected"),
    [
        ("none", None, []),
        ("latest", None, [at(12, 0)]),
        ("all", None, [at(11, m) for m in (10, 20, 30, 40, 50)] + [at(12, 0)]),
        ("all", 25 * 60, [at(11, 40), at(11, 50), at(12, 0)]),
        ("latest", 60, []),  # the latest slot is 5 minutes old: outside a 1-minute window
    ],
)
def test_missed_fires(policy: str, window: float | None, expected: list[datetime]) -> None:
    got = missed_fires(EVERY_10_MIN, after=LAST, now=NOW, policy=policy, window=window)  # type: ignore[arg-type]
    assert got == expected


def test_nothing_is_missed_when_the_last_fire_is_the_latest_slot() -> None:
    assert missed_fires(EVERY_10_MIN, after=at(12, 0), now=NOW, policy="all", window=None) == []


def test_catch_up_all_keeps_the_most_recent_hundred() -> None:
    every_minute = Cron("* * * * *")
    got = missed_fires(every_minute, after=at(0, 0), now=NOW, policy="all", window=None)
    assert len(got) == CATCH_UP_CAP
    assert got[-1] == at(12, 5)
    assert got == sorted(got)


def test_first_deploy_waits_for_the_next_slot() -> None:
    missed, upcoming = first_fires(EVERY_10_MIN, last_fire=None, now=NOW, policy="all", window=None)
    assert missed == []
    assert upcoming == at(12, 10)


def test_a_slot_exactly_now_is_not_run_immediately_on_first_deploy() -> None:
    missed, upcoming = first_fires(
        EVERY_10_MIN, last_fire=None, now=at(12, 0), policy="all", window=None
    )
    assert (missed, upcoming) == ([], at(12, 10))


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=30),
    st.floats(min_value=0, max_value=3600),
    st.integers(min_value=1, max_value=7200),
)
def test_jitter_stays_within_bounds_and_short_of_the_next_slot(
    fire: str, jitter: float, gap_seconds: int
) -> None:
    slot = NOW
    following = slot + timedelta(seconds=gap_seconds)
    offset = jitter_offset(fire, jitter, slot, following)
    assert 0 <= offset <= jitter
    assert slot + timedelta(seconds=offset) < following
    assert offset == jitter_offset(fire, jitter, slot, following)  # the same for every beat
