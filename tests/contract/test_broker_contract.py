"""The broker contract: every test runs against the memory broker and the real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest

from jararaca.brokers.base import UNROUTED, Broker, DeadLetter, Delivery, QueueSpec
from jararaca.brokers.dead_letters import DEAD_LETTERED_AT
from jararaca.wire import ATTEMPT, DEAD_LETTER_REASON, Envelope
from tests.contract.conftest import BrokerFactory

WAIT = 10.0  # seconds: an upper bound for a message to arrive, never a sleep


def env(message_id: str, routing_key: str = "orders.created", **headers: str) -> Envelope:
    body = json.dumps({"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message", **headers})


class Inbox:
    """Collects deliveries; ``settle`` decides what to do with each (default ack).
    ``settled`` counts the deliveries whose ``settle`` returned."""

    def __init__(self, settle: Callable[[Delivery], Awaitable[None]] | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self.settled = 0
        self.changed = asyncio.Event()
        self._settle = settle

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.changed.set()
        if self._settle is None:
            await delivery.ack()
        else:
            await self._settle(delivery)
        self.settled += 1
        self.changed.set()

    @property
    def ids(self) -> list[str]:
        return [d.envelope.message_id for d in self.deliveries]

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        async def reach() -> None:
            while len(self.deliveries) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reach(), timeout)

    async def wait_settled(self, count: int, timeout: float = WAIT) -> None:
        async def reach() -> None:
            while self.settled < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reach(), timeout)


ORDERS = QueueSpec("handler.orders", ("orders.created",))


async def publish_returning(broker: Broker, envelopes: Sequence[Envelope]) -> object:
    """What ``publish`` returns at run time: its type says ``None``, and the contract pins
    that every implementation keeps to it (no list of unroutable ids any more)."""
    publish: Callable[[Sequence[Envelope]], Awaitable[object]] = broker.publish
    return await publish(envelopes)


async def test_published_message_arrives_whole(broker: Broker) -> None:
    await broker.declare([ORDERS])
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    sent = env("m1", **{"x-jararaca-attempt": "2"})
    assert await publish_returning(broker, [sent]) is None
    await inbox.wait_for(1)
    got = inbox.deliveries[0].envelope
    assert (got.message_id, got.routing_key, got.body) == (
        sent.message_id,
        sent.routing_key,
        sent.body,
    )
    assert got.headers["x-jararaca-attempt"] == "2"
    assert not inbox.deliveries[0].redelivered


async def test_unroutable_messages_wait_in_the_unrouted_queue(broker: Broker) -> None:
    await broker.declare([ORDERS])
    orders = Inbox()
    await broker.consume(ORDERS, orders)
    lost = env("m1", "nobody.listens", **{"x-jararaca-attempt": "1"})
    # Not reported by publish: the message is kept, not refused.
    assert await publish_returning(broker, [lost, env("m2")]) is None
    unrouted = Inbox()
    await broker.consume(UNROUTED, unrouted)
    await unrouted.wait_for(1)
    await orders.wait_for(1)
    assert unrouted.ids == ["m1"]
    got = unrouted.deliveries[0].envelope
    assert (got.message_id, got.routing_key, got.body) == (
        lost.message_id,
        lost.routing_key,
        lost.body,
    )
    assert got.headers["x-jararaca-attempt"] == "1"
    # The routable one went to its queue only.
    assert orders.ids == ["m2"]


async def test_a_binding_made_after_a_publish_routes_the_next_one(broker: Broker) -> None:
    # Routes worked out for a routing key must follow bindings that change afterwards.
    await broker.publish([env("before")])  # no queue yet: unrouted
    await broker.declare([ORDERS])
    orders = Inbox()
    await broker.consume(ORDERS, orders)
    await broker.publish([env("after")])
    await orders.wait_for(1)
    more = QueueSpec("handler.orders", ("orders.created", "orders.paid"))
    await broker.declare([more])
    await broker.publish([env("paid", "orders.paid")])
    await orders.wait_for(2)
    unrouted = Inbox()
    await broker.consume(UNROUTED, unrouted)
    await unrouted.wait_for(1)
    assert orders.ids == ["after", "paid"]
    assert unrouted.ids == ["before"]


async def test_messages_wait_in_a_durable_queue_for_a_later_consumer(
    make_broker: BrokerFactory,
) -> None:
    producer = make_broker("shared")
    await producer.connect()
    await producer.declare([ORDERS])
    await producer.publish([env(f"m{i}") for i in range(5)])
    await producer.close()
    consumer = make_broker("shared")
    await consumer.connect()
    inbox = Inbox()
    await consumer.consume(ORDERS, inbox)
    await inbox.wait_for(5)
    assert sorted(inbox.ids) == [f"m{i}" for i in range(5)]


async def test_competing_consumers_each_get_a_message_once(make_broker: BrokerFactory) -> None:
    one, two = make_broker("shared"), make_broker("shared")
    await one.connect()
    await two.connect()
    await one.declare([ORDERS])
    inbox_one, inbox_two = Inbox(), Inbox()
    await one.consume(ORDERS, inbox_one)
    await two.consume(ORDERS, inbox_two)
    await one.publish([env(f"m{i}") for i in range(40)])

    async def all_in() -> None:
        while len(inbox_one.ids) + len(inbox_two.ids) < 40:
            await asyncio.wait_for(
                asyncio.wait(
                    [asyncio.ensure_future(i.changed.wait()) for i in (inbox_one, inbox_two)],
                    return_when=asyncio.FIRST_COMPLETED,
                ),
                WAIT,
            )
            inbox_one.changed.clear()
            inbox_two.changed.clear()

    await all_in()
    assert sorted(inbox_one.ids + inbox_two.ids) == sorted(f"m{i}" for i in range(40))


async def test_every_queue_bound_to_a_topic_gets_its_own_copy(broker: Broker) -> None:
    audit = QueueSpec("handler.audit", ("orders.*",))
    await broker.declare([ORDERS, audit])
    orders_inbox, audit_inbox = Inbox(), Inbox()
    await broker.consume(ORDERS, orders_inbox)
    await broker.consume(audit, audit_inbox)
    await broker.publish([env("m1"), env("m2", "orders.cancelled")])
    await orders_inbox.wait_for(1)
    await audit_inbox.wait_for(2)
    assert orders_inbox.ids == ["m1"]
    assert sorted(audit_inbox.ids) == ["m1", "m2"]


async def test_broadcast_queues_give_every_consumer_a_copy(make_broker: BrokerFactory) -> None:
    spec = QueueSpec("broadcast.default", ("jararaca.broadcast.default",), broadcast=True)
    one, two = make_broker("shared"), make_broker("shared")
    await one.connect()
    await two.connect()
    await one.declare([])
    inbox_one, inbox_two = Inbox(), Inbox()
    await one.consume(spec, inbox_one)
    await two.consume(spec, inbox_two)
    await one.publish([env("fire", "jararaca.broadcast.default")])
    await inbox_one.wait_for(1)
    await inbox_two.wait_for(1)
    assert inbox_one.ids == inbox_two.ids == ["fire"]


async def test_prefetch_bounds_unsettled_deliveries(broker: Broker) -> None:
    async def hold(delivery: Delivery) -> None:
        """Leave the delivery unsettled (the test settles it)."""

    await broker.declare([ORDERS])
    held = Inbox(settle=hold)
    await broker.consume(ORDERS, held, prefetch=3)
    await broker.publish([env(f"m{i}") for i in range(10)])
    await held.wait_for(3)
    # A second consumer takes what the first may not. Once all ten are handed out, the first
    # holds exactly its prefetch: unbounded, it would have had them all before the second
    # came, and the second would never reach seven.
    rest = Inbox()
    other = await broker.consume(ORDERS, rest)
    await rest.wait_for(7)
    assert len(held.deliveries) == 3
    # Settling frees the slots: new messages reach the first consumer again.
    await other.cancel()
    for delivery in held.deliveries:
        await delivery.ack()
    await broker.publish([env(f"n{i}") for i in range(3)])
    await held.wait_for(6)
    assert sorted(held.ids[3:]) == ["n0", "n1", "n2"]


async def test_a_requeued_message_comes_back_marked_redelivered(broker: Broker) -> None:
    async def requeue_first_time(delivery: Delivery) -> None:
        if delivery.redelivered:
            await delivery.ack()
        else:
            await delivery.requeue()

    await broker.declare([ORDERS])
    inbox = Inbox(settle=requeue_first_time)
    await broker.consume(ORDERS, inbox)
    await broker.publish([env("m1")])
    await inbox.wait_for(2)
    assert inbox.ids == ["m1", "m1"]
    assert [d.redelivered for d in inbox.deliveries] == [False, True]


async def test_dead_lettered_messages_land_in_the_dead_letter_queue_with_reason(
    broker: Broker,
) -> None:
    async def reject(delivery: Delivery) -> None:
        await delivery.dead_letter("payload failed validation")

    await broker.declare([ORDERS])
    await broker.consume(ORDERS, Inbox(settle=reject))
    dead = Inbox()
    await broker.consume(broker.dead_letter_queue(), dead)
    await broker.publish([env("bad")])
    await broker.dead_letter(env("direct"), "unroutable")
    await dead.wait_for(2)
    reasons = {
        d.envelope.message_id: d.envelope.headers[DEAD_LETTER_REASON] for d in dead.deliveries
    }
    assert reasons == {"bad": "payload failed validation", "direct": "unroutable"}


async def test_exchanges_of_two_apps_never_mix(make_broker: BrokerFactory) -> None:
    one, two = make_broker("app-one"), make_broker("app-two")
    await one.connect()
    await two.connect()
    await one.declare([ORDERS])
    await two.declare([ORDERS])
    inbox_one, inbox_two = Inbox(), Inbox()
    await one.consume(ORDERS, inbox_one)
    await two.consume(ORDERS, inbox_two)
    await one.publish([env("for-one")])
    await two.publish([env("for-two")])
    await inbox_one.wait_for(1)
    await inbox_two.wait_for(1)
    assert (inbox_one.ids, inbox_two.ids) == (["for-one"], ["for-two"])


# -- the dead-letter queue: look, replay, purge, bound -------------------------------------


def to_the_millisecond(when: datetime) -> datetime:
    """Headers carry instants to the millisecond (truncated)."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


