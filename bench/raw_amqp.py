"""Plain aio-pika clients for the broker's ceiling, one process each (no jararaca code).

    python -m bench.raw_amqp consume URL QUEUE COUNT   # manual ack of each message
    python -m bench.raw_amqp publish URL EXCHANGE COUNT  # persistent, publisher confirms

The consumer prints ``READY`` once consuming, then one JSON line (first, last: epoch seconds
of the first delivery and the last ack); the publisher prints one JSON line (start, end).
Both report ``cpu``, the CPU seconds the process used (to tell who is the bottleneck).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

ROUTING_KEY = "bench.raw"
PREFETCH = 128
WINDOW = 512  # publishes awaiting their confirm at once (jararaca's beat uses the same)


async def declare(url: str, exchange: str, queue: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        q = await channel.declare_queue(queue, durable=True)
        await q.bind(ex, ROUTING_KEY)


async def delete(url: str, exchange: str, queue: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)


async def consume(url: str, queue_name: str, count: int) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(queue_name, durable=True, passive=True)
        done = asyncio.Event()
        seen: list[float] = []

        async def on_message(message: AbstractIncomingMessage) -> None:
            if not seen:
                seen.append(time.time())
            await message.ack()
            if len(seen) == 1:
                seen.append(0.0)
            seen[1] += 1
            if seen[1] >= count:
                seen.append(time.time())
                done.set()

        await queue.consume(on_message, no_ack=False)
        print("READY", flush=True)
        await done.wait()
    result = {"first": seen[0], "last": seen[2], "count": int(seen[1]), "cpu": time.process_time()}
    print(json.dumps(result), flush=True)


async def publish(url: str, exchange_name: str, count: int) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        numbers: Iterator[int] = iter(range(count))

        async def lane() -> None:
            for n in numbers:
                body = json.dumps({"n": n}).encode()
                message = aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(n),
                )
                await exchange.publish(message, routing_key=ROUTING_KEY)

        start = time.time()
        await asyncio.gather(*(lane() for _ in range(min(WINDOW, count))))
        end = time.time()
    print(json.dumps({"start": start, "end": end, "cpu": time.process_time()}), flush=True)


if __name__ == "__main__":
    mode, url, name, count = sys.argv[1:5]
    runner = consume if mode == "consume" else publish
    asyncio.run(runner(url, name, int(count)))
