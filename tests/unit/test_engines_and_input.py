"""Bad input that must fail clearly: a URL whose driver is missing, out-of-range delays and
dates, secrets in URLs, and a bad idempotency policy (refused before any backend sees it)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from jararaca import ConfigError, Message, Microservice
from jararaca.engines import make_backend, make_broker
from jararaca.redaction import redact
from jararaca.testing import TestScheduler

T0 = datetime(2031, 1, 1, tzinfo=UTC)
messages_app = Microservice(controllers=[])


class Note(Message):
    MESSAGE_TOPIC = "notes.due"

    text: str


@pytest.mark.parametrize(
    ("driver", "url", "extra"),
    [
        ("redis", "redis://127.0.0.1:6379", "jararaca[redis]"),
        ("aio_pika", "amqp://guest:secret@127.0.0.1:5672/", "jararaca[rabbitmq]"),
    ],
)
def test_a_url_whose_driver_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, driver: str, url: str, extra: str
) -> None:
    # As if the driver were not installed: importing it raises ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, driver, None)
    for name in ("jararaca.backends.redis", "jararaca.brokers.rabbitmq"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ConfigError) as caught:
        if driver == "redis":
            make_backend(url, namespace="n")
        else:
            make_broker(url)
    message = str(caught.value)
    assert f"pip install '{extra}'" in message
    assert "secret" not in message


def test_memory_urls_need_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    for driver in ("redis", "aio_pika", "aiormq"):
        monkeypatch.setitem(sys.modules, driver, None)
    assert make_backend("memory://x", namespace="n").namespace == "n"
    assert make_broker("memory://x").namespace == "jararaca"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:p%40ss@host:6379/0", "redis://:***@host:6379/0"),
        ("amqp://user:pa@ss@host:5672/?exchange=x", "amqp://user:***@host:5672/?exchange=x"),
        (
            "redis+sentinel://h:1/m?password=hunter2&db=1",
            "redis+sentinel://h:1/m?password=***&db=1",
        ),
        ("amqp://h/?exchange=x&token=abc", "amqp://h/?exchange=x&token=***"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redaction_masks_passwords_in_the_user_part_and_the_query(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("seconds", [1e12, 100 * 366 * 86400])
async def test_an_out_of_range_delay_names_the_value_and_the_limit(seconds: float) -> None:
    async with TestScheduler(messages_app, start=T0) as t:
        with pytest.raises(ConfigError) as caught:
            await Note(text="x").delay(seconds)
        assert repr(seconds) in str(caught.value)
        assert "36,500 days" in str(caught.value)
        assert await t.scheduler.backend.pending_count() == 0


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, 59),
        datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
        T0 + timedelta(days=40_000),
    ],
)
async def test_a_date_beyond_the_range_is_bad_input(when: datetime) -> None:
    async with TestScheduler(messages_app, start=T0) as t:
        with pytest.raises(ConfigError) as caught:
            await Note(text="x").schedule(when, tz="Pacific/Kiritimati")
        assert when.isoformat() in str(caught.value)
        assert await t.scheduler.backend.pending_count() == 0


async def test_a_bad_policy_is_refused_before_the_backend() -> None:
    async with TestScheduler(messages_app, start=T0) as t:
        with pytest.raises(ConfigError, match="'sometimes'"):
            await Note(text="x").delay(
                5,
                idempotency_key="k",
                time_policy="sometimes",  # type: ignore[arg-type]
            )
        assert await t.scheduler.backend.pending_count() == 0


def test_an_unknown_group_is_refused_naming_the_known_ones() -> None:
    from jararaca import ScheduledAction, Scheduler

    class Reports:
        @ScheduledAction("0 * * * *", group="reports")
        async def hourly(self) -> None: ...

    with pytest.raises(ConfigError, match=r"group\(s\) report: the app's groups are reports"):
        Scheduler(Microservice(controllers=[Reports]), groups=["report"])


class Reminder(Message):
    MESSAGE_TOPIC = "reminders.due"

    text: str


async def test_a_cancelled_delayed_message_is_never_delivered() -> None:
    from jararaca import MessageHandler, use_publisher

    got: list[str] = []

    class Reminders:
        @MessageHandler(Reminder)
        async def on_reminder(self, message: Reminder) -> None:
            got.append(message.text)

    app = Microservice(controllers=[Reminders])
    async with TestScheduler(app, start=T0) as t:
        await Reminder(text="cancelled").delay(60, idempotency_key="r-1")
        await Reminder(text="kept").delay(60, idempotency_key="r-2")
        assert await use_publisher().cancel("r-1") is True
        assert await use_publisher().cancel("r-1") is False
        await t.advance(timedelta(minutes=5))
    assert got == ["kept"]