async def ids_of(letters: Awaitable[list[DeadLetter]]) -> list[str]:
    return [letter.envelope.message_id for letter in await letters]


async def test_dead_letters_show_reason_source_and_time_and_stay_in_the_queue(
    broker: Broker,
) -> None:
    async def reject(delivery: Delivery) -> None:
        await delivery.dead_letter("payload failed validation")

    await broker.declare([ORDERS])
    rejecter = Inbox(settle=reject)
    await broker.consume(ORDERS, rejecter)
    before = to_the_millisecond(datetime.now(UTC))
    await broker.publish([env("bad")])
    await rejecter.wait_settled(1)
    await broker.dead_letter(env("direct", "orders.cancelled"), "unroutable")
    after = datetime.now(UTC)

    bad, direct = await broker.dead_letters(limit=10)
    assert (bad.envelope.message_id, bad.reason, bad.source) == (
        "bad",
        "payload failed validation",
        "orders.created",
    )
    assert (direct.envelope.message_id, direct.reason, direct.source) == (
        "direct",
        "unroutable",
        "orders.cancelled",
    )
    for letter in (bad, direct):
        assert letter.failed_at is not None
        assert letter.failed_at.tzinfo == UTC
        assert before <= letter.failed_at <= after
        assert letter.envelope.body == env(letter.envelope.message_id).body
        assert letter.envelope.headers[DEAD_LETTER_REASON] == letter.reason
    assert bad.failed_at is not None and direct.failed_at is not None
    assert bad.failed_at <= direct.failed_at
    # A look removes nothing: the same again, and a consumer of the queue still gets both.
    assert await ids_of(broker.dead_letters(limit=10)) == ["bad", "direct"]
    assert await ids_of(broker.dead_letters(limit=1)) == ["bad"]
    dead = Inbox()
    await broker.consume(broker.dead_letter_queue(), dead)
    await dead.wait_for(2)
    assert sorted(dead.ids) == ["bad", "direct"]


