"""Poison mixed into 10,000 good messages: every bad one is dead-lettered with its reason and
one log line, every good one is handled exactly once, and the worker keeps serving."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter

import aio_pika

from jararaca.brokers.base import Delivery
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.wire import DEAD_LETTER_REASON
from tests.integration.cluster import Cluster

GOOD = 10_000
EACH_POISON = 20
POISON = {
    "malformed": ("test.ping", b'{"n": '),
    "invalid": ("test.ping", b'{"n": "not a number"}'),
    "non-utf8": ("test.ping", b"\xff\xfe\xfa\x00"),
    "oversized": ("test.ping", json.dumps({"n": 1, "pad": "x" * 5000}).encode()),
    "unknown-topic": ("test.nobody.listens", b'{"n": 1}'),
    "handler-fails": ("test.fail", b'{"n": 1}'),
}
EXPECTED_REASON = {
    "malformed": "invalid payload",
    "invalid": "invalid payload",
    "non-utf8": "invalid payload",
    "oversized": "too large",
    "unknown-topic": "unknown topic",
    "handler-fails": "failed after 3 attempt(s)",
}


async def _publish_mix(cluster: Cluster) -> None:
    messages = [(f"good-{i}", "test.ping", json.dumps({"n": i}).encode()) for i in range(GOOD)]
    for kind, (key, body) in POISON.items():
        messages += [(f"{kind}-{i}", key, body) for i in range(EACH_POISON)]
    random.Random(7).shuffle(messages)
    connection = await aio_pika.connect(cluster.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(cluster.exchange)
        for start in range(0, len(messages), 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, message_id=mid, delivery_mode=2), routing_key=key
                    )
                    for mid, key, body in messages[start : start + 500]
                )
            )


async def _dead_letters(cluster: Cluster, expected: int) -> dict[str, str]:
    broker = RabbitMQBroker(cluster.amqp_url, namespace=cluster.exchange, prefetch=500)
    await broker.connect()
    found: dict[str, str] = {}
    done = asyncio.Event()

    async def collect(delivery: Delivery) -> None:
        found[delivery.envelope.message_id] = delivery.envelope.headers.get(DEAD_LETTER_REASON, "")
        await delivery.ack()
        if len(found) >= expected:
            done.set()

    consumer = await broker.consume(broker.dead_letter_queue(), collect)
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await consumer.cancel()
        await broker.close()
    return found


def test_poison_is_dead_lettered_and_good_messages_flow(cluster: Cluster) -> None:
    worker = cluster.start(
        "worker", "--groups", "pings", env={"JARARACA_MAX_MESSAGE_BYTES": "4096"}
    )
    beat = cluster.start("beat", "--actions", "tick")  # delivers the handler's retries
    cluster.wait_ready(worker)
    cluster.wait_ready(beat)
    asyncio.run(_publish_mix(cluster))
    cluster.wait_until(lambda: len(cluster.records("MSG")) >= GOOD, 90, "the good messages")
    poison_total = EACH_POISON * len(POISON)
    dead = asyncio.run(_dead_letters(cluster, poison_total))
    handled = Counter(r[1].split(":")[0] for r in cluster.records("MSG"))
    assert set(handled) == {f"good-{i}" for i in range(GOOD)}
    assert max(handled.values()) == 1
    assert len(dead) == poison_total
    for message_id, reason in dead.items():
        kind = message_id.rsplit("-", 1)[0]
        assert EXPECTED_REASON[kind] in reason, (message_id, reason)
    # One log line per dead-lettered message, and the worker is still up.
    dead_lines = [line for line in worker.lines if "dead-lettering message" in line]
    assert len(dead_lines) == poison_total
    assert worker.popen.poll() is None
    # The failing handler went through its retry policy: 3 attempts each, then dead letter.
    attempts = Counter(r[1].rsplit(":", 1)[1] for r in cluster.records("FAIL"))
    assert attempts == {"1": EACH_POISON, "2": EACH_POISON, "3": EACH_POISON}
