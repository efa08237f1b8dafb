"""The dead-letter queue on the real RabbitMQ: what only RabbitMQ has.

Listing, replaying, purging and the bound on both brokers are in
``tests/contract/test_broker_contract.py``; here are the dead letters RabbitMQ makes itself
(``x-death``), a replay RabbitMQ does not confirm, and replays spanning several batches.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from jararaca.brokers.base import UNROUTED, QueueSpec
from jararaca.brokers.dead_letters import DEAD_LETTERED_AT
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.brokers.rabbitmq_dead_letters import REPLAY_BATCH
from jararaca.errors import BrokerError
from jararaca.wire import ATTEMPT, DEAD_LETTER_REASON, Envelope
from tests.contract.test_broker_contract import WAIT, Inbox
from tests.services import AMQP_URL, require_rabbitmq

pytestmark = pytest.mark.integration

ORDERS = QueueSpec("handler.orders", ("orders.created",))

BrokerFactory = Callable[[], RabbitMQBroker]


@pytest.fixture
async def make_broker() -> AsyncIterator[BrokerFactory]:
    """Brokers in one fresh namespace; its topology is deleted and they are closed after."""
    require_rabbitmq()
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    made: list[RabbitMQBroker] = []

    def build() -> RabbitMQBroker:
        broker = RabbitMQBroker(AMQP_URL, namespace=namespace, prefetch=8)
        made.append(broker)
        return broker

    yield build
    for broker in made:
        # Deletes by name, declares nothing: works whatever the queues' arguments.
        await broker.delete_topology()
        await broker.close()


@pytest.fixture
async def raw() -> AsyncIterator[AbstractRobustConnection]:
    """A plain aio-pika connection: another service, or an operator."""
    require_rabbitmq()
    connection = await aio_pika.connect_robust(AMQP_URL)
    yield connection
    await connection.close()


def envelope(message_id: str, routing_key: str = "orders.created", **headers: str) -> Envelope:
    body = json.dumps({"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message", **headers})


async def test_a_message_rabbitmq_dead_lettered_itself_is_listed_and_replayed_clean(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    broker = make_broker()
    await broker.declare([ORDERS])
    await broker.publish([envelope("poison", **{ATTEMPT: "2"})])
    # x-death carries whole seconds.
    before = datetime.now(UTC).replace(microsecond=0)
    channel = await raw.channel()
    queue = await channel.get_queue(f"{broker.namespace}.handler.orders")
    message = await queue.get(timeout=WAIT)
    await message.reject(requeue=False)  # RabbitMQ dead-letters it through the queue argument
    after = datetime.now(UTC)

    [letter] = await broker.dead_letters(limit=10)
    assert letter.envelope.message_id == "poison"
    assert (letter.reason, letter.source) == ("rejected", "orders.created")
    assert letter.failed_at is not None
    assert letter.failed_at.tzinfo == UTC
    assert before <= letter.failed_at <= after
    assert "x-death" in letter.envelope.headers

    assert await broker.replay_dead_letters(["poison"]) == 1
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    await inbox.wait_for(1)
    replayed = inbox.deliveries[0].envelope
    assert (replayed.message_id, replayed.routing_key) == ("poison", "orders.created")
    assert replayed.attempt == 1
    # No trace of its death: RabbitMQ's headers went with jararaca's.
    dead_headers = {"x-death", DEAD_LETTER_REASON, DEAD_LETTERED_AT}
    assert not dead_headers & set(replayed.headers)
    assert not [key for key in replayed.headers if key.startswith(("x-first-death", "x-last-"))]
    assert await broker.dead_letters(limit=10) == []


async def test_a_dead_letter_whose_copy_is_not_confirmed_stays_in_the_queue(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    broker = make_broker()
    await broker.declare([ORDERS])
    await broker.dead_letter(envelope("lost-topic", "nobody.listens"), "unknown topic")
    await broker.dead_letter(envelope("kept"), "invalid payload")
    # Deleted by hand: the replayed copy of "lost-topic" has nowhere to go and comes back.
    channel = await raw.channel()
    await channel.queue_delete(f"{broker.namespace}.{UNROUTED.name}")
    with pytest.raises(BrokerError, match=r"did not confirm the copies of 1 \(first: lost-topic\)"):
        await broker.replay_dead_letters(["lost-topic"])
    found = await broker.dead_letters(limit=10)
    assert [letter.envelope.message_id for letter in found] == ["lost-topic", "kept"]
    assert found[0].reason == "unknown topic"
    # The failure declares the base topology again before the next publish: now it goes.
    assert await broker.replay_dead_letters(["lost-topic"]) == 1
    unrouted = Inbox()
    await broker.consume(UNROUTED, unrouted)
    await unrouted.wait_for(1)
    assert unrouted.ids == ["lost-topic"]
    assert [letter.envelope.message_id for letter in await broker.dead_letters(limit=10)] == [
        "kept"
    ]


async def test_replays_and_looks_span_several_batches_in_order(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker()
    await broker.declare([ORDERS])
    count = REPLAY_BATCH + 44
    ids = [f"m{i:03d}" for i in range(count)]
    for message_id in ids:
        await broker.dead_letter(envelope(message_id), "invalid payload")
    # One early in the first batch, one in the second, and one twice (ignored the second time).
    chosen = [ids[5], ids[REPLAY_BATCH + 10], ids[5]]
    assert await broker.replay_dead_letters(chosen) == 2
    rest = [message_id for message_id in ids if message_id not in chosen]
    found = await broker.dead_letters(limit=count)
    assert [letter.envelope.message_id for letter in found] == rest
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    await inbox.wait_for(2)
    assert inbox.ids == [ids[5], ids[REPLAY_BATCH + 10]]
    assert await broker.purge_dead_letters() == len(rest)
