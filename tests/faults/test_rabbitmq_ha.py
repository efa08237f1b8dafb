"""RabbitMQ high availability on the shared server: a broker URL with several hosts (a dead
one first) connects and delivers, a lost connection moves on to the next host, and
``?queue_type=quorum`` declares quorum queues whose delivery limit dead-letters poison.

Each test uses an exchange of its own and deletes every queue and exchange it declared."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest

from jararaca.brokers.base import DeadLetter, Delivery, QueueSpec
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.brokers.rabbitmq_hosts import HostRotatingConnection
from jararaca.errors import BrokerError, ConfigError
from jararaca.wire import Envelope
from tests.contract.test_broker_contract import Inbox
from tests.integration.test_rabbitmq_broker import TcpProxy
from tests.services import AMQP_URL, require_rabbitmq

ORDERS = QueueSpec("handler.orders", ("orders.created",))
DEAD_HOST = "127.0.0.1:1"  # nothing listens on port 1: refused at once
LIVE_HOST = "127.0.0.1:5672"

BrokerFactory = Callable[[str], RabbitMQBroker]


def envelope(message_id: str) -> Envelope:
    return Envelope(message_id, "orders.created", b'{"n": 1}', {})


@pytest.fixture
async def make_broker() -> AsyncIterator[BrokerFactory]:
    """Brokers in one fresh namespace; afterwards the namespace's queues and exchanges go."""
    require_rabbitmq()
    namespace = f"test-ha-{uuid.uuid4().hex[:10]}"
    made: list[RabbitMQBroker] = []

    def build(url: str) -> RabbitMQBroker:
        broker = RabbitMQBroker(url, namespace=namespace, prefetch=4, publish_timeout=2.0)
        made.append(broker)
        return broker

    yield build
    for broker in made:
        await broker.close()
    # Deleted by name with a raw client: the brokers under test may hold other queue types.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in ("handler.orders", "dead-letter", "unrouted"):
            await channel.queue_delete(f"{namespace}.{queue}", if_unused=False, if_empty=False)
        for exchange in (namespace, f"{namespace}.dlx", f"{namespace}.unrouted"):
            await channel.exchange_delete(exchange)


async def test_a_dead_first_host_is_passed_over_and_messages_flow(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker(f"amqp://guest:guest@{DEAD_HOST},{LIVE_HOST}/?exchange=ignored")
    await broker.connect()
    await broker.declare([ORDERS])
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    await broker.publish([envelope("m1"), envelope("m2")])
    await inbox.wait_for(2)
    assert inbox.ids == ["m1", "m2"]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_lost_connection_moves_on_to_the_next_host(make_broker: BrokerFactory) -> None:
    proxy = TcpProxy()
    await proxy.start()
    url = (
        f"amqp://guest:guest@127.0.0.1:{proxy.port},{LIVE_HOST}/?exchange=ignored"
        "&reconnect_interval=0.2"
    )
    broker = make_broker(url)
    try:
        await broker.declare([ORDERS])
        inbox = Inbox()
        await broker.consume(ORDERS, inbox)
        await broker.publish([envelope("before")])
        await inbox.wait_for(1)
        connection = broker._connection  # which host it is on
        assert isinstance(connection, HostRotatingConnection)
        assert connection.host_index == 0

        proxy.down()  # the first host is gone for good: only the second can take over

        async def back_on_the_second_host() -> bool:
            return connection.host_index == 1 and connection.connected.is_set()

        await eventually(back_on_the_second_host, 20, "a connection to the second host")
        # Its topology and consumer were restored there: messages flow again. A publish may
        # still meet a channel being restored; it fails fast and is retried.
        sent = 0

        async def delivered_again() -> bool:
            nonlocal sent
            sent += 1
            with contextlib.suppress(BrokerError):
                await broker.publish([envelope(f"after-{sent}")])
            with contextlib.suppress(TimeoutError):
                await inbox.wait_for(2, timeout=0.5)
            return len(inbox.deliveries) >= 2

        await eventually(delivered_again, 20, "a delivery after the reconnection")
        assert inbox.deliveries[1].envelope.message_id.startswith("after-")
        # Never back to the dead host while the second one answers.
        assert connection.host_index == 1
    finally:
        await broker.close()
        await proxy.close()


async def test_quorum_queues_dead_letter_a_message_past_its_delivery_limit(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker(f"{AMQP_URL}?queue_type=quorum&delivery_limit=2")
    await broker.declare([ORDERS])

    async def requeue(delivery: Delivery) -> None:
        await delivery.requeue()  # a message that keeps failing, as poison does

    inbox = Inbox(settle=requeue)
    await broker.consume(ORDERS, inbox)
    await broker.publish([envelope("poison")])
    # Delivered once and redelivered twice (the limit), then dead-lettered by RabbitMQ.
    await inbox.wait_for(3)
    letters: list[DeadLetter] = []

    async def dead_lettered() -> bool:
        letters[:] = await broker.dead_letters(limit=10)
        return bool(letters)

    await eventually(dead_lettered, 10, "the poison message in the dead-letter queue")
    assert [letter.envelope.message_id for letter in letters] == ["poison"]
    assert letters[0].reason == "delivery_limit"
    assert len(inbox.deliveries) == 3

    # The same app with the default (classic) queues is told what to do, in one paragraph.
    classic = make_broker(AMQP_URL)
    with pytest.raises(ConfigError) as caught:
        await classic.declare([ORDERS])
    message = str(caught.value)
    assert f"queue {broker.namespace}." in message
    assert "exists as a quorum queue" in message
    assert "keep ?queue_type=quorum" in message