async def test_looking_keeps_the_dead_letters_oldest_first(broker: Broker) -> None:
    await broker.declare([ORDERS])
    for i in range(5):
        await broker.dead_letter(env(f"m{i}"), f"reason {i}")
    assert await ids_of(broker.dead_letters(limit=3)) == ["m0", "m1", "m2"]
    # The first look gave the messages back where they were, not at the end.
    assert await ids_of(broker.dead_letters(limit=3)) == ["m0", "m1", "m2"]
    assert await ids_of(broker.dead_letters(limit=10)) == [f"m{i}" for i in range(5)]
    assert await broker.dead_letters(limit=0) == []
    with pytest.raises(ValueError, match="negative"):
        await broker.dead_letters(limit=-1)


async def test_replaying_one_dead_letter_redelivers_exactly_it_to_its_topic(
    broker: Broker,
) -> None:
    rejecting = True

    async def reject_at_first(delivery: Delivery) -> None:
        if rejecting:
            await delivery.dead_letter("handler failed after 3 attempt(s)")
        else:
            await delivery.ack()

    await broker.declare([ORDERS])
    inbox = Inbox(settle=reject_at_first)
    await broker.consume(ORDERS, inbox)
    await broker.publish([env("a", **{ATTEMPT: "3"})])
    await inbox.wait_settled(1)
    rejecting = False
    await broker.dead_letter(env("b", **{ATTEMPT: "2"}), "invalid payload")
    await broker.dead_letter(env("c"), "invalid payload")
    assert await ids_of(broker.dead_letters(limit=10)) == ["a", "b", "c"]

    assert await broker.replay_dead_letters(["a", "no-such-id"]) == 1
    await inbox.wait_for(2)
    replayed = inbox.deliveries[1].envelope
    assert (replayed.message_id, replayed.routing_key, replayed.body) == (
        "a",
        "orders.created",
        env("a").body,
    )
    assert replayed.attempt == 1
    assert replayed.headers[ATTEMPT] == "1"
    assert DEAD_LETTER_REASON not in replayed.headers
    assert DEAD_LETTERED_AT not in replayed.headers
    # The rest stay, in their order.
    assert await ids_of(broker.dead_letters(limit=10)) == ["b", "c"]
    # Only "a" was published: "b" and "c", replayed after it, reach the queue after it, so a
    # second copy of "a" would have arrived before them.
    assert await broker.replay_dead_letters(["b", "c"]) == 2
    await inbox.wait_for(4)
    assert inbox.ids[1] == "a"
    assert sorted(inbox.ids[2:]) == ["b", "c"]
    assert await broker.dead_letters(limit=10) == []


