# mypy: ignore-errors
# (this module runs with bench/.v0513-venv's python, where ``jararaca`` is 0.5.13: the project's
# mypy would check it against the project's own jararaca, another code base of the same name)
"""The jararaca 0.5.13 peer: the upstream release from PyPI, on RabbitMQ (aio-pika) with Redis
as its "broker backend" (the delayed messages and the beat's bookkeeping).

    python -m jararaca declare bench.peers.jararaca0513_app:app --broker-url URL   # first
    python -m jararaca worker bench.peers.jararaca0513_app:app --broker-url URL --backend-url URL
    python -m jararaca beat bench.peers.jararaca0513_app:app --interval 1 --broker-url URL ...
    python -m bench.peers.jararaca0513_app enqueue COUNT DUE_EPOCH   # the delayed burst, timed

Run with bench/.v0513-venv's python (bench.scenarios.peers does, with PYTHONPATH empty):
``jararaca`` is then 0.5.13 from that venv, never the project's (in src/, not on that path).
It imports nothing of the project, only 0.5.13 and ``bench.peers.peer_recorder``.

Names: 0.5.13 takes its exchange from the broker URL (``?exchange=``) and names the rest after
the code, or with fixed names; here all of it is made the run's (``BENCH_PEER_PREFIX``), so
that the harness removes it afterwards:
- a scheduled action's queue and its Redis bookkeeping are named ``<module>.<qualname>`` of
  its function: the cron functions' module is set to the prefix (``owned_by_run``);
- a message handler's queue is ``<MESSAGE_TOPIC>.<module>.<qualname>``: the topic is the prefix;
- the dead-letter exchange and queue are ``dlx`` and ``dlq`` for every app on the broker
  (class attributes of RabbitmqUtils): they become ``<prefix>.dlx`` and ``<prefix>.dlq``;
- the Redis keys have fixed names (``delayed_messages``, ``beat_lock``,
  ``last_dispatch_time:<action>``...): the backend class that its CLI builds from the backend
  URL is replaced by one that puts ``<prefix>:`` before each (``RunOwnedRedisBackend``).

Seconds: 0.5.13 reads a cron with croniter, which takes a sixth field, seconds, last: the crons
are ``* * * * * *``, ``* * * * * */2`` and ``* * * * * */5``. Its beat checks every action, then
moves the due delayed messages, then sleeps ``--interval`` seconds (an int, 1 at least), so its
passes are a little more than a second apart and not on whole seconds. A pass dispatches an
action whose next cron instant after its last dispatch has come, stamped with that pass's
whole second (``int(time.time())``); the worker gives an action that takes one parameter that
stamp as ``ScheduleDispatchData.timestamp``. It is the pass's second, not the fire's slot (a
pass at 13.2 s dispatches the ``*/2`` fire of 12 s stamped 13): the intended instant of a fire
is its stamp floored to its schedule's grid (bench.scenarios.peers_cron), which for the
every-second schedule is the stamp itself. As the passes drift through the second (by the
time each takes), now and then one skips a whole second, whose every-second fire is missed.
The first pass dispatches every action at once, whatever its cron (it has no last dispatch
yet): before the judged window.
Delays: ``Message.schedule(when, tz)`` through a publisher bound in context. A 0.5.13 publisher
stages delayed messages and, flushed at the end of its transaction, writes each to Redis with
a pipeline of its own (a sorted set scored by whole-second dispatch time); the beat moves the
due ones to RabbitMQ, at most 500 a pass. The enqueue is one publisher transaction with one
``schedule()`` per message, flushed at its end, as 0.5.13's MessageBusPublisherInterceptor does
at the end of a handler or request.
Readiness: 0.5.13 says that its worker consumes, or that its beat's loop runs, only in INFO log
records, and its CLI configures no logging: a handler on those two loggers writes the lines
that the harness waits for, then unhooks.
"""

# No ``from __future__ import annotations``: 0.5.13 reads a message handler's parameter
# annotation as the message class itself, not as a string.
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# isort: off
# (ruff would sort these after the project's src/jararaca, another code base of the same
# name: some as the project's own modules, the others as a third party's)
from jararaca import Message, MessageBusController, MessageHandler, Microservice, ScheduledAction
from jararaca.broker_backend import redis_broker_backend
from jararaca.messagebus.decorators import ScheduleDispatchData
from jararaca.messagebus.interceptors.aiopika_publisher_interceptor import (
    AIOPikaConnectionFactory,
)
from jararaca.messagebus.publisher import provide_message_publisher
from jararaca.utils.rabbitmq_utils import RabbitmqUtils
# isort: on

from bench.peers.peer_recorder import READY_LINE, RECORDER, print_enqueued

