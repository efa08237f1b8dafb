"""A RabbitMQ node stopped and started again: the broker's connection listeners hear of the loss
once and of the recovery once, however many reconnection attempts fail in between."""

from __future__ import annotations

import asyncio
import uuid

from jararaca.brokers.base import QueueSpec
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.wire import Envelope
from tests.contract.test_broker_contract import Inbox
from tests.faults.servers import PrivateRabbit

# Generous upper bounds, never sleeps: a node takes seconds to stop or boot on a busy machine.
LOST_WITHIN = 60.0
BACK_WITHIN = 90.0
ORDERS = QueueSpec("handler.orders", ("orders.created",))


class Heard:
    """A connection listener: records its calls and sets an event per kind."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, str]] = []
        self.lost = asyncio.Event()
        self.back = asyncio.Event()

    def __call__(self, connected: bool, reason: str) -> None:
        self.calls.append((connected, reason))
        (self.back if connected else self.lost).set()


async def test_listeners_hear_of_a_stopped_node_once_and_of_its_return_once(
    private_rabbit: PrivateRabbit,
) -> None:
    broker = RabbitMQBroker(private_rabbit.url, namespace=f"test-{uuid.uuid4().hex[:10]}")
    first, second = Heard(), Heard()
    broker.add_connection_listener(first)
    broker.add_connection_listener(second)
    try:
        await broker.declare([ORDERS])
        # In a thread, so this loop keeps serving the connection while the node goes down.
        await asyncio.to_thread(private_rabbit.stop)
        await asyncio.wait_for(first.lost.wait(), LOST_WITHIN)
        assert not first.back.is_set()
        # Down for as long as the node takes to boot: aio-pika retries (and fails) every
        # second meanwhile, each failure a closed connection to it.
        await asyncio.to_thread(private_rabbit.start)
        await asyncio.wait_for(first.back.wait(), BACK_WITHIN)
        for heard in (first, second):
            [(connected, reason), back] = heard.calls
            assert not connected
            assert reason.startswith("lost the connection to RabbitMQ at amqp://guest:***@")
            assert back == (True, "")
        # Back means usable: the restored channels publish and consume again.
        inbox = Inbox()
        await broker.consume(ORDERS, inbox)
        sent = Envelope("after-restart", "orders.created", b"{}", {})
        await broker.publish([sent])
        await inbox.wait_for(1)
        assert inbox.ids == ["after-restart"]
        await broker.close()
        # close() returns once aio-pika ran its close callbacks: a deliberate close is no loss.
        assert len(first.calls) == len(second.calls) == 2
    finally:
        await broker.close()
