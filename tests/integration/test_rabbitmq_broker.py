"""The RabbitMQ broker against the real server: what it leaves on the wire, and its faults.

The behaviour shared with the memory broker is in ``tests/contract``; these tests look at
what only RabbitMQ has (durability, arguments, properties, other AMQP clients, reconnection).
Each test works in a namespace of its own and deletes its exchanges and queues afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import ChannelClosed

from jararaca import settings
from jararaca.brokers.base import UNROUTED, Broker, Consumer, Delivery, QueueSpec
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.brokers.rabbitmq_consume import RabbitMQConsumer, RabbitMQDelivery
from jararaca.brokers.rabbitmq_messages import fallback_message_id, header_text
from jararaca.errors import BrokerError, CredentialsError
from jararaca.wire import DEAD_LETTER_REASON, Envelope
from tests.contract.test_broker_contract import Inbox
from tests.services import AMQP_URL, require_rabbitmq

pytestmark = pytest.mark.integration

WAIT = 10.0  # seconds: an upper bound for something to happen, never a sleep
ORDERS = QueueSpec("handler.orders", ("orders.created",))

BrokerFactory = Callable[..., RabbitMQBroker]


def _satisfies_the_protocols(broker: RabbitMQBroker, consumer: RabbitMQConsumer) -> None:
    """Never called: mypy checks that the classes satisfy the protocols structurally."""
    _: tuple[Broker, Consumer, type[Delivery]] = (broker, consumer, RabbitMQDelivery)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    async def sleep_until(
        self, when: datetime, wake: asyncio.Event | None = None, *, precise: bool = False
    ) -> None:
        raise AssertionError("the broker never sleeps")


@pytest.fixture
async def make_broker() -> AsyncIterator[BrokerFactory]:
    """Builds brokers in one fresh namespace; deletes its topology and closes them after."""
    require_rabbitmq()
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    made: list[RabbitMQBroker] = []

    def build(url: str = AMQP_URL, prefetch: int = 8, **options: Any) -> RabbitMQBroker:
        broker = RabbitMQBroker(url, namespace=namespace, prefetch=prefetch, **options)
        made.append(broker)
        return broker

    yield build
    cleaner = RabbitMQBroker(AMQP_URL, namespace=namespace, prefetch=1)
    for broker in made:
        await broker.close()
    # A fresh broker (the ones under test may point at a proxy that is gone by now).
    await cleaner.declare([ORDERS])
    await cleaner.delete_topology()
    await cleaner.close()


@pytest.fixture
async def raw() -> AsyncIterator[AbstractRobustConnection]:
    """A plain aio-pika connection: how another service, or an operator, sees RabbitMQ."""
    require_rabbitmq()
    connection = await aio_pika.connect_robust(AMQP_URL)
    yield connection
    await connection.close()


async def hold(delivery: Delivery) -> None:
    """Leave the delivery unsettled (the test settles it)."""


async def consume_orders(
    broker: RabbitMQBroker,
    published: int,
    settle: Callable[[Delivery], Awaitable[None]] | None = None,
) -> Inbox:
    """Consume ORDERS into an inbox (which settles as ``settle`` says, acks by default), then
    publish m0, m1, ... to it."""
    await broker.declare([ORDERS])
    inbox = Inbox(settle=settle)
    await broker.consume(ORDERS, inbox)
    await broker.publish([envelope(f"m{i}") for i in range(published)])
    return inbox


def envelope(message_id: str, routing_key: str = "orders.created") -> Envelope:
    body = json.dumps({"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message"})


async def test_queues_are_durable_and_dead_letter_to_the_app_dlx(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    ns = broker.namespace

    async def accepted(
        declare: Callable[[aio_pika.abc.AbstractChannel], Awaitable[object]],
    ) -> bool:
        # A declaration that differs from what exists closes the channel (406), so each check
        # gets a channel of its own.
        channel = await raw.channel()
        try:
            await declare(channel)
        except ChannelClosed:
            return False
        await channel.close()
        return True

    dlx_args: dict[str, Any] = {"x-dead-letter-exchange": f"{ns}.dlx"}
    queue = f"{ns}.handler.orders"
    # Passive: the queue exists under the documented name.
    assert await accepted(lambda ch: ch.declare_queue(queue, passive=True))
    # Same settings are accepted, any other durability or arguments are refused: so the queue
    # is durable and carries exactly the dead-letter exchange argument.
    assert await accepted(lambda ch: ch.declare_queue(queue, durable=True, arguments=dlx_args))
    assert not await accepted(lambda ch: ch.declare_queue(queue, durable=False, arguments=dlx_args))
    assert not await accepted(lambda ch: ch.declare_queue(queue, durable=True))
    # The app exchange is a durable topic exchange, the dead-letter exchange a durable fanout.
    topic, fanout = aio_pika.ExchangeType.TOPIC, aio_pika.ExchangeType.FANOUT
    alternate: dict[str, Any] = {"alternate-exchange": f"{ns}.unrouted"}
    assert await accepted(
        lambda ch: ch.declare_exchange(ns, topic, durable=True, arguments=alternate)
    )
    assert not await accepted(
        lambda ch: ch.declare_exchange(ns, topic, durable=False, arguments=alternate)
    )
    assert await accepted(lambda ch: ch.declare_exchange(f"{ns}.dlx", fanout, durable=True))
    # The dead-letter queue is durable, has no dead-letter exchange of its own, and is bounded:
    # past JARARACA_DEAD_LETTER_MAX messages it drops the oldest.
    dead = f"{ns}.dead-letter"
    bound: dict[str, Any] = {"x-max-length": settings.dead_letter_max(), "x-overflow": "drop-head"}
    assert await accepted(lambda ch: ch.declare_queue(dead, durable=True, arguments=bound))
    assert not await accepted(lambda ch: ch.declare_queue(dead, durable=True))


async def test_declare_is_idempotent(make_broker: BrokerFactory) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    await broker.declare([ORDERS, QueueSpec("handler.orders", ("orders.*",))])
    other = make_broker()
    await other.declare([ORDERS])
    # The queue now has both bindings: neither message goes to the unrouted queue.
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    await broker.publish([envelope("a", "orders.created"), envelope("b", "orders.x")])
    await inbox.wait_for(2)
    assert sorted(inbox.ids) == ["a", "b"]


async def test_published_messages_are_persistent_json_with_id_and_timestamp(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    broker = make_broker(clock=FixedClock(now))
    await broker.declare([ORDERS])
    sent = Envelope("m-1", "orders.created", b'{"sku":"A1"}', {"x-jararaca-attempt": "3"})
    await broker.publish([sent])
    channel = await raw.channel()
    queue = await channel.get_queue(f"{broker.namespace}.handler.orders")
    message = await queue.get(timeout=WAIT)
    await message.ack()
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.message_id == "m-1"
    assert message.timestamp is not None
    assert message.timestamp.replace(tzinfo=message.timestamp.tzinfo or UTC) == now
    assert message.headers == {"x-jararaca-attempt": "3"}
    assert message.body == b'{"sku":"A1"}'


async def test_plain_json_from_any_amqp_client_reaches_the_queue_of_its_topic(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    inbox = Inbox()
    await broker.consume(ORDERS, inbox)
    channel = await raw.channel()
    exchange = await channel.get_exchange(broker.namespace)
    # No message id, content type or headers: only a JSON body and the routing key.
    await exchange.publish(aio_pika.Message(b'{"sku": "A1", "qty": 2}'), "orders.created")
    await inbox.wait_for(1)
    got = inbox.deliveries[0].envelope
    assert got.body == b'{"sku": "A1", "qty": 2}'
    assert got.routing_key == "orders.created"
    assert got.message_id


def test_messages_without_id_get_a_fresh_one_each() -> None:
    # Pure: aio-pika always sets a message id, so no client at hand can omit it. Two identical
    # events without ids must not look like one message redelivered.
    first = fallback_message_id()
    assert first.startswith("amqp-")
    assert first != fallback_message_id()
    assert header_text(b"x") == "x"
    assert header_text(3) == "3"
    assert header_text(True) == "true"
    assert header_text([{"queue": b"q", "count": 1}]) == '[{"queue":"q","count":1}]'


async def test_prefetch_from_the_constructor_bounds_unsettled_deliveries(
    make_broker: BrokerFactory,
) -> None:
    require_rabbitmq()
    broker = make_broker(prefetch=4)
    inbox = await consume_orders(broker, 10, settle=hold)
    await inbox.wait_for(4)
    # A second consumer (prefetch of its own) takes what the first may not: once it has the
    # other six, the first holds exactly the constructor's prefetch.
    rest = Inbox()
    other = await broker.consume(ORDERS, rest, prefetch=10)
    await rest.wait_for(6)
    assert len(inbox.deliveries) == 4
    await other.cancel()
    await inbox.deliveries[0].ack()
    await broker.publish([envelope("m10")])
    await inbox.wait_for(5)
    assert inbox.ids[4] == "m10"
    for delivery in inbox.deliveries[1:]:
        await delivery.ack()


async def test_a_message_rejected_by_another_client_lands_in_the_dead_letter_queue(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    await broker.publish([envelope("poison")])
    channel = await raw.channel()
    queue = await channel.get_queue(f"{broker.namespace}.handler.orders")
    message = await queue.get(timeout=WAIT)
    await message.reject(requeue=False)  # RabbitMQ's own dead-lettering, via the queue argument
    dead = Inbox()
    await broker.consume(broker.dead_letter_queue(), dead)
    await dead.wait_for(1)
    got = dead.deliveries[0].envelope
    assert (got.message_id, got.routing_key) == ("poison", "orders.created")
    assert "x-death" in got.headers


async def test_dead_letter_keeps_the_message_and_adds_the_reason(
    make_broker: BrokerFactory,
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])

    async def reject(delivery: Delivery) -> None:
        await delivery.dead_letter("bad payload")

    await broker.consume(ORDERS, Inbox(settle=reject))
    await broker.publish([Envelope("x", "orders.created", b"{}", {"x-jararaca-attempt": "2"})])
    dead = Inbox()
    await broker.consume(broker.dead_letter_queue(), dead)
    await dead.wait_for(1)
    got = dead.deliveries[0].envelope
    assert got.headers[DEAD_LETTER_REASON] == "bad payload"
    assert got.headers["x-jararaca-attempt"] == "2"
    assert (got.message_id, got.routing_key, got.body) == ("x", "orders.created", b"{}")


async def test_a_dead_letter_queue_declared_without_the_bound_gives_a_clear_error(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker(dead_letter_max=50)
    dead = f"{broker.namespace}.dead-letter"
    # As a jararaca without the bound declared it: RabbitMQ cannot add arguments to it.
    channel = await raw.channel()
    await channel.declare_queue(dead, durable=True)
    try:
        with pytest.raises(BrokerError) as caught:
            await broker.declare([ORDERS])
        message = str(caught.value)
        assert f"dead-letter queue {dead}:" in message
        assert "x-max-length=50 (JARARACA_DEAD_LETTER_MAX) and x-overflow=drop-head" in message
        assert "inequivalent arg 'x-max-length'" in message  # what RabbitMQ said
        assert f"Delete the queue (rabbitmqctl delete_queue {dead};" in message
        # Ours alone: neither aio-pika's exception nor its traceback comes along.
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        # Whatever comes first after start-up says the same.
        for operation in (
            broker.publish([envelope("m1")]),
            broker.dead_letters(limit=10),
            broker.consume(broker.dead_letter_queue(), Inbox()),
        ):
            with pytest.raises(BrokerError, match=r"x-max-length=50 \(JARARACA_DEAD_LETTER_MAX\)"):
                await operation
    finally:
        cleanup = await raw.channel()
        await cleanup.queue_delete(dead)


async def test_settling_twice_is_an_error(make_broker: BrokerFactory) -> None:
    require_rabbitmq()
    broker = make_broker()
    inbox = await consume_orders(broker, 1)
    await inbox.wait_for(1)
    with pytest.raises(BrokerError, match="already settled"):
        await inbox.deliveries[0].ack()


async def test_deliveries_held_when_the_consumer_is_cancelled_can_still_be_acked(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    inbox = Inbox(settle=hold)
    consumer = await broker.consume(ORDERS, inbox)
    await broker.publish([envelope("m1")])
    await inbox.wait_for(1)
    await consumer.cancel()  # e.g. a worker draining on SIGTERM
    await inbox.deliveries[0].ack()  # the run finished after the cancel
    channel = await raw.channel()
    queue = await channel.declare_queue(f"{broker.namespace}.handler.orders", passive=True)
    # Acked for good, not requeued by a channel closed too early.
    assert queue.declaration_result.message_count == 0
    assert queue.declaration_result.consumer_count == 0


async def test_acks_sent_together_never_settle_a_delivery_still_in_progress(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    """Acks of one loop turn go out as one ``multiple`` ack where they can (see
    brokers.rabbitmq_acks): RabbitMQ must see exactly the deliveries that were acked."""
    require_rabbitmq()
    broker = make_broker(prefetch=10)
    inbox = await consume_orders(broker, 10, settle=hold)
    await inbox.wait_for(10)
    held = {d.envelope.message_id: d for d in inbox.deliveries}
    # m1-m3 behind m0 (still running), then m4 requeued, then m0 with m5-m8: m9 runs on.
    await asyncio.gather(*(held[f"m{i}"].ack() for i in (1, 2, 3)))
    await held["m4"].requeue()
    await inbox.wait_for(11)  # m4 again, held
    await asyncio.gather(*(held[f"m{i}"].ack() for i in (0, 5, 6, 7, 8)))
    await broker.close()  # the channel closes: what is unacked goes back to the queue
    channel = await raw.channel()
    queue = await channel.declare_queue(f"{broker.namespace}.handler.orders", passive=True)
    back = []
    while (message := await queue.get(fail=False)) is not None:
        back.append(message.message_id or "")
        await message.ack()
    assert sorted(back) == ["m4", "m9"]


async def test_a_consumer_whose_queue_is_deleted_declares_it_again_and_goes_on(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    """RabbitMQ cancels the consumers of a deleted queue (so it does when a quorum queue's
    leader moves): the consumer declares and binds its queue again and consumes it again."""
    require_rabbitmq()
    broker = make_broker()
    inbox = await consume_orders(broker, 1)
    await inbox.wait_for(1)
    name = f"{broker.namespace}.handler.orders"
    deleting = await raw.channel()
    await deleting.queue_delete(name)  # by hand, by mistake

    async def consumed_again() -> bool:
        channel = await raw.channel()  # a passive declare of a missing queue closes it
        try:
            queue = await channel.declare_queue(name, passive=True)
        except ChannelClosed:
            return False
        await channel.close()
        return queue.declaration_result.consumer_count == 1

    deadline = time.monotonic() + WAIT
    while not await consumed_again():
        assert time.monotonic() < deadline, "the consumer did not come back"
        await asyncio.sleep(0.05)
    await broker.publish([envelope("m1")])
    await inbox.wait_for(2)
    assert inbox.ids == ["m0", "m1"]


async def test_close_is_idempotent_and_safe_before_connect(make_broker: BrokerFactory) -> None:
    require_rabbitmq()
    never = make_broker()
    await never.close()
    broker = make_broker()
    await broker.connect()
    await broker.close()
    await broker.close()


async def test_a_wrong_password_gives_a_credentials_error_without_the_password(
    make_broker: BrokerFactory,
) -> None:
    require_rabbitmq()
    secret = "Wr0ng-Secret-42"
    broker = make_broker(AMQP_URL.replace("guest:guest@", f"guest:{secret}@"))
    with pytest.raises(CredentialsError) as caught:
        await broker.connect()
    assert secret not in str(caught.value)
    assert "***" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_an_unreachable_server_gives_a_broker_error(make_broker: BrokerFactory) -> None:
    require_rabbitmq()
    broker = make_broker("amqp://guest:guest@127.0.0.1:1/?exchange=app")
    with pytest.raises(BrokerError, match=r"cannot connect to RabbitMQ at amqp://guest:\*\*\*@"):
        await broker.connect()


async def test_delete_topology_removes_what_the_app_declared(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    await broker.delete_topology()
    for name in (f"{broker.namespace}.handler.orders", f"{broker.namespace}.dead-letter"):
        channel = await raw.channel()
        with pytest.raises(ChannelClosed):
            await channel.declare_queue(name, passive=True)
    channel = await raw.channel()
    with pytest.raises(ChannelClosed):
        await channel.declare_exchange(broker.namespace, passive=True)


class TcpProxy:
    """Forwards connections to RabbitMQ and can cut them all, as a network failure would."""

    def __init__(self, port: int = 5672) -> None:
        self._target = port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._down = asyncio.Event()
        self._refused = 0
        self._refusal = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down.is_set():
            writer.transport.abort()  # RabbitMQ is "down": refuse the connection
            self._refused += 1
            self._refusal.set()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def down(self) -> None:
        """Cut every connection and refuse new ones until :meth:`up`."""
        self._down.set()
        self.cut()

    def up(self) -> None:
        self._down.clear()

    async def refused(self, count: int, timeout: float = WAIT) -> None:
        """Wait until ``count`` connections were refused since the proxy started."""

        async def reach() -> None:
            while self._refused < count:
                self._refusal.clear()
                await self._refusal.wait()

        await asyncio.wait_for(reach(), timeout)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_consumers_and_topology_come_back_after_the_connection_drops(
    make_broker: BrokerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    require_rabbitmq()
    proxy = TcpProxy()
    await proxy.start()
    # reconnect_interval is aio-pika's, passed through the URL like any other option.
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?exchange=ignored&reconnect_interval=0.2"
    broker = make_broker(url, publish_timeout=1.0)
    try:
        await broker.declare([ORDERS])
        inbox = Inbox(settle=hold)
        await broker.consume(ORDERS, inbox)
        fanout = QueueSpec("broadcast.default", ("jararaca.broadcast.default",), broadcast=True)
        copies = Inbox()
        await broker.consume(fanout, copies)
        await broker.publish([envelope("m1")])
        await inbox.wait_for(1)

        proxy.down()
        # While RabbitMQ is unreachable, publishing fails (after publish_timeout at most)
        # with an error the caller can retry on; it never hangs.
        with pytest.raises(BrokerError):
            await broker.publish([envelope("lost")])
        await proxy.refused(3)  # a few failed reconnection attempts
        proxy.up()
        # RabbitMQ requeued the unacked m1; the restored consumer gets it again.
        await inbox.wait_for(2, timeout=30)
        first, again = inbox.deliveries[:2]
        assert (again.envelope.message_id, again.redelivered) == ("m1", True)
        with caplog.at_level(logging.WARNING, logger="jararaca.brokers.rabbitmq_consume"):
            await first.ack()  # its channel died: logged, not raised
        assert "will deliver it again" in caplog.text
        await again.ack()

        # The exclusive broadcast queue died with the connection and was declared again.
        # Until it is back, a broadcast goes to the unrouted queue: publish until one arrives.
        deadline = time.monotonic() + 30
        attempt = 0
        while not copies.deliveries:
            assert time.monotonic() < deadline, "the broadcast queue did not come back"
            attempt += 1
            await _publish_soon(broker, envelope(f"b{attempt}", "jararaca.broadcast.default"))
            with contextlib.suppress(TimeoutError):
                await copies.wait_for(1, timeout=0.3)
        await broker.publish([envelope("m2")])
        await inbox.wait_for(3)
        assert inbox.deliveries[2].envelope.message_id == "m2"
        await inbox.deliveries[2].ack()
    finally:
        await broker.close()  # before the proxy goes, so the close is a clean one
        await proxy.close()


class Heard:
    """A connection listener that records what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, connected: bool, reason: str) -> None:
        self.calls.append((connected, reason))
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        async def reach() -> None:
            while len(self.calls) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reach(), timeout)


