"""The peers of bench.scenarios.peers: how to start each one's processes, and removing
everything a peer declared (its queues, exchanges and Redis keys) after each repeat."""

from __future__ import annotations

import asyncio
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import redis.asyncio as aioredis

from bench.config import AMQP_URL, REDIS_URL
from bench.peers import PYTHON, V0513_PYTHON
from bench.procs import BenchError, Proc, Procs

READY_LINE = "PEER WORKER READY"  # bench.peers.peer_recorder.READY_LINE (another venv)
PREFIX_SLOT = "{prefix}"  # in a peer's arguments, replaced by the run's prefix
# The script that makes each peer python's virtualenv.
VENV_SCRIPTS = {PYTHON: "./scripts/bench-peers-venv", V0513_PYTHON: "./scripts/bench-v0513-venv"}


@dataclass(frozen=True)
class Peer:
    name: str  # "celery", "taskiq", "jararaca-0.5.13"
    module: str  # its app, run with ``python``
    worker: tuple[str, ...]  # arguments after ``python`` (PREFIX_SLOT: the run's prefix)
    scheduler: tuple[str, ...]
    scheduler_ready: str  # a line the scheduler logs once it runs
    queue_suffixes: tuple[str, ...]  # the queues it declares: PREFIX + each suffix
    # The scheduler's exit code when stopped by SIGTERM: taskiq's has no handler for it and
    # dies of it (-15), which is how it stops (SIGINT, its graceful way, is ignored by a
    # child of a shell's background job, as a bench run under nohup is).
    scheduler_stopped: int = 0
    python: Path = PYTHON  # of the peer's own virtualenv (VENV_SCRIPTS)
    slug: str = ""  # the name in the names it declares, when ``name`` is not fit for them
    exchange_suffixes: tuple[str, ...] = ("",)  # the exchanges it declares: PREFIX + each
    declare: tuple[str, ...] = ()  # a command that declares what the worker only looks up
    # The scheduler that moves due delayed messages to the worker, for a peer whose worker
    # does not hold them itself; none when empty.
    burst_scheduler: tuple[str, ...] = ()

    def spawn(
        self, procs: Procs, role: str, template: tuple[str, ...], prefix: str, out: str = ""
    ) -> Proc:
        """``python <template>`` with the peer's python, the run's prefix in its arguments
        (PREFIX_SLOT) and its variables, and ``out`` its recorder's file."""
        env = {**environment(prefix), **({"BENCH_OUT": out} if out else {})}
        args = [argument.replace(PREFIX_SLOT, prefix) for argument in template]
        return procs.spawn(f"{self.name}-{role}", args, env, str(self.python))

    def spawn_worker(self, procs: Procs, prefix: str, out: str) -> Proc:
        if self.declare:
            self.run_declare(procs, prefix)
        worker = self.spawn(procs, "worker", self.worker, prefix, out)
        worker.wait_for(lambda line: line == READY_LINE, 120, "readiness line")
        return worker

    def spawn_scheduler(self, procs: Procs, prefix: str, template: tuple[str, ...] = ()) -> Proc:
        """The scheduler, or another one (``template``) that logs the same ready line."""
        scheduler = self.spawn(procs, "scheduler", template or self.scheduler, prefix)
        scheduler.wait_for(lambda line: self.scheduler_ready in line, 120, "readiness line")
        return scheduler

    def run_declare(self, procs: Procs, prefix: str) -> None:
        """Run ``declare`` to its end; a BenchError when it failed (jararaca 0.5.13's exits 0
        when a declaration failed, saying "Error" in its output)."""
        declare = self.spawn(procs, "declare", self.declare, prefix)
        code = declare.wait_exit(120)
        if code != 0 or any("Error" in line for line in declare.lines):
            raise BenchError(f"{declare.name} exited {code}:\n{declare.tail()}")

    def stop_scheduler(self, scheduler: Proc) -> int:
        """SIGTERM the scheduler; 1 (a bad exit) when it did not exit as it should, else 0."""
        if scheduler.popen.poll() is None:
            scheduler.popen.send_signal(signal.SIGTERM)
        return int(scheduler.wait_exit(60) != self.scheduler_stopped)

    def new_prefix(self) -> str:
        return f"bench-peer-{self.slug or self.name}-{uuid.uuid4().hex[:8]}"

    def cleanup(self, prefix: str) -> None:
        queues = [prefix + s for s in self.queue_suffixes]
        exchanges = [prefix + s for s in self.exchange_suffixes]
        asyncio.run(_remove(queues, exchanges, prefix))


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
# jararaca 0.5.13: its CLI's worker (one process, its only form) and beat, checking every
# second (--interval 1, the least it takes), after its ``declare`` (its worker and beat only
# look the exchange and queues up). Its worker requires a prefetch count, which also bounds
# its concurrent handlers: 128, the project's default. In the burst its beat only moves the
# delayed messages: with --actions it dispatches the actions of those names only, and the
# crons have none.
V0513_APP = "bench.peers.jararaca0513_app:app"
V0513_BROKER = f"{AMQP_URL}?exchange={PREFIX_SLOT}&prefetch_count=128"
V0513_SERVERS = ("--broker-url", V0513_BROKER, "--backend-url", REDIS_URL)
V0513_BEAT = ("-m", "jararaca", "beat", V0513_APP, "--interval", "1", *V0513_SERVERS)
JARARACA_0513 = Peer(
    name="jararaca-0.5.13",
    slug="v0513",
    module="bench.peers.jararaca0513_app",
    python=V0513_PYTHON,
    declare=("-m", "jararaca", "declare", V0513_APP, "--broker-url", V0513_BROKER),
    worker=("-m", "jararaca", "worker", V0513_APP, *V0513_SERVERS),
    scheduler=V0513_BEAT,
    burst_scheduler=(*V0513_BEAT, "--actions", "delayed-messages-only"),
    scheduler_ready="PEER SCHEDULER READY",  # bench.peers.jararaca0513_app (another venv)
    # Named in bench.peers.jararaca0513_app: the crons' queues (the prefix as their module),
    # the handler's (the prefix as its topic) and its dead letters'.
    queue_suffixes=(
        ".Ticks.every_second",
        ".Ticks.every_2s",
        ".Ticks.every_5s",
        ".bench.peers.jararaca0513_app.Burst.ping",
        ".dlq",
    ),
    exchange_suffixes=("", ".dlx"),
)
PEERS = (CELERY, TASKIQ, JARARACA_0513)


def environment(prefix: str) -> dict[str, str]:
    """A peer process's variables. PYTHONPATH empty: a peer's python finds its own venv and
    the repository root (``-m`` puts the working directory first), never src/, whose
    ``jararaca`` would shadow 0.5.13's."""
    return {
        "BENCH_PEER_PREFIX": prefix,
        "BENCH_AMQP_URL": AMQP_URL,
        "BENCH_REDIS_URL": REDIS_URL,
        "PYTHONPATH": "",
    }


def require_venv() -> None:
    for python in dict.fromkeys(peer.python for peer in PEERS):
        if not python.exists():
            raise BenchError(f"no {python.parents[1]}: run {VENV_SCRIPTS[python]} first")


async def _remove(queues: list[str], exchanges: list[str], prefix: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in exchanges:
            await channel.exchange_delete(exchange)
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
