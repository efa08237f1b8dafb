"""The peers of bench.scenarios.peers: how to start each one's processes, and removing
everything a peer declared (its queues, exchange and Redis keys) after each repeat."""

from __future__ import annotations

import asyncio
import signal
import uuid
from dataclasses import dataclass

import aio_pika
import redis.asyncio as aioredis

from bench.config import AMQP_URL, REDIS_URL
from bench.peers import PYTHON, VENV
from bench.procs import BenchError, Proc, Procs

READY_LINE = "PEER WORKER READY"  # bench.peers.peer_recorder.READY_LINE (another venv)


@dataclass(frozen=True)
class Peer:
    name: str  # "celery", "taskiq"
    module: str  # its app, run with the peers' python
    worker: tuple[str, ...]  # arguments after ``python``
    scheduler: tuple[str, ...]
    scheduler_ready: str  # a line the scheduler logs once it runs
    queue_suffixes: tuple[str, ...]  # the queues it declares: PREFIX + each suffix
    # The scheduler's exit code when stopped by SIGTERM: taskiq's has no handler for it and
    # dies of it (-15), which is how it stops (SIGINT, its graceful way, is ignored by a
    # child of a shell's background job, as a bench run under nohup is).
    scheduler_stopped: int = 0

    def spawn_worker(self, procs: Procs, prefix: str, out: str) -> Proc:
        env = {**environment(prefix), "BENCH_OUT": out}
        worker = procs.spawn(f"{self.name}-worker", self.worker, env, str(PYTHON))
        worker.wait_for(lambda line: line == READY_LINE, 120, "readiness line")
        return worker

    def spawn_scheduler(self, procs: Procs, prefix: str) -> Proc:
        env = environment(prefix)
        scheduler = procs.spawn(f"{self.name}-scheduler", self.scheduler, env, str(PYTHON))
        scheduler.wait_for(lambda line: self.scheduler_ready in line, 120, "readiness line")
        return scheduler

    def stop_scheduler(self, scheduler: Proc) -> int:
        """SIGTERM the scheduler; 1 (a bad exit) when it did not exit as it should, else 0."""
        if scheduler.popen.poll() is None:
            scheduler.popen.send_signal(signal.SIGTERM)
        return int(scheduler.wait_exit(60) != self.scheduler_stopped)

    def new_prefix(self) -> str:
        return f"bench-peer-{self.name}-{uuid.uuid4().hex[:8]}"

    def cleanup(self, prefix: str) -> None:
        asyncio.run(_remove([prefix + s for s in self.queue_suffixes], prefix))


# Celery: one process that runs one task at a time (--pool=solo): "one worker process", as
# jararaca's worker is; the default prefork pool would fork one child per core (2 here), and
# run the handlers on both cores where jararaca's worker has one. Per-task logs off
# (--loglevel=WARNING, Celery's default), as taskiq's (--log-level WARNING) and jararaca's.
CELERY_APP = ("-m", "celery", "-A", "bench.peers.celery_app")
CELERY = Peer(
    name="celery",
    module="bench.peers.celery_app",
    worker=(*CELERY_APP, "worker", "--pool=solo", "--loglevel=WARNING"),
    scheduler=(*CELERY_APP, "beat", "-S", "redbeat.RedBeatScheduler", "--loglevel=INFO"),
    scheduler_ready="beat: Starting",
    queue_suffixes=("",),
)
# taskiq: one worker process (--workers 1; the default is 2), its defaults otherwise
# (max_async_tasks 100, aio-pika prefetch 10).
TASKIQ_WORKER_OPTIONS = ("--workers", "1", "--log-level", "WARNING")
TASKIQ = Peer(
    name="taskiq",
    module="bench.peers.taskiq_app",
    worker=("-m", "taskiq", "worker", "bench.peers.taskiq_app:broker", *TASKIQ_WORKER_OPTIONS),
    scheduler=("-m", "taskiq", "scheduler", "bench.peers.taskiq_app:scheduler"),
    scheduler_ready="Startup completed",
    scheduler_stopped=-signal.SIGTERM,
    queue_suffixes=("", ".delay", ".dead"),
)
PEERS = (CELERY, TASKIQ)


def environment(prefix: str) -> dict[str, str]:
    return {"BENCH_PEER_PREFIX": prefix, "BENCH_AMQP_URL": AMQP_URL, "BENCH_REDIS_URL": REDIS_URL}


def require_venv() -> None:
    if not PYTHON.exists():
        raise BenchError(f"no {VENV}: run ./scripts/bench-peers-venv first")


async def _remove(queues: list[str], prefix: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        await channel.exchange_delete(prefix)
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