async def test_connection_listeners_hear_of_the_loss_and_the_recovery_once(
    make_broker: BrokerFactory,
) -> None:
    require_rabbitmq()
    proxy = TcpProxy()
    await proxy.start()
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1"
    broker = make_broker(url, publish_timeout=1.0)

    def faulty(connected: bool, reason: str) -> None:
        raise RuntimeError("a listener that fails")

    one, two = Heard(), Heard()
    for listener in (faulty, one, two):
        broker.add_connection_listener(listener)
    try:
        await broker.declare([ORDERS])
        proxy.down()
        # aio-pika reports a closed connection after each failed reconnection attempt too;
        # the listeners hear of the loss once all the same.
        await proxy.refused(3)
        await one.wait_for(1)
        proxy.up()
        await one.wait_for(2, timeout=30)
        await two.wait_for(2)
        for heard in (one, two):
            [(lost, reason), back] = heard.calls
            assert not lost
            assert reason.startswith("lost the connection to RabbitMQ at amqp://guest:***@")
            assert back == (True, "")
        # Back means usable: the restored channels publish and consume again.
        inbox = Inbox()
        await broker.consume(ORDERS, inbox)
        await broker.publish([envelope("after")])
        await inbox.wait_for(1)
        await broker.close()
        # close() waits for aio-pika's close callbacks: a deliberate close is no loss.
        assert len(one.calls) == len(two.calls) == 2
    finally:
        await broker.close()
        await proxy.close()


