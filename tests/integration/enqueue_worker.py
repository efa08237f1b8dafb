"""A separate process that enqueues one idempotency key many times (for the race test).

Usage: python -m tests.integration.enqueue_worker BROKER_URL BACKEND_URL PAYLOAD TIME SEED
Prints ``ENQ <n> <due epoch ms>`` for each enqueue, after all of them."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime, timedelta

from jararaca import connect
from jararaca.clock import epoch_ms
from tests.fixtures.dist_app import Ping

COUNT = 200


async def main(broker: str, backend: str, payload: str, time: str, seed: int) -> None:
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    lines = []
    async with connect(broker_url=broker, backend_url=backend) as publisher:
        for i in range(COUNT):
            n = seed * 1000 + i
            when = base + timedelta(seconds=rng.randrange(-1800, 1800))
            await publisher.schedule(
                Ping(n=n),
                when,
                idempotency_key="race",
                payload_policy=payload,  # type: ignore[arg-type]
                time_policy=time,  # type: ignore[arg-type]
            )
            lines.append(f"ENQ {n} {epoch_ms(when)}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    broker, backend, payload, time = sys.argv[1:5]
    asyncio.run(main(broker, backend, payload, time, int(sys.argv[5])))
