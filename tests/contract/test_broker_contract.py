"""The broker contract: every test runs against the memory broker and the real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

from jararaca.brokers.base import UNROUTED, Broker, Delivery, QueueSpec
from jararaca.wire import DEAD_LETTER_REASON, Envelope
from tests.contract.conftest import BrokerFactory

WAIT = 10.0  # seconds: an upper bound for a message to arrive, never a sleep


def env(message_id: str, routing_key: str = "orders.created", **headers: str) -> Envelope:
    body = json.dumps({"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message", **headers})


class Inbox:
    """Collects deliveries; ``settle`` decides what to do with each (default ack)."""

    def __init__(self, settle: Callable[[Delivery], Awaitable[None]] | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self.changed = asyncio.Event()
        self._settle = settle

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.changed.set()
        if self._settle is None:
            await delivery.ack()
        else:
            await self._settle(delivery)

    @property
    def ids(self) -> list[str]:
        return [d.envelope.message_id for d in self.deliveries]

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        async def reach() -> None:
            while len(self.deliveries) < count:
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