async def test_replaying_all_dead_letters_empties_the_queue(broker: Broker) -> None:
    await broker.declare([ORDERS])
    inbox = Inbox()
    for i in range(3):
        await broker.dead_letter(env(f"m{i}", **{ATTEMPT: "4"}), "handler failed")
    assert await broker.replay_dead_letters() == 3
    await broker.consume(ORDERS, inbox)
    await inbox.wait_for(3)
    assert sorted(inbox.ids) == ["m0", "m1", "m2"]
    assert {d.envelope.attempt for d in inbox.deliveries} == {1}
    assert all(DEAD_LETTER_REASON not in d.envelope.headers for d in inbox.deliveries)
    assert await broker.dead_letters(limit=10) == []
    assert await broker.replay_dead_letters() == 0


async def test_purging_removes_every_dead_letter_and_counts_them(broker: Broker) -> None:
    await broker.declare([ORDERS])
    for i in range(4):
        await broker.dead_letter(env(f"m{i}"), "invalid payload")
    assert await broker.purge_dead_letters() == 4
    assert await broker.dead_letters(limit=10) == []
    assert await broker.purge_dead_letters() == 0


async def test_a_full_dead_letter_queue_drops_its_oldest_and_says_so_once(
    make_broker: BrokerFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("JARARACA_DEAD_LETTER_MAX", "3")
    broker = make_broker("bounded")
    await broker.connect()
    await broker.declare([ORDERS])

    async def reject(delivery: Delivery) -> None:
        await delivery.dead_letter("invalid payload")

    rejecter = Inbox(settle=reject)
    await broker.consume(ORDERS, rejecter)
    caplog.set_level(logging.WARNING, logger="jararaca.brokers.dead_letters")

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "jararaca.brokers.dead_letters"]

    for i in range(3):
        await broker.dead_letter(env(f"m{i}"), "invalid payload")
    assert not warnings()  # full, but nothing dropped yet
    # Dead-lettered by a consumer into the full queue: m0 goes.
    await broker.publish([env("m3")])
    await rejecter.wait_settled(1)
    assert await ids_of(broker.dead_letters(limit=10)) == ["m1", "m2", "m3"]
    # Straight into the full queue: m1 goes, and the warning is not repeated.
    await broker.dead_letter(env("m4"), "invalid payload")
    assert await ids_of(broker.dead_letters(limit=10)) == ["m2", "m3", "m4"]
    [record] = warnings()
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "holds 3 messages, its limit (JARARACA_DEAD_LETTER_MAX)" in message
    assert "the oldest was dropped" in message
