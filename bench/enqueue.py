"""A separate process that enqueues a burst of ``BenchPing`` messages, timing it.

    python -m bench.enqueue FORM COUNT DUE_EPOCH BROKER_URL BACKEND_URL

FORM is ``single`` (one ``delay()`` per message, ``LANES`` awaited concurrently), ``batch``
(``delay_many`` in chunks of ``BATCH_CHUNK``) or ``publish`` (``publish()`` now, concurrently,
after declaring the handler's queue; DUE_EPOCH is ignored). Every delayed message is due at
DUE_EPOCH. Prints one JSON line: count, seconds, rate (msg/s) and finished_at (epoch).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

from bench.apps.burst_app import BenchPing, app
from jararaca import Publisher, connect

LANES = 200  # concurrent single calls (the Redis pool holds 50 connections; the rest wait)
BATCH_CHUNK = 10_000  # messages per delay_many call


async def _lanes(count: int, call: Callable[[int], Awaitable[object]]) -> None:
    numbers: Iterator[int] = iter(range(count))

    async def lane() -> None:
        for n in numbers:
            await call(n)

    await asyncio.gather(*(lane() for _ in range(min(LANES, count))))


async def _single(publisher: Publisher, count: int, due: float) -> None:
    await _lanes(count, lambda n: publisher.delay(BenchPing(n=n), max(0.0, due - time.time())))


async def _batch(publisher: Publisher, count: int, due: float) -> None:
    for first in range(0, count, BATCH_CHUNK):
        seconds = max(0.0, due - time.time())
        numbers = range(first, min(first + BATCH_CHUNK, count))
        await publisher.delay_many([(BenchPing(n=n), seconds) for n in numbers])


async def _publish(publisher: Publisher, count: int, due: float) -> None:
    del due
    await _lanes(count, lambda n: publisher.publish(BenchPing(n=n)))


FORMS = {"single": _single, "batch": _batch, "publish": _publish}


async def main(form: str, count: int, due: float, broker_url: str, backend_url: str) -> None:
    async with connect(broker_url=broker_url, backend_url=backend_url) as publisher:
        if form == "publish":
            from jararaca.registry import build_registry

            await publisher.broker.declare([h.queue for h in build_registry(app).handlers])
        began = time.perf_counter()
        await FORMS[form](publisher, count, due)
        seconds = time.perf_counter() - began
    result = {
        "count": count,
        "seconds": seconds,
        "rate": count / seconds if seconds > 0 else 0.0,
        "finished_at": time.time(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    form, count, due, broker_url, backend_url = sys.argv[1:6]
    asyncio.run(main(form, int(count), float(due), broker_url, backend_url))