async def test_a_message_no_queue_takes_fails_the_publish_until_the_unrouted_queue_is_back(
    make_broker: BrokerFactory, raw: AbstractRobustConnection
) -> None:
    require_rabbitmq()
    broker = make_broker()
    await broker.declare([ORDERS])
    channel = await raw.channel()
    await channel.queue_delete(f"{broker.namespace}.{UNROUTED.name}")  # by hand, by mistake
    # Returned by RabbitMQ (not even the unrouted queue took it): reported, not lost.
    with pytest.raises(BrokerError, match="not even"):
        await broker.publish([envelope("returned", "nobody.listens")])
    # The failure declares the base topology again before the next publish.
    await broker.publish([envelope("kept", "nobody.listens")])
    unrouted = Inbox()
    await broker.consume(UNROUTED, unrouted)
    await unrouted.wait_for(1)
    assert unrouted.ids == ["kept"]


async def _publish_soon(broker: RabbitMQBroker, sent: Envelope) -> None:
    """Publish; a failure while the connection is still being restored is no failure here:
    the caller publishes again until a copy arrives."""
    with contextlib.suppress(BrokerError):
        await broker.publish([sent])


async def test_throughput(make_broker: BrokerFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not asserted: the machine running the tests is shared."""
    require_rabbitmq()
    count = 5000
    broker = make_broker(prefetch=256)
    await broker.declare([ORDERS])
    envelopes = [envelope(f"m{i}") for i in range(count)]
    received = 0
    done = asyncio.Event()

    async def ack(delivery: Delivery) -> None:
        nonlocal received
        await delivery.ack()
        received += 1
        if received == count:
            done.set()

    started = time.perf_counter()
    await broker.publish(envelopes)
    published = time.perf_counter()
    await broker.consume(ORDERS, ack)
    await asyncio.wait_for(done.wait(), 120)
    consumed = time.perf_counter()
    with capsys.disabled():
        print(
            f"\nRabbitMQ broker, {count} messages: publish {count / (published - started):,.0f}"
            f" msg/s (confirmed), consume {count / (consumed - published):,.0f} msg/s (acked)"
        )
