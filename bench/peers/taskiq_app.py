"""The taskiq peer: taskiq with taskiq-aio-pika (RabbitMQ), its scheduler for the crons.

    taskiq worker bench.peers.taskiq_app:broker --workers 1     # one worker process
    taskiq scheduler bench.peers.taskiq_app:scheduler
    python -m bench.peers.taskiq_app enqueue COUNT DUE_EPOCH     # the delayed burst, timed

Run with bench/.peers-venv's python (bench.scenarios.peers does). The exchange and queues are
named after ``BENCH_PEER_PREFIX`` so that the harness can remove them afterwards.

Seconds: taskiq's ``cron`` schedules go through pycron, five fields, minute resolution; the
seconds crons are ``interval`` schedules (whole seconds, at least 1), which the scheduler
checks on each whole-second tick. It gives the task no intended instant: a middleware stamps
the scheduler's send time in a label (``bench_sent``), and the harness takes the whole second
of that tick as the fire's intended slot (bench.scenarios.peers_cron).
Delays: ``kicker().with_labels(delay=seconds)``: taskiq-aio-pika publishes the message with
a per-message TTL to a delay queue, dead-lettered to the task queue when it expires (the
broker's delayed-message-exchange plugin is the other way; this RabbitMQ has none).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqMiddleware, TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

from bench.peers.peer_recorder import READY_LINE, RECORDER, print_enqueued

PREFIX = os.environ.get("BENCH_PEER_PREFIX", "bench-peer-taskiq")
INTERVALS = {"every_second": 1, "every_2s": 2, "every_5s": 5}
LANES = 200  # concurrent kiq() calls while enqueueing, as bench.enqueue's single form


class StampSendTime(TaskiqMiddleware):  # type: ignore[misc]
    def pre_send(self, message: Any) -> Any:
        message.labels["bench_sent"] = str(time.time())
        return message


broker = AioPikaBroker(
    os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=Exchange(name=PREFIX),
    task_queues=[Queue(name=PREFIX)],
    delay_queue=Queue(name=f"{PREFIX}.delay"),
    dead_letter_queue=Queue(name=f"{PREFIX}.dead"),
).with_middlewares(StampSendTime())


async def _say_ready(_: Any) -> None:
    os.write(1, f"{READY_LINE}\n".encode())


broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, _say_ready)


CONTEXT = TaskiqDepends()  # taskiq passes the message's context for this default


async def _tick(name: str, context: Context = CONTEXT) -> None:
    started = time.time()
    sent = float(context.message.labels.get("bench_sent", 0.0))
    RECORDER.add(f"{name}@{round(sent * 1000)}", sent, started)


async def _ping(n: int, due: float) -> None:
    RECORDER.add(n, due, time.time())


# Registered by call rather than by decorator: the project's mypy sees taskiq as untyped.
tick = broker.task(
    task_name="bench_peer.tick",
    schedule=[{"interval": seconds, "args": [name]} for name, seconds in INTERVALS.items()],
)(_tick)
ping = broker.task(task_name="bench_peer.ping")(_ping)
scheduler = TaskiqScheduler(broker, sources=[LabelScheduleSource(broker)])


async def enqueue(count: int, due: float) -> None:
    """One ``kiq()`` per message with the ``delay`` label, ``LANES`` awaited concurrently."""
    await broker.startup()
    numbers = iter(range(count))

    async def lane() -> None:
        for n in numbers:
            delay = max(0.0, due - time.time())
            await ping.kicker().with_labels(delay=delay).kiq(n, due)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(LANES, count))))
    seconds = time.perf_counter() - began
    await broker.shutdown()
    print_enqueued(count, seconds)


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    asyncio.run(enqueue(int(sys.argv[2]), float(sys.argv[3])))
