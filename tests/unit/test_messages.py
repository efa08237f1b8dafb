"""Messages: publish, delay, schedule, idempotency policies, handlers and the bound publisher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jararaca import (
    ConfigError,
    Message,
    MessageContext,
    MessageHandler,
    Microservice,
    PublisherNotBoundError,
    ScheduledAction,
    connect,
    use_publisher,
)
from jararaca.testing import TestScheduler

T0 = datetime(2031, 5, 6, 8, 0, 0, tzinfo=UTC)


class Ping(Message):
    MESSAGE_TOPIC = "ping.sent"
    MESSAGE_TYPE = "event"

    n: int
    text: str = ""


received: list[tuple[Ping, MessageContext]] = []
audited: list[int] = []


class Pings:
    @MessageHandler(Ping)
    async def on_ping(self, message: Ping, context: MessageContext) -> None:
        received.append((message, context))

    @MessageHandler(Ping, name="audit")
    async def audit(self, message: Ping) -> None:
        audited.append(message.n)


app = Microservice(controllers=[Pings])


@pytest.fixture(autouse=True)
def _clear() -> None:
    received.clear()
    audited.clear()


async def test_delayed_message_arrives_at_its_due_instant_with_its_context() -> None:
    async with TestScheduler(app, start=T0) as t:
        message_id = await Ping(n=1).delay(90)
        await t.advance(timedelta(seconds=89))
        assert received == []
        await t.advance(timedelta(seconds=1))
    [(message, context)] = received
    assert message == Ping(n=1)
    assert context.message_id == message_id
    assert context.topic == "ping.sent"
    assert context.due_at == T0 + timedelta(seconds=90)
    assert context.published_at == T0
    assert context.attempt == 1


async def test_every_handler_of_a_topic_gets_each_message_once() -> None:
    async with TestScheduler(app, start=T0) as t:
        await Ping(n=1).publish()
        await Ping(n=2).delay(0.5)
        await t.advance(timedelta(seconds=1))
    assert sorted(m.n for m, _ in received) == [1, 2]
    assert sorted(audited) == [1, 2]


async def test_schedule_reads_a_naive_datetime_in_the_given_zone() -> None:
    lisbon = ZoneInfo("Europe/Lisbon")  # UTC+1 in summer
    async with TestScheduler(app, start=T0) as t:
        await Ping(n=1).schedule(datetime(2031, 5, 6, 10, 0), tz=lisbon)
        await Ping(n=2).schedule(datetime(2031, 5, 6, 8, 30))  # naive, no tz: UTC
        await Ping(n=3).schedule(datetime(2031, 5, 6, 8, 45, tzinfo=ZoneInfo("UTC")))
        await t.advance(timedelta(hours=2))
    assert [(m.n, c.due_at) for m, c in received] == [
        (2, datetime(2031, 5, 6, 8, 30, tzinfo=UTC)),
        (3, datetime(2031, 5, 6, 8, 45, tzinfo=UTC)),
        (1, datetime(2031, 5, 6, 9, 0, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("payload_policy", "time_policy", "second_delay", "expected_text", "expected_delay"),
    [
        ("ignore", "replace", 60, "first", 60),
        ("replace", "replace", 60, "second", 60),
        ("ignore", "greater", 10, "first", 30),
        ("ignore", "greater", 60, "first", 60),
        ("replace", "lesser", 10, "second", 10),
        ("replace", "lesser", 60, "second", 30),
    ],
)
async def test_the_six_idempotency_behaviours(
    payload_policy: str,
    time_policy: str,
    second_delay: int,
    expected_text: str,
    expected_delay: int,
) -> None:
    async with TestScheduler(app, start=T0) as t:
        await Ping(n=1, text="first").delay(30, idempotency_key="k")
        await Ping(n=1, text="second").delay(
            second_delay,
            idempotency_key="k",
            payload_policy=payload_policy,  # type: ignore[arg-type]
            time_policy=time_policy,  # type: ignore[arg-type]
        )
        await t.advance(timedelta(minutes=5))
    assert [(m.text, c.due_at) for m, c in received] == [
        (expected_text, T0 + timedelta(seconds=expected_delay))
    ]


async def test_without_a_key_two_delays_deliver_twice() -> None:
    async with TestScheduler(app, start=T0) as t:
        await Ping(n=1).delay(5)
        await Ping(n=1).delay(5)
        await t.advance(timedelta(seconds=5))
    assert [m.n for m, _ in received] == [1, 1]


async def test_a_key_is_free_again_once_its_message_was_delivered() -> None:
    async with TestScheduler(app, start=T0) as t:
        await Ping(n=1).delay(5, idempotency_key="k")
        await t.advance(timedelta(seconds=5))
        await Ping(n=2).delay(5, idempotency_key="k")
        await t.advance(timedelta(seconds=5))
    assert [m.n for m, _ in received] == [1, 2]


async def test_use_publisher_delay_and_schedule() -> None:
    async with TestScheduler(app, start=T0) as t:
        publisher = use_publisher()
        await publisher.delay(Ping(n=1), 10)
        await publisher.schedule(Ping(n=2), datetime(2031, 5, 6, 9, 30), ZoneInfo("Europe/Lisbon"))
        await publisher.delay_many([(Ping(n=10 + i), 20) for i in range(5)])
        await t.advance(timedelta(hours=1))
    assert [m.n for m, _ in received] == [1, 10, 11, 12, 13, 14, 2]


class Chain:
    @ScheduledAction("* * * * *")
    async def kick(self) -> None:
        await Ping(n=99).delay(30)  # the runtime binds the publisher inside actions


async def test_actions_can_enqueue_messages_without_connect() -> None:
    chain_app = Microservice(controllers=[Chain, Pings])
    async with TestScheduler(chain_app, start=T0) as t:
        await t.advance(timedelta(seconds=90))
    assert [(m.n, c.due_at) for m, c in received] == [(99, T0 + timedelta(seconds=90))]


async def test_use_publisher_without_binding_names_the_fix() -> None:
    with pytest.raises(PublisherNotBoundError, match=r"async with connect\("):
        use_publisher()
    with pytest.raises(PublisherNotBoundError):
        await Ping(n=1).delay(1)


async def test_connect_memory_shares_the_store_with_an_embedded_scheduler() -> None:
    from jararaca.scheduler.scheduler import Scheduler

    scheduler = Scheduler(app)
    async with connect(broker_url="memory://", backend_url="memory://"):
        await Ping(n=7).delay(60)
    assert await scheduler.backend.pending_count() == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"seconds": -1}, "-1"),
        ({"seconds": float("nan")}, "nan"),
        ({"seconds": 1, "payload_policy": "merge"}, "'merge'"),
        ({"seconds": 1, "time_policy": "later"}, "'later'"),
        ({"seconds": 1, "idempotency_key": ""}, "idempotency_key"),
    ],
)
async def test_bad_delay_arguments_are_refused_naming_the_value(
    kwargs: dict[str, object], fragment: str
) -> None:
    async with TestScheduler(app, start=T0) as t:
        with pytest.raises(ConfigError, match=fragment):
            await Ping(n=1).delay(**kwargs)  # type: ignore[arg-type]
        assert await t.scheduler.backend.pending_count() == 0


def test_the_body_on_the_wire_is_exactly_the_model_json() -> None:
    from jararaca.messagebus.publisher import message_envelope

    envelope = message_envelope(Ping(n=3, text="é"), now=T0)
    assert envelope.body == Ping(n=3, text="é").model_dump_json().encode()
    assert envelope.routing_key == "ping.sent"
    assert envelope.headers["x-jararaca-topic"] == "ping.sent"


def test_bad_topics_are_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigError, match=r"'orders\.\*'"):

        class Wild(Message):
            MESSAGE_TOPIC = "orders.*"

    with pytest.raises(ConfigError, match="MESSAGE_TYPE"):

        class Kind(Message):
            MESSAGE_TOPIC = "a.b"
            MESSAGE_TYPE = "job"  # type: ignore[assignment]
