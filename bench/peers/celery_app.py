"""The Celery peer: Celery 5 on RabbitMQ, celery-redbeat's scheduler on Redis.

    celery -A bench.peers.celery_app worker --pool=solo     # one process, one task at a time
    celery -A bench.peers.celery_app beat -S redbeat.RedBeatScheduler
    python -m bench.peers.celery_app enqueue COUNT DUE_EPOCH   # the delayed burst, timed

Run with bench/.peers-venv's python (bench.scenarios.peers does). Everything it declares is
named after ``BENCH_PEER_PREFIX`` (queue, exchange, routing key, redbeat's Redis keys) so that
the harness can remove it afterwards.

Seconds: Celery's ``crontab`` has no seconds field, so the crons are interval schedules
(``schedule=1.0`` seconds). Beat computes an interval entry's next due instant as its last
run plus the interval, and gives the task no intended instant: the ``before_task_publish``
signal stamps beat's publish time in a header (``bench_sent``) and the harness takes
"previous publish + interval" as each fire's due instant (bench.scenarios.peers_cron).
Delays: ``apply_async(eta=...)``; the worker receives ETA tasks at once and holds them until
due (no broker-side delay with classic queues).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, worker_ready

from bench.peers.peer_recorder import READY_LINE, RECORDER, print_enqueued

PREFIX = os.environ.get("BENCH_PEER_PREFIX", "bench-peer-celery")
INTERVALS = {"every_second": 1.0, "every_2s": 2.0, "every_5s": 5.0}

app = Celery("bench_peer", broker=os.environ.get("BENCH_AMQP_URL", "amqp://127.0.0.1:5672//"))
app.conf.update(
    task_default_queue=PREFIX,
    task_default_exchange=PREFIX,
    task_default_routing_key=PREFIX,
    redbeat_redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    redbeat_key_prefix=f"{PREFIX}:",
    beat_schedule={
        name: {"task": "bench_peer.tick", "schedule": seconds, "args": (name,)}
        for name, seconds in INTERVALS.items()
    },
)


def _stamp_publish_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers["bench_sent"] = time.time()


def _say_ready(**_: Any) -> None:
    os.write(1, f"{READY_LINE}\n".encode())  # past Celery's logger, as the progress lines


before_task_publish.connect(_stamp_publish_time, weak=False)
worker_ready.connect(_say_ready, weak=False)


def _tick(task: Any, name: str) -> None:
    started = time.time()
    sent = float(getattr(task.request, "bench_sent", 0.0) or 0.0)
    RECORDER.add(f"{name}@{round(sent * 1000)}", sent, started)


def _ping(n: int, due: float) -> None:
    RECORDER.add(n, due, time.time())


# Registered by call rather than by decorator: the project's mypy sees Celery as untyped.
tick = app.task(name="bench_peer.tick", bind=True, ignore_result=True)(_tick)
ping = app.task(name="bench_peer.ping", ignore_result=True)(_ping)


def enqueue(count: int, due: float) -> None:
    """One ``apply_async(eta=due)`` per message, as a Celery user sends them."""
    eta = datetime.fromtimestamp(due, UTC)
    began = time.perf_counter()
    for n in range(count):
        ping.apply_async((n, due), eta=eta)
    seconds = time.perf_counter() - began
    print_enqueued(count, seconds)


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    enqueue(int(sys.argv[2]), float(sys.argv[3]))