PREFIX = os.environ.get("BENCH_PEER_PREFIX", "bench-peer-v0513")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SCHEDULER_READY_LINE = "PEER SCHEDULER READY"  # bench.scenarios.peers_common's JARARACA_0513
CRONS = {"every_second": "* * * * * *", "every_2s": "* * * * * */2", "every_5s": "* * * * * */5"}

RabbitmqUtils.DEAD_LETTER_EXCHANGE = f"{PREFIX}.dlx"
RabbitmqUtils.DEAD_LETTER_QUEUE = f"{PREFIX}.dlq"


class RunOwnedRedisBackend(redis_broker_backend.RedisMessageBrokerBackend):
    """0.5.13's Redis backend with ``<prefix>:`` before each of its key names."""

    KEY_NAMES = (
        "last_dispatch_time_key",
        "last_execution_time_key",
        "execution_indicator_key",
        "delayed_messages_key",
        "delayed_messages_metadata_key",
        "beat_lock_key",
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        for attribute in self.KEY_NAMES:
            setattr(self, attribute, f"{PREFIX}:{getattr(self, attribute)}")


# The worker and the beat build their backend from the backend URL once this app is imported,
# through a function that looks the class up in this module at each call.
redis_broker_backend.RedisMessageBrokerBackend = RunOwnedRedisBackend


class SayWhenLogged(logging.Handler):
    """Writes ``line`` to stdout once ``count`` records of the logger ``name`` began with
    ``start``, then unhooks (the logger's level goes back to its parent's, WARNING)."""

    def __init__(self, name: str, start: str, count: int, line: str) -> None:
        super().__init__(logging.INFO)
        self.watched = logging.getLogger(name)
        self.start = start
        self.left = count
        self.line = line
        self.watched.addHandler(self)
        self.watched.setLevel(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith(self.start):
            return
        self.left -= 1
        if self.left == 0:
            # Straight to file descriptor 1, as the recorder's progress lines.
            os.write(1, f"{self.line}\n".encode())
            self.watched.removeHandler(self)
            self.watched.setLevel(logging.NOTSET)


def owned_by_run(action: Callable[..., Any]) -> Callable[..., Any]:
    """The action, with the run's prefix as module: 0.5.13 names its queue and its Redis
    bookkeeping after the module and qualified name of its function."""
    action.__module__ = PREFIX
    return action


def record_fire(name: str, fire: ScheduleDispatchData) -> None:
    started = time.time()
    RECORDER.add(f"{name}@{round(fire.timestamp * 1000)}", fire.timestamp, started)


class Ping(Message):
    MESSAGE_TOPIC = PREFIX

    n: int
    due: float


@MessageBusController()
class Ticks:
    @ScheduledAction(CRONS["every_second"])
    @owned_by_run
    async def every_second(self, fire: ScheduleDispatchData) -> None:
        record_fire("every_second", fire)

    @ScheduledAction(CRONS["every_2s"])
    @owned_by_run
    async def every_2s(self, fire: ScheduleDispatchData) -> None:
        record_fire("every_2s", fire)

    @ScheduledAction(CRONS["every_5s"])
    @owned_by_run
    async def every_5s(self, fire: ScheduleDispatchData) -> None:
        record_fire("every_5s", fire)


@MessageBusController()
class Burst:
    @MessageHandler(Ping)
    async def ping(self, message: Ping) -> None:
        RECORDER.add(message.n, message.due, time.time())


app = Microservice(controllers=[Ticks, Burst])

# The worker logs "Consuming ..." once per queue it consumes: the crons' and the handler's.
SayWhenLogged("jararaca.messagebus.worker", "Consuming ", len(CRONS) + 1, READY_LINE)
SayWhenLogged(
    "jararaca.scheduler.beat_worker",
    "Starting scheduled actions processing loop",
    1,
    SCHEDULER_READY_LINE,
)


async def enqueue(count: int, due: float) -> None:
    """One ``schedule()`` per message in one publisher transaction, flushed at its end."""
    backend = RunOwnedRedisBackend(REDIS_URL)
    connections = AIOPikaConnectionFactory(
        url=AMQP_URL, exchange=PREFIX, message_broker_backend=backend
    )
    when = datetime.fromtimestamp(due, UTC)
    async with connections.provide_connection() as publisher:
        with provide_message_publisher("default", publisher):
            began = time.perf_counter()
            for n in range(count):
                await Ping(n=n, due=due).schedule(when, UTC)
            await publisher.flush()
            seconds = time.perf_counter() - began
    await backend.dispose()
    print_enqueued(count, seconds)


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    asyncio.run(enqueue(int(sys.argv[2]), float(sys.argv[3])))
