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
    st.floats(min_value=0.001, max_value=3600),
    st.integers(min_value=1, max_value=7200),
)
def test_jitter_stays_within_bounds_and_short_of_the_next_slot(
    fire: str, jitter: float, gap_seconds: int
) -> None:
    slot = NOW
    following = slot + timedelta(seconds=gap_seconds)
    offset = jitter_offset(fire, jitter, slot, following)
    assert 0 < offset <= jitter  # a fire with jitter is delayed, never run on its slot
    assert slot + timedelta(seconds=offset) < following
    assert offset == jitter_offset(fire, jitter, slot, following)  # the same for every beat


def test_jitter_spreads_the_fires_of_an_action_over_the_whole_range() -> None:
    every_minute = Cron("* * * * *")
    slots = [NOW + timedelta(minutes=m) for m in range(200)]
    offsets = [
        jitter_offset(f"report@{int(s.timestamp() * 1000)}", 20, s, every_minute.next_after(s))
        for s in slots
    ]
    assert all(0 < o < 20 for o in offsets)
    assert len(set(offsets)) == len(offsets)  # each fire its own offset, not one constant
    # Spread, not bunched: each quarter of the range gets a fair share of the 200 fires.
    quarters = [sum(1 for o in offsets if q * 5 <= o < (q + 1) * 5) for q in range(4)]
    assert min(quarters) >= 25, quarters


def test_no_jitter_means_no_offset() -> None:
    assert jitter_offset("report@0", 0, NOW, NOW + timedelta(minutes=1)) == 0.0


def test_jitter_is_cut_short_of_a_near_next_slot() -> None:
    slot = NOW
    offsets = [
        jitter_offset(f"tick@{n}", 3600, slot, slot + timedelta(seconds=10)) for n in range(50)
    ]
    assert all(0 < o < 9.0 + 1e-9 for o in offsets)  # within 90% of the 10 s gap
    assert max(offsets) > 4.5  # the 10 s gap bounds it, not a smaller constant
