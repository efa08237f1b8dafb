"""Cron expressions in words: the common forms read aloud, everything else left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jararaca.dashboard.humanize import cron_in_words, utc


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * * * *", "every second"),
        ("*/5 * * * * *", "every 5 seconds"),
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("7 * * * *", "every hour at minute 7"),
        ("@hourly", "every hour at minute 0"),
        ("0 */6 * * *", "every 6 hours at minute 0"),
        ("30 2 * * *", "every day at 02:30"),
        ("@daily", "every day at 00:00"),
        ("0 30 2 * * *", "every day at 02:30"),
        ("15 30 2 * * *", "every day at 02:30:15"),
        ("0 9 * * 1-5", "every weekday (Monday to Friday) at 09:00"),
        ("0 9 * * MON", "every Monday at 09:00"),
        ("0 9 * * 0", "every Sunday at 09:00"),
        ("0 0 1 * *", "on day 1 of every month at 00:00"),
        ("0 0 L * *", "on the last day of every month at 00:00"),
        ("0 0 1 1 *", "every year on 1 January at 00:00"),
        ("@yearly", "every year on 1 January at 00:00"),
        ("0 12 25 DEC *", "every year on 25 December at 12:00"),
    ],
)
def test_common_forms_in_words(expression: str, words: str) -> None:
    assert cron_in_words(expression) == words


@pytest.mark.parametrize(
    "expression",
    ["1,2 * * * *", "0 9-17 * * *", "0 0 * * 1#2", "0 0 L 2 *", "*/1 * * * *", "nonsense", ""],
)
def test_other_forms_are_left_to_the_expression(expression: str) -> None:
    assert cron_in_words(expression) is None


def test_utc_shows_whole_seconds_in_utc() -> None:
    assert utc(datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)) == "2024-05-01 12:00:00 UTC"
